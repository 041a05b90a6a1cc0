//! Task-specific students: which of the teacher's answers a student learns
//! (by suite and category, train split only) and the prompt it learns them
//! under (its own template, e.g. without few-shot examples).
//!
//! A transcript line's request id is `<suite>/<task id>` (with `#<sample>`
//! for samples after the first). With a selection, every line must answer a
//! task of a named suite's `train` split: a line answering a test task is an
//! error, so a student never learns the items it is gated on.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::data::Pair;
use super::error::DistillError;
use crate::suite::{self, Suite, Task};

/// The split a student may learn from.
pub const TRAIN_SPLIT: &str = "train";

/// What a task-specific student learns (`distill --suite --category
/// --few-shot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSelection {
    /// Suite directories; every pair must answer a task of one of their
    /// train splits.
    pub suites: Vec<PathBuf>,
    /// Only these categories, as `suite/category` or `category` (empty: all).
    pub categories: Vec<String>,
    /// Few-shot examples in the student's prompts, rebuilt from the suite
    /// (`None`: the teacher's prompts as recorded).
    pub few_shot: Option<usize>,
}

/// The pairs a selection keeps, with the count it left out.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// Pairs of the selected categories, prompts as the student is asked.
    pub pairs: Vec<Pair>,
    /// Pairs of other suites or categories.
    pub left_out: usize,
    /// Pairs of the selected categories answering another prompt than the
    /// suite builds for their task now (recorded on an older version of the
    /// suite): the teacher's answer to this prompt is not known.
    pub stale: usize,
}

/// Keeps the pairs of the selected suites and categories that answer the
/// prompt the suite builds for their task now, and rewrites their prompts
/// with the student's template. Errors name the request id and
/// what is wrong (a task outside the train split, an unknown suite or
/// category).
pub fn select(pairs: Vec<Pair>, selection: &TaskSelection) -> Result<Selected, DistillError> {
    let mut suites: BTreeMap<String, Suite> = BTreeMap::new();
    for dir in &selection.suites {
        let loaded = suite::load_suite(dir)?;
        if loaded.split(TRAIN_SPLIT).is_none() {
            return Err(DistillError::option(
                "--suite",
                format!("{} has no {TRAIN_SPLIT} split", dir.display()),
            ));
        }
        suites.insert(loaded.config.name.clone(), loaded);
    }
    for wanted in &selection.categories {
        let known = suites.values().any(|s| {
            s.splits
                .iter()
                .flat_map(|sp| sp.categories())
                .any(|c| c == wanted || format!("{}/{c}", s.config.name) == *wanted)
        });
        if !known {
            return Err(DistillError::option(
                "--category",
                format!(
                    "{wanted:?} is not a category of {}",
                    suites.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let mut out = Selected::default();
    for mut pair in pairs {
        let Some((suite_name, rest)) = pair.request_id.split_once('/') else {
            out.left_out += 1;
            continue;
        };
        let Some(suite) = suites.get(suite_name) else {
            out.left_out += 1;
            continue;
        };
        let task_id = rest.split_once('#').map_or(rest, |(id, _)| id);
        let task = train_task(suite, task_id, &pair.request_id)?;
        let chosen = selection.categories.is_empty()
            || selection
                .categories
                .iter()
                .any(|c| *c == task.category || *c == format!("{suite_name}/{}", task.category));
        if !chosen {
            out.left_out += 1;
            continue;
        }
        if pair.prompt != suite::build_prompt(suite, task) {
            out.stale += 1;
            continue;
        }
        if let Some(n) = selection.few_shot {
            pair.prompt = suite::build_prompt_with(suite, task, Some(n));
        }
        out.pairs.push(pair);
    }
    Ok(out)
}

/// The train task `id` of `suite`; an error when it is in another split
/// (a student never learns test items) or nowhere.
fn train_task<'a>(suite: &'a Suite, id: &str, request_id: &str) -> Result<&'a Task, DistillError> {
    if let Some(t) = suite
        .split(TRAIN_SPLIT)
        .and_then(|s| s.tasks.iter().find(|t| t.id == id))
    {
        return Ok(t);
    }
    let elsewhere = suite
        .splits
        .iter()
        .find(|s| s.tasks.iter().any(|t| t.id == id))
        .map(|s| s.name.clone());
    Err(DistillError::NotTrain {
        request_id: request_id.to_string(),
        message: match elsewhere {
            Some(split) => format!(
                "the transcript answers task {id:?} of the {split} split of suite {:?}: a \
                 student learns only from the {TRAIN_SPLIT} split (the items it is gated on \
                 must stay unseen); record the teacher on --split {TRAIN_SPLIT}",
                suite.config.name
            ),
            None => format!(
                "suite {:?} ({}) has no task {id:?}: the transcript was recorded on another \
                 version of the suite",
                suite.config.name,
                suite.dir.display()
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(request_id: &str) -> Pair {
        let suite = suite::load_suite(logistics()).unwrap();
        let task = request_id.split_once('/').and_then(|(_, id)| {
            suite
                .splits
                .iter()
                .flat_map(|s| &s.tasks)
                .find(|t| t.id == id)
        });
        Pair {
            key: request_id.into(),
            request_id: request_id.into(),
            prompt: task.map_or_else(String::new, |t| suite::build_prompt(&suite, t)),
            chat: false,
            completion: " {}".into(),
            ends: true,
        }
    }

    fn logistics() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites/logistics")
    }

    #[test]
    fn keeps_the_chosen_categories_and_rebuilds_their_prompts() {
        let selection = TaskSelection {
            suites: vec![logistics()],
            categories: vec!["logistics/extraction".into()],
            few_shot: Some(0),
        };
        let mut pairs = vec![
            pair("logistics/extraction-train-0001"),
            pair("logistics/route-train-0001"),
            pair("coding/bug_fix-train-0001"),
        ];
        let mut stale = pair("logistics/extraction-train-0002");
        stale.prompt = "an older version's prompt".into();
        pairs.push(stale);
        let selected = select(pairs, &selection).unwrap();
        assert_eq!(selected.left_out, 2);
        assert_eq!(selected.stale, 1);
        assert_eq!(selected.pairs.len(), 1);
        let prompt = &selected.pairs[0].prompt;
        assert!(prompt.starts_with("Extract origin"), "{prompt}");
        // Zero-shot: one notice, the task's own.
        assert_eq!(prompt.matches("Notice:").count(), 1, "{prompt}");
        assert!(prompt.ends_with("\nJSON:"), "{prompt}");
    }

    #[test]
    fn refuses_a_test_item_and_an_unknown_category() {
        let mut selection = TaskSelection {
            suites: vec![logistics()],
            categories: vec!["extraction".into()],
            few_shot: None,
        };
        let err = select(vec![pair("logistics/extraction-test-0001")], &selection).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("logistics/extraction-test-0001"), "{text}");
        assert!(text.contains("test split"), "{text}");
        selection.categories = vec!["nonsense".into()];
        let err = select(Vec::new(), &selection).unwrap_err();
        assert!(err.to_string().contains("\"nonsense\""), "{err}");
    }
}
