//! Paired intervals for the change between two runs.
//!
//! A change (candidate minus baseline accuracy, or candidate minus baseline
//! retention) is a function of per-item scores on the matched items. Its
//! interval is the paired percentile bootstrap: each resample draws the
//! matched item indices with replacement, the *same* indices for every
//! series, so the correlation between the runs on an item is kept; the
//! two-sided interval at confidence `c` is `[q((1 - c) / 2), q((1 + c) / 2)]`
//! of the resampled changes (Efron & Tibshirani 1993, ch. 13), `q` the
//! linear-interpolation percentile of [`crate::stats::percentile`]. Seeded
//! ([`ChaCha8Rng`]) with the baseline run's seed and resample count, so the
//! same runs give the same interval.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::stats::{BootstrapOptions, StatsError, percentile};

/// A change and its paired bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Candidate minus baseline on the full matched sample.
    pub point: f64,
    /// Lower end of the two-sided interval.
    pub lower: f64,
    /// Upper end of the two-sided interval.
    pub upper: f64,
    /// Confidence of the interval.
    pub confidence: f64,
    /// Matched items it was computed on.
    pub n: usize,
}

/// Per-item series on the matched items, index `i` the same item in each.
pub struct Series<'a> {
    /// The baseline's scores.
    pub baseline: &'a [f64],
    /// The candidate's scores.
    pub candidate: &'a [f64],
}

/// Change in mean score (accuracy): `mean(candidate) - mean(baseline)`.
/// `None` without items.
pub fn accuracy_change(
    s: &Series<'_>,
    opts: &BootstrapOptions,
) -> Result<Option<Change>, StatsError> {
    check(s, s.baseline.len())?;
    let stat = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut b, mut c, mut n) = (0.0, 0.0, 0usize);
        for i in idx {
            b += s.baseline[i];
            c += s.candidate[i];
            n += 1;
        }
        (n > 0).then(|| (c - b) / n as f64)
    };
    bootstrap(s.baseline.len(), opts, stat)
}

/// Change in retention: `sum(candidate) / sum(candidate_teacher) -
/// sum(baseline) / sum(baseline_teacher)`, each run against its own
/// teacher. `None` without items or when a teacher scored 0 on them.
pub fn retention_change(
    s: &Series<'_>,
    baseline_teacher: &[f64],
    candidate_teacher: &[f64],
    opts: &BootstrapOptions,
) -> Result<Option<Change>, StatsError> {
    let n = s.baseline.len();
    check(s, n)?;
    for t in [baseline_teacher, candidate_teacher] {
        if t.len() != n {
            return Err(StatsError::LengthMismatch {
                teacher: t.len(),
                student: n,
            });
        }
    }
    let stat = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut b, mut c, mut tb, mut tc) = (0.0, 0.0, 0.0, 0.0);
        for i in idx {
            b += s.baseline[i];
            c += s.candidate[i];
            tb += baseline_teacher[i];
            tc += candidate_teacher[i];
        }
        (tb > 0.0 && tc > 0.0).then(|| c / tc - b / tb)
    };
    bootstrap(n, opts, stat)
}

fn check(s: &Series<'_>, n: usize) -> Result<(), StatsError> {
    if s.candidate.len() != n {
        return Err(StatsError::LengthMismatch {
            teacher: n,
            student: s.candidate.len(),
        });
    }
    Ok(())
}

/// Point estimate on every index, then `opts.resamples` resamples; a
/// resample whose statistic is undefined is left out. `None` when the
/// point estimate or every resample is undefined.
fn bootstrap(
    n: usize,
    opts: &BootstrapOptions,
    stat: impl Fn(&mut dyn Iterator<Item = usize>) -> Option<f64>,
) -> Result<Option<Change>, StatsError> {
    let c = opts.confidence;
    if !(c > 0.0 && c < 1.0) {
        return Err(StatsError::Parameter {
            field: "confidence",
            expected: "strictly between 0 and 1",
            value: c,
        });
    }
    let Some(point) = stat(&mut (0..n)) else {
        return Ok(None);
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut values = Vec::with_capacity(opts.resamples as usize);
    for _ in 0..opts.resamples {
        let mut draws = (0..n).map(|_| rng.random_range(0..n));
        if let Some(v) = stat(&mut draws) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    values.sort_by(f64::total_cmp);
    Ok(Some(Change {
        point,
        lower: percentile(&values, 100.0 * (1.0 - c) / 2.0)?,
        upper: percentile(&values, 100.0 * (1.0 + c) / 2.0)?,
        confidence: c,
        n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BootstrapOptions {
        BootstrapOptions {
            resamples: 4000,
            seed: 7,
            confidence: 0.95,
        }
    }

    #[test]
    fn accuracy_change_matches_the_normal_interval_of_paired_differences() {
        // 400 items: candidate gains 40 and loses 20 against the baseline.
        // Reference: the textbook normal interval of the paired differences
        // d_i in {-1, 0, 1}, computed with Python's statistics module:
        // mean 0.05, stdev 0.384538, z 1.959964, half width 0.037684
        // -> [0.012316, 0.087684]; the bootstrap agrees within resampling noise.
        let mut b = vec![0.0; 400];
        let mut c = vec![0.0; 400];
        for i in 0..400 {
            let (x, y) = match i {
                0..40 => (0.0, 1.0),
                40..60 => (1.0, 0.0),
                60..260 => (1.0, 1.0),
                _ => (0.0, 0.0),
            };
            b[i] = x;
            c[i] = y;
        }
        let s = Series {
            baseline: &b,
            candidate: &c,
        };
        let ch = accuracy_change(&s, &opts()).unwrap().unwrap();
        assert!((ch.point - 0.05).abs() < 1e-12);
        assert!((ch.lower - 0.012316).abs() < 0.006, "{ch:?}");
        assert!((ch.upper - 0.087684).abs() < 0.006, "{ch:?}");
        // Same seed, same interval.
        assert_eq!(accuracy_change(&s, &opts()).unwrap().unwrap(), ch);
    }

    #[test]
    fn identical_runs_change_nothing() {
        let b: Vec<f64> = (0..50).map(|i| f64::from(i % 3 == 0)).collect();
        let s = Series {
            baseline: &b,
            candidate: &b,
        };
        let ch = retention_change(&s, &b, &b, &opts()).unwrap().unwrap();
        assert_eq!((ch.point, ch.lower, ch.upper), (0.0, 0.0, 0.0));
    }

    #[test]
    fn retention_change_is_undefined_when_a_teacher_scored_zero() {
        let b = vec![1.0, 0.0];
        let zero = vec![0.0, 0.0];
        let s = Series {
            baseline: &b,
            candidate: &b,
        };
        assert_eq!(retention_change(&s, &zero, &b, &opts()).unwrap(), None);
        assert_eq!(
            accuracy_change(
                &Series {
                    baseline: &[],
                    candidate: &[]
                },
                &opts()
            )
            .unwrap(),
            None
        );
        assert!(retention_change(&s, &[1.0], &b, &opts()).is_err());
    }
}
