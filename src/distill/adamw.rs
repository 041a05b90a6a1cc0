//! AdamW as burn's `AdamW` computes it (same formula, order of operations,
//! f32 factors and state), in one pass per parameter on every core where
//! the tensors allow it ([`fused_plain`]): burn's own runs about ten
//! elementwise passes per parameter on one core, which was 5-6% of a
//! training step at the shape of a student started from the teacher. The
//! state is burn's `AdamWState`, so optimizer checkpoints are the same
//! files either way; anything else (other backends, AMSGrad state) goes to
//! burn's `AdamW`.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::llm::fused::{self, AdamWStep, fused_plain};

/// AdamW with decoupled weight decay and no AMSGrad.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's `AdamW` with the same settings, for tensors the fused pass
    /// does not serve.
    fallback: AdamW,
}

impl FusedAdamW {
    /// AdamW with these settings (burn's `AdamWConfig` fields of the same
    /// names).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let fallback = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            fallback,
        }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let plain = fused_plain(&tensor) && fused_plain(&grad);
        let (time, moment_1, moment_2) = match state {
            Some(s)
                if plain
                    && s.momentum.max_moment_2.is_none()
                    && fused_plain(&s.momentum.moment_1)
                    && fused_plain(&s.momentum.moment_2) =>
            {
                let m = s.momentum;
                (m.time + 1, m.moment_1, m.moment_2)
            }
            None if plain => (1, grad.zeros_like(), grad.zeros_like()),
            state => return self.fallback.step(lr, tensor, grad, state),
        };
        let decay_rate = lr * f64::from(self.weight_decay);
        let step = AdamWStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            correction_1: 1.0 - self.beta_1.powi(time as i32),
            correction_2: 1.0 - self.beta_2.powi(time as i32),
            epsilon: self.epsilon,
            decay: (1.0 - decay_rate) as f32,
            lr: lr as f32,
        };
        let (tensor, moment_1, moment_2) = fused::adamw(tensor, grad, moment_1, moment_2, step);
        let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
        (tensor, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Backend;
    use burn::tensor::{Distribution, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn matches_burns_adamw_step_after_step() {
        let device = Backend::Flex.device();
        device.seed(3);
        let (b1, b2, eps, wd) = (0.9, 0.95, 1e-8, 0.1);
        let ours = FusedAdamW::new(b1, b2, eps, wd);
        let burns = AdamWConfig::new()
            .with_beta_1(b1)
            .with_beta_2(b2)
            .with_epsilon(eps)
            .with_weight_decay(wd)
            .build();
        let start = Tensor::<2>::random([70, 300], Distribution::Normal(0.0, 1.0), &device);
        let (mut p_ours, mut p_burn) = (start.clone(), start);
        let (mut s_ours, mut s_burn) = (None, None);
        for step in 0..4 {
            let grad = Tensor::<2>::random([70, 300], Distribution::Normal(0.0, 0.1), &device);
            let lr = 3e-3 / (step + 1) as f64;
            (p_ours, s_ours) = ours.step(lr, p_ours, grad.clone(), s_ours);
            (p_burn, s_burn) = burns.step(lr, p_burn, grad, s_burn);
            let (a, b) = (values(p_ours.clone()), values(p_burn.clone()));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                    "step {step} [{i}]: {x} vs {y}"
                );
            }
            let (so, sb) = (s_ours.clone().unwrap(), s_burn.clone().unwrap());
            assert_eq!(so.momentum.time, sb.momentum.time);
            let (a, b) = (values(so.momentum.moment_2), values(sb.momentum.moment_2));
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs() + 1e-12,
                    "moment_2 {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn other_backends_go_to_burns_adamw() {
        #[allow(deprecated)]
        let device = Backend::NdArray.device();
        let ours = FusedAdamW::new(0.9, 0.95, 1e-8, 0.0);
        let p = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -2.0], [2]), &device);
        let g = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 0.5], [2]), &device);
        let (p, state) = ours.step(0.1, p, g, None);
        // The first AdamW step moves every weight by lr against its gradient's sign.
        let v = values(p);
        assert!(
            (v[0] - 0.9).abs() < 1e-5 && (v[1] + 2.1).abs() < 1e-5,
            "{v:?}"
        );
        assert_eq!(state.unwrap().momentum.time, 1);
    }
}
