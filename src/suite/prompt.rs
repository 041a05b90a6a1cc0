//! Prompt building: the task's template filled in, with few-shot examples
//! drawn deterministically from the train split.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::template::{render, slots};
use super::{Suite, Task};
use crate::score::plain_text;

/// Separator between few-shot examples, and between the block and the query.
const EXAMPLE_SEPARATOR: &str = "\n\n";

/// The few-shot examples for `task`, in prompt order.
///
/// The pool is the suite's train split only (never another split), limited
/// to tasks of the same category, and never the task itself (same id) or a
/// train task with the same input. The pool is ordered by the SHA-256 of
/// `suite name + "\0" + task id`, and the first `few_shot` are taken: the
/// choice does not depend on file order or on the task being prompted, so
/// every task of a category gets the same examples (a shared prompt prefix,
/// which provider prompt caches reward). A train task prompted itself gets
/// the next example instead of itself. If the pool is smaller than
/// `few_shot` (only possible for train tasks; loading checks the rest),
/// all of it is used.
pub fn few_shot_examples<'a>(suite: &'a Suite, task: &Task) -> Vec<&'a Task> {
    examples_of(suite, task, suite.few_shot(task))
}

/// The first `wanted` examples of [`few_shot_examples`]' order.
fn examples_of<'a>(suite: &'a Suite, task: &Task, wanted: usize) -> Vec<&'a Task> {
    if wanted == 0 {
        return Vec::new();
    }
    let mut pool: Vec<([u8; 32], &Task)> = suite
        .train()
        .iter()
        .filter(|t| t.category == task.category && t.id != task.id && t.input != task.input)
        .map(|t| (rank(&suite.config.name, &t.id), t))
        .collect();
    pool.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    pool.into_iter().take(wanted).map(|(_, t)| t).collect()
}

fn rank(suite: &str, id: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(suite.as_bytes());
    hasher.update([0]);
    hasher.update(id.as_bytes());
    hasher.finalize().into()
}

/// The text of a task field for a template placeholder; `target` only when
/// `target` is given (example templates).
fn field(task: &Task, name: &str, target: Option<&str>) -> Option<String> {
    match name {
        "input" => Some(task.input.clone()),
        "id" => Some(task.id.clone()),
        "category" => Some(task.category.clone()),
        "target" => target.map(str::to_string),
        "options" => Some(options_text(task)),
        _ => {
            let key = name.strip_prefix("meta.")?;
            Some(task.meta.get(key).map(plain_text).unwrap_or_default())
        }
    }
}

/// `meta.options` as lettered lines: `A. London\nB. Paris`.
fn options_text(task: &Task) -> String {
    let Some(Value::Array(items)) = task.meta.get("options") else {
        return String::new();
    };
    items
        .iter()
        .zip('A'..='Z')
        .map(|(item, letter)| format!("{letter}. {}", plain_text(item)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The full prompt for `task`: its template (category override, else
/// `[defaults]`, else `{input}`) with placeholders filled, and the few-shot
/// block from [`few_shot_examples`], each example rendered with the example
/// template and followed by a blank line. The block replaces `{examples}`
/// when the prompt has it and is put before the prompt otherwise.
/// Deterministic: the same suite and task always give the same text.
///
/// Placeholders: `{input}`, `{id}`, `{category}`, `{options}`,
/// `{meta.KEY}` (strings as they are, other JSON compact), `{examples}`
/// (prompt only) and `{target}` (example only, written as the scorer would
/// expect the answer, e.g. the letter for a choice index). `{{` and `}}` are
/// literal braces; other braces are literal when they do not enclose a
/// placeholder name.
///
/// The chat template is not applied here: [`Suite::generation_settings`]
/// carries the `chat` flag and the model backend wraps the prompt.
pub fn build_prompt(suite: &Suite, task: &Task) -> String {
    build_prompt_with(suite, task, None)
}

/// [`build_prompt`] with `few_shot` examples instead of the category's
/// own number when it is given (a model asked with its own template: a
/// student trained on a task needs no examples, `Some(0)`).
pub fn build_prompt_with(suite: &Suite, task: &Task, few_shot: Option<usize>) -> String {
    let examples = examples_of(
        suite,
        task,
        few_shot.unwrap_or_else(|| suite.few_shot(task)),
    );
    let mut block = String::new();
    if !examples.is_empty() {
        let template = suite
            .setting(task, |d| d.example.as_deref())
            .unwrap_or("{input}\n{target}");
        for example in examples {
            let target = target_text(suite, example);
            block.push_str(&render(template, |name| {
                field(example, name, Some(&target))
            }));
            block.push_str(EXAMPLE_SEPARATOR);
        }
    }
    let template = suite.prompt_template(task);
    let body = render(template, |name| match name {
        "examples" => Some(block.clone()),
        _ => field(task, name, None),
    });
    if slots(template).contains(&"examples") {
        body
    } else {
        block + &body
    }
}

/// An example's target written as an answer, by its scorer.
fn target_text(suite: &Suite, task: &Task) -> String {
    match suite.scorer_for(task).map(|spec| spec.build()) {
        Some(Ok(scorer)) => scorer.target_text(&task.target),
        _ => plain_text(&task.target),
    }
}
