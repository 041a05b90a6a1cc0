//! Prompt blocks of unequal lengths run without their padding.
//!
//! A batch of prompts is a `[rows, width]` block, each row left-padded to
//! the longest. Padding costs as much as a real token in every per-token
//! part of a layer (the projections, the norms, the MLP: most of a
//! prefill's flops), and a length-sorted batch of 16 logistics prompts is
//! still up to 31% padding. A [`Ragged`] layout packs only the real tokens
//! into one `[1, tokens, channels]` sequence for those parts and spreads
//! them back into the padded `[rows, width, channels]` block, with zeros
//! in the padding slots, only for attention, which needs the rows apart.
//!
//! The real tokens' values are bit for bit those of the padded block: the
//! per-token parts compute each token's row on its own (a matmul's sums
//! run over the input channels in an order set by their count, not by the
//! number of tokens), and attention still sees the padded layout, where
//! the padding keys are masked (a zero key or value weighs exactly 0).

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Where each real token of a left-padded `[rows, width]` block sits.
#[derive(Debug, Clone)]
pub(crate) struct Ragged {
    rows: usize,
    width: usize,
    tokens: usize,
    /// Per padded slot (row-major), the packed token it holds, or
    /// `tokens` (an appended zero row) for a padding slot.
    spread: Tensor<1, Int>,
    /// Per packed token, its padded slot.
    pack: Tensor<1, Int>,
    /// Per row, the packed index of its last token.
    last: Tensor<1, Int>,
}

impl Ragged {
    /// The layout of rows of `lens[r]` tokens (each at least 1) left-padded
    /// to `width` (at least the longest).
    pub(crate) fn new(lens: &[usize], width: usize, device: &Device) -> Self {
        let rows = lens.len();
        let tokens: usize = lens.iter().sum();
        let mut spread = Vec::with_capacity(rows * width);
        let mut pack = Vec::with_capacity(tokens);
        let mut last = Vec::with_capacity(rows);
        let mut next = 0i64;
        for (r, &len) in lens.iter().enumerate() {
            let pad = width - len;
            spread.extend(std::iter::repeat_n(tokens as i64, pad));
            spread.extend(next..next + len as i64);
            pack.extend((r * width + pad..(r + 1) * width).map(|slot| slot as i64));
            next += len as i64;
            last.push(next - 1);
        }
        let ints = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        Self {
            rows,
            width,
            tokens,
            spread: ints(spread),
            pack: ints(pack),
            last: ints(last),
        }
    }

    /// The padded block's `[rows, width]`.
    pub(crate) fn block(&self) -> [usize; 2] {
        [self.rows, self.width]
    }

    /// Real tokens in the block.
    pub(crate) fn tokens(&self) -> usize {
        self.tokens
    }

    /// `[1, tokens, c]` packed values spread into the padded
    /// `[rows, width, c]` block, zeros in the padding slots.
    pub(crate) fn to_padded(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, tokens, c] = x.dims();
        let flat: Tensor<2> = x.reshape([tokens, c]);
        let zero = Tensor::<2>::zeros([1, c], &flat.device());
        Tensor::cat(vec![flat, zero], 0)
            .select(0, self.spread.clone())
            .reshape([self.rows, self.width, c])
    }

    /// The real tokens of a padded `[rows, width, c]` block, packed into
    /// `[1, tokens, c]`.
    pub(crate) fn to_packed(&self, x: Tensor<3>) -> Tensor<3> {
        let [rows, width, c] = x.dims();
        x.reshape([rows * width, c])
            .select(0, self.pack.clone())
            .reshape([1, self.tokens, c])
    }

    /// Each row's last token of packed `[1, tokens, c]` values, as
    /// `[rows, 1, c]`.
    pub(crate) fn last_tokens(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, tokens, c] = x.dims();
        x.reshape([tokens, c])
            .select(0, self.last.clone())
            .reshape([self.rows, 1, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Backend;

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn spreads_packs_and_picks_the_last_tokens() {
        for backend in Backend::ALL {
            let device = backend.device();
            // Rows of 2, 3 and 1 tokens in a width of 3; two channels.
            let ragged = Ragged::new(&[2, 3, 1], 3, &device);
            assert_eq!(ragged.tokens(), 6);
            let packed = Tensor::<3>::from_data(
                TensorData::new((1..=12).map(|v| v as f32).collect::<Vec<_>>(), [1, 6, 2]),
                &device,
            );
            let padded = ragged.to_padded(packed.clone());
            assert_eq!(padded.dims(), [3, 3, 2]);
            #[rustfmt::skip]
            let expected = vec![
                0.0, 0.0, 1.0, 2.0, 3.0, 4.0,
                5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
                0.0, 0.0, 0.0, 0.0, 11.0, 12.0,
            ];
            assert_eq!(values(padded.clone()), expected, "{backend}");
            assert_eq!(
                values(ragged.to_packed(padded)),
                values(packed.clone()),
                "{backend}"
            );
            assert_eq!(
                values(ragged.last_tokens(packed)),
                vec![3.0, 4.0, 9.0, 10.0, 11.0, 12.0],
                "{backend}"
            );
        }
    }
}
