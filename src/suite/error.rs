//! Load errors that a suite author can act on: every problem names the file,
//! the line (when there is one) and the field.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::diagnostics::Problem;

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
