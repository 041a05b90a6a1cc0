//! A regular-expression capture compared exactly.
//!
//! The pattern (Rust `regex` syntax; add `(?i)` for a case-insensitive
//! pattern) is applied to the answer (the whole output by default); the text
//! of capture group `group` (default 1; 0 is the whole match) of the first
//! match is compared with the target as the [`exact`](super::exact) scorer
//! does (same normalisation, same alias lists, `case_sensitive` for the
//! comparison).

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::exact::{aliases, compare};
use super::extract::{compile_with_group, regex_group};
use super::{Expected, FieldError, Score, Scorer, plain_text};

/// Parameters of the regex scorer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexSpec {
    /// The pattern, with at least `group` capture groups.
    pub pattern: String,
    /// Which capture group is the answer (default 1).
    #[serde(default = "one")]
    pub group: usize,
    /// Compare the capture case-sensitively (default false).
    #[serde(default)]
    pub case_sensitive: bool,
}

fn one() -> usize {
    1
}

/// The regex scorer.
pub(crate) struct RegexScorer {
    re: Regex,
    group: usize,
    case_sensitive: bool,
}

impl RegexScorer {
    pub(crate) fn new(spec: &RegexSpec) -> Result<Self, Vec<FieldError>> {
        let re = compile_with_group(&spec.pattern, spec.group).map_err(|e| vec![e])?;
        Ok(Self {
            re,
            group: spec.group,
            case_sensitive: spec.case_sensitive,
        })
    }
}

impl Scorer for RegexScorer {
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
        let wanted = match aliases(task.target()) {
            Ok(a) => a,
            Err(e) => return Score::zero(e.to_string()),
        };
        match regex_group(&self.re, self.group, answer) {
            Ok(captured) => {
                let mut score = compare(&wanted, &captured, self.case_sensitive);
                score.extracted = Some(captured);
                score
            }
            Err(why) => Score::zero(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captures_and_compares() {
        let scorer = RegexScorer::new(&RegexSpec {
            pattern: r"(?i)answer:\s*([^\n]+)".into(),
            group: 1,
            case_sensitive: false,
        });
        let Ok(scorer) = scorer else {
            panic!("valid pattern")
        };
        let task = crate::score::test_task(json!(["São Paulo", "Sao Paulo"]));
        let s = scorer.score(&task, "Thinking...\nANSWER: são paulo.\n");
        assert_eq!(s.value, 1.0);
        assert_eq!(s.extracted.as_deref(), Some("são paulo."));
        let s = scorer.score(&task, "Answer: Rio");
        assert_eq!(s.value, 0.0);
        let s = scorer.score(&task, "I don't know");
        assert_eq!(s.detail, "pattern /(?i)answer:\\s*([^\\n]+)/ did not match");
        let optional = RegexScorer::new(&RegexSpec {
            pattern: r"x(y)?".into(),
            group: 1,
            case_sensitive: false,
        });
        let Ok(optional) = optional else {
            panic!("valid pattern")
        };
        assert_eq!(
            optional.score(&task, "x").detail,
            "group 1 did not take part in the match"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        let errors = RegexScorer::new(&RegexSpec {
            pattern: "(unclosed".into(),
            group: 1,
            case_sensitive: false,
        })
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "pattern");
        assert!(errors[0].message.starts_with("invalid regular expression"));
    }
}
