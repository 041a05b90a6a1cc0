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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::GateConfig;
use crate::gate::{self, ClusterBy, GateInput, GateThresholds};
use crate::model::LatencySource;
use crate::run::journal::{JournalEntry, Role};
use crate::run::plan::Plan;
use crate::stats::{self, BootstrapEstimate, BootstrapOptions, Clusters, Retention};
use crate::summary::{
    AdjustedConfidence, Comparison, DesignEffect, GateResult, GateRetention, Interval,
    IntervalSource, LatencyOrigin, LatencyStats, ModelInfo, ModelStats, PassAtK, RunStatistics,
    SampleVariance, SuiteInfo, Summary,
};

/// A slice of the run statistics are computed on: a suite (or [`ALL`]), an
/// optional category, and the (suite, task id) keys in it.
type Scope<'a> = (String, Option<String>, Vec<(&'a str, &'a str)>);

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

/// Computes the summary of a run from its journal.
pub fn summarize(
    plan: &Plan,
    entries: &[JournalEntry],
    models: ModelInfos,
    config_sha256: &str,
) -> Result<Summary, SummarizeError> {
    let config = &plan.config;
    // Only the planned items count (a journal may hold items of a larger limit).
    let planned: BTreeSet<(&str, &str)> = plan
        .suites
        .iter()
        .flat_map(|s| s.items.iter().map(move |i| (s.name(), i.task.id.as_str())))
        .collect();
    let samples: HashMap<&str, u32> = plan.suites.iter().map(|s| (s.name(), s.samples)).collect();
    let mut by_sample: BTreeMap<&str, HashMap<(&str, &str), Vec<&JournalEntry>>> = BTreeMap::new();
    for e in entries {
        let wanted = samples.get(e.suite.as_str()).copied().unwrap_or(1);
        if e.sample < wanted && planned.contains(&(e.suite.as_str(), e.task_id.as_str())) {
            let answers = by_sample
                .entry(e.model.as_str())
                .or_default()
                .entry((e.suite.as_str(), e.task_id.as_str()))
                .or_default();
            // A journal holds each sample once; keep the last line if not.
            answers.retain(|a| a.sample != e.sample);
            answers.push(e);
        }
    }
    let by_model: BTreeMap<&str, HashMap<(&str, &str), Item>> = by_sample
        .into_iter()
        .map(|(model, items)| {
            let items = items.into_iter().map(|(k, v)| (k, Item::of(v))).collect();
            (model, items)
        })
        .collect();
    let empty = HashMap::new();
    let labels = ClusterLabels::of(plan);

    let mut suites = Vec::new();
    let mut model_stats = Vec::new();
    let mut comparisons = Vec::new();
    let mut gates = Vec::new();
    let mut pending: Vec<PendingGate> = Vec::new();
    let mut statistics = RunStatistics {
        interval: config.gate.interval,
        clusters: config.gate.clusters.clone(),
        family_wise: config.gate.family_wise,
        min_teacher_correct: Some(config.run.min_teacher_correct),
        ..RunStatistics::default()
    };

    for ps in &plan.suites {
        let categories: BTreeSet<&str> =
            ps.items.iter().map(|i| i.task.category.as_str()).collect();
        suites.push(SuiteInfo {
            name: ps.name().to_string(),
            version: ps.suite.config.version.clone(),
            split: ps.split.clone(),
            items: ps.items.len(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
        });
    }

    // Scopes: (suite or ALL, category or None) with their item keys.
    let mut scopes: Vec<Scope> = Vec::new();
    for ps in &plan.suites {
        let keys: Vec<_> = ps
            .items
            .iter()
            .map(|i| (ps.name(), i.task.id.as_str()))
            .collect();
        scopes.push((ps.name().to_string(), None, keys));
        let mut cats: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for i in &ps.items {
            cats.entry(i.task.category.as_str())
                .or_default()
                .push((ps.name(), i.task.id.as_str()));
        }
        for (c, keys) in cats {
            scopes.push((ps.name().to_string(), Some(c.to_string()), keys));
        }
    }
    if plan.suites.len() > 1 {
        scopes.push((ALL.to_string(), None, planned.iter().copied().collect()));
    }

    let teacher = config.teacher.name.as_str();
    let teacher_items = by_model.get(teacher).unwrap_or(&empty);
    for (suite, category, keys) in &scopes {
        for (role, name) in std::iter::once((Role::Teacher, teacher)).chain(
            config
                .students
                .iter()
                .map(|s| (Role::Student, s.name.as_str())),
        ) {
            let items = by_model.get(name).unwrap_or(&empty);
            let rows: Vec<&Item> = keys.iter().filter_map(|k| items.get(k)).collect();
            if rows.is_empty() && !takes_part(config, name, suite, category.as_deref()) {
                // A task-specific student has no row where it takes nothing.
                continue;
            }
            let thresholds = scope_thresholds(config, name, suite, plan);
            if let Some((items, mean_item_variance)) = sample_variance(&rows) {
                statistics.sample_variances.push(SampleVariance {
                    model: name.to_string(),
                    suite: suite.clone(),
                    category: category.clone(),
                    items,
                    mean_item_variance,
                });
            }
            model_stats.push(model_row(
                name,
                role,
                suite,
                category.as_deref(),
                &rows,
                &thresholds,
            )?);
        }
        let teacher_row = model_stats
            .iter()
            .rev()
            .find(|r| r.model == teacher && &r.suite == suite && &r.category == category)
            .cloned();
        for student in &config.students {
            // A task-specific student is compared with the teacher only
            // on each category it takes, never on a mix of its items and
            // items it was not asked.
            let compared = student.categories.is_empty()
                || category.as_deref().is_some_and(|c| student.takes(suite, c));
            if !compared {
                continue;
            }
            let items = by_model.get(student.name.as_str()).unwrap_or(&empty);
            let thresholds = scope_thresholds(config, &student.name, suite, plan);
            let student_row = model_stats
                .iter()
                .rev()
                .find(|r| r.model == student.name && &r.suite == suite && &r.category == category)
                .cloned();
            let (cmp, paired, design_effect) = compare(
                &student.name,
                suite,
                category.as_deref(),
                keys,
                teacher_items,
                items,
                &thresholds,
                config,
                teacher_row.as_ref(),
                student_row.as_ref(),
                &labels,
            )?;
            if let Some(d) = design_effect {
                statistics.design_effects.push(d);
            }
            // Gates: one per suite, or per category taken over.
            let gated = suite != ALL && (category.is_none() == student.categories.is_empty());
            if gated {
                let student_row = student_row.as_ref();
                pending.push(PendingGate {
                    student: student.name.clone(),
                    suite: suite.clone(),
                    category: category.clone(),
                    teacher_unanswered: teacher_row.as_ref().map_or(0, |r| r.unanswered),
                    thresholds: thresholds.clone(),
                    input: GateInput {
                        retention: paired.estimate.clone(),
                        p95_latency_ms: student_row.and_then(|r| r.latency.map(|l| l.p95_ms)),
                        speedup: cmp.speedup,
                        cost_ratio: cmp.cost_ratio,
                        error_rate: student_row.map(|r| r.error_rate),
                    },
                    paired,
                });
            }
            comparisons.push(cmp);
        }
    }

    // The run's gates as one family: each judged at its (adjusted) confidence.
    let configured: Vec<f64> = pending.iter().map(|g| g.thresholds.confidence).collect();
    let adjusted = gate::family_confidences(config.gate.family_wise, &configured, |i, c| {
        let Some(g) = pending.get(i) else {
            return Ok(false);
        };
        let (d, _) = g.decide_at(c, config)?;
        Ok::<_, SummarizeError>(
            d.criteria
                .first()
                .is_some_and(|r| r.verdict == gate::Verdict::Pass),
        )
    })?;
    for (g, c) in pending.iter().zip(adjusted) {
        let (decision, retention) = g.decide_at(c, config)?;
        statistics
            .gate_retention
            .push(gate_retention(g, c, &decision, &retention));
        if config.gate.family_wise != gate::FamilyWise::None {
            statistics.adjusted_confidences.push(AdjustedConfidence {
                student: g.student.clone(),
                suite: g.suite.clone(),
                category: g.category.clone(),
                configured: g.thresholds.confidence,
                adjusted: c,
            });
        }
        let thresholds = &g.thresholds;
        let mut reasons = decision.reasons;
        if g.paired.teacher.is_empty() && g.teacher_unanswered > 0 {
            reasons.push(format!(
                "the teacher has no answer for {} item(s) (its calls failed; see its errors): \
                 running again asks them again",
                g.teacher_unanswered
            ));
        }
        gates.push(GateResult {
            student: g.student.clone(),
            suite: g.suite.clone(),
            category: g.category.clone(),
            verdict: decision.verdict,
            reasons,
            items_needed: decision.items_needed,
            thresholds: thresholds.clone(),
        });
    }

    let failed = gates.iter().any(|g| match g.verdict {
        gate::Verdict::Pass => false,
        gate::Verdict::Fail => true,
        gate::Verdict::Inconclusive => config.run.inconclusive_fails,
    });
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
        suites,
        model_stats,
        comparisons,
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

/// Whether model `name` is asked some items of the scope (`suite` may be
/// [`ALL`]; `category` `None` for every category).
fn takes_part(config: &GateConfig, name: &str, suite: &str, category: Option<&str>) -> bool {
    let Some(m) = config.models().find(|m| m.name == name) else {
        return false;
    };
    suite == ALL || crate::config::takes(&m.categories, suite, category)
}

/// Cluster labels of the planned items: as configured, and by category
/// (for the design effect reported when clustering is off). Labels include
/// the suite, so categories of different suites are different clusters.
struct ClusterLabels<'a> {
    by: ClusterBy,
    configured: HashMap<(&'a str, &'a str), String>,
    category: HashMap<(&'a str, &'a str), String>,
}

impl<'a> ClusterLabels<'a> {
    fn of(plan: &'a Plan) -> Self {
        let by = plan.config.gate.clusters.clone();
        let mut configured = HashMap::new();
        let mut category = HashMap::new();
        for ps in &plan.suites {
            for i in &ps.items {
                let key = (ps.name(), i.task.id.as_str());
                let cat = format!("{}\u{1f}{}", ps.name(), i.task.category);
                let label = match &by {
                    ClusterBy::None => None,
                    ClusterBy::Category => Some(cat.clone()),
                    // A task without the key is a cluster of its own.
                    ClusterBy::Meta(k) => Some(match i.task.meta.get(k) {
                        Some(v) => format!("{}\u{1f}{v}", ps.name()),
                        None => format!("{}\u{1f}\u{0}{}", ps.name(), i.task.id),
                    }),
                };
                if let Some(label) = label {
                    configured.insert(key, label);
                }
                category.insert(key, cat);
            }
        }
        Self {
            by,
            configured,
            category,
        }
    }

    /// Clusters of `keys` from `map` (`None` when a key has no label).
    fn clusters(
        map: &HashMap<(&'a str, &'a str), String>,
        keys: &[(&'a str, &'a str)],
    ) -> Option<Clusters> {
        let labels: Option<Vec<&String>> = keys.iter().map(|k| map.get(k)).collect();
        labels.map(|l| Clusters::from_labels(&l))
    }
}

/// The paired scores of one comparison and the gate's estimate on them.
struct Paired {
    teacher: Vec<f64>,
    student: Vec<f64>,
    clusters: Option<Clusters>,
    estimate: Retention<BootstrapEstimate>,
}

/// Retention on paired scores with the run's interval method and clusters.
fn estimate(
    teacher: &[f64],
    student: &[f64],
    clusters: Option<&Clusters>,
    confidence: f64,
    config: &GateConfig,
) -> Result<Retention<BootstrapEstimate>, SummarizeError> {
    let opts = BootstrapOptions {
        resamples: u32::try_from(config.run.bootstrap_resamples).unwrap_or(u32::MAX),
        seed: config.run.seed,
        confidence,
    };
    Ok(stats::retention_estimate(
        teacher,
        student,
        clusters,
        config.gate.interval,
        &opts,
    )?)
}

/// A gate waiting for the family-wise adjustment.
struct PendingGate {
    student: String,
    suite: String,
    category: Option<String>,
    /// The teacher's items without an answer (its calls failed).
    teacher_unanswered: usize,
    thresholds: GateThresholds,
    input: GateInput,
    paired: Paired,
}

impl PendingGate {
    /// The decision with the retention criterion judged at confidence `c`,
    /// and the retention estimate it judged.
    fn decide_at(
        &self,
        c: f64,
        config: &GateConfig,
    ) -> Result<(gate::GateDecision, Retention<BootstrapEstimate>), SummarizeError> {
        let mut th = self.thresholds.clone();
        th.confidence = c;
        let mut input = self.input.clone();
        if c != self.thresholds.confidence {
            let p = &self.paired;
            input.retention = estimate(&p.teacher, &p.student, p.clusters.as_ref(), c, config)?;
        }
        let decision = gate::decide(&th, &input)?;
        Ok((decision, input.retention))
    }
}

/// How a gate's retention criterion was decided, for the summary.
fn gate_retention(
    g: &PendingGate,
    confidence: f64,
    decision: &gate::GateDecision,
    retention: &Retention<BootstrapEstimate>,
) -> GateRetention {
    let e = retention.measured();
    GateRetention {
        student: g.student.clone(),
        suite: g.suite.clone(),
        category: g.category.clone(),
        basis: decision.retention_basis,
        confidence,
        min_teacher_correct: g.thresholds.min_teacher_correct,
        n: g.paired.teacher.len() as u64,
        teacher_correct: g.paired.teacher.iter().sum(),
        point: e.map(|e| e.point),
        lower_bound: e.map(|e| e.lower_bound),
        upper_bound: e.map(|e| e.upper_bound),
        cells: e.and_then(|e| e.cells),
        power: g.thresholds.power,
        items_to_add: decision.items_needed,
        items_total: decision.items_needed_total,
        items_exact: decision.items_needed_exact,
    }
}

/// Items with at least two samples and the mean of their sample variances
/// (`k - 1` denominator); `None` when no item has two samples.
fn sample_variance(items: &[&Item]) -> Option<(usize, f64)> {
    let variances: Vec<f64> = items
        .iter()
        .filter(|i| i.answers.len() >= 2)
        .map(|i| {
            let k = i.answers.len() as f64;
            let mean = i.answers.iter().map(|a| a.score).sum::<f64>() / k;
            i.answers
                .iter()
                .map(|a| (a.score - mean) * (a.score - mean))
                .sum::<f64>()
                / (k - 1.0)
        })
        .collect();
    (!variances.is_empty()).then(|| {
        (
            variances.len(),
            variances.iter().sum::<f64>() / variances.len() as f64,
        )
    })
}

/// The gate thresholds for a student on a suite of the plan (or on every
/// suite, when `suite` is none of them).
fn scope_thresholds(
    config: &GateConfig,
    student: &str,
    suite: &str,
    plan: &Plan,
) -> GateThresholds {
    let scope = plan
        .suites
        .iter()
        .find(|s| s.name() == suite)
        .map(|ps| (ps.index, suite));
    config.thresholds_for(student, scope)
}

fn model_row(
    name: &str,
    role: Role,
    suite: &str,
    category: Option<&str>,
    items: &[&Item],
    thresholds: &GateThresholds,
) -> Result<ModelStats, SummarizeError> {
    let n = items.len();
    let errors = items.iter().filter(|i| i.ever_errored).count();
    let unanswered = items.iter().filter(|i| i.errored).count();
    let scores: Vec<f64> = items.iter().map(|i| i.score).collect();
    let pass_at_k = pass_at_k(items)?;
    // Latency, tokens and cost count every sample drawn.
    let rows: Vec<&JournalEntry> = items
        .iter()
        .flat_map(|i| i.answers.iter().copied())
        .collect();
    let (accuracy, accuracy_interval) = if n == 0 {
        (
            0.0,
            Interval {
                lower: 0.0,
                upper: 0.0,
                confidence: None,
                method: None,
            },
        )
    } else {
        let a = stats::accuracy(&scores, thresholds.confidence)?;
        (
            a.mean,
            Interval {
                lower: a.interval.lower,
                upper: a.interval.upper,
                confidence: Some(a.confidence),
                method: Some(IntervalSource::Accuracy(a.method)),
            },
        )
    };
    let latencies: Vec<f64> = rows
        .iter()
        .filter_map(|e| e.latency.map(|l| l.total_ms))
        .collect();
    let latency = if latencies.is_empty() {
        None
    } else {
        let s = stats::summarize(&latencies)?;
        let ttft: Vec<f64> = rows
            .iter()
            .filter_map(|e| e.latency.and_then(|l| l.first_token_ms))
            .collect();
        let live = rows
            .iter()
            .filter(|e| e.latency.is_some_and(|l| l.source == LatencySource::Live))
            .count();
        Some(LatencyStats {
            p50_ms: s.p50,
            p95_ms: s.p95,
            p99_ms: s.p99,
            mean_ms: s.mean,
            ttft_mean_ms: (ttft.len() == latencies.len())
                .then(|| ttft.iter().sum::<f64>() / ttft.len() as f64),
            live,
            recorded: latencies.len() - live,
            cached: rows
                .iter()
                .filter(|e| e.latency.is_some_and(|l| l.source == LatencySource::Cached))
                .count(),
        })
    };
    let prompt_tokens: u64 = rows.iter().map(|e| e.usage.prompt_tokens).sum();
    let completion_tokens: u64 = rows.iter().map(|e| e.usage.completion_tokens).sum();
    let total_ms: f64 = latencies.iter().sum();
    let cost: f64 = rows.iter().map(|e| e.cost).sum();
    Ok(ModelStats {
        model: name.to_string(),
        role,
        suite: suite.to_string(),
        category: category.map(str::to_string),
        n,
        errors,
        unanswered,
        error_rate: if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        },
        accuracy,
        accuracy_interval,
        latency,
        tokens_per_s: (total_ms > 0.0).then(|| completion_tokens as f64 / (total_ms / 1000.0)),
        prompt_tokens,
        completion_tokens,
        cost,
        cost_per_1k: crate::cost::per_1k(cost, n),
        estimated_usage: rows.iter().filter(|e| e.usage.estimated).count(),
        pass_at_k,
    })
}

/// One item of one model: its samples (one unless the suite draws several).
struct Item<'a> {
    /// Mean score over the samples: with binary scores, the unbiased pass@1.
    score: f64,
    /// Whether any sample's last model call failed: the item has no answer
    /// (it scores 0, and a teacher's is left out of the pairs).
    errored: bool,
    /// Whether any sample's model call ever failed, earlier attempts asked
    /// again included (counted as an error in the error rate).
    ever_errored: bool,
    /// Samples scoring 1.
    correct: u64,
    /// The journal lines, one per sample.
    answers: Vec<&'a JournalEntry>,
}

impl<'a> Item<'a> {
    fn of(mut answers: Vec<&'a JournalEntry>) -> Self {
        answers.sort_by_key(|a| a.sample);
        let n = answers.len().max(1) as f64;
        Item {
            score: answers.iter().map(|a| a.score).sum::<f64>() / n,
            errored: answers.iter().any(|a| a.error.is_some()),
            ever_errored: answers.iter().any(|a| a.ever_errored()),
            correct: answers.iter().filter(|a| a.score >= 1.0).count() as u64,
            answers,
        }
    }

    fn cost(&self) -> f64 {
        self.answers.iter().map(|a| a.cost).sum()
    }
}

/// The `k` values reported (with the number of samples itself).
const PASS_AT: [u64; 7] = [1, 2, 5, 10, 20, 50, 100];

/// pass@k (unbiased estimator, mean over items) for every `k` in
/// [`PASS_AT`] up to the fewest samples any item has, and for that number;
/// empty when items have one sample.
fn pass_at_k(items: &[&Item]) -> Result<Vec<PassAtK>, SummarizeError> {
    let Some(fewest) = items.iter().map(|i| i.answers.len() as u64).min() else {
        return Ok(Vec::new());
    };
    if fewest < 2 {
        return Ok(Vec::new());
    }
    let mut ks: Vec<u64> = PASS_AT.iter().copied().filter(|&k| k < fewest).collect();
    ks.push(fewest);
    ks.into_iter()
        .map(|k| {
            let mut total = 0.0;
            for item in items {
                total += stats::pass_at_k(item.answers.len() as u64, item.correct, k)?;
            }
            Ok(PassAtK {
                k,
                value: total / items.len() as f64,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn compare(
    student: &str,
    suite: &str,
    category: Option<&str>,
    keys: &[(&str, &str)],
    teacher: &HashMap<(&str, &str), Item>,
    items: &HashMap<(&str, &str), Item>,
    thresholds: &GateThresholds,
    config: &GateConfig,
    teacher_row: Option<&ModelStats>,
    student_row: Option<&ModelStats>,
    labels: &ClusterLabels,
) -> Result<(Comparison, Paired, Option<DesignEffect>), SummarizeError> {
    let mut used = Vec::new();
    let mut t_scores = Vec::new();
    let mut s_scores = Vec::new();
    let mut t_cost = 0.0;
    let mut s_cost = 0.0;
    for k in keys {
        let (Some(t), Some(s)) = (teacher.get(k), items.get(k)) else {
            continue;
        };
        if t.errored {
            continue;
        }
        used.push(*k);
        t_scores.push(t.score);
        s_scores.push(s.score);
        t_cost += t.cost();
        s_cost += s.cost();
    }
    let n = t_scores.len();
    let clusters = match labels.by {
        ClusterBy::None => None,
        _ => ClusterLabels::clusters(&labels.configured, &used),
    };
    let estimate = estimate(
        &t_scores,
        &s_scores,
        clusters.as_ref(),
        thresholds.confidence,
        config,
    )?;
    let (deff_by, deff_clusters) = match &clusters {
        Some(c) => (labels.by.clone(), Some(c.clone())),
        None => (
            ClusterBy::Category,
            ClusterLabels::clusters(&labels.category, &used),
        ),
    };
    let design_effect = match deff_clusters.filter(|_| n > 0) {
        Some(c) => stats::design_effect(&t_scores, &s_scores, &c)?.map(|d| DesignEffect {
            student: student.to_string(),
            suite: suite.to_string(),
            category: category.map(str::to_string),
            clustered_by: deff_by,
            clusters: c.len(),
            design_effect: d,
        }),
        None => None,
    };
    let delta = stats::delta_method_retention(&t_scores, &s_scores, thresholds.confidence)?;
    let t_right: Vec<bool> = t_scores.iter().map(|&x| x >= 1.0).collect();
    let s_right: Vec<bool> = s_scores.iter().map(|&x| x >= 1.0).collect();
    // No paired items (the teacher errored on every one): nothing to test.
    let mc = if n == 0 {
        None
    } else {
        Some(stats::mcnemar_exact(&t_right, &s_right)?)
    };
    // The same measure the gate uses: the sum of the teacher's scores (the
    // count of items right when scores are binary).
    let teacher_correct = t_scores.iter().sum::<f64>().floor() as u64;
    let measured = estimate
        .measured()
        .filter(|_| teacher_correct >= thresholds.min_teacher_correct);
    let speedup = match (
        teacher_row.and_then(|r| r.latency),
        student_row.and_then(|r| r.latency),
    ) {
        (Some(t), Some(s)) if s.p50_ms > 0.0 => Some(t.p50_ms / s.p50_ms),
        _ => None,
    };
    let per_1k = |c: f64| crate::cost::per_1k(c, n);
    let cmp = Comparison {
        student: student.to_string(),
        suite: suite.to_string(),
        category: category.map(str::to_string),
        n,
        teacher_correct,
        measurable: measured.is_some(),
        retention: measured.map(|e| e.point),
        retention_interval: measured.map(|e| Interval {
            lower: e.interval.lower,
            upper: e.interval.upper,
            confidence: Some(e.confidence),
            method: Some(IntervalSource::Retention(config.gate.interval)),
        }),
        retention_lower: measured.map(|e| e.lower_bound),
        retention_delta_interval: delta.measured().filter(|_| measured.is_some()).map(|d| {
            Interval {
                lower: d.interval.lower,
                upper: d.interval.upper,
                confidence: Some(thresholds.confidence),
                method: Some(IntervalSource::Retention(stats::IntervalMethod::DeltaLog)),
            }
        }),
        teacher_only: mc.as_ref().map_or(0, |m| m.teacher_only),
        student_only: mc.as_ref().map_or(0, |m| m.student_only),
        mcnemar_p: mc.as_ref().map(|m| m.p_value),
        agreement: mc.as_ref().map(|m| m.agreement_rate),
        speedup,
        speedup_source: speedup.and(LatencyOrigin::of_rows([teacher_row, student_row])),
        cost_ratio: (t_cost > 0.0).then(|| s_cost / t_cost),
        savings_per_1k: per_1k(t_cost) - per_1k(s_cost),
    };
    let paired = Paired {
        teacher: t_scores,
        student: s_scores,
        clusters,
        estimate,
    };
    Ok((cmp, paired, design_effect))
}
