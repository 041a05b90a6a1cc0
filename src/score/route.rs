//! Route verifier: a visiting order for a depot and its stops.
//!
//! The target describes the instance and its exact optimum:
//!
//! ```json
//! {"nodes": ["Depot", "A", "B", "C"],
//!  "distances": [[0, 4, 6, 5], [4, 0, 3, 7], [6, 3, 0, 2], [5, 7, 2, 0]],
//!  "optimum": 14,
//!  "tour": ["Depot", "A", "B", "C", "Depot"]}
//! ```
//!
//! `nodes[0]` is the depot; `distances[i][j]` is the distance from node `i`
//! to node `j`; `optimum` is the length of the shortest closed tour that
//! leaves the depot, visits every stop once and returns; `tour` is one such
//! tour (shown as the answer in few-shot examples). When a suite is loaded
//! the tour is checked to have length `optimum` and, up to
//! [`EXACT_CHECK_MAX_NODES`] nodes, `optimum` is recomputed exactly
//! (Held-Karp), so a wrong target is refused before any model runs.
//!
//! The answer is read as the node names it mentions, in order (anything
//! else, such as arrows or "then", is ignored); the depot may be written at
//! either end or left out. A valid tour visits every stop exactly once and
//! scores `optimum / length` (1 for an optimal tour); anything else scores 0
//! with the reason.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Expected, FieldError, Score, Scorer, amount};

/// Up to this many nodes (depot included), loading a suite recomputes the
/// optimum exactly and refuses a target whose `optimum` is wrong.
pub const EXACT_CHECK_MAX_NODES: usize = 13;

/// Relative tolerance when comparing tour lengths (they are sums of table entries).
const LENGTH_TOL: f64 = 1e-9;

/// Parameters of the route scorer (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {}

/// The route scorer.
#[derive(Debug, Clone, Default)]
pub struct RouteScorer;

/// A checked routing instance.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    nodes: Vec<String>,
    distances: Vec<Vec<f64>>,
    optimum: f64,
    tour: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    nodes: Vec<String>,
    distances: Vec<Vec<f64>>,
    optimum: f64,
    tour: Vec<String>,
}

impl Instance {
    /// Parses and checks a target (without the exact optimum check).
    fn parse(target: &Value) -> Result<Self, FieldError> {
        let raw: RawTarget = serde_json::from_value(target.clone()).map_err(|e| {
            FieldError::new(
                "target",
                format!("route target must be {{nodes, distances, optimum, tour}}: {e}"),
            )
        })?;
        let n = raw.nodes.len();
        if n < 2 {
            return Err(FieldError::new(
                "target.nodes",
                "needs the depot and at least one stop",
            ));
        }
        for (i, name) in raw.nodes.iter().enumerate() {
            if name.is_empty() || !name.chars().all(is_name_char) {
                return Err(FieldError::new(
                    format!("target.nodes[{i}]"),
                    format!("node names are letters, digits and '_', got {name:?}"),
                ));
            }
            if raw.nodes[..i].contains(name) {
                return Err(FieldError::new(
                    format!("target.nodes[{i}]"),
                    format!("duplicate node {name:?}"),
                ));
            }
        }
        if raw.distances.len() != n {
            return Err(FieldError::new(
                "target.distances",
                format!(
                    "expected {n} rows (one per node), got {}",
                    raw.distances.len()
                ),
            ));
        }
        for (i, row) in raw.distances.iter().enumerate() {
            if row.len() != n {
                return Err(FieldError::new(
                    format!("target.distances[{i}]"),
                    format!("expected {n} entries, got {}", row.len()),
                ));
            }
            if let Some(j) = row.iter().position(|d| !d.is_finite() || *d < 0.0) {
                return Err(FieldError::new(
                    format!("target.distances[{i}][{j}]"),
                    format!("must be a finite number >= 0, got {}", row[j]),
                ));
            }
        }
        if !raw.optimum.is_finite() || raw.optimum <= 0.0 {
            return Err(FieldError::new(
                "target.optimum",
                format!("must be a number > 0, got {}", raw.optimum),
            ));
        }
        let instance = Instance {
            nodes: raw.nodes,
            distances: raw.distances,
            optimum: raw.optimum,
            tour: raw.tour,
        };
        let order = instance
            .visit_order(&instance.tour)
            .map_err(|why| FieldError::new("target.tour", format!("not a valid tour: {why}")))?;
        let length = instance.length(&order);
        if !close(length, instance.optimum) {
            return Err(FieldError::new(
                "target.tour",
                format!(
                    "has length {} but optimum is {}",
                    amount(length),
                    amount(instance.optimum)
                ),
            ));
        }
        Ok(instance)
    }

    /// The stops (node indices 1..n) in the order `names` visits them, or why
    /// `names` is not a tour.
    fn visit_order(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let depot = &self.nodes[0];
        let mut inner: &[String] = names;
        if let Some((first, rest)) = inner.split_first()
            && first == depot
        {
            inner = rest;
        }
        if let Some((last, rest)) = inner.split_last()
            && last == depot
        {
            inner = rest;
        }
        if inner.is_empty() {
            return Err("no stops named".to_string());
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut order = Vec::with_capacity(inner.len());
        for name in inner {
            let Some(index) = self.nodes.iter().position(|n| n == name) else {
                return Err(format!("unknown stop {name:?}"));
            };
            if index == 0 {
                return Err(format!("returns to {depot} before visiting every stop"));
            }
            if seen[index] {
                return Err(format!("stop {name} visited twice"));
            }
            seen[index] = true;
            order.push(index);
        }
        let missing: Vec<&str> = (1..self.nodes.len())
            .filter(|&i| !seen[i])
            .map(|i| self.nodes[i].as_str())
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() == 1 { "" } else { "s" };
            return Err(format!("stop{s} {} not visited", missing.join(", ")));
        }
        Ok(order)
    }

    /// Length of the closed tour depot -> `order` -> depot.
    fn length(&self, order: &[usize]) -> f64 {
        let mut at = 0;
        let mut total = 0.0;
        for &next in order.iter().chain(std::iter::once(&0)) {
            total += self.distances[at][next];
            at = next;
        }
        total
    }

    /// The node names an answer mentions, in order.
    fn names_in(&self, answer: &str) -> Vec<String> {
        answer
            .split(|c: char| !is_name_char(c))
            .filter(|word| self.nodes.iter().any(|n| n == word))
            .map(str::to_string)
            .collect()
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= LENGTH_TOL * a.abs().max(b.abs()).max(1.0)
}

/// The shortest closed tour from node 0 through every other node (Held-Karp,
/// `O(2^n n^2)`); `None` above [`EXACT_CHECK_MAX_NODES`] nodes.
fn exact_optimum(distances: &[Vec<f64>]) -> Option<f64> {
    let n = distances.len();
    if n > EXACT_CHECK_MAX_NODES {
        return None;
    }
    if n == 1 {
        return Some(0.0);
    }
    let stops = n - 1;
    let full = 1usize << stops;
    // best[set][last]: shortest path from the depot through `set` ending at stop `last`.
    let mut best = vec![f64::INFINITY; full * stops];
    for last in 0..stops {
        best[(1 << last) * stops + last] = distances[0][last + 1];
    }
    for set in 1..full {
        for last in 0..stops {
            let here = best[set * stops + last];
            if set & (1 << last) == 0 || !here.is_finite() {
                continue;
            }
            for next in 0..stops {
                if set & (1 << next) != 0 {
                    continue;
                }
                let to = (set | (1 << next)) * stops + next;
                let candidate = here + distances[last + 1][next + 1];
                if candidate < best[to] {
                    best[to] = candidate;
                }
            }
        }
    }
    (0..stops)
        .map(|last| best[(full - 1) * stops + last] + distances[last + 1][0])
        .reduce(f64::min)
}

impl Scorer for RouteScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        let instance = Instance::parse(target)?;
        if let Some(optimum) = exact_optimum(&instance.distances)
            && !close(optimum, instance.optimum)
        {
            return Err(FieldError::new(
                "target.optimum",
                format!(
                    "is {} but the shortest tour has length {}",
                    amount(instance.optimum),
                    amount(optimum)
                ),
            ));
        }
        Ok(())
    }

    fn target_text(&self, target: &Value) -> String {
        match Instance::parse(target) {
            Ok(instance) => instance.tour.join(" -> "),
            Err(_) => super::plain_text(target),
        }
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let instance = match Instance::parse(task.target()) {
            Ok(instance) => instance,
            Err(e) => return Score::zero(format!("invalid target: {e}")),
        };
        let names = instance.names_in(answer);
        let mut score = match instance.visit_order(&names) {
            Err(why) => Score::zero(format!("not a valid tour: {why}")),
            Ok(order) => {
                let length = instance.length(&order);
                if close(length, instance.optimum) {
                    Score::binary(true, format!("optimal tour {}", amount(length)))
                } else if length < instance.optimum {
                    Score::zero(format!(
                        "tour {} is shorter than the target's optimum {}: invalid target",
                        amount(length),
                        amount(instance.optimum)
                    ))
                } else {
                    let excess = 100.0 * (length / instance.optimum - 1.0);
                    Score {
                        value: instance.optimum / length,
                        detail: format!(
                            "tour {} vs optimum {} (+{excess:.1}%)",
                            amount(length),
                            amount(instance.optimum)
                        ),
                        extracted: None,
                    }
                }
            }
        };
        score.extracted = Some(names.join(" -> "));
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Square with side 10 (depot at a corner), plus a stop in the middle of
    /// one side: the optimum walks the perimeter, 40.
    fn square() -> Value {
        let points = [
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (5.0, 0.0),
        ];
        let distances: Vec<Vec<f64>> = points
            .iter()
            .map(|(x1, y1)| {
                points
                    .iter()
                    .map(|(x2, y2): &(f64, f64)| ((x1 - x2).powi(2) + (y1 - y2).powi(2)).sqrt())
                    .collect()
            })
            .collect();
        json!({
            "nodes": ["Depot", "A", "B", "C", "E"],
            "distances": distances,
            "optimum": 40.0,
            "tour": ["Depot", "E", "A", "B", "C", "Depot"],
        })
    }

    fn score(answer: &str) -> Score {
        RouteScorer.score(&crate::score::test_task(square()), answer)
    }

    #[test]
    fn optimal_tours_score_one_in_any_notation() {
        for answer in [
            "Depot -> E -> A -> B -> C -> Depot",
            "E, A, B, C",
            "Start at Depot, then E, A, B and C, back to Depot.",
            "Depot C B A E Depot",
        ] {
            let s = score(answer);
            assert_eq!(s.value, 1.0, "{answer}: {}", s.detail);
            assert_eq!(s.detail, "optimal tour 40");
        }
    }

    #[test]
    fn longer_tours_score_optimum_over_length() {
        // Depot->A (10) ->E (5) ->B (sqrt 125) ->C (10) ->Depot (10).
        let s = score("Depot -> A -> E -> B -> C -> Depot");
        let length = 35.0 + 125f64.sqrt();
        assert!((s.value - 40.0 / length).abs() < 1e-12, "{}", s.value);
        assert_eq!(s.detail, "tour 46.18 vs optimum 40 (+15.5%)");
        assert_eq!(
            s.extracted.as_deref(),
            Some("Depot -> A -> E -> B -> C -> Depot")
        );
    }

    #[test]
    fn invalid_tours_score_zero_with_reason() {
        let cases = [
            (
                "Depot -> E -> A -> B -> Depot",
                "not a valid tour: stop C not visited",
            ),
            ("E A A B C", "not a valid tour: stop A visited twice"),
            (
                "E A Depot B C",
                "not a valid tour: returns to Depot before visiting every stop",
            ),
            ("I cannot say", "not a valid tour: no stops named"),
            ("Depot", "not a valid tour: no stops named"),
            ("E", "not a valid tour: stops A, B, C not visited"),
        ];
        for (answer, detail) in cases {
            let s = score(answer);
            assert_eq!(s.value, 0.0, "{answer}");
            assert_eq!(s.detail, detail, "{answer}");
        }
    }

    #[test]
    fn names_match_whole_words_only() {
        // "Each" and "Bay" contain node names but are not node names.
        let s = score("Each Bay: E A B C");
        assert_eq!(s.value, 1.0, "{}", s.detail);
    }

    #[test]
    fn held_karp_matches_brute_force() {
        // A symmetric 7-node instance from a fixed LCG; compare with
        // trying every permutation of the 6 stops.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % 50 + 1
        };
        let n = 7;
        let mut upper = vec![vec![0.0; n]; n];
        for (i, row) in upper.iter_mut().enumerate() {
            for cell in row.iter_mut().skip(i + 1) {
                *cell = next() as f64;
            }
        }
        let d: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| upper[i.min(j)][i.max(j)]).collect())
            .collect();
        let mut best = f64::INFINITY;
        let mut perm: Vec<usize> = (1..n).collect();
        permutations(&mut perm, 0, &mut |p| {
            let mut at = 0;
            let mut total = 0.0;
            for &s in p.iter().chain(std::iter::once(&0)) {
                total += d[at][s];
                at = s;
            }
            best = best.min(total);
        });
        assert_eq!(exact_optimum(&d), Some(best));
    }

    fn permutations(items: &mut Vec<usize>, k: usize, visit: &mut dyn FnMut(&[usize])) {
        if k == items.len() {
            visit(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutations(items, k + 1, visit);
            items.swap(k, i);
        }
    }

    #[test]
    fn bad_targets_are_refused_naming_the_field() {
        let cases = [
            (
                json!({"nodes": ["Depot"], "distances": [[0]], "optimum": 1, "tour": []}),
                "target.nodes",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, 1]], "optimum": 2, "tour": ["Depot", "A"]}),
                "target.distances",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, 1], [1]], "optimum": 2, "tour": ["Depot", "A"]}),
                "target.distances[1]",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, -1], [1, 0]], "optimum": 2, "tour": ["Depot", "A"]}),
                "target.distances[0][1]",
            ),
            (
                json!({"nodes": ["Depot", "A b"], "distances": [[0, 1], [1, 0]], "optimum": 2, "tour": ["Depot", "A b"]}),
                "target.nodes[1]",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, 1], [1, 0]], "optimum": 3, "tour": ["Depot", "A"]}),
                "target.tour",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, 1], [1, 0]], "optimum": 2, "tour": ["Depot", "B"]}),
                "target.tour",
            ),
            (
                json!({"nodes": ["Depot", "A"], "distances": [[0, 1], [1, 0]], "optimum": 0, "tour": ["Depot", "A"]}),
                "target.optimum",
            ),
            (json!("Depot -> A"), "target"),
        ];
        for (target, field) in cases {
            let e = RouteScorer.check_target(&target, &Map::new());
            assert_eq!(
                e.as_ref().err().map(|e| e.field.as_str()),
                Some(field),
                "{target}: {e:?}"
            );
        }
    }

    #[test]
    fn a_wrong_optimum_is_refused_at_load() {
        // The tour claims 46.18 is optimal, but the perimeter (40) is shorter.
        let mut target = square();
        let length = 35.0 + 125f64.sqrt();
        target["optimum"] = json!(length);
        target["tour"] = json!(["Depot", "A", "E", "B", "C", "Depot"]);
        let e = RouteScorer.check_target(&target, &Map::new());
        assert_eq!(
            e.err().map(|e| e.to_string()),
            Some("target.optimum: is 46.18 but the shortest tour has length 40".to_string())
        );
        assert!(RouteScorer.check_target(&square(), &Map::new()).is_ok());
    }

    #[test]
    fn target_text_is_the_tour() {
        assert_eq!(
            RouteScorer.target_text(&square()),
            "Depot -> E -> A -> B -> C -> Depot"
        );
    }
}
