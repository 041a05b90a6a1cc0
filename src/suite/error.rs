//! Load errors that a suite author can act on: every problem names the file,
//! the line (when there is one) and the field.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One thing wrong with a suite, located as precisely as the format allows.
///
/// Displays as `file:line: field: message`; the line and the field are left
/// out when the problem concerns the whole file (`suites/x/test.jsonl: split
/// has no tasks`) or a whole line (`suites/x/test.jsonl:3: malformed JSON: ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file the problem is in (the suite directory joined with the file name).
    pub file: PathBuf,
    /// 1-based line number, when the problem has one.
    pub line: Option<usize>,
    /// Dotted path of the field (`id`, `scorer.abs_tol`, `defaults.prompt`), when there is one.
    pub field: Option<String>,
    /// What is wrong, in words a suite author can act on.
    pub message: String,
}

impl Problem {
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

/// Every problem found while loading a suite (all of them, not only the
/// first). Displays one problem per line, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct SuiteError {
    /// The problems, in the order they were found (suite.toml first, then the
    /// split files in name order, each top to bottom).
    pub problems: Vec<Problem>,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
