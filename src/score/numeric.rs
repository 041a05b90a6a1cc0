//! Numeric answers within a tolerance.
//!
//! An answer passes when `|got - expected| <= max(abs_tol, rel_tol * |expected|)`
//! (both tolerances default to 0: exact equality of the parsed values).
//! Both tolerances must be finite and non-negative.
//!
//! Numbers are read by [`parse_number`]: surrounding whitespace, markdown
//! marks (`*`, `` ` ``) and one trailing `.` are ignored; a sign (`-`, `+`,
//! Unicode minus `−`), one currency symbol (`$ € £ ¥ ₹ ₩`) before or after
//! the digits, thousands separators (`1,234,567`, strictly in groups of
//! three after a first group of one to three digits; `1,23` is rejected as
//! ambiguous), a decimal part and an exponent are accepted. A trailing `%`
//! is dropped and the value is kept as written: `12.5%` reads as `12.5`, so
//! write percentage targets in percent. Spaces as thousands separators,
//! decimal commas, fractions (`3/4`), words (`forty-two`), `NaN` and
//! infinities are not numbers; values that overflow an f64 (`1e400`) are
//! rejected. The default extraction step is `last_number`.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Expected, FieldError, Score, Scorer, quoted};

/// Parameters of the numeric scorer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSpec {
    /// Absolute tolerance (default 0).
    #[serde(default)]
    pub abs_tol: f64,
    /// Relative tolerance, as a fraction of `|expected|` (default 0).
    #[serde(default)]
    pub rel_tol: f64,
}

/// Checks one tolerance parameter.
pub(crate) fn check_tolerance(name: &str, value: f64) -> Option<FieldError> {
    (!(value.is_finite() && value >= 0.0)).then(|| {
        FieldError::new(
            name,
            format!("must be a finite number >= 0, got {}", fmt_num(value)),
        )
    })
}

static BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
        .expect("static pattern")
});

const CURRENCY: [char; 6] = ['$', '€', '£', '¥', '₹', '₩'];

/// Reads a number as written by a person or a model (rules in the module docs).
pub fn parse_number(text: &str) -> Result<f64, String> {
    let not_a_number = || format!("{} is not a number", quoted(text.trim()));
    let mut s = text.trim().trim_matches(['*', '`']).trim();
    if let Some(rest) = s.strip_suffix('.')
        && !rest.ends_with('.')
    {
        s = rest;
    }
    // A sign and a currency symbol, in either order, each at most once.
    let mut negative = None;
    let mut currency = false;
    for _ in 0..2 {
        if negative.is_none() {
            if let Some(rest) = s.strip_prefix(['-', '\u{2212}']) {
                negative = Some(true);
                s = rest.trim_start();
            } else if let Some(rest) = s.strip_prefix('+') {
                negative = Some(false);
                s = rest.trim_start();
            }
        }
        if !currency && let Some(rest) = s.strip_prefix(CURRENCY) {
            currency = true;
            s = rest.trim_start();
        }
    }
    if let Some(rest) = s.strip_suffix('%') {
        s = rest.trim_end();
    } else if !currency && let Some(rest) = s.strip_suffix(CURRENCY) {
        s = rest.trim_end();
    }
    if !BODY.is_match(s) {
        return Err(not_a_number());
    }
    let digits: String = s.chars().filter(|&c| c != ',').collect();
    let value: f64 = digits.parse().map_err(|_| not_a_number())?;
    if !value.is_finite() {
        return Err(format!("{} is out of range", quoted(text.trim())));
    }
    Ok(if negative == Some(true) {
        -value
    } else {
        value
    })
}

/// Formats a number for a detail: plain decimals for ordinary magnitudes,
/// scientific notation for very large or very small ones.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x.is_finite() && (1e-4..1e15).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// `x` rounded to 6 significant digits, so details do not show float noise.
fn round6(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// Whether `got` is within tolerance of `expected`, with a detail like
/// `expected 42, got 41.5 (|diff| 0.5 > tol 0.01)`.
pub(crate) fn within(expected: f64, got: f64, abs_tol: f64, rel_tol: f64) -> (bool, String) {
    let diff = (got - expected).abs();
    let tol = abs_tol.max(rel_tol * expected.abs());
    let head = format!("expected {}, got {}", fmt_num(expected), fmt_num(got));
    if diff == 0.0 {
        return (true, head);
    }
    let pass = diff <= tol;
    let op = if pass { "<=" } else { ">" };
    (
        pass,
        format!(
            "{head} (|diff| {} {op} tol {})",
            fmt_num(round6(diff)),
            fmt_num(tol)
        ),
    )
}

/// A number from a JSON target: a number, or a string [`parse_number`] reads.
pub(crate) fn target_number(target: &Value) -> Result<f64, String> {
    match target {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is out of range")),
        Value::String(s) => parse_number(s),
        other => Err(format!("expected a number, got {other}")),
    }
}

/// The numeric scorer.
pub(crate) struct NumericScorer {
    abs_tol: f64,
    rel_tol: f64,
}

impl NumericScorer {
    pub(crate) fn new(spec: &NumericSpec) -> Result<Self, Vec<FieldError>> {
        let errors: Vec<FieldError> = [
            check_tolerance("abs_tol", spec.abs_tol),
            check_tolerance("rel_tol", spec.rel_tol),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errors.is_empty() {
            Ok(Self {
                abs_tol: spec.abs_tol,
                rel_tol: spec.rel_tol,
            })
        } else {
            Err(errors)
        }
    }
}

impl Scorer for NumericScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        target_number(target)
            .map(|_| ())
            .map_err(|e| FieldError::new("target", e))
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let expected = match target_number(task.target()) {
            Ok(x) => x,
            Err(e) => return Score::zero(format!("target: {e}")),
        };
        match parse_number(answer) {
            Ok(got) => {
                let (pass, detail) = within(expected, got, self.abs_tol, self.rel_tol);
                Score::binary(pass, detail)
            }
            Err(e) if answer.trim().is_empty() => Score::zero(format!("empty answer ({e})")),
            Err(e) => Score::zero(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_as_written() {
        let ok = [
            ("42", 42.0),
            (" 42. ", 42.0),
            ("-3", -3.0),
            ("−3", -3.0),
            ("+7", 7.0),
            ("$1,234.50", 1234.5),
            ("-$5", -5.0),
            ("$-5", -5.0),
            ("30€", 30.0),
            ("€ 30", 30.0),
            ("12.5%", 12.5),
            ("12.5 %", 12.5),
            ("1,234,567", 1234567.0),
            ("1.5e-3", 0.0015),
            ("2E5", 200000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("**42**", 42.0),
            ("1e308", 1e308),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ];
        for (text, want) in ok {
            assert_eq!(parse_number(text), Ok(want), "{text:?}");
        }
        let bad = [
            "",
            "abc",
            "NaN",
            "inf",
            "-inf",
            "1,23",
            "1,2345",
            "1 000",
            "3/4",
            "1.2.3",
            "--5",
            "$",
            "%",
            "forty-two",
            "0x10",
        ];
        for text in bad {
            assert!(parse_number(text).is_err(), "{text:?} parsed");
        }
        assert_eq!(
            parse_number("1e400"),
            Err("\"1e400\" is out of range".to_string())
        );
    }

    #[test]
    fn tolerance_semantics() {
        // |41.5 - 42| = 0.5 > 0.01
        assert_eq!(
            within(42.0, 41.5, 0.01, 0.0),
            (
                false,
                "expected 42, got 41.5 (|diff| 0.5 > tol 0.01)".to_string()
            )
        );
        assert_eq!(
            within(42.0, 41.995, 0.01, 0.0),
            (
                true,
                "expected 42, got 41.995 (|diff| 0.005 <= tol 0.01)".to_string()
            )
        );
        // relative: 1% of 200 = 2, |diff| 1.5 passes; abs_tol alone would not
        assert!(within(200.0, 201.5, 0.1, 0.01).0);
        assert!(!within(200.0, 202.5, 0.1, 0.01).0);
        assert!(!within(0.1 + 0.2, 0.3, 0.0, 0.0).0);
        assert!(within(0.1 + 0.2, 0.3, 1e-9, 0.0).0);
        assert_eq!(
            within(5.0, 5.0, 0.0, 0.0),
            (true, "expected 5, got 5".to_string())
        );
        // huge values: the difference overflows to infinity and fails
        assert!(!within(1e308, -1e308, 1e300, 0.0).0);
        assert_eq!(
            within(1e20, 1.5e20, 0.0, 0.0).1,
            "expected 1e20, got 1.5e20 (|diff| 5e19 > tol 0)"
        );
    }

    #[test]
    fn scores_answers() {
        let scorer = NumericScorer::new(&NumericSpec {
            abs_tol: 0.0,
            rel_tol: 0.001,
        });
        let Ok(scorer) = scorer else {
            panic!("valid spec")
        };
        let task = crate::score::test_task;
        let t = task(serde_json::json!("$1,000"));
        // 0.1% of 1000 = 1
        assert_eq!(scorer.score(&t, "$1,000.99").value, 1.0);
        assert_eq!(
            scorer.score(&t, "1001.5").detail,
            "expected 1000, got 1001.5 (|diff| 1.5 > tol 1)"
        );
        assert_eq!(
            scorer.score(&t, "").detail,
            "empty answer (\"\" is not a number)"
        );
        assert_eq!(scorer.score(&t, "NaN").detail, "\"NaN\" is not a number");
        assert_eq!(
            scorer.score(&t, "1e999").detail,
            "\"1e999\" is out of range"
        );
        // zero target: a relative tolerance alone accepts only exact zero
        let zero = task(serde_json::json!(0));
        assert_eq!(scorer.score(&zero, "-0").value, 1.0);
        assert_eq!(scorer.score(&zero, "0.0001").value, 0.0);
        assert!(
            scorer
                .check_target(&serde_json::json!([1]), &Map::new())
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_tolerances() {
        let bad = NumericScorer::new(&NumericSpec {
            abs_tol: -0.5,
            rel_tol: f64::NAN,
        });
        let errors = bad.err().unwrap_or_default();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "abs_tol: must be a finite number >= 0, got -0.5",
                "rel_tol: must be a finite number >= 0, got NaN"
            ]
        );
    }
}
