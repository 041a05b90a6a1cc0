//! Multiple choice.
//!
//! The target is the correct letter (`"B"`, case-insensitive) or its 0-based
//! index (`1` for `B`). The options, when the task has them, are in
//! `meta.options` as a list of at least two strings (`A` is the first); the
//! target must then name one of them. Without options any letter `A`-`Z` is
//! allowed and only letters can be recognised.
//!
//! The answer is found in the output by, in order:
//! 1. a letter, recognised by [`choice_letter`]
//!    among the valid letters (`The answer is (B)`, `B) Paris`, `**C**`, ...);
//! 2. the text of an option: the whole normalised answer equals one option
//!    (normalised as in [`exact`](super::exact)), or exactly one option's text
//!    appears in it as whole words (if several do, the answer is ambiguous and
//!    scores 0).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::exact::normalize;
use super::extract::choice_letter;
use super::{Expected, FieldError, Score, Scorer};

/// Parameters of the choice scorer (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {}

/// The options in `meta.options`, if the task has them.
pub(crate) fn options(meta: &Map<String, Value>) -> Result<Option<Vec<String>>, FieldError> {
    let Some(value) = meta.get("options") else {
        return Ok(None);
    };
    let wrong = || FieldError::new("meta.options", "expected a list of 2 to 26 option strings");
    let Value::Array(items) = value else {
        return Err(wrong());
    };
    if !(2..=26).contains(&items.len()) {
        return Err(wrong());
    }
    items
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn letter(index: usize) -> char {
    char::from(b'A' + u8::try_from(index.min(25)).unwrap_or(25))
}

/// The 0-based index the target names, checked against the number of options.
fn target_index(target: &Value, count: usize) -> Result<usize, FieldError> {
    let index = match target {
        Value::String(s) => {
            let mut chars = s.trim().chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => {
                    usize::from(c.to_ascii_uppercase() as u8 - b'A')
                }
                _ => {
                    return Err(FieldError::new(
                        "target",
                        format!(
                            "choice target must be one letter or a 0-based index, got {target}"
                        ),
                    ));
                }
            }
        }
        Value::Number(n) => match n.as_u64().and_then(|i| usize::try_from(i).ok()) {
            Some(i) => i,
            None => {
                return Err(FieldError::new(
                    "target",
                    format!("choice index must be a non-negative integer, got {n}"),
                ));
            }
        },
        other => {
            return Err(FieldError::new(
                "target",
                format!("choice target must be one letter or a 0-based index, got {other}"),
            ));
        }
    };
    if index >= count {
        return Err(FieldError::new(
            "target",
            format!(
                "choice {target} is out of range: {count} options (A-{})",
                letter(count - 1)
            ),
        ));
    }
    Ok(index)
}

/// Whether `needle` occurs in `hay` as whole words.
fn contains_words(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The option the answer chose.
fn pick(answer: &str, options: Option<&[String]>) -> Result<usize, String> {
    let count = options.map_or(26, <[String]>::len);
    if let Some(c) = choice_letter(answer, count) {
        return Ok(usize::from(c as u8 - b'A'));
    }
    let Some(options) = options else {
        return Err("no option letter in the output".to_string());
    };
    let got = normalize(answer, false);
    let wanted: Vec<String> = options.iter().map(|o| normalize(o, false)).collect();
    if let Some(i) = wanted.iter().position(|w| !w.is_empty() && *w == got) {
        return Ok(i);
    }
    let mentioned: Vec<usize> = (0..wanted.len())
        .filter(|&i| contains_words(&got, &wanted[i]))
        .collect();
    match mentioned.as_slice() {
        [one] => Ok(*one),
        [] => Err("no option letter or option text in the output".to_string()),
        many => {
            let letters: Vec<String> = many.iter().map(|&i| letter(i).to_string()).collect();
            Err(format!(
                "ambiguous: the output mentions options {}",
                letters.join(", ")
            ))
        }
    }
}

/// The choice scorer.
pub(crate) struct ChoiceScorer;

impl ChoiceScorer {
    pub(crate) fn new(_spec: &ChoiceSpec) -> Self {
        Self
    }
}

impl Scorer for ChoiceScorer {
    fn check_target(&self, target: &Value, meta: &Map<String, Value>) -> Result<(), FieldError> {
        let count = options(meta)?.map_or(26, |o| o.len());
        target_index(target, count).map(|_| ())
    }

    fn target_text(&self, target: &Value) -> String {
        match target_index(target, 26) {
            Ok(i) => letter(i).to_string(),
            Err(_) => super::plain_text(target),
        }
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let options = match options(task.meta()) {
            Ok(options) => options,
            Err(e) => return Score::zero(e.to_string()),
        };
        let count = options.as_ref().map_or(26, Vec::len);
        let expected = match target_index(task.target(), count) {
            Ok(i) => i,
            Err(e) => return Score::zero(e.to_string()),
        };
        let name = |i: usize| match options.as_ref().and_then(|o| o.get(i)) {
            Some(text) => format!("{} ({})", letter(i), super::quoted(text)),
            None => letter(i).to_string(),
        };
        match pick(answer, options.as_deref()) {
            Ok(got) if got == expected => {
                let mut s = Score::binary(true, format!("chose {}", name(got)));
                s.extracted = Some(letter(got).to_string());
                s
            }
            Ok(got) => {
                let mut s = Score::binary(
                    false,
                    format!("expected {}, got {}", name(expected), name(got)),
                );
                s.extracted = Some(letter(got).to_string());
                s
            }
            Err(why) => Score::zero(format!("expected {}; {why}", name(expected))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::TestTask;
    use serde_json::json;

    fn task(target: Value, options: Option<Value>) -> TestTask {
        let mut meta = Map::new();
        if let Some(o) = options {
            meta.insert("options".into(), o);
        }
        TestTask { target, meta }
    }

    #[test]
    fn letters_and_option_text() {
        let opts = json!(["London", "Paris", "Lyon", "New Paris"]);
        let t = task(json!("B"), Some(opts.clone()));
        let s = ChoiceScorer.score(&t, "The answer is (b).");
        assert_eq!((s.value, s.detail.as_str()), (1.0, "chose B (\"Paris\")"));
        assert_eq!(s.extracted.as_deref(), Some("B"));
        let s = ChoiceScorer.score(&t, "paris");
        assert_eq!(s.value, 1.0);
        let s = ChoiceScorer.score(&t, "I am confident it is Lyon");
        assert_eq!(s.detail, "expected B (\"Paris\"), got C (\"Lyon\")");
        let s = ChoiceScorer.score(&t, "Either Paris or London");
        assert_eq!(
            s.detail,
            "expected B (\"Paris\"); ambiguous: the output mentions options A, B"
        );
        // "New Paris" contains "Paris" as whole words: ambiguous, not a guess
        let s = ChoiceScorer.score(&t, "It's New Paris");
        assert_eq!(s.value, 0.0);
        let s = ChoiceScorer.score(&t, "");
        assert_eq!(
            s.detail,
            "expected B (\"Paris\"); no option letter or option text in the output"
        );
        // E is not one of 4 options, so it is not read as a letter
        let s = ChoiceScorer.score(&t, "The answer is E");
        assert_eq!(s.value, 0.0);
        // index target
        let t = task(json!(1), Some(opts));
        assert_eq!(ChoiceScorer.score(&t, "B").value, 1.0);
        assert_eq!(ChoiceScorer.target_text(&json!(1)), "B");
        // no options: letters only
        let t = task(json!("d"), None);
        assert_eq!(ChoiceScorer.score(&t, "Answer: D").value, 1.0);
        assert_eq!(
            ChoiceScorer.score(&t, "Paris").detail,
            "expected D; no option letter in the output"
        );
    }

    #[test]
    fn target_checks() {
        let meta = |o: Value| {
            let mut m = Map::new();
            m.insert("options".into(), o);
            m
        };
        let two = meta(json!(["x", "y"]));
        assert!(ChoiceScorer.check_target(&json!("b"), &two).is_ok());
        assert_eq!(
            ChoiceScorer
                .check_target(&json!("C"), &two)
                .err()
                .map(|e| e.to_string()),
            Some("target: choice \"C\" is out of range: 2 options (A-B)".to_string())
        );
        assert!(ChoiceScorer.check_target(&json!(-1), &two).is_err());
        assert!(ChoiceScorer.check_target(&json!("AB"), &two).is_err());
        assert!(
            ChoiceScorer
                .check_target(&json!("A"), &meta(json!(["x"])))
                .is_err()
        );
        assert!(
            ChoiceScorer
                .check_target(&json!("A"), &meta(json!(["x", 1])))
                .is_err()
        );
        assert!(ChoiceScorer.check_target(&json!("Z"), &Map::new()).is_ok());
    }
}
