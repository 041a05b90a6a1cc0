//! Import of HumanEval-format benchmarks as a coding suite.
//!
//! A HumanEval file is JSONL (plain, or gzip-compressed as the benchmark
//! ships it: `HumanEval.jsonl.gz`), one problem a line, with the string fields
//! `task_id`, `prompt` (imports, signature and docstring), `canonical_solution`
//! (the body that completes the prompt), `test` (code defining
//! `check(candidate)`) and `entry_point` (the function's name). Other fields
//! are kept in the task's `meta`. [`import`] writes a suite directory whose
//! `test` split holds one task per problem, scored by the `code` scorer in
//! its HumanEval style: the program
//! `prompt + completion + "\n" + test + "\n" + "check(entry_point)"` must run to completion, exactly as the benchmark's
//! own harness defines it. The suite's prompt is the problem's prompt as is
//! (a completion-style benchmark) and generation stops at HumanEval's stop
//! sequences.

use std::fs::File;
use std::io::{BufRead, BufReader};

use flate2::bufread::MultiGzDecoder;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{SuiteError, Task};
use crate::diagnostics::{Problem, Problems};
use crate::jsonl::{MAX_LINE_BYTES, read_bounded_line};

/// The category every imported task gets.
pub const CATEGORY: &str = "humaneval";

/// HumanEval's stop sequences for completion-style generation.
pub const STOP: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

/// Fields every problem line must have, as strings.
const REQUIRED: [&str; 5] = [
    "task_id",
    "prompt",
    "canonical_solution",
    "test",
    "entry_point",
];

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

/// What [`import`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The suite directory.
    pub dir: PathBuf,
    /// Number of problems.
    pub tasks: usize,
    /// SHA-256 of the source file (its first 12 hex digits are the suite version).
    pub source_sha256: String,
}

/// Reads a HumanEval-format JSONL file. Every bad line is reported (file,
/// line, field) and nothing is returned unless all lines are good.
pub fn read(path: &Path) -> Result<Vec<HumanEvalProblem>, Problems> {
    let mut reader = open_text(path)?;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = read_bounded_line(&mut reader, &mut buf).map_err(|e| {
            Problems::one(Problem::new(path, line + 1, "", format!("read error: {e}")))
        })?;
        if n == 0 {
            break;
        }
        line += 1;
        if n > MAX_LINE_BYTES {
            problems.push(Problem::new(
                path,
                line,
                "",
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            problems.push(Problem::new(
                path,
                line,
                "",
                "line is not valid UTF-8 (JSONL text or its gzip file expected)",
            ));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok(problem) => {
                if let Some(first) = found
                    .iter()
                    .position(|(p, _): &(HumanEvalProblem, usize)| p.task_id == problem.task_id)
                {
                    let at = found.get(first).map_or(0, |(_, l)| *l);
                    problems.push(Problem::new(
                        path,
                        line,
                        "task_id",
                        format!(
                            "duplicate task_id {:?} (first at line {at})",
                            problem.task_id
                        ),
                    ));
                } else {
                    found.push((problem, line));
                }
            }
            Err((field, message)) => problems.push(Problem::new(path, line, field, message)),
        }
    }
    if found.is_empty() && problems.is_empty() {
        problems.push(Problem::new(path, 0, "", "no problems in the file"));
    }
    if problems.is_empty() {
        Ok(found.into_iter().map(|(p, _)| p).collect())
    } else {
        Err(Problems(problems))
    }
}

/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file's bytes, decompressed when it is gzip (OpenAI ships HumanEval
/// as `HumanEval.jsonl.gz`): recognised by its first two bytes, whatever
/// the file is called.
fn open_text(path: &Path) -> Result<Box<dyn BufRead>, Problems> {
    let fail =
        |e: std::io::Error| Problems::one(Problem::new(path, 0, "", format!("cannot open: {e}")));
    let mut reader = BufReader::new(File::open(path).map_err(fail)?);
    let gzip = reader.fill_buf().map_err(fail)?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

fn parse_line(text: &str) -> Result<HumanEvalProblem, (String, String)> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| (String::new(), crate::jsonl::line_error(&e)))?;
    let Value::Object(mut map) = value else {
        return Err((String::new(), "expected a JSON object".to_string()));
    };
    let mut take = |field: &str| -> Result<String, (String, String)> {
        match map.remove(field) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err((field.to_string(), format!("expected a string, got {other}"))),
            None => Err((field.to_string(), "missing required field".to_string())),
        }
    };
    let mut values = Vec::with_capacity(REQUIRED.len());
    for field in REQUIRED {
        values.push(take(field)?);
    }
    let [task_id, prompt, canonical_solution, test, entry_point]: [String; 5] =
        values
            .try_into()
            .map_err(|_| (String::new(), "internal: field count".to_string()))?;
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

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
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

#[derive(Serialize)]
struct TaskLine<'a> {
    id: &'a str,
    category: &'a str,
    input: &'a str,
    target: &'a Value,
    #[serde(skip_serializing_if = "Map::is_empty")]
    meta: &'a Map<String, Value>,
}

/// Writes the suite for `source` into `out` (created if needed; an existing
/// `suite.toml` or `test.jsonl` there is refused rather than overwritten).
/// `name` is the suite name; `max_tokens` the completion budget.
pub fn import(
    source: &Path,
    out: &Path,
    name: &str,
    max_tokens: u32,
) -> Result<Imported, Problems> {
    let problems = read(source)?;
    let bytes = std::fs::read(source)
        .map_err(|e| Problems::one(Problem::new(source, 0, "", format!("cannot read: {e}"))))?;
    let sha = format!("{:x}", Sha256::digest(&bytes));
    let io =
        |path: &Path, e: std::io::Error| Problems::one(Problem::new(path, 0, "", e.to_string()));
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let toml_path = out.join("suite.toml");
    let test_path = out.join("test.jsonl");
    for path in [&toml_path, &test_path] {
        if path.exists() {
            return Err(Problems::one(Problem::new(
                path,
                0,
                "",
                "already exists; import into an empty directory",
            )));
        }
    }
    let mut lines = String::new();
    for problem in &problems {
        let task = to_task(problem);
        let line = TaskLine {
            id: &task.id,
            category: &task.category,
            input: &task.input,
            target: &task.target,
            meta: &task.meta,
        };
        let text =
            serde_json::to_string(&line).map_err(|e| io(&test_path, std::io::Error::other(e)))?;
        lines.push_str(&text);
        lines.push('\n');
    }
    let stop: Vec<String> = STOP.iter().map(|s| toml_basic_string(s)).collect();
    let manifest = format!(
        "# Imported by `distill-gate suites import-humaneval` from {source}\n\
         # (sha256 {sha}); {count} problems. Scored as HumanEval defines:\n\
         # prompt + completion + test + check(entry_point) must run without error.\n\
         name = {name}\n\
         version = {version}\n\
         description = {description}\n\
         \n\
         [defaults]\n\
         chat = false\n\
         prompt = \"{{input}}\"\n\
         max_tokens = {max_tokens}\n\
         stop = [{stop}]\n\
         scorer = {{ kind = \"code\" }}\n\
         \n\
         [categories.{CATEGORY}]\n",
        source = source.display(),
        count = problems.len(),
        name = toml_basic_string(name),
        version = toml_basic_string(&sha[..12]),
        description = toml_basic_string(&format!(
            "HumanEval-format problems imported from {}",
            source.file_name().map_or_else(
                || source.display().to_string(),
                |f| f.to_string_lossy().into_owned()
            )
        )),
        stop = stop.join(", "),
    );
    std::fs::write(&test_path, lines).map_err(|e| io(&test_path, e))?;
    std::fs::write(&toml_path, manifest).map_err(|e| io(&toml_path, e))?;
    Ok(Imported {
        dir: out.to_path_buf(),
        tasks: problems.len(),
        source_sha256: sha,
    })
}

/// What running an imported suite's canonical solutions found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Problems checked.
    pub tasks: usize,
    /// The task id and the scorer's detail of every canonical solution
    /// that does not pass, in task order.
    pub failures: Vec<(String, String)>,
    /// Seconds the check took.
    pub secs: f64,
}

impl Verification {
    /// Whether every canonical solution passes.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A line per failing solution; a sandbox that cannot run anything
    /// fails every problem the same way, which is said once.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut said: Option<&str> = None;
        let mut repeats = 0;
        for (id, detail) in &self.failures {
            if detail.starts_with("sandbox error:") && said == Some(detail.as_str()) {
                repeats += 1;
                continue;
            }
            lines.push(format!("{id}: canonical solution fails: {detail}"));
            said = Some(detail);
        }
        if repeats > 0 {
            lines.push(format!(
                "({repeats} more canonical solution(s) failed with the same sandbox error)"
            ));
        }
        lines
    }

    /// How many pass, of how many, and how long it took.
    pub fn summary(&self) -> String {
        format!(
            "verified {}/{} canonical solutions pass in the sandbox ({:.1} s)",
            self.tasks - self.failures.len(),
            self.tasks,
            self.secs
        )
    }
}

/// Scores every canonical solution of the imported suite at `dir` as if a
/// model had answered it, on one thread per core; one that fails means the
/// file or the sandbox is broken.
pub fn verify(dir: &Path) -> Result<Verification, SuiteError> {
    let loaded = super::load_suite(dir)?;
    let tasks = loaded
        .split("test")
        .map(|s| s.tasks.as_slice())
        .unwrap_or_default();
    let started = Instant::now();
    let failures = crate::parallel::map_in_order(tasks.iter().collect(), |task| {
        let solution = task.target["solution"].as_str().unwrap_or_default();
        let score = loaded.score(task, solution);
        (score.value < 1.0).then(|| (task.id.clone(), score.detail))
    })
    .into_iter()
    .flatten()
    .collect();
    Ok(Verification {
        tasks: tasks.len(),
        failures,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_basic_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
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
        let problems = read(&path).unwrap_or_default();
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
        let Err(problems) = read(&path) else {
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
        let first = import(&path, &out, "he", 256);
        assert_eq!(first.as_ref().map(|i| i.tasks).ok(), Some(1));
        assert!(import(&path, &out, "he", 256).is_err());
    }
}
