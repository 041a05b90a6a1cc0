//! Listing the suites under a directory, for `distill-gate suites list`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Suite;
use super::error::{Problem, SuiteError};
use super::load::load_suite;

/// How deep [`list_suites`] looks for `suite.toml` below the root.
const MAX_DEPTH: usize = 4;

/// One split of a listed suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Split name.
    pub name: String,
    /// Number of tasks.
    pub tasks: usize,
    /// Number of tasks per category.
    pub categories: BTreeMap<String, usize>,
}

/// What `suites list` shows about a suite that loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteSummary {
    /// Suite name.
    pub name: String,
    /// Suite version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Splits in name order.
    pub splits: Vec<SplitSummary>,
    /// Every category used by a task or declared in `suite.toml`, sorted.
    pub categories: Vec<String>,
}

impl SuiteSummary {
    /// Summarises a loaded suite.
    pub fn of(suite: &Suite) -> Self {
        let splits: Vec<SplitSummary> = suite
            .splits
            .iter()
            .map(|split| {
                let mut categories = BTreeMap::new();
                for task in &split.tasks {
                    *categories.entry(task.category.clone()).or_default() += 1;
                }
                SplitSummary {
                    name: split.name.clone(),
                    tasks: split.tasks.len(),
                    categories,
                }
            })
            .collect();
        let mut categories: Vec<String> = splits
            .iter()
            .flat_map(|s| s.categories.keys().cloned())
            .chain(suite.config.categories.keys().cloned())
            .collect();
        categories.sort();
        categories.dedup();
        Self {
            name: suite.config.name.clone(),
            version: suite.config.version.clone(),
            description: suite.config.description.clone(),
            splits,
            categories,
        }
    }
}

/// A suite directory found by [`list_suites`]: its summary when it loads,
/// its problems when it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteListing {
    /// The directory holding `suite.toml`.
    pub dir: PathBuf,
    /// Summary, when the suite loads.
    pub summary: Option<SuiteSummary>,
    /// Every problem, when it does not.
    pub problems: Vec<Problem>,
}

impl SuiteListing {
    /// Whether the suite does not load.
    pub fn is_broken(&self) -> bool {
        self.summary.is_none()
    }
}

impl fmt::Display for SuiteListing {
    /// The suite as `suites list` shows it: name, version and directory,
    /// description, and a line per split with its categories; or the
    /// directory and every problem, when it does not load.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(s) = &self.summary else {
            writeln!(f, "{} (does not load)", self.dir.display())?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            return Ok(());
        };
        writeln!(f, "{} {} ({})", s.name, s.version, self.dir.display())?;
        if !s.description.is_empty() {
            writeln!(f, "  {}", s.description)?;
        }
        for split in &s.splits {
            let cats: Vec<String> = split
                .categories
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            writeln!(
                f,
                "  {}: {} tasks ({})",
                split.name,
                split.tasks,
                cats.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Every suite under `root` (a directory with a `suite.toml`, `root` itself
/// included, up to four levels down; hidden directories are skipped; a suite's
/// own subdirectories are not searched), sorted by directory. Broken suites are
/// listed with their problems; only an unreadable `root` is an error.
pub fn list_suites(root: impl AsRef<Path>) -> Result<Vec<SuiteListing>, SuiteError> {
    let root = root.as_ref();
    if let Err(e) = std::fs::read_dir(root) {
        return Err(SuiteError {
            problems: vec![Problem::file(root, format!("cannot read directory: {e}"))],
        });
    }
    let mut dirs = Vec::new();
    find_suites(root, 0, &mut dirs);
    dirs.sort();
    Ok(dirs
        .into_iter()
        .map(|dir| match load_suite(&dir) {
            Ok(suite) => SuiteListing {
                dir,
                summary: Some(SuiteSummary::of(&suite)),
                problems: Vec::new(),
            },
            Err(e) => SuiteListing {
                dir,
                summary: None,
                problems: e.problems,
            },
        })
        .collect())
}

fn find_suites(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("suite.toml").is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_dir() {
            find_suites(&path, depth + 1, out);
        }
    }
}
