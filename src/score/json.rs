//! Per-field credit on a JSON object.
//!
//! The target is a non-empty JSON object. The answer (by default the first
//! JSON object in the output, see
//! [`first_json_object`](super::extract::first_json_object)) must parse as
//! an object. Each top-level target field is checked; the score is
//! `matched fields / target fields` (or 1/0 when `partial_credit = false`).
//! Extra fields in the answer are ignored. A field matches when:
//! - target number: the answer is a number, or a string
//!   [`parse_number`] reads (`"$12.50"`),
//!   within `max(abs_tol, rel_tol * |expected|)`;
//! - target string: the answer (strings as they are, numbers and booleans as
//!   their JSON text) is equal after [`normalize`]
//!   (case-insensitive unless `case_sensitive = true`);
//! - target boolean or null: the same value;
//! - target list: a list of the same length whose items match in order;
//! - target object: an object whose fields all match (recursively).
//!
//! The detail names the failed fields (in name order), e.g.
//! `2/3 fields; cost: expected 12.5, got 13 (|diff| 0.5 > tol 0.01)`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::exact::normalize;
use super::numeric::{check_tolerance, parse_number, within};
use super::{Expected, FieldError, Score, Scorer, quoted};

/// Parameters of the JSON field scorer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpec {
    /// Absolute tolerance for numeric fields (default 0).
    #[serde(default)]
    pub abs_tol: f64,
    /// Relative tolerance for numeric fields (default 0).
    #[serde(default)]
    pub rel_tol: f64,
    /// Compare string fields case-sensitively (default false).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Give `matched / total` credit (default true); false gives 1 only when all fields match.
    #[serde(default = "yes")]
    pub partial_credit: bool,
}

fn yes() -> bool {
    true
}

impl Default for JsonSpec {
    fn default() -> Self {
        Self {
            abs_tol: 0.0,
            rel_tol: 0.0,
            case_sensitive: false,
            partial_credit: true,
        }
    }
}

/// How many failed fields a detail lists before summarising the rest.
const MAX_LISTED: usize = 4;

/// The JSON field scorer.
pub(crate) struct JsonScorer {
    spec: JsonSpec,
}

impl JsonScorer {
    pub(crate) fn new(spec: &JsonSpec) -> Result<Self, Vec<FieldError>> {
        let errors: Vec<FieldError> = [
            check_tolerance("abs_tol", spec.abs_tol),
            check_tolerance("rel_tol", spec.rel_tol),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errors.is_empty() {
            Ok(Self { spec: spec.clone() })
        } else {
            Err(errors)
        }
    }

    /// `Ok` when `got` matches `expected`, else why not.
    fn matches(&self, expected: &Value, got: &Value) -> Result<(), String> {
        match (expected, got) {
            (Value::Number(e), _) => {
                let e = e.as_f64().unwrap_or(f64::NAN);
                let g = match got {
                    Value::Number(g) => g.as_f64().ok_or_else(|| format!("{g} is out of range"))?,
                    Value::String(s) => parse_number(s)?,
                    other => return Err(format!("expected {expected}, got {}", short(other))),
                };
                let (pass, detail) = within(e, g, self.spec.abs_tol, self.spec.rel_tol);
                if pass { Ok(()) } else { Err(detail) }
            }
            (Value::String(e), Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                let g = super::plain_text(got);
                let (ne, ng) = (
                    normalize(e, self.spec.case_sensitive),
                    normalize(&g, self.spec.case_sensitive),
                );
                if ne == ng {
                    Ok(())
                } else {
                    Err(format!("expected {}, got {}", quoted(&ne), quoted(&ng)))
                }
            }
            (Value::Array(e), Value::Array(g)) => {
                if e.len() != g.len() {
                    return Err(format!("expected {} items, got {}", e.len(), g.len()));
                }
                for (i, (ei, gi)) in e.iter().zip(g).enumerate() {
                    self.matches(ei, gi)
                        .map_err(|why| format!("[{i}]: {why}"))?;
                }
                Ok(())
            }
            (Value::Object(e), Value::Object(g)) => {
                for (key, ev) in e {
                    match g.get(key) {
                        Some(gv) => self
                            .matches(ev, gv)
                            .map_err(|why| format!(".{key}: {why}"))?,
                        None => return Err(format!(".{key}: missing")),
                    }
                }
                Ok(())
            }
            (e, g) if e == g => Ok(()),
            (e, g) => Err(format!("expected {}, got {}", short(e), short(g))),
        }
    }
}

/// A JSON value shortened for a detail.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 40 {
        text
    } else {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}...")
    }
}

impl Scorer for JsonScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        match target {
            Value::Object(map) if !map.is_empty() => Ok(()),
            _ => Err(FieldError::new(
                "target",
                "json scorer needs a non-empty object",
            )),
        }
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let Value::Object(target) = task.target() else {
            return Score::zero("target: json scorer needs a non-empty object");
        };
        if target.is_empty() {
            return Score::zero("target: json scorer needs a non-empty object");
        }
        let got = match serde_json::from_str::<Value>(answer.trim()) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Score::zero(format!("answer is not a JSON object: {}", short(&other)));
            }
            Err(e) => return Score::zero(format!("answer is not valid JSON: {e}")),
        };
        let mut failures = Vec::new();
        for (key, expected) in target {
            match got.get(key) {
                None => failures.push(format!("{key}: missing")),
                Some(value) => {
                    if let Err(why) = self.matches(expected, value) {
                        let sep = if why.starts_with(['.', '[']) {
                            ""
                        } else {
                            ": "
                        };
                        failures.push(format!("{key}{sep}{why}"));
                    }
                }
            }
        }
        let total = target.len();
        let matched = total - failures.len();
        let value = if self.spec.partial_credit {
            matched as f64 / total as f64
        } else if failures.is_empty() {
            1.0
        } else {
            0.0
        };
        let mut detail = format!("{matched}/{total} fields");
        for failure in failures.iter().take(MAX_LISTED) {
            detail.push_str("; ");
            detail.push_str(failure);
        }
        if failures.len() > MAX_LISTED {
            detail.push_str(&format!("; and {} more", failures.len() - MAX_LISTED));
        }
        Score {
            value,
            detail,
            extracted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(target: Value) -> crate::score::TestTask {
        crate::score::test_task(target)
    }

    fn scorer(abs_tol: f64, partial_credit: bool) -> JsonScorer {
        JsonScorer {
            spec: JsonSpec {
                abs_tol,
                partial_credit,
                ..JsonSpec::default()
            },
        }
    }

    #[test]
    fn per_field_credit() {
        let t = task(json!({"cost": 12.5, "carrier": "DHL", "route": ["A", "B"]}));
        let s = scorer(0.01, true).score(
            &t,
            r#"{"cost": 13, "carrier": "dhl", "route": ["A", "B"], "extra": 1}"#,
        );
        assert!((s.value - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            s.detail,
            "2/3 fields; cost: expected 12.5, got 13 (|diff| 0.5 > tol 0.01)"
        );
        let s = scorer(0.01, false).score(&t, r#"{"cost": "$12.50", "carrier": "DHL."}"#);
        assert_eq!(s.value, 0.0);
        assert_eq!(s.detail, "2/3 fields; route: missing");
        let s = scorer(0.0, true).score(
            &t,
            r#"{"cost": 12.5, "carrier": "DHL", "route": ["A", "C"]}"#,
        );
        assert_eq!(s.detail, "2/3 fields; route[1]: expected \"b\", got \"c\"");
    }

    #[test]
    fn nested_and_malformed() {
        let t = task(json!({"load": {"truck": 1, "pallets": 4}, "ok": true}));
        let s = scorer(0.0, true).score(&t, r#"{"load": {"truck": 1}, "ok": "true"}"#);
        assert_eq!(s.value, 0.0);
        assert_eq!(
            s.detail,
            "0/2 fields; load.pallets: missing; ok: expected true, got \"true\""
        );
        let s = scorer(0.0, true).score(&t, "not json");
        assert!(
            s.detail.starts_with("answer is not valid JSON"),
            "{}",
            s.detail
        );
        let s = scorer(0.0, true).score(&t, "[1]");
        assert_eq!(s.detail, "answer is not a JSON object: [1]");
        let s = scorer(0.0, true).score(&t, "");
        assert_eq!(s.value, 0.0);
        assert!(JsonScorer::new(&JsonSpec::default()).is_ok());
        assert!(
            scorer(0.0, true)
                .check_target(&json!({}), &Map::new())
                .is_err()
        );
        assert!(
            scorer(0.0, true)
                .check_target(&json!("x"), &Map::new())
                .is_err()
        );
    }
}
