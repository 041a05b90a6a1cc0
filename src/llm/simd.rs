//! Vectorisable f32 arithmetic for the fused training operations.
//!
//! The crate is built for the baseline x86-64 target (SSE2), where the
//! compiler vectorises four lanes at most and `f32::exp` is a call into libm
//! per element. The fused operations' per-task functions are therefore
//! compiled twice by `multiversion` (baseline, and AVX2 with FMA, chosen at
//! run time), and [`exp`], [`sum`], [`sum2`], [`sum3`] and [`max`] are
//! written so that the compiler can vectorise them: a branch-free
//! exponential and reductions over eight independent lanes. A profile of
//! `distill` had libm's `expf` at 7% of a step, called from the causal
//! softmax, the losses and SiLU.

/// Below this, `exp` is flushed to 0 (the result would be subnormal).
const EXP_MIN: f32 = -87.336_55;
/// Above this, `exp` overflows to infinity.
const EXP_MAX: f32 = 88.722_83;

/// `e^x` to within two units in the last place, without branches: `x = n ln 2
/// + r` with `|r| <= ln 2 / 2`, a degree-7 polynomial for `e^r` (Cephes'
/// `expf` coefficients) and `2^n` built in the exponent bits. NaN stays NaN,
/// below [`EXP_MIN`] gives 0, above [`EXP_MAX`] infinity.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    // Round to the nearest integer by adding and subtracting 1.5 * 2^23
    // (`round` and `floor` are libm calls on the baseline target).
    const ROUND: f32 = 12_582_912.0;
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // n reaches 128 near the top, whose 2^n is not a normal f32: 2^127 * 2.
    let (n, top) = if n > 127.0 { (127.0, 2.0) } else { (n, 1.0) };
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let two_n = f32::from_bits(((n as i32 + 127) << 23) as u32);
    let y = er * two_n * top;
    let y = if x < EXP_MIN { 0.0 } else { y };
    if x > EXP_MAX { f32::INFINITY } else { y }
}

/// Lanes of the reductions: one AVX register of f32.
const LANES: usize = 8;

/// `sum(f(x))` over `xs`, in [`LANES`] independent partial sums.
#[inline(always)]
pub(crate) fn sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// `sum(f(a, b))` over the pairs of `a` and `b`, in [`LANES`] partial sums.
#[inline(always)]
pub(crate) fn sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for ((acc, &a), &b) in acc.iter_mut().zip(ca).zip(cb) {
            *acc += f(a, b);
        }
    }
    acc.iter().sum::<f32>() + ta.iter().zip(tb).map(|(&a, &b)| f(a, b)).sum::<f32>()
}

/// `sum(f(a, b, c))` over the triples of `a`, `b` and `c`, in [`LANES`]
/// partial sums.
#[inline(always)]
pub(crate) fn sum3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0.0f32; LANES];
    let whole = n - n % LANES;
    for ((ca, cb), cc) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
        .zip(c[..whole].chunks_exact(LANES))
    {
        for (((acc, &a), &b), &c) in acc.iter_mut().zip(ca).zip(cb).zip(cc) {
            *acc += f(a, b, c);
        }
    }
    let tail = (whole..n).map(|i| f(a[i], b[i], c[i])).sum::<f32>();
    acc.iter().sum::<f32>() + tail
}

/// The largest of `xs` (`-inf` when empty), in [`LANES`] partial maxima.
#[inline(always)]
pub(crate) fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of
    /// the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulps_of_libm_over_its_range() {
        let mut worst = (0, 0.0f32);
        let mut x = -87.3f32;
        while x < 88.7 {
            let (ours, libm) = (exp(x), x.exp());
            let d = ulps(ours, libm);
            if d > worst.0 {
                worst = (d, x);
            }
            x += 0.000_37;
        }
        assert!(worst.0 <= 2, "{} ulps at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(88.7) > 3.0e38);
    }

    #[test]
    fn reductions_match_sequential_ones() {
        let xs: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        for n in [0, 1, 7, 8, 9, 1003] {
            let xs = &xs[..n];
            let seq: f32 = xs.iter().map(|v| v * v).sum();
            assert!(
                (sum(xs, |v| v * v) - seq).abs() <= 1e-3 * seq.max(1.0),
                "sum of {n}"
            );
            let dot: f32 = xs.iter().zip(xs.iter().rev()).map(|(a, b)| a * b).sum();
            let ours = sum2(xs, &xs.iter().rev().copied().collect::<Vec<_>>(), |a, b| {
                a * b
            });
            assert!(
                (ours - dot).abs() <= 1e-3 * dot.abs().max(1.0),
                "dot of {n}"
            );
            let ys: Vec<f32> = xs.iter().map(|v| v + 1.0).collect();
            let trip: f32 = xs.iter().zip(&ys).map(|(a, b)| a * b * a).sum();
            let ours = sum3(xs, &ys, xs, |a, b, c| a * b * c);
            assert!(
                (ours - trip).abs() <= 1e-3 * trip.abs().max(1.0),
                "triple of {n}"
            );
            let m = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            assert_eq!(max(xs), m, "max of {n}");
        }
    }
}
