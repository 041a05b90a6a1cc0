//! Task suites: a directory with `suite.toml` and one JSONL file per split.
//!
//! ```text
//! suites/routing/
//!   suite.toml     name, version, description, [defaults], [categories.<name>]
//!   train.jsonl    few-shot pool (never evaluated against test items)
//!   test.jsonl     the items a gate is decided on
//! ```
//!
//! Every `*.jsonl` file in the directory is a split named after the file.
//! `suite.toml`:
//!
//! ```toml
//! name = "routing"            # letters, digits, '.', '_' and '-'
//! version = "1.0"             # a string
//! description = "..."         # optional
//!
//! [defaults]                  # all optional
//! prompt = "Question: {input}\nAnswer:"   # default "{input}"
//! example = "Question: {input}\nAnswer: {target}"  # needed when few_shot > 0
//! few_shot = 2                # examples from the train split (default 0)
//! max_tokens = 128            # default 256
//! stop = ["\n\n"]             # default none
//! chat = false                # wrap in the model's chat template
//! scorer = { kind = "numeric", abs_tol = 0.01 }
//! extract = "last_number"     # default: the scorer's own default; a
//!                             # category with its own scorer does not inherit it
//!
//! [categories.packing]        # overrides any of the [defaults] keys
//! scorer = { kind = "json" }
//! ```
//!
//! A task line: `{"id": "r-1", "category": "packing", "input": "...",
//! "target": ..., "scorer": {...}, "meta": {...}}` (`scorer` and `meta`
//! optional; any other field is an error). Task ids are unique across all
//! splits of a suite. When `suite.toml` declares categories, every task's
//! category must be one of them; with no `[categories]` any category is
//! allowed.
//!
//! Templates (see the `{name}` rules in [`build_prompt`]) can use `{input}`,
//! `{id}`, `{category}`, `{options}` (the lettered `meta.options`, one per
//! line: `A. London`) and `{meta.KEY}`; the prompt can place the few-shot
//! block with `{examples}` (otherwise it goes first); the example template
//! can use `{target}`.

pub mod benchmark;
pub mod error;
pub mod humaneval;
pub mod list;
pub mod load;
pub mod mbpp;
pub mod prompt;
mod template;
mod toml_doc;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::GenerationSettings;
use crate::score::{Extract, Score, ScorerSpec};

pub use error::{Problem, SuiteError};
pub use list::{SplitSummary, SuiteListing, SuiteSummary, list_suites};
pub use load::{LoadOptions, MAX_LINE_BYTES, load_suite, load_suite_with};
pub use prompt::{build_prompt, build_prompt_with, few_shot_examples};

/// The prompt template used when neither the category nor `[defaults]` sets one.
pub const DEFAULT_PROMPT: &str = "{input}";

/// `max_tokens` when neither the category nor `[defaults]` sets it.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// The name of the split few-shot examples are drawn from.
pub const TRAIN_SPLIT: &str = "train";

/// The contents of `suite.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// Suite name (letters, digits, `.`, `_`, `-`); used in journals and reports.
    pub name: String,
    /// Suite version, as a string (`"1.0"`).
    pub version: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Settings for every task.
    #[serde(default)]
    pub defaults: TaskDefaults,
    /// Per-category overrides of [`SuiteConfig::defaults`].
    #[serde(default)]
    pub categories: BTreeMap<String, TaskDefaults>,
}

/// Prompt, generation and scoring settings: the `[defaults]` table, and each
/// `[categories.<name>]` table (where a set key overrides `[defaults]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefaults {
    /// Prompt template (default [`DEFAULT_PROMPT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Template of one few-shot example (required when `few_shot > 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// Number of few-shot examples from the train split (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub few_shot: Option<usize>,
    /// Maximum new tokens (default [`DEFAULT_MAX_TOKENS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Stop sequences (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Wrap the prompt in the model's chat template (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<bool>,
    /// How answers are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<ScorerSpec>,
    /// How the answer is pulled out of the output (default: the scorer's
    /// default). A category that sets its own `scorer` does not inherit the
    /// `[defaults]` step (see [`Suite::extract_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<Extract>,
}

/// One task: a line of a split file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Identifier, unique within the suite.
    pub id: String,
    /// Category (selects `[categories.<name>]` overrides and the few-shot pool).
    pub category: String,
    /// The question, substituted for `{input}`.
    pub input: String,
    /// The expected answer; its shape depends on the scorer.
    pub target: Value,
    /// Scorer for this task only, overriding the category and the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<ScorerSpec>,
    /// Free-form data for templates and scorers (e.g. `options` for choice).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

impl crate::score::Expected for Task {
    fn target(&self) -> &Value {
        &self.target
    }
    fn meta(&self) -> &Map<String, Value> {
        &self.meta
    }
}

/// One split file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Split name (the file name without `.jsonl`).
    pub name: String,
    /// Tasks in file order.
    pub tasks: Vec<Task>,
}

impl Split {
    /// The categories of its tasks, in order of first appearance.
    pub fn categories(&self) -> Vec<&str> {
        categories_of(&self.tasks)
    }
}

/// The categories of `tasks`, in order of first appearance.
pub fn categories_of<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Vec<&'a str> {
    let mut found: Vec<&str> = Vec::new();
    for t in tasks {
        if !found.contains(&t.category.as_str()) {
            found.push(&t.category);
        }
    }
    found
}

/// A loaded, validated suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    /// The suite directory.
    pub dir: PathBuf,
    /// `suite.toml`.
    pub config: SuiteConfig,
    /// Splits in name order.
    pub splits: Vec<Split>,
}

impl Suite {
    /// The split called `name`.
    pub fn split(&self, name: &str) -> Option<&Split> {
        self.splits.iter().find(|s| s.name == name)
    }

    /// The few-shot pool: the train split's tasks (empty without a train split).
    pub fn train(&self) -> &[Task] {
        self.split(TRAIN_SPLIT).map_or(&[], |s| s.tasks.as_slice())
    }

    /// A setting for `task`: its category's override, else `[defaults]`.
    fn setting<'a, T: ?Sized>(
        &'a self,
        task: &Task,
        get: impl Fn(&'a TaskDefaults) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.config.setting(&task.category, get)
    }

    /// The prompt template for `task`.
    pub fn prompt_template(&self, task: &Task) -> &str {
        self.setting(task, |d| d.prompt.as_deref())
            .unwrap_or(DEFAULT_PROMPT)
    }

    /// Number of few-shot examples for `task`.
    pub fn few_shot(&self, task: &Task) -> usize {
        self.setting(task, |d| d.few_shot.as_ref())
            .copied()
            .unwrap_or(0)
    }

    /// Generation settings for `task` (max_tokens, stop and chat from the
    /// category or the defaults; sampling settings at their defaults: greedy).
    pub fn generation_settings(&self, task: &Task) -> GenerationSettings {
        GenerationSettings {
            max_tokens: self
                .setting(task, |d| d.max_tokens.as_ref())
                .copied()
                .unwrap_or(DEFAULT_MAX_TOKENS),
            stop: self
                .setting(task, |d| d.stop.as_ref())
                .cloned()
                .unwrap_or_default(),
            chat: self
                .setting(task, |d| d.chat.as_ref())
                .copied()
                .unwrap_or(false),
            ..GenerationSettings::default()
        }
    }

    /// The scorer for `task`: its own, else its category's, else the
    /// default. Always present for tasks of a loaded suite.
    pub fn scorer_for<'a>(&'a self, task: &'a Task) -> Option<&'a ScorerSpec> {
        task.scorer
            .as_ref()
            .or_else(|| self.setting(task, |d| d.scorer.as_ref()))
    }

    /// The extraction step for `task`. A step goes with the scorer it is
    /// declared next to: a task with its own scorer uses that scorer's
    /// default step ([`ScorerSpec::default_extract`]); otherwise the
    /// category's `extract`, else (only when the category does not set its
    /// own `scorer`) the `[defaults]` one, else the scorer's default.
    pub fn extract_for(&self, task: &Task) -> Extract {
        if let Some(spec) = &task.scorer {
            return spec.default_extract();
        }
        let declared = match self.config.categories.get(&task.category) {
            Some(category) if category.extract.is_some() => category.extract.as_ref(),
            Some(category) if category.scorer.is_some() => None,
            _ => self.config.defaults.extract.as_ref(),
        };
        match declared {
            Some(step) => step.clone(),
            None => self
                .scorer_for(task)
                .map_or(Extract::None, ScorerSpec::default_extract),
        }
    }

    /// Scores a model's output for `task` with the task's scorer and extraction step.
    pub fn score(&self, task: &Task, completion: &str) -> Score {
        match self.scorer_for(task) {
            Some(spec) => crate::score::score(spec, &self.extract_for(task), task, completion),
            None => Score::zero(format!("no scorer configured for task {:?}", task.id)),
        }
    }
}

impl SuiteConfig {
    /// A setting for a category: its override, else `[defaults]`.
    fn setting<'a, T: ?Sized>(
        &'a self,
        category: &str,
        get: impl Fn(&'a TaskDefaults) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.categories
            .get(category)
            .and_then(&get)
            .or_else(|| get(&self.defaults))
    }
}
