//! A linear layer that keeps its weight in the Hugging Face `[out, in]`
//! layout, with an optional bias (Qwen2's q/k/v projections).
//!
//! For a few activation rows `y = x W^T` is computed as `(W x^T)^T`: the
//! large weight is the left operand and the rows the right one. Measured
//! on burn-flex (gemm crate) with SmolLM2-shaped matrices, this runs
//! decode-shaped products (1 to 16 rows) up to twice as fast as burn's
//! `[in, out]` `Linear` (16 x 576 x 1536: 0.7 ms vs 1.4 ms of CPU; the
//! 49152-row LM head at 16 rows: 43 ms vs 110 ms) and is no slower on
//! ndarray. For more than [`ROWS_LEFT_MIN`] rows on flex (prefill, scoring)
//! the rows are the left operand and `W^T` a transposed view: gemm packs
//! the rows instead of the weight and the result is contiguous (the s6m
//! forward of `cargo bench --bench forward` went from 55% to 59% of the
//! matmul), with every bit of the product the same. In f32 on flex that
//! product is [`fused::linear`]: gemm called with the same arguments
//! (the same bits), writing into a buffer of its own instead of burn-flex's
//! zeroed-then-copied one, and under autodiff computing `dW` in the
//! weight's own layout.
//! Keeping the checkpoint layout also means weights load and export
//! without transposes, and a tied LM head is the embedding matrix itself.
//!
//! A layer loaded from a quantized GGUF tensor also keeps the quantized
//! blocks ([`QuantMatrix`]) and multiplies decode-shaped inputs (up to
//! [`QUANTIZED_MAX_ROWS`] rows) with them: those products are bound by
//! reading the weights, which the quantized form makes 4-6 times smaller.
//! Larger inputs (prefill, training) use the f32 matrix.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::fused;
use super::quant_matrix::QuantMatrix;

/// The most activation rows multiplied with the quantized blocks; more
/// rows go to the f32 matrix (burn's matmul), which is faster once the
/// weights are read for enough rows.
pub const QUANTIZED_MAX_ROWS: usize = 16;

/// `y = x W^T (+ b)` with `W` stored `[out, in]`.
#[derive(Module, Debug)]
pub struct HfLinear {
    /// The weight, `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// The bias, `[out]`, when the architecture has one.
    pub bias: Option<Param<Tensor<1>>>,
    /// The same weight in a block-quantized format, when the checkpoint
    /// stored it so; used for inference only (it has no gradient).
    #[module(skip)]
    pub quantized: Option<Arc<QuantMatrix>>,
}

impl HfLinear {
    /// A layer from row-major `[out, in]` values (the caller guarantees
    /// `data.len() == out * in`).
    pub fn from_rows(data: Vec<f32>, out: usize, inp: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(data, [out, inp]),
                device,
            )),
            bias: None,
            quantized: None,
        }
    }

    /// The same layer with a bias of `data.len() == out` values.
    pub fn with_bias(mut self, data: Vec<f32>) -> Self {
        let device = self.weight.val().device();
        let len = data.len();
        self.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(data, [len]),
            &device,
        )));
        self
    }

    /// Applies the layer to `x` of shape `[..., in]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = match &self.quantized {
            Some(q) => project_quantized(q, self.weight.val(), x),
            None => project(self.weight.val(), x),
        };
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<D>(),
            None => y,
        }
    }
}

/// `x W^T` with the quantized blocks when `x` has at most
/// [`QUANTIZED_MAX_ROWS`] rows, else with the f32 `weight`.
pub fn project_quantized<const D: usize>(
    quantized: &QuantMatrix,
    weight: Tensor<2>,
    x: Tensor<D>,
) -> Tensor<D> {
    let dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    if rows > QUANTIZED_MAX_ROWS || dims[D - 1] != quantized.cols() {
        return project(weight, x);
    }
    let device = x.device();
    let values = match x.clone().into_data().try_into_vec::<f32>() {
        Ok(values) => values,
        Err(_) => return project(weight, x),
    };
    let mut out_dims = dims;
    out_dims[D - 1] = quantized.rows();
    Tensor::from_data(
        TensorData::new(quantized.matmul(&values), out_dims),
        &device,
    )
}

/// Activation rows above which [`project`] makes them the left operand of
/// the product (on flex, outside autodiff). Up to it the weight stays on the
/// left, which is faster for decode-shaped products (see the module doc).
/// Above it both forms give the same bits (a test checks the SmolLM2 and
/// s6m matrices): gemm's sums over the inputs are chunked by their count
/// only, and its small-product kernels, which sum in another order, are out
/// of reach with more than 64 rows (for any matrix of 4 or more outputs).
pub const ROWS_LEFT_MIN: usize = 64;

/// Whether [`project`] puts `rows` activation rows of `x` on the left.
fn rows_left<const D: usize>(rows: usize, x: &Tensor<D>) -> bool {
    rows > ROWS_LEFT_MIN && x.device().without_autodiff() == Device::flex()
}

/// `x W^T` for `W` of shape `[out, in]` and `x` of shape `[..., in]`.
pub fn project<const D: usize>(weight: Tensor<2>, x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let inp = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let [out, _] = weight.dims();
    let mut out_dims = dims;
    out_dims[D - 1] = out;
    let left = rows_left(rows, &x);
    let flat: Tensor<2> = x.reshape([rows, inp]);
    let product = if left && fused::fused_packed(&flat.device(), flat.dtype()) {
        fused::linear(flat, weight)
    } else if left {
        flat.matmul(weight.transpose())
    } else {
        weight.matmul(flat.transpose()).transpose()
    };
    product.reshape(out_dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Backend;
    use crate::llm::quant_matrix::tests::values;

    #[test]
    fn rows_on_either_side_of_the_product_give_the_same_bits() {
        let device = Backend::Flex.device();
        let bits =
            |t: Tensor<3>| -> Vec<u32> { t.into_data().iter::<f32>().map(f32::to_bits).collect() };
        // s6m's q/k/v and MLP matrices, SmolLM2's o_proj and MLP ones.
        for (out, inp, rows) in [
            (96, 288, ROWS_LEFT_MIN + 1),
            (288, 288, 300),
            (768, 288, 130),
            (288, 768, 130),
            (576, 576, 100),
            (1536, 576, 130),
            (576, 1536, 130),
        ] {
            let w =
                Tensor::<2>::from_data(TensorData::new(values(out * inp, 1), [out, inp]), &device);
            let x = Tensor::<3>::from_data(
                TensorData::new(values(rows * inp, 2), [1, rows, inp]),
                &device,
            );
            assert!(rows_left(rows, &x), "{rows} rows go on the left");
            let weight_left = w
                .clone()
                .matmul(x.clone().reshape([rows, inp]).transpose())
                .transpose()
                .reshape([1, rows, out]);
            assert_eq!(
                bits(project(w, x)),
                bits(weight_left),
                "{out}x{inp}, {rows} rows"
            );
        }
    }

    #[test]
    fn projects_with_out_in_weights() {
        for backend in Backend::ALL {
            let device = backend.device();
            // W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3); x rows [1, 0, -1] and [2, 1, 0].
            let layer = HfLinear::from_rows(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3, &device);
            let x = Tensor::<3>::from_data(
                TensorData::new(vec![1.0f32, 0.0, -1.0, 2.0, 1.0, 0.0], [2, 1, 3]),
                &device,
            );
            let y = layer.forward(x);
            assert_eq!(y.dims(), [2, 1, 2]);
            let got: Vec<f32> = y.into_data().iter::<f32>().collect();
            // [1-3, 4-6] and [2+2, 8+5]
            assert_eq!(got, vec![-2.0, -2.0, 4.0, 13.0], "{backend}");
        }
    }
}
