//! Matrices kept in ggml's 4- and 8-bit block formats and multiplied by f32
//! activations without being dequantized first.
//!
//! Batch-1 decoding reads every weight once per token and does two flops
//! with it, so its speed is the memory traffic: SmolLM2-135M in f32 moves
//! 540 MB per token, the same model in Q4_1 about 100 MB. A
//! [`QuantMatrix`] keeps the quants of a GGUF tensor (`Q4_0`, `Q4_1`,
//! `Q8_0`) with the block scales widened to f32 once at load, and
//! [`QuantMatrix::matmul`] computes `y = x W^T` for a few activation rows
//! straight from them, splitting the weight rows over rayon's threads.
//!
//! Per block of 32 weights `w_j = d q_j + m` (Q4_0 is `m = -8d`, Q8_0 has
//! `m = 0`), so `sum_j w_j x_j = d (sum_j q_j x_j) + m (sum_j x_j)`: the
//! quants are widened to f32 and multiplied with the activations as they
//! are (llama.cpp instead rounds the activations to 8 bits), and the
//! offset term uses per-block activation sums computed once per call. The
//! result equals the dequantized matrix's product up to f32 summation
//! order. The inner loop has an AVX2/FMA version, picked at run time, and
//! a portable one.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::gguf::GgmlType;
use super::gguf::quant::f16_at;

/// Weights per block in every supported format.
pub const BLOCK: usize = 32;

/// Weight rows one rayon task computes.
const ROWS_PER_TASK: usize = 32;

/// Activation rows one pass over the weights serves (more are done in
/// several passes).
const MAX_GROUP: usize = 8;

/// Quantized matrices of a checkpoint under their Hugging Face names.
pub type QuantWeights = BTreeMap<String, QuantMatrix>;

/// How the quants of a block are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quants {
    /// 16 bytes per block: the low nibbles are weights 0..16, the high
    /// nibbles weights 16..32 (ggml's `Q4_0` / `Q4_1` order), unsigned.
    Nibbles,
    /// 32 signed bytes per block (`Q8_0`).
    Bytes,
}

impl Quants {
    fn bytes_per_block(self) -> usize {
        match self {
            Self::Nibbles => BLOCK / 2,
            Self::Bytes => BLOCK,
        }
    }
}

/// A `[rows, cols]` matrix in a block-quantized format.
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    rows: usize,
    cols: usize,
    quants: Quants,
    /// The block scales `d`, `rows * cols / 32`, row-major.
    scales: Vec<f32>,
    /// The block offsets `m` (empty for `Q8_0`).
    offsets: Vec<f32>,
    /// The quants, row-major, `bytes_per_block` per block.
    data: Vec<u8>,
}

impl QuantMatrix {
    /// Takes the blocks of a GGUF tensor stored as `ty` with `rows` rows
    /// of `cols` values. `None` when `ty` is not `Q4_0`, `Q4_1` or `Q8_0`,
    /// when `cols` is not a whole number of blocks, or when `bytes` does
    /// not hold exactly `rows * cols` values.
    pub fn from_ggml(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        let quants = match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 => Quants::Nibbles,
            GgmlType::Q8_0 => Quants::Bytes,
            _ => return None,
        };
        let blocks = rows.checked_mul(cols)? / BLOCK;
        if cols == 0 || !cols.is_multiple_of(BLOCK) || bytes.len() != blocks * ty.block_bytes() {
            return None;
        }
        let per = quants.bytes_per_block();
        let mut out = Self {
            rows,
            cols,
            quants,
            scales: Vec::with_capacity(blocks),
            offsets: Vec::with_capacity(if quants == Quants::Nibbles { blocks } else { 0 }),
            data: Vec::with_capacity(blocks * per),
        };
        for b in bytes.chunks_exact(ty.block_bytes()) {
            let d = f16_at(b, 0);
            out.scales.push(d);
            let q = match ty {
                GgmlType::Q4_0 => {
                    out.offsets.push(-8.0 * d);
                    &b[2..18]
                }
                GgmlType::Q4_1 => {
                    out.offsets.push(f16_at(b, 2));
                    &b[4..20]
                }
                _ => &b[2..34],
            };
            out.data.extend_from_slice(q);
        }
        Some(out)
    }

    /// Rows of the matrix (outputs of the product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix (inputs of the product).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the quants, scales and offsets take.
    pub fn byte_len(&self) -> usize {
        self.data.len() + 4 * (self.scales.len() + self.offsets.len())
    }

    /// The matrix with its rows reordered: row `r` of the result is row
    /// `source[r]` of `self`. The caller passes a permutation of
    /// `0..rows`.
    pub fn permute_rows(&self, source: &[usize]) -> Self {
        let blocks = self.cols / BLOCK;
        let per = self.quants.bytes_per_block() * blocks;
        let mut out = Self {
            rows: self.rows,
            cols: self.cols,
            quants: self.quants,
            scales: Vec::with_capacity(self.scales.len()),
            offsets: Vec::with_capacity(self.offsets.len()),
            data: Vec::with_capacity(self.data.len()),
        };
        for &r in source {
            out.scales
                .extend_from_slice(&self.scales[r * blocks..(r + 1) * blocks]);
            if !self.offsets.is_empty() {
                out.offsets
                    .extend_from_slice(&self.offsets[r * blocks..(r + 1) * blocks]);
            }
            out.data
                .extend_from_slice(&self.data[r * per..(r + 1) * per]);
        }
        out
    }

    /// The matrix dequantized to f32, row-major (for checks).
    pub fn to_f32(&self) -> Vec<f32> {
        let per = self.quants.bytes_per_block();
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for (b, q) in self.data.chunks_exact(per).enumerate() {
            let d = self.scales[b];
            match self.quants {
                Quants::Nibbles => {
                    let m = self.offsets[b];
                    out.extend(q.iter().map(|&v| d * f32::from(v & 0x0f) + m));
                    out.extend(q.iter().map(|&v| d * f32::from(v >> 4) + m));
                }
                Quants::Bytes => out.extend(q.iter().map(|&v| d * f32::from(v as i8))),
            }
        }
        out
    }

    /// `y = x W^T` for `n = x.len() / cols` activation rows: `x` is
    /// `[n, cols]`, the result `[n, rows]`, both row-major. Panics when
    /// `x.len()` is not a multiple of `cols` (a caller bug, not input).
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        assert!(
            x.len().is_multiple_of(self.cols),
            "activations of {} values for a matrix of {} columns",
            x.len(),
            self.cols
        );
        let n = x.len() / self.cols;
        let blocks = self.cols / BLOCK;
        // Per-block activation sums for the offset term.
        let sums: Vec<f32> = x.chunks_exact(BLOCK).map(|c| c.iter().sum()).collect();
        let kernel = Kernel::detect();
        // Results weight-row-major (`[rows, n]`) so each task owns a
        // contiguous slice; transposed at the end when n > 1.
        let mut by_row = vec![0f32; self.rows * n];
        by_row
            .par_chunks_mut(ROWS_PER_TASK * n)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * ROWS_PER_TASK;
                for (i, row_out) in out.chunks_exact_mut(n).enumerate() {
                    let r = first + i;
                    let row = RowBlocks {
                        scales: &self.scales[r * blocks..(r + 1) * blocks],
                        offsets: if self.offsets.is_empty() {
                            &[]
                        } else {
                            &self.offsets[r * blocks..(r + 1) * blocks]
                        },
                        data: &self.data[r * blocks * self.quants.bytes_per_block()
                            ..(r + 1) * blocks * self.quants.bytes_per_block()],
                        quants: self.quants,
                    };
                    let mut start = 0;
                    while start < n {
                        let group = (n - start).min(MAX_GROUP);
                        let xs = &x[start * self.cols..(start + group) * self.cols];
                        let s = &sums[start * blocks..(start + group) * blocks];
                        kernel.dots(&row, xs, s, &mut row_out[start..start + group]);
                        start += group;
                    }
                }
            });
        if n == 1 {
            return by_row;
        }
        let mut out = vec![0f32; n * self.rows];
        for (r, vals) in by_row.chunks_exact(n).enumerate() {
            for (i, v) in vals.iter().enumerate() {
                out[i * self.rows + r] = *v;
            }
        }
        out
    }
}

/// One weight row's blocks.
struct RowBlocks<'a> {
    scales: &'a [f32],
    offsets: &'a [f32],
    data: &'a [u8],
    quants: Quants,
}

/// The inner loop picked for this CPU.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Self::Avx2;
        }
        Self::Portable
    }

    /// Dot products of one weight row with `out.len()` (1 to
    /// [`MAX_GROUP`]) activation rows `xs`, whose per-block sums are
    /// `sums`.
    fn dots(self, row: &RowBlocks<'_>, xs: &[f32], sums: &[f32], out: &mut [f32]) {
        match self {
            Self::Portable => portable::dots(row, xs, sums, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` saw AVX2 and FMA on this CPU; the slice
            // lengths the kernel relies on are asserted inside it.
            Self::Avx2 => unsafe { avx2::dots(row, xs, sums, out) },
        }
    }
}

/// The inner loop in plain Rust.
mod portable {
    use super::{BLOCK, Quants, RowBlocks};

    /// `out[i] = sum_b (d_b * sum_j q_bj * xs[i][b * 32 + j] + m_b * sums[i][b])`.
    pub(super) fn dots(row: &RowBlocks<'_>, xs: &[f32], sums: &[f32], out: &mut [f32]) {
        let blocks = row.scales.len();
        let cols = blocks * BLOCK;
        let per = match row.quants {
            Quants::Nibbles => BLOCK / 2,
            Quants::Bytes => BLOCK,
        };
        let mut w = [0f32; BLOCK];
        out.fill(0.0);
        for (b, (q, d)) in row.data.chunks_exact(per).zip(row.scales).enumerate() {
            match row.quants {
                Quants::Nibbles => {
                    for (j, &v) in q.iter().enumerate() {
                        w[j] = f32::from(v & 0x0f);
                        w[j + BLOCK / 2] = f32::from(v >> 4);
                    }
                }
                Quants::Bytes => {
                    for (j, &v) in q.iter().enumerate() {
                        w[j] = f32::from(v as i8);
                    }
                }
            }
            for (i, o) in out.iter_mut().enumerate() {
                let x = &xs[i * cols + b * BLOCK..i * cols + (b + 1) * BLOCK];
                let s: f32 = w.iter().zip(x).map(|(w, x)| w * x).sum();
                *o += d * s;
            }
        }
        if !row.offsets.is_empty() {
            for (i, o) in out.iter_mut().enumerate() {
                let s = &sums[i * blocks..(i + 1) * blocks];
                *o += row.offsets.iter().zip(s).map(|(m, s)| m * s).sum::<f32>();
            }
        }
    }
}

/// The inner loop with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, MAX_GROUP, Quants, RowBlocks};

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Four vectors of eight weights (the block's 32 quants as f32).
    ///
    /// # Safety
    /// `q` points at 16 (nibbles) or 32 (bytes) readable bytes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn widen(q: *const u8, quants: Quants) -> [__m256; 4] {
        // SAFETY: the caller guarantees the bytes are readable; unaligned
        // loads are used throughout.
        unsafe {
            match quants {
                Quants::Nibbles => {
                    let bytes = _mm_loadu_si128(q.cast());
                    let mask = _mm_set1_epi8(0x0f);
                    let lo = _mm_and_si128(bytes, mask);
                    let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
                    let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
                    [
                        f(lo),
                        f(_mm_srli_si128(lo, 8)),
                        f(hi),
                        f(_mm_srli_si128(hi, 8)),
                    ]
                }
                Quants::Bytes => {
                    let f = |k: usize| {
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                            q.add(8 * k).cast(),
                        )))
                    };
                    [f(0), f(1), f(2), f(3)]
                }
            }
        }
    }

    /// `sum_b m[b] * s[b]` over equal-length slices.
    #[target_feature(enable = "avx2,fma")]
    fn offset_dot(m: &[f32], s: &[f32]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let (mc, sc) = (m.chunks_exact(8), s.chunks_exact(8));
        let tail: f32 = mc
            .remainder()
            .iter()
            .zip(sc.remainder())
            .map(|(m, s)| m * s)
            .sum();
        for (m, s) in mc.zip(sc) {
            // SAFETY: both chunks hold 8 values.
            unsafe {
                acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(m.as_ptr()),
                    _mm256_loadu_ps(s.as_ptr()),
                    acc,
                );
            }
        }
        hsum(acc) + tail
    }

    /// See [`super::portable::dots`].
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA (the slice lengths are asserted).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(row: &RowBlocks<'_>, xs: &[f32], sums: &[f32], out: &mut [f32]) {
        // One copy per group size, so the accumulators stay in registers
        // (a loop over a run-time count kept them in memory).
        // SAFETY: the caller's guarantee is passed on.
        unsafe {
            match out.len() {
                1 => dots_n::<1>(row, xs, sums, out),
                2 => dots_n::<2>(row, xs, sums, out),
                3 => dots_n::<3>(row, xs, sums, out),
                4 => dots_n::<4>(row, xs, sums, out),
                5 => dots_n::<5>(row, xs, sums, out),
                6 => dots_n::<6>(row, xs, sums, out),
                7 => dots_n::<7>(row, xs, sums, out),
                _ => dots_n::<MAX_GROUP>(row, xs, sums, out),
            }
        }
    }

    /// [`dots`] for exactly `N` activation rows.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA (the slice lengths are asserted).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dots_n<const N: usize>(
        row: &RowBlocks<'_>,
        xs: &[f32],
        sums: &[f32],
        out: &mut [f32],
    ) {
        let blocks = row.scales.len();
        let cols = blocks * BLOCK;
        let per = match row.quants {
            Quants::Nibbles => BLOCK / 2,
            Quants::Bytes => BLOCK,
        };
        assert!(out.len() == N && xs.len() >= N * cols && row.data.len() >= blocks * per);
        assert!(
            sums.len() >= N * blocks && (row.offsets.is_empty() || row.offsets.len() == blocks)
        );
        let mut acc = [_mm256_setzero_ps(); N];
        let q = row.data.as_ptr();
        let x = xs.as_ptr();
        for b in 0..blocks {
            // SAFETY: block b's quants lie within row.data (asserted above).
            let w = unsafe { widen(q.add(b * per), row.quants) };
            let d = _mm256_set1_ps(row.scales[b]);
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: row i's block b lies within xs (asserted above).
                unsafe {
                    let xb = x.add(i * cols + b * BLOCK);
                    let mut s = _mm256_mul_ps(w[0], _mm256_loadu_ps(xb));
                    s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xb.add(8)), s);
                    s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xb.add(16)), s);
                    s = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xb.add(24)), s);
                    *acc = _mm256_fmadd_ps(d, s, *acc);
                }
            }
        }
        for (i, (o, a)) in out.iter_mut().zip(acc).enumerate() {
            *o = hsum(a);
            if !row.offsets.is_empty() {
                *o += offset_dot(row.offsets, &sums[i * blocks..(i + 1) * blocks]);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::llm::gguf::quant::{dequantize, quantize};

    /// Deterministic pseudo-random values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Hand-made Q4_0 blocks: `d` as f16 then 16 bytes of nibbles.
    fn q4_0_bytes(rows: usize, cols: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for b in 0..rows * cols / BLOCK {
            out.extend_from_slice(
                &half::f16::from_f32(0.01 + (b % 7) as f32 * 0.003).to_le_bytes(),
            );
            out.extend((0..16u8).map(|j| j.wrapping_mul(7).wrapping_add(b as u8)));
        }
        out
    }

    /// `x W^T` in f64 from the dequantized matrix, and `sum |w x|` per
    /// entry (the scale of f32 rounding error).
    fn reference(w: &[f32], x: &[f32], rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
        let n = x.len() / cols;
        let (mut out, mut mag) = (vec![0f32; n * rows], vec![0f32; n * rows]);
        for i in 0..n {
            for r in 0..rows {
                let terms =
                    (0..cols).map(|c| f64::from(w[r * cols + c]) * f64::from(x[i * cols + c]));
                out[i * rows + r] = terms.clone().sum::<f64>() as f32;
                mag[i * rows + r] = terms.map(f64::abs).sum::<f64>() as f32;
            }
        }
        (out, mag)
    }

    fn check(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) {
        let m = QuantMatrix::from_ggml(ty, bytes, rows, cols).unwrap();
        let w = dequantize(ty, bytes);
        assert_eq!(m.to_f32(), w, "{ty:?}: widened scales give ggml's values");
        for n in (1..=9).chain([17]) {
            let x = values(n * cols, n as u32);
            let (want, mag) = reference(&w, &x, rows, cols);
            let close = |g: f32, i: usize| (g - want[i]).abs() <= 1e-5 * mag[i] + 1e-7;
            let got = m.matmul(&x);
            for kernel in [Kernel::Portable, Kernel::detect()] {
                let mut one = vec![0f32; n.min(MAX_GROUP)];
                let row = RowBlocks {
                    scales: &m.scales[..cols / BLOCK],
                    offsets: if m.offsets.is_empty() {
                        &[]
                    } else {
                        &m.offsets[..cols / BLOCK]
                    },
                    data: &m.data[..cols / BLOCK * m.quants.bytes_per_block()],
                    quants: m.quants,
                };
                let sums: Vec<f32> = x.chunks_exact(BLOCK).map(|c| c.iter().sum()).collect();
                kernel.dots(&row, &x[..one.len() * cols], &sums, &mut one);
                for (i, v) in one.iter().enumerate() {
                    let e = want[i * rows];
                    assert!(close(*v, i * rows), "{kernel:?} n={n}: {v} vs {e}");
                }
            }
            for (i, g) in got.iter().enumerate() {
                assert!(close(*g, i), "{ty:?} n={n} entry {i}: {g} vs {}", want[i]);
            }
            // Each row's arithmetic is the same whatever group it is in.
            for (i, x_row) in x.chunks_exact(cols).enumerate() {
                let alone: Vec<u32> = m.matmul(x_row).iter().map(|v| v.to_bits()).collect();
                let batched: Vec<u32> = got[i * rows..(i + 1) * rows]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(alone, batched, "{ty:?} n={n} row {i}");
            }
        }
    }

    #[test]
    fn products_match_the_dequantized_matrix() {
        // 70 rows: two full tasks and a partial one; 96 columns: 3 blocks.
        let (rows, cols) = (70, 96);
        let w = values(rows * cols, 7);
        check(
            GgmlType::Q4_1,
            &quantize(GgmlType::Q4_1, &w).unwrap(),
            rows,
            cols,
        );
        check(
            GgmlType::Q8_0,
            &quantize(GgmlType::Q8_0, &w).unwrap(),
            rows,
            cols,
        );
        check(GgmlType::Q4_0, &q4_0_bytes(rows, cols), rows, cols);
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let w = values(64, 1);
        let q = quantize(GgmlType::Q8_0, &w).unwrap();
        assert!(QuantMatrix::from_ggml(GgmlType::Q8_0, &q, 2, 32).is_some());
        assert!(QuantMatrix::from_ggml(GgmlType::Q8_0, &q, 1, 64).is_some());
        assert!(
            QuantMatrix::from_ggml(GgmlType::Q8_0, &q, 4, 16).is_none(),
            "partial blocks"
        );
        assert!(
            QuantMatrix::from_ggml(GgmlType::Q8_0, &q[1..], 2, 32).is_none(),
            "short"
        );
        assert!(
            QuantMatrix::from_ggml(GgmlType::F32, &q, 2, 32).is_none(),
            "not quantized"
        );
        assert!(QuantMatrix::from_ggml(GgmlType::Q8_0, &q, usize::MAX, 64).is_none());
    }

    #[test]
    fn permuting_rows_moves_whole_rows() {
        let (rows, cols) = (4, 64);
        let w = values(rows * cols, 3);
        let m = QuantMatrix::from_ggml(
            GgmlType::Q4_1,
            &quantize(GgmlType::Q4_1, &w).unwrap(),
            rows,
            cols,
        )
        .unwrap();
        let p = m.permute_rows(&[2, 0, 3, 1]);
        let (a, b) = (m.to_f32(), p.to_f32());
        for (r, src) in [2, 0, 3, 1].into_iter().enumerate() {
            assert_eq!(b[r * cols..(r + 1) * cols], a[src * cols..(src + 1) * cols]);
        }
    }
}
