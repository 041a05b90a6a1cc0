//! Field-by-field checking of parsed documents (suite.toml and task lines),
//! so that every wrong field is reported with its path and line, not only the
//! first one serde would stop at. Values that pass these checks are then
//! converted by serde into the public types.

use std::path::Path;

use serde_json::{Map, Value};

use crate::diagnostics::KeyLines;
use crate::diagnostics::Problem;

/// Where the fields of a document are: one line for all of them (a JSONL
/// task) or a line per dotted path (a TOML file).
#[derive(Debug)]
pub(crate) enum Lines {
    /// Every field is on this line.
    Fixed(usize),
    /// Line of each dotted path (`defaults.scorer.abs_tol`, `defaults.stop[1]`).
    Keyed(KeyLines),
}

impl Lines {
    /// Line of `path`, or of its nearest parent that has one.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        match self {
            Lines::Fixed(line) => Some(*line),
            Lines::Keyed(lines) => lines.get(path),
        }
    }
}

/// The expected type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// Any finite number.
    Number,
    /// A non-negative integer.
    UInt,
    /// An array of strings.
    StrList,
    /// A table (TOML) or object (JSON).
    Table,
    /// Anything; the caller checks it.
    Any,
}

/// One allowed field of a table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSpec {
    /// Key.
    pub(crate) name: &'static str,
    /// Expected type.
    pub(crate) kind: Kind,
    /// Whether a missing key is a problem.
    pub(crate) required: bool,
}

/// An optional field.
pub(crate) const fn optional(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
    }
}

/// A required field.
pub(crate) const fn required(name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
    }
}

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Collects problems for one document.
pub(crate) struct Checker<'a> {
    file: &'a Path,
    lines: &'a Lines,
    toml: bool,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Checker<'a> {
    /// A checker for a TOML document (`toml = true`) or a JSON line.
    pub(crate) fn new(
        file: &'a Path,
        lines: &'a Lines,
        toml: bool,
        problems: &'a mut Vec<Problem>,
    ) -> Self {
        Self {
            file,
            lines,
            toml,
            problems,
        }
    }

    /// Records a problem with the field at `path` (the whole line/file when empty).
    pub(crate) fn report(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line: self.lines.line(path),
            field: (!path.is_empty()).then(|| path.to_string()),
            message: message.into(),
        });
    }

    /// Name of a table in this format, for messages.
    fn a_table(&self) -> &'static str {
        if self.toml { "a table" } else { "an object" }
    }

    /// Describes a value for a "got ..." message: its type and a short rendering.
    pub(crate) fn describe(&self, value: &Value) -> String {
        match value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => format!("boolean {b}"),
            Value::Number(n) if n.is_f64() => format!("float {n}"),
            Value::Number(n) => format!("integer {n}"),
            Value::String(s) => format!("string {}", short(&Value::String(s.clone()).to_string())),
            Value::Array(_) => "an array".to_string(),
            Value::Object(_) => self.a_table().to_string(),
        }
    }

    /// Checks `map` against `schema`: unknown keys, missing required keys and
    /// types. Returns whether this table passed (problems are recorded).
    pub(crate) fn check_table(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        schema: &[FieldSpec],
    ) -> bool {
        let before = self.problems.len();
        for key in map.keys() {
            if !schema.iter().any(|f| f.name == key) {
                let names: Vec<&str> = schema.iter().map(|f| f.name).collect();
                self.report(
                    &join(path, key),
                    format!("unknown field (expected one of: {})", names.join(", ")),
                );
            }
        }
        for spec in schema {
            let field = join(path, spec.name);
            match map.get(spec.name) {
                None if spec.required => self.report(&field, "missing required field"),
                None => {}
                Some(value) => self.check_kind(value, &field, spec.kind),
            }
        }
        self.problems.len() == before
    }

    /// Checks that `value` has the expected kind; records a problem if not.
    pub(crate) fn check_kind(&mut self, value: &Value, path: &str, kind: Kind) {
        let expected = match kind {
            Kind::Any => return,
            Kind::Str if value.is_string() => return,
            Kind::Bool if value.is_boolean() => return,
            Kind::Number if value.is_number() => return,
            Kind::UInt if value.is_u64() => return,
            Kind::Table if value.is_object() => return,
            Kind::StrList => {
                if let Value::Array(items) = value {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_string() {
                            let got = self.describe(item);
                            self.report(
                                &format!("{path}[{i}]"),
                                format!("expected a string, got {got}"),
                            );
                        }
                    }
                    return;
                }
                "an array of strings".to_string()
            }
            Kind::Str => "a string".to_string(),
            Kind::Bool => "a boolean (true or false)".to_string(),
            Kind::Number => "a number".to_string(),
            Kind::UInt => "a non-negative integer".to_string(),
            Kind::Table => self.a_table().to_string(),
        };
        let got = self.describe(value);
        self.report(path, format!("expected {expected}, got {got}"));
    }
}

/// Shortens a rendering to at most 40 characters for messages.
pub(crate) fn short(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: Value, schema: &[FieldSpec]) -> Vec<String> {
        let mut problems = Vec::new();
        let lines = Lines::Fixed(7);
        let mut checker = Checker::new(Path::new("t.jsonl"), &lines, false, &mut problems);
        if let Value::Object(map) = value {
            checker.check_table(&map, "", schema);
        }
        problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn reports_every_wrong_field() {
        let schema = [
            required("id", Kind::Str),
            optional("n", Kind::UInt),
            optional("stop", Kind::StrList),
        ];
        let got = run(json!({"n": -1, "stop": ["a", 3], "x": 1}), &schema);
        assert_eq!(
            got,
            vec![
                "t.jsonl:7: x: unknown field (expected one of: id, n, stop)",
                "t.jsonl:7: id: missing required field",
                "t.jsonl:7: n: expected a non-negative integer, got integer -1",
                "t.jsonl:7: stop[1]: expected a string, got integer 3",
            ]
        );
    }

    #[test]
    fn keyed_lines_fall_back_to_the_parent() {
        let text = "\n\n[defaults]\n\nstop = [\"a\", \"b\", \"c\"]\n";
        let lines = Lines::Keyed(KeyLines::of_toml(text));
        assert_eq!(lines.line("defaults.stop[2]"), Some(5));
        assert_eq!(lines.line("defaults.scorer.kind"), Some(3));
        assert_eq!(lines.line("name"), None);
    }
}
