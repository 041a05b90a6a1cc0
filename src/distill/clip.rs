//! Gradient clipping by the global norm (over every parameter together, as
//! PyTorch's `clip_grad_norm_` does; burn's own clipping is per tensor).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::error::DistillError;
use crate::llm::fused::{fused_plain, scale, sum_squares};

/// Sums the squares of every gradient of a module's parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = if fused_plain(&g) {
                sum_squares(g)
            } else {
                g.square().sum()
            };
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Multiplies every gradient of a module's parameters by a factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let scaled = if fused_plain(&g) {
                scale(g, self.factor)
            } else {
                g.mul_scalar(self.factor)
            };
            self.grads.register(param.id, scaled);
        }
    }
}

/// The global L2 norm of `module`'s gradients in `grads`.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Result<f64, DistillError> {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    let Some(total) = v.total else {
        return Ok(0.0);
    };
    let sq = total
        .into_data()
        .iter::<f32>()
        .next()
        .ok_or_else(|| DistillError::Tensor("empty gradient norm".into()))?;
    Ok(f64::from(sq).sqrt())
}

/// Scales all gradients so their global norm is at most `max_norm` (no
/// change when it already is, or when `max_norm` is not positive). Returns
/// the norm before clipping.
pub fn clip_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<f64, DistillError> {
    let norm = global_norm(module, grads)?;
    if !norm.is_finite() {
        return Err(DistillError::Tensor(format!(
            "gradient norm is {norm} (training diverged; lower --lr)"
        )));
    }
    if max_norm > 0.0 && norm > max_norm {
        let mut v = Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        };
        module.visit(&mut v);
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Backend;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    #[test]
    fn clips_the_norm_over_all_parameters() {
        let device = Backend::Flex.device().autodiff();
        let layer: Linear = LinearConfig::new(2, 1).init(&device);
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &device);
        // d(sum(xW + b))/dW = x^T = [3, 4], d/db = 1: global norm sqrt(26).
        let loss = layer.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        let before = clip_global_norm(&layer, &mut grads, 1.0).unwrap();
        assert!((before - 26f64.sqrt()).abs() < 1e-5, "{before}");
        let after = global_norm(&layer, &grads).unwrap();
        assert!((after - 1.0).abs() < 1e-4, "{after}");
        // Below the limit nothing changes.
        let unchanged = clip_global_norm(&layer, &mut grads, 10.0).unwrap();
        assert!((unchanged - after).abs() < 1e-9);
    }

    #[test]
    fn flex_gradients_take_the_fused_path() {
        let device = Backend::Flex.device().autodiff();
        let layer: Linear = LinearConfig::new(2, 1).init(&device);
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &device);
        let grads = GradientsParams::from_grads(layer.forward(x).sum().backward(), &layer);
        let g = grads.get::<2>(layer.weight.id).unwrap();
        assert!(fused_plain(&g));
    }
}
