//! An answers file (`kind = "answers"`, [`crate::model::answers`]) checked
//! against the run's plan before any model runs.

use std::collections::HashSet;

use crate::config::ModelSpec;
use crate::diagnostics::Problem;
use crate::model::answers::{AnswersFile, sample_words};
use crate::run::plan::Plan;

/// What keeps the answers `file` from answering `plan` for the model `spec`:
/// every answer to a suite the run does not have, to a task not in the
/// split it evaluates or to a sample it does not draw (unknown, at the
/// answer's line); every item the plan asks `spec` with no answer
/// (missing, at the task's line of its suite file: an answer silently
/// dropped would bias the verdict); and, when `spec` is priced per
/// token or per hour, every answer without the usage or latency its
/// cost needs (a cost is never computed from figures the file does not
/// give).
pub fn problems_for(file: &AnswersFile, plan: &Plan, spec: &ModelSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let per_token = spec.price.input_per_mtok.is_some() || spec.price.output_per_mtok.is_some();
    let per_hour = spec.price.per_hour.is_some();
    let mut given: HashSet<(&str, u32)> = HashSet::new();
    for a in &file.answers {
        let at = |field: &str, message: String| Problem::new(&file.path, a.line, field, message);
        let (suite_name, task_id) = a.value.id.split_once('/').unwrap_or_default();
        let Some(suite) = plan.suites.iter().find(|s| s.name() == suite_name) else {
            let names: Vec<&str> = plan.suites.iter().map(|s| s.name()).collect();
            problems.push(at(
                "id",
                format!(
                    "unknown id {:?}: this run has no suite {suite_name:?} (its suites: {})",
                    a.value.id,
                    names.join(", ")
                ),
            ));
            continue;
        };
        let in_split = suite
            .suite
            .split(&suite.split)
            .is_some_and(|s| s.tasks.iter().any(|t| t.id == task_id));
        if !in_split {
            problems.push(at(
                "id",
                format!(
                    "unknown id {:?}: suite {suite_name:?} has no task {task_id:?} in its \
                     {:?} split ({})",
                    a.value.id,
                    suite.split,
                    suite.file.display()
                ),
            ));
            continue;
        }
        if a.value.sample >= suite.samples {
            problems.push(at(
                "sample",
                format!(
                    "sample {} of {:?}, but the run draws {} answer(s) per item of suite \
                     {suite_name:?} (samples are numbered from 0)",
                    a.value.sample, a.value.id, suite.samples
                ),
            ));
            continue;
        }
        if per_token && a.value.usage.is_none() {
            problems.push(at(
                "usage",
                format!(
                    "model {:?} is priced per token, so every answer needs its usage \
                     (prompt_tokens, completion_tokens)",
                    spec.name
                ),
            ));
        }
        if per_hour && a.value.latency_ms.is_none() {
            problems.push(at(
                "latency_ms",
                format!(
                    "model {:?} is priced per compute hour, so every answer needs its latency",
                    spec.name
                ),
            ));
        }
        given.insert((a.value.id.as_str(), a.value.sample));
    }
    for suite in &plan.suites {
        for item in &suite.items {
            if !spec.takes(suite.name(), &item.task.category) {
                continue;
            }
            let id = format!("{}/{}", suite.name(), item.task.id);
            for sample in 0..suite.samples {
                if given.contains(&(id.as_str(), sample)) {
                    continue;
                }
                problems.push(Problem::new(
                    &suite.file,
                    item.line,
                    "id",
                    format!(
                        "task {:?}{}: no answer with id {id:?} in answers file {} of model {:?}",
                        item.task.id,
                        sample_words(sample),
                        file.path.display(),
                        spec.name
                    ),
                ));
            }
        }
    }
    problems
}
