//! Products of f32 matrices by the gemm crate (the kernel burn-flex's own
//! matmul calls), written straight into a buffer of their own.
//!
//! burn-flex's matmul allocates every output zeroed as bytes and then
//! copies it into a buffer aligned for f32: two single-threaded passes over
//! each product before gemm writes it (a profile of `distill` with the
//! teacher in the loop had them as about two thirds of the memset and half
//! of the memcpy samples, on the main thread while the other core waited).
//! Here gemm writes every element of a fresh, uninitialised buffer, and the
//! operands are read through their strides, so transposed operands are
//! never copied either. Same kernel, same arguments and the same choice of
//! threads as burn-flex: the products are the same bits.

/// A matrix read through strides: element `(i, j)` is
/// `data[offset + i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<'a> {
    /// The buffer the elements live in.
    pub data: &'a [f32],
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Elements from one row to the next.
    pub row_stride: usize,
    /// Elements from one column to the next.
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    /// A row-major `[rows, cols]` matrix filling `data`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Rows `range` of the matrix, as a view of the same elements.
    pub fn sub_rows(self, range: std::ops::Range<usize>) -> Self {
        debug_assert!(range.start <= range.end && range.end <= self.rows);
        Self {
            offset: self.offset + range.start * self.row_stride,
            rows: range.end - range.start,
            ..self
        }
    }

    /// The transpose, as a view of the same elements.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(r, c)| r.checked_add(c))
            .and_then(|rc| rc.checked_add(self.offset));
        last.is_some_and(|last| last < self.data.len())
    }
}

/// Products of at least this many multiply-adds (`m * n * k`) use every
/// core; smaller ones run on the calling thread (burn-flex's threshold).
const PARALLEL_MIN_OPS: usize = 192 * 192 * 192;

/// Whether gemm splits a product of these dimensions over threads.
fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_OPS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `lhs x rhs` as a row-major `[lhs.rows, rhs.cols]` buffer, on every core
/// when the product is large enough.
///
/// # Panics
/// When the inner dimensions differ or a view reaches outside its buffer
/// (both are the caller's shapes, never user input).
pub(crate) fn product(lhs: Strided<'_>, rhs: Strided<'_>) -> Vec<f32> {
    let threads = parallelism(lhs.rows, rhs.cols, lhs.cols);
    product_with(lhs, rhs, threads)
}

/// [`product`] on the calling thread only (inside a task of a parallel
/// loop).
pub(crate) fn product_here(lhs: Strided<'_>, rhs: Strided<'_>) -> Vec<f32> {
    product_with(lhs, rhs, gemm::Parallelism::None)
}

fn product_with(lhs: Strided<'_>, rhs: Strided<'_>, threads: gemm::Parallelism) -> Vec<f32> {
    let (m, n) = (lhs.rows, rhs.cols);
    let len = m.checked_mul(n).expect("product size overflows usize");
    let mut out = Vec::<f32>::with_capacity(len);
    // SAFETY: `out` has room for `m * n` elements, row-major with row
    // stride `n`. With `read_dst` false and alpha 0, gemm writes every
    // element of the destination without reading it (k = 0 included: it
    // stores zeros), so all `len` elements are initialised before `set_len`.
    unsafe {
        call(out.as_mut_ptr(), false, lhs, rhs, threads);
        out.set_len(len);
    }
    out
}

/// `dst += lhs x rhs` on the calling thread, `dst` the first `lhs.rows *
/// rhs.cols` elements of a row-major buffer with `rhs.cols` columns.
///
/// # Panics
/// As [`product`], and when `dst` is too short.
pub(crate) fn add_product(dst: &mut [f32], lhs: Strided<'_>, rhs: Strided<'_>) {
    let len = lhs.rows.checked_mul(rhs.cols);
    assert!(
        len.is_some_and(|len| len <= dst.len()),
        "destination too short"
    );
    // SAFETY: `dst` holds the `m * n` initialised elements gemm reads and
    // writes (checked above).
    unsafe { call(dst.as_mut_ptr(), true, lhs, rhs, gemm::Parallelism::None) }
}

/// gemm's `dst = [dst +] lhs x rhs`, row-major `dst` with `rhs.cols`
/// columns.
///
/// # Safety
/// `dst` must be valid for `lhs.rows * rhs.cols` writes, and for as many
/// reads of initialised values when `read_dst`.
unsafe fn call(
    dst: *mut f32,
    read_dst: bool,
    lhs: Strided<'_>,
    rhs: Strided<'_>,
    threads: gemm::Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "product of [{m}, {k}] and [{}, {n}]", rhs.rows);
    assert!(
        lhs.in_bounds() && rhs.in_bounds(),
        "a view outside its buffer"
    );
    if m == 0 || n == 0 {
        return;
    }
    let alpha = if read_dst { 1.0f32 } else { 0.0 };
    // SAFETY: both operands lie inside their slices (checked above); the
    // destination is the caller's promise.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read_dst,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            alpha,
            1.0f32,
            false,
            false,
            false,
            threads,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by definition, in f64.
    fn naive(a: Strided<'_>, b: Strided<'_>) -> Vec<f64> {
        let at = |s: &Strided<'_>, i: usize, j: usize| {
            f64::from(s.data[s.offset + i * s.row_stride + j * s.col_stride])
        };
        let mut out = Vec::new();
        for i in 0..a.rows {
            for j in 0..b.cols {
                out.push((0..a.cols).map(|p| at(&a, i, p) * at(&b, p, j)).sum());
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000)
            .map(|v| v as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn products_of_strided_views_match_the_definition() {
        // Plain, transposed on either side, an offset sub-block, k = 0, and
        // one product above the threshold that splits over threads.
        let big = values(300 * 300, 7);
        let small = values(40 * 60, 3);
        let cases: Vec<(Strided<'_>, Strided<'_>)> = vec![
            (
                Strided::rows(&small, 40, 60),
                Strided::rows(&small, 40, 60).t(),
            ),
            (
                Strided::rows(&small, 60, 40).t(),
                Strided::rows(&small, 60, 40),
            ),
            (
                Strided {
                    offset: 5 * 60 + 7,
                    rows: 10,
                    cols: 20,
                    ..Strided::rows(&small, 40, 60)
                },
                Strided {
                    offset: 3,
                    rows: 20,
                    cols: 9,
                    ..Strided::rows(&small, 40, 60)
                },
            ),
            (Strided::rows(&small, 3, 0), Strided::rows(&small, 0, 4)),
            (
                Strided::rows(&big, 300, 300),
                Strided::rows(&big, 300, 300).t(),
            ),
        ];
        for (a, b) in cases {
            let got = product(a, b);
            let want = naive(a, b);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{g} vs {w}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside its buffer")]
    fn a_view_past_its_buffer_is_refused() {
        let v = values(10, 1);
        let _ = product(Strided::rows(&v, 3, 4), Strided::rows(&v, 4, 1));
    }
}
