//! The error type of the statistics module.

use thiserror::Error;

/// Invalid input to a statistics function. Every variant names the offending
/// field or item so the message can be shown to a user as is.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// A confidence level outside the open interval (0, 1).
    #[error("confidence must be strictly between 0 and 1, got {value}")]
    Confidence {
        /// The value that was given.
        value: f64,
    },
    /// A probability-like parameter (power, a rate) outside its allowed range.
    #[error("{field} must be {expected}, got {value}")]
    Parameter {
        /// Name of the parameter, e.g. `power` or `discordance`.
        field: &'static str,
        /// Human description of the allowed range.
        expected: &'static str,
        /// The value that was given.
        value: f64,
    },
    /// Paired inputs of different lengths.
    #[error("paired samples differ in length: teacher has {teacher} items, student has {student}")]
    LengthMismatch {
        /// Number of teacher items.
        teacher: usize,
        /// Number of student items.
        student: usize,
    },
    /// A score that is not a finite number in [0, 1].
    #[error("{model} score at item index {index} is {value}; expected a finite number in [0, 1]")]
    ScoreOutOfRange {
        /// Which side of the pair (`teacher` or `student`).
        model: &'static str,
        /// Zero-based index of the item.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A statistic asked of an empty sample.
    #[error("{what}: no observations")]
    Empty {
        /// What was being computed.
        what: &'static str,
    },
    /// More successes than trials in a binomial count.
    #[error("successes ({successes}) exceed trials ({n})")]
    SuccessesExceedTrials {
        /// Number of successes given.
        successes: u64,
        /// Number of trials given.
        n: u64,
    },
    /// A sample value that is NaN or infinite.
    #[error("{what}: value at index {index} is not finite ({value})")]
    NonFinite {
        /// What the values are.
        what: &'static str,
        /// Zero-based index of the value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Values that were required to be sorted ascending are not.
    #[error("{what}: values must be sorted ascending, but index {index} ({value}) is below index {prev} ({prev_value})", prev = .index - 1)]
    NotSorted {
        /// What the values are.
        what: &'static str,
        /// Zero-based index of the first value smaller than its predecessor (always >= 1).
        index: usize,
        /// That value.
        value: f64,
        /// The predecessor's value.
        prev_value: f64,
    },
    /// A percentile outside [0, 100].
    #[error("percentile must be in [0, 100], got {value}")]
    Percentile {
        /// The value that was given.
        value: f64,
    },
    /// pass@k arguments that do not satisfy `c <= n` and `1 <= k <= n`.
    #[error("pass@k needs c <= n and 1 <= k <= n; got n = {n}, c = {c}, k = {k}")]
    PassAtK {
        /// Samples drawn per problem.
        n: u64,
        /// Correct samples.
        c: u64,
        /// The k of pass@k.
        k: u64,
    },
    /// Too few bootstrap resamples for a percentile interval.
    #[error("bootstrap needs at least {min} resamples, got {got}")]
    TooFewResamples {
        /// The minimum accepted.
        min: u32,
        /// The number requested.
        got: u32,
    },
    /// A retention threshold that is not a finite positive number.
    #[error("retention threshold must be a finite number > 0, got {value}")]
    Threshold {
        /// The value that was given.
        value: f64,
    },
    /// Cluster labels that do not cover the paired items one to one.
    #[error("{labels} cluster labels for {items} paired items")]
    ClusterLength {
        /// Number of paired items.
        items: usize,
        /// Number of labelled items.
        labels: usize,
    },
    /// A distribution from `statrs` rejected its parameters (should not
    /// happen for validated input; kept so nothing panics).
    #[error("{distribution} distribution rejected its parameters: {detail}")]
    Distribution {
        /// Which distribution.
        distribution: &'static str,
        /// The message from statrs.
        detail: String,
    },
}

/// Checks that `confidence` lies strictly between 0 and 1.
pub(crate) fn check_confidence(confidence: f64) -> Result<(), StatsError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(StatsError::Confidence { value: confidence })
    }
}

/// Checks that paired score slices have equal length and hold finite scores in [0, 1].
pub(crate) fn check_paired_scores(teacher: &[f64], student: &[f64]) -> Result<(), StatsError> {
    if teacher.len() != student.len() {
        return Err(StatsError::LengthMismatch {
            teacher: teacher.len(),
            student: student.len(),
        });
    }
    check_scores("teacher", teacher)?;
    check_scores("student", student)
}

/// Checks that every score is a finite number in [0, 1].
pub(crate) fn check_scores(model: &'static str, scores: &[f64]) -> Result<(), StatsError> {
    match scores
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        Some((index, &value)) => Err(StatsError::ScoreOutOfRange {
            model,
            index,
            value,
        }),
        None => Ok(()),
    }
}
