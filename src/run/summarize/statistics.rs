//! Statistics: per model and scope, accuracy, latency, tokens and cost;
//! per student and scope, the paired comparison with the teacher, and the
//! gates waiting for their decision.

use std::collections::HashMap;

use super::SummarizeError;
use super::items::{ByModel, Item, Key, Scope, pass_at_k, sample_variance};
use crate::config::GateConfig;
use crate::gate::{ClusterBy, GateInput, GateThresholds};
use crate::model::LatencySource;
use crate::run::journal::{JournalEntry, Role};
use crate::run::plan::Plan;
use crate::stats::{self, BootstrapEstimate, BootstrapOptions, Clusters, Retention};
use crate::summary::{
    ALL, Comparison, DesignEffect, Interval, IntervalSource, LatencyOrigin, LatencyStats,
    ModelStats, SampleVariance,
};

/// What [`measure`] found over every scope.
#[derive(Default)]
pub(super) struct Measured {
    /// One row per model and scope it takes part in.
    pub model_stats: Vec<ModelStats>,
    /// One per student and scope it is compared on.
    pub comparisons: Vec<Comparison>,
    /// One per gate (student and suite, or category taken over).
    pub pending: Vec<PendingGate>,
    /// Models and scopes with items of several samples.
    pub sample_variances: Vec<SampleVariance>,
    /// Design effects of the comparisons (by the configured clusters, else by category).
    pub design_effects: Vec<DesignEffect>,
}

/// The statistics of every scope: each model's row, then each student's
/// comparison with the teacher and, where it is gated, its pending gate.
pub(super) fn measure(
    plan: &Plan,
    by_model: &ByModel,
    scopes: &[Scope],
) -> Result<Measured, SummarizeError> {
    let config = &plan.config;
    let empty = HashMap::new();
    let labels = ClusterLabels::of(plan);
    let mut out = Measured::default();
    let teacher = config.teacher.name.as_str();
    let teacher_items = by_model.get(teacher).unwrap_or(&empty);
    for Scope {
        suite,
        category,
        keys,
    } in scopes
    {
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
                out.sample_variances.push(SampleVariance {
                    model: name.to_string(),
                    suite: suite.clone(),
                    category: category.clone(),
                    items,
                    mean_item_variance,
                });
            }
            out.model_stats.push(model_row(
                name,
                role,
                suite,
                category.as_deref(),
                &rows,
                &thresholds,
            )?);
        }
        let teacher_row = out
            .model_stats
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
            let student_row = out
                .model_stats
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
                out.design_effects.push(d);
            }
            // Gates: one per suite, or per category taken over.
            let gated = suite != ALL && (category.is_none() == student.categories.is_empty());
            if gated {
                let student_row = student_row.as_ref();
                out.pending.push(PendingGate {
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
            out.comparisons.push(cmp);
        }
    }
    Ok(out)
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
    configured: HashMap<Key<'a>, String>,
    category: HashMap<Key<'a>, String>,
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
    fn clusters(map: &HashMap<Key<'a>, String>, keys: &[Key<'a>]) -> Option<Clusters> {
        let labels: Option<Vec<&String>> = keys.iter().map(|k| map.get(k)).collect();
        labels.map(|l| Clusters::from_labels(&l))
    }
}

/// The paired scores of one comparison and the gate's estimate on them.
pub(super) struct Paired {
    pub teacher: Vec<f64>,
    pub student: Vec<f64>,
    pub clusters: Option<Clusters>,
    pub estimate: Retention<BootstrapEstimate>,
}

/// A gate waiting for the family-wise adjustment.
pub(super) struct PendingGate {
    pub student: String,
    pub suite: String,
    pub category: Option<String>,
    /// The teacher's items without an answer (its calls failed).
    pub teacher_unanswered: usize,
    pub thresholds: GateThresholds,
    pub input: GateInput,
    pub paired: Paired,
}

/// Retention on paired scores with the run's interval method and clusters.
pub(super) fn estimate(
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

#[allow(clippy::too_many_arguments)]
fn compare(
    student: &str,
    suite: &str,
    category: Option<&str>,
    keys: &[Key],
    teacher: &HashMap<Key, Item>,
    items: &HashMap<Key, Item>,
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
