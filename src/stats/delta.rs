//! Retention interval by the delta method on log R (a cross-check of the
//! bootstrap).
//!
//! With per-item means `μ_S`, `μ_T`, variances `σ_S²`, `σ_T²` and paired
//! covariance `σ_ST`, the first-order (delta-method) variance of
//! `log R̂ = log S̄ - log T̄` over `n` items is
//!
//! ```text
//! Var(log R̂) ≈ (σ_S²/μ_S² + σ_T²/μ_T² - 2 σ_ST/(μ_S μ_T)) / n
//! ```
//!
//! (e.g. Casella & Berger, "Statistical Inference", 2nd ed., §5.5.4, applied
//! to `g(S̄, T̄) = log S̄ - log T̄`). The interval is
//! `exp(log R̂ ± z_{(1+c)/2} · se)` and the one-sided lower bound
//! `exp(log R̂ - z_c · se)`; working on the log scale keeps them positive.
//! Sample moments use the `n - 1` denominator.

use serde::{Deserialize, Serialize};

use super::error::{check_confidence, check_paired_scores};
use super::normal::z_quantile;
use super::retention::{Retention, UnmeasurableReason, unmeasurable};
use super::{Interval, PairedMoments, StatsError};

/// Retention estimated by the delta method on log R.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaEstimate {
    /// Number of paired items.
    pub n: u64,
    /// Point estimate `R = mean(student) / mean(teacher)`.
    pub point: f64,
    /// Standard error of `log R`.
    pub log_standard_error: f64,
    /// Confidence level `c`.
    pub confidence: f64,
    /// Two-sided interval at `c`.
    pub interval: Interval,
    /// One-sided lower bound at `c`.
    pub lower_bound: f64,
    /// Per-item sample moments the variance came from.
    pub moments: PairedMoments,
}

/// Delta-method interval for retention on paired scores in [0, 1].
///
/// Errors on mismatched lengths, scores outside [0, 1] or a confidence
/// outside (0, 1). Unmeasurable when there are no items, or the teacher's or
/// the student's mean is 0 (log R undefined).
pub fn delta_method_retention(
    teacher: &[f64],
    student: &[f64],
    confidence: f64,
) -> Result<Retention<DeltaEstimate>, StatsError> {
    check_confidence(confidence)?;
    check_paired_scores(teacher, student)?;
    let reason = if teacher.is_empty() {
        Some(UnmeasurableReason::NoItems)
    } else if teacher.iter().all(|&t| t == 0.0) {
        Some(UnmeasurableReason::TeacherScoredZero)
    } else if student.iter().all(|&s| s == 0.0) {
        Some(UnmeasurableReason::StudentScoredZero)
    } else {
        None
    };
    if let Some(reason) = reason {
        return Ok(Retention::Unmeasurable(unmeasurable(
            reason, teacher, student,
        )));
    }
    let m = PairedMoments::from_checked(teacher, student);
    let n = teacher.len() as f64;
    let unit_var = m.student_var / (m.student_mean * m.student_mean)
        + m.teacher_var / (m.teacher_mean * m.teacher_mean)
        - 2.0 * m.covariance / (m.student_mean * m.teacher_mean);
    // A quadratic form of a covariance matrix: non-negative up to rounding.
    let se = (unit_var.max(0.0) / n).sqrt();
    let log_r = m.student_mean.ln() - m.teacher_mean.ln();
    let z2 = z_quantile((1.0 + confidence) / 2.0);
    let z1 = z_quantile(confidence);
    Ok(Retention::Measured(DeltaEstimate {
        n: teacher.len() as u64,
        point: m.student_mean / m.teacher_mean,
        log_standard_error: se,
        confidence,
        interval: Interval {
            lower: (log_r - z2 * se).exp(),
            upper: (log_r + z2 * se).exp(),
        },
        lower_bound: (log_r - z1 * se).exp(),
        moments: m,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::table;

    #[test]
    fn matches_numpy_reference() {
        let (t, s) = table(300, 40, 25, 135);
        // numpy 2.4.6 with `var(ddof=1)`, `np.cov(s, t, ddof=1)` and scipy `norm.ppf`
        // (tests/reference/stats_reference.py): (c, se, lower, upper, one-sided lower).
        let cases = [
            (
                0.95,
                0.024277852507220955,
                0.9114631151184919,
                1.0024663176255637,
                0.9184627328898735,
            ),
            (
                0.9,
                0.024277852507220955,
                0.9184627328898735,
                0.9948265073199399,
                0.9265995837995694,
            ),
        ];
        for (c, se, lo, hi, lb) in cases {
            let Retention::Measured(d) = delta_method_retention(&t, &s, c).unwrap() else {
                panic!("unmeasurable");
            };
            assert!((d.point - 0.9558823529411764).abs() < 1e-15);
            assert!((d.log_standard_error - se).abs() < 1e-12, "{d:?}");
            assert!((d.interval.lower - lo).abs() < 1e-12, "{d:?}");
            assert!((d.interval.upper - hi).abs() < 1e-12, "{d:?}");
            assert!((d.lower_bound - lb).abs() < 1e-12, "{d:?}");
        }
    }

    #[test]
    fn zero_means_are_unmeasurable() {
        let Retention::Unmeasurable(u) =
            delta_method_retention(&[1.0, 0.0], &[0.0, 0.0], 0.95).unwrap()
        else {
            panic!("expected unmeasurable");
        };
        assert_eq!(u.reason, UnmeasurableReason::StudentScoredZero);
        let Retention::Unmeasurable(u) = delta_method_retention(&[0.0], &[1.0], 0.95).unwrap()
        else {
            panic!("expected unmeasurable");
        };
        assert_eq!(u.reason, UnmeasurableReason::TeacherScoredZero);
    }
}
