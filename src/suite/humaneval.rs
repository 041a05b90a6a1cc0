//! Import of HumanEval-format benchmarks as a coding suite.
//!
//! A HumanEval file is JSONL (plain, or gzip-compressed as the benchmark
//! ships it: `HumanEval.jsonl.gz`), one problem a line, with the string fields
//! `task_id`, `prompt` (imports, signature and docstring), `canonical_solution`
//! (the body that completes the prompt), `test` (code defining
//! `check(candidate)`) and `entry_point` (the function's name). Other fields
//! are kept in the task's `meta`. Imported ([`HumanEval`]), it is a suite whose
//! `test` split holds one task per problem, scored by the `code` scorer in
//! its HumanEval style: the program
//! `prompt + completion + "\n" + test + "\n" + "check(entry_point)"` must run to completion, exactly as the benchmark's
//! own harness defines it. The suite's prompt is the problem's prompt as is
//! (a completion-style benchmark) and generation stops at HumanEval's stop
//! sequences.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::Task;
use super::benchmark::{
    Format, LineError, Manifest, is_identifier, object, read_problems, take_string,
};
use crate::diagnostics::Problems;

/// The category every imported task gets.
pub const CATEGORY: &str = "humaneval";

/// HumanEval's stop sequences for completion-style generation.
pub const STOP: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

/// The default completion budget per problem, in tokens.
pub const DEFAULT_MAX_TOKENS: u32 = 384;

/// One problem of a HumanEval-format file.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanEvalProblem {
    /// `task_id`, kept as the task id.
    pub task_id: String,
    /// The code the model completes.
    pub prompt: String,
    /// The reference completion.
    pub canonical_solution: String,
    /// Code defining `check(candidate)`.
    pub test: String,
    /// The function under test.
    pub entry_point: String,
    /// Any other fields of the line.
    pub extra: Map<String, Value>,
}

fn parse_line(text: &str) -> Result<HumanEvalProblem, LineError> {
    let mut map = object(text)?;
    let task_id = take_string(&mut map, "task_id")?;
    let prompt = take_string(&mut map, "prompt")?;
    let canonical_solution = take_string(&mut map, "canonical_solution")?;
    let test = take_string(&mut map, "test")?;
    let entry_point = take_string(&mut map, "entry_point")?;
    if task_id.trim().is_empty() || task_id.trim() != task_id {
        return Err((
            "task_id".into(),
            format!("{task_id:?} is empty or has surrounding whitespace"),
        ));
    }
    if !is_identifier(&entry_point) {
        return Err((
            "entry_point".into(),
            format!("{entry_point:?} is not a Python identifier"),
        ));
    }
    if !test.contains("def check(") {
        return Err(("test".into(), "does not define check(candidate)".into()));
    }
    Ok(HumanEvalProblem {
        task_id,
        prompt,
        canonical_solution,
        test,
        entry_point,
        extra: map,
    })
}

/// The suite task for one problem.
pub fn to_task(problem: &HumanEvalProblem) -> Task {
    Task {
        id: problem.task_id.clone(),
        category: CATEGORY.to_string(),
        input: problem.prompt.clone(),
        target: json!({
            "entry_point": problem.entry_point,
            "prompt": problem.prompt,
            "test": problem.test,
            "solution": problem.canonical_solution,
        }),
        scorer: None,
        meta: problem.extra.clone(),
    }
}

/// The HumanEval format, for [`super::benchmark::import`].
pub struct HumanEval;

impl Format for HumanEval {
    type Problem = HumanEvalProblem;

    const MANIFEST: Manifest = Manifest {
        command: "import-humaneval",
        benchmark: "HumanEval",
        rule: "prompt + completion + test + check(entry_point) must run without error.",
        prompt: "{input}",
        stop: &STOP,
        category: CATEGORY,
    };

    fn read_lines(path: &Path) -> Result<Vec<(HumanEvalProblem, usize)>, Problems> {
        read_problems(
            path,
            "task_id",
            |p: &HumanEvalProblem| &p.task_id,
            parse_line,
        )
    }

    fn to_task(problem: &HumanEvalProblem) -> Task {
        to_task(problem)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const GOOD: &str = r#"{"task_id": "HumanEval/0", "prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "canonical_solution": "    return a + b\n", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"}"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("he.jsonl");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
        (dir, path)
    }

    #[test]
    fn reads_problems_and_keeps_extra_fields() {
        let extra = GOOD.replace("\"entry_point\"", "\"difficulty\": 2, \"entry_point\"");
        let (_dir, path) = write(&format!(
            "{GOOD}\n{}\n",
            extra.replace("HumanEval/0", "HumanEval/1")
        ));
        let problems = HumanEval::read(&path).unwrap_or_default();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].entry_point, "add");
        assert_eq!(problems[1].extra.get("difficulty"), Some(&json!(2)));
        let task = to_task(&problems[0]);
        assert_eq!(task.category, "humaneval");
        assert_eq!(task.target["solution"], json!("    return a + b\n"));
    }

    #[test]
    fn bad_lines_are_reported_with_line_and_field() {
        let missing = GOOD.replace("\"entry_point\": \"add\"", "\"x\": 1");
        let not_ident = GOOD
            .replace("\"add\"}", "\"a b\"}")
            .replace("HumanEval/0", "HumanEval/9");
        let no_check = GOOD
            .replace("def check(", "def verify(")
            .replace("HumanEval/0", "HumanEval/8");
        let text = format!("{GOOD}\n{GOOD}\n{missing}\nnot json\n{not_ident}\n{no_check}\n");
        let (_dir, path) = write(&text);
        let Err(problems) = HumanEval::read(&path) else {
            panic!("bad file accepted");
        };
        let got: Vec<(Option<usize>, Option<String>)> = problems
            .0
            .iter()
            .map(|p| (p.line, p.field.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(2), Some("task_id".to_string())),
                (Some(3), Some("entry_point".to_string())),
                (Some(4), None),
                (Some(5), Some("entry_point".to_string())),
                (Some(6), Some("test".to_string())),
            ],
            "{problems}"
        );
    }

    #[test]
    fn import_refuses_to_overwrite() {
        let (dir, path) = write(&format!("{GOOD}\n"));
        let out = dir.path().join("suite");
        let import = crate::suite::benchmark::import::<HumanEval>;
        let first = import(&path, &out, "he", 256);
        assert_eq!(first.as_ref().map(|i| i.tasks).ok(), Some(1));
        assert!(import(&path, &out, "he", 256).is_err());
    }
}
