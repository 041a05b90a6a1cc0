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
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::error::LlmError;
use super::kv_cache::KvCache;
use super::linear::HfLinear;
use super::ragged::Ragged;
use super::rope::RopeAngles;

/// New columns from which a forward after a cached prefix attends with the
/// fused kernel, which first copies the cached keys and values contiguous
/// (2 x head_dim values per cached column and key/value head), rather than
/// reading the cache in place through about five separate passes over the
/// scores (groups x columns values per cached column and key/value head).
/// At 16 columns of SmolLM2 (3 groups, head_dim 64) the passes move about
/// twice what the copy does; decode steps and scored continuations (a few
/// columns) stay below it.
const FUSED_MIN_COLUMNS: usize = 16;

/// Self-attention of one decoder layer (no biases, as in Llama).
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection, `[heads * head_dim, hidden]`.
    pub q_proj: HfLinear,
    /// Key projection, `[kv_heads * head_dim, hidden]`.
    pub k_proj: HfLinear,
    /// Value projection, `[kv_heads * head_dim, hidden]`.
    pub v_proj: HfLinear,
    /// Output projection, `[hidden, heads * head_dim]`.
    pub o_proj: HfLinear,
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
    /// group count; `None` means nothing is masked. With a `ragged` layout,
    /// `x` holds only the block's real tokens (`[1, tokens, hidden]`, as
    /// does the result): they are projected packed and attend in the
    /// padded block.
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<(&mut KvCache, usize)>,
        ragged: Option<&Ragged>,
    ) -> Result<Tensor<3>, LlmError> {
        let padded = |t: Tensor<3>| match ragged {
            Some(layout) => layout.to_padded(t),
            None => t,
        };
        let q = padded(self.q_proj.forward(x.clone()));
        let k = padded(self.k_proj.forward(x.clone()));
        let v = padded(self.v_proj.forward(x));
        let [batch, seq, _] = q.dims();
        let (heads, kv_heads, dim) = (self.heads, self.kv_heads, self.head_dim);
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, dim]).swap_dims(1, 2);
        let q = rope.apply(split(q, heads));
        let k = rope.apply(split(k, kv_heads));
        let v = split(v, kv_heads);
        let groups = heads / kv_heads;
        let q = q.reshape([batch, kv_heads, groups * seq, dim]);
        let context = match cache {
            // A decode step (one new column), or a few columns (scored
            // continuations), after a prefix: attend over the cache in
            // place. The cache views are strided (the buffers are longer
            // than the filled prefix); burn's matmul reads them without a
            // copy, whereas the fused kernel would first copy the whole
            // prefix for a few queries.
            Some((cache, layer)) if !cache.is_empty() && seq < FUSED_MIN_COLUMNS => {
                let (k, v) = cache.append(layer, k, v)?;
                strided_attention(q, k, v, mask, dim)
            }
            // A block of columns after a prefix (prompt suffixes after a
            // shared prefix): the fused kernel. Copying the cached keys and
            // values contiguous costs far less than materialising the
            // block's scores through separate mask, softmax and matmul
            // passes (the logistics evaluation's `record`: 32.7 -> 29.9 s).
            Some((cache, layer)) if !cache.is_empty() => {
                let (k, v) = cache.append(layer, k, v)?;
                fused_attention(q, k, v, mask)
            }
            // Prefill (empty cache): the fresh keys/values are the whole
            // context, so the fused kernel gets them contiguous.
            Some((cache, layer)) => {
                cache.append(layer, k.clone(), v.clone())?;
                fused_attention(q, k, v, mask)
            }
            None => fused_attention(q, k, v, mask),
        };
        let context = context
            .reshape([batch, heads, seq, dim])
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * dim]);
        let context = match ragged {
            Some(layout) => layout.to_packed(context),
            None => context,
        };
        Ok(self.o_proj.forward(context))
    }
}

/// Scaled dot-product attention with burn's fused kernel.
fn fused_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: false,
    };
    attention(q, k, v, mask, None, options)
}

/// Scaled dot-product attention from matmul / softmax, reading `k` and `v`
/// through their strides.
fn strided_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    head_dim: usize,
) -> Tensor<4> {
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask, f32::NEG_INFINITY),
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

/// Where each row's padding columns are: `pads[r]` columns from column
/// `start` on (`start = 0`: left padding).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Padding<'a> {
    /// First padding column of every row.
    pub start: usize,
    /// Padding columns per row.
    pub pads: &'a [usize],
}

/// Boolean attention mask (`true` = masked) of shape
/// `[rows, 1, groups * s, past + s]` for `s` new tokens per row following
/// `past` cached columns, where row `r`'s columns `start..start + pads[r]`
/// are padding. Query `i` (column `past + i`) sees key `j` when
/// `j <= past + i` and `j` is not padding; a padding query also sees
/// itself, so no row is fully masked. Returns `None` when nothing is masked.
pub(crate) fn attention_mask(
    padding: Padding<'_>,
    past: usize,
    seq: usize,
    groups: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    let (start, pads) = (padding.start, padding.pads);
    let keys = past + seq;
    let masked = |pad: usize, i: usize, j: usize| {
        j > past + i || ((start..start + pad).contains(&j) && j != past + i)
    };
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
        let padding = Padding {
            start: 0,
            pads: &[0, 1],
        };
        let got = mask_values(attention_mask(padding, 0, 3, 1, &device)).unwrap();
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
        let left = |pads| Padding { start: 0, pads };
        assert!(attention_mask(left(&[0, 0]), 4, 1, 3, &device).is_none());
        let got = mask_values(attention_mask(left(&[2, 0]), 3, 1, 2, &device)).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            true, true, false, false,
            true, true, false, false,
            false, false, false, false,
            false, false, false, false,
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn padding_after_a_shared_prefix_is_masked_in_the_middle() {
        let device = Backend::Flex.device();
        // Two prefix columns are cached; row 0 has one pad column after
        // them (column 2), row 1 none; two new tokens per row.
        let padding = Padding {
            start: 2,
            pads: &[1, 0],
        };
        let got = mask_values(attention_mask(padding, 2, 2, 1, &device)).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            // row 0: query column 2 is the pad (sees itself), column 3 skips it
            false, false, false, true,
            false, false, true, false,
            // row 1: plain causal
            false, false, false, true,
            false, false, false, false,
        ];
        assert_eq!(got, expected);
    }
}
