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
use burn::nn::RmsNorm;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::error::LlmError;
use super::fused;
use super::kv_cache::KvCache;
use super::linear::HfLinear;
use super::packed_attention::Heads;
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

/// Self-attention of one decoder layer (the projections' biases, when the
/// architecture has them, are in [`HfLinear`]).
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
    /// RMSNorm of each query head before the rotation (Qwen3), `[head_dim]`.
    pub q_norm: Option<RmsNorm>,
    /// RMSNorm of each key head before the rotation (Qwen3), `[head_dim]`.
    pub k_norm: Option<RmsNorm>,
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
        let split = |t: Tensor<3>, n: usize, norm: Option<&RmsNorm>| {
            let t = t.reshape([batch, seq, n, dim]);
            match norm {
                Some(norm) => norm.forward(t),
                None => t,
            }
            .swap_dims(1, 2)
        };
        let q = rope.apply(split(q, heads, self.q_norm.as_ref()));
        let k = rope.apply(split(k, kv_heads, self.k_norm.as_ref()));
        let v = split(v, kv_heads, None);
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

/// The rows of a packed batch (`[1, tokens, channels]`, row after row,
/// no padding): each row's first packed token and length, and the causal
/// mask of every distinct row length (see [`attention_mask`]), shared by
/// the layers.
#[derive(Debug)]
pub(crate) struct PackedRows {
    /// `(first packed token, length)` of each row.
    pub rows: Vec<(usize, usize)>,
    masks: std::collections::BTreeMap<usize, Option<Tensor<4, Bool>>>,
}

impl PackedRows {
    /// The layout of rows of `lens[r]` tokens, with masks for `groups`
    /// query heads per key/value head when given (the composed attention
    /// needs them, the fused one does not).
    pub(crate) fn new(lens: &[usize], groups: Option<usize>, device: &Device) -> Self {
        let mut rows = Vec::with_capacity(lens.len());
        let mut masks = std::collections::BTreeMap::new();
        let mut next = 0;
        for &len in lens {
            rows.push((next, len));
            next += len;
            let Some(groups) = groups else { continue };
            masks.entry(len).or_insert_with(|| {
                let unpadded = Padding {
                    start: 0,
                    pads: &[0],
                };
                attention_mask(unpadded, 0, len, groups, device)
            });
        }
        Self { rows, masks }
    }

    fn mask(&self, len: usize) -> Option<Tensor<4, Bool>> {
        self.masks.get(&len).cloned().flatten()
    }
}

impl Attention {
    /// Self-attention of a packed batch (`x`: `[1, tokens, hidden]`, the
    /// rows of `packed` one after the other, `rope` at each token's
    /// position in its row): the projections run over the real tokens only
    /// and each row attends within itself, so no padding is computed
    /// (training spends most of its time there otherwise: a batch of 8
    /// demo prompts is about 28% padding, and attention's cost grows with
    /// the square of the padded length).
    pub(crate) fn forward_packed(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        packed: &PackedRows,
    ) -> Tensor<3> {
        if fused::fused_packed(&x.device(), x.dtype()) {
            return self.forward_packed_fused(x, rope, packed);
        }
        let [_, tokens, _] = x.dims();
        let (heads, kv_heads, dim) = (self.heads, self.kv_heads, self.head_dim);
        let groups = heads / kv_heads;
        let split = |t: Tensor<3>, n: usize, norm: Option<&RmsNorm>| {
            let t = t.reshape([1, tokens, n, dim]);
            match norm {
                Some(norm) => fused::rms_norm(norm, t),
                None => t,
            }
            .swap_dims(1, 2)
        };
        let q = rope.apply(split(
            self.q_proj.forward(x.clone()),
            heads,
            self.q_norm.as_ref(),
        ));
        let k = rope.apply(split(
            self.k_proj.forward(x.clone()),
            kv_heads,
            self.k_norm.as_ref(),
        ));
        let v = split(self.v_proj.forward(x), kv_heads, None);
        let contexts = packed
            .rows
            .iter()
            .map(|&(start, len)| {
                let rows = start..start + len;
                let q = q.clone().slice([0..1, 0..heads, rows.clone(), 0..dim]);
                let k = k.clone().slice([0..1, 0..kv_heads, rows.clone(), 0..dim]);
                let v = v.clone().slice([0..1, 0..kv_heads, rows, 0..dim]);
                let q = q.reshape([1, kv_heads, groups * len, dim]);
                training_attention(q, k, v, packed.mask(len), dim).reshape([1, heads, len, dim])
            })
            .collect();
        let context = Tensor::cat(contexts, 2)
            .swap_dims(1, 2)
            .reshape([1, tokens, heads * dim]);
        self.o_proj.forward(context)
    }

    /// [`Attention::forward_packed`] on flex in f32 ([`fused::fused_packed`]):
    /// queries, keys and values stay token-major (`[tokens, heads *
    /// head_dim]`) through the rotation and [`fused::packed_attention`], so
    /// none of them is transposed, sliced or concatenated into a copy.
    fn forward_packed_fused(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        packed: &PackedRows,
    ) -> Tensor<3> {
        let [_, tokens, _] = x.dims();
        let (heads, kv_heads, dim) = (self.heads, self.kv_heads, self.head_dim);
        let rotated = |t: Tensor<3>, n: usize, norm: Option<&RmsNorm>| {
            let t = t.reshape([tokens, n, 1, dim]);
            let t = match norm {
                Some(norm) => fused::rms_norm(norm, t),
                None => t,
            };
            rope.apply_token_major(t).reshape([tokens, n * dim])
        };
        let q = rotated(self.q_proj.forward(x.clone()), heads, self.q_norm.as_ref());
        let k = rotated(
            self.k_proj.forward(x.clone()),
            kv_heads,
            self.k_norm.as_ref(),
        );
        let v = self.v_proj.forward(x).reshape([tokens, kv_heads * dim]);
        let shape = Heads {
            heads,
            kv_heads,
            dim,
            scale: (1.0 / (dim as f64).sqrt()) as f32,
        };
        let context = fused::packed_attention(q, k, v, &packed.rows, shape);
        self.o_proj
            .forward(context.reshape([1, tokens, heads * dim]))
    }
}

/// Scaled dot-product attention of a packed row (`q`: `[1, kv_heads,
/// groups * len, head_dim]`, `mask` causal within the row) off flex f32
/// (which takes [`Attention::forward_packed_fused`]). Burn's fused kernel
/// outside autodiff; under autodiff its
/// `attention` would be decomposed into about ten passes over the
/// `[.., queries, keys]` scores and its max would be part of the graph, so
/// the scale goes on the queries (a fraction of the scores' size) and
/// `softmax` shifts by a detached max. Rows are never fully masked (a query
/// sees itself).
fn training_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    head_dim: usize,
) -> Tensor<4> {
    if !q.device().is_autodiff() {
        return fused_attention(q, k, v, mask);
    }
    let scores = q
        .mul_scalar(1.0 / (head_dim as f64).sqrt())
        .matmul(k.swap_dims(2, 3));
    softmax_context(scores, mask, v)
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
    softmax_context(scores, mask, v)
}

/// `softmax(scores with the masked cells at -inf) . v`.
fn softmax_context(scores: Tensor<4>, mask: Option<Tensor<4, Bool>>, v: Tensor<4>) -> Tensor<4> {
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
