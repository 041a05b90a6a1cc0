//! From journal lines to the [`Summary`]: per-model statistics, paired
//! comparisons with the teacher, and one gate decision per (student, suite).
//!
//! Pairing rules: a student's item is compared with the teacher's item of the
//! same suite and task id. Items the teacher errored on cannot be compared
//! and are left out of the pairs (the teacher's error rate is reported); an
//! item the student errored on counts as wrong in the pairs *and* as an
//! error in the student's error rate, which the gate checks. An errored item
//! is asked again when the run resumes; its new answer is what is paired,
//! and the failed attempts still count in the error rate.
//!
//! When a suite draws several samples per item, an item's score is the mean
//! of its samples' scores (for binary scores, the unbiased pass@1 estimate
//! c/n), the gate works on those item scores, an item with any failed call
//! counts as an error, and pass@k is reported for each k up to the samples
//! drawn. Latency, tokens and cost count every sample.

mod gating;
mod items;
mod statistics;

use crate::gate;
use crate::run::journal::JournalEntry;
use crate::run::plan::Plan;
use crate::stats;
use crate::summary::{ModelInfo, RunStatistics, Summary};

pub use crate::summary::ALL;

/// A failure to compute statistics (invalid thresholds reach here only if
/// the config validation missed them).
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// A statistic rejected its input.
    #[error("statistics: {0}")]
    Stats(#[from] stats::StatsError),
    /// The gate rejected its thresholds or input.
    #[error("gate: {0}")]
    Gate(#[from] gate::GateError),
}

/// Identity facts about the models, gathered while the run executed or
/// read back from an earlier summary.
pub type ModelInfos = Vec<ModelInfo>;

/// Computes the summary of a run from its journal, in three stages:
/// grouping ([`items`]: the planned items' journal lines per model, the
/// scopes), statistics ([`statistics`]: model rows, comparisons, pending
/// gates) and gating ([`gating`]: decisions, family-wise adjusted).
pub fn summarize(
    plan: &Plan,
    entries: &[JournalEntry],
    models: ModelInfos,
    config_sha256: &str,
) -> Result<Summary, SummarizeError> {
    let config = &plan.config;
    let planned = items::planned(plan);
    let by_model = items::by_model(entries, &planned, &items::samples(plan));
    let scopes = items::scopes(plan, &planned);
    let measured = statistics::measure(plan, &by_model, &scopes)?;
    let mut statistics = RunStatistics {
        interval: config.gate.interval,
        clusters: config.gate.clusters.clone(),
        family_wise: config.gate.family_wise,
        min_teacher_correct: Some(config.run.min_teacher_correct),
        sample_variances: measured.sample_variances,
        design_effects: measured.design_effects,
        ..RunStatistics::default()
    };
    let gates = gating::decide(&measured.pending, config, &mut statistics)?;
    let failed = gating::run_fails(&gates, config.run.inconclusive_fails);
    let mut summary = Summary {
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        run: config
            .run_dir()
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        config_sha256: config_sha256.to_string(),
        seed: config.run.seed,
        bootstrap_resamples: config.run.bootstrap_resamples,
        models,
        suites: items::suite_infos(plan),
        model_stats: measured.model_stats,
        comparisons: measured.comparisons,
        gates,
        inconclusive_fails: config.run.inconclusive_fails,
        exit_code: i32::from(failed),
        statistics,
        contamination: plan.contamination.clone(),
        isolation: plan
            .scores_code()
            .then(|| crate::sandbox::isolation_here().unwrap_or_else(|e| format!("none: {e}"))),
        swap_plans: Vec::new(),
    };
    summary.swap_plans = super::swap::swap_plans(&summary, entries)?;
    Ok(summary)
}
