//! Planning a run: the config's suites loaded and every (task, request)
//! built, before any model is asked anything.

use std::path::PathBuf;

use crate::config::GateConfig;
use crate::diagnostics::{Problem, Problems};
use crate::model::GenerationRequest;
use crate::suite::{self, Suite, Task};

/// One suite of the run with the requests every model will be asked.
#[derive(Debug, Clone)]
pub struct PlannedSuite {
    /// Position in the config's `[[suites]]`.
    pub index: usize,
    /// The loaded suite.
    pub suite: Suite,
    /// The split evaluated.
    pub split: String,
    /// The split's file, for messages.
    pub file: PathBuf,
    /// Tasks evaluated (after `limit`), in file order, with their line numbers.
    pub items: Vec<PlannedItem>,
}

/// One task and the request built for it.
#[derive(Debug, Clone)]
pub struct PlannedItem {
    /// The task.
    pub task: Task,
    /// Its line in the split file.
    pub line: usize,
    /// The request every model is asked (same prompt and settings for all).
    pub request: GenerationRequest,
}

impl PlannedSuite {
    /// The suite's name.
    pub fn name(&self) -> &str {
        &self.suite.config.name
    }
}

/// A validated config with its suites loaded.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config.
    pub config: GateConfig,
    /// Suites in config order.
    pub suites: Vec<PlannedSuite>,
}

impl Plan {
    /// Total (model, task) units of work.
    pub fn total_work(&self) -> usize {
        let items: usize = self.suites.iter().map(|s| s.items.len()).sum();
        items * (1 + self.config.students.len())
    }
}

/// Loads every suite the config names and builds the requests. All problems
/// in all suites are reported together.
pub fn plan(config: GateConfig) -> Result<Plan, Problems> {
    let mut problems = Vec::new();
    let mut suites = Vec::new();
    let mut names = std::collections::BTreeMap::new();
    for (index, sref) in config.suites.iter().enumerate() {
        let loaded = match suite::load_suite(&sref.path) {
            Ok(s) => s,
            Err(e) => {
                problems.extend(e.problems);
                continue;
            }
        };
        let Some(split) = loaded.split(&sref.split) else {
            problems.push(Problem::new(
                &config.path,
                0,
                format!("suites[{index}].split"),
                format!(
                    "suite {} has no split {:?} (it has: {})",
                    sref.path.display(),
                    sref.split,
                    loaded
                        .splits
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        };
        if let Some(first) = names.insert(loaded.config.name.clone(), index) {
            problems.push(Problem::new(
                &config.path,
                0,
                format!("suites[{index}]"),
                format!(
                    "suite {:?} is listed twice (also suites[{first}])",
                    loaded.config.name
                ),
            ));
            continue;
        }
        let file = loaded.dir.join(format!("{}.jsonl", split.name));
        let lines = task_lines(&file);
        let items = select(&split.tasks, sref.limit)
            .into_iter()
            .map(|i| {
                let task = &split.tasks[i];
                PlannedItem {
                    request: GenerationRequest {
                        id: format!("{}/{}", loaded.config.name, task.id),
                        prompt: suite::build_prompt(&loaded, task),
                        settings: loaded.generation_settings(task),
                    },
                    task: task.clone(),
                    line: lines.get(i).copied().unwrap_or(0),
                }
            })
            .collect();
        suites.push(PlannedSuite {
            index,
            file,
            split: sref.split.clone(),
            suite: loaded,
            items,
        });
    }
    for o in &config.gate.overrides {
        if !names.contains_key(&o.suite) && problems.is_empty() {
            problems.push(Problem::new(
                &config.path,
                0,
                "gate.overrides.suite",
                format!("no suite named {:?} in this run", o.suite),
            ));
        }
    }
    if problems.is_empty() {
        Ok(Plan { config, suites })
    } else {
        Err(Problems(problems))
    }
}

/// Line numbers of the tasks of a split file that loaded: the loader reads
/// one task from every non-blank line, in order.
fn task_lines(file: &std::path::Path) -> Vec<usize> {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(file) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .split(b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.ok()?;
            (!line.iter().all(u8::is_ascii_whitespace)).then_some(i + 1)
        })
        .collect()
}

/// The tasks a `limit` selects, as indices in file order: round-robin over
/// the categories (in order of first appearance), so a limited run samples
/// every category even when the file is sorted by category. Without a limit,
/// every task.
pub fn select(tasks: &[Task], limit: Option<usize>) -> Vec<usize> {
    let Some(limit) = limit.filter(|&l| l < tasks.len()) else {
        return (0..tasks.len()).collect();
    };
    let mut order: Vec<&str> = Vec::new();
    let mut by_category: std::collections::HashMap<&str, std::collections::VecDeque<usize>> =
        Default::default();
    for (i, t) in tasks.iter().enumerate() {
        let queue = by_category.entry(t.category.as_str()).or_default();
        if queue.is_empty() && !order.contains(&t.category.as_str()) {
            order.push(t.category.as_str());
        }
        queue.push_back(i);
    }
    let mut picked = Vec::with_capacity(limit);
    while picked.len() < limit {
        for c in &order {
            if picked.len() == limit {
                break;
            }
            if let Some(i) = by_category.get_mut(c).and_then(|q| q.pop_front()) {
                picked.push(i);
            }
        }
    }
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: usize, category: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": format!("t{id}"), "category": category, "input": "x", "target": 1
        }))
        .unwrap()
    }

    #[test]
    fn limit_takes_categories_in_turn_and_keeps_file_order() {
        let tasks: Vec<Task> = (0..9).map(|i| task(i, ["a", "b", "c"][i / 3])).collect();
        // a: 0 1 2, b: 3 4 5, c: 6 7 8 -> round robin a0 b3 c6 a1 b4
        assert_eq!(select(&tasks, Some(5)), vec![0, 1, 3, 4, 6]);
        assert_eq!(select(&tasks, None), (0..9).collect::<Vec<_>>());
        assert_eq!(select(&tasks, Some(20)).len(), 9);
    }

    #[test]
    fn limit_when_a_category_runs_out() {
        let tasks: Vec<Task> = ["a", "b", "b", "b"]
            .iter()
            .enumerate()
            .map(|(i, c)| task(i, c))
            .collect();
        assert_eq!(select(&tasks, Some(3)), vec![0, 1, 2]);
    }
}
