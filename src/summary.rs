//! The run summary: every number the reports show, computed once from the
//! journal. `summary.json` is this type serialised; every report format
//! renders from it (and the journal, for per-item views), never from models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name used for "every suite together".
pub const ALL: &str = "all";

/// Whether a journal line is about the teacher or a student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The reference model.
    Teacher,
    /// A model under test.
    Student,
}

/// What a contamination check found about one transcript a student was
/// trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contamination {
    /// The student.
    pub student: String,
    /// The student's place in the config's `[[students]]`.
    #[serde(skip)]
    pub index: usize,
    /// The transcript, as its `training.json` names it.
    pub transcript: String,
    /// Gated items the transcript holds, by suite (empty when none, or when
    /// it could not be checked).
    pub overlap: BTreeMap<String, usize>,
    /// A few of those items, as `suite/task`.
    pub examples: Vec<String>,
    /// Why the transcript could not be checked, when it could not.
    pub unchecked: Option<String>,
}

impl Contamination {
    /// Gated items the transcript holds.
    pub fn items(&self) -> usize {
        self.overlap.values().sum()
    }

    /// One line for people: what overlaps, or why it was not checked.
    pub fn describe(&self) -> String {
        match &self.unchecked {
            Some(why) => format!(
                "{}: could not check training transcript {} for gated items: {why}",
                self.student, self.transcript
            ),
            None => format!(
                "{} was trained on {}, which holds {} of the gated items ({}; e.g. {})",
                self.student,
                self.transcript,
                self.items(),
                self.overlap
                    .iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.examples.join(", ")
            ),
        }
    }
}

pub use crate::gate::Verdict;

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Its two-sided confidence level, e.g. `0.95` (absent in summaries
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// How it was computed (absent in summaries written before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<IntervalSource>,
}

/// The method behind an [`Interval`]: a retention interval method
/// (`score`, `fieller`, `delta_log`, `bca`, `percentile`) or an accuracy
/// interval method (`wilson`, `student_t`); serialised as that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntervalSource {
    /// A retention interval.
    Retention(crate::stats::IntervalMethod),
    /// An accuracy interval.
    Accuracy(crate::stats::AccuracyMethod),
}

/// Where latencies come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyOrigin {
    /// Every latency was measured in this run.
    Live,
    /// At least one latency was recorded earlier: replayed from a transcript
    /// or served from an HTTP response cache, measured when first answered
    /// (by another runtime, machine or load).
    Recorded,
}

impl LatencyOrigin {
    /// The origin of a figure computed from latencies of these origins:
    /// recorded as soon as any of them is.
    pub fn of(origins: impl IntoIterator<Item = LatencyOrigin>) -> LatencyOrigin {
        if origins.into_iter().any(|o| o == LatencyOrigin::Recorded) {
            LatencyOrigin::Recorded
        } else {
            LatencyOrigin::Live
        }
    }

    /// The origin of a figure built on these models' latencies (a speedup
    /// from the teacher's and a student's): `None` when neither has any.
    pub fn of_rows<'a>(rows: impl IntoIterator<Item = Option<&'a ModelStats>>) -> Option<Self> {
        let origins: Vec<LatencyOrigin> = rows
            .into_iter()
            .filter_map(|r| r.and_then(|r| r.latency).map(|l| l.origin()))
            .collect();
        (!origins.is_empty()).then(|| Self::of(origins))
    }
}

/// Latency percentiles in milliseconds (linear interpolation between order statistics).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Mean time to first token, when known for every item.
    pub ttft_mean_ms: Option<f64>,
    /// Items whose latency was measured in this run.
    pub live: usize,
    /// Items whose latency was recorded earlier (replay) or cached.
    pub recorded: usize,
    /// Of `recorded`, the answers served from an HTTP response cache.
    #[serde(default)]
    pub cached: usize,
}

impl LatencyStats {
    /// Whether these percentiles include latencies recorded earlier.
    pub fn origin(&self) -> LatencyOrigin {
        if self.recorded > 0 {
            LatencyOrigin::Recorded
        } else {
            LatencyOrigin::Live
        }
    }
}

/// One model on one suite (or one category of it, or all suites).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Model name.
    pub model: String,
    /// Teacher or student.
    pub role: Role,
    /// Suite name, or `"all"` for every suite together.
    pub suite: String,
    /// Category, or `None` for the whole suite.
    pub category: Option<String>,
    /// Items evaluated.
    pub n: usize,
    /// Items whose model call errored, earlier attempts asked again on
    /// resume included.
    pub errors: usize,
    /// Items whose last model call errored: they have no answer yet (a
    /// resumed run asks them again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unanswered: usize,
    /// `errors / n`.
    pub error_rate: f64,
    /// Mean score (errored items score 0 and are counted in `errors`).
    pub accuracy: f64,
    /// Wilson interval (binary scores) or Student t interval (fractional
    /// scores), two-sided at the gate's confidence.
    pub accuracy_interval: Interval,
    /// Latency, when any item has one.
    pub latency: Option<LatencyStats>,
    /// Completion tokens per second of generation time (sum tokens / sum latency).
    pub tokens_per_s: Option<f64>,
    /// Prompt tokens in total.
    pub prompt_tokens: u64,
    /// Completion tokens in total.
    pub completion_tokens: u64,
    /// Dollars for these items.
    pub cost: f64,
    /// Dollars per 1,000 items.
    pub cost_per_1k: f64,
    /// Answers whose token counts (and so cost) are estimated, because the
    /// server reported no usage ([`crate::model::Usage::estimated`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub estimated_usage: usize,
    /// pass@k (unbiased estimator) when the suite draws several samples per
    /// item; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_at_k: Vec<PassAtK>,
}

/// One pass@k estimate: the chance that at least one of k samples drawn
/// (without replacement) from an item's n is right, averaged over items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PassAtK {
    /// Samples allowed.
    pub k: u64,
    /// Mean over items of `1 - C(n-c, k) / C(n, k)`.
    pub value: f64,
}

/// A student compared with the teacher on the same items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Student name.
    pub student: String,
    /// Suite name, or `"all"`.
    pub suite: String,
    /// Category, or `None` for the whole suite.
    pub category: Option<String>,
    /// Paired items (both models have a journal line).
    pub n: usize,
    /// Items the teacher got right: the sum of its scores, rounded down (the
    /// count when scores are binary); retention needs enough of them.
    pub teacher_correct: u64,
    /// Whether retention can be measured (teacher accuracy above zero and
    /// enough items right); when false the retention fields are `None`.
    pub measurable: bool,
    /// Retention point estimate: student accuracy / teacher accuracy.
    pub retention: Option<f64>,
    /// Two-sided interval at the gate's confidence, by the run's interval
    /// method (`[gate] interval`; both carried in the interval).
    pub retention_interval: Option<Interval>,
    /// One-sided lower bound at the gate confidence (what the gate compares).
    pub retention_lower: Option<f64>,
    /// Delta-method interval on log retention, as a cross-check.
    pub retention_delta_interval: Option<Interval>,
    /// Items where the teacher is right and the student wrong.
    pub teacher_only: u64,
    /// Items where the student is right and the teacher wrong.
    pub student_only: u64,
    /// McNemar exact two-sided p-value on the discordant pairs (`None`
    /// without paired items).
    pub mcnemar_p: Option<f64>,
    /// Fraction of items where both score the same (right/right or
    /// wrong/wrong; `None` without paired items).
    pub agreement: Option<f64>,
    /// Teacher p50 latency / student p50 latency.
    pub speedup: Option<f64>,
    /// Where the latencies behind `speedup` come from: `recorded` when
    /// either model's include latencies recorded earlier (absent without a
    /// speedup, and in summaries written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup_source: Option<LatencyOrigin>,
    /// Student cost / teacher cost.
    pub cost_ratio: Option<f64>,
    /// Dollars saved per 1,000 items by using the student.
    pub savings_per_1k: f64,
}

/// The decision for one (student, suite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// Student name.
    pub student: String,
    /// Suite name.
    pub suite: String,
    /// The category, for a task-specific student (its `categories`): its
    /// gates are one per category it takes over; `None` for a gate on the
    /// whole suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, one sentence per criterion that decided it, with the numbers.
    pub reasons: Vec<String>,
    /// For INCONCLUSIVE: the paired items to ADD to this run's for the gate
    /// to decide (PASS or FAIL) with the gate's power at the observed rates
    /// (the total and how it was computed are in
    /// [`RunStatistics::gate_retention`]).
    pub items_needed: Option<u64>,
    /// The thresholds applied.
    pub thresholds: crate::gate::GateThresholds,
}

impl GateResult {
    /// What the gate covers, for people: `suite`, or `suite/category`.
    pub fn scope(&self) -> String {
        match &self.category {
            Some(c) => format!("{}/{c}", self.suite),
            None => self.suite.clone(),
        }
    }

    /// Whether `comparison` is this gate's (same student, suite and category).
    pub fn is_of(&self, comparison: &Comparison) -> bool {
        comparison.student == self.student
            && comparison.suite == self.suite
            && comparison.category == self.category
    }
}

/// A model as the run knew it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Name from the config.
    pub name: String,
    /// Teacher or student.
    pub role: Role,
    /// Backend kind.
    pub backend: String,
    /// Weights hash or API model string.
    pub fingerprint: String,
    /// The identity every journaled answer of the model is bound to
    /// ([`crate::run::identity::ModelId`]); empty in summaries written
    /// before answers were bound to models.
    #[serde(default)]
    pub model_id: String,
    /// Price description.
    pub price: String,
    /// The categories a task-specific student takes over (`suite/category`;
    /// empty: every item).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Few-shot examples in its prompts when it has its own template
    /// (`None`: each category's own number, as the suite says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub few_shot: Option<usize>,
}

/// How [`ModelInfo::backend`] begins for a model that read an answers file.
pub const ANSWERS_BACKEND: &str = "answers file";

/// [`ModelInfo::backend`] of a model a program supplied (`kind = "custom"`).
pub const CUSTOM_BACKEND: &str = "custom (supplied at run time)";

impl ModelInfo {
    /// Whether a program supplied the model (`kind = "custom"`).
    pub fn is_custom(&self) -> bool {
        self.backend == CUSTOM_BACKEND
    }

    /// Whether the model's answers were read from an answers file (their
    /// latencies, when given, were measured by whoever produced it).
    pub fn reads_answers(&self) -> bool {
        self.backend.starts_with(ANSWERS_BACKEND)
    }

    /// What the model was asked and with which prompt template, for people:
    /// `every item; the suites' prompts`, or e.g. `logistics/extraction;
    /// own prompts without few-shot examples`.
    pub fn asked(&self) -> String {
        let items = if self.categories.is_empty() {
            "every item".to_string()
        } else {
            self.categories.join(", ")
        };
        let template = match self.few_shot {
            None => "the suites' prompts".to_string(),
            Some(0) => "own prompts without few-shot examples".to_string(),
            Some(n) => format!("own prompts with {n} few-shot example(s)"),
        };
        format!("{items}; {template}")
    }

    /// Whether it was asked items of `suite`: of its `category`, or of any
    /// (`None`).
    pub fn takes(&self, suite: &str, category: Option<&str>) -> bool {
        crate::config::takes(&self.categories, suite, category)
    }

    /// Whether it was asked anything else than every item with the suites'
    /// prompts.
    pub fn has_own_scope(&self) -> bool {
        !self.categories.is_empty() || self.few_shot.is_some()
    }
}

/// A suite as the run used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteInfo {
    /// Suite name.
    pub name: String,
    /// Suite version.
    pub version: String,
    /// Split evaluated.
    pub split: String,
    /// Items evaluated.
    pub items: usize,
    /// Categories, sorted.
    pub categories: Vec<String>,
}

/// Everything a report needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// distill-gate version that computed it.
    pub harness_version: String,
    /// Run name.
    pub run: String,
    /// SHA-256 of the config file.
    pub config_sha256: String,
    /// Bootstrap seed.
    pub seed: u64,
    /// Bootstrap resamples.
    pub bootstrap_resamples: usize,
    /// Models, teacher first.
    pub models: Vec<ModelInfo>,
    /// Suites.
    pub suites: Vec<SuiteInfo>,
    /// Per model, per suite, per category, and `"all"`.
    pub model_stats: Vec<ModelStats>,
    /// Per student, per suite, per category, and `"all"`.
    pub comparisons: Vec<Comparison>,
    /// One per (student, suite).
    pub gates: Vec<GateResult>,
    /// Whether an INCONCLUSIVE verdict fails the run.
    pub inconclusive_fails: bool,
    /// 0 when every gate passed, 1 otherwise.
    pub exit_code: i32,
    /// How the statistics were computed, and the design effects and
    /// per-item sample variances (absent in summaries written before).
    #[serde(default)]
    pub statistics: RunStatistics,
    /// Students' training transcripts that hold gated items (allowed by
    /// `[run] allow_contamination`) or could not be checked; every report
    /// warns about each.
    #[serde(default)]
    pub contamination: Vec<Contamination>,
    /// For runs that score code: the containment the sandbox gives model
    /// code on the machine that wrote the summary
    /// ([`crate::sandbox::Isolation::describe`]), or why it refuses to run
    /// it. Every report shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Per student, the categories it may take over from the teacher and
    /// the blend of routing just those to it ([`crate::run::swap`]);
    /// computed with the verdicts, rendered by the reports (absent in
    /// summaries written before).
    #[serde(default)]
    pub swap_plans: Vec<SwapPlan>,
}

impl Summary {
    /// Whether a model of the run read an answers file.
    pub fn reads_answers(&self) -> bool {
        self.models.iter().any(ModelInfo::reads_answers)
    }

    /// The line every report shows about the code sandbox, if the run
    /// scores code.
    pub fn isolation_line(&self) -> Option<String> {
        self.isolation
            .as_ref()
            .map(|i| format!("Code sandbox: {i}"))
    }

    /// The warnings every report shows, one line each: each contaminated
    /// (or unchecked) training transcript, and each model whose costs are
    /// built on estimated token counts. Empty when there is nothing to warn
    /// about.
    pub fn warnings(&self) -> Vec<String> {
        let contamination = self.contamination.iter().map(|c| {
            let what = if c.unchecked.is_some() {
                "unchecked"
            } else {
                "CONTAMINATED"
            };
            format!("Contamination ({what}): {}", c.describe())
        });
        let estimated = self
            .models
            .iter()
            .filter_map(|m| self.overall_stats(&m.name))
            .filter(|s| s.estimated_usage > 0)
            .map(|s| {
                format!(
                    "Estimated cost: {} of {}'s answers came without token counts from its server; \
                     their tokens are estimated as an upper bound (every prompt and answer byte a token, \
                     plus {} for the template), so its cost and any cost ratio or saving built on it are estimates",
                    s.estimated_usage,
                    s.model,
                    crate::model::http::budget::TEMPLATE_TOKENS
                )
            });
        contamination.chain(estimated).collect()
    }

    /// A model's statistics over the whole run: the `"all"` row, or the
    /// only suite's row when the run has one suite and no `"all"` row.
    pub fn overall_stats(&self, model: &str) -> Option<&ModelStats> {
        let row = |suite: &str| {
            self.model_stats
                .iter()
                .find(|s| s.model == model && s.suite == suite && s.category.is_none())
        };
        row(ALL).or_else(|| match self.suites.as_slice() {
            [only] => row(&only.name),
            _ => None,
        })
    }
}

/// The statistical settings of a run and the numbers that qualify its
/// intervals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatistics {
    /// Retention interval method (`[gate] interval`).
    pub interval: crate::stats::IntervalMethod,
    /// Clustering of items (`[gate] clusters`).
    pub clusters: crate::gate::ClusterBy,
    /// Family-wise adjustment over the gates (`[gate] family_wise`).
    pub family_wise: crate::gate::FamilyWise,
    /// Per comparison with at least two clusters: the design effect.
    #[serde(default)]
    pub design_effects: Vec<DesignEffect>,
    /// Per model and scope whose items have several samples: the mean
    /// within-item variance of the sample scores.
    #[serde(default)]
    pub sample_variances: Vec<SampleVariance>,
    /// Per gate, when `family_wise` is not `none`: the confidence its
    /// retention criterion was judged at.
    #[serde(default)]
    pub adjusted_confidences: Vec<AdjustedConfidence>,
    /// Per gate: how its retention criterion was decided, its one-sided
    /// bounds, and for INCONCLUSIVE the items to add (absent in summaries
    /// written before).
    #[serde(default)]
    pub gate_retention: Vec<GateRetention>,
    /// The fewest items the teacher must get right for retention to be
    /// measurable (`[run] min_teacher_correct`); absent in summaries
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_teacher_correct: Option<u64>,
}

/// How one gate's retention criterion was decided (see [`crate::gate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRetention {
    /// Student name.
    pub student: String,
    /// Suite name.
    pub suite: String,
    /// The gate's category (see [`GateResult::category`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The rule that gave the retention verdict.
    pub basis: crate::gate::RetentionBasis,
    /// The confidence of the bounds (the gate's, after any family-wise
    /// adjustment).
    pub confidence: f64,
    /// Fewest teacher-correct items for retention to be measurable.
    pub min_teacher_correct: u64,
    /// Paired items.
    pub n: u64,
    /// Sum of the teacher's scores on them (its correct items for pass/fail scores).
    pub teacher_correct: f64,
    /// Retention point estimate, when retention could be computed (even
    /// below `min_teacher_correct`).
    pub point: Option<f64>,
    /// One-sided lower bound at `confidence`.
    pub lower_bound: Option<f64>,
    /// One-sided upper bound at `confidence`, by the same method: below the
    /// threshold, the gate FAILs whatever the suite size.
    pub upper_bound: Option<f64>,
    /// Paired outcome counts when every score is 0 or 1.
    pub cells: Option<crate::stats::PairedCells>,
    /// Fractional scores under the score interval: the discordance of the
    /// expected pass/fail table it was computed on
    /// ([`crate::stats::BootstrapEstimate::expected_discordance`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_discordance: Option<f64>,
    /// Power the items to add are computed for.
    pub power: f64,
    /// For INCONCLUSIVE: paired items to add (same as the gate's `items_needed`).
    pub items_to_add: Option<u64>,
    /// For INCONCLUSIVE: this run's paired items plus `items_to_add`.
    pub items_total: Option<u64>,
    /// Whether `items_to_add` is exact (the gate's rule summed over every
    /// possible table of pass/fail outcomes) rather than a large-sample
    /// estimate (fractional scores, clustered items, very large suites).
    pub items_exact: bool,
}

/// How much clustering inflates the variance of retention in one comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignEffect {
    /// Student name.
    pub student: String,
    /// Suite name, or `"all"`.
    pub suite: String,
    /// Category, or `None` for the whole suite.
    pub category: Option<String>,
    /// What the clusters are: the configured `clusters`, or `category`
    /// when clustering is off (reported so a user can decide to turn it on).
    pub clustered_by: crate::gate::ClusterBy,
    /// Number of clusters.
    pub clusters: usize,
    /// Cluster-robust variance of `S̄ - R̂ T̄` over its independent-items variance.
    pub design_effect: f64,
}

/// Spread of the repeated samples of one model's items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleVariance {
    /// Model name.
    pub model: String,
    /// Suite name, or `"all"`.
    pub suite: String,
    /// Category, or `None` for the whole suite.
    pub category: Option<String>,
    /// Items with at least two samples.
    pub items: usize,
    /// Mean over those items of the sample variance (`k - 1` denominator)
    /// of their `k` sample scores; for binary scores `c (k - c) / (k (k - 1))`.
    pub mean_item_variance: f64,
}

/// The confidence a gate's retention criterion was judged at after the
/// family-wise adjustment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdjustedConfidence {
    /// Student name.
    pub student: String,
    /// Suite name.
    pub suite: String,
    /// The gate's category (see [`GateResult::category`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The configured confidence.
    pub configured: f64,
    /// The confidence used.
    pub adjusted: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One category of one suite, decided for one student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryDecision {
    /// Suite name.
    pub suite: String,
    /// Category.
    pub category: String,
    /// Paired items.
    pub n: usize,
    /// Retention point estimate, when measurable.
    pub retention: Option<f64>,
    /// One-sided lower bound at the gate's confidence, when measurable.
    pub retention_lower: Option<f64>,
    /// The gate rule's verdict on the category.
    pub verdict: Verdict,
    /// Whether the student takes the category over (verdict PASS).
    pub take_over: bool,
    /// Why.
    pub reasons: Vec<String>,
    /// When inconclusive: additional items of the category that would decide it.
    pub items_needed: Option<u64>,
}

/// Retention, latency and cost of a routing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// Items counted (answered by the teacher without error).
    pub items: usize,
    /// Of those, items routed to the student.
    pub routed_items: usize,
    /// Mean score of the routed answers.
    pub accuracy: f64,
    /// Blended accuracy / teacher accuracy, when the teacher scored above 0.
    pub retention: Option<f64>,
    /// One-sided lower bound of `retention` at the gate's confidence, by the run's interval method.
    pub retention_lower: Option<f64>,
    /// Median latency of the routed answers (ms), when measured.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency (ms), when measured.
    pub p95_ms: Option<f64>,
    /// Dollars per 1,000 items.
    pub cost_per_1k: f64,
    /// Whether some of those latencies were measured earlier (a replayed
    /// transcript or a response cache), not in the run.
    pub recorded: bool,
}

/// The swap plan of one student (computed by [`crate::run::swap`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapPlan {
    /// Student name.
    pub student: String,
    /// Every category of every suite, in suite and category order.
    pub categories: Vec<CategoryDecision>,
    /// The teacher answering everything.
    pub teacher_only: Blend,
    /// The taken-over categories routed to the student, the rest to the teacher.
    pub blended: Blend,
}
