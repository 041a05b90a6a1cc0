//! Load-planning verifier: parcels assigned to identical vehicles.
//!
//! The target describes the instance and its exact optimum:
//!
//! ```json
//! {"capacity_kg": 1000,
//!  "parcels": {"P1": 600, "P2": 500, "P3": 400, "P4": 500},
//!  "optimum": 2,
//!  "plan": [["P1", "P3"], ["P2", "P4"]]}
//! ```
//!
//! `optimum` is the fewest vehicles that carry every parcel without any
//! vehicle over `capacity_kg`; `plan` is one such assignment (shown as the
//! answer in few-shot examples). When a suite is loaded the plan is checked
//! to be feasible with `optimum` vehicles and, up to
//! [`EXACT_CHECK_MAX_PARCELS`] parcels, `optimum` is recomputed exactly
//! (branch and bound), so a wrong target is refused before any model runs.
//!
//! The answer is read as vehicles separated by `;`, `|` or line breaks
//! (`V1: P1 P3; V2: P2 P4`); inside each, the parcel ids it mentions count
//! (labels such as `V1:` or `Truck 2` are ignored, ids match
//! case-insensitively). A feasible plan carries every parcel exactly once
//! with no vehicle overloaded, and scores `optimum / vehicles used` (1 for an
//! optimal plan); anything else scores 0 with the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Expected, FieldError, Score, Scorer, amount};

/// Up to this many parcels, loading a suite recomputes the optimum exactly
/// and refuses a target whose `optimum` is wrong.
pub const EXACT_CHECK_MAX_PARCELS: usize = 14;

/// Parameters of the load-plan scorer (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPlanSpec {}

/// The load-plan scorer.
#[derive(Debug, Clone, Default)]
pub struct LoadPlanScorer;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    capacity_kg: f64,
    parcels: BTreeMap<String, f64>,
    optimum: u64,
    plan: Vec<Vec<String>>,
}

/// A checked load-planning instance.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    capacity: f64,
    /// Parcel ids and weights, in id order.
    parcels: Vec<(String, f64)>,
    optimum: u64,
    plan: Vec<Vec<String>>,
}

impl Instance {
    /// Parses and checks a target (without the exact optimum check).
    fn parse(target: &Value) -> Result<Self, FieldError> {
        let raw: RawTarget = serde_json::from_value(target.clone()).map_err(|e| {
            FieldError::new(
                "target",
                format!("load-plan target must be {{capacity_kg, parcels, optimum, plan}}: {e}"),
            )
        })?;
        if !raw.capacity_kg.is_finite() || raw.capacity_kg <= 0.0 {
            return Err(FieldError::new(
                "target.capacity_kg",
                format!("must be a number > 0, got {}", raw.capacity_kg),
            ));
        }
        if raw.parcels.is_empty() {
            return Err(FieldError::new(
                "target.parcels",
                "needs at least one parcel",
            ));
        }
        let mut lower_ids: Vec<String> = Vec::new();
        for (id, weight) in &raw.parcels {
            let field = format!("target.parcels.{id}");
            if id.is_empty() || !id.chars().all(is_id_char) {
                return Err(FieldError::new(
                    field,
                    "parcel ids are letters, digits and '_'",
                ));
            }
            let lower = id.to_lowercase();
            if lower_ids.contains(&lower) {
                return Err(FieldError::new(field, "two parcel ids differ only in case"));
            }
            lower_ids.push(lower);
            if !weight.is_finite() || *weight <= 0.0 || *weight > raw.capacity_kg {
                return Err(FieldError::new(
                    field,
                    format!(
                        "weight must be > 0 and at most capacity_kg {}, got {weight}",
                        raw.capacity_kg
                    ),
                ));
            }
        }
        if raw.optimum == 0 {
            return Err(FieldError::new("target.optimum", "must be at least 1"));
        }
        let instance = Instance {
            capacity: raw.capacity_kg,
            parcels: raw.parcels.into_iter().collect(),
            optimum: raw.optimum,
            plan: raw.plan,
        };
        let used = instance
            .check(&instance.plan)
            .map_err(|why| FieldError::new("target.plan", format!("not feasible: {why}")))?;
        if used != instance.optimum {
            return Err(FieldError::new(
                "target.plan",
                format!("uses {used} vehicles but optimum is {}", instance.optimum),
            ));
        }
        Ok(instance)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.parcels
            .iter()
            .position(|(p, _)| p.eq_ignore_ascii_case(id))
    }

    /// Checks a plan: every parcel exactly once, no vehicle over capacity.
    /// Returns the number of vehicles used (non-empty groups).
    fn check(&self, plan: &[Vec<String>]) -> Result<u64, String> {
        let mut seen = vec![false; self.parcels.len()];
        let mut used = 0u64;
        for group in plan.iter().filter(|g| !g.is_empty()) {
            used += 1;
            let mut load = 0.0;
            for id in group {
                let Some(i) = self.index_of(id) else {
                    return Err(format!("unknown parcel {id:?}"));
                };
                if seen[i] {
                    return Err(format!("parcel {} loaded twice", self.parcels[i].0));
                }
                seen[i] = true;
                load += self.parcels[i].1;
            }
            if load > self.capacity {
                return Err(format!(
                    "vehicle {used} overloaded: {} kg > {} kg",
                    amount(load),
                    amount(self.capacity)
                ));
            }
        }
        let missing: Vec<&str> = self
            .parcels
            .iter()
            .zip(&seen)
            .filter(|(_, seen)| !**seen)
            .map(|((id, _), _)| id.as_str())
            .collect();
        if used == 0 {
            return Err("no parcels assigned".to_string());
        }
        if !missing.is_empty() {
            let s = if missing.len() == 1 { "" } else { "s" };
            return Err(format!("parcel{s} {} not loaded", missing.join(", ")));
        }
        Ok(used)
    }

    /// The vehicles an answer describes: groups of the parcel ids it mentions.
    fn groups_in(&self, answer: &str) -> Vec<Vec<String>> {
        answer
            .split([';', '|', '\n'])
            .map(|part| {
                part.split(|c: char| !is_id_char(c))
                    .filter_map(|word| self.index_of(word).map(|i| self.parcels[i].0.clone()))
                    .collect::<Vec<_>>()
            })
            .filter(|group| !group.is_empty())
            .collect()
    }
}

fn is_id_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The fewest bins of `capacity` that hold `weights` (exact branch and bound
/// over first-fit placements, heaviest first); `None` above
/// [`EXACT_CHECK_MAX_PARCELS`] parcels.
fn exact_optimum(weights: &[f64], capacity: f64) -> Option<u64> {
    if weights.len() > EXACT_CHECK_MAX_PARCELS {
        return None;
    }
    let mut sorted = weights.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut best = sorted.len();
    let mut bins: Vec<f64> = Vec::new();
    place(&sorted, 0, capacity, &mut bins, &mut best);
    u64::try_from(best).ok()
}

fn place(weights: &[f64], next: usize, capacity: f64, bins: &mut Vec<f64>, best: &mut usize) {
    if bins.len() >= *best {
        return;
    }
    let Some(&weight) = weights.get(next) else {
        *best = bins.len();
        return;
    };
    let remaining: f64 = weights[next..].iter().sum();
    let free: f64 = bins.iter().map(|load| capacity - load).sum();
    let extra = ((remaining - free) / capacity).ceil().max(0.0);
    if bins.len() as f64 + extra >= *best as f64 {
        return;
    }
    for i in 0..bins.len() {
        // Bins with the same load are interchangeable: try one of them.
        if bins[..i].contains(&bins[i]) || bins[i] + weight > capacity {
            continue;
        }
        bins[i] += weight;
        place(weights, next + 1, capacity, bins, best);
        bins[i] -= weight;
    }
    bins.push(weight);
    place(weights, next + 1, capacity, bins, best);
    bins.pop();
}

impl Scorer for LoadPlanScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        let instance = Instance::parse(target)?;
        let weights: Vec<f64> = instance.parcels.iter().map(|(_, w)| *w).collect();
        if let Some(optimum) = exact_optimum(&weights, instance.capacity)
            && optimum != instance.optimum
        {
            return Err(FieldError::new(
                "target.optimum",
                format!(
                    "is {} but the parcels fit in {optimum} vehicles",
                    instance.optimum
                ),
            ));
        }
        Ok(())
    }

    fn target_text(&self, target: &Value) -> String {
        match Instance::parse(target) {
            Ok(instance) => instance
                .plan
                .iter()
                .filter(|g| !g.is_empty())
                .enumerate()
                .map(|(i, g)| format!("V{}: {}", i + 1, g.join(" ")))
                .collect::<Vec<_>>()
                .join("; "),
            Err(_) => super::plain_text(target),
        }
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let instance = match Instance::parse(task.target()) {
            Ok(instance) => instance,
            Err(e) => return Score::zero(format!("invalid target: {e}")),
        };
        let groups = instance.groups_in(answer);
        let mut score = match instance.check(&groups) {
            Err(why) => Score::zero(format!("not feasible: {why}")),
            Ok(used) if used == instance.optimum => {
                Score::binary(true, format!("optimal: {used} vehicles"))
            }
            Ok(used) if used < instance.optimum => Score::zero(format!(
                "{used} vehicles is fewer than the target's optimum {}: invalid target",
                instance.optimum
            )),
            Ok(used) => Score {
                value: instance.optimum as f64 / used as f64,
                detail: format!("{used} vehicles vs optimum {}", instance.optimum),
                extracted: None,
            },
        };
        score.extracted = Some(
            groups
                .iter()
                .map(|g| g.join(" "))
                .collect::<Vec<_>>()
                .join("; "),
        );
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// First-fit decreasing needs 4 vehicles here ([52 47] [42 41] [37 29 28]
    /// [22]); the optimum is 3 ([52 47] [42 29 28] [41 37 22]).
    fn tight() -> Value {
        json!({
            "capacity_kg": 100,
            "parcels": {"P1": 52, "P2": 47, "P3": 42, "P4": 41, "P5": 37, "P6": 29, "P7": 28, "P8": 22},
            "optimum": 3,
            "plan": [["P1", "P2"], ["P3", "P6", "P7"], ["P4", "P5", "P8"]],
        })
    }

    fn score(answer: &str) -> Score {
        LoadPlanScorer.score(&crate::score::test_task(tight()), answer)
    }

    #[test]
    fn optimal_plans_score_one() {
        for answer in [
            "V1: P1 P2; V2: P3 P6 P7; V3: P4 P5 P8",
            "Truck 1: p1, p2 | Truck 2: P3, P6, P7 | Truck 3: P4, P5, P8",
            "V1: P4 P5 P8\nV2: P2 P1\nV3: P7 P6 P3",
        ] {
            let s = score(answer);
            assert_eq!(s.value, 1.0, "{answer}: {}", s.detail);
            assert_eq!(s.detail, "optimal: 3 vehicles");
        }
    }

    #[test]
    fn feasible_plans_with_extra_vehicles_score_the_ratio() {
        let s = score("V1: P1 P2; V2: P3 P4; V3: P5 P6 P7; V4: P8");
        assert!((s.value - 3.0 / 4.0).abs() < 1e-15, "{}", s.value);
        assert_eq!(s.detail, "4 vehicles vs optimum 3");
        assert_eq!(s.extracted.as_deref(), Some("P1 P2; P3 P4; P5 P6 P7; P8"));
    }

    #[test]
    fn infeasible_plans_score_zero_with_reason() {
        let cases = [
            (
                "V1: P1 P2 P8; V2: P3 P6 P7; V3: P4 P5",
                "not feasible: vehicle 1 overloaded: 121 kg > 100 kg",
            ),
            (
                "V1: P1 P2; V2: P3 P6 P7; V3: P4 P5",
                "not feasible: parcel P8 not loaded",
            ),
            (
                "V1: P1 P2; V2: P3 P6 P7 P1; V3: P4 P5 P8",
                "not feasible: parcel P1 loaded twice",
            ),
            (
                "I would use two trucks.",
                "not feasible: no parcels assigned",
            ),
            (
                "V1: P1",
                "not feasible: parcels P2, P3, P4, P5, P6, P7, P8 not loaded",
            ),
        ];
        for (answer, detail) in cases {
            let s = score(answer);
            assert_eq!(s.value, 0.0, "{answer}");
            assert_eq!(s.detail, detail, "{answer}");
        }
    }

    #[test]
    fn exact_optimum_beats_first_fit_decreasing() {
        let weights = [52.0, 47.0, 42.0, 41.0, 37.0, 29.0, 28.0, 22.0];
        assert_eq!(first_fit_decreasing(&weights, 100.0), 4);
        assert_eq!(exact_optimum(&weights, 100.0), Some(3));
        // Trivial bounds: one per parcel when each needs its own vehicle.
        assert_eq!(exact_optimum(&[60.0, 60.0, 60.0], 100.0), Some(3));
        assert_eq!(exact_optimum(&[50.0, 50.0, 50.0, 50.0], 100.0), Some(2));
    }

    /// Reference heuristic for the test above.
    fn first_fit_decreasing(weights: &[f64], capacity: f64) -> usize {
        let mut sorted = weights.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut bins: Vec<f64> = Vec::new();
        for w in sorted {
            match bins.iter_mut().find(|load| **load + w <= capacity) {
                Some(load) => *load += w,
                None => bins.push(w),
            }
        }
        bins.len()
    }

    #[test]
    fn bad_targets_are_refused_naming_the_field() {
        let ok = tight();
        let mut cases = Vec::new();
        let mut t = ok.clone();
        t["capacity_kg"] = json!(0);
        cases.push((t, "target.capacity_kg"));
        let mut t = ok.clone();
        t["parcels"]["P1"] = json!(101);
        cases.push((t, "target.parcels.P1"));
        let mut t = ok.clone();
        t["optimum"] = json!(4);
        cases.push((t, "target.plan"));
        let mut t = ok.clone();
        t["plan"] = json!([["P1", "P2", "P3"], ["P4", "P5", "P6"], ["P7", "P8"]]);
        cases.push((t, "target.plan"));
        let mut t = ok.clone();
        t["parcels"] = json!({});
        cases.push((t, "target.parcels"));
        cases.push((json!({"capacity_kg": 10}), "target"));
        for (target, field) in cases {
            let e = LoadPlanScorer.check_target(&target, &Map::new());
            assert_eq!(
                e.as_ref().err().map(|e| e.field.as_str()),
                Some(field),
                "{target}: {e:?}"
            );
        }
    }

    #[test]
    fn a_wrong_optimum_is_refused_at_load() {
        // First-fit decreasing's 4-vehicle plan claimed optimal when 3 suffice.
        let mut target = tight();
        target["optimum"] = json!(4);
        target["plan"] = json!([["P1", "P2"], ["P3", "P4"], ["P5", "P6", "P7"], ["P8"]]);
        let e = LoadPlanScorer.check_target(&target, &Map::new());
        assert_eq!(
            e.err().map(|e| e.to_string()),
            Some("target.optimum: is 4 but the parcels fit in 3 vehicles".to_string())
        );
        assert!(LoadPlanScorer.check_target(&tight(), &Map::new()).is_ok());
    }

    #[test]
    fn target_text_is_the_plan() {
        assert_eq!(
            LoadPlanScorer.target_text(&tight()),
            "V1: P1 P2; V2: P3 P6 P7; V3: P4 P5 P8"
        );
    }
}
