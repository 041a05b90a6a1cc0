//! Problems in user files, reported as `file:line: field: message`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in one place of a user's file.
///
/// Displays as `file:line: field: message`; the line and the field are left
/// out when the problem concerns the whole file or a whole line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number, when the problem has one.
    pub line: Option<usize>,
    /// Dotted path of the field (`id`, `scorer.abs_tol`), when there is one.
    pub field: Option<String>,
    /// What is wrong, in words the file's author can act on.
    pub message: String,
}

impl Problem {
    /// Builds a problem; line 0 and an empty field mean "none".
    pub fn new(
        file: &Path,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let field = field.into();
        Self {
            file: file.to_path_buf(),
            line: (line > 0).then_some(line),
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    /// A problem with the whole file (unreadable, empty, missing).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a set of files, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// A single problem.
    pub fn one(p: Problem) -> Self {
        Self(vec![p])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of_offset(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The line of every key of a TOML document by dotted path (`run.seed`,
/// `students[1].path`, `gate.overrides[0].student`, `defaults.stop[1]`),
/// so that a problem found after parsing points at the key itself.
///
/// An element of an array is at the line its value starts on; an element
/// of an array of tables (`[[students]]`) at its header's line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// The lines of the keys of `text`; empty when it is not valid TOML.
    pub fn of_toml(text: &str) -> Self {
        let mut lines = KeyLines::default();
        if let Ok(table) = DeTable::parse(text) {
            lines.table(text.as_bytes(), table.get_ref(), "");
        }
        lines
    }

    /// Line of `path`, else of its nearest enclosing key that has one
    /// (`gate.min_retention` falls back to `gate`); `None` when neither is
    /// in the document.
    pub fn get(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// [`get`](Self::get), with 0 (no line) when there is none.
    pub fn line(&self, path: &str) -> usize {
        self.get(path).unwrap_or(0)
    }

    fn table(&mut self, text: &[u8], table: &DeTable<'_>, path: &str) {
        for (key, value) in table.iter() {
            let child = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            self.0
                .insert(child.clone(), line_of_offset(text, key.span().start));
            self.value(text, value, &child);
        }
    }

    fn value(&mut self, text: &[u8], value: &Spanned<DeValue<'_>>, path: &str) {
        match value.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.0
                        .insert(child.clone(), line_of_offset(text, item.span().start));
                    self.value(text, item, &child);
                }
            }
            DeValue::Table(table) => self.table(text, table, path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_of_tables_arrays_and_inline_tables() {
        let text = "top = 1\n\n[run]\nseed = 2\n\n[[students]]\nname = \"a\"\ngate = { min_retention = 0.9 }\n\n[[students]]\nname = \"b\"\nstop = [\n  \"x\",\n  \"y\",\n]\n";
        let lines = KeyLines::of_toml(text);
        assert_eq!(lines.get("top"), Some(1));
        assert_eq!(lines.get("run"), Some(3));
        assert_eq!(lines.get("run.seed"), Some(4));
        assert_eq!(lines.get("run.output_dir"), Some(3));
        assert_eq!(lines.get("students[0]"), Some(6));
        assert_eq!(lines.get("students[0].gate.min_retention"), Some(8));
        assert_eq!(lines.get("students[1]"), Some(10));
        assert_eq!(lines.get("students[1].path"), Some(10));
        assert_eq!(lines.get("students[1].stop"), Some(12));
        assert_eq!(lines.get("students[1].stop[1]"), Some(14));
        assert_eq!(lines.get("suites[0].path"), None);
        assert_eq!(lines.line("suites[0].path"), 0);
        assert_eq!(KeyLines::of_toml("a = ").get("a"), None);
    }
}
