//! Causal self-attention over the rows of a packed batch in f32, forward
//! and backward, for the fused training path ([`super::fused`]).
//!
//! The queries, keys and values stay in the projections' token-major
//! layout (`[tokens, heads * head_dim]`): each (row, head) pair reads its
//! matrices through strides, so nothing is transposed, sliced or
//! concatenated into new tensors (burn's per-row slices, reshapes and
//! `cat` had been single-threaded copies on the main thread). The pairs
//! run as parallel tasks, each product on its task's thread. Queries go in
//! blocks of [`BLOCK`]: a block's scores are computed against the keys up
//! to its last query only, so the masked half of the causal square is
//! mostly never multiplied (about 56% of the full products' work for a
//! 512-token row).

use multiversion::multiversion;
use rayon::prelude::*;

use super::gemm::{self, Strided};
use super::simd;

/// Queries per block of the causal products.
const BLOCK: usize = 64;

/// The shape of one attention layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heads {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (dividing `heads`).
    pub kv_heads: usize,
    /// Channels per head.
    pub dim: usize,
    /// The factor on the scores (`1 / sqrt(dim)`).
    pub scale: f32,
}

impl Heads {
    /// Query heads per key/value head.
    fn groups(&self) -> usize {
        self.heads / self.kv_heads.max(1)
    }
}

/// The attention probabilities of every (row, head) pair, row-major over
/// the pairs; each pair's blocks one after the other, block `[a, b)` of a
/// row of `len` tokens being `[b - a, b]` (its queries against the keys up
/// to `b`).
#[derive(Debug, Clone)]
pub(crate) struct Probs(Vec<Vec<f32>>);

/// The query blocks `[a, b)` of a row of `len` tokens.
fn blocks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .step_by(BLOCK)
        .map(move |a| (a, (a + BLOCK).min(len)))
}

/// Head `h`'s `[len, dim]` matrix of the row starting at token `start`, in
/// a token-major `[tokens, heads * dim]` buffer.
fn head(
    data: &[f32],
    heads: usize,
    dim: usize,
    (start, len): (usize, usize),
    h: usize,
) -> Strided<'_> {
    Strided {
        data,
        offset: start * heads * dim + h * dim,
        rows: len,
        cols: dim,
        row_stride: heads * dim,
        col_stride: 1,
    }
}

/// Softmax of `scale * s` over each row's first `a + i + 1` keys (query
/// `a + i` of the row sees keys `0..=a + i`), written to `p` (`[rows,
/// width]`, left 0 past those keys).
#[multiversion(targets("x86_64+avx2+fma"))]
fn causal_softmax_block(p: &mut [f32], s: &[f32], width: usize, a: usize, scale: f32) {
    for (i, (p, s)) in p.chunks_mut(width).zip(s.chunks(width)).enumerate() {
        let seen = a + i + 1;
        let (p, s) = (&mut p[..seen], &s[..seen]);
        // The scale is positive: the largest scaled score is the largest
        // score scaled.
        let max = simd::max(s) * scale;
        for (o, &v) in p.iter_mut().zip(s) {
            *o = simd::exp(v * scale - max);
        }
        let inv = 1.0 / simd::sum(p, |x| x);
        p.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The softmax's backward in place: `dp` becomes `scale * p * (dp - sum(dp
/// * p))` per row (0 wherever `p` is).
#[multiversion(targets("x86_64+avx2+fma"))]
fn softmax_backward_block(dp: &mut [f32], p: &[f32], width: usize, a: usize, scale: f32) {
    for (i, (d, p)) in dp.chunks_mut(width).zip(p.chunks(width)).enumerate() {
        let seen = a + i + 1;
        let dot = simd::sum2(&p[..seen], &d[..seen], |p, g| p * g);
        for (d, &p) in d[..seen].iter_mut().zip(&p[..seen]) {
            *d = scale * p * (*d - dot);
        }
        d[seen..].iter_mut().for_each(|d| *d = 0.0);
    }
}

/// One (row, head) pair's forward: its `[len, dim]` context and its
/// probabilities.
fn pair_forward(
    q: Strided<'_>,
    k: Strided<'_>,
    v: Strided<'_>,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (len, dim) = (q.rows, q.cols);
    let mut context = Vec::with_capacity(len * dim);
    let mut probs = Vec::new();
    for (a, b) in blocks(len) {
        let scores = gemm::product_here(q.sub_rows(a..b), k.sub_rows(0..b).t());
        let start = probs.len();
        probs.resize(start + (b - a) * b, 0.0);
        causal_softmax_block(&mut probs[start..], &scores, b, a, scale);
        let p = Strided::rows(&probs[start..], b - a, b);
        context.extend(gemm::product_here(p, v.sub_rows(0..b)));
    }
    (context, probs)
}

/// Writes each (row, head) pair's `[len, dim]` block (`blocks[r * heads +
/// h]`) into a token-major `[tokens, heads * dim]` buffer.
fn scatter(blocks: &[Vec<f32>], rows: &[(usize, usize)], heads: usize, dim: usize) -> Vec<f32> {
    let tokens = rows.last().map_or(0, |&(start, len)| start + len);
    let mut out = vec![0.0f32; tokens * heads * dim];
    out.par_chunks_mut(heads * dim)
        .enumerate()
        .for_each(|(t, out)| {
            let r = rows.partition_point(|&(start, _)| start <= t) - 1;
            let i = t - rows[r].0;
            for (h, out) in out.chunks_mut(dim).enumerate() {
                out.copy_from_slice(&blocks[r * heads + h][i * dim..(i + 1) * dim]);
            }
        });
    out
}

/// Causal attention of every packed row (`rows`: first token and length,
/// one after the other from token 0) over token-major `q` (`[tokens, heads
/// * dim]`), `k` and `v` (`[tokens, kv_heads * dim]`): the context,
/// `[tokens, heads * dim]`, and the probabilities [`backward`] takes.
pub(crate) fn forward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    rows: &[(usize, usize)],
    shape: Heads,
) -> (Vec<f32>, Probs) {
    let (heads, kv_heads, dim, groups) = (shape.heads, shape.kv_heads, shape.dim, shape.groups());
    let (contexts, probs): (Vec<_>, Vec<_>) = (0..rows.len() * heads)
        .into_par_iter()
        .map(|pair| {
            let (row, h) = (rows[pair / heads], pair % heads);
            pair_forward(
                head(q, heads, dim, row, h),
                head(k, kv_heads, dim, row, h / groups),
                head(v, kv_heads, dim, row, h / groups),
                shape.scale,
            )
        })
        .unzip();
    (scatter(&contexts, rows, heads, dim), Probs(probs))
}

/// One query head's backward over one row: its `dq` (`[len, dim]`), and
/// its share of `dk` and `dv` added to theirs. `p` is the head's
/// probabilities as [`pair_forward`] made them, `dout` the gradient of its
/// context.
fn head_backward(
    (q, k, v): (Strided<'_>, Strided<'_>, Strided<'_>),
    p: &[f32],
    dout: Strided<'_>,
    scale: f32,
    (dk, dv): (&mut [f32], &mut [f32]),
) -> Vec<f32> {
    let mut dq = Vec::with_capacity(q.rows * q.cols);
    let mut at = 0;
    for (a, b) in blocks(q.rows) {
        let p_block = &p[at..at + (b - a) * b];
        at += p_block.len();
        let p = Strided::rows(p_block, b - a, b);
        let dout = dout.sub_rows(a..b);
        // dv += p^T dout; dp = dout v^T, then the softmax's backward
        // (ds); dq = ds k; dk += ds^T q.
        gemm::add_product(dv, p.t(), dout);
        let mut ds = gemm::product_here(dout, v.sub_rows(0..b).t());
        softmax_backward_block(&mut ds, p_block, b, a, scale);
        let ds = Strided::rows(&ds, b - a, b);
        dq.extend(gemm::product_here(ds, k.sub_rows(0..b)));
        gemm::add_product(dk, ds.t(), q.sub_rows(a..b));
    }
    dq
}

/// The gradients of [`forward`] from that of its output (`grad`, token-major
/// like the context) and its probabilities: `(dq, dk, dv)` in the layouts
/// of `q`, `k` and `v`. One task per (row, key/value head) pair, which sums
/// the `dk` and `dv` of the query heads it serves.
pub(crate) fn backward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &Probs,
    grad: &[f32],
    rows: &[(usize, usize)],
    shape: Heads,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (heads, kv_heads, dim, groups) = (shape.heads, shape.kv_heads, shape.dim, shape.groups());
    let (dq, (dk, dv)): (Vec<Vec<Vec<f32>>>, (Vec<_>, Vec<_>)) = (0..rows.len() * kv_heads)
        .into_par_iter()
        .map(|pair| {
            let (r, kvh) = (pair / kv_heads, pair % kv_heads);
            let row = rows[r];
            let kv = (
                head(k, kv_heads, dim, row, kvh),
                head(v, kv_heads, dim, row, kvh),
            );
            let mut dk = vec![0.0f32; row.1 * dim];
            let mut dv = vec![0.0f32; row.1 * dim];
            let dq = (kvh * groups..(kvh + 1) * groups)
                .map(|h| {
                    head_backward(
                        (head(q, heads, dim, row, h), kv.0, kv.1),
                        &probs.0[r * heads + h],
                        head(grad, heads, dim, row, h),
                        shape.scale,
                        (&mut dk, &mut dv),
                    )
                })
                .collect();
            (dq, (dk, dv))
        })
        .unzip();
    let dq: Vec<Vec<f32>> = dq.into_iter().flatten().collect();
    (
        scatter(&dq, rows, heads, dim),
        scatter(&dk, rows, kv_heads, dim),
        scatter(&dv, rows, kv_heads, dim),
    )
}
