//! Percentiles by linear interpolation between order statistics, and a
//! latency-style summary (mean, p50, p95, p99).
//!
//! The method is Hyndman & Fan (1996) definition 7, numpy's default
//! `method="linear"`: for `n` sorted values and a fraction `q`, with
//! `h = (n - 1) q`, the result is `x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋ + 1] - x[⌊h⌋])`.

use serde::{Deserialize, Serialize};

use super::StatsError;

/// Summary of a sample, e.g. per-item latencies in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Number of values.
    pub n: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Median (50th percentile).
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// The `p`-th percentile (`p` in [0, 100]) of `sorted`, which must be sorted
/// ascending and finite. Matches `numpy.percentile(sorted, p, method="linear")`.
///
/// Errors on an empty slice, `p` outside [0, 100], a non-finite value or an
/// unsorted slice (checked in one pass).
pub fn percentile(sorted: &[f64], p: f64) -> Result<f64, StatsError> {
    if !(0.0..=100.0).contains(&p) {
        return Err(StatsError::Percentile { value: p });
    }
    if sorted.is_empty() {
        return Err(StatsError::Empty { what: "percentile" });
    }
    check_sorted_finite("percentile", sorted)?;
    Ok(linear_quantile(sorted, p / 100.0))
}

/// Mean, min, max and p50/p95/p99 of `values` (any order; finite).
///
/// Errors on an empty slice or a non-finite value.
pub fn summarize(values: &[f64]) -> Result<Summary, StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty { what: "summary" });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite {
            what: "summary",
            index,
            value,
        });
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let q = |f: f64| linear_quantile(&sorted, f);
    Ok(Summary {
        n: values.len() as u64,
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: q(0.0),
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: q(1.0),
    })
}

fn check_sorted_finite(what: &'static str, values: &[f64]) -> Result<(), StatsError> {
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite { what, index, value });
    }
    let unsorted = values.windows(2).enumerate().find_map(|(i, w)| match *w {
        [prev_value, value] if value < prev_value => Some(StatsError::NotSorted {
            what,
            index: i + 1,
            value,
            prev_value,
        }),
        _ => None,
    });
    match unsorted {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Linear-interpolation quantile of a sorted slice at fraction `q` in [0, 1].
/// Returns NaN for an empty slice (callers check first).
pub(crate) fn linear_quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let h = last as f64 * q.clamp(0.0, 1.0);
    let lo = (h.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let frac = h - lo as f64;
    match (sorted.get(lo), sorted.get(hi)) {
        (Some(&a), Some(&b)) => lerp(a, b, frac),
        _ => f64::NAN,
    }
}

/// `a + (b - a) t`, computed from the nearer end so that t = 1 gives exactly
/// `b` (the same two-sided form numpy uses).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t < 0.5 {
        a + d * t
    } else {
        b - d * (1.0 - t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: [f64; 11] = [
        12.5, 3.0, 7.25, 100.0, 42.0, 8.0, 15.5, 9.75, 61.0, 3.0, 27.0,
    ];

    fn sorted() -> Vec<f64> {
        let mut v = DATA.to_vec();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy 2.4.6 `np.percentile(DATA, p, method="linear")`
        // (tests/reference/stats_reference.py).
        let cases = [
            (0.0, 3.0),
            (10.0, 3.0),
            (37.5, 9.3125),
            (50.0, 12.5),
            (90.0, 61.0),
            (95.0, 80.5),
            (99.0, 96.10000000000001),
            (100.0, 100.0),
        ];
        let v = sorted();
        for (p, want) in cases {
            let got = percentile(&v, p).unwrap();
            assert!((got - want).abs() <= 1e-12 * want, "p{p}: {got} vs {want}");
        }
    }

    #[test]
    fn summary_matches_numpy() {
        let s = summarize(&DATA).unwrap();
        // numpy 2.4.6: DATA.mean() and np.percentile(DATA, [50, 95, 99], method="linear").
        assert!((s.mean - 26.272727272727273).abs() < 1e-12);
        assert_eq!((s.min, s.max), (3.0, 100.0));
        assert_eq!(s.p50, 12.5);
        assert!((s.p95 - 80.5).abs() < 1e-12);
        assert!((s.p99 - 96.10000000000001).abs() < 1e-12);
        assert_eq!(s.n, 11);
    }

    #[test]
    fn single_value_is_every_percentile() {
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&[4.5], p).unwrap(), 4.5);
        }
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            percentile(&[], 50.0),
            Err(StatsError::Empty { .. })
        ));
        assert!(matches!(
            percentile(&[1.0, 2.0], 100.5),
            Err(StatsError::Percentile { .. })
        ));
        assert!(matches!(
            percentile(&[1.0, 3.0, 2.0], 50.0),
            Err(StatsError::NotSorted { index: 2, .. })
        ));
        assert!(matches!(
            percentile(&[1.0, f64::INFINITY], 50.0),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            summarize(&[1.0, f64::NAN]),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
        let msg = percentile(&[1.0, 3.0, 2.0], 50.0).unwrap_err().to_string();
        assert!(msg.contains("index 2 (2) is below index 1 (3)"), "{msg}");
    }
}
