//! Accuracy: the mean score with a confidence interval.
//!
//! Binary scores (every score exactly 0 or 1) get the Wilson score interval
//! (Wilson 1927; recommended over the Wald interval by Brown, Cai & DasGupta
//! 2001, "Interval Estimation for a Binomial Proportion", Statist. Sci. 16).
//! Fractional scores in [0, 1] are not binomial, so they get the Student t
//! interval on the mean, clipped to [0, 1]; with a single fractional score
//! the interval is the whole [0, 1].

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::error::{check_confidence, check_scores};
use super::normal::{t_quantile, z_quantile};

/// A closed interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

impl Interval {
    /// Whether `x` lies in the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }

    /// The smallest interval holding both (their union when they overlap,
    /// as two confidence intervals around the same estimate do).
    pub fn hull(&self, other: &Interval) -> Interval {
        Interval {
            lower: self.lower.min(other.lower),
            upper: self.upper.max(other.upper),
        }
    }
}

/// How an [`Accuracy`] interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccuracyMethod {
    /// Wilson score interval (all scores were 0 or 1).
    Wilson,
    /// Student t interval on the mean of fractional scores, clipped to [0, 1].
    StudentT,
}

/// Mean score over a set of items with a two-sided confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accuracy {
    /// Number of items.
    pub n: u64,
    /// Mean score (the accuracy for binary scores).
    pub mean: f64,
    /// Two-sided interval at `confidence`.
    pub interval: Interval,
    /// Confidence level of the interval.
    pub confidence: f64,
    /// Which interval was used.
    pub method: AccuracyMethod,
}

/// Two-sided Wilson score interval for `successes` out of `n` at `confidence`
/// (e.g. 0.95), with `z = Φ⁻¹((1 + confidence) / 2)`.
///
/// Matches `statsmodels.stats.proportion.proportion_confint(successes, n,
/// alpha = 1 - confidence, method = "wilson")`.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Result<Interval, StatsError> {
    check_confidence(confidence)?;
    check_counts(successes, n)?;
    Ok(wilson_with_z(
        successes,
        n,
        z_quantile((1.0 + confidence) / 2.0),
    ))
}

/// One-sided Wilson bounds at `confidence`: `lower` is the one-sided lower
/// bound (the true proportion is at least `lower` with that confidence) and
/// `upper` the one-sided upper bound, both with `z = Φ⁻¹(confidence)`.
/// Together they form the two-sided interval at `2 * confidence - 1`.
pub fn wilson_one_sided(successes: u64, n: u64, confidence: f64) -> Result<Interval, StatsError> {
    check_confidence(confidence)?;
    check_counts(successes, n)?;
    Ok(wilson_with_z(successes, n, z_quantile(confidence)))
}

/// Accuracy of `scores` (each in [0, 1]) with a two-sided interval at
/// `confidence`: Wilson when every score is 0 or 1, Student t otherwise.
pub fn accuracy(scores: &[f64], confidence: f64) -> Result<Accuracy, StatsError> {
    check_confidence(confidence)?;
    check_scores("accuracy", scores)?;
    if scores.is_empty() {
        return Err(StatsError::Empty { what: "accuracy" });
    }
    let n = scores.len();
    let sum: f64 = scores.iter().sum();
    let mean = sum / n as f64;
    let binary = scores.iter().all(|&s| s == 0.0 || s == 1.0);
    let (interval, method) = if binary {
        // Binary scores sum to an exact integer count.
        let successes = scores.iter().filter(|&&s| s == 1.0).count() as u64;
        (
            wilson_with_z(successes, n as u64, z_quantile((1.0 + confidence) / 2.0)),
            AccuracyMethod::Wilson,
        )
    } else {
        (
            t_interval(scores, mean, confidence)?,
            AccuracyMethod::StudentT,
        )
    };
    Ok(Accuracy {
        n: n as u64,
        mean,
        interval,
        confidence,
        method,
    })
}

fn check_counts(successes: u64, n: u64) -> Result<(), StatsError> {
    if n == 0 {
        return Err(StatsError::Empty {
            what: "Wilson interval",
        });
    }
    if successes > n {
        return Err(StatsError::SuccessesExceedTrials { successes, n });
    }
    Ok(())
}

/// Wilson score interval with critical value `z`:
/// `(p + z²/2n ± z √(p(1-p)/n + z²/4n²)) / (1 + z²/n)`, clipped to [0, 1].
fn wilson_with_z(successes: u64, n: u64, z: f64) -> Interval {
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        lower: (center - half).clamp(0.0, 1.0),
        upper: (center + half).clamp(0.0, 1.0),
    }
}

/// `mean ± t_{(1+c)/2, n-1} · s / √n`, clipped to [0, 1]; [0, 1] when n = 1.
fn t_interval(scores: &[f64], mean: f64, confidence: f64) -> Result<Interval, StatsError> {
    let n = scores.len();
    if n < 2 {
        return Ok(Interval {
            lower: 0.0,
            upper: 1.0,
        });
    }
    let nf = n as f64;
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (nf - 1.0);
    let half = t_quantile((1.0 + confidence) / 2.0, nf - 1.0)? * (var / nf).sqrt();
    Ok(Interval {
        lower: (mean - half).clamp(0.0, 1.0),
        upper: (mean + half).clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_statsmodels() {
        // (successes, n, confidence, lower, upper) from
        // statsmodels 0.15.0 `proportion_confint(x, n, alpha=1-c, method="wilson")`
        // (tests/reference/stats_reference.py).
        let cases = [
            (0, 10, 0.95, 0.0, 0.2775327998628892),
            (1, 10, 0.95, 0.017876213095072896, 0.4041500267952385),
            (7, 10, 0.95, 0.39677814746114537, 0.8922087325936989),
            (10, 10, 0.95, 0.7224672001371107, 0.9999999999999999),
            (81, 100, 0.95, 0.7222115462093562, 0.8748524849023126),
            (950, 1000, 0.99, 0.9290930273094662, 0.9649749242774674),
            (3, 7, 0.9, 0.186443190363956, 0.7105229089864071),
            (1, 1, 0.95, 0.20654931437723745, 1.0),
        ];
        for (x, n, c, lo, hi) in cases {
            let iv = wilson(x, n, c).unwrap();
            assert!(close(iv.lower, lo, 1e-12), "{x}/{n} at {c}: {iv:?} vs {lo}");
            assert!(close(iv.upper, hi, 1e-12), "{x}/{n} at {c}: {iv:?} vs {hi}");
        }
    }

    #[test]
    fn one_sided_wilson_matches_statsmodels_at_double_alpha() {
        // statsmodels 0.15.0 `proportion_confint(x, n, alpha=2*(1-c), method="wilson")`:
        // each end of the two-sided interval at 2c - 1 is a one-sided bound at c.
        let cases = [
            (7, 10, 0.95, 0.44169979586983504, 0.8731234160968022),
            (81, 100, 0.95, 0.7376400476715523, 0.8660274654428797),
            (950, 1000, 0.99, 0.931405294363948, 0.9637502185010501),
        ];
        for (x, n, c, lo, hi) in cases {
            let iv = wilson_one_sided(x, n, c).unwrap();
            assert!(close(iv.lower, lo, 1e-12), "{iv:?} vs {lo}");
            assert!(close(iv.upper, hi, 1e-12), "{iv:?} vs {hi}");
        }
    }

    #[test]
    fn accuracy_uses_wilson_for_binary_scores() {
        let scores: Vec<f64> = (0..100).map(|i| if i < 81 { 1.0 } else { 0.0 }).collect();
        let acc = accuracy(&scores, 0.95).unwrap();
        assert_eq!(acc.method, AccuracyMethod::Wilson);
        assert_eq!(acc.n, 100);
        assert!(close(acc.mean, 0.81, 1e-15));
        // statsmodels `proportion_confint(81, 100, alpha=0.05, method="wilson")`.
        assert!(close(acc.interval.lower, 0.7222115462093562, 1e-12));
        assert!(close(acc.interval.upper, 0.8748524849023126, 1e-12));
    }

    #[test]
    fn accuracy_uses_t_interval_for_fractional_scores() {
        let x = [0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 0.6];
        // scipy 1.17.1 `stats.t.interval(c, df=6, loc=x.mean(), scale=stats.sem(x))`.
        for (c, lo, hi) in [
            (0.95, 0.24099539038444912, 0.9304331810441222),
            (0.9, 0.3119606728031724, 0.8594678986253986),
        ] {
            let acc = accuracy(&x, c).unwrap();
            assert_eq!(acc.method, AccuracyMethod::StudentT);
            assert!(close(acc.mean, 0.5857142857142856, 1e-15));
            assert!(close(acc.interval.lower, lo, 1e-9), "{acc:?}");
            assert!(close(acc.interval.upper, hi, 1e-9), "{acc:?}");
        }
        // One fractional score says nothing about the spread: the whole range.
        let one = accuracy(&[0.5], 0.95).unwrap();
        assert_eq!((one.interval.lower, one.interval.upper), (0.0, 1.0));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(wilson(1, 0, 0.95), Err(StatsError::Empty { .. })));
        assert!(matches!(
            wilson(11, 10, 0.95),
            Err(StatsError::SuccessesExceedTrials {
                successes: 11,
                n: 10
            })
        ));
        for c in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                wilson(1, 10, c),
                Err(StatsError::Confidence { .. })
            ));
        }
        assert!(matches!(
            accuracy(&[0.5, f64::NAN], 0.95),
            Err(StatsError::ScoreOutOfRange { index: 1, .. })
        ));
        assert!(matches!(accuracy(&[], 0.95), Err(StatsError::Empty { .. })));
    }
}
