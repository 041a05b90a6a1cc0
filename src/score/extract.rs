//! Answer extraction: the step that pulls the answer out of a model's prose
//! before a scorer compares it with the target.
//!
//! In `suite.toml` a step is written either as a name (`extract =
//! "last_number"`) or as a table with parameters (`extract = { kind =
//! "regex", pattern = 'answer: (\w+)', group = 1 }`).

use std::sync::LazyLock;

use regex::Regex;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FieldError;

/// An answer-extraction step, declared per suite or per category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Extract {
    /// The whole output, unchanged (scorers normalise it themselves).
    None,
    /// The last number in the output (see [`last_number`] for what counts as one).
    LastNumber,
    /// A multiple-choice letter (see [`choice_letter`]).
    ChoiceLetter,
    /// The body of the first fenced code block (see [`first_code_block`]).
    FirstCodeBlock {
        /// Prefer the first block tagged with this language (e.g. `python`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lang: Option<String>,
    },
    /// The first balanced `{...}` that parses as a JSON object (see [`first_json_object`]).
    FirstJsonObject,
    /// The first non-blank line, trimmed.
    FirstLine,
    /// A capture group of the first match of a regular expression.
    Regex {
        /// The pattern (Rust `regex` syntax).
        pattern: String,
        /// Which capture group is the answer (0 is the whole match).
        #[serde(default = "one")]
        group: usize,
    },
}

fn one() -> usize {
    1
}

impl Serialize for Extract {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Extract::Regex { .. } | Extract::FirstCodeBlock { lang: Some(_) } => {
                Extract::serialize(self, serializer)
            }
            _ => serializer.serialize_str(self.name()),
        }
    }
}

impl<'de> Deserialize<'de> for Extract {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let value = match value {
            serde_json::Value::String(name) => serde_json::json!({ "kind": name }),
            serde_json::Value::Object(map) => {
                // serde ignores extra keys next to the tag of a unit variant;
                // check them here so `{ kind = "first_line", x = 1 }` is an error.
                let allowed: &[&str] = match map.get("kind").and_then(|k| k.as_str()) {
                    Some("regex") => &["kind", "pattern", "group"],
                    Some("first_code_block") => &["kind", "lang"],
                    _ => &["kind"],
                };
                if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(D::Error::custom(format!(
                        "unknown field `{key}`, expected one of: {}",
                        allowed.join(", ")
                    )));
                }
                serde_json::Value::Object(map)
            }
            other => other,
        };
        Extract::deserialize(value).map_err(D::Error::custom)
    }
}

impl Extract {
    /// Every step name, as written in `suite.toml`.
    pub const NAMES: [&'static str; 7] = [
        "none",
        "last_number",
        "choice_letter",
        "first_code_block",
        "first_json_object",
        "first_line",
        "regex",
    ];

    /// The step's name as written in `suite.toml`.
    pub fn name(&self) -> &'static str {
        match self {
            Extract::None => "none",
            Extract::LastNumber => "last_number",
            Extract::ChoiceLetter => "choice_letter",
            Extract::FirstCodeBlock { .. } => "first_code_block",
            Extract::FirstJsonObject => "first_json_object",
            Extract::FirstLine => "first_line",
            Extract::Regex { .. } => "regex",
        }
    }

    /// Checks the parameters (the regex compiles and has the group; `lang`
    /// is not blank). Returns every problem found.
    pub fn validate(&self) -> Vec<FieldError> {
        match self {
            Extract::Regex { pattern, group } => match compile_with_group(pattern, *group) {
                Ok(_) => Vec::new(),
                Err(e) => vec![e],
            },
            Extract::FirstCodeBlock { lang: Some(lang) } if lang.trim().is_empty() => {
                vec![FieldError::new(
                    "lang",
                    "must not be blank (leave it out for any language)",
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Applies the step to a model's output. `Err` explains, in a few words,
    /// why no answer was found (it becomes the score's detail).
    pub fn apply(&self, text: &str) -> Result<String, String> {
        match self {
            Extract::None => Ok(text.to_string()),
            Extract::LastNumber => last_number(text)
                .map(str::to_string)
                .ok_or_else(|| "no number in the output".to_string()),
            Extract::ChoiceLetter => choice_letter(text, 26)
                .map(String::from)
                .ok_or_else(|| "no answer letter in the output".to_string()),
            Extract::FirstCodeBlock { lang } => {
                first_code_block(text, lang.as_deref()).ok_or_else(|| match lang {
                    Some(lang) => format!("no fenced {lang} code block in the output"),
                    None => "no fenced code block in the output".to_string(),
                })
            }
            Extract::FirstJsonObject => first_json_object(text)
                .map(str::to_string)
                .ok_or_else(|| "no JSON object in the output".to_string()),
            Extract::FirstLine => first_line(text)
                .map(str::to_string)
                .ok_or_else(|| "empty output".to_string()),
            Extract::Regex { pattern, group } => {
                let re = compile_with_group(pattern, *group).map_err(|e| e.to_string())?;
                regex_group(&re, *group, text)
            }
        }
    }
}

/// Compiles `pattern` and checks it has capture group `group`.
pub(crate) fn compile_with_group(pattern: &str, group: usize) -> Result<Regex, FieldError> {
    let re = Regex::new(pattern).map_err(|e| {
        let text = e.to_string();
        let last = text.lines().last().unwrap_or("").trim().to_string();
        FieldError::new("pattern", format!("invalid regular expression: {last}"))
    })?;
    let groups = re.captures_len() - 1;
    if group > groups {
        return Err(FieldError::new(
            "group",
            format!("pattern has {groups} capture group(s), cannot use group {group}"),
        ));
    }
    Ok(re)
}

/// The text of `group` in the first match of `re`.
pub(crate) fn regex_group(re: &Regex, group: usize, text: &str) -> Result<String, String> {
    let caps = re
        .captures(text)
        .ok_or_else(|| format!("pattern /{}/ did not match", re.as_str()))?;
    caps.get(group)
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| format!("group {group} did not take part in the match"))
}

/// The first non-blank line of `text`, trimmed.
pub fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

const CURRENCY: [char; 6] = ['$', '€', '£', '¥', '₹', '₩'];

fn is_sign(c: char) -> bool {
    matches!(c, '-' | '+' | '\u{2212}')
}

/// Every number written in `text`, in order, as it is written.
///
/// A number is a run of ASCII digits that does not continue a word (`gpt4`,
/// `v1.2` and `x86` contain none), optionally with thousands separators
/// (`1,234,567`: comma groups of exactly three digits after a first group of
/// one to three), a decimal part (`3.14`; a trailing `.` ends a sentence and is
/// not part of the number), an exponent (`1.5e-3`), a sign (`-`, `+` or the
/// Unicode minus `−`, only when not preceded by a letter, digit or `)`, so
/// `5-3` is two numbers, `5` and `3`), one currency symbol (`$ € £ ¥ ₹ ₩`)
/// before or after the digits, and a percent sign (`12 %` or `12%`).
/// Fractions (`3/4`) are read as two numbers.
pub fn numbers(text: &str) -> Vec<&str> {
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    let ch = |i: usize| cs.get(i).map(|&(_, c)| c);
    let digit = |i: usize| ch(i).is_some_and(|c| c.is_ascii_digit());
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        while digit(j) {
            j += 1;
        }
        let continues_word =
            start > 0 && ch(start - 1).is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.');
        if continues_word {
            i = j;
            continue;
        }
        if j - start <= 3 {
            while ch(j) == Some(',')
                && digit(j + 1)
                && digit(j + 2)
                && digit(j + 3)
                && !digit(j + 4)
            {
                j += 4;
            }
        }
        if ch(j) == Some('.') && digit(j + 1) {
            j += 1;
            while digit(j) {
                j += 1;
            }
        }
        if matches!(ch(j), Some('e' | 'E')) {
            let k = if ch(j + 1).is_some_and(|c| c == '-' || c == '+') {
                j + 2
            } else {
                j + 1
            };
            if digit(k) {
                j = k;
                while digit(j) {
                    j += 1;
                }
            }
        }
        if ch(j) == Some('%') {
            j += 1;
        } else if ch(j) == Some(' ') && ch(j + 1) == Some('%') {
            j += 2;
        } else if ch(j).is_some_and(|c| CURRENCY.contains(&c)) {
            j += 1;
        }
        let mut k = start;
        if k > 0 && ch(k - 1).is_some_and(|c| CURRENCY.contains(&c)) {
            k -= 1;
        }
        if k > 0 && ch(k - 1).is_some_and(is_sign) {
            let before = if k >= 2 { ch(k - 2) } else { None };
            if !before.is_some_and(|b| b.is_alphanumeric() || b == ')' || b == '_') {
                k -= 1;
            }
        }
        let from = cs[k].0;
        let to = cs.get(j).map_or(text.len(), |&(b, _)| b);
        out.push(&text[from..to]);
        i = j;
    }
    out
}

/// The last number in `text` (see [`numbers`]).
pub fn last_number(text: &str) -> Option<&str> {
    numbers(text).pop()
}

/// Text with markdown emphasis and code marks removed, for letter matching.
fn strip_marks(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '*' | '`')).collect()
}

static WHOLE_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[(\[]?([A-Za-z])[)\]]?[.:)]?$").expect("static pattern"));
static BOXED_LETTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\boxed\{\s*(?:\\text\{)?\(?([A-Za-z])\)?\}?\s*\}").expect("static pattern")
});
static ANSWER_LETTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i:\banswer\b)(?:\s+(?i:is|would be|will be|should be|must be|therefore|thus|clearly|then))*\s*[:=\-]?\s*(?i:(?:option|choice)\s+)?(?:[(\[]([A-Za-z])[)\]]|([A-Z])\b)",
    )
    .expect("static pattern")
});
static OPTION_LETTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:\b(?:option|choice)\b)\s*[:\-]?\s*(?:[(\[]([A-Za-z])[)\]]|([A-Z])\b)")
        .expect("static pattern")
});
static PAREN_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(([A-Z])\)").expect("static pattern"));
static LINE_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*([A-Z])[).:](?:\s|$)").expect("static pattern"));

/// The multiple-choice letter a model chose, among the first `options`
/// letters (`A`, `B`, ...; 26 when the number of options is unknown).
///
/// Markdown marks (`*`, `` ` ``) are ignored. Tried in order, the first rule
/// that finds a valid letter wins:
/// 1. the whole output is a letter, maybe wrapped: `B`, `(b)`, `B.`, `B)`;
/// 2. the last `\boxed{B}`;
/// 3. the last "answer" statement: `The answer is (B)`, `Answer: B`,
///    `the correct answer is option C` (a lowercase letter only in brackets);
/// 4. the last "option/choice" mention: `Option D is correct`;
/// 5. bracketed letters `(C)`, when all of them name the same letter;
/// 6. the first line that starts with a letter and `)`, `.` or `:`: `B) Paris`.
pub fn choice_letter(text: &str, options: usize) -> Option<char> {
    let max = options.clamp(1, 26);
    let valid = |c: char| {
        let c = c.to_ascii_uppercase();
        c.is_ascii_uppercase() && usize::from(c as u8 - b'A') < max
    };
    let clean = strip_marks(text);
    let trimmed = clean.trim();
    let letter_of = |caps: &regex::Captures<'_>| {
        caps.get(1)
            .or_else(|| caps.get(2))
            .and_then(|m| m.as_str().chars().next())
            .filter(|&c| valid(c))
            .map(|c| c.to_ascii_uppercase())
    };
    if let Some(c) = WHOLE_LETTER.captures(trimmed).and_then(|c| letter_of(&c)) {
        return Some(c);
    }
    for re in [&*BOXED_LETTER, &*ANSWER_LETTER, &*OPTION_LETTER] {
        if let Some(c) = re
            .captures_iter(trimmed)
            .filter_map(|c| letter_of(&c))
            .last()
        {
            return Some(c);
        }
    }
    let bracketed: Vec<char> = PAREN_LETTER
        .captures_iter(trimmed)
        .filter_map(|c| letter_of(&c))
        .collect();
    if let Some(&first) = bracketed.first()
        && bracketed.iter().all(|&c| c == first)
    {
        return Some(first);
    }
    LINE_LETTER
        .captures_iter(trimmed)
        .find_map(|c| letter_of(&c))
}

/// The body of the first fenced code block (```` ``` ```` or `~~~`, three or
/// more). With `lang`, the first block whose info string starts with that
/// language (case-insensitive) is preferred; failing that, the first block
/// with no language. A block left open (the model ran out of tokens) runs to
/// the end of the text. A closing fence glued to the last code line
/// (`print(x)```) is accepted.
pub fn first_code_block(text: &str, lang: Option<&str>) -> Option<String> {
    let blocks = code_blocks(text);
    match lang {
        None => blocks.into_iter().next().map(|(_, body)| body),
        Some(lang) => {
            let wanted = lang.trim();
            let tagged = blocks.iter().position(|(info, _)| {
                info.split_whitespace()
                    .next()
                    .is_some_and(|tag| tag.eq_ignore_ascii_case(wanted))
            });
            let index = tagged.or_else(|| blocks.iter().position(|(info, _)| info.is_empty()))?;
            blocks.into_iter().nth(index).map(|(_, body)| body)
        }
    }
}

/// Every fenced block as (info string, body).
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, String, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match &mut open {
            None => {
                if let Some((fence, count, info)) = fence_of(trimmed) {
                    open = Some((fence, count, info.to_string(), Vec::new()));
                }
            }
            Some((fence, count, info, body)) => {
                let run = trimmed.chars().take_while(|c| c == fence).count();
                if run >= *count && run == trimmed.chars().count() {
                    blocks.push((std::mem::take(info), body.join("\n")));
                    open = None;
                } else if let Some(code) = trimmed.strip_suffix(&fence.to_string().repeat(*count))
                    && !code.ends_with(*fence)
                    && !trimmed.starts_with(*fence)
                {
                    let indent = line.len() - line.trim_start().len();
                    body.push(&line[..indent + code.len()]);
                    blocks.push((std::mem::take(info), body.join("\n")));
                    open = None;
                } else {
                    body.push(line);
                }
            }
        }
    }
    if let Some((_, _, info, body)) = open {
        blocks.push((info, body.join("\n")));
    }
    blocks
}

/// An opening fence: its character, length and info string.
fn fence_of(line: &str) -> Option<(char, usize, &str)> {
    let fence = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let count = line.chars().take_while(|c| *c == fence).count();
    if count < 3 {
        return None;
    }
    let info = line[count..].trim();
    if fence == '`' && info.contains('`') {
        return None;
    }
    Some((fence, count, info))
}

/// Upper bound on characters examined by [`first_json_object`], so a hostile
/// output full of unbalanced braces cannot take quadratic time.
const JSON_SCAN_BUDGET: usize = 8_000_000;

/// The first balanced `{...}` in `text` that parses as a JSON object.
///
/// Braces inside JSON strings (with `\"` escapes) do not count. A candidate
/// that does not parse (`{x}` in prose, a Python dict) is skipped and the
/// search goes on from the next `{`. Works on objects inside ```` ```json ````
/// fences and surrounded by prose.
pub fn first_json_object(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut budget = JSON_SCAN_BUDGET;
    let mut start = 0;
    while let Some(offset) = bytes.get(start..)?.iter().position(|&b| b == b'{') {
        let open = start + offset;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            budget = budget.checked_sub(1)?;
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            let candidate = &text[open..end];
            if matches!(
                serde_json::from_str::<serde_json::Value>(candidate),
                Ok(serde_json::Value::Object(_))
            ) {
                return Some(candidate);
            }
        }
        start = open + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_prose() {
        assert_eq!(
            last_number("Step 1: 12 * 3 = 36. Step 2: 36 + 6 = 42.\nThe answer is 42."),
            Some("42")
        );
        assert_eq!(
            last_number("Total: $1,234.50 (incl. tax)."),
            Some("$1,234.50")
        );
        assert_eq!(last_number("x = -3"), Some("-3"));
        assert_eq!(last_number("5-3"), Some("3"));
        assert_eq!(numbers("5-3"), vec!["5", "3"]);
        assert_eq!(last_number("growth was 12.5% last year"), Some("12.5%"));
        assert_eq!(last_number("about 1.5e-3 seconds"), Some("1.5e-3"));
        assert_eq!(last_number("I used gpt4 and v1.2.3"), None);
        assert_eq!(last_number("costs 30€ each"), Some("30€"));
        assert_eq!(last_number("−7 degrees"), Some("−7"));
        assert_eq!(last_number("1,2,3"), Some("3"));
        assert_eq!(last_number("12345,678"), Some("678"));
        assert_eq!(last_number("3 eggs and 2e5"), Some("2e5"));
        assert_eq!(last_number("(3)-2"), Some("2"));
        assert_eq!(last_number(""), None);
        assert_eq!(last_number("日本 is 42 km 东京"), Some("42"));
    }

    #[test]
    fn choice_letters_in_messy_outputs() {
        let cases = [
            ("B", Some('B')),
            ("(c)", Some('C')),
            ("**D.**", Some('D')),
            ("The answer is (B).", Some('B')),
            (
                "Let me think. A is wrong because... so the answer is C",
                Some('C'),
            ),
            ("**Answer:** **D**", Some('D')),
            ("Answer: b is tempting", None),
            ("Final answer: \\boxed{A}", Some('A')),
            ("I think Option D is correct.", Some('D')),
            ("(A) is wrong. (A) again.", Some('A')),
            ("Between (A) and (B) I pick neither", None),
            ("Considering everything:\nB) Paris\n", Some('B')),
            ("I am not sure.", None),
            ("The answer is a bit unclear", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(choice_letter(text, 26), want, "{text:?}");
        }
        assert_eq!(choice_letter("The answer is E", 4), None);
        assert_eq!(
            choice_letter("The answer is E, no wait, the answer is B", 4),
            Some('B')
        );
    }

    #[test]
    fn code_blocks_in_messy_outputs() {
        let text = "Here is my solution:\n```python\ndef f(x):\n    return x + 1\n```\nAnd a test:\n```\nassert f(1) == 2\n```";
        assert_eq!(
            first_code_block(text, None).as_deref(),
            Some("def f(x):\n    return x + 1")
        );
        assert_eq!(
            first_code_block(text, Some("Python")).as_deref(),
            Some("def f(x):\n    return x + 1")
        );
        let text = "```bash\npip install x\n```\n```\nprint(1)\n```";
        assert_eq!(
            first_code_block(text, Some("python")).as_deref(),
            Some("print(1)")
        );
        assert_eq!(
            first_code_block("```py\nx = 1\nprint(x)```", None).as_deref(),
            Some("x = 1\nprint(x)")
        );
        assert_eq!(
            first_code_block("```python\ndef f():\n    return", None).as_deref(),
            Some("def f():\n    return")
        );
        assert_eq!(
            first_code_block("~~~~\na\n```\nb\n~~~~", None).as_deref(),
            Some("a\n```\nb")
        );
        assert_eq!(first_code_block("no code, just `inline` text", None), None);
    }

    #[test]
    fn json_objects_in_messy_outputs() {
        let text = "Sure! The set {a, b} is small. Here you go:\n```json\n{\"route\": [\"A\", \"B\"], \"note\": \"use } carefully\", \"n\": {\"x\": 1}}\n```\nHope it helps {";
        assert_eq!(
            first_json_object(text),
            Some("{\"route\": [\"A\", \"B\"], \"note\": \"use } carefully\", \"n\": {\"x\": 1}}")
        );
        assert_eq!(
            first_json_object("{'a': 1} then {\"a\": 2}"),
            Some("{\"a\": 2}")
        );
        assert_eq!(
            first_json_object("{\"a\": \"\\\"}\"}"),
            Some("{\"a\": \"\\\"}\"}")
        );
        assert_eq!(first_json_object("{\"a\": 1"), None);
        assert_eq!(first_json_object("[1, 2]"), None);
        assert_eq!(first_json_object(&"{".repeat(100_000)), None);
    }

    #[test]
    fn first_line_and_regex() {
        assert_eq!(
            Extract::FirstLine.apply("\n\n  Paris  \nbecause..."),
            Ok("Paris".into())
        );
        assert_eq!(
            Extract::FirstLine.apply("  \n "),
            Err("empty output".into())
        );
        let step = Extract::Regex {
            pattern: r"(?i)final answer:\s*(\w+)".into(),
            group: 1,
        };
        assert_eq!(
            step.apply("blah\nFinal Answer: Lisbon."),
            Ok("Lisbon".into())
        );
        assert!(step.apply("nothing").is_err());
        let bad = Extract::Regex {
            pattern: "(a".into(),
            group: 1,
        };
        assert_eq!(bad.validate().len(), 1);
        let no_group = Extract::Regex {
            pattern: "a".into(),
            group: 1,
        };
        assert_eq!(
            no_group.validate()[0].to_string(),
            "group: pattern has 0 capture group(s), cannot use group 1"
        );
    }

    #[test]
    fn serde_forms() {
        let e: Extract = serde_json::from_str("\"last_number\"").unwrap_or(Extract::None);
        assert_eq!(e, Extract::LastNumber);
        let e: Result<Extract, _> = serde_json::from_str(r#"{"kind": "regex", "pattern": "a(b)"}"#);
        assert_eq!(
            e.ok(),
            Some(Extract::Regex {
                pattern: "a(b)".into(),
                group: 1
            })
        );
        assert!(serde_json::from_str::<Extract>("\"last_word\"").is_err());
        assert!(serde_json::from_str::<Extract>(r#"{"kind": "first_line", "x": 1}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Extract::FirstJsonObject)
                .ok()
                .as_deref(),
            Some("\"first_json_object\"")
        );
        let regex = Extract::Regex {
            pattern: "x(y)".into(),
            group: 1,
        };
        let text = serde_json::to_string(&regex).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Extract>(&text).ok(), Some(regex));
    }
}
