//! Grouped-query self-attention with rotary positions, a padding-aware
//! causal mask and an optional key/value cache.
//!
//! Grouped-query attention is computed by folding each group of query heads
//! that share a key/value head into the query-sequence axis:
//! `[batch, heads, s, d]` becomes `[batch, kv_heads, groups * s, d]`, so one
//! attention call per key/value head serves all its query heads without
//! repeating keys and values. This works on every backend (flex, ndarray
//! and autodiff's decomposed fallback) and matches Hugging Face's
//! `repeat_kv` (query head `h` reads key/value head `h / groups`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::error::LlmError;
use super::kv_cache::KvCache;
use super::rope::RopeAngles;

/// Self-attention of one decoder layer (no biases, as in Llama).
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection, burn layout `[hidden, heads * head_dim]`.
    pub q_proj: Linear,
    /// Key projection, `[hidden, kv_heads * head_dim]`.
    pub k_proj: Linear,
    /// Value projection, `[hidden, kv_heads * head_dim]`.
    pub v_proj: Linear,
    /// Output projection, `[heads * head_dim, hidden]`.
    pub o_proj: Linear,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

impl Attention {
    /// Attends `x` (`[batch, s, hidden]`) to itself, or, with a cache, to
    /// the cached prefix plus itself (the new keys/values are written to
    /// the cache). `mask` comes from [`attention_mask`] with this layer's
    /// group count; `None` means nothing is masked.
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor<3>, LlmError> {
        let [batch, seq, _] = x.dims();
        let (heads, kv_heads, dim) = (self.heads, self.kv_heads, self.head_dim);
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, dim]).swap_dims(1, 2);
        let q = rope.apply(split(self.q_proj.forward(x.clone()), heads));
        let k = rope.apply(split(self.k_proj.forward(x.clone()), kv_heads));
        let v = split(self.v_proj.forward(x), kv_heads);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v)?,
            None => (k, v),
        };
        let groups = heads / kv_heads;
        let q = q.reshape([batch, kv_heads, groups * seq, dim]);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let context = attention(q, k, v, mask, None, options)
            .reshape([batch, heads, seq, dim])
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * dim]);
        Ok(self.o_proj.forward(context))
    }
}

/// Boolean attention mask (`true` = masked) of shape
/// `[rows, 1, groups * s, past + s]` for `s` new tokens per row following
/// `past` cached columns, where row `r`'s first `pads[r]` columns are
/// padding. Query `i` (column `past + i`) sees key `j` when `j <= past + i`
/// and `j` is not padding; a padding query also sees itself, so no row is
/// fully masked. Returns `None` when nothing is masked.
pub(crate) fn attention_mask(
    pads: &[usize],
    past: usize,
    seq: usize,
    groups: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    let keys = past + seq;
    let masked = |pad: usize, i: usize, j: usize| j > past + i || (j < pad && j != past + i);
    let any = pads
        .iter()
        .any(|&pad| (0..seq).any(|i| (0..keys).any(|j| masked(pad, i, j))));
    if !any {
        return None;
    }
    let mut data = Vec::with_capacity(pads.len() * groups * seq * keys);
    for &pad in pads {
        for _ in 0..groups {
            for i in 0..seq {
                data.extend((0..keys).map(|j| masked(pad, i, j)));
            }
        }
    }
    let shape = [pads.len(), 1, groups * seq, keys];
    Some(Tensor::from_data(TensorData::new(data, shape), device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Backend;

    fn mask_values(mask: Option<Tensor<4, Bool>>) -> Option<Vec<bool>> {
        mask.map(|m| m.into_data().iter::<bool>().collect())
    }

    #[test]
    fn causal_mask_with_left_padding() {
        let device = Backend::Flex.device();
        // Row 0 unpadded, row 1 with one pad column; 3 new tokens, no past.
        let got = mask_values(attention_mask(&[0, 1], 0, 3, 1, &device)).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            false, true, true,
            false, false, true,
            false, false, false,
            // row 1: the pad query sees only itself; real queries skip column 0
            false, true, true,
            true, false, true,
            true, false, false,
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn decode_step_masks_only_padding_and_repeats_groups() {
        let device = Backend::Flex.device();
        assert!(attention_mask(&[0, 0], 4, 1, 3, &device).is_none());
        let got = mask_values(attention_mask(&[2, 0], 3, 1, 2, &device)).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            true, true, false, false,
            true, true, false, false,
            false, false, false, false,
            false, false, false, false,
        ];
        assert_eq!(got, expected);
    }
}
