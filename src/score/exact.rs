//! Exact match after normalisation.
//!
//! Both the answer and the target go through [`normalize`]:
//! 1. runs of whitespace (spaces, tabs, newlines, any Unicode whitespace)
//!    become one space, and leading/trailing whitespace is removed;
//! 2. repeatedly, until nothing changes: one trailing `.` is removed, and a
//!    pair of matching wrappers around the whole text is removed: `"..."`,
//!    `'...'`, `` `...` ``, `*...*` (so `**bold**` too), `“...”`, `‘...’`,
//!    `«...»`. So `"Paris".`, `**Paris.**` and `Paris` are all `Paris`;
//! 3. unless `case_sensitive = true`, Unicode lower-casing.
//!
//! Nothing else changes: inner punctuation, accents and Unicode forms are
//! compared as written (no NFC/NFKC normalisation), so `café` written with a
//! combining accent does not equal the precomposed `café`.
//!
//! The target is a string, a number or a boolean (compared as its JSON text,
//! e.g. `42`, `true`), or a non-empty list of those: any of them is accepted
//! (aliases; the first is the one shown in few-shot examples). Exact scores
//! the whole output by default; use `extract = "first_line"` or a `regex`
//! step when models wrap the answer in prose.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Expected, FieldError, Score, Scorer, plain_text, quoted};

/// Parameters of the exact scorer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactSpec {
    /// Compare case-sensitively (default: case-insensitive).
    #[serde(default)]
    pub case_sensitive: bool,
}

const WRAPPERS: [(char, char); 7] = [
    ('"', '"'),
    ('\'', '\''),
    ('`', '`'),
    ('*', '*'),
    ('\u{201c}', '\u{201d}'),
    ('\u{2018}', '\u{2019}'),
    ('\u{ab}', '\u{bb}'),
];

/// Normalises text for exact comparison (rules in the module docs).
pub fn normalize(text: &str, case_sensitive: bool) -> String {
    let mut s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = s.len();
        if let Some(rest) = s.strip_suffix('.') {
            s = rest.trim_end().to_string();
        }
        for (open, close) in WRAPPERS {
            if s.chars().count() >= 2
                && let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close))
            {
                s = inner.trim().to_string();
            }
        }
        if s.len() == before {
            break;
        }
    }
    if case_sensitive { s } else { s.to_lowercase() }
}

/// The accepted answers of a target: a scalar, or a non-empty list of scalars.
pub(crate) fn aliases(target: &Value) -> Result<Vec<String>, FieldError> {
    let scalar = |v: &Value| match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(plain_text(v)),
        _ => None,
    };
    let wrong = || {
        FieldError::new(
            "target",
            "expected a string, number or boolean, or a non-empty list of them",
        )
    };
    match target {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|v| scalar(v).ok_or_else(wrong)).collect()
        }
        other => scalar(other).map(|s| vec![s]).ok_or_else(wrong),
    }
}

/// Compares a normalised answer with the normalised aliases.
pub(crate) fn compare(aliases: &[String], answer: &str, case_sensitive: bool) -> Score {
    let got = normalize(answer, case_sensitive);
    let wanted: Vec<String> = aliases
        .iter()
        .map(|a| normalize(a, case_sensitive))
        .collect();
    if wanted.contains(&got) {
        return Score::binary(true, format!("matches {}", quoted(&got)));
    }
    let expected = match wanted.as_slice() {
        [one] => quoted(one),
        many => {
            let list: Vec<String> = many.iter().map(|w| quoted(w)).collect();
            format!("one of {}", list.join(", "))
        }
    };
    let got_text = if got.is_empty() {
        "empty output".to_string()
    } else {
        quoted(&got)
    };
    Score::binary(false, format!("expected {expected}, got {got_text}"))
}

/// The exact scorer.
pub(crate) struct ExactScorer {
    case_sensitive: bool,
}

impl ExactScorer {
    pub(crate) fn new(spec: &ExactSpec) -> Self {
        Self {
            case_sensitive: spec.case_sensitive,
        }
    }
}

impl Scorer for ExactScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        aliases(target).map(|_| ())
    }

    fn target_text(&self, target: &Value) -> String {
        aliases(target)
            .ok()
            .and_then(|a| a.into_iter().next())
            .unwrap_or_else(|| plain_text(target))
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        match aliases(task.target()) {
            Ok(aliases) => compare(&aliases, answer, self.case_sensitive),
            Err(e) => Score::zero(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalisation_rules() {
        assert_eq!(normalize("  Paris \n", false), "paris");
        assert_eq!(normalize("\"Paris\".", false), "paris");
        assert_eq!(normalize("**Paris.**", false), "paris");
        assert_eq!(normalize("“New   York”", true), "New York");
        assert_eq!(normalize("`x.y`", true), "x.y");
        assert_eq!(normalize("ÉCOLE", false), "école");
        assert_eq!(normalize("\"", false), "\"");
        assert_eq!(normalize("...", false), "");
        assert_eq!(normalize("", false), "");
        assert_eq!(normalize("U.S.", false), "u.s");
        assert_eq!(normalize("a, b", false), "a, b");
        // no Unicode normalisation: combining accent differs from precomposed
        assert_ne!(
            normalize("cafe\u{301}", false),
            normalize("caf\u{e9}", false)
        );
    }

    #[test]
    fn exact_scores() {
        let aliases = vec!["Paris".to_string(), "Paris, France".to_string()];
        let s = compare(&aliases, "  paris.", false);
        assert_eq!((s.value, s.detail.as_str()), (1.0, "matches \"paris\""));
        let s = compare(&aliases, "PARIS, FRANCE", false);
        assert_eq!(s.value, 1.0);
        let s = compare(&aliases, "Lyon", false);
        assert_eq!(
            s.detail,
            "expected one of \"paris\", \"paris, france\", got \"lyon\""
        );
        let s = compare(&["Paris".to_string()], "paris", true);
        assert_eq!(
            (s.value, s.detail.as_str()),
            (0.0, "expected \"Paris\", got \"paris\"")
        );
        let s = compare(&["Paris".to_string()], "", false);
        assert_eq!(s.detail, "expected \"paris\", got empty output");
        let s = compare(&["東京".to_string()], "「東京」", false);
        assert_eq!(s.value, 0.0);
    }

    #[test]
    fn targets() {
        assert_eq!(aliases(&json!(42)).ok(), Some(vec!["42".to_string()]));
        assert_eq!(aliases(&json!(true)).ok(), Some(vec!["true".to_string()]));
        assert!(aliases(&json!([])).is_err());
        assert!(aliases(&json!({"a": 1})).is_err());
        assert!(aliases(&json!(["a", {"b": 1}])).is_err());
    }
}
