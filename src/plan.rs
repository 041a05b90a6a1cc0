//! Planning a suite's size: `distill-gate plan`.
//!
//! From expected rates, the number of paired items for a retention gate to
//! PASS with a given power when the student truly keeps the expected
//! retention; from an existing run, the items to add for each INCONCLUSIVE
//! gate to be decided, at the observed rates. Both are computed exactly by
//! [`crate::stats::items_to_add`]: the gate's own rule (the
//! `min_teacher_correct` floor, the FAIL on an upper bound below the
//! threshold, and the configured interval method, the score interval by
//! default) summed over every possible table of pass/fail outcomes. The
//! normal-approximation sample size `n = ⌈(z_c + z_power)² σ_D² / δ²⌉`
//! with `D = S - t T` ([`crate::stats::items_needed`]; Chow, Shao & Wang
//! 2008, §3.1) is what Fieller's interval plans for in large suites; it is
//! reported beside the exact count and used when the exact sum would be too
//! large or the scores are not pass/fail.
//!
//! tests/plan.rs checks by simulating the gate ([`crate::gate::decide`]) at
//! the planned size that it passes (or decides) with the stated power.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gate::{ClusterBy, Verdict};
use crate::jsonl::{JsonFileError, read_json};
use crate::stats::{
    CellShares, Goal, IntervalMethod, PairedCells, PairedMoments, RetentionRule, StatsError,
    additional_items_needed, items_needed, items_to_add, items_to_add_on_table,
};
use crate::summary::Summary;

/// Invalid planning input.
#[derive(Debug, Error)]
pub enum PlanError {
    /// A rate or setting out of range.
    #[error("{0}")]
    Stats(#[from] StatsError),
    /// A run's `summary.json` could not be read.
    #[error(transparent)]
    Summary(#[from] JsonFileError),
}

/// What a team expects of its suite and models, and the gate's settings.
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
    /// The run's `min_teacher_correct`.
    pub min_teacher_correct: u64,
    /// The run's `[gate] interval`.
    pub method: IntervalMethod,
}

/// The plan for one set of expectations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// The input.
    pub input: PlanInput,
    /// Expected student accuracy `R p_T`.
    pub student_accuracy: f64,
    /// Paired items in total (a fresh suite) for a PASS with probability
    /// `power`; `None` when the expected retention does not exceed the
    /// threshold (no suite size makes the gate pass).
    pub items: Option<u64>,
    /// The probability of PASS at `items`, computed exactly; `None` when
    /// `items` is the large-sample estimate.
    pub probability: Option<f64>,
    /// Teacher-correct items expected at that size.
    pub teacher_correct: Option<f64>,
    /// The normal-approximation count of the z test on `S - t T` (what the
    /// plan said before it counted the floor and the score interval).
    pub normal_approximation: Option<u64>,
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
    let shares =
        CellShares::from_rates(input.teacher_accuracy, student_accuracy, input.disagreement)?;
    let rule = RetentionRule {
        threshold: input.threshold,
        confidence: input.confidence,
        min_teacher_correct: input.min_teacher_correct,
        method: input.method,
    };
    let exact = items_to_add(
        &rule,
        &PairedCells::default(),
        &shares,
        input.power,
        Goal::Pass,
    )?;
    let items = exact.map(|e| e.total);
    Ok(PlanResult {
        input: *input,
        student_accuracy,
        items,
        probability: exact.and_then(|e| e.probability),
        teacher_correct: items.map(|n| n as f64 * input.teacher_accuracy),
        normal_approximation: items_needed(
            &moments,
            input.threshold,
            input.confidence,
            input.power,
        )?,
    })
}

impl fmt::Display for PlanResult {
    /// The plan for people: the expectations, then the suite size and its
    /// probability of PASS under the gate's rule, or why there is none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = &self.input;
        writeln!(
            f,
            "teacher accuracy {}, student accuracy {} (retention {}), disagreement {}",
            input.teacher_accuracy, self.student_accuracy, input.retention, input.disagreement
        )?;
        let rule = format!(
            "min_retention {}, confidence {}, {} interval, at least {} teacher-right items",
            input.threshold, input.confidence, input.method, input.min_teacher_correct
        );
        match self.items {
            Some(n) => writeln!(
                f,
                "{n} paired items in total (a fresh suite) PASS with probability at least {}%{} ({rule}; \
                 about {:.0} of them right for the teacher)",
                input.power * 100.0,
                match self.probability {
                    Some(pr) => format!(" (exactly {:.1}%)", pr * 100.0),
                    None => " (large-sample estimate)".to_string(),
                },
                self.teacher_correct.unwrap_or(0.0)
            ),
            None => writeln!(
                f,
                "no suite size: an expected retention of {} does not exceed min_retention {}, \
                 so the gate would tend to FAIL",
                input.retention, input.threshold
            ),
        }
    }
}

/// How many more items one INCONCLUSIVE gate of a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoreItems {
    /// Student name.
    pub student: String,
    /// What the gate covers: the suite, or `suite/category`.
    pub suite: String,
    /// Paired items in the run.
    pub n: usize,
    /// Observed teacher accuracy on the paired items.
    pub teacher_accuracy: f64,
    /// Observed retention, when measurable.
    pub retention: Option<f64>,
    /// Observed disagreement.
    pub disagreement: f64,
    /// Paired items to add for the gate to be decided (PASS or FAIL) with
    /// the wanted power; `None` when no number of items is likely to.
    pub more: Option<u64>,
    /// `n + more`.
    pub total: Option<u64>,
    /// Whether `more` is exact (the gate's rule over every table of
    /// pass/fail outcomes) rather than an estimate (large-sample, or
    /// fractional scores planned on their expected pass/fail table).
    pub exact: bool,
}

impl MoreItems {
    /// One line for people: the gate, its observed rates, and the items to
    /// add for it to be decided with probability `power`.
    pub fn describe(&self, power: f64) -> String {
        let more = match (self.more, self.total) {
            (Some(k), Some(total)) => format!(
                "{k} more paired items ({total} in total) would decide it with probability \
                 {power}{}",
                if self.exact { "" } else { " (estimate)" }
            ),
            _ => "no number of added items is likely to decide it".to_string(),
        };
        format!(
            "{} on {}: {} items, teacher accuracy {:.3}, retention {}, disagreement {:.3}: {more}",
            self.student,
            self.suite,
            self.n,
            self.teacher_accuracy,
            self.retention
                .map_or("not measurable".to_string(), |x| format!("{x:.4}")),
            self.disagreement
        )
    }
}

/// [`more_items`] for the run in `run_dir`, read from its `summary.json`.
pub fn more_items_of_run(run_dir: &Path, power: f64) -> Result<Vec<MoreItems>, PlanError> {
    let path = run_dir.join("summary.json");
    let summary: Summary = read_json(
        &path,
        format!("{}: cannot read", path.display()),
        format!("{}: malformed", path.display()),
    )?;
    more_items(&summary, power)
}

/// For every INCONCLUSIVE gate of `summary`, the items to add for it to be
/// decided with probability `power`, at the observed rates, under the
/// run's rule (its floor, confidence and interval method): exact for
/// unclustered pass/fail scores; fractional or clustered scores under the
/// score interval planned the same way on the pass/fail table it judged
/// (an estimate; clustered items as if they were not). Other runs (other
/// intervals on fractional or clustered scores, or summaries written
/// before the counts were recorded) get the large-sample count of the z
/// test from the observed rates, or the run's own figure when retention
/// was not measurable.
pub fn more_items(summary: &Summary, power: f64) -> Result<Vec<MoreItems>, PlanError> {
    let mut out = Vec::new();
    for g in summary
        .gates
        .iter()
        .filter(|g| g.verdict == Verdict::Inconclusive)
    {
        let Some(c) = summary.comparisons.iter().find(|c| g.is_of(c)) else {
            continue;
        };
        let n = c.n.max(1) as f64;
        let teacher_accuracy = c.teacher_correct as f64 / n;
        let disagreement = (c.teacher_only + c.student_only) as f64 / n;
        let recorded = summary
            .statistics
            .gate_retention
            .iter()
            .find(|r| r.student == g.student && r.suite == g.suite && r.category == g.category);
        let exact = match recorded {
            Some(r) => {
                let rule = RetentionRule {
                    threshold: g.thresholds.min_retention,
                    confidence: r.confidence,
                    min_teacher_correct: r.min_teacher_correct,
                    method: summary.statistics.interval,
                };
                let clustered = summary.statistics.clusters != ClusterBy::None;
                let score = summary.statistics.interval == IntervalMethod::Score;
                // The pass/fail table the score interval judged: the cells,
                // or the expected cells of fractional scores.
                let table_discordance = r.expected_discordance.or(r.cells.map(|c| c.discordance()));
                match (r.cells, table_discordance, r.point) {
                    (Some(cells), _, _) if !clustered => match CellShares::observed(&cells) {
                        Some(shares) => {
                            Some(items_to_add(&rule, &cells, &shares, power, Goal::Decide)?)
                        }
                        None => None,
                    },
                    // Fractional or clustered scores under the score
                    // interval: planned on that table, as the gate plans
                    // them (an estimate).
                    (_, Some(d), Some(point)) if score => {
                        let teacher_mean = r.teacher_correct / r.n.max(1) as f64;
                        Some(items_to_add_on_table(
                            &rule,
                            r.n,
                            teacher_mean,
                            point * teacher_mean,
                            d,
                            power,
                        )?)
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let (more, is_exact) = match exact {
            Some(e) => (
                e.map(|e| e.more),
                e.is_some_and(|e| e.probability.is_some()),
            ),
            None => (
                large_sample_more(g, c, teacher_accuracy, disagreement, power)?,
                false,
            ),
        };
        out.push(MoreItems {
            student: g.student.clone(),
            suite: g.scope(),
            n: c.n,
            teacher_accuracy,
            retention: c.retention,
            disagreement,
            more,
            total: more.map(|k| c.n as u64 + k),
            exact: is_exact,
        });
    }
    Ok(out)
}

/// The large-sample count of [`more_items`] for runs without pass/fail cells.
fn large_sample_more(
    g: &crate::summary::GateResult,
    c: &crate::summary::Comparison,
    teacher_accuracy: f64,
    disagreement: f64,
    power: f64,
) -> Result<Option<u64>, PlanError> {
    Ok(match c.retention {
        Some(r) if teacher_accuracy > 0.0 => {
            let ps = (r * teacher_accuracy).min(1.0);
            // Fractional scores: rates need not form a binary table; take
            // the smallest consistent disagreement.
            let m = PairedMoments::from_binary_rates(
                teacher_accuracy,
                ps,
                disagreement.max((teacher_accuracy - ps).abs()),
            )?;
            additional_items_needed(
                &m,
                g.thresholds.min_retention,
                g.thresholds.confidence,
                power,
                c.n as u64,
            )?
        }
        _ => g.items_needed,
    })
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
            min_teacher_correct: 10,
            method: IntervalMethod::Score,
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
