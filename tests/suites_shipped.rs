//! The suites the product ships (`suites/coding`, `suites/logistics`, written
//! by `suites/generate.py`): they load with the crate's own loader, their
//! splits are disjoint, every category has few-shot examples and test items,
//! and every task's own target, written as a model would answer it, scores
//! 1.0 with the suite's scorer (so every target is scorable).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use distill_gate::score::{Extract, ScorerSpec};
use distill_gate::suite::{Suite, Task, build_prompt, few_shot_examples, load_suite};
use serde_json::Value;

const SHIPPED: [&str; 2] = ["coding", "logistics"];

/// Upper bound on a rendered test prompt, in bytes: a cheap guard that
/// prompts stay short for a small teacher on a CPU. Measured with the
/// SmolLM2-135M tokenizer when the suites were generated: the longest test
/// prompt is 1,132 bytes (function synthesis, 403 tokens); the route tables
/// are the most tokens, 589 (see suites/README.md).
const MAX_PROMPT_BYTES: usize = 1_300;

fn load(name: &str) -> Suite {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("suites")
        .join(name);
    load_suite(&dir).unwrap_or_else(|e| panic!("shipped suite {name} must load:\n{e}"))
}

fn split<'a>(suite: &'a Suite, name: &str) -> &'a [Task] {
    match suite.split(name) {
        Some(split) => &split.tasks,
        None => panic!("suite {} has no {name}.jsonl", suite.config.name),
    }
}

/// The target written as a model would answer it: the JSON text for the json
/// scorer, the letter for choice, the scorer's own rendering for structured
/// targets (a tour, a load plan, a solution), numbers and strings as plain
/// text.
fn answer_text(suite: &Suite, task: &Task) -> String {
    let spec = suite
        .scorer_for(task)
        .unwrap_or_else(|| panic!("{}: no scorer", task.id));
    match (spec, &task.target) {
        (ScorerSpec::Json(_), target) => target.to_string(),
        (ScorerSpec::Route(_) | ScorerSpec::LoadPlan(_) | ScorerSpec::Code(_), target) => spec
            .build()
            .unwrap_or_else(|e| panic!("{}: scorer does not build: {e:?}", task.id))
            .target_text(target),
        (ScorerSpec::Choice(_), Value::Number(n)) => {
            let index = n
                .as_u64()
                .and_then(|i| u8::try_from(i).ok())
                .filter(|&i| i < 26)
                .unwrap_or_else(|| panic!("{}: bad choice index {n}", task.id));
            char::from(b'A' + index).to_string()
        }
        (_, Value::String(s)) => s.clone(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::Bool(b)) => b.to_string(),
        (_, other) => panic!("{}: unexpected target {other}", task.id),
    }
}

/// A code target's solution with whitespace at line ends stripped, if the
/// target is an object with a "solution" string.
fn solution_text(task: &Task) -> Option<String> {
    let solution = task.target.get("solution")?.as_str()?;
    let lines: Vec<&str> = solution
        .trim_matches('\n')
        .lines()
        .map(str::trim_end)
        .collect();
    Some(lines.join("\n"))
}

/// The instance a route or load-planning target was solved for: its
/// `distances`, or its `parcels` with `capacity_kg`.
fn instance(task: &Task) -> Option<String> {
    let target = &task.target;
    match task.category.as_str() {
        "route" => Some(format!("route {}", target.get("distances")?)),
        "load_planning" => Some(format!(
            "load {} {}",
            target.get("capacity_kg")?,
            target.get("parcels")?
        )),
        _ => None,
    }
}

#[test]
fn shipped_suites_load_with_disjoint_nonempty_splits() {
    for name in SHIPPED {
        let suite = load(name);
        assert_eq!(suite.config.name, name);
        let train = split(&suite, "train");
        let test = split(&suite, "test");
        assert!(!train.is_empty(), "{name}: empty train split");
        assert!(!test.is_empty(), "{name}: empty test split");

        let train_ids: HashSet<&str> = train.iter().map(|t| t.id.as_str()).collect();
        let train_inputs: HashSet<&str> = train.iter().map(|t| t.input.as_str()).collect();
        for task in test {
            assert!(
                !train_ids.contains(task.id.as_str()),
                "{name}: test id {} is in train",
                task.id
            );
            assert!(
                !train_inputs.contains(task.input.as_str()),
                "{name}: the input of test task {} also appears in train",
                task.id
            );
        }
        // No test task can be answered from memory of train: the function a
        // test task asks for (to write or to fix) is no train task's
        // solution, and no solver instance is in both splits.
        let train_solutions: HashSet<String> = train.iter().filter_map(solution_text).collect();
        let train_instances: HashSet<String> = train.iter().filter_map(instance).collect();
        for task in test {
            if let Some(solution) = solution_text(task) {
                assert!(
                    !train_solutions.contains(&solution),
                    "{name}: the solution of test task {} is a train solution",
                    task.id
                );
            }
            if let Some(instance) = instance(task) {
                assert!(
                    !train_instances.contains(&instance),
                    "{name}: the instance of test task {} is also in train",
                    task.id
                );
            }
        }
        let test_inputs: HashSet<&str> = test.iter().map(|t| t.input.as_str()).collect();
        assert_eq!(
            test_inputs.len(),
            test.len(),
            "{name}: duplicate inputs within test"
        );

        let declared: BTreeSet<&str> = suite.config.categories.keys().map(String::as_str).collect();
        for (split_name, tasks) in [("train", train), ("test", test)] {
            let present: BTreeSet<&str> = tasks.iter().map(|t| t.category.as_str()).collect();
            assert_eq!(
                present, declared,
                "{name}/{split_name}: categories with tasks"
            );
        }
    }
}

/// Whether scoring this task runs code (slow enough to sample, not sweep).
fn runs_code(suite: &Suite, task: &Task) -> bool {
    matches!(suite.scorer_for(task), Some(ScorerSpec::Code(_)))
}

#[test]
fn every_target_scores_one_when_answered_verbatim() {
    for name in SHIPPED {
        let suite = load(name);
        let mut scored = 0usize;
        // Code targets run in the sandbox: every one of them is checked by
        // suites/verify_targets.py when generated; here the test split's.
        let tasks = suite.splits.iter().flat_map(|s| {
            s.tasks
                .iter()
                .filter(|t| s.name == "test" || !runs_code(&suite, t))
        });
        for task in tasks {
            let answer = answer_text(&suite, task);
            // Bare, and as a completion after "Answer:" (leading space, stop at newline).
            for completion in [answer.clone(), format!(" {answer}")] {
                let score = suite.score(task, &completion);
                assert_eq!(
                    score.value, 1.0,
                    "{name}/{}: answering {completion:?} scored {} ({})",
                    task.id, score.value, score.detail
                );
            }
            scored += 1;
        }
        assert!(scored > 0, "{name}: nothing scored");
    }
}

#[test]
fn wrong_answers_score_below_one() {
    // The other side of the check above: a target does not score 1.0 for the
    // answer of a different task with a different answer (so the scorers are
    // not vacuously lenient on these suites).
    for name in SHIPPED {
        let suite = load(name);
        let test = split(&suite, "test");
        for pair in test.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let answer = answer_text(&suite, b);
            // Two tasks can share a right answer (the same function asked
            // with a different example): only different answers must fail.
            if a.category != b.category || a.target == b.target || answer == answer_text(&suite, a)
            {
                continue;
            }
            let score = suite.score(a, &format!(" {answer}"));
            assert!(
                score.value < 1.0,
                "{name}/{}: the answer of {} scored 1.0 ({})",
                a.id,
                b.id,
                score.detail
            );
        }
    }
}

#[test]
fn test_prompts_carry_train_examples_and_stay_short() {
    for name in SHIPPED {
        let suite = load(name);
        let train_ids: HashSet<&str> = split(&suite, "train")
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        for task in split(&suite, "test") {
            let examples = few_shot_examples(&suite, task);
            assert!(
                suite.few_shot(task) > 0,
                "{name}/{}: no few-shot examples configured",
                task.id
            );
            assert_eq!(examples.len(), suite.few_shot(task), "{name}/{}", task.id);
            for example in &examples {
                assert!(
                    train_ids.contains(example.id.as_str()),
                    "{name}/{}: example {}",
                    task.id,
                    example.id
                );
                assert_eq!(example.category, task.category);
            }
            let prompt = build_prompt(&suite, task);
            assert!(
                prompt.contains(&task.input),
                "{name}/{}: prompt lacks the input",
                task.id
            );
            assert!(
                prompt.len() <= MAX_PROMPT_BYTES,
                "{name}/{}: prompt of {} bytes",
                task.id,
                prompt.len()
            );
            if let Some(ScorerSpec::Exact(_)) = suite.scorer_for(task) {
                // Exact answers are compared on their first line, so a
                // teacher that ignores the stop sequence is not penalised
                // for what follows its answer.
                assert_eq!(
                    suite.extract_for(task),
                    Extract::FirstLine,
                    "{name}/{}",
                    task.id
                );
            }
            let settings = suite.generation_settings(task);
            let stop = if runs_code(&suite, task) { "```" } else { "\n" };
            assert_eq!(settings.stop, vec![stop.to_string()], "{name}/{}", task.id);
            assert!(!settings.chat, "{name}/{}", task.id);
        }
    }
}
