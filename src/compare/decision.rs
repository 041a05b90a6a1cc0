//! The decision per student and suite: may the candidate replace the
//! baseline?
//!
//! The rule is the gate's ([`crate::gate::decide`]) with the baseline in the
//! teacher's place: on the matched items, the candidate / baseline accuracy
//! ratio is estimated by the paired bootstrap, and
//! - it cannot be measured (baseline scored too little) → INCONCLUSIVE;
//! - point estimate below `min_retention` → REJECT;
//! - one-sided lower bound at the gate's confidence at or above
//!   `min_retention` → APPROVE;
//! - otherwise INCONCLUSIVE, with the additional matched items that would
//!   decide it.
//!
//! The candidate must also pass its own gate against the teacher in its run:
//! a FAIL there rejects, an INCONCLUSIVE there makes the decision at best
//! inconclusive. The worst of the two is the decision.

use serde::{Deserialize, Serialize};

use crate::gate::{self, GateError, GateInput, GateThresholds, Verdict};
use crate::stats::{self, BootstrapEstimate, BootstrapOptions, Retention, StatsError};
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
/// estimates retention.
pub fn accuracy_ratio(
    baseline: &[f64],
    candidate: &[f64],
    opts: &BootstrapOptions,
) -> Result<Retention<BootstrapEstimate>, StatsError> {
    stats::paired_bootstrap_retention(baseline, candidate, opts)
}

/// The decision on one suite: the gate rule on `ratio` under `thresholds`,
/// and the candidate's own gate result in its run, if it has one.
pub fn decide(
    thresholds: &GateThresholds,
    ratio: Retention<BootstrapEstimate>,
    own_gate: Option<&GateResult>,
) -> Result<Decided, GateError> {
    let input = GateInput {
        retention: ratio,
        p95_latency_ms: None,
        speedup: None,
        cost_ratio: None,
        error_rate: None,
    };
    let d = gate::decide(thresholds, &input)?;
    let against_baseline = Decided {
        decision: d.verdict.into(),
        reasons: d
            .reasons
            .iter()
            .map(|r| format!("against the baseline (in the teacher's place): {r}"))
            .collect(),
        items_needed: d.items_needed,
    };
    let own = own_gate.map(|g| Decided {
        decision: g.verdict.into(),
        reasons: g
            .reasons
            .iter()
            .map(|r| format!("own gate against the teacher is {}: {r}", g.verdict))
            .collect(),
        items_needed: g.items_needed,
    });
    Ok(Decided::worst(std::iter::once(against_baseline).chain(own)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::AppliedThresholds;

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
            verdict,
            reasons: vec!["because".into()],
            items_needed: (verdict == Verdict::Inconclusive).then_some(40),
            thresholds: AppliedThresholds {
                min_retention: 0.95,
                confidence: 0.95,
                max_p95_latency_ms: None,
                min_speedup: None,
                max_cost_ratio: None,
                max_error_rate: None,
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
        let ratio = accuracy_ratio(&base, &base, &opts()).unwrap();
        let d = decide(&t, ratio.clone(), Some(&gate_result(Verdict::Pass))).unwrap();
        assert_eq!(d.decision, Decision::Approve, "{d:?}");
        // The candidate's own gate failing rejects even an identical candidate.
        let d = decide(&t, ratio.clone(), Some(&gate_result(Verdict::Fail))).unwrap();
        assert_eq!(d.decision, Decision::Reject);
        assert!(d.reasons[0].contains("own gate"), "{d:?}");
        let d = decide(&t, ratio, Some(&gate_result(Verdict::Inconclusive))).unwrap();
        assert_eq!(
            (d.decision, d.items_needed),
            (Decision::Inconclusive, Some(40))
        );
        // 240 of the baseline's 300 right: ratio 0.8 < 0.95.
        let worse = scores(240, 400);
        let ratio = accuracy_ratio(&base, &worse, &opts()).unwrap();
        let d = decide(&t, ratio, None).unwrap();
        assert_eq!(d.decision, Decision::Reject);
        assert!(d.reasons[0].contains("0.8"), "{d:?}");
    }

    #[test]
    fn a_small_sample_is_inconclusive_with_items_needed() {
        // 20 items, the candidate loses 1 of the baseline's 16: the ratio
        // 15/16 = 0.9375 is above 0.9, but on 20 items its lower bound is not.
        let base = scores(16, 20);
        let cand = scores(15, 20);
        let ratio = accuracy_ratio(&base, &cand, &opts()).unwrap();
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
