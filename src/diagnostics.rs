//! Problems in user files, reported as `file:line: field: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
