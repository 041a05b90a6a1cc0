//! Import of MBPP-format benchmarks (Mostly Basic Python Problems, Austin et
//! al. 2021) as a coding suite.
//!
//! An MBPP file is JSONL (plain or gzip), one problem a line: `task_id` (a
//! number, kept as the task id), `text` (the problem statement), `code`
//! (the reference solution), `test_list` (assert statements) and, when
//! present, `test_setup_code` (run before the solution and the tests).
//! Other fields (`challenge_test_list`, ...) are kept in the task's `meta`.
//! Imported ([`Mbpp`]), it is a suite whose `test` split holds one task per problem,
//! scored by the `code` scorer in its tests style: the setup code and the
//! answer run, then each assert of `test_list` (a task passes when all do),
//! the function under test being the first one the first assert calls that
//! the reference solution defines. The prompt is the benchmark paper's:
//! the statement and the tests, then `[BEGIN]`; generation stops at
//! `[DONE]`.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::Task;
use super::benchmark::{Format, LineError, Manifest, object, read_problems, take_string};
use crate::diagnostics::Problems;

/// The category every imported task gets.
pub const CATEGORY: &str = "mbpp";

/// The prompt template: the benchmark paper's, the task's input being the
/// statement and the tests.
pub const PROMPT: &str =
    "You are an expert Python programmer, and here is your task: {input}[BEGIN]\n";

/// Where the model's code ends, as the benchmark's prompt asks.
pub const STOP: &str = "[DONE]";

/// The default completion budget per problem, in tokens.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// One problem of an MBPP-format file.
#[derive(Debug, Clone, PartialEq)]
pub struct MbppProblem {
    /// `task_id`, as text.
    pub task_id: String,
    /// The problem statement.
    pub text: String,
    /// The reference solution.
    pub code: String,
    /// The assert statements the solution must pass.
    pub test_list: Vec<String>,
    /// Code run before the solution and the tests (often empty).
    pub test_setup_code: String,
    /// The function the tests call: the first function the first test
    /// calls that `code` defines.
    pub entry_point: String,
    /// Any other fields of the line.
    pub extra: Map<String, Value>,
}

/// `def name(` in a solution.
static DEFINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(").expect("static pattern")
});

/// `name(` in a test.
static CALLED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([A-Za-z_]\w*)\s*\(").expect("static pattern"));

fn parse_line(text: &str) -> Result<MbppProblem, LineError> {
    let mut map = object(text)?;
    let task_id = match map.remove("task_id") {
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() && s.trim() == s => s,
        Some(other) => {
            return Err((
                "task_id".into(),
                format!("expected a number or a non-empty string, got {other}"),
            ));
        }
        None => return Err(("task_id".into(), "missing required field".into())),
    };
    let statement = take_string(&mut map, "text")?;
    let code = take_string(&mut map, "code")?;
    let test_list = match map.remove("test_list") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err((
                    format!("test_list[{i}]"),
                    format!("expected a string (an assert statement), got {other}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err((
                "test_list".into(),
                "expected a non-empty list of assert statements".into(),
            ));
        }
        None => return Err(("test_list".into(), "missing required field".into())),
    };
    let test_setup_code = match map.remove("test_setup_code") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err((
                "test_setup_code".into(),
                format!("expected a string, got {other}"),
            ));
        }
    };
    let entry_point = entry_point(&code, &test_list[0]).ok_or_else(|| {
        (
            "test_list[0]".to_string(),
            "calls no function that `code` defines (the function under test is the first \
             such call)"
                .to_string(),
        )
    })?;
    Ok(MbppProblem {
        task_id,
        text: statement,
        code,
        test_list,
        test_setup_code,
        entry_point,
        extra: map,
    })
}

/// The first function `test` calls that `code` defines.
fn entry_point(code: &str, test: &str) -> Option<String> {
    let defined: Vec<&str> = DEFINED
        .captures_iter(code)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    CALLED
        .captures_iter(test)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .find(|name| defined.contains(name))
        .map(str::to_string)
}

/// The task's input: the statement and its tests, as the benchmark's
/// prompt gives them.
fn input(problem: &MbppProblem) -> String {
    format!(
        "{} Your code should pass these tests:\n\n{}\n",
        problem.text.trim(),
        problem.test_list.join("\n")
    )
}

/// The suite task for one problem.
pub fn to_task(problem: &MbppProblem) -> Task {
    Task {
        id: problem.task_id.clone(),
        category: CATEGORY.to_string(),
        input: input(problem),
        target: json!({
            "entry_point": problem.entry_point,
            "setup": problem.test_setup_code,
            "tests": problem.test_list,
            "solution": problem.code,
        }),
        scorer: None,
        meta: problem.extra.clone(),
    }
}

/// The MBPP format, for [`super::benchmark::import`].
pub struct Mbpp;

impl Format for Mbpp {
    type Problem = MbppProblem;

    const MANIFEST: Manifest = Manifest {
        command: "import-mbpp",
        benchmark: "MBPP",
        rule: "after test_setup_code and the answer, every assert of test_list must pass.",
        prompt: PROMPT,
        stop: &[STOP],
        category: CATEGORY,
    };

    fn read_lines(path: &Path) -> Result<Vec<(MbppProblem, usize)>, Problems> {
        read_problems(path, "task_id", |p: &MbppProblem| &p.task_id, parse_line)
    }

    fn to_task(problem: &MbppProblem) -> Task {
        to_task(problem)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const GOOD: &str = r#"{"text": "Write a function to add two numbers.", "code": "def helper(x):\r\n    return x\r\ndef add_two(a, b):\r\n    return helper(a) + b", "task_id": 901, "test_setup_code": "", "test_list": ["assert add_two(1, 2) == 3", "assert add_two(-1, 1) == 0"], "challenge_test_list": []}"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("mbpp.jsonl");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
        (dir, path)
    }

    #[test]
    fn reads_problems_finds_the_function_under_test_and_keeps_extra_fields() {
        let (_dir, path) = write(&format!("{GOOD}\n"));
        let problems = Mbpp::read(&path).unwrap_or_default();
        assert_eq!(problems.len(), 1);
        let p = &problems[0];
        assert_eq!(p.task_id, "901");
        // `helper` is defined first, but the tests call `add_two`.
        assert_eq!(p.entry_point, "add_two");
        assert_eq!(p.extra.get("challenge_test_list"), Some(&json!([])));
        let task = to_task(p);
        assert_eq!(task.category, "mbpp");
        assert_eq!(task.target["tests"][1], json!("assert add_two(-1, 1) == 0"));
        assert!(
            task.input
                .starts_with("Write a function to add two numbers. Your code")
        );
        assert!(task.input.ends_with("assert add_two(-1, 1) == 0\n"));
    }

    #[test]
    fn bad_lines_are_reported_with_line_and_field() {
        let no_tests = GOOD
            .replace(
                "\"test_list\": [\"assert add_two(1, 2) == 3\", \"assert add_two(-1, 1) == 0\"]",
                "\"test_list\": []",
            )
            .replace("901", "902");
        let undefined = GOOD
            .replace("assert add_two(1, 2)", "assert sub_two(1, 2)")
            .replace("901", "903");
        let float_id = GOOD.replace("901", "9.5");
        let no_code = GOOD.replace("\"code\"", "\"kode\"").replace("901", "904");
        let text =
            format!("{GOOD}\n{GOOD}\n{no_tests}\n{undefined}\n\n{float_id}\n{no_code}\n[1]\n");
        let (_dir, path) = write(&text);
        let Err(problems) = Mbpp::read(&path) else {
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
                (Some(3), Some("test_list".to_string())),
                (Some(4), Some("test_list[0]".to_string())),
                (Some(6), Some("task_id".to_string())),
                (Some(7), Some("code".to_string())),
                (Some(8), None),
            ],
            "{problems}"
        );
    }
}
