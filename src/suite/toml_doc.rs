//! Parses `suite.toml` into a JSON value plus the line of every key, so the
//! same field checks serve TOML files and JSON task lines.

use std::path::Path;

use serde_json::{Map, Number, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Problem;
use crate::diagnostics::{KeyLines, line_of_offset};
use crate::fields::Lines;

/// A parsed TOML document.
#[derive(Debug)]
pub(crate) struct TomlDoc {
    /// The root table.
    pub(crate) root: Map<String, Value>,
    /// Line of every key (dotted paths, `[i]` for array items).
    pub(crate) lines: Lines,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    line_of_offset(text.as_bytes(), offset)
}

/// Parses `text`; on any syntax or value problem records them all and returns `None`.
pub(crate) fn parse(text: &str, file: &Path, problems: &mut Vec<Problem>) -> Option<TomlDoc> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            problems.push(Problem {
                file: file.to_path_buf(),
                line: error.span().map(|s| line_of(text, s.start)),
                field: None,
                message: format!("invalid TOML: {}", error.message().trim()),
            });
        }
        return None;
    }
    let mut walk = Walk {
        text,
        file,
        problems,
        failed: false,
    };
    let root = walk.table(table.get_ref(), "");
    if walk.failed {
        return None;
    }
    Some(TomlDoc {
        root,
        lines: Lines::Keyed(KeyLines::of_toml(text)),
    })
}

struct Walk<'a> {
    text: &'a str,
    file: &'a Path,
    problems: &'a mut Vec<Problem>,
    failed: bool,
}

impl Walk<'_> {
    fn table(&mut self, table: &DeTable<'_>, path: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let child = crate::fields::join(path, name);
            out.insert(name.to_string(), self.value(value, &child));
        }
        out
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, path: &str) -> Value {
        let line = line_of(self.text, value.span().start);
        match value.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::Number(n.into()),
                Err(_) => self.fail(path, line, format!("integer {i} is out of range")),
            },
            DeValue::Float(f) => match f.as_str().parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Value::Number(n),
                None => self.fail(path, line, format!("{f} is not a finite number")),
            },
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            DeValue::Table(table) => Value::Object(self.table(table, path)),
        }
    }

    fn fail(&mut self, path: &str, line: usize, message: String) -> Value {
        self.failed = true;
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line: Some(line),
            field: Some(path.to_string()),
            message,
        });
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_lines() {
        let text = "name = \"x\"\n\n[defaults]\nstop = [\"a\",\n  \"b\"]\n[defaults.scorer]\nkind = \"exact\"\n";
        let mut problems = Vec::new();
        let doc = parse(text, Path::new("s.toml"), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let doc = doc.map(|d| (d.root, d.lines));
        let Some((root, lines)) = doc else {
            panic!("no document")
        };
        assert_eq!(root["defaults"]["scorer"]["kind"], "exact");
        assert_eq!(lines.line("name"), Some(1));
        assert_eq!(lines.line("defaults.stop"), Some(4));
        assert_eq!(lines.line("defaults.stop[1]"), Some(5));
        assert_eq!(lines.line("defaults.scorer.kind"), Some(7));
    }

    #[test]
    fn syntax_and_value_errors_have_lines() {
        let mut problems = Vec::new();
        assert!(parse("a = 1\nb = \n", Path::new("s.toml"), &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.starts_with("invalid TOML"));

        let mut problems = Vec::new();
        assert!(parse("a = 1\nb = nan\n", Path::new("s.toml"), &mut problems).is_none());
        assert_eq!(
            problems[0].to_string(),
            "s.toml:2: b: nan is not a finite number"
        );
    }
}
