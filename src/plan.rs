//! Planning a suite's size: `distill-gate plan`.
//!
//! From expected rates, the number of paired items a retention gate needs
//! to PASS with a given power when the student truly keeps the expected
//! retention: the non-inferiority sample size for a ratio of paired binary
//! proportions, `n = ⌈(z_c + z_power)² σ_D² / δ²⌉` with `D = S - t T`
//! ([`crate::stats::items_needed`]; Chow, Shao & Wang 2008, §3.1). From an
//! existing run, the additional items that would likely settle each
//! INCONCLUSIVE gate, from the observed rates.
//!
//! The formula plans for the z test on `S̄ - t T̄`, which is what the
//! Fieller and score intervals invert; tests/plan.rs checks by simulation
//! that the default gate reaches the planned power.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gate::Verdict;
use crate::stats::{PairedMoments, StatsError, additional_items_needed, items_needed};
use crate::summary::Summary;

/// Invalid planning input.
#[derive(Debug, Error)]
pub enum PlanError {
    /// A rate or setting out of range.
    #[error("{0}")]
    Stats(#[from] StatsError),
}

/// What a team expects of its suite and models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Expected teacher accuracy, in (0, 1].
    pub teacher_accuracy: f64,
    /// Expected retention `p_S / p_T`.
    pub retention: f64,
    /// Expected disagreement: share of items exactly one model gets right.
    pub disagreement: f64,
    /// The gate's `min_retention`.
    pub threshold: f64,
    /// The gate's confidence.
    pub confidence: f64,
    /// Wanted probability of a PASS when the expectations hold.
    pub power: f64,
}

/// The plan for one set of expectations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// The input.
    pub input: PlanInput,
    /// Expected student accuracy `R p_T`.
    pub student_accuracy: f64,
    /// Paired items needed; `None` when the expected retention does not
    /// exceed the threshold (no suite size makes the gate pass).
    pub items: Option<u64>,
    /// Teacher-correct items expected at that size.
    pub teacher_correct: Option<f64>,
}

/// Items needed for the expectations in `input`.
///
/// Errors when the rates are out of range or inconsistent (the
/// disagreement must lie between `|p_T - p_S|` and
/// `min(p_T + p_S, 2 - p_T - p_S)`).
pub fn plan(input: &PlanInput) -> Result<PlanResult, PlanError> {
    let student_accuracy = input.teacher_accuracy * input.retention;
    let moments = PairedMoments::from_binary_rates(
        input.teacher_accuracy,
        student_accuracy,
        input.disagreement,
    )?;
    let items = items_needed(&moments, input.threshold, input.confidence, input.power)?;
    Ok(PlanResult {
        input: *input,
        student_accuracy,
        items,
        teacher_correct: items.map(|n| n as f64 * input.teacher_accuracy),
    })
}

/// How many more items one INCONCLUSIVE gate of a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoreItems {
    /// Student name.
    pub student: String,
    /// Suite name.
    pub suite: String,
    /// Paired items in the run.
    pub n: usize,
    /// Observed teacher accuracy on the paired items.
    pub teacher_accuracy: f64,
    /// Observed retention, when measurable.
    pub retention: Option<f64>,
    /// Observed disagreement.
    pub disagreement: f64,
    /// Additional paired items; `None` when the observed retention does
    /// not exceed the threshold or retention could not be measured and the
    /// run gave no estimate.
    pub more: Option<u64>,
}

/// For every INCONCLUSIVE gate of `summary`, the additional items that
/// would settle it at `power`, from the observed rates (teacher accuracy,
/// retention and disagreement of the whole-suite comparison). A gate whose
/// retention was not measurable keeps the run's own estimate (items until
/// the teacher has enough right answers).
pub fn more_items(summary: &Summary, power: f64) -> Result<Vec<MoreItems>, PlanError> {
    let mut out = Vec::new();
    for g in summary
        .gates
        .iter()
        .filter(|g| g.verdict == Verdict::Inconclusive)
    {
        let Some(c) = summary
            .comparisons
            .iter()
            .find(|c| c.student == g.student && c.suite == g.suite && c.category.is_none())
        else {
            continue;
        };
        let n = c.n.max(1) as f64;
        let teacher_accuracy = c.teacher_correct as f64 / n;
        let disagreement = (c.teacher_only + c.student_only) as f64 / n;
        let more = match c.retention {
            Some(r) if teacher_accuracy > 0.0 => {
                let m = PairedMoments::from_binary_rates(
                    teacher_accuracy,
                    (r * teacher_accuracy).min(1.0),
                    disagreement,
                )
                .or_else(|_| {
                    // Fractional scores: rates need not form a binary table;
                    // take the smallest consistent disagreement.
                    let ps = (r * teacher_accuracy).min(1.0);
                    PairedMoments::from_binary_rates(
                        teacher_accuracy,
                        ps,
                        disagreement.max((teacher_accuracy - ps).abs()),
                    )
                })?;
                additional_items_needed(
                    &m,
                    g.thresholds.min_retention,
                    g.thresholds.confidence,
                    power,
                    c.n as u64,
                )?
            }
            _ => g.items_needed,
        };
        out.push(MoreItems {
            student: g.student.clone(),
            suite: g.suite.clone(),
            n: c.n,
            teacher_accuracy,
            retention: c.retention,
            disagreement,
            more,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_rates_are_errors() {
        let input = PlanInput {
            teacher_accuracy: 0.9,
            retention: 0.5,
            disagreement: 0.1,
            threshold: 0.4,
            confidence: 0.95,
            power: 0.8,
        };
        assert!(plan(&input).is_err());
        let ok = PlanInput {
            disagreement: 0.5,
            ..input
        };
        assert!(plan(&ok).unwrap().items.is_some());
        let hopeless = PlanInput {
            threshold: 0.6,
            ..ok
        };
        assert_eq!(plan(&hopeless).unwrap().items, None);
    }
}
