//! The decision per student and suite: may the candidate replace the
//! baseline?
//!
//! The rule is the gate's ([`crate::gate::decide`]) with the baseline in the
//! teacher's place: on the matched items, the candidate / baseline accuracy
//! ratio is estimated with the candidate run's interval method
//! ([`crate::stats::retention_estimate`]), and
//! - it cannot be measured (the baseline scored 0, or got fewer than the
//!   candidate run's `min_teacher_correct` items right) → INCONCLUSIVE;
//! - point estimate below `min_retention` → REJECT;
//! - one-sided lower bound at the gate's confidence at or above
//!   `min_retention` → APPROVE;
//! - otherwise INCONCLUSIVE, with the additional matched items that would
//!   decide it.
//!
//! The candidate must also pass its own gate against the teacher in its run:
//! a FAIL there rejects, an INCONCLUSIVE there makes the decision at best
//! inconclusive. The worst of the two is the decision.
//!
//! The reasons are written here, in the comparison's own terms (the baseline
//! and the candidate, the ratio), with numbers rounded for people; the
//! machine-readable numbers are in [`super::SuiteChange`].

use serde::{Deserialize, Serialize};

use super::SideRetention;
use crate::gate::{self, GateError, GateInput, GateThresholds, Verdict};
use crate::report::numbers::{confidence, ratio};
use crate::stats::{
    self, BootstrapEstimate, BootstrapOptions, IntervalMethod, Retention, StatsError,
    UnmeasurableReason,
};
use crate::summary::GateResult;

/// What to do with a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    /// It may replace the baseline.
    Approve,
    /// Not enough evidence either way.
    Inconclusive,
    /// It may not.
    Reject,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Approve => "APPROVE",
            Decision::Inconclusive => "INCONCLUSIVE",
            Decision::Reject => "REJECT",
        })
    }
}

impl From<Verdict> for Decision {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass => Decision::Approve,
            Verdict::Inconclusive => Decision::Inconclusive,
            Verdict::Fail => Decision::Reject,
        }
    }
}

/// A decision with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// The decision.
    pub decision: Decision,
    /// One sentence per criterion that decided it.
    pub reasons: Vec<String>,
    /// When inconclusive: the additional items that would likely decide it.
    pub items_needed: Option<u64>,
}

impl Decided {
    /// The worst of several decisions: REJECT over INCONCLUSIVE over
    /// APPROVE; the reasons of every part with the worst decision; the
    /// largest number of items needed among them. APPROVE when empty.
    pub fn worst(parts: impl IntoIterator<Item = Decided>) -> Decided {
        let parts: Vec<Decided> = parts.into_iter().collect();
        let decision = parts
            .iter()
            .map(|p| p.decision)
            .max()
            .unwrap_or(Decision::Approve);
        let worst = parts.iter().filter(|p| p.decision == decision);
        Decided {
            decision,
            reasons: worst.clone().flat_map(|p| p.reasons.clone()).collect(),
            items_needed: worst.filter_map(|p| p.items_needed).max(),
        }
    }
}

/// The candidate / baseline accuracy ratio on matched items, as the gate
/// estimates retention with `method`.
pub fn accuracy_ratio(
    baseline: &[f64],
    candidate: &[f64],
    method: IntervalMethod,
    opts: &BootstrapOptions,
) -> Result<Retention<BootstrapEstimate>, StatsError> {
    stats::retention_estimate(baseline, candidate, None, method, opts)
}

/// The candidate's own gate in its run, and its retention against that
/// run's teacher (as the comparison shows it).
#[derive(Debug, Clone, Copy)]
pub struct OwnGate<'a> {
    /// The gate result.
    pub gate: &'a GateResult,
    /// The candidate's retention by its run's rule.
    pub retention: SideRetention,
}

/// The decision on one suite: the gate rule on `ratio` under `thresholds`,
/// and the candidate's own gate result in its run, if it has one.
pub fn decide(
    thresholds: &GateThresholds,
    ratio: Retention<BootstrapEstimate>,
    own_gate: Option<OwnGate<'_>>,
) -> Result<Decided, GateError> {
    let input = GateInput::retention_only(ratio);
    let d = gate::decide(thresholds, &input)?;
    let against_baseline = Decided {
        decision: d.verdict.into(),
        reasons: vec![ratio_reason(d.verdict, thresholds, &input.retention)],
        items_needed: d.items_needed,
    };
    let own = own_gate.map(|o| Decided {
        decision: o.gate.verdict.into(),
        reasons: vec![own_gate_reason(&o)],
        items_needed: o.gate.items_needed,
    });
    Ok(Decided::worst(std::iter::once(against_baseline).chain(own)))
}

/// `x` to three decimals, or more (up to six) when three would print it
/// equal to `than` although it is not.
fn ratio_beside(x: f64, than: f64) -> String {
    (3..=6)
        .map(|d| (format!("{x:.d$}"), format!("{than:.d$}")))
        .find(|(a, b)| a != b || x == than)
        .map_or_else(|| format!("{x}"), |(a, _)| a)
}

/// "6" or "5.5 (sum of scores)": the items the baseline got right.
fn count(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1} (sum of scores)")
    }
}

/// Why the gate rule decided `verdict` on the candidate / baseline ratio.
fn ratio_reason(
    verdict: Verdict,
    t: &GateThresholds,
    ratio_estimate: &Retention<BootstrapEstimate>,
) -> String {
    let min = ratio(t.min_retention);
    let e = match ratio_estimate {
        Retention::Measured(e) => e,
        Retention::Unmeasurable(u) => {
            let why = match u.reason {
                UnmeasurableReason::NoItems => "there are no matched items",
                UnmeasurableReason::TeacherScoredZero => {
                    "the baseline scored 0 on every matched item"
                }
                UnmeasurableReason::StudentScoredZero => {
                    "the candidate scored 0 on every matched item"
                }
                UnmeasurableReason::AllResamplesUndefined => {
                    "every bootstrap resample drew only items the baseline scored 0 on"
                }
            };
            return format!("the candidate / baseline accuracy ratio cannot be measured: {why}");
        }
    };
    let bound = format!(
        "one-sided lower bound {} at {}, {} matched items",
        ratio_beside(e.lower_bound, t.min_retention),
        confidence(t.confidence),
        e.n
    );
    match verdict {
        Verdict::Pass => format!(
            "the candidate keeps the baseline's accuracy: candidate / baseline ratio {} \
             ({bound}) is at or above the minimum {min}",
            ratio(e.point)
        ),
        Verdict::Fail => format!(
            "the candidate / baseline accuracy ratio {} is below the minimum {min} ({bound})",
            ratio_beside(e.point, t.min_retention)
        ),
        Verdict::Inconclusive if e.teacher_correct < t.min_teacher_correct as f64 => format!(
            "the candidate / baseline accuracy ratio cannot be measured: the baseline got {} of \
             {} matched items right, fewer than the minimum {}",
            count(e.teacher_correct),
            e.n,
            t.min_teacher_correct
        ),
        Verdict::Inconclusive => format!(
            "the candidate / baseline accuracy ratio {} is at or above the minimum {min}, but \
             its {bound}, is below it",
            ratio_beside(e.point, t.min_retention)
        ),
    }
}

/// "own gate in the candidate run: FAIL (retention against its teacher ...)".
fn own_gate_reason(o: &OwnGate<'_>) -> String {
    let th = &o.gate.thresholds;
    let retention = match o.retention.retention {
        Some(r) => format!(
            "retention against its teacher {}, minimum {} at {}",
            ratio(r),
            ratio(th.min_retention),
            confidence(th.confidence)
        ),
        // Too few teacher-correct items for an estimate, yet the upper
        // bound below the threshold decided the gate (as the run's report
        // and the comparison table say it).
        None => match o.retention.upper_bound {
            Some(upper) if o.gate.verdict == Verdict::Fail => format!(
                "retention against its teacher below: upper bound {} (teacher got {} right)",
                ratio(upper),
                items(o.retention.teacher_correct)
            ),
            _ => format!(
                "retention against its teacher not measurable: teacher got {} right",
                items(o.retention.teacher_correct)
            ),
        },
    };
    format!(
        "its own gate in the candidate run is {} ({retention}; the run's report says why)",
        o.gate.verdict
    )
}

/// "1 item" or "6 items".
fn items(n: u64) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BootstrapOptions {
        BootstrapOptions {
            resamples: 2000,
            seed: 1,
            confidence: 0.95,
        }
    }

    fn gate_result(verdict: Verdict) -> GateResult {
        GateResult {
            student: "s".into(),
            suite: "x".into(),
            category: None,
            verdict,
            reasons: vec!["because".into()],
            items_needed: (verdict == Verdict::Inconclusive).then_some(40),
            thresholds: crate::gate::GateThresholds::new(0.95),
        }
    }

    const METHOD: IntervalMethod = IntervalMethod::Score;

    fn own(gate: &GateResult) -> OwnGate<'_> {
        OwnGate {
            gate,
            retention: SideRetention {
                teacher_correct: 300,
                retention: Some(1.0),
                upper_bound: Some(1.0),
            },
        }
    }

    fn scores(right: usize, n: usize) -> Vec<f64> {
        (0..n).map(|i| f64::from(u8::from(i < right))).collect()
    }

    #[test]
    fn same_answers_approve_and_a_drop_rejects() {
        let t = GateThresholds::new(0.95);
        let base = scores(300, 400);
        let ratio = accuracy_ratio(&base, &base, METHOD, &opts()).unwrap();
        let d = decide(&t, ratio.clone(), Some(own(&gate_result(Verdict::Pass)))).unwrap();
        assert_eq!(d.decision, Decision::Approve, "{d:?}");
        // The candidate's own gate failing rejects even an identical candidate.
        let d = decide(&t, ratio.clone(), Some(own(&gate_result(Verdict::Fail)))).unwrap();
        assert_eq!(d.decision, Decision::Reject);
        assert!(d.reasons[0].contains("own gate"), "{d:?}");
        let d = decide(&t, ratio, Some(own(&gate_result(Verdict::Inconclusive)))).unwrap();
        assert_eq!(
            (d.decision, d.items_needed),
            (Decision::Inconclusive, Some(40))
        );
        // 240 of the baseline's 300 right: ratio 0.8 < 0.95.
        let worse = scores(240, 400);
        let ratio = accuracy_ratio(&base, &worse, METHOD, &opts()).unwrap();
        let d = decide(&t, ratio, None).unwrap();
        assert_eq!(d.decision, Decision::Reject);
        assert!(d.reasons[0].contains("0.8"), "{d:?}");
    }

    #[test]
    fn an_own_gate_failed_on_the_upper_bound_says_so_not_unmeasurable() {
        let fail = gate_result(Verdict::Fail);
        let few = |upper| OwnGate {
            gate: &fail,
            retention: SideRetention {
                teacher_correct: 6,
                retention: None,
                upper_bound: upper,
            },
        };
        let why = own_gate_reason(&few(Some(0.826)));
        assert!(
            why.contains("below: upper bound 0.826 (teacher got 6 items right)"),
            "{why}"
        );
        let why = own_gate_reason(&few(None));
        assert!(
            why.contains("not measurable: teacher got 6 items right"),
            "{why}"
        );
        // An INCONCLUSIVE gate below the floor is not measurable, whatever its bound.
        let held = gate_result(Verdict::Inconclusive);
        let why = own_gate_reason(&OwnGate {
            gate: &held,
            ..few(Some(0.99))
        });
        assert!(why.contains("not measurable"), "{why}");
    }

    #[test]
    fn a_small_sample_is_inconclusive_with_items_needed() {
        // 20 items, the candidate loses 1 of the baseline's 16: the ratio
        // 15/16 = 0.9375 is above 0.9, but on 20 items its lower bound is not.
        let base = scores(16, 20);
        let cand = scores(15, 20);
        let ratio = accuracy_ratio(&base, &cand, METHOD, &opts()).unwrap();
        let d = decide(&GateThresholds::new(0.9), ratio, None).unwrap();
        assert_eq!(d.decision, Decision::Inconclusive, "{d:?}");
        assert!(d.items_needed.is_some_and(|n| n > 0), "{d:?}");
    }

    #[test]
    fn worst_orders_reject_over_inconclusive_over_approve() {
        let part = |decision, n| Decided {
            decision,
            reasons: vec![format!("{decision}")],
            items_needed: n,
        };
        let w = Decided::worst([
            part(Decision::Approve, None),
            part(Decision::Inconclusive, Some(10)),
            part(Decision::Inconclusive, Some(30)),
        ]);
        assert_eq!(
            (w.decision, w.items_needed),
            (Decision::Inconclusive, Some(30))
        );
        assert_eq!(w.reasons.len(), 2);
        let w = Decided::worst([
            part(Decision::Inconclusive, Some(1)),
            part(Decision::Reject, None),
        ]);
        assert_eq!((w.decision, w.items_needed), (Decision::Reject, None));
        assert_eq!(Decided::worst([]).decision, Decision::Approve);
    }
}
