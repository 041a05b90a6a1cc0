//! Gating: each pending gate decided at its confidence, adjusted for the
//! run's gates as one family when `[gate] family_wise` says so.

use super::SummarizeError;
use super::statistics::{PendingGate, estimate};
use crate::config::GateConfig;
use crate::gate;
use crate::stats::{BootstrapEstimate, Retention};
use crate::summary::{AdjustedConfidence, GateResult, GateRetention, RunStatistics};

/// The run's gates decided as one family: each judged at its (adjusted)
/// confidence. How each retention criterion was decided (and, with a
/// family-wise adjustment, each adjusted confidence) goes to `statistics`.
pub(super) fn decide(
    pending: &[PendingGate],
    config: &GateConfig,
    statistics: &mut RunStatistics,
) -> Result<Vec<GateResult>, SummarizeError> {
    let configured: Vec<f64> = pending.iter().map(|g| g.thresholds.confidence).collect();
    let adjusted = gate::family_confidences(config.gate.family_wise, &configured, |i, c| {
        let Some(g) = pending.get(i) else {
            return Ok(false);
        };
        let (d, _) = decide_at(g, c, config)?;
        Ok::<_, SummarizeError>(
            d.criteria
                .first()
                .is_some_and(|r| r.verdict == gate::Verdict::Pass),
        )
    })?;
    let mut gates = Vec::with_capacity(pending.len());
    for (g, c) in pending.iter().zip(adjusted) {
        let (decision, retention) = decide_at(g, c, config)?;
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
            thresholds: g.thresholds.clone(),
        });
    }
    Ok(gates)
}

/// Whether the run fails: a gate FAILed, or was INCONCLUSIVE and the run
/// counts that as failing.
pub(super) fn run_fails(gates: &[GateResult], inconclusive_fails: bool) -> bool {
    gates.iter().any(|g| match g.verdict {
        gate::Verdict::Pass => false,
        gate::Verdict::Fail => true,
        gate::Verdict::Inconclusive => inconclusive_fails,
    })
}

/// The decision of gate `g` with its retention criterion judged at
/// confidence `c` (re-estimated when `c` is not its own), and the
/// retention estimate it judged.
fn decide_at(
    g: &PendingGate,
    c: f64,
    config: &GateConfig,
) -> Result<(gate::GateDecision, Retention<BootstrapEstimate>), SummarizeError> {
    let mut th = g.thresholds.clone();
    th.confidence = c;
    let mut input = g.input.clone();
    if c != g.thresholds.confidence {
        let p = &g.paired;
        input.retention = estimate(&p.teacher, &p.student, p.clusters.as_ref(), c, config)?;
    }
    let decision = gate::decide(&th, &input)?;
    Ok((decision, input.retention))
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
        expected_discordance: e.and_then(|e| e.expected_discordance),
        power: g.thresholds.power,
        items_to_add: decision.items_needed,
        items_total: decision.items_needed_total,
        items_exact: decision.items_needed_exact,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::gate::{FamilyWise, GateInput, Verdict};
    use crate::run::summarize::statistics::Paired;

    fn config(family_wise: &str) -> GateConfig {
        let text = format!(
            r#"
[teacher]
name = "t"
kind = "replay"
transcript = "t.jsonl"

[[students]]
name = "a"
kind = "replay"
transcript = "a.jsonl"

[[students]]
name = "b"
kind = "replay"
transcript = "b.jsonl"

[[suites]]
path = "s"

[run]
min_teacher_correct = 5

[gate]
min_retention = 0.8
family_wise = "{family_wise}"
"#
        );
        crate::config::parse(Path::new("gate.toml"), &text).unwrap()
    }

    /// A gate of `student` on 40 paired items: the teacher right on the
    /// first `teacher_right`, the student on the first `student_right`.
    fn pending(
        config: &GateConfig,
        student: &str,
        teacher_right: usize,
        student_right: usize,
    ) -> PendingGate {
        let scores = |right: usize| -> Vec<f64> {
            (0..40).map(|i| if i < right { 1.0 } else { 0.0 }).collect()
        };
        let (teacher, student_scores) = (scores(teacher_right), scores(student_right));
        let thresholds = config.thresholds_for(student, Some((0, "s")));
        let retention = estimate(
            &teacher,
            &student_scores,
            None,
            thresholds.confidence,
            config,
        )
        .unwrap();
        PendingGate {
            student: student.into(),
            suite: "s".into(),
            category: None,
            teacher_unanswered: 0,
            thresholds,
            input: GateInput {
                retention: retention.clone(),
                p95_latency_ms: None,
                speedup: None,
                cost_ratio: None,
                error_rate: Some(0.0),
            },
            paired: Paired {
                teacher,
                student: student_scores,
                clusters: None,
                estimate: retention,
            },
        }
    }

    fn lower_bound(statistics: &RunStatistics, i: usize) -> f64 {
        statistics.gate_retention[i].lower_bound.unwrap()
    }

    /// Without an adjustment each gate is judged at its own confidence;
    /// Bonferroni judges both at 1 - 0.05 / 2, re-estimating the bound,
    /// which can only fall.
    #[test]
    fn bonferroni_judges_every_gate_at_the_adjusted_confidence() {
        let plain = config("none");
        let gates = [pending(&plain, "a", 30, 30), pending(&plain, "b", 30, 27)];
        let mut none_stats = RunStatistics::default();
        let none = decide(&gates, &plain, &mut none_stats).unwrap();
        assert!(none_stats.adjusted_confidences.is_empty());
        assert_eq!(none_stats.gate_retention[0].confidence, 0.95);

        let bonf = config("bonferroni");
        let gates = [pending(&bonf, "a", 30, 30), pending(&bonf, "b", 30, 27)];
        let mut stats = RunStatistics::default();
        let adjusted = decide(&gates, &bonf, &mut stats).unwrap();
        assert_eq!(adjusted.len(), 2);
        for (i, a) in stats.adjusted_confidences.iter().enumerate() {
            assert_eq!((a.configured, a.adjusted), (0.95, 1.0 - 0.05 / 2.0));
            assert_eq!(stats.gate_retention[i].confidence, a.adjusted);
            assert!(lower_bound(&stats, i) < lower_bound(&none_stats, i));
        }
        assert_eq!(
            none.iter().map(|g| &g.student).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    /// Holm: once the gate that passes at 1 - α/2 is set aside, the other
    /// is judged at 1 - α.
    #[test]
    fn holm_steps_down_after_a_pass() {
        let holm = config("holm");
        assert_eq!(holm.gate.family_wise, FamilyWise::Holm);
        let gates = [pending(&holm, "a", 30, 30), pending(&holm, "b", 30, 26)];
        let mut stats = RunStatistics::default();
        let decided = decide(&gates, &holm, &mut stats).unwrap();
        assert_eq!(decided[0].verdict, Verdict::Pass);
        let adjusted: Vec<f64> = stats
            .adjusted_confidences
            .iter()
            .map(|a| a.adjusted)
            .collect();
        assert_eq!(adjusted, [1.0 - 0.05 / 2.0, 0.95]);
    }

    #[test]
    fn a_teacher_without_answers_is_named_and_inconclusive_fails_only_when_asked() {
        let c = config("none");
        let mut gate = pending(&c, "a", 0, 0);
        gate.paired.teacher.clear();
        gate.paired.student.clear();
        gate.teacher_unanswered = 3;
        let decided = decide(&[gate], &c, &mut RunStatistics::default()).unwrap();
        assert!(
            decided[0]
                .reasons
                .iter()
                .any(|r| r.contains("the teacher has no answer for 3 item(s)")),
            "{:?}",
            decided[0].reasons
        );
        assert_ne!(decided[0].verdict, Verdict::Pass);
        assert!(
            run_fails(&decided, true),
            "INCONCLUSIVE or FAIL fails the run"
        );
        let verdict = decided[0].verdict;
        assert_eq!(run_fails(&decided, false), verdict == Verdict::Fail);
    }
}
