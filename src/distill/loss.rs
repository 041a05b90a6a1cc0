//! Batches for the next-token loss and the masked cross-entropy: only
//! completion (and EOS) targets count; prompt and padding contribute nothing.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::error::DistillError;
use super::examples::Example;
use crate::llm::TokenBatch;

/// A right-padded batch of model inputs with a target and a weight per cell.
#[derive(Debug, Clone)]
pub struct LossBatch {
    /// Inputs: each example without its last token.
    pub batch: TokenBatch,
    /// Target id per `[row, col]` (row-major): the next token.
    pub targets: Vec<i64>,
    /// 1 where the target is a completion token, 0 for prompt and padding.
    pub weights: Vec<f32>,
    /// Number of weighted targets.
    pub target_tokens: usize,
    /// Number of real (non-padding) input tokens.
    pub input_tokens: usize,
}

impl LossBatch {
    /// Builds the batch; `pad` fills padding (its targets get weight 0).
    /// Input column `c` of a row predicts its token `c + 1`, which is
    /// learned when `c + 1 >= prompt_len`.
    pub fn new(examples: &[&Example], pad: u32) -> Result<Self, DistillError> {
        let inputs: Vec<Vec<u32>> = examples
            .iter()
            .map(|e| e.ids[..e.ids.len().saturating_sub(1)].to_vec())
            .collect();
        let batch = TokenBatch::right_padded(&inputs, pad)?;
        let cols = batch.cols();
        let mut targets = vec![0i64; examples.len() * cols];
        let mut weights = vec![0f32; examples.len() * cols];
        let mut target_tokens = 0;
        for (r, e) in examples.iter().enumerate() {
            for (c, &next) in e.ids.iter().enumerate().skip(1) {
                let cell = r * cols + c - 1;
                targets[cell] = i64::from(next);
                if c >= e.prompt_len {
                    weights[cell] = 1.0;
                    target_tokens += 1;
                }
            }
        }
        let input_tokens = inputs.iter().map(Vec::len).sum();
        Ok(Self {
            batch,
            targets,
            weights,
            target_tokens,
            input_tokens,
        })
    }
}

/// Sum over cells of `weight * -log softmax(logits)[target]`, a one-element
/// tensor (differentiable when `logits` is). `logits` is `[rows, cols,
/// vocab]`; `targets` and `weights` are row-major `rows * cols`.
pub fn weighted_nll_sum(
    logits: Tensor<3>,
    targets: &[i64],
    weights: &[f32],
) -> Result<Tensor<1>, DistillError> {
    let [rows, cols, vocab] = logits.dims();
    if targets.len() != rows * cols || weights.len() != rows * cols {
        return Err(DistillError::Tensor(format!(
            "loss over {rows}x{cols} logits got {} targets and {} weights",
            targets.len(),
            weights.len()
        )));
    }
    if let Some(bad) = targets.iter().find(|&&t| t < 0 || t as u64 >= vocab as u64) {
        return Err(DistillError::Tensor(format!(
            "target id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    let device: Device = logits.device();
    let idx =
        Tensor::<3, Int>::from_data(TensorData::new(targets.to_vec(), [rows, cols, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights.to_vec(), [rows, cols]), &device);
    let picked = log_softmax(logits, 2).gather(2, idx).reshape([rows, cols]);
    Ok((picked * w).sum().neg())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Backend;

    fn value(t: Tensor<1>) -> f32 {
        t.into_data().iter::<f32>().next().unwrap()
    }

    #[test]
    fn weights_mark_completion_targets_only() {
        let a = Example {
            ids: vec![5, 6, 7, 8],
            prompt_len: 2,
        };
        let b = Example {
            ids: vec![9, 10],
            prompt_len: 1,
        };
        let lb = LossBatch::new(&[&a, &b], 0).unwrap();
        assert_eq!(lb.batch.cols(), 3);
        assert_eq!(lb.batch.ids(), &[5, 6, 7, 9, 0, 0]);
        assert_eq!(lb.targets, vec![6, 7, 8, 10, 0, 0]);
        assert_eq!(lb.weights, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!((lb.target_tokens, lb.input_tokens), (3, 4));
    }

    #[test]
    fn nll_matches_a_hand_computed_value_and_ignores_masked_cells() {
        let device = Backend::Flex.device();
        // One row, two cells, vocab 3.
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 2.0, 1.0, 1.0, 1.0], [1, 2, 3]),
            &device,
        );
        // Cell 0: -log softmax([0,1,2])[2] = log(1 + e^-1 + e^-2)
        //       = log(1.5032147244080551) = 0.40760596444438. (Python math.)
        let got = value(weighted_nll_sum(logits.clone(), &[2, 0], &[1.0, 0.0]).unwrap());
        assert!((got - 0.407_605_96).abs() < 1e-5, "{got}");
        // A masked cell's target does not matter.
        let other = value(weighted_nll_sum(logits.clone(), &[2, 1], &[1.0, 0.0]).unwrap());
        assert_eq!(got, other);
        // Cell 1 (uniform) adds log 3 = 1.0986122886681098.
        let both = value(weighted_nll_sum(logits.clone(), &[2, 1], &[1.0, 1.0]).unwrap());
        assert!((both - (0.407_605_96 + 1.098_612_3)).abs() < 1e-5, "{both}");
        assert!(weighted_nll_sum(logits, &[3, 0], &[1.0, 0.0]).is_err());
    }
}
