//! The swap plan of one run: per student, the categories it may take over
//! from the teacher, and what routing just those categories to it would
//! give.
//!
//! A category (of a suite) is taken over when the gate's retention rule
//! ([`crate::gate::decide`]) passes on that category's paired items, with
//! the thresholds of the student's gate on that suite (min_retention,
//! confidence and max_error_rate; latency and cost limits apply to a whole
//! deployment, not a slice, and are left to the blend's numbers). Retention
//! is estimated with the run's interval method, so a category's retention
//! and lower bound are the run's own for that category; where the run's
//! summary calls a category's retention not measurable (its teacher got
//! fewer than the run's `min_teacher_correct` items right), so does the plan.
//!
//! The blend routes every item of a taken-over category to the student and
//! every other item to the teacher. Over all suites' items (those the
//! teacher answered without error, as for retention): blended retention
//! `sum(blended scores) / sum(teacher scores)` with its lower bound by the
//! run's interval method, p50/p95 latency over the routed answers' latencies, and cost
//! per 1,000 items. It assumes traffic has the categories in the
//! proportions of the suites.

use std::collections::{BTreeMap, BTreeSet};

use super::pairing::{ItemKey, ItemScore, item_scores};
use super::summarize::SummarizeError;
use crate::gate::{self, GateInput, GateThresholds, Verdict};
use crate::run::journal::{JournalEntry, Role};
use crate::stats::{self, BootstrapEstimate, BootstrapOptions, Retention};
use crate::summary::{Blend, CategoryDecision, Comparison, ModelInfo, Summary, SwapPlan};

/// The swap plan of every student of a run, from its summary (thresholds,
/// seed, resamples) and journal (item scores).
pub fn swap_plans(
    summary: &Summary,
    entries: &[JournalEntry],
) -> Result<Vec<SwapPlan>, SummarizeError> {
    let items = item_scores(entries);
    let empty = BTreeMap::new();
    let teacher_name = summary
        .models
        .iter()
        .find(|m| m.role == Role::Teacher)
        .map(|m| m.name.as_str());
    let teacher = teacher_name.and_then(|t| items.get(t)).unwrap_or(&empty);
    summary
        .models
        .iter()
        .filter(|m| m.role == Role::Student)
        .map(|m| {
            let student = items.get(&m.name).unwrap_or(&empty);
            plan_for(summary, m, teacher, student)
        })
        .collect()
}

/// A teacher's item, with the student's answer to it where there is one.
type TeacherItem<'a> = (&'a ItemScore, Option<&'a ItemScore>);

/// A task-specific student (with `categories`) is decided only on the
/// categories it takes; every other item stays with the teacher.
fn plan_for(
    summary: &Summary,
    model: &ModelInfo,
    teacher: &BTreeMap<ItemKey, ItemScore>,
    items: &BTreeMap<ItemKey, ItemScore>,
) -> Result<SwapPlan, SummarizeError> {
    let student = model.name.as_str();
    // Items the teacher answered, by (suite, category), with the student's
    // answer where it has one.
    let mut by_category: BTreeMap<(&str, &str), Vec<TeacherItem>> = BTreeMap::new();
    for (key, t) in teacher.iter().filter(|(_, t)| !t.errored) {
        by_category
            .entry((key.0.as_str(), t.category.as_str()))
            .or_default()
            .push((t, items.get(key)));
    }
    let mut categories = Vec::new();
    let mut routed: BTreeSet<(&str, &str)> = BTreeSet::new();
    for suite in &summary.suites {
        for category in suite
            .categories
            .iter()
            .filter(|c| model.takes(&suite.name, Some(c)))
        {
            let category_gate = summary.gates.iter().find(|g| {
                g.student == student
                    && g.suite == suite.name
                    && g.category.as_deref() == Some(category.as_str())
            });
            let thresholds = match category_gate {
                Some(g) => g.thresholds.clone(),
                None => suite_thresholds(summary, student, &suite.name),
            };
            let pairs: Vec<(&ItemScore, &ItemScore)> = by_category
                .get(&(suite.name.as_str(), category.as_str()))
                .into_iter()
                .flatten()
                .filter_map(|(t, s)| Some((*t, (*s)?)))
                .collect();
            let own = summary.comparisons.iter().find(|c| {
                c.student == student
                    && c.suite == suite.name
                    && c.category.as_deref() == Some(category.as_str())
            });
            let d = decide_category(summary, &thresholds, &pairs, own)?;
            if d.verdict == Verdict::Pass {
                routed.insert((suite.name.as_str(), category.as_str()));
            }
            categories.push(CategoryDecision {
                suite: suite.name.clone(),
                category: category.clone(),
                take_over: d.verdict == Verdict::Pass,
                ..d
            });
        }
    }
    let confidence = summary
        .gates
        .iter()
        .find(|g| g.student == student)
        .map_or(gate::DEFAULT_CONFIDENCE, |g| g.thresholds.confidence);
    // Items the student did not answer (categories it does not take) stay
    // with the teacher.
    let all: Vec<(bool, &ItemScore, &ItemScore)> = by_category
        .iter()
        .flat_map(|(k, pairs)| {
            let to_student = routed.contains(k);
            pairs.iter().map(move |(t, s)| match s {
                Some(s) => (to_student, *t, *s),
                None => (false, *t, *t),
            })
        })
        .collect();
    let opts = bootstrap_options(summary, confidence);
    Ok(SwapPlan {
        student: student.to_string(),
        categories,
        teacher_only: blend(summary, all.iter().map(|(_, t, _)| (false, *t, *t)), &opts)?,
        blended: blend(summary, all.iter().copied(), &opts)?,
    })
}

/// The bootstrap settings of a run at a confidence.
pub(crate) fn bootstrap_options(summary: &Summary, confidence: f64) -> BootstrapOptions {
    BootstrapOptions {
        resamples: u32::try_from(summary.bootstrap_resamples).unwrap_or(u32::MAX),
        seed: summary.seed,
        confidence,
    }
}

/// The thresholds of a student's gate on a suite, as the run applied them,
/// or the built-in ones when the run has no such gate.
pub(crate) fn suite_thresholds(summary: &Summary, student: &str, suite: &str) -> GateThresholds {
    summary
        .gates
        .iter()
        .find(|g| g.student == student && g.suite == suite && g.category.is_none())
        .map_or_else(GateThresholds::builtin, |g| g.thresholds.clone())
}

/// Retention of `student` against `teacher` scores with the run's interval method.
fn estimate(
    summary: &Summary,
    teacher: &[f64],
    student: &[f64],
    opts: &BootstrapOptions,
) -> Result<Retention<BootstrapEstimate>, SummarizeError> {
    Ok(stats::retention_estimate(
        teacher,
        student,
        None,
        summary.statistics.interval,
        opts,
    )?)
}

/// One category decided on its paired items; `own` is the run's comparison
/// of the student on that category, whose measurability (the run's floor,
/// applied to these same items) is kept.
fn decide_category(
    summary: &Summary,
    thresholds: &GateThresholds,
    pairs: &[(&ItemScore, &ItemScore)],
    own: Option<&Comparison>,
) -> Result<CategoryDecision, SummarizeError> {
    let t: Vec<f64> = pairs.iter().map(|(t, _)| t.score).collect();
    let s: Vec<f64> = pairs.iter().map(|(_, s)| s.score).collect();
    let errors = pairs.iter().filter(|(_, s)| s.errored).count();
    let estimate = estimate(
        summary,
        &t,
        &s,
        &bootstrap_options(summary, thresholds.confidence),
    )?;
    // A category is decided on its retention and error rate; latency, speed
    // and cost are the student's gate's to judge, over all it answers.
    let mut thresholds = GateThresholds {
        max_p95_latency_ms: None,
        min_speedup: None,
        max_cost_ratio: None,
        ..thresholds.clone()
    };
    match own {
        Some(c) if !c.measurable => {
            let items = if c.teacher_correct == 1 {
                "item"
            } else {
                "items"
            };
            return Ok(CategoryDecision {
                suite: String::new(),
                category: String::new(),
                n: pairs.len(),
                retention: None,
                retention_lower: None,
                verdict: Verdict::Inconclusive,
                take_over: false,
                reasons: vec![format!(
                    "retention not measurable: teacher got {} {items} right, fewer than the \
                     run's min_teacher_correct",
                    c.teacher_correct
                )],
                items_needed: None,
            });
        }
        // The run applied its floor to these items and found enough.
        Some(_) => thresholds.min_teacher_correct = 0,
        None => {}
    }
    let measured = estimate.measured().cloned();
    let input = GateInput {
        retention: estimate,
        p95_latency_ms: None,
        speedup: None,
        cost_ratio: None,
        error_rate: (!pairs.is_empty()).then(|| errors as f64 / pairs.len() as f64),
    };
    let d = gate::decide(&thresholds, &input)?;
    Ok(CategoryDecision {
        suite: String::new(),
        category: String::new(),
        n: pairs.len(),
        retention: measured.as_ref().map(|e| e.point),
        retention_lower: measured.as_ref().map(|e| e.lower_bound),
        verdict: d.verdict,
        take_over: false,
        reasons: d.reasons,
        items_needed: d.items_needed,
    })
}

/// The numbers of a routing: `(routed to the student, teacher item, student item)`.
fn blend<'a>(
    summary: &Summary,
    items: impl Iterator<Item = (bool, &'a ItemScore, &'a ItemScore)>,
    opts: &BootstrapOptions,
) -> Result<Blend, SummarizeError> {
    let mut teacher_scores = Vec::new();
    let mut scores = Vec::new();
    let mut latencies = Vec::new();
    let mut cost = 0.0;
    let mut routed_items = 0;
    let mut recorded = false;
    for (routed, t, s) in items {
        let chosen = if routed { s } else { t };
        routed_items += usize::from(routed);
        recorded |= chosen.recorded_latency;
        teacher_scores.push(t.score);
        scores.push(chosen.score);
        latencies.extend_from_slice(&chosen.latencies_ms);
        cost += chosen.cost;
    }
    let n = scores.len();
    let estimate = estimate(summary, &teacher_scores, &scores, opts)?;
    let measured = estimate.measured();
    let latency = if latencies.is_empty() {
        None
    } else {
        Some(stats::summarize(&latencies)?)
    };
    Ok(Blend {
        items: n,
        routed_items,
        accuracy: if n == 0 {
            0.0
        } else {
            scores.iter().sum::<f64>() / n as f64
        },
        retention: measured.map(|e| e.point),
        retention_lower: measured.map(|e| e.lower_bound),
        p50_ms: latency.map(|l| l.p50),
        p95_ms: latency.map(|l| l.p95),
        cost_per_1k: crate::cost::per_1k(cost, n),
        recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Latency, LatencySource};
    use crate::summary::{GateResult, ModelInfo, SuiteInfo};

    fn entry(model: &str, role: Role, category: &str, i: usize, right: bool) -> JournalEntry {
        let (cost, ms) = if role == Role::Teacher {
            (1.0, 100.0)
        } else {
            (0.1, 10.0)
        };
        JournalEntry {
            output: Some(String::new()),
            score: f64::from(u8::from(right)),
            latency: Some(Latency {
                total_ms: ms,
                first_token_ms: None,
                batch_ms: None,
                batch_size: 1,
                source: LatencySource::Recorded,
            }),
            cost,
            ..JournalEntry::new(model, role, "s", format!("{category}-{i}"), category)
        }
    }

    #[test]
    fn takes_over_the_category_it_keeps_and_blends_the_numbers() {
        let mut summary = crate::report::tests::bare_summary();
        for (name, role) in [("t", Role::Teacher), ("st", Role::Student)] {
            summary.models.push(ModelInfo {
                name: name.into(),
                role,
                backend: String::new(),
                fingerprint: String::new(),
                model_id: String::new(),
                price: String::new(),
                categories: Vec::new(),
                few_shot: None,
            });
        }
        summary.suites.push(SuiteInfo {
            name: "s".into(),
            version: "1".into(),
            split: "test".into(),
            items: 100,
            categories: vec!["a".into(), "b".into()],
        });
        summary.gates.push(GateResult {
            student: "st".into(),
            suite: "s".into(),
            category: None,
            verdict: Verdict::Fail,
            reasons: Vec::new(),
            items_needed: None,
            thresholds: crate::gate::GateThresholds::new(0.95),
        });
        // Teacher right on 160 of 200 items in each category; the student
        // matches it on "a" (enough items for the run's default score
        // interval to bound retention above 0.95) and gets every "b" item wrong.
        let mut journal = Vec::new();
        for c in ["a", "b"] {
            for i in 0..200 {
                journal.push(entry("t", Role::Teacher, c, i, i < 160));
                journal.push(entry("st", Role::Student, c, i, c == "a" && i < 160));
            }
        }
        let plans = swap_plans(&summary, &journal).unwrap();
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        let taken: Vec<(&str, bool, Verdict)> = p
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.take_over, c.verdict))
            .collect();
        assert_eq!(
            taken,
            [("a", true, Verdict::Pass), ("b", false, Verdict::Fail)]
        );
        // Hand-computed blend: "a" from the student, "b" from the teacher.
        // Accuracy (160 + 160) / 400; retention 320 / 320; cost (200 * 0.1 +
        // 200 * 1) / 400 items * 1000 = 550; latencies 200 x 10 ms and 200 x
        // 100 ms: numpy.percentile(..., 50) = 55, (..., 95) = 100.
        let b = p.blended;
        assert_eq!((b.items, b.routed_items), (400, 200));
        assert_eq!(b.accuracy, 0.8);
        assert_eq!(b.retention, Some(1.0));
        assert!((b.cost_per_1k - 550.0).abs() < 1e-9, "{b:?}");
        assert_eq!((b.p50_ms, b.p95_ms), (Some(55.0), Some(100.0)));
        let t = p.teacher_only;
        assert_eq!((t.routed_items, t.retention), (0, Some(1.0)));
        assert!((t.cost_per_1k - 1000.0).abs() < 1e-9);
        assert_eq!(t.p50_ms, Some(100.0));
    }
}
