//! Batches for the next-token loss and the loss terms: masked cross-entropy
//! on the teacher's tokens and, for token-level distillation, the KL
//! divergence to the teacher's next-token distribution. Only completion (and
//! EOS) targets count; prompt and padding cells are never projected to the
//! vocabulary, which keeps memory at `learned cells x vocab` rather than
//! `rows x cols x vocab`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::error::DistillError;
use super::examples::Example;
use crate::llm::{LlamaDecoder, TokenBatch, fused};

/// A right-padded batch of model inputs and its learned cells.
#[derive(Debug, Clone)]
pub struct LossBatch {
    /// Inputs: each example without its last token.
    pub batch: TokenBatch,
    /// Row-major index (`row * cols + col`) of every input cell whose next
    /// token is a completion token, in order.
    pub cells: Vec<i64>,
    /// The next token of each of `cells`.
    pub targets: Vec<i64>,
    /// Number of learned targets (`cells.len()`).
    pub target_tokens: usize,
    /// Number of real (non-padding) input tokens.
    pub input_tokens: usize,
}

impl LossBatch {
    /// Builds the batch; `pad` fills padding. Input column `c` of a row
    /// predicts its token `c + 1`, which is learned when `c + 1 >= prompt_len`.
    pub fn new(examples: &[&Example], pad: u32) -> Result<Self, DistillError> {
        let inputs: Vec<Vec<u32>> = examples
            .iter()
            .map(|e| e.ids[..e.ids.len().saturating_sub(1)].to_vec())
            .collect();
        let batch = TokenBatch::right_padded(&inputs, pad)?;
        let cols = batch.cols();
        let mut cells = Vec::new();
        let mut targets = Vec::new();
        for (r, e) in examples.iter().enumerate() {
            for (c, &next) in e.ids.iter().enumerate().skip(e.prompt_len.max(1)) {
                cells.push((r * cols + c - 1) as i64);
                targets.push(i64::from(next));
            }
        }
        let input_tokens = inputs.iter().map(Vec::len).sum();
        Ok(Self {
            batch,
            target_tokens: cells.len(),
            cells,
            targets,
            input_tokens,
        })
    }
}

/// The model's next-token logits at the batch's learned cells only,
/// `[cells, vocab]` (differentiable when the model is): hidden states are
/// gathered before the vocabulary projection.
pub fn completion_logits(model: &LlamaDecoder, lb: &LossBatch) -> Result<Tensor<2>, DistillError> {
    let batch = &lb.batch;
    let (rows, cols) = (batch.rows(), batch.cols());
    if lb.cells.is_empty() {
        return Err(DistillError::Tensor(
            "the batch has no completion token to learn".into(),
        ));
    }
    // Row r's real tokens are packed after those of the rows before it.
    let mut offsets = Vec::with_capacity(rows);
    let mut next = 0usize;
    for r in 0..rows {
        offsets.push(next);
        next += batch.len(r);
    }
    let packed: Vec<i64> = lb
        .cells
        .iter()
        .map(|&cell| {
            let (r, c) = (cell as usize / cols.max(1), cell as usize % cols.max(1));
            if cell < 0 || r >= rows || !batch.is_real(r, c) {
                return Err(DistillError::Tensor(format!(
                    "cell {cell} is not a real token of the {rows}x{cols} batch"
                )));
            }
            Ok((offsets[r] + c - batch.start(r)) as i64)
        })
        .collect::<Result<_, _>>()?;
    let hidden = model.forward_packed_hidden(batch)?;
    let device: Device = hidden.device();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(packed, [lb.cells.len()]), &device);
    Ok(model.logits(hidden.select(0, idx)))
}

/// Sum over rows of `-log softmax(logits)[target]`, a one-element tensor
/// (differentiable when `logits` is). `logits` is `[n, vocab]`, one target
/// per row.
pub fn nll_sum(logits: Tensor<2>, targets: &[i64]) -> Result<Tensor<1>, DistillError> {
    let [n, vocab] = logits.dims();
    if targets.len() != n {
        return Err(DistillError::Tensor(format!(
            "loss over {n} logit rows got {} targets",
            targets.len()
        )));
    }
    if let Some(bad) = targets.iter().find(|&&t| t < 0 || t as u64 >= vocab as u64) {
        return Err(DistillError::Tensor(format!(
            "target id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    let device: Device = logits.device();
    if fused::fused(&device, logits.dtype()) {
        return Ok(fused::nll_rows(logits, targets).sum());
    }
    let idx = Tensor::<2, Int>::from_data(TensorData::new(targets.to_vec(), [n, 1]), &device);
    Ok(log_softmax(logits, 1).gather(1, idx).sum().neg())
}

/// Sum over rows of `KL(softmax(teacher / T) || softmax(student / T))`
/// (natural log, not scaled by `T^2`), a one-element tensor, differentiable
/// in `student` only: the teacher's logits are read as constants.
pub fn kl_sum(
    student: Tensor<2>,
    teacher: Tensor<2>,
    temperature: f64,
) -> Result<Tensor<1>, DistillError> {
    if student.dims() != teacher.dims() {
        return Err(DistillError::Tensor(format!(
            "student logits {:?} and teacher logits {:?} differ in shape",
            student.dims(),
            teacher.dims()
        )));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(DistillError::option(
            "--kd-temperature",
            format!("{temperature} is not a positive number"),
        ));
    }
    if fused::fused(&student.device(), student.dtype()) {
        return Ok(fused::kl_rows(student, teacher, temperature).sum());
    }
    let log_t = log_softmax(teacher.detach().div_scalar(temperature), 1);
    let p_t = log_t.clone().exp();
    let log_s = log_softmax(student.div_scalar(temperature), 1);
    Ok((p_t * (log_t - log_s)).sum())
}

/// How token-level distillation weighs its two terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdWeights {
    /// Weight `alpha` of the KL term (`1 - alpha` goes to cross-entropy).
    pub alpha: f64,
    /// Softmax temperature `T` of the KL term.
    pub temperature: f64,
}

impl KdWeights {
    /// `(1 - alpha) * ce + alpha * T^2 * kl`, from sums (or means) of the
    /// two terms.
    pub fn combine(&self, ce: Tensor<1>, kl: Tensor<1>) -> Tensor<1> {
        let t2 = self.temperature * self.temperature;
        ce.mul_scalar(1.0 - self.alpha) + kl.mul_scalar(self.alpha * t2)
    }

    /// The same combination of plain numbers.
    pub fn combine_values(&self, ce: f64, kl: f64) -> f64 {
        let t2 = self.temperature * self.temperature;
        (1.0 - self.alpha) * ce + self.alpha * t2 * kl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Backend;

    fn value(t: Tensor<1>) -> f32 {
        t.into_data().iter::<f32>().next().unwrap()
    }

    fn matrix(values: &[f32], rows: usize, device: &Device) -> Tensor<2> {
        let cols = values.len() / rows;
        Tensor::<2>::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
    }

    #[test]
    fn cells_are_the_completion_targets_only() {
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
        // Row 0 predicts 7 from column 1 and 8 from column 2; row 1 predicts
        // 10 from its column 0 (cell 3).
        assert_eq!(lb.cells, vec![1, 2, 3]);
        assert_eq!(lb.targets, vec![7, 8, 10]);
        assert_eq!((lb.target_tokens, lb.input_tokens), (3, 4));
    }

    #[test]
    fn nll_matches_a_hand_computed_value() {
        let device = Backend::Flex.device();
        let logits = matrix(&[0.0, 1.0, 2.0, 1.0, 1.0, 1.0], 2, &device);
        // Row 0: -log softmax([0,1,2])[2] = log(1 + e^-1 + e^-2)
        //      = log(1.5032147244080551) = 0.40760596444438. (Python math.)
        // Row 1 (uniform) adds log 3 = 1.0986122886681098.
        let got = value(nll_sum(logits.clone(), &[2, 1]).unwrap());
        assert!((got - (0.407_605_96 + 1.098_612_3)).abs() < 1e-5, "{got}");
        assert!(nll_sum(logits.clone(), &[3, 0]).is_err());
        assert!(nll_sum(logits, &[1]).is_err());
    }

    #[test]
    fn kl_matches_python_and_its_gradient_is_the_softmax_difference() {
        let device = Backend::Flex.device();
        let student = [0.0f32, 1.0, 2.0, 1.0, 1.0, 1.0];
        let teacher = [2.0f32, 0.0, 1.0, 0.0, 0.0, 3.0];
        // Reference (Python 3, math module): with p = softmax(x / T),
        // sum_rows sum_j pt_j * log(pt_j / ps_j):
        //   T = 1: 0.9957228673244656 + 0.7320183277853746 = 1.7277411951098403
        //   T = 2: 0.2597205865834811 + 0.26678883432113576 = 0.5265094209046168
        for (t, want) in [(1.0, 1.727_741_2f32), (2.0, 0.526_509_4)] {
            let got = value(
                kl_sum(
                    matrix(&student, 2, &device),
                    matrix(&teacher, 2, &device),
                    t,
                )
                .unwrap(),
            );
            assert!((got - want).abs() < 1e-5, "T={t}: {got} vs {want}");
        }
        // The same distribution: zero.
        let same = value(
            kl_sum(
                matrix(&teacher, 2, &device),
                matrix(&teacher, 2, &device),
                2.0,
            )
            .unwrap(),
        );
        assert!(same.abs() < 1e-6, "{same}");
        // d KL / d student_j = (ps_j - pt_j) / T; row 0 at T = 2 (Python):
        // [-0.16007833391490323, 0.06043608124632541, 0.09964225266857782].
        let ad = device.clone().autodiff();
        let s = matrix(&student, 2, &ad).require_grad();
        let loss = kl_sum(s.clone(), matrix(&teacher, 2, &device), 2.0).unwrap();
        let grads = loss.backward();
        let g: Vec<f32> = s.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        let want = [-0.160_078_33, 0.060_436_08, 0.099_642_25];
        for (g, w) in g.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g:?} vs {want:?}");
        }
        assert!(
            kl_sum(
                matrix(&student, 2, &device),
                matrix(&teacher, 3, &device),
                2.0
            )
            .is_err()
        );
        assert!(
            kl_sum(
                matrix(&student, 2, &device),
                matrix(&teacher, 2, &device),
                0.0
            )
            .is_err()
        );
    }

    #[test]
    fn alpha_zero_is_exactly_cross_entropy_and_alpha_one_is_scaled_kl() {
        let device = Backend::Flex.device();
        let student = matrix(&[0.3, -1.0, 2.5, 0.1, 0.7, -0.4, 1.1, 0.0], 2, &device);
        let teacher = matrix(&[1.0, 0.5, -2.0, 0.0, 0.2, 0.9, -0.3, 1.5], 2, &device);
        let ce = nll_sum(student.clone(), &[2, 3]).unwrap();
        let kl = kl_sum(student, teacher, 2.0).unwrap();
        let (ce_v, kl_v) = (value(ce.clone()), value(kl.clone()));
        let zero = KdWeights {
            alpha: 0.0,
            temperature: 2.0,
        };
        assert_eq!(value(zero.combine(ce.clone(), kl.clone())), ce_v);
        let one = KdWeights {
            alpha: 1.0,
            temperature: 2.0,
        };
        assert!((value(one.combine(ce.clone(), kl.clone())) - 4.0 * kl_v).abs() < 1e-6);
        let half = KdWeights {
            alpha: 0.5,
            temperature: 2.0,
        };
        let mixed = value(half.combine(ce, kl));
        assert!((mixed - (0.5 * ce_v + 2.0 * kl_v)).abs() < 1e-5, "{mixed}");
        assert!((half.combine_values(1.0, 0.25) - 1.0).abs() < 1e-12);
    }
}
