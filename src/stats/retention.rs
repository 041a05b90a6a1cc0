//! The outcome of a retention estimate: measured, or a typed reason why not.
//!
//! Retention `R = mean(student) / mean(teacher)` is undefined when the
//! teacher's mean score is 0; estimators return [`Retention::Unmeasurable`]
//! then, never NaN or infinity.

use serde::{Deserialize, Serialize};

/// Retention as measured by an estimator `E` ([`super::BootstrapEstimate`] or
/// [`super::DeltaEstimate`]), or why it could not be measured.
///
/// Serialized with a `status` tag: `{"status": "measured", ...}` or
/// `{"status": "unmeasurable", "reason": ..., ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Retention<E> {
    /// The estimate.
    Measured(E),
    /// Retention is undefined for these data.
    Unmeasurable(Unmeasurable),
}

impl<E> Retention<E> {
    /// The estimate, if retention was measured.
    pub fn measured(&self) -> Option<&E> {
        match self {
            Retention::Measured(e) => Some(e),
            Retention::Unmeasurable(_) => None,
        }
    }
}

/// Why retention could not be measured, with the sample that showed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unmeasurable {
    /// The reason.
    pub reason: UnmeasurableReason,
    /// Number of paired items.
    pub n: u64,
    /// Mean teacher score, `None` when there are no items.
    pub teacher_mean: Option<f64>,
    /// Mean student score, `None` when there are no items.
    pub student_mean: Option<f64>,
}

/// Reasons retention cannot be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmeasurableReason {
    /// There are no paired items.
    NoItems,
    /// The teacher scored 0 on every item, so the ratio has a zero denominator.
    TeacherScoredZero,
    /// The student scored 0 on every item: R = 0, but its logarithm (and so
    /// the delta-method interval on log R) is undefined. Only the delta method
    /// reports this; the bootstrap measures R = 0.
    StudentScoredZero,
    /// Every bootstrap resample drew only items the teacher scored 0 on.
    AllResamplesUndefined,
}

impl std::fmt::Display for UnmeasurableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnmeasurableReason::NoItems => "there are no paired items",
            UnmeasurableReason::TeacherScoredZero => "the teacher scored 0 on every item",
            UnmeasurableReason::StudentScoredZero => {
                "the student scored 0 on every item, so log retention is undefined"
            }
            UnmeasurableReason::AllResamplesUndefined => {
                "every bootstrap resample had a teacher score of 0"
            }
        })
    }
}

/// Sample means of paired, validated scores (`None` when empty).
pub(crate) fn unmeasurable(
    reason: UnmeasurableReason,
    teacher: &[f64],
    student: &[f64],
) -> Unmeasurable {
    let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    Unmeasurable {
        reason,
        n: teacher.len() as u64,
        teacher_mean: mean(teacher),
        student_mean: mean(student),
    }
}
