//! Per-item first and second moments of paired scores.

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::error::check_paired_scores;

/// Means, variances and covariance of one item's (teacher, student) scores.
///
/// These are per-item quantities: the variance of a mean over `n` items is
/// `var / n`. They feed the delta method and the power calculation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedMoments {
    /// Mean teacher score (teacher accuracy for binary scores).
    pub teacher_mean: f64,
    /// Mean student score.
    pub student_mean: f64,
    /// Variance of a teacher score.
    pub teacher_var: f64,
    /// Variance of a student score.
    pub student_var: f64,
    /// Covariance of the teacher and student score on the same item.
    pub covariance: f64,
}

impl PairedMoments {
    /// Sample moments of observed paired scores, with the unbiased `n - 1`
    /// denominator for the variances and the covariance (0 when `n = 1`).
    ///
    /// Errors on mismatched lengths, scores outside [0, 1] and empty input.
    pub fn from_scores(teacher: &[f64], student: &[f64]) -> Result<Self, StatsError> {
        check_paired_scores(teacher, student)?;
        if teacher.is_empty() {
            return Err(StatsError::Empty {
                what: "paired moments",
            });
        }
        Ok(Self::from_checked(teacher, student))
    }

    /// [`PairedMoments::from_scores`] on input already checked to be
    /// non-empty, paired and in range.
    pub(crate) fn from_checked(teacher: &[f64], student: &[f64]) -> Self {
        let n = teacher.len() as f64;
        let teacher_mean = teacher.iter().sum::<f64>() / n;
        let student_mean = student.iter().sum::<f64>() / n;
        let (mut stt, mut sss, mut sts) = (0.0, 0.0, 0.0);
        for (t, s) in teacher.iter().zip(student) {
            let dt = t - teacher_mean;
            let ds = s - student_mean;
            stt += dt * dt;
            sss += ds * ds;
            sts += dt * ds;
        }
        let denom = if teacher.len() > 1 { n - 1.0 } else { 1.0 };
        Self {
            teacher_mean,
            student_mean,
            teacher_var: stt / denom,
            student_var: sss / denom,
            covariance: sts / denom,
        }
    }

    /// Population moments of binary (pass/fail) scores from rates:
    /// teacher accuracy `p_t`, student accuracy `p_s` and the discordance
    /// `d = P(exactly one of them is right)`.
    ///
    /// With `p10 = P(teacher right, student wrong) = (d + p_t - p_s) / 2`, the
    /// joint success rate is `p11 = p_t - p10`, so `Var(T) = p_t(1 - p_t)`,
    /// `Var(S) = p_s(1 - p_s)` and `Cov(T, S) = p11 - p_t p_s`.
    ///
    /// Errors unless the rates lie in [0, 1] and `d` is consistent with them
    /// (all four cell probabilities non-negative).
    pub fn from_binary_rates(
        teacher_accuracy: f64,
        student_accuracy: f64,
        discordance: f64,
    ) -> Result<Self, StatsError> {
        for (field, value) in [
            ("teacher accuracy", teacher_accuracy),
            ("student accuracy", student_accuracy),
            ("discordance", discordance),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(StatsError::Parameter {
                    field,
                    expected: "a number in [0, 1]",
                    value,
                });
            }
        }
        let p10 = (discordance + teacher_accuracy - student_accuracy) / 2.0;
        let p01 = (discordance - teacher_accuracy + student_accuracy) / 2.0;
        let p11 = teacher_accuracy - p10;
        let p00 = 1.0 - p11 - p10 - p01;
        // A small tolerance absorbs rounding in rates computed from counts.
        let tol = 1e-12;
        if p10 < -tol || p01 < -tol || p11 < -tol || p00 < -tol {
            return Err(StatsError::Parameter {
                field: "discordance",
                expected: "between |p_t - p_s| and min(p_t + p_s, 2 - p_t - p_s)",
                value: discordance,
            });
        }
        Ok(Self {
            teacher_mean: teacher_accuracy,
            student_mean: student_accuracy,
            teacher_var: teacher_accuracy * (1.0 - teacher_accuracy),
            student_var: student_accuracy * (1.0 - student_accuracy),
            covariance: p11.max(0.0) - teacher_accuracy * student_accuracy,
        })
    }
}
