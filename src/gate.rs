//! The verdict rule: thresholds and measured numbers in, PASS / FAIL /
//! INCONCLUSIVE out, with a reason for every criterion.
//!
//! Retention (always evaluated), for the estimate of
//! `R = acc(student) / acc(teacher)` at the configured confidence `c` (by
//! the interval method of `[gate] interval`, default the score interval;
//! see [`crate::stats::retention_estimate`] and docs/calibration.md):
//!
//! 1. cannot be measured (no items, or the teacher scored 0) →
//!    INCONCLUSIVE;
//! 2. one-sided upper bound at `c` `< min_retention` → FAIL, whatever the
//!    suite size: the data show the student below the threshold with the
//!    gate's confidence (the upper bound is computed by the same method and
//!    at the same confidence as the lower bound);
//! 3. the teacher got fewer than [`GateThresholds::min_teacher_correct`]
//!    items right → INCONCLUSIVE ("not measurable": the data cannot tell);
//! 4. point estimate `< min_retention` → FAIL;
//! 5. one-sided lower bound at `c` `>= min_retention` → PASS;
//! 6. otherwise INCONCLUSIVE.
//!
//! Each reason names the rule that decided ([`RetentionBasis`]). An
//! INCONCLUSIVE retention criterion (3 or 6) comes with the paired items to
//! add for the gate to decide it (PASS or FAIL) with probability
//! [`GateThresholds::power`] at the observed rates, computed with this very
//! rule, floor and interval method ([`crate::stats::items_to_add`]).
//!
//! Optional criteria, each evaluated only when its threshold is set: p95
//! latency at most `max_p95_latency_ms`, speedup at least `min_speedup`,
//! cost ratio (student / teacher) at most `max_cost_ratio`, error rate at
//! most `max_error_rate`. A criterion that is set but whose number was not
//! measured is INCONCLUSIVE. Equality passes.
//!
//! The overall verdict is FAIL if any criterion fails, else INCONCLUSIVE if
//! any is inconclusive, else PASS. Numbers are compared exactly as given
//! (never rounded) and printed in reasons with Rust's shortest round-trip
//! formatting, so a reason shows the exact values compared.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::stats::{
    BootstrapEstimate, CellShares, Goal, IntervalMethod, ItemsToAdd, Retention, RetentionRule,
    StatsError, Unmeasurable, additional_items_needed, items_to_add, items_to_add_on_table,
};

/// Default minimum retention (student accuracy / teacher accuracy).
pub const DEFAULT_MIN_RETENTION: f64 = 0.95;
/// Default confidence of the retention lower bound: the statistics' own.
pub const DEFAULT_CONFIDENCE: f64 = crate::stats::DEFAULT_CONFIDENCE;
/// Default maximum share of items on which the student errored.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.0;
/// Default power used to compute the items an INCONCLUSIVE gate needs.
pub const DEFAULT_POWER: f64 = 0.8;
/// Default minimum number of items the teacher must get right for retention
/// to be measurable.
pub const DEFAULT_MIN_TEACHER_CORRECT: u64 = 10;

/// The outcome of a gate. Serialized (and displayed) in upper case:
/// `"PASS"`, `"FAIL"`, `"INCONCLUSIVE"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Every criterion is met.
    Pass,
    /// At least one criterion is not met.
    Fail,
    /// Nothing failed, but at least one criterion could not be decided.
    Inconclusive,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        })
    }
}

/// What a gate requires of a student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateThresholds {
    /// Minimum retention `acc(student) / acc(teacher)`, e.g. 0.95.
    pub min_retention: f64,
    /// Confidence of the one-sided lower bound of retention (default 0.95).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Power for the items-needed calculation (default 0.8).
    #[serde(default = "default_power")]
    pub power: f64,
    /// Fewest items the teacher must get right (sum of teacher scores) for
    /// retention to count as measurable (default 10).
    #[serde(default = "default_min_teacher_correct")]
    pub min_teacher_correct: u64,
    /// Maximum p95 latency of the student in milliseconds.
    #[serde(default)]
    pub max_p95_latency_ms: Option<f64>,
    /// Minimum speedup (teacher latency / student latency).
    #[serde(default)]
    pub min_speedup: Option<f64>,
    /// Maximum cost ratio (student cost / teacher cost).
    #[serde(default)]
    pub max_cost_ratio: Option<f64>,
    /// Maximum share of items on which the student errored, in [0, 1].
    #[serde(default)]
    pub max_error_rate: Option<f64>,
}

fn default_confidence() -> f64 {
    DEFAULT_CONFIDENCE
}
fn default_power() -> f64 {
    DEFAULT_POWER
}
fn default_min_teacher_correct() -> u64 {
    DEFAULT_MIN_TEACHER_CORRECT
}

impl GateThresholds {
    /// Thresholds with only a retention minimum and every default.
    pub fn new(min_retention: f64) -> Self {
        Self {
            min_retention,
            confidence: DEFAULT_CONFIDENCE,
            power: DEFAULT_POWER,
            min_teacher_correct: DEFAULT_MIN_TEACHER_CORRECT,
            max_p95_latency_ms: None,
            min_speedup: None,
            max_cost_ratio: None,
            max_error_rate: None,
        }
    }

    /// The built-in thresholds every gate starts from, before gate.toml's
    /// `[gate]`, suite, student and override tables: 95% retention at 95%
    /// one-sided confidence, no error allowed, no latency or cost limit.
    pub fn builtin() -> Self {
        Self {
            max_error_rate: Some(DEFAULT_MAX_ERROR_RATE),
            ..Self::new(DEFAULT_MIN_RETENTION)
        }
    }

    /// Checks every field's range; the error names the field.
    pub fn validate(&self) -> Result<(), GateError> {
        let bad = |field: &'static str, value: f64, expected: &'static str| {
            Err(GateError::Threshold {
                field,
                value,
                expected,
            })
        };
        if !(self.min_retention.is_finite() && self.min_retention > 0.0) {
            return bad("min_retention", self.min_retention, "a finite number > 0");
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return bad("confidence", self.confidence, "strictly between 0 and 1");
        }
        if !(self.power > 0.0 && self.power < 1.0) {
            return bad("power", self.power, "strictly between 0 and 1");
        }
        let non_negative: fn(f64) -> bool = |v| v.is_finite() && v >= 0.0;
        let positive: fn(f64) -> bool = |v| v.is_finite() && v > 0.0;
        let rate: fn(f64) -> bool = |v| (0.0..=1.0).contains(&v);
        let optional = [
            (
                "max_p95_latency_ms",
                self.max_p95_latency_ms,
                non_negative,
                "a finite number >= 0",
            ),
            (
                "min_speedup",
                self.min_speedup,
                positive,
                "a finite number > 0",
            ),
            (
                "max_cost_ratio",
                self.max_cost_ratio,
                non_negative,
                "a finite number >= 0",
            ),
            (
                "max_error_rate",
                self.max_error_rate,
                rate,
                "a number in [0, 1]",
            ),
        ];
        for (field, value, ok, expected) in optional {
            match value {
                Some(v) if !ok(v) => return bad(field, v, expected),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The measured numbers a gate judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateInput {
    /// Retention and its one-sided lower bound at the gate's confidence
    /// (from [`crate::stats::retention_estimate`]).
    pub retention: Retention<BootstrapEstimate>,
    /// Student p95 latency in milliseconds.
    #[serde(default)]
    pub p95_latency_ms: Option<f64>,
    /// Speedup of the student over the teacher (teacher latency / student latency).
    #[serde(default)]
    pub speedup: Option<f64>,
    /// Student cost / teacher cost.
    #[serde(default)]
    pub cost_ratio: Option<f64>,
    /// Share of items on which the student errored, in [0, 1].
    #[serde(default)]
    pub error_rate: Option<f64>,
}

impl GateInput {
    /// An input with retention only: no latency, speed, cost or error-rate
    /// criterion applies.
    pub fn retention_only(retention: Retention<BootstrapEstimate>) -> Self {
        Self {
            retention,
            p95_latency_ms: None,
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        }
    }
}

/// Which criterion a [`CriterionResult`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Retention against `min_retention`.
    Retention,
    /// p95 latency against `max_p95_latency_ms`.
    P95Latency,
    /// Speedup against `min_speedup`.
    Speedup,
    /// Cost ratio against `max_cost_ratio`.
    CostRatio,
    /// Error rate against `max_error_rate`.
    ErrorRate,
}

/// The verdict of one criterion and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionResult {
    /// The criterion.
    pub criterion: Criterion,
    /// Its verdict.
    pub verdict: Verdict,
    /// A sentence naming the numbers compared.
    pub reason: String,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateDecision {
    /// The overall verdict.
    pub verdict: Verdict,
    /// The reasons of the criteria whose verdict is the overall verdict
    /// (why it failed, why it is inconclusive, or why it passed).
    pub reasons: Vec<String>,
    /// Every evaluated criterion, retention first.
    pub criteria: Vec<CriterionResult>,
    /// Only when the verdict is INCONCLUSIVE: the paired items to ADD to
    /// the current ones for retention to be decided (PASS or FAIL) with
    /// probability [`GateThresholds::power`], at the observed rates, under
    /// the gate's own rule (the `min_teacher_correct` floor and the interval
    /// method of the estimate). `None` when not computable or when
    /// retention itself is not what is undecided.
    pub items_needed: Option<u64>,
    /// The current paired items plus [`GateDecision::items_needed`].
    #[serde(default)]
    pub items_needed_total: Option<u64>,
    /// Whether [`GateDecision::items_needed`] is exact (pass/fail scores,
    /// unclustered) rather than an estimate (large-sample, or fractional
    /// scores planned on their expected pass/fail table).
    #[serde(default)]
    pub items_needed_exact: bool,
    /// Which rule decided the retention criterion.
    pub retention_basis: RetentionBasis,
}

/// Which rule of the retention criterion (module docs) gave its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionBasis {
    /// No items, or the teacher scored 0: INCONCLUSIVE.
    NotMeasurable,
    /// The one-sided upper bound is below the threshold: FAIL.
    UpperBoundBelow,
    /// The teacher got fewer than `min_teacher_correct` items right (and
    /// the upper bound did not show the student below): INCONCLUSIVE.
    TooFewTeacherCorrect,
    /// The point estimate is below the threshold: FAIL.
    PointBelow,
    /// The one-sided lower bound is at or above the threshold: PASS.
    LowerBoundAtOrAbove,
    /// The point estimate is at or above the threshold, the lower bound
    /// below it: INCONCLUSIVE.
    LowerBoundBelow,
}

/// Invalid thresholds or inputs to [`decide`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GateError {
    /// A threshold out of range.
    #[error("gate threshold {field} = {value} is invalid: expected {expected}")]
    Threshold {
        /// Field name in [`GateThresholds`].
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range.
        expected: &'static str,
    },
    /// A measured number out of range.
    #[error("gate input {field} = {value} is invalid: expected {expected}")]
    Input {
        /// Field name in [`GateInput`].
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range.
        expected: &'static str,
    },
    /// The retention estimate was computed at a different confidence.
    #[error(
        "retention was estimated at confidence {estimate} but the gate is configured for {configured}"
    )]
    ConfidenceMismatch {
        /// Confidence of the estimate.
        estimate: f64,
        /// Confidence in the thresholds.
        configured: f64,
    },
    /// The items-needed calculation rejected its input.
    #[error("computing items needed: {0}")]
    Stats(#[from] StatsError),
}

/// Applies `thresholds` to `input`.
///
/// Errors on invalid thresholds, non-finite or out-of-range inputs, or a
/// retention estimate made at another confidence than the gate's.
pub fn decide(thresholds: &GateThresholds, input: &GateInput) -> Result<GateDecision, GateError> {
    decide_with(thresholds, input, true)
}

/// [`decide`] without the items-needed calculation: the same verdict,
/// criteria and basis, no [`GateDecision::items_needed`], and an
/// INCONCLUSIVE reason without the advice. For simulations that judge
/// thousands of suites (the calculation sums over every possible table).
pub fn decide_verdict(
    thresholds: &GateThresholds,
    input: &GateInput,
) -> Result<GateDecision, GateError> {
    decide_with(thresholds, input, false)
}

fn decide_with(
    thresholds: &GateThresholds,
    input: &GateInput,
    with_items: bool,
) -> Result<GateDecision, GateError> {
    thresholds.validate()?;
    let (retention, basis, plan) = retention_criterion(thresholds, &input.retention, with_items)?;
    let mut criteria = vec![retention];
    let limits = [
        (
            &P95_LATENCY,
            thresholds.max_p95_latency_ms,
            input.p95_latency_ms,
        ),
        (&SPEEDUP, thresholds.min_speedup, input.speedup),
        (&COST_RATIO, thresholds.max_cost_ratio, input.cost_ratio),
        (&ERROR_RATE, thresholds.max_error_rate, input.error_rate),
    ];
    for (spec, limit, value) in limits {
        if let Some(limit) = limit {
            criteria.push(limit_criterion(spec, limit, value)?);
        }
    }
    let verdict = if criteria.iter().any(|c| c.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if criteria.iter().any(|c| c.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    let reasons = criteria
        .iter()
        .filter(|c| c.verdict == verdict)
        .map(|c| c.reason.clone())
        .collect();
    let plan = plan.filter(|_| verdict == Verdict::Inconclusive);
    Ok(GateDecision {
        verdict,
        reasons,
        criteria,
        items_needed: plan.map(|p| p.more),
        items_needed_total: plan.map(|p| p.total),
        items_needed_exact: plan.is_some_and(|p| p.probability.is_some()),
        retention_basis: basis,
    })
}

/// The retention criterion, the rule of the module docs that decided it
/// and, when inconclusive, the items that would decide it.
fn retention_criterion(
    th: &GateThresholds,
    retention: &Retention<BootstrapEstimate>,
    with_items: bool,
) -> Result<(CriterionResult, RetentionBasis, Option<ItemsToAdd>), GateError> {
    let items = |e: &BootstrapEstimate| -> Result<(Option<ItemsToAdd>, String), GateError> {
        if with_items {
            let more = items_to_decide(th, e)?;
            let text = advice(th, more.as_ref());
            Ok((more, text))
        } else {
            Ok((None, "items to decide it not computed".to_string()))
        }
    };
    let result = |verdict, reason| CriterionResult {
        criterion: Criterion::Retention,
        verdict,
        reason,
    };
    let e = match retention {
        Retention::Unmeasurable(u) => {
            return Ok((
                result(Verdict::Inconclusive, unmeasurable_reason(u)),
                RetentionBasis::NotMeasurable,
                None,
            ));
        }
        Retention::Measured(e) => e,
    };
    check_estimate(th, e)?;
    let (t, c) = (th.min_retention, th.confidence);
    // A sum of fractional scores (route, load plan, samples) is not a count:
    // show it to one decimal, whole counts without one.
    let count = |x: f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1} (sum of scores)")
        }
    };
    let method = e.method;
    if e.upper_bound < t {
        return Ok((
            result(
                Verdict::Fail,
                format!(
                    "retention is below the threshold with the gate's confidence: one-sided upper \
                     bound {} < {t} at confidence {c} ({method} interval; point estimate {}, \
                     teacher right on {} of {} items)",
                    e.upper_bound,
                    e.point,
                    count(e.teacher_correct),
                    e.n
                ),
            ),
            RetentionBasis::UpperBoundBelow,
            None,
        ));
    }
    let min_correct = th.min_teacher_correct as f64;
    if e.teacher_correct < min_correct {
        let (more, advice) = items(e)?;
        return Ok((
            result(
                Verdict::Inconclusive,
                format!(
                    "retention cannot be measured: the teacher got {} of {} items right, fewer \
                     than the minimum {}, and the one-sided upper bound at confidence {c} \
                     ({method} interval: {}) does not show the student below the threshold {t}; {}",
                    count(e.teacher_correct),
                    e.n,
                    th.min_teacher_correct,
                    upper_bound_text(e.upper_bound),
                    advice,
                ),
            ),
            RetentionBasis::TooFewTeacherCorrect,
            more,
        ));
    }
    if e.point < t {
        return Ok((
            result(
                Verdict::Fail,
                format!(
                    "retention point estimate {} is below the threshold {t} (one-sided upper \
                     bound {} at confidence {c} is not, {method} interval; {} items)",
                    e.point, e.upper_bound, e.n
                ),
            ),
            RetentionBasis::PointBelow,
            None,
        ));
    }
    if e.lower_bound >= t {
        return Ok((
            result(
                Verdict::Pass,
                format!(
                    "retention one-sided lower bound {} >= {t} at confidence {c} ({method} \
                     interval; point estimate {}, {} items)",
                    e.lower_bound, e.point, e.n
                ),
            ),
            RetentionBasis::LowerBoundAtOrAbove,
            None,
        ));
    }
    let (more, advice) = items(e)?;
    Ok((
        result(
            Verdict::Inconclusive,
            format!(
                "retention point estimate {} is at or above the threshold {t} but its one-sided \
                 lower bound {} at confidence {c} ({method} interval) is below it ({} items); \
                 {advice}",
                e.point, e.lower_bound, e.n,
            ),
        ),
        RetentionBasis::LowerBoundBelow,
        more,
    ))
}

/// Refuses an estimate the gate cannot judge: one made at another
/// confidence than the gate's, or with a bound or count that is not a
/// number (an upper bound may be infinite: unbounded).
fn check_estimate(th: &GateThresholds, e: &BootstrapEstimate) -> Result<(), GateError> {
    if e.confidence != th.confidence {
        return Err(GateError::ConfidenceMismatch {
            estimate: e.confidence,
            configured: th.confidence,
        });
    }
    for (field, value) in [
        ("retention.point", e.point),
        ("retention.lower_bound", e.lower_bound),
        ("retention.teacher_correct", e.teacher_correct),
    ] {
        if !value.is_finite() {
            return Err(GateError::Input {
                field,
                value,
                expected: "a finite number",
            });
        }
    }
    if e.upper_bound.is_nan() {
        return Err(GateError::Input {
            field: "retention.upper_bound",
            value: e.upper_bound,
            expected: "a number",
        });
    }
    Ok(())
}

/// The items to add for an INCONCLUSIVE retention criterion to be decided
/// (PASS or FAIL) with probability `th.power`, at the observed rates: exact
/// for unclustered pass/fail scores ([`crate::stats::items_to_add`], the
/// gate's own rule with the floor and the interval method of the estimate);
/// for fractional or clustered scores under the score interval, the same on
/// the pass/fail table it judged (an estimate; clustered items planned as
/// if they were not); otherwise the large-sample count, at least the items
/// for the teacher's expected correct count to reach the floor.
fn items_to_decide(
    th: &GateThresholds,
    e: &BootstrapEstimate,
) -> Result<Option<ItemsToAdd>, GateError> {
    let rule = RetentionRule {
        threshold: th.min_retention,
        confidence: th.confidence,
        min_teacher_correct: th.min_teacher_correct,
        method: e.method,
    };
    if let (Some(cells), None) = (e.cells, e.clusters)
        && let Some(shares) = CellShares::observed(&cells)
    {
        return Ok(items_to_add(
            &rule,
            &cells,
            &shares,
            th.power,
            Goal::Decide,
        )?);
    }
    let floor = ((th.min_teacher_correct as f64 - e.teacher_correct) / e.teacher_mean).ceil();
    let floor =
        (floor.is_finite() && floor >= 1.0 && floor < u64::MAX as f64).then_some(floor as u64);
    // Fractional or clustered scores under the score interval: the gate
    // judged the pass/fail table (the expected cells of fractional scores),
    // so the plan is that table's exact one (current cells rounded to
    // counts, added items drawn as pass/fail outcomes at its rates: more
    // varied than fractional scores, so conservative; clustered items
    // planned as if they were not), marked as an estimate.
    let table_discordance = e.expected_discordance.or(e.cells.map(|c| c.discordance()));
    if let (IntervalMethod::Score, Some(d)) = (e.method, table_discordance) {
        let (t, s) = (e.teacher_mean, e.student_mean);
        return Ok(items_to_add_on_table(&rule, e.n, t, s, d, th.power)?);
    }
    let pass = if e.point >= th.min_retention {
        additional_items_needed(&e.moments, th.min_retention, th.confidence, th.power, e.n)?
    } else {
        None
    };
    Ok(pass.max(floor).map(|more| ItemsToAdd {
        more,
        total: e.n.saturating_add(more),
        probability: None,
    }))
}

/// The sentence on the items that would decide an INCONCLUSIVE criterion.
fn advice(th: &GateThresholds, more: Option<&ItemsToAdd>) -> String {
    match more {
        Some(m) => format!(
            "{} more paired items ({} in total) would decide it with probability {} at the \
             observed rates{}",
            m.more,
            m.total,
            th.power,
            if m.probability.is_some() {
                ""
            } else {
                " (estimate)"
            }
        ),
        None => "no number of added items is likely to decide it at the observed rates".to_string(),
    }
}

/// An upper bound as a reason states it: `unbounded` when the interval
/// has no finite upper end (the score interval's is then the largest
/// float, which says nothing to a reader).
fn upper_bound_text(x: f64) -> String {
    if x.is_finite() && x < f64::MAX {
        x.to_string()
    } else {
        "unbounded".to_string()
    }
}

fn unmeasurable_reason(u: &Unmeasurable) -> String {
    format!(
        "retention cannot be measured: {} ({} paired items)",
        u.reason, u.n
    )
}

/// Whether a limit is an upper or a lower bound.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Max,
    Min,
}

/// How to check and describe one optional limit.
struct LimitSpec {
    criterion: Criterion,
    /// Field name in [`GateInput`].
    field: &'static str,
    name: &'static str,
    unit: &'static str,
    bound: Bound,
    /// Largest valid measured value (1 for rates, infinity otherwise).
    max_valid: f64,
}

const P95_LATENCY: LimitSpec = LimitSpec {
    criterion: Criterion::P95Latency,
    field: "p95_latency_ms",
    name: "p95 latency",
    unit: " ms",
    bound: Bound::Max,
    max_valid: f64::MAX,
};
const SPEEDUP: LimitSpec = LimitSpec {
    criterion: Criterion::Speedup,
    field: "speedup",
    name: "speedup",
    unit: "x",
    bound: Bound::Min,
    max_valid: f64::MAX,
};
const COST_RATIO: LimitSpec = LimitSpec {
    criterion: Criterion::CostRatio,
    field: "cost_ratio",
    name: "cost ratio",
    unit: "",
    bound: Bound::Max,
    max_valid: f64::MAX,
};
const ERROR_RATE: LimitSpec = LimitSpec {
    criterion: Criterion::ErrorRate,
    field: "error_rate",
    name: "error rate",
    unit: "",
    bound: Bound::Max,
    max_valid: 1.0,
};

/// One optional limit: `value <= limit` for a maximum, `value >= limit` for a minimum.
fn limit_criterion(
    spec: &LimitSpec,
    limit: f64,
    value: Option<f64>,
) -> Result<CriterionResult, GateError> {
    let LimitSpec {
        criterion,
        field,
        name,
        unit,
        bound,
        max_valid,
    } = *spec;
    let result = |verdict, reason| CriterionResult {
        criterion,
        verdict,
        reason,
    };
    let Some(v) = value else {
        let must = match bound {
            Bound::Max => "at most",
            Bound::Min => "at least",
        };
        return Ok(result(
            Verdict::Inconclusive,
            format!("{name} must be {must} {limit}{unit} but was not measured"),
        ));
    };
    if !(0.0..=max_valid).contains(&v) {
        return Err(GateError::Input {
            field,
            value: v,
            expected: if max_valid == 1.0 {
                "a number in [0, 1]"
            } else {
                "a finite number >= 0"
            },
        });
    }
    Ok(match bound {
        Bound::Max if v > limit => result(
            Verdict::Fail,
            format!("{name} {v}{unit} exceeds the maximum {limit}{unit}"),
        ),
        Bound::Max => result(
            Verdict::Pass,
            format!("{name} {v}{unit} is within the maximum {limit}{unit}"),
        ),
        Bound::Min if v < limit => result(
            Verdict::Fail,
            format!("{name} {v}{unit} is below the minimum {limit}{unit}"),
        ),
        Bound::Min => result(
            Verdict::Pass,
            format!("{name} {v}{unit} meets the minimum {limit}{unit}"),
        ),
    })
}

/// Family-wise control over the retention criteria of every gate in a run
/// (`[gate] family_wise` in `gate.toml`).
///
/// Each gate's retention criterion tests `H₀: R <= min_retention` at level
/// `α = 1 - confidence` and PASSes when it rejects. With `m` gates in a run
/// and no adjustment, each gate alone falsely passes with probability at
/// most `α`, but the chance that *some* gate falsely passes can reach
/// `m α`. The adjustments bound that family-wise rate by `α`:
///
/// - `bonferroni`: every gate uses confidence `1 - α / m`.
/// - `holm` (Holm 1979, Scand. J. Statist. 6, 65-70), step-down on the
///   bounds: with `r` gates not yet passed, every one whose lower bound at
///   confidence `1 - α / r` clears its threshold passes; repeat with the new
///   `r` until none does. This is exactly Holm's procedure on the one-sided
///   p-values (a bound at `1 - α / r` clears `t` iff `p <= α / r`), at least
///   as many passes as Bonferroni, same guarantee.
///
/// When gates have different confidences, each uses its own `α`; the
/// family-wise error rate is then at most the largest `α`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilyWise {
    /// Per-gate confidence only (the default).
    #[default]
    None,
    /// Holm's step-down adjustment.
    Holm,
    /// Bonferroni's adjustment.
    Bonferroni,
}

impl fmt::Display for FamilyWise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FamilyWise::None => "none",
            FamilyWise::Holm => "holm",
            FamilyWise::Bonferroni => "bonferroni",
        })
    }
}

/// The confidence each gate's retention criterion is judged at under
/// `rule`, given the configured `confidences` (one per gate).
///
/// `passes_at(i, c)` must say whether gate `i`'s retention criterion
/// PASSes at confidence `c`; it is called only for [`FamilyWise::Holm`].
/// Judging gate `i` at the returned confidence gives the adjusted verdict.
pub fn family_confidences<E>(
    rule: FamilyWise,
    confidences: &[f64],
    mut passes_at: impl FnMut(usize, f64) -> Result<bool, E>,
) -> Result<Vec<f64>, E> {
    let m = confidences.len() as f64;
    let at = |c: f64, r: f64| 1.0 - (1.0 - c) / r;
    match rule {
        FamilyWise::None => Ok(confidences.to_vec()),
        FamilyWise::Bonferroni => Ok(confidences.iter().map(|&c| at(c, m)).collect()),
        FamilyWise::Holm => {
            let mut out = confidences.to_vec();
            let mut remaining: Vec<usize> = (0..confidences.len()).collect();
            while !remaining.is_empty() {
                let r = remaining.len() as f64;
                let mut passed = Vec::new();
                for &i in &remaining {
                    let c = at(confidences.get(i).copied().unwrap_or(0.95), r);
                    if let Some(slot) = out.get_mut(i) {
                        *slot = c;
                    }
                    if passes_at(i, c)? {
                        passed.push(i);
                    }
                }
                if passed.is_empty() {
                    break;
                }
                remaining.retain(|i| !passed.contains(i));
            }
            Ok(out)
        }
    }
}

/// Which items share a cluster for the retention uncertainty
/// (`[gate] clusters` in `gate.toml`): `"none"`, `"category"`, or
/// `"meta.<key>"` (tasks with equal `meta.<key>` values, e.g. a template
/// id; a task without the key is its own cluster).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ClusterBy {
    /// Items are independent (the default).
    #[default]
    None,
    /// Items of a category form a cluster.
    Category,
    /// Items with equal `meta.<key>` form a cluster.
    Meta(String),
}

impl TryFrom<String> for ClusterBy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "none" => Ok(ClusterBy::None),
            "category" => Ok(ClusterBy::Category),
            _ => match s.strip_prefix("meta.") {
                Some(key) if !key.is_empty() => Ok(ClusterBy::Meta(key.to_string())),
                _ => Err(format!(
                    "unknown clusters {s:?} (expected \"none\", \"category\" or \"meta.<key>\")"
                )),
            },
        }
    }
}

impl From<ClusterBy> for String {
    fn from(c: ClusterBy) -> String {
        match c {
            ClusterBy::None => "none".into(),
            ClusterBy::Category => "category".into(),
            ClusterBy::Meta(key) => format!("meta.{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{
        BootstrapOptions, Interval, PairedMoments, UnmeasurableReason, paired_bootstrap_retention,
    };
    use crate::stats::{CellShares, IntervalMethod, PairedCells, RetentionRule, VerdictOdds};

    /// The gate's retention verdict on one table, by the real estimate and
    /// [`decide`].
    fn gate_verdict(rule: &RetentionRule, c: &PairedCells) -> Verdict {
        let (t, s) = crate::stats::test_support::table(
            c.both as usize,
            c.teacher_only as usize,
            c.student_only as usize,
            c.neither as usize,
        );
        let opts = BootstrapOptions {
            confidence: rule.confidence,
            ..BootstrapOptions::default()
        };
        let retention = crate::stats::retention_estimate(&t, &s, None, rule.method, &opts).unwrap();
        let mut th = GateThresholds::new(rule.threshold);
        th.confidence = rule.confidence;
        th.min_teacher_correct = rule.min_teacher_correct;
        let input = GateInput::retention_only(retention);
        decide_verdict(&th, &input).unwrap().verdict
    }

    /// `verdict_odds` by brute force: every multinomial table of `k` added
    /// items, judged by the real gate.
    fn brute_force(
        rule: &RetentionRule,
        current: &PairedCells,
        p: &CellShares,
        k: u64,
    ) -> VerdictOdds {
        let ln_fact = |n: u64| (1..=n).map(|i| (i as f64).ln()).sum::<f64>();
        let mut odds = VerdictOdds {
            pass: 0.0,
            fail: 0.0,
        };
        for a in 0..=k {
            for b in 0..=k - a {
                for c in 0..=k - a - b {
                    let d = k - a - b - c;
                    let mut lw = ln_fact(k) - ln_fact(a) - ln_fact(b) - ln_fact(c) - ln_fact(d);
                    for (x, q) in [
                        (a, p.both),
                        (b, p.teacher_only),
                        (c, p.student_only),
                        (d, p.neither),
                    ] {
                        if x > 0 {
                            lw += x as f64 * q.ln();
                        }
                    }
                    let w = lw.exp();
                    let table = PairedCells {
                        both: current.both + a,
                        teacher_only: current.teacher_only + b,
                        student_only: current.student_only + c,
                        neither: current.neither + d,
                    };
                    match gate_verdict(rule, &table) {
                        Verdict::Pass => odds.pass += w,
                        Verdict::Fail => odds.fail += w,
                        Verdict::Inconclusive => {}
                    }
                }
            }
        }
        odds
    }

    #[test]
    fn verdict_odds_equal_the_gate_on_every_table() {
        // Small suites, where every table can be judged by the gate itself:
        // the sum (with its bisections over the both-right count) must give
        // the same probabilities for every analytic method.
        let shares = CellShares {
            both: 0.55,
            teacher_only: 0.15,
            student_only: 0.1,
            neither: 0.2,
        };
        let currents = [
            PairedCells::default(),
            PairedCells {
                both: 6,
                teacher_only: 1,
                student_only: 0,
                neither: 1,
            },
            PairedCells {
                both: 0,
                teacher_only: 0,
                student_only: 1,
                neither: 2,
            },
        ];
        for method in [
            IntervalMethod::Score,
            IntervalMethod::Fieller,
            IntervalMethod::DeltaLog,
        ] {
            for (threshold, min_teacher_correct) in [(0.95, 10), (0.8, 3), (0.6, 0)] {
                let rule = RetentionRule {
                    threshold,
                    confidence: 0.9,
                    min_teacher_correct,
                    method,
                };
                for current in &currents {
                    for k in [1, 5, 14] {
                        let got = crate::stats::verdict_odds(&rule, current, &shares, k)
                            .unwrap()
                            .unwrap();
                        let want = brute_force(&rule, current, &shares, k);
                        assert!(
                            (got.pass - want.pass).abs() < 1e-9
                                && (got.fail - want.fail).abs() < 1e-9,
                            "{rule:?} {current:?} k={k}: {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }

    /// A measured retention with the given point and one-sided lower bound.
    fn estimate(point: f64, lower_bound: f64, n: u64, teacher_correct: f64) -> GateInput {
        let teacher_mean = teacher_correct / n as f64;
        let moments = PairedMoments::from_binary_rates(teacher_mean, teacher_mean * point, 0.1)
            .expect("consistent rates");
        GateInput {
            retention: Retention::Measured(BootstrapEstimate {
                n,
                teacher_mean,
                student_mean: teacher_mean * point,
                teacher_correct,
                point,
                confidence: 0.95,
                interval: Interval {
                    lower: lower_bound - 0.01,
                    upper: point + 0.05,
                },
                lower_bound,
                upper_bound: point + 0.04,
                standard_error: 0.02,
                resamples: 10_000,
                undefined_resamples: 0,
                seed: 1,
                moments,
                method: crate::stats::IntervalMethod::Percentile,
                clusters: None,
                cells: None,
                expected_discordance: None,
            }),
            p95_latency_ms: None,
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        }
    }

    #[test]
    fn pass_when_lower_bound_clears_threshold() {
        let d = decide(
            &GateThresholds::new(0.95),
            &estimate(0.98, 0.95, 400, 300.0),
        )
        .unwrap();
        assert_eq!(d.verdict, Verdict::Pass);
        assert_eq!(d.items_needed, None);
        assert_eq!(d.reasons.len(), 1);
        assert!(
            d.reasons[0].contains("lower bound 0.95 "),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn fail_when_point_estimate_below_threshold_even_by_a_hair() {
        // Never rounded: the largest f64 below 0.95 fails, and the reason shows every digit.
        let hair = 0.95_f64.next_down();
        let d = decide(&GateThresholds::new(0.95), &estimate(hair, 0.9, 400, 300.0)).unwrap();
        assert_eq!(d.verdict, Verdict::Fail);
        let want = format!("retention point estimate {hair} is below the threshold 0.95");
        assert!(want.contains("0.94999999999999"), "{want}");
        assert!(d.reasons[0].contains(&want), "{:?}", d.reasons);
    }

    #[test]
    fn inconclusive_reports_items_needed() {
        let input = estimate(0.97, 0.93, 200, 160.0);
        let th = GateThresholds::new(0.95);
        let d = decide(&th, &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive);
        let Retention::Measured(e) = &input.retention else {
            unreachable!()
        };
        // Fractional-score estimates (no cells) use the large-sample count.
        let expected = additional_items_needed(&e.moments, 0.95, 0.95, 0.8, 200).unwrap();
        assert!(expected.is_some());
        assert_eq!(d.items_needed, expected);
        let k = expected.unwrap_or(0);
        assert_eq!(d.items_needed_total, Some(200 + k));
        assert_eq!(d.retention_basis, RetentionBasis::LowerBoundBelow);
        let want = format!(
            "{k} more paired items ({} in total) would decide it with probability 0.8 at the \
             observed rates (estimate)",
            200 + k
        );
        assert!(d.reasons[0].contains(&want), "{:?}", d.reasons);
    }

    /// A student that copies the teacher's fractional scores on 60 items
    /// (sum 27) is INCONCLUSIVE at 0.95: the score interval on the expected
    /// pass/fail table (27 both right, 33 neither) bounds it at
    /// 27 / (27 + z^2) = 0.909. The items to add are planned on that table:
    /// PASS needs a / (a + z^2) >= 0.95, a >= 52, so 25 more of the added
    /// items both right, each with probability 27/60; scipy's
    /// `binom.sf(24, k, 0.45) >= 0.8` first holds at k = 62 (0.8069).
    #[test]
    fn fractional_scores_plan_items_on_their_expected_table() {
        let t: Vec<f64> = (0..60).map(|i| [0.0, 0.2, 0.6, 1.0][i % 4]).collect();
        let retention = crate::stats::retention_estimate(
            &t,
            &t,
            None,
            crate::stats::IntervalMethod::Score,
            &BootstrapOptions::default(),
        )
        .unwrap();
        let input = GateInput {
            retention,
            p95_latency_ms: None,
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        };
        let e = input.retention.measured().unwrap();
        assert_eq!(e.expected_discordance, Some(0.0));
        assert!((e.lower_bound - 0.9089212604954915).abs() < 1e-9, "{e:?}");
        let d = decide(&GateThresholds::new(0.95), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive, "{d:?}");
        assert_eq!(d.items_needed, Some(62), "{d:?}");
        assert_eq!(d.items_needed_total, Some(122));
        assert!(!d.items_needed_exact);
        assert!(
            d.reasons[0].contains(
                "62 more paired items (122 in total) would decide it with \
                 probability 0.8 at the observed rates (estimate)"
            ),
            "{:?}",
            d.reasons
        );
        // Clustered, the same table is planned (as if unclustered), not the
        // large-sample count on the scores' variance of 0 (which said 1).
        let labels: Vec<usize> = (0..t.len()).map(|i| i % 6).collect();
        let clusters = crate::stats::Clusters::from_labels(&labels);
        let input = GateInput {
            retention: crate::stats::retention_estimate(
                &t,
                &t,
                Some(&clusters),
                crate::stats::IntervalMethod::Score,
                &BootstrapOptions::default(),
            )
            .unwrap(),
            ..input
        };
        let d = decide(&GateThresholds::new(0.95), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive, "{d:?}");
        assert_eq!(d.items_needed, Some(62), "{d:?}");
    }

    /// The gate's input for paired binary scores with the given cells,
    /// estimated by `method` at confidence 0.95.
    fn table_input(
        cells: (usize, usize, usize, usize),
        method: crate::stats::IntervalMethod,
    ) -> GateInput {
        let (t, s) = crate::stats::test_support::table(cells.0, cells.1, cells.2, cells.3);
        let retention =
            crate::stats::retention_estimate(&t, &s, None, method, &BootstrapOptions::default())
                .unwrap();
        GateInput {
            retention,
            p95_latency_ms: None,
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        }
    }

    #[test]
    fn a_confidently_worse_student_fails_whatever_the_suite_size() {
        // Issue 18: teacher right on 7 of 8 items, student on none (McNemar
        // p = 0.016). The teacher is below min_teacher_correct = 10, but the
        // upper bound shows the student below 0.95 with 95% confidence.
        for method in crate::stats::IntervalMethod::ALL {
            let input = table_input((0, 7, 0, 1), method);
            let e = input.retention.measured().unwrap().clone();
            assert!(e.upper_bound < 0.95, "{method}: {e:?}");
            let d = decide(&GateThresholds::new(0.95), &input).unwrap();
            assert_eq!(d.verdict, Verdict::Fail, "{method}: {d:?}");
            assert_eq!(d.retention_basis, RetentionBasis::UpperBoundBelow);
            let want = format!(
                "one-sided upper bound {} < 0.95 at confidence 0.95 ({method} interval",
                e.upper_bound
            );
            assert!(d.reasons[0].contains(&want), "{:?}", d.reasons);
            assert_eq!(d.items_needed, None);
        }
        // Data that cannot tell stay INCONCLUSIVE: the teacher right on 3,
        // the student on 2 of them.
        let d = decide(
            &GateThresholds::new(0.95),
            &table_input((2, 1, 0, 5), crate::stats::IntervalMethod::Score),
        )
        .unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive, "{d:?}");
        assert_eq!(d.retention_basis, RetentionBasis::TooFewTeacherCorrect);
        assert!(
            d.reasons[0].contains("does not show the student below the threshold 0.95"),
            "{:?}",
            d.reasons
        );
        // Every rule names itself.
        let th = GateThresholds::new(0.95);
        let basis = |input: &GateInput| decide(&th, input).unwrap().retention_basis;
        assert_eq!(
            basis(&estimate(0.93, 0.85, 400, 300.0)),
            RetentionBasis::PointBelow
        );
        assert_eq!(
            basis(&estimate(0.99, 0.96, 400, 300.0)),
            RetentionBasis::LowerBoundAtOrAbove
        );
    }

    #[test]
    fn unmeasurable_and_too_few_teacher_correct_are_inconclusive() {
        let input = GateInput {
            retention: Retention::Unmeasurable(crate::stats::Unmeasurable {
                reason: UnmeasurableReason::TeacherScoredZero,
                n: 30,
                teacher_mean: Some(0.0),
                student_mean: Some(0.1),
            }),
            p95_latency_ms: None,
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        };
        let d = decide(&GateThresholds::new(0.9), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive);
        assert!(
            d.reasons[0].starts_with("retention cannot be measured"),
            "{:?}",
            d.reasons
        );

        // 8 correct of 40, kept by the student: the items to add count the
        // floor and the score interval (exact, from the cells).
        let input = table_input((8, 0, 0, 32), crate::stats::IntervalMethod::Score);
        let d = decide(&GateThresholds::new(0.9), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive);
        assert_eq!(d.retention_basis, RetentionBasis::TooFewTeacherCorrect);
        assert!(
            d.reasons[0].contains("the teacher got 8 of 40 items right, fewer than the minimum 10")
        );
        let more = d.items_needed.unwrap();
        // The floor alone needs 10 more on average; the score bound at 0.9
        // needs about z² · 0.9 / 0.1 = 24.4 teacher-right items kept.
        assert!(more > 70, "{d:?}");
        assert_eq!(d.items_needed_total, Some(40 + more));
        assert!(
            d.reasons[0].contains(&format!(
                "{more} more paired items ({} in total)",
                40 + more
            )),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn extra_criteria_fail_with_exact_numbers() {
        let mut th = GateThresholds::new(0.95);
        th.max_p95_latency_ms = Some(250.0);
        th.min_speedup = Some(2.0);
        th.max_cost_ratio = Some(0.25);
        th.max_error_rate = Some(0.01);
        let mut input = estimate(0.99, 0.96, 400, 300.0);
        input.p95_latency_ms = Some(250.00000000000003);
        input.speedup = Some(1.9999999999999998);
        input.cost_ratio = Some(0.25);
        input.error_rate = Some(0.0);
        let d = decide(&th, &input).unwrap();
        assert_eq!(d.verdict, Verdict::Fail);
        assert_eq!(d.criteria.len(), 5);
        assert_eq!(
            d.reasons,
            vec![
                "p95 latency 250.00000000000003 ms exceeds the maximum 250 ms".to_string(),
                "speedup 1.9999999999999998x is below the minimum 2x".to_string(),
            ]
        );
        // Equality passes.
        input.p95_latency_ms = Some(250.0);
        input.speedup = Some(2.0);
        assert_eq!(decide(&th, &input).unwrap().verdict, Verdict::Pass);
        // A limit without a measurement cannot be decided.
        input.error_rate = None;
        let d = decide(&th, &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive);
        assert_eq!(
            d.reasons,
            vec!["error rate must be at most 0.01 but was not measured"]
        );
        // Failure outranks inconclusive.
        input.cost_ratio = Some(0.5);
        assert_eq!(decide(&th, &input).unwrap().verdict, Verdict::Fail);
    }

    #[test]
    fn invalid_thresholds_and_inputs_are_errors() {
        let input = estimate(0.99, 0.96, 400, 300.0);
        let mut th = GateThresholds::new(0.95);
        th.max_error_rate = Some(1.5);
        assert!(matches!(
            decide(&th, &input),
            Err(GateError::Threshold {
                field: "max_error_rate",
                ..
            })
        ));
        let mut th = GateThresholds::new(0.95);
        th.confidence = 0.9;
        assert!(matches!(
            decide(&th, &input),
            Err(GateError::ConfidenceMismatch { .. })
        ));
        let mut th = GateThresholds::new(0.95);
        th.min_speedup = Some(1.0);
        let mut bad = input.clone();
        bad.speedup = Some(f64::NAN);
        assert!(matches!(
            decide(&th, &bad),
            Err(GateError::Input {
                field: "speedup",
                ..
            })
        ));
    }

    #[test]
    fn serde_shapes() {
        assert_eq!(
            serde_json::to_string(&Verdict::Inconclusive).unwrap(),
            r#""INCONCLUSIVE""#
        );
        assert_eq!(Verdict::Pass.to_string(), "PASS");
        let th: GateThresholds =
            toml::from_str("min_retention = 0.95\nmax_p95_latency_ms = 300.0").unwrap();
        assert_eq!(th.confidence, DEFAULT_CONFIDENCE);
        assert_eq!(th.power, DEFAULT_POWER);
        assert_eq!(th.min_teacher_correct, DEFAULT_MIN_TEACHER_CORRECT);
        assert_eq!(th.max_p95_latency_ms, Some(300.0));
        assert!(toml::from_str::<GateThresholds>("min_retention = 0.95\nmax_p59 = 1.0").is_err());
    }

    #[test]
    fn end_to_end_with_the_bootstrap() {
        // 1000 items, teacher right on 800, student keeps 790 of those and adds 10:
        // R = 800 / 800 = 1.0 with a tight interval → PASS at 0.95.
        let mut teacher = vec![0.0; 1000];
        let mut student = vec![0.0; 1000];
        teacher[..800].fill(1.0);
        student[..790].fill(1.0);
        student[800..810].fill(1.0);
        let retention =
            paired_bootstrap_retention(&teacher, &student, &BootstrapOptions::default()).unwrap();
        let input = GateInput {
            retention,
            p95_latency_ms: Some(120.0),
            speedup: None,
            cost_ratio: None,
            error_rate: None,
        };
        let d = decide(&GateThresholds::new(0.95), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
        let d = decide(&GateThresholds::new(1.01), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Fail, "{d:?}");
        let d = decide(&GateThresholds::new(0.995), &input).unwrap();
        assert_eq!(d.verdict, Verdict::Inconclusive, "{d:?}");
        assert!(d.items_needed.is_some());
    }
    #[test]
    fn holm_and_bonferroni_match_statsmodels() {
        // One-sided p-values of five gates and statsmodels 0.15.0
        // `multipletests(p, alpha=0.05, method="holm" | "bonferroni")[0]`
        // (tests/reference/calibration_reference.py): Holm rejects
        // [True, True, True, False, False], Bonferroni [True, False, False, False, False].
        let p = [0.004, 0.011, 0.0165, 0.03, 0.2];
        let conf = [0.95; 5];
        // A gate passes at confidence c iff its p-value <= 1 - c.
        let passes = |i: usize, c: f64| Ok::<_, ()>(p[i] <= 1.0 - c + 1e-15);
        let judge = |rule| {
            let c = family_confidences(rule, &conf, passes).unwrap();
            (0..5).map(|i| passes(i, c[i]).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(judge(FamilyWise::Holm), [true, true, true, false, false]);
        assert_eq!(
            judge(FamilyWise::Bonferroni),
            [true, false, false, false, false]
        );
        assert_eq!(judge(FamilyWise::None), [true, true, true, true, false]);
        let c = family_confidences(FamilyWise::Bonferroni, &conf, passes).unwrap();
        assert!((c[0] - 0.99).abs() < 1e-15);
        // Holm: three passed at 0.99, 0.9875, 0.98333; the two left stay at 1 - 0.05 / 2.
        let c = family_confidences(FamilyWise::Holm, &conf, passes).unwrap();
        assert!(
            (c[3] - 0.975).abs() < 1e-15 && (c[4] - 0.975).abs() < 1e-15,
            "{c:?}"
        );
    }

    #[test]
    fn cluster_by_parses_and_round_trips() {
        #[derive(Deserialize)]
        struct T {
            c: ClusterBy,
        }
        let parse = |s: &str| toml::from_str::<T>(&format!("c = {s:?}")).map(|t| t.c);
        assert_eq!(parse("category").unwrap(), ClusterBy::Category);
        assert_eq!(
            parse("meta.template").unwrap(),
            ClusterBy::Meta("template".into())
        );
        assert_eq!(parse("none").unwrap(), ClusterBy::None);
        assert!(parse("meta.").is_err() && parse("suite").is_err());
        assert_eq!(String::from(ClusterBy::Meta("t".into())), "meta.t");
    }

    #[test]
    fn an_unbounded_upper_bound_is_said_in_words() {
        // Seen in a live run: the reason printed f64::MAX's 309 digits.
        assert_eq!(upper_bound_text(f64::MAX), "unbounded");
        assert_eq!(upper_bound_text(f64::INFINITY), "unbounded");
        assert_eq!(upper_bound_text(0.451), "0.451");
    }
}
