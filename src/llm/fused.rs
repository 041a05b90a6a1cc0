//! Fused training operations with their own backward: RMSNorm, the SwiGLU
//! gate (`silu(gate) * up`), rotary positions, causal attention over the
//! rows of a packed batch ([`super::packed_attention`]), the rows' product
//! with a weight (`x W^T`, [`super::gemm`]), and the two loss terms over
//! the vocabulary (cross-entropy and the KL divergence of token-level
//! distillation).
//!
//! Under autodiff burn composes each of these from several elementwise
//! operations, which flex runs on one core, and keeps every intermediate
//! for the backward (a profile of `distill` had them as most of a step's
//! single-threaded time while the matmuls used both cores). Here each is one
//! pass forward and one pass backward over rows, split across cores with
//! rayon, through burn's backend-extension mechanism (a [`FusedOps`]
//! implementation for [`Flex`] and for `Autodiff<Flex>`).
//!
//! They run only where [`fused`] or [`fused_packed`] says so: f32 tensors
//! on flex, in training's packed forward and loss. Generation keeps burn's
//! own operations (its outputs are compared with llama.cpp token for
//! token) except for [`linear`], whose products are burn-flex's bit for bit;
//! the tests check that values and gradients agree with the composed
//! operations.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension,
};
use burn::nn::RmsNorm;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};
use multiversion::multiversion;
use rayon::prelude::*;

use super::gemm::{self, Strided};
use super::packed_attention::{self as attention, Heads, Probs};
use super::simd;

/// Elements per rayon task: small tensors stay on one thread.
const TASK_ELEMENTS: usize = 1 << 14;

/// The fused operations, as a burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// RMSNorm over the last dimension: `x / sqrt(mean(x^2) + eps) * gamma`.
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self>;
    /// `silu(gate) * up`, elementwise; both of the same shape.
    fn silu_mul(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Per row of `logits` (`[rows, vocab]`), `-log softmax(row)[target]`:
    /// `[rows]`. Targets are in range (the caller checks).
    fn nll_rows(logits: FloatTensor<Self>, targets: Vec<i64>) -> FloatTensor<Self>;
    /// Rotary positions, rotate-half layout: `x * cos + swap_halves(x) *
    /// sin_signed` with `x` `[batch, heads, seq, head_dim]` and the angles
    /// `[batch, 1, seq, head_dim]` (constants: no gradient flows to them).
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin_signed: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Per row, `KL(softmax(teacher / T) || softmax(student / T))` (natural
    /// log): `[rows]`. The teacher's logits are constants: no gradient flows
    /// to them.
    fn kl_rows(
        student: FloatTensor<Self>,
        teacher: FloatTensor<Self>,
        temperature: f64,
    ) -> FloatTensor<Self>;
    /// The sum of the squares of every element, a one-element tensor (a
    /// gradient's share of the global norm).
    fn sum_squares(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `x * factor`, elementwise.
    fn scale(x: FloatTensor<Self>, factor: f64) -> FloatTensor<Self>;
    /// Causal self-attention of the rows of a packed batch (each row's
    /// first token and length, one after the other from token 0), over
    /// token-major queries (`[tokens, heads * dim]`), keys and values
    /// (`[tokens, kv_heads * dim]`): the context, `[tokens, heads * dim]`.
    fn packed_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        rows: Vec<(usize, usize)>,
        shape: Heads,
    ) -> FloatTensor<Self>;
    /// `x W^T` for rows `x` (`[rows, in]`) and a weight in the checkpoint
    /// layout (`[out, in]`): `[rows, out]`. Its gradients come out in the
    /// operands' own layouts (`dW` as `[out, in]`), with no transpose copied.
    fn linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// One AdamW update of a parameter from its gradient and moments:
    /// returns the new parameter, first and second moments.
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The numbers of one AdamW update, in the order and precision burn's
/// `AdamW` uses them (f32 factors, the bias corrections `1 - beta^t`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// `beta_1`.
    pub beta_1: f32,
    /// `beta_2`.
    pub beta_2: f32,
    /// `1 - beta_1^t`.
    pub correction_1: f32,
    /// `1 - beta_2^t`.
    pub correction_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// `1 - lr * weight_decay`.
    pub decay: f32,
    /// The learning rate.
    pub lr: f32,
}

/// Whether the fused operations serve tensors on `device` of type `dtype`:
/// f32 on flex under autodiff.
pub(crate) fn fused(device: &Device, dtype: DType) -> bool {
    dtype == DType::F32 && device.is_autodiff() && *device == Device::flex()
}

/// Whether the packed forward of training (`forward_packed_hidden`, never
/// used to generate) takes the fused RMSNorm, SwiGLU gate, rotary positions
/// and attention, and whether products with a weight take [`linear`]: f32
/// on flex, with or without autodiff. Without it is the teacher's forward
/// in token-level distillation, whose logits are a training target (burn's
/// attention kernel spent its time in a scalar `expf` there).
pub(crate) fn fused_packed(device: &Device, dtype: DType) -> bool {
    dtype == DType::F32 && *device == Device::flex()
}

/// `norm` applied to `x` in the packed forward, fused where
/// [`fused_packed`] allows.
pub(crate) fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    if !fused_packed(&x.device(), x.dtype()) {
        return norm.forward(x);
    }
    let gamma = norm.gamma.val().into_dispatch();
    Tensor::from_dispatch(<Dispatch as FusedOps>::rms_norm(
        x.into_dispatch(),
        gamma,
        norm.epsilon,
    ))
}

/// `silu(gate) * up` (equal shapes), for tensors [`fused_packed`] accepts.
pub(crate) fn silu_mul<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    debug_assert_eq!(gate.dims(), up.dims());
    Tensor::from_dispatch(<Dispatch as FusedOps>::silu_mul(
        gate.into_dispatch(),
        up.into_dispatch(),
    ))
}

/// Per row of `logits` (`[rows, vocab]`), `-log softmax(row)[target]`, for
/// logits [`fused`] accepts and targets in `0..vocab`.
pub(crate) fn nll_rows(logits: Tensor<2>, targets: &[i64]) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::nll_rows(
        logits.into_dispatch(),
        targets.to_vec(),
    ))
}

/// Per row, `KL(softmax(teacher / T) || softmax(student / T))`, for logits
/// [`fused`] accepts; differentiable in `student` only.
pub(crate) fn kl_rows(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::kl_rows(
        student.into_dispatch(),
        teacher.detach().into_dispatch(),
        temperature,
    ))
}

/// `x * cos + swap_halves(x) * sin_signed` (see [`FusedOps::rope`]), for
/// tensors [`fused_packed`] accepts.
pub(crate) fn rope(x: Tensor<4>, cos: Tensor<4>, sin_signed: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::rope(
        x.into_dispatch(),
        cos.into_dispatch(),
        sin_signed.into_dispatch(),
    ))
}

/// Causal self-attention of packed rows (see [`FusedOps::packed_attention`])
/// for tensors [`fused_packed`] accepts.
pub(crate) fn packed_attention(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    rows: &[(usize, usize)],
    shape: Heads,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::packed_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        rows.to_vec(),
        shape,
    ))
}

/// `x W^T` (see [`FusedOps::linear`]) for tensors [`fused_packed`] accepts.
pub(crate) fn linear(x: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::linear(
        x.into_dispatch(),
        weight.into_dispatch(),
    ))
}

/// Whether [`sum_squares`], [`scale`] and [`adamw`] serve `t`: f32 on flex
/// outside autodiff (gradients and the optimizer's tensors).
pub(crate) fn fused_plain<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && !t.device().is_autodiff() && t.device() == Device::flex()
}

/// The sum of the squares of `x`'s elements, a one-element tensor, for
/// tensors [`fused_plain`] accepts.
pub(crate) fn sum_squares<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::sum_squares(x.into_dispatch()))
}

/// `x * factor`, for tensors [`fused_plain`] accepts.
pub(crate) fn scale<const D: usize>(x: Tensor<D>, factor: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::scale(x.into_dispatch(), factor))
}

/// One AdamW update (see [`FusedOps::adamw`]), for tensors [`fused_plain`]
/// accepts: `(param, moment_1, moment_2)`.
pub(crate) fn adamw<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <Dispatch as FusedOps>::adamw(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// The f32 values of `t` in row-major order (copied only when `t` is a
/// strided view).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("the fused operations are used on f32 tensors only")
                .to_vec(),
        ),
    }
}

/// `f` applied to the 2-D f32 tensor `t` as a [`Strided`] matrix: a view of
/// its own buffer, or of a contiguous copy when a stride is negative.
fn with_matrix<R>(t: &FlexTensor, f: impl FnOnce(Strided<'_>) -> R) -> R {
    let [rows, cols] = t.shape().dims::<2>();
    let layout = t.layout();
    match (layout.strides(), t.as_slice::<f32>()) {
        (_, Some(data)) => f(Strided::rows(data, rows, cols)),
        (&[row_stride, col_stride], None) if row_stride >= 0 && col_stride >= 0 => f(Strided {
            data: t.storage::<f32>(),
            offset: layout.start_offset(),
            rows,
            cols,
            row_stride: row_stride as usize,
            col_stride: col_stride as usize,
        }),
        _ => f(Strided::rows(&values(t), rows, cols)),
    }
}

/// [`attention::forward`] over flex tensors: the context and the
/// probabilities.
fn attention_forward(
    (q, k, v): (&FlexTensor, &FlexTensor, &FlexTensor),
    rows: &[(usize, usize)],
    shape: Heads,
) -> (FlexTensor, Probs) {
    let tokens = q.shape()[0];
    let (q, k, v) = (values(q), values(k), values(v));
    let (out, probs) = attention::forward((&q, &k, &v), rows, shape);
    let out = tensor(out, Shape::new([tokens, shape.heads * shape.dim]));
    (out, probs)
}

/// `x W^T` (`[rows, in]` times `[out, in]` transposed).
fn linear_forward(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let (rows, out) = (x.shape()[0], w.shape()[0]);
    let y = with_matrix(x, |x| with_matrix(w, |w| gemm::product(x, w.t())));
    tensor(y, Shape::new([rows, out]))
}

/// The gradients of [`linear_forward`] from that of its output, `dy`
/// (`[rows, out]`): `dx = dy W` and `dW = dy^T x`, each in its operand's
/// layout. Each is computed only when asked for.
fn linear_backward(
    x: Option<&FlexTensor>,
    w: Option<&FlexTensor>,
    dy: &FlexTensor,
) -> (Option<FlexTensor>, Option<FlexTensor>) {
    with_matrix(dy, |dy| {
        let dx = w.map(|w| {
            let dx = with_matrix(w, |w| gemm::product(dy, w));
            tensor(dx, Shape::new([dy.rows, w.shape()[1]]))
        });
        let dw = x.map(|x| {
            let dw = with_matrix(x, |x| gemm::product(dy.t(), x));
            tensor(dw, Shape::new([dy.cols, x.shape()[1]]))
        });
        (dx, dw)
    })
}

fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Last dimension of `shape` (1 for a scalar).
fn last_dim(shape: &Shape) -> usize {
    shape.as_slice().last().copied().unwrap_or(1).max(1)
}

/// Whole rows of `width` per rayon task.
fn chunk(width: usize) -> usize {
    width * (TASK_ELEMENTS / width).max(1)
}

/// `1 / (1 + e^-v)`, from `e^-|v|` so that it never overflows.
#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    let e = simd::exp(-v.abs());
    let s = 1.0 / (1.0 + e);
    if v >= 0.0 { s } else { e * s }
}

/// `1 / sqrt(mean(row^2) + eps)`.
#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let mean = simd::sum(row, |v| v * v) / row.len() as f32;
    1.0 / (mean + eps).sqrt()
}

// Each rayon task below runs one of the following functions, compiled once
// for the baseline target and once with AVX2 and FMA, chosen at run time
// (see src/llm/simd.rs).

/// RMSNorm of whole rows of `d`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn rms_norm_task(out: &mut [f32], x: &[f32], gamma: &[f32], d: usize, eps: f32) {
    for (out, x) in out.chunks_mut(d).zip(x.chunks(d)) {
        let inv = inv_rms(x, eps);
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(gamma) {
            *o = v * inv * g;
        }
    }
}

/// RMSNorm's backward over whole rows of `d`: writes `dx` and adds the rows'
/// part of `dgamma`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn rms_norm_backward_task(
    dx: &mut [f32],
    dgamma: &mut [f32],
    x: &[f32],
    grad: &[f32],
    gamma: &[f32],
    eps: f32,
) {
    let d = gamma.len();
    for ((dx, x), grad) in dx.chunks_mut(d).zip(x.chunks(d)).zip(grad.chunks(d)) {
        let inv = inv_rms(x, eps);
        let mean = inv * simd::sum3(x, grad, gamma, |v, g, w| g * w * v) / d as f32;
        let rows = dx.iter_mut().zip(x).zip(grad).zip(gamma);
        for ((((o, &v), &g), &w), dg) in rows.zip(dgamma.iter_mut()) {
            let h = v * inv;
            *o = inv * (g * w - h * mean);
            *dg += g * h;
        }
    }
}

/// `out = f(a)` elementwise.
#[multiversion(targets("x86_64+avx2+fma"))]
fn map_task<F: Fn(f32) -> f32>(out: &mut [f32], a: &[f32], f: F) {
    for (o, &a) in out.iter_mut().zip(a) {
        *o = f(a);
    }
}

/// `out = f(a, b)` elementwise.
#[multiversion(targets("x86_64+avx2+fma"))]
fn map2_task<F: Fn(f32, f32) -> f32>(out: &mut [f32], a: &[f32], b: &[f32], f: F) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = f(a, b);
    }
}

/// `out = f(a, b, c)` elementwise.
#[multiversion(targets("x86_64+avx2+fma"))]
fn map3_task<F: Fn(f32, f32, f32) -> f32>(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: F) {
    for (((o, &a), &b), &c) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = f(a, b, c);
    }
}

/// `max + ln(sum(exp(row * scale - max)))` of `row * scale` (`scale`
/// positive).
#[inline(always)]
fn log_sum_exp(row: &[f32], scale: f32) -> f32 {
    let max = simd::max(row) * scale;
    max + simd::sum(row, |v| simd::exp(v * scale - max)).ln()
}

/// [`log_sum_exp`] of one row.
#[multiversion(targets("x86_64+avx2+fma"))]
fn log_sum_exp_task(row: &[f32], scale: f32) -> f32 {
    log_sum_exp(row, scale)
}

/// Cross-entropy's backward of one row: `g * (softmax(row) - onehot(t))`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn nll_backward_task(out: &mut [f32], row: &[f32], target: usize, g: f32) {
    let lse = log_sum_exp(row, 1.0);
    for (o, &v) in out.iter_mut().zip(row) {
        *o = g * simd::exp(v - lse);
    }
    out[target] -= g;
}

/// `KL(softmax(t / T) || softmax(s / T))` of one row.
#[multiversion(targets("x86_64+avx2+fma"))]
fn kl_task(s: &[f32], t: &[f32], inv_t: f32) -> f32 {
    let (lse_s, lse_t) = (log_sum_exp(s, inv_t), log_sum_exp(t, inv_t));
    simd::sum2(s, t, |s, t| {
        let log_t = t * inv_t - lse_t;
        simd::exp(log_t) * (log_t - (s * inv_t - lse_s))
    })
}

/// The KL divergence's backward of one row: `g * (softmax(s / T) -
/// softmax(t / T)) / T`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn kl_backward_task(out: &mut [f32], s: &[f32], t: &[f32], inv_t: f32, g: f32) {
    let (lse_s, lse_t) = (log_sum_exp(s, inv_t), log_sum_exp(t, inv_t));
    let scale = g * inv_t;
    for ((o, &s), &t) in out.iter_mut().zip(s).zip(t) {
        *o = scale * (simd::exp(s * inv_t - lse_s) - simd::exp(t * inv_t - lse_t));
    }
}

/// Rotary positions of whole rows of `d` (see [`rope_rows`]), the first
/// being row `first_row` of `x`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn rope_task(
    out: &mut [f32],
    x: &[f32],
    (cos, sin): (&[f32], &[f32]),
    (first_row, heads, seq, d): (usize, usize, usize, usize),
    transpose: bool,
) {
    let half = d / 2;
    for (i, (out, x)) in out.chunks_mut(d).zip(x.chunks(d)).enumerate() {
        let row = first_row + i;
        // Row (b, h, s) of x uses angle row (b, s).
        let angle = (row / (heads * seq)) * seq + row % seq;
        let (c, s) = (
            &cos[angle * d..(angle + 1) * d],
            &sin[angle * d..(angle + 1) * d],
        );
        // Each half takes the other half of x, times the sines at its own
        // positions (forward) or at the other half's (the adjoint).
        for (lo, hi) in [(0, half), (half, 0)] {
            let sines = if transpose {
                &s[hi..hi + half]
            } else {
                &s[lo..lo + half]
            };
            let rotated = out[lo..lo + half]
                .iter_mut()
                .zip(&x[lo..lo + half])
                .zip(&c[lo..lo + half])
                .zip(&x[hi..hi + half])
                .zip(sines);
            for ((((o, &x), &c), &other), &s) in rotated {
                *o = x * c + other * s;
            }
        }
    }
}

/// `sum(x^2)`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn sum_squares_task(x: &[f32]) -> f32 {
    simd::sum(x, |v| v * v)
}

/// AdamW's update of a slice of parameters and their moments, in place.
#[multiversion(targets("x86_64+avx2+fma"))]
fn adamw_task((p, m, v): (&mut [f32], &mut [f32], &mut [f32]), g: &[f32], s: &AdamWStep) {
    let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
        *m = *m * s.beta_1 + g * f1;
        *v = *v * s.beta_2 + g * g * f2;
        let delta = (*m / s.correction_1) / ((*v / s.correction_2).sqrt() + s.epsilon);
        *p = *p * s.decay - delta * s.lr;
    }
}

fn rms_norm_forward(x: &FlexTensor, gamma: &FlexTensor, eps: f64) -> FlexTensor {
    let shape = x.shape();
    let d = last_dim(&shape);
    let (x, gamma) = (values(x), values(gamma));
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(chunk(d))
        .zip(x.par_chunks(chunk(d)))
        .for_each(|(out, x)| rms_norm_task(out, x, &gamma[..d], d, eps as f32));
    tensor(out, shape)
}

/// Gradients of RMSNorm with respect to `x` and `gamma` given the output's
/// gradient `grad`: with `h = x * inv` and `gg = grad * gamma`,
/// `dx = inv * (gg - h * mean(gg * h))` per row and `dgamma = sum over rows
/// of grad * h`.
fn rms_norm_backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    grad: &FlexTensor,
    eps: f64,
) -> (FlexTensor, FlexTensor) {
    let shape = x.shape();
    let gamma_shape = gamma.shape();
    let d = last_dim(&shape);
    let (x, gamma, grad) = (values(x), values(gamma), values(grad));
    let mut dx = vec![0.0f32; x.len()];
    let dgamma = dx
        .par_chunks_mut(chunk(d))
        .zip(x.par_chunks(chunk(d)))
        .zip(grad.par_chunks(chunk(d)))
        .map(|((dx, x), grad)| {
            let mut dgamma = vec![0.0f32; d];
            rms_norm_backward_task(dx, &mut dgamma, x, grad, &gamma[..d], eps as f32);
            dgamma
        })
        .reduce(
            || vec![0.0f32; d],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    (tensor(dx, shape), tensor(dgamma, gamma_shape))
}

/// Elementwise `f(a)` on every core.
fn map(a: &FlexTensor, f: impl Fn(f32) -> f32 + Sync) -> FlexTensor {
    let shape = a.shape();
    let a = values(a);
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(TASK_ELEMENTS)
        .zip(a.par_chunks(TASK_ELEMENTS))
        .for_each(|(out, a)| map_task(out, a, &f));
    tensor(out, shape)
}

/// Elementwise `f(a, b)` (or `f(a, b, c)`) over equal-shaped tensors, on
/// every core.
fn zip_map2(a: &FlexTensor, b: &FlexTensor, f: impl Fn(f32, f32) -> f32 + Sync) -> FlexTensor {
    let shape = a.shape();
    let (a, b) = (values(a), values(b));
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(TASK_ELEMENTS)
        .zip(a.par_chunks(TASK_ELEMENTS))
        .zip(b.par_chunks(TASK_ELEMENTS))
        .for_each(|((out, a), b)| map2_task(out, a, b, &f));
    tensor(out, shape)
}

fn zip_map3(
    a: &FlexTensor,
    b: &FlexTensor,
    c: &FlexTensor,
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) -> FlexTensor {
    let shape = a.shape();
    let (a, b, c) = (values(a), values(b), values(c));
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(TASK_ELEMENTS)
        .zip(a.par_chunks(TASK_ELEMENTS))
        .zip(b.par_chunks(TASK_ELEMENTS))
        .zip(c.par_chunks(TASK_ELEMENTS))
        .for_each(|(((out, a), b), c)| map3_task(out, a, b, c, &f));
    tensor(out, shape)
}

/// Rows of `[rows, vocab]` logits, one rayon task per row.
fn rows_of(t: &FlexTensor) -> (std::borrow::Cow<'_, [f32]>, usize) {
    let shape = t.shape();
    (values(t), last_dim(&shape))
}

fn nll_forward(logits: &FlexTensor, targets: &[i64]) -> FlexTensor {
    let (x, vocab) = rows_of(logits);
    let losses: Vec<f32> = x
        .par_chunks(vocab)
        .zip(targets.par_iter())
        .map(|(row, &t)| log_sum_exp_task(row, 1.0) - row[t as usize])
        .collect();
    let n = losses.len();
    tensor(losses, Shape::new([n]))
}

/// `dlogits[r] = grad[r] * (softmax(row) - onehot(target))`.
fn nll_backward(logits: &FlexTensor, targets: &[i64], grad: &FlexTensor) -> FlexTensor {
    let shape = logits.shape();
    let (x, vocab) = rows_of(logits);
    let grad = values(grad);
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(vocab)
        .zip(x.par_chunks(vocab))
        .zip(targets.par_iter().zip(grad.par_iter()))
        .for_each(|((out, row), (&t, &g))| nll_backward_task(out, row, t as usize, g));
    tensor(out, shape)
}

fn kl_forward(student: &FlexTensor, teacher: &FlexTensor, temperature: f64) -> FlexTensor {
    let (s, vocab) = rows_of(student);
    let t = values(teacher);
    let inv_t = 1.0 / temperature as f32;
    let kl: Vec<f32> = s
        .par_chunks(vocab)
        .zip(t.par_chunks(vocab))
        .map(|(s, t)| kl_task(s, t, inv_t))
        .collect();
    let n = kl.len();
    tensor(kl, Shape::new([n]))
}

/// `dstudent[r] = grad[r] * (softmax(s / T) - softmax(t / T)) / T`.
fn kl_backward(
    student: &FlexTensor,
    teacher: &FlexTensor,
    temperature: f64,
    grad: &FlexTensor,
) -> FlexTensor {
    let shape = student.shape();
    let (s, vocab) = rows_of(student);
    let t = values(teacher);
    let grad = values(grad);
    let inv_t = 1.0 / temperature as f32;
    let mut out = vec![0.0f32; s.len()];
    out.par_chunks_mut(vocab)
        .zip(s.par_chunks(vocab).zip(t.par_chunks(vocab)))
        .zip(grad.par_iter())
        .for_each(|((out, (s, t)), &g)| kl_backward_task(out, s, t, inv_t, g));
    tensor(out, shape)
}

/// `out = x * cos + swap_halves(x) * sin` per `head_dim` row of `x`
/// (`[batch, heads, seq, d]`), the angles `[batch, 1, seq, d]` shared by the
/// heads. With `transpose`, the adjoint: `out = x * cos + swap_halves(x *
/// sin)` (swapping the halves is its own inverse), the gradient of the
/// forward.
fn rope_rows(x: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor, transpose: bool) -> FlexTensor {
    let shape = x.shape();
    let [_, heads, seq, d] = shape.dims::<4>();
    let (x, cos, sin) = (values(x), values(cos), values(sin));
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(chunk(d))
        .zip(x.par_chunks(chunk(d)))
        .enumerate()
        .for_each(|(task, (out, x))| {
            let first_row = task * (chunk(d) / d);
            rope_task(out, x, (&cos, &sin), (first_row, heads, seq, d), transpose)
        });
    tensor(out, shape)
}

fn sum_squares_flex(x: &FlexTensor) -> FlexTensor {
    let x = values(x);
    let sum: f64 = x
        .par_chunks(TASK_ELEMENTS)
        .map(|c| f64::from(sum_squares_task(c)))
        .sum();
    tensor(vec![sum as f32], Shape::new([1]))
}

/// One AdamW update. A parameter or moment that is a contiguous tensor of
/// its own (as the optimizer's are) is updated in its own buffer; any other
/// is copied first.
fn adamw_flex(
    param: FlexTensor,
    grad: &FlexTensor,
    moment_1: FlexTensor,
    moment_2: FlexTensor,
    s: AdamWStep,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (mut p, mut m, mut v) = (owned(param), owned(moment_1), owned(moment_2));
    let g = values(grad);
    let (ps, ms, vs) = (
        f32_storage(&mut p),
        f32_storage(&mut m),
        f32_storage(&mut v),
    );
    ps.par_chunks_mut(TASK_ELEMENTS)
        .zip(ms.par_chunks_mut(TASK_ELEMENTS))
        .zip(vs.par_chunks_mut(TASK_ELEMENTS))
        .zip(g.par_chunks(TASK_ELEMENTS))
        .for_each(|(((p, m), v), g)| adamw_task((p, m, v), g, &s));
    (p, m, v)
}

/// `t` as a contiguous f32 tensor whose buffer it alone owns: `t` itself
/// when it is one, else a copy.
fn owned(t: FlexTensor) -> FlexTensor {
    let n = t.shape().num_elements();
    let whole = t.layout().contiguous_offsets() == Some((0, n)) && t.bytes().len() == 4 * n;
    match t.is_unique() && whole && t.dtype() == DType::F32 {
        true => t,
        false => tensor(values(&t).into_owned(), t.shape()),
    }
}

/// The f32 buffer of a tensor made by [`owned`].
fn f32_storage(t: &mut FlexTensor) -> &mut [f32] {
    t.try_storage_mut::<f32>()
        .expect("owned() returns tensors that own their buffer")
}

impl FusedOps for Flex {
    fn rms_norm(x: FlexTensor, gamma: FlexTensor, eps: f64) -> FlexTensor {
        rms_norm_forward(&x, &gamma, eps)
    }

    fn silu_mul(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        zip_map2(&gate, &up, |g, u| g * sigmoid(g) * u)
    }

    fn nll_rows(logits: FlexTensor, targets: Vec<i64>) -> FlexTensor {
        nll_forward(&logits, &targets)
    }

    fn rope(x: FlexTensor, cos: FlexTensor, sin_signed: FlexTensor) -> FlexTensor {
        rope_rows(&x, &cos, &sin_signed, false)
    }

    fn kl_rows(student: FlexTensor, teacher: FlexTensor, temperature: f64) -> FlexTensor {
        kl_forward(&student, &teacher, temperature)
    }

    fn sum_squares(x: FlexTensor) -> FlexTensor {
        sum_squares_flex(&x)
    }

    fn scale(x: FlexTensor, factor: f64) -> FlexTensor {
        let factor = factor as f32;
        map(&x, |v| v * factor)
    }

    fn packed_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        rows: Vec<(usize, usize)>,
        shape: Heads,
    ) -> FlexTensor {
        attention_forward((&q, &k, &v), &rows, shape).0
    }

    fn linear(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        linear_forward(&x, &weight)
    }

    fn adamw(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        adamw_flex(param, &grad, moment_1, moment_2, step)
    }
}

/// The backward of an operation whose first input alone is differentiable
/// (the others are constants): `first(state, grad)` is its gradient.
fn backward_first<S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    first: impl FnOnce(S, &FlexTensor) -> FlexTensor,
) {
    let Ops {
        parents,
        node,
        state,
    } = ops;
    let grad = grads.consume::<Flex>(&node);
    if let Some(parent) = &parents[0] {
        grads.register::<Flex>(parent.id, first(state, &grad));
    }
}

#[derive(Debug)]
struct RmsNormBackward;

impl Backward<Flex, 2> for RmsNormBackward {
    /// The input, gamma and epsilon.
    type State = (FlexTensor, FlexTensor, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, gamma, eps) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let [x_node, gamma_node] = ops.parents;
        let (dx, dgamma) = rms_norm_backward(&x, &gamma, &grad, eps);
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, dgamma);
        }
    }
}

#[derive(Debug)]
struct SiluMulBackward;

impl Backward<Flex, 2> for SiluMulBackward {
    /// `gate` and `up`.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (gate, up) = ops.state;
        binary::<Flex, _, _>(
            ops.parents,
            ops.node,
            grads,
            // d/dg [g s(g)] = s(g) (1 + g (1 - s(g))).
            |grad| {
                zip_map3(&grad, &gate, &up, |d, g, u| {
                    let s = sigmoid(g);
                    d * u * s * (1.0 + g * (1.0 - s))
                })
            },
            |grad| zip_map2(&grad, &gate, |d, g| d * g * sigmoid(g)),
        );
    }
}

#[derive(Debug)]
struct NllBackward;

impl Backward<Flex, 1> for NllBackward {
    /// The logits and the targets.
    type State = (FlexTensor, std::sync::Arc<Vec<i64>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_first(ops, grads, |(logits, targets), grad| {
            nll_backward(&logits, &targets, grad)
        });
    }
}

#[derive(Debug)]
struct RopeBackward;

impl Backward<Flex, 3> for RopeBackward {
    /// The angles: cos and signed sin.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_first(ops, grads, |(cos, sin), grad| {
            rope_rows(grad, &cos, &sin, true)
        });
    }
}

#[derive(Debug)]
struct PackedAttentionBackward;

impl Backward<Flex, 3> for PackedAttentionBackward {
    /// The queries, keys and values, the probabilities, the rows and the
    /// heads.
    type State = (
        [FlexTensor; 3],
        Probs,
        std::sync::Arc<Vec<(usize, usize)>>,
        Heads,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([q, k, v], probs, rows, shape) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let (qv, kv, vv, g) = (values(&q), values(&k), values(&v), values(&grad));
        let (dq, dk, dv) = attention::backward((&qv, &kv, &vv), &probs, &g, &rows, shape);
        for ((parent, d), like) in ops.parents.into_iter().zip([dq, dk, dv]).zip([&q, &k, &v]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, tensor(d, like.shape()));
            }
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 2> for LinearBackward {
    /// The rows `x` when the weight needs a gradient, the weight when `x`
    /// does.
    type State = (Option<FlexTensor>, Option<FlexTensor>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let [x_node, w_node] = ops.parents;
        let (dx, dw) = linear_backward(x.as_ref(), w.as_ref(), &grad);
        if let (Some(node), Some(dx)) = (x_node, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let (Some(node), Some(dw)) = (w_node, dw) {
            grads.register::<Flex>(node.id, dw);
        }
    }
}

#[derive(Debug)]
struct KlBackward;

impl Backward<Flex, 2> for KlBackward {
    /// The student's and the teacher's logits and the temperature.
    type State = (FlexTensor, FlexTensor, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_first(ops, grads, |(student, teacher, temperature), grad| {
            kl_backward(&student, &teacher, temperature, grad)
        });
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        match RmsNormBackward
            .prepare::<C>([x.node(), gamma.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let out = rms_norm_forward(&x, &gamma, eps);
                prep.finish((x, gamma, eps), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(rms_norm_forward(x.primitive(), gamma.primitive(), eps))
            }
        }
    }

    fn silu_mul(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        match SiluMulBackward
            .prepare::<C>([gate.node(), up.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (gate, up) = (gate.into_primitive(), up.into_primitive());
                let out = <Flex as FusedOps>::silu_mul(gate.clone(), up.clone());
                prep.finish((gate, up), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as FusedOps>::silu_mul(
                gate.into_primitive(),
                up.into_primitive(),
            )),
        }
    }

    fn nll_rows(logits: FloatTensor<Self>, targets: Vec<i64>) -> FloatTensor<Self> {
        match NllBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let logits = logits.into_primitive();
                let out = nll_forward(&logits, &targets);
                prep.finish((logits, std::sync::Arc::new(targets)), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(nll_forward(logits.primitive(), &targets)),
        }
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin_signed: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match RopeBackward
            .prepare::<C>([x.node(), cos.node(), sin_signed.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (cos, sin) = (cos.into_primitive(), sin_signed.into_primitive());
                let out = rope_rows(x.primitive(), &cos, &sin, false);
                prep.finish((cos, sin), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(rope_rows(
                x.primitive(),
                cos.primitive(),
                sin_signed.primitive(),
                false,
            )),
        }
    }

    fn packed_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        rows: Vec<(usize, usize)>,
        shape: Heads,
    ) -> FloatTensor<Self> {
        match PackedAttentionBackward
            .prepare::<C>([q.node(), k.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                let (out, probs) = attention_forward((&q, &k, &v), &rows, shape);
                prep.finish(([q, k, v], probs, std::sync::Arc::new(rows), shape), out)
            }
            OpsKind::UnTracked(prep) => {
                let qkv = (q.primitive(), k.primitive(), v.primitive());
                prep.finish(attention_forward(qkv, &rows, shape).0)
            }
        }
    }

    fn linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x_tracked, w_tracked) = (x.is_tracked(), weight.is_tracked());
        match LinearBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.into_primitive(), weight.into_primitive());
                let out = linear_forward(&x, &w);
                prep.finish((w_tracked.then_some(x), x_tracked.then_some(w)), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(linear_forward(x.primitive(), weight.primitive()))
            }
        }
    }

    /// Not differentiable: the gradient tensors it serves live outside
    /// autodiff ([`fused_plain`]); here the result is a constant.
    fn sum_squares(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Autodiff::<Flex, C>::from_inner(sum_squares_flex(&Autodiff::<Flex, C>::inner(x)))
    }

    /// Not differentiable (see [`FusedOps::sum_squares`] here).
    fn scale(x: FloatTensor<Self>, factor: f64) -> FloatTensor<Self> {
        let x = Autodiff::<Flex, C>::inner(x);
        Autodiff::<Flex, C>::from_inner(<Flex as FusedOps>::scale(x, factor))
    }

    /// Not differentiable (see [`FusedOps::sum_squares`] here).
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let inner = Autodiff::<Flex, C>::inner;
        let (p, m, v) = adamw_flex(
            inner(param),
            &inner(grad),
            inner(moment_1),
            inner(moment_2),
            step,
        );
        let outer = Autodiff::<Flex, C>::from_inner;
        (outer(p), outer(m), outer(v))
    }

    fn kl_rows(
        student: FloatTensor<Self>,
        teacher: FloatTensor<Self>,
        temperature: f64,
    ) -> FloatTensor<Self> {
        match KlBackward
            .prepare::<C>([student.node(), teacher.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (student, teacher) = (student.into_primitive(), teacher.into_primitive());
                let out = kl_forward(&student, &teacher, temperature);
                prep.finish((student, teacher, temperature), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(kl_forward(
                student.primitive(),
                teacher.primitive(),
                temperature,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::activation;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
        random_scaled(shape, seed, 1.0)
    }

    /// A leaf of `N(0, std^2)` values that requires gradients.
    fn random_scaled<const D: usize>(shape: [usize; D], seed: u64, std: f64) -> Tensor<D> {
        let device = device();
        device.seed(seed);
        Tensor::random(shape, Distribution::Normal(0.0, std), &device).require_grad()
    }

    fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
        let (a, b) = (a.into_data(), b.into_data());
        let (a, b) = (a.iter::<f32>(), b.iter::<f32>());
        for (i, (x, y)) in a.zip(b).enumerate() {
            let tol = 1e-5 + 1e-4 * y.abs();
            assert!(
                (x - y).abs() <= tol,
                "{what}[{i}]: fused {x} vs composed {y}"
            );
        }
    }

    #[test]
    fn the_fused_path_is_taken_on_flex_autodiff_only() {
        assert!(fused(&device(), DType::F32));
        assert!(!fused(&Device::flex(), DType::F32));
        assert!(!fused(&device(), DType::F16));
        // The packed forward also without autodiff, on flex f32 only.
        assert!(fused_packed(&device(), DType::F32));
        assert!(fused_packed(&Device::flex(), DType::F32));
        assert!(!fused_packed(&Device::flex(), DType::F16));
        assert!(!fused_packed(
            &crate::llm::Backend::NdArray.device(),
            DType::F32
        ));
    }

    #[test]
    fn rms_norm_matches_burns_values_and_gradients() {
        let device = device();
        let norm = burn::nn::RmsNormConfig::new(8)
            .with_epsilon(1e-5)
            .init(&device);
        let norm = RmsNorm {
            gamma: burn::module::Param::from_tensor(random([8], 7)),
            ..norm
        };
        let x = random([3, 5, 8], 1);
        let weights = random([3, 5, 8], 2).detach();

        let fused_out = rms_norm(&norm, x.clone());
        let composed = norm.forward(x.clone());
        assert_close(fused_out.clone(), composed.clone(), "rms_norm");

        let grads_f = (fused_out * weights.clone()).sum().backward();
        let grads_c = (composed * weights).sum().backward();
        let gamma = norm.gamma.val();
        assert_close(x.grad(&grads_f).unwrap(), x.grad(&grads_c).unwrap(), "dx");
        assert_close(
            gamma.grad(&grads_f).unwrap(),
            gamma.grad(&grads_c).unwrap(),
            "dgamma",
        );
    }

    #[test]
    fn linear_matches_burns_product_values_and_gradients() {
        // Above and below the size where gemm splits over threads; x also as
        // a transposed view; the weight also as a constant (the teacher's).
        for (rows, inp, out) in [(70, 24, 40), (300, 288, 96)] {
            let x = random([rows, inp], 11);
            let w = random([out, inp], 12);
            let weights = random([rows, out], 13).detach();
            let fused_out = linear(x.clone(), w.clone());
            let composed = x.clone().matmul(w.clone().transpose());
            let bits = |t: Tensor<2>| -> Vec<u32> {
                t.into_data().iter::<f32>().map(f32::to_bits).collect()
            };
            assert_eq!(bits(fused_out.clone()), bits(composed.clone()), "x W^T");
            let grads_f = (fused_out * weights.clone()).sum().backward();
            let grads_c = (composed * weights.clone()).sum().backward();
            assert_close(x.grad(&grads_f).unwrap(), x.grad(&grads_c).unwrap(), "dx");
            assert_close(w.grad(&grads_f).unwrap(), w.grad(&grads_c).unwrap(), "dW");

            let xt = random([inp, rows], 14);
            let grads_f = (linear(xt.clone().transpose(), w.clone().detach()) * weights.clone())
                .sum()
                .backward();
            let grads_c = (xt
                .clone()
                .transpose()
                .matmul(w.clone().detach().transpose())
                * weights)
                .sum()
                .backward();
            let dxt = (xt.grad(&grads_f).unwrap(), xt.grad(&grads_c).unwrap());
            assert_close(dxt.0, dxt.1, "d(x^T)");
        }
    }

    #[test]
    fn silu_mul_matches_burns_values_and_gradients() {
        let gate = random([4, 70_000], 3);
        let up = random([4, 70_000], 4);
        let weights = random([4, 70_000], 5).detach();
        let fused_out = silu_mul(gate.clone(), up.clone());
        let composed = activation::silu(gate.clone()) * up.clone();
        assert_close(fused_out.clone(), composed.clone(), "silu_mul");
        let grads_f = (fused_out * weights.clone()).sum().backward();
        let grads_c = (composed * weights).sum().backward();
        let dg = (gate.grad(&grads_f).unwrap(), gate.grad(&grads_c).unwrap());
        assert_close(dg.0, dg.1, "dgate");
        let du = (up.grad(&grads_f).unwrap(), up.grad(&grads_c).unwrap());
        assert_close(du.0, du.1, "dup");
    }

    /// Causal attention of each packed row from burn's own operations:
    /// per row, the key/value heads repeated over their query heads, the
    /// masked softmax and the product with the values.
    fn composed_attention(
        (q, k, v): (Tensor<2>, Tensor<2>, Tensor<2>),
        rows: &[(usize, usize)],
        shape: Heads,
    ) -> Tensor<2> {
        let (heads, kv_heads, dim, scale) = (shape.heads, shape.kv_heads, shape.dim, shape.scale);
        let groups = heads / kv_heads;
        let per_head = |t: &Tensor<2>, n: usize, (start, len): (usize, usize)| {
            let t = t.clone().slice([start..start + len, 0..n * dim]);
            t.reshape([len, n, dim]).swap_dims(0, 1)
        };
        let repeated = |t: Tensor<3>, len: usize| {
            t.unsqueeze_dim::<4>(1)
                .expand([kv_heads, groups, len, dim])
                .reshape([heads, len, dim])
        };
        let contexts = rows
            .iter()
            .map(|&row| {
                let len = row.1;
                let q = per_head(&q, heads, row);
                let k = repeated(per_head(&k, kv_heads, row), len);
                let v = repeated(per_head(&v, kv_heads, row), len);
                let mask: Vec<bool> = (0..len)
                    .flat_map(|i| (0..len).map(move |j| j > i))
                    .collect();
                let mask = Tensor::<3, burn::tensor::Bool>::from_data(
                    TensorData::new(mask, [1, len, len]),
                    &q.device(),
                )
                .expand([heads, len, len]);
                let scores = q.matmul(k.swap_dims(1, 2)) * f64::from(scale);
                let p = activation::softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 2);
                p.matmul(v).swap_dims(0, 1).reshape([len, heads * dim])
            })
            .collect();
        Tensor::cat(contexts, 0)
    }

    #[test]
    fn packed_attention_matches_masked_softmax_values_and_gradients() {
        // Rows of several query blocks with a remainder, shorter than one
        // block, and exactly two blocks; 3 query heads per key/value head.
        let rows = [(0, 150), (150, 5), (155, 128), (283, 1)];
        let (tokens, heads, kv_heads, dim) = (284, 6, 2, 8);
        let shape = Heads {
            heads,
            kv_heads,
            dim,
            scale: 0.35,
        };
        let q = random([tokens, heads * dim], 21);
        let k = random([tokens, kv_heads * dim], 22);
        let v = random([tokens, kv_heads * dim], 23);
        let weights = random([tokens, heads * dim], 24).detach();

        let fused_out = packed_attention(q.clone(), k.clone(), v.clone(), &rows, shape);
        let composed = composed_attention((q.clone(), k.clone(), v.clone()), &rows, shape);
        assert_close(fused_out.clone(), composed.clone(), "context");
        let grads_f = (fused_out * weights.clone()).sum().backward();
        let grads_c = (composed * weights).sum().backward();
        for (t, what) in [(&q, "dq"), (&k, "dk"), (&v, "dv")] {
            assert_close(t.grad(&grads_f).unwrap(), t.grad(&grads_c).unwrap(), what);
        }

        // Without autodiff (the teacher's forward), the same values.
        let plain = |t: &Tensor<2>| {
            let data = t.clone().detach().into_data();
            Tensor::<2>::from_data(data, &Device::flex())
        };
        let (qp, kp, vp) = (plain(&q), plain(&k), plain(&v));
        let fused_plain_out = packed_attention(qp, kp, vp, &rows, shape);
        let composed = composed_attention((q, k, v), &rows, shape);
        assert_close(
            fused_plain_out,
            plain(&composed),
            "context without autodiff",
        );
    }

    #[test]
    fn nll_and_kl_match_log_softmax_values_and_gradients() {
        let (rows, vocab) = (6, 3000);
        let logits = random_scaled([rows, vocab], 10, 4.0);
        let teacher = random_scaled([rows, vocab], 11, 4.0).detach();
        let targets: Vec<i64> = vec![0, 2999, 17, 1500, 3, 42];
        let idx = Tensor::<2, burn::tensor::Int>::from_data(
            TensorData::new(targets.clone(), [rows, 1]),
            &device(),
        );
        let weights = random([rows], 12).detach();

        let fused_nll = nll_rows(logits.clone(), &targets);
        let composed_nll = activation::log_softmax(logits.clone(), 1)
            .gather(1, idx)
            .reshape([rows])
            .neg();
        assert_close(fused_nll.clone(), composed_nll.clone(), "nll");
        let grads_f = (fused_nll * weights.clone()).sum().backward();
        let grads_c = (composed_nll * weights.clone()).sum().backward();
        let dl = (
            logits.grad(&grads_f).unwrap(),
            logits.grad(&grads_c).unwrap(),
        );
        assert_close(dl.0, dl.1, "dlogits (nll)");

        let t = 2.0;
        let fused_kl = kl_rows(logits.clone(), teacher.clone(), t);
        let log_t = activation::log_softmax(teacher.div_scalar(t), 1);
        let log_s = activation::log_softmax(logits.clone().div_scalar(t), 1);
        let composed_kl = (log_t.clone().exp() * (log_t - log_s))
            .sum_dim(1)
            .reshape([rows]);
        assert_close(fused_kl.clone(), composed_kl.clone(), "kl");
        let grads_f = (fused_kl * weights.clone()).sum().backward();
        let grads_c = (composed_kl * weights).sum().backward();
        let dl = (
            logits.grad(&grads_f).unwrap(),
            logits.grad(&grads_c).unwrap(),
        );
        assert_close(dl.0, dl.1, "dlogits (kl)");
    }

    #[test]
    fn rope_matches_the_composed_rotation_values_and_gradients() {
        use crate::llm::rope::RopeAngles;
        // Two rows of 3 positions, 4 heads of 8 dims, as a strided view (the
        // layout attention passes).
        let (batch, seq, heads, d) = (2, 3, 4, 8);
        let positions = [0, 1, 2, 5, 6, 7];
        let angles = RopeAngles::new(
            &positions,
            batch,
            seq,
            &crate::llm::rope::inverse_frequencies(d, 10_000.0),
            &device(),
        );
        let x = random([batch, seq, heads, d], 13);
        let weights = random([batch, heads, seq, d], 14).detach();
        let fused_out = angles.apply(x.clone().swap_dims(1, 2));
        let composed = angles.apply_composed(x.clone().swap_dims(1, 2));
        assert_close(fused_out.clone(), composed.clone(), "rope");
        let grads_f = (fused_out * weights.clone()).sum().backward();
        let grads_c = (composed * weights).sum().backward();
        assert_close(x.grad(&grads_f).unwrap(), x.grad(&grads_c).unwrap(), "dx");
    }
}
