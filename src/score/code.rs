//! Python code run against tests in the [sandbox](crate::sandbox).
//!
//! The scorer extracts the code itself (default extraction `none`): the
//! first fenced block tagged `python` (or `py`, or untagged) in the answer,
//! else the whole answer. The target is an object in one of two styles:
//!
//! - **tests**: `{entry_point, solution, tests: [statements], setup?}`. The
//!   setup code (imports, helpers) and then the answer run in one
//!   namespace; the answer must define a callable `entry_point`; then each
//!   test statement runs on its own (an exception fails only that test).
//!   Score 1 iff every test passes; detail `3/3 tests passed` or
//!   `2/3 tests passed: test 2 failed: AssertionError`.
//! - **humaneval**: `{entry_point, prompt, test, solution}` as in the
//!   HumanEval data set. The program is `prompt + answer + "\n" + test +
//!   "\n" + "check(entry_point)"`, or, when the answer itself defines
//!   `def entry_point(` (instruction-tuned models rewrite the whole
//!   function), `prompt + "\n" + answer + ...`. Score 1 iff it runs to the
//!   end without an exception.
//!
//! The answer and the tests run in two processes
//! ([`run_python_pair`](crate::sandbox::run_python_pair)): the **worker**
//! runs the answer (setup code, the answer, or HumanEval's prompt
//! completed by the answer) and calls its entry point when asked; the
//! **judge** runs the setup and tests (HumanEval: the prompt's helpers and
//! `check`) with the entry point replaced by a proxy. Each call's
//! arguments and result cross as plain data only (None, bool, int, float,
//! str, bytes, list, tuple, dict, set, frozenset, or an exception by type
//! name and message; `code_codec.py`), rebuilt as exact builtins in the
//! judge before any test compares them: a value that is not plain data (an
//! object whose `__eq__` lies, a subclass of `int`) fails its test, saying
//! so. The judge runs as another user (when the harness is root), in its
//! own jail; the worker can send it data and nothing else, so nothing the
//! answer does in its own process (frames, `gc`, descriptors, exit
//! handlers, signals, patched builtins or modules, forged output, early or
//! late exits) reaches the verdict. The judge writes the result on its own
//! standard output, on a line starting with a per-run nonce; a run without
//! that line fails. `target_text` is the reference solution.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;

use super::extract::first_code_block;
use super::{Expected, FieldError, Score, Scorer};
use crate::sandbox::{Limits, Outcome, PairOutcome, Status, run_python_pair};

/// Parameters of the code scorer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSpec {
    /// Wall-clock and CPU time limit of one run in milliseconds (default 10000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Memory (address-space) limit of one run in MiB (default 512).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_memory_mb() -> u64 {
    512
}

impl Default for CodeSpec {
    fn default() -> Self {
        Self {
            timeout_ms: default_timeout_ms(),
            memory_mb: default_memory_mb(),
        }
    }
}

/// Allowed `timeout_ms` range.
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=600_000;
/// Allowed `memory_mb` range (Python itself needs a few tens of MiB).
const MEMORY_MB: std::ops::RangeInclusive<u64> = 64..=65_536;

/// The code scorer.
pub(crate) struct CodeScorer {
    limits: Limits,
}

impl CodeScorer {
    pub(crate) fn new(spec: &CodeSpec) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !TIMEOUT_MS.contains(&spec.timeout_ms) {
            errors.push(FieldError::new(
                "timeout_ms",
                format!(
                    "must be between {} and {}, got {}",
                    TIMEOUT_MS.start(),
                    TIMEOUT_MS.end(),
                    spec.timeout_ms
                ),
            ));
        }
        if !MEMORY_MB.contains(&spec.memory_mb) {
            errors.push(FieldError::new(
                "memory_mb",
                format!(
                    "must be between {} and {}, got {}",
                    MEMORY_MB.start(),
                    MEMORY_MB.end(),
                    spec.memory_mb
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            limits: Limits {
                wall: Duration::from_millis(spec.timeout_ms),
                cpu_seconds: spec.timeout_ms.div_ceil(1000),
                memory_bytes: spec.memory_mb << 20,
                ..Limits::default()
            },
        })
    }
}

/// A task's target, validated.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Tests {
        entry_point: String,
        setup: String,
        tests: Vec<String>,
        solution: String,
    },
    HumanEval {
        entry_point: String,
        prompt: String,
        test: String,
        solution: String,
    },
}

impl Target {
    fn parse(target: &Value) -> Result<Target, FieldError> {
        let Value::Object(map) = target else {
            return Err(FieldError::new(
                "target",
                "expected a table with entry_point, solution and tests (or prompt and test)",
            ));
        };
        let humaneval = map.contains_key("test") || map.contains_key("prompt");
        let allowed: &[&str] = if humaneval {
            &["entry_point", "prompt", "test", "solution"]
        } else {
            &["entry_point", "solution", "tests", "setup"]
        };
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(FieldError::new(
                format!("target.{key}"),
                format!("unknown field (expected: {})", allowed.join(", ")),
            ));
        }
        let entry_point = text(map, "entry_point", true)?;
        if !is_identifier(&entry_point) {
            return Err(FieldError::new(
                "target.entry_point",
                format!("must be a Python identifier, got {entry_point:?}"),
            ));
        }
        let solution = text(map, "solution", true)?;
        if humaneval {
            return Ok(Target::HumanEval {
                entry_point,
                prompt: text(map, "prompt", true)?,
                test: text(map, "test", true)?,
                solution,
            });
        }
        let tests = match map.get("tests") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(FieldError::new(
                        format!("target.tests[{i}]"),
                        "expected a string (a Python statement)",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(FieldError::new(
                    "target.tests",
                    "expected a non-empty list of Python statements",
                ));
            }
            None => return Err(FieldError::new("target.tests", "missing required field")),
        };
        Ok(Target::Tests {
            entry_point,
            setup: text(map, "setup", false)?,
            tests,
            solution,
        })
    }

    fn solution(&self) -> &str {
        match self {
            Target::Tests { solution, .. } | Target::HumanEval { solution, .. } => solution,
        }
    }

    /// The specs of the judge (with the result line's `nonce`) and of the
    /// worker running `code`.
    fn specs(&self, code: &str, nonce: &str) -> (Value, Value) {
        match self {
            Target::Tests {
                entry_point,
                setup,
                tests,
                ..
            } => (
                json!({
                    "style": "tests",
                    "setup": setup,
                    "entry_point": entry_point,
                    "tests": tests,
                    "nonce": nonce,
                }),
                json!({"setup": setup, "answer": dedent(code), "entry_point": entry_point}),
            ),
            Target::HumanEval {
                entry_point,
                prompt,
                test,
                ..
            } => {
                // A whole function rewritten replaces the prompt's stub (after
                // it, so the prompt's imports stay); a body continues the prompt.
                let (joint, code) = if defines(code, entry_point) {
                    ("\n", dedent(code))
                } else {
                    ("", code.to_string())
                };
                (
                    json!({
                        "style": "program",
                        "prompt": prompt,
                        "test": test,
                        "entry_point": entry_point,
                        "nonce": nonce,
                    }),
                    json!({
                        "setup": "",
                        "answer": format!("{prompt}{joint}{code}"),
                        "entry_point": entry_point,
                    }),
                )
            }
        }
    }
}

/// A program of the scorer: the codec, then `template` with its spec
/// embedded as a Python string literal of JSON (a JSON string literal is
/// one).
fn program(template: &str, spec: &Value) -> String {
    let literal = serde_json::to_string(&spec.to_string()).unwrap_or_default();
    format!("{CODEC}\n{}", template.replace("{spec}", &literal))
}

/// `code` with the whitespace prefix common to its non-blank lines removed
/// (as Python's `textwrap.dedent`), so an answer indented as a whole, or
/// starting after a space, still runs as top-level code.
fn dedent(code: &str) -> String {
    let prefix = code
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| &line[..line.len() - line.trim_start_matches([' ', '\t']).len()])
        .reduce(|common, indent| {
            let same = common
                .bytes()
                .zip(indent.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            &common[..same]
        })
        .unwrap_or("");
    if prefix.is_empty() {
        return code.to_string();
    }
    code.split_inclusive('\n')
        .map(|line| {
            line.strip_prefix(prefix)
                .unwrap_or(line.trim_start_matches([' ', '\t']))
        })
        .collect()
}

/// A string field of the target (`""` when optional and absent).
fn text(map: &Map<String, Value>, key: &str, required: bool) -> Result<String, FieldError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(FieldError::new(
            format!("target.{key}"),
            "expected a string",
        )),
        None if required => Err(FieldError::new(
            format!("target.{key}"),
            "missing required field",
        )),
        None => Ok(String::new()),
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// True when `code` has a line `def <name>(` (at any indentation).
fn defines(code: &str, name: &str) -> bool {
    code.lines().any(|line| {
        line.trim_start()
            .strip_prefix("def ")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    })
}

/// The code in an answer: the first python (or py, or untagged) fenced
/// block, else the whole answer.
pub fn extract_code(answer: &str) -> String {
    first_code_block(answer, Some("python"))
        .or_else(|| first_code_block(answer, Some("py")))
        .unwrap_or_else(|| answer.to_string())
}

/// The runner's result line.
#[derive(Debug, Deserialize)]
struct Report {
    phase: Option<String>,
    error: Option<String>,
    missing: Option<String>,
    tests: Option<Vec<Option<String>>>,
    passed: Option<bool>,
}

impl Scorer for CodeScorer {
    fn check_target(&self, target: &Value, _meta: &Map<String, Value>) -> Result<(), FieldError> {
        Target::parse(target).map(|_| ())
    }

    fn target_text(&self, target: &Value) -> String {
        Target::parse(target)
            .map(|t| t.solution().to_string())
            .unwrap_or_else(|_| super::plain_text(target))
    }

    fn score(&self, task: &dyn Expected, answer: &str) -> Score {
        let target = match Target::parse(task.target()) {
            Ok(t) => t,
            Err(e) => return Score::zero(e.to_string()),
        };
        let code = extract_code(answer);
        let nonce = format!("{:032x}", rand::random::<u128>());
        let (judge_spec, worker_spec) = target.specs(&code, &nonce);
        let judge_program = program(JUDGE, &judge_spec);
        let worker_program = program(WORKER, &worker_spec);
        let mut score = match run_python_pair(&judge_program, &worker_program, &self.limits) {
            Ok(outcome) => judge(&target, &nonce, &outcome, &self.limits),
            Err(e) => Score::zero(format!("sandbox error: {e}")),
        };
        score.extracted = Some(code);
        score
    }
}

/// Plain data between the two processes, prepended to both programs.
const CODEC: &str = include_str!("code_codec.py");
/// The trusted program: runs the tests.
const JUDGE: &str = include_str!("code_judge.py");
/// The untrusted program: runs the answer.
const WORKER: &str = include_str!("code_worker.py");

/// The score of a finished pair of runs: what the judge reported on its
/// result line; when a failure involved the answer's process ending, how it
/// ended.
fn judge(target: &Target, nonce: &str, outcome: &PairOutcome, limits: &Limits) -> Score {
    let prefix = format!("{nonce} ");
    let report = outcome
        .judge
        .stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(serde_json::from_str::<Report>);
    let mut score = match report {
        Some(Ok(report)) => from_report(target, &report),
        Some(Err(e)) => Score::zero(format!("unreadable result line: {e}")),
        None => Score::zero(no_report(&outcome.judge, limits)),
    };
    if score.value < 1.0 && score.detail.contains("the answer's process") {
        score.detail = format!(
            "{} [the answer's process {}]",
            score.detail,
            worker_end(&outcome.worker, limits)
        );
    }
    score
}

/// How the worker ended, for a detail.
fn worker_end(worker: &Outcome, limits: &Limits) -> String {
    let last_error = last_line(&worker.stderr);
    let how = match worker.status {
        Status::Exited(code) => format!("exited with status {code}"),
        Status::OutputLimit => {
            return format!(
                "was stopped: output limit exceeded (more than {} bytes)",
                limits.max_output_bytes
            );
        }
        Status::Signaled(sig) if sig == libc::SIGXCPU => {
            format!("exceeded the CPU time limit ({} s)", limits.cpu_seconds)
        }
        Status::Signaled(sig) => format!("was killed by {}", crate::sandbox::signal_cause(sig)),
        Status::WallTimeout => "timed out".to_string(),
        Status::DiskLimit => return format!("was stopped: {}", disk_limit(limits)),
    };
    match last_error {
        Some(line) => {
            let line: String = line.chars().take(200).collect();
            format!("{how}; its last words: {}", explain(&line))
        }
        None => how,
    }
}

fn from_report(target: &Target, report: &Report) -> Score {
    if let Some(name) = &report.missing {
        return Score::zero(format!("answer does not define {name}()"));
    }
    if let Some(error) = &report.error {
        let phase = report.phase.as_deref().unwrap_or("program");
        return Score::zero(format!("{phase} failed: {}", explain(error)));
    }
    match (target, &report.tests, report.passed) {
        (Target::Tests { tests, .. }, Some(results), _) if results.len() == tests.len() => {
            let passed = results.iter().filter(|r| r.is_none()).count();
            let total = results.len();
            let failures: Vec<(usize, &String)> = results
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_ref().map(|e| (i + 1, e)))
                .collect();
            match failures.split_first() {
                None => Score::binary(true, format!("{total}/{total} tests passed")),
                Some(((n, error), rest)) => {
                    let more = if rest.is_empty() {
                        String::new()
                    } else {
                        format!(" (and {} more)", rest.len())
                    };
                    Score::zero(format!(
                        "{passed}/{total} tests passed: test {n} failed: {}{more}",
                        explain(error)
                    ))
                }
            }
        }
        (Target::HumanEval { .. }, None, Some(true)) => Score::binary(true, "check passed"),
        _ => Score::zero("malformed result line"),
    }
}

/// Names the sandbox limits behind well-known errors.
fn explain(error: &str) -> String {
    if error.starts_with("MemoryError") {
        format!("memory limit exceeded ({error})")
    } else if error.contains("Network is unreachable") {
        format!("network access blocked ({error})")
    } else {
        error.to_string()
    }
}

/// The last non-blank line of a program's standard error.
fn last_line(stderr: &str) -> Option<&str> {
    stderr.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// Why a run produced no result line.
fn no_report(outcome: &Outcome, limits: &Limits) -> String {
    let last_error = last_line(&outcome.stderr);
    match outcome.status {
        Status::WallTimeout => format!("timed out after {}", seconds(limits.wall)),
        Status::OutputLimit => format!(
            "output limit exceeded (more than {} bytes)",
            limits.max_output_bytes
        ),
        Status::DiskLimit => disk_limit(limits),
        Status::Signaled(sig) if sig == libc::SIGXCPU || sig == libc::SIGKILL => format!(
            "CPU time limit exceeded ({} s; killed by signal {sig})",
            limits.cpu_seconds
        ),
        Status::Signaled(sig) => format!("killed by {}", crate::sandbox::signal_cause(sig)),
        Status::Exited(code) => match last_error {
            Some(line) => format!(
                "exited with status {code} before the tests finished: {}",
                explain(line)
            ),
            None => format!("exited with status {code} before the tests finished"),
        },
    }
}

/// Why a program was stopped for what it wrote to its work dir.
fn disk_limit(limits: &Limits) -> String {
    format!(
        "disk limit exceeded (wrote more than {} MiB or {} files to its work dir)",
        limits.max_disk_bytes >> 20,
        limits.max_files
    )
}

/// `10 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_field_by_field() {
        let scorer = CodeScorer::new(&CodeSpec::default());
        let Ok(scorer) = scorer else {
            panic!("default spec is valid")
        };
        let meta = Map::new();
        let err = |t: Value| scorer.check_target(&t, &meta).err().map(|e| e.to_string());
        assert_eq!(
            err(json!({"entry_point": "f", "solution": "", "tests": ["assert f()"]})),
            None
        );
        assert_eq!(
            err(json!({"entry_point": "f", "prompt": "", "test": "", "solution": ""})),
            None
        );
        assert_eq!(
            err(json!("x")).as_deref(),
            Some(
                "target: expected a table with entry_point, solution and tests (or prompt and test)"
            )
        );
        assert_eq!(
            err(json!({"entry_point": "f", "solution": "", "tests": []})).as_deref(),
            Some("target.tests: expected a non-empty list of Python statements")
        );
        assert_eq!(
            err(json!({"entry_point": "f", "solution": "", "tests": ["ok", 3]})).as_deref(),
            Some("target.tests[1]: expected a string (a Python statement)")
        );
        assert_eq!(
            err(json!({"entry_point": "1f", "solution": "", "tests": ["x"]})).as_deref(),
            Some("target.entry_point: must be a Python identifier, got \"1f\"")
        );
        assert_eq!(
            err(json!({"entry_point": "f", "tests": ["x"]})).as_deref(),
            Some("target.solution: missing required field")
        );
        assert_eq!(
            err(json!({"entry_point": "f", "prompt": "", "solution": ""})).as_deref(),
            Some("target.test: missing required field")
        );
        assert_eq!(
            err(json!({"entry_point": "f", "solution": "", "tests": ["x"], "test": "y"}))
                .as_deref(),
            Some("target.tests: unknown field (expected: entry_point, prompt, test, solution)")
        );
        assert_eq!(
            scorer.target_text(
                &json!({"entry_point": "f", "solution": "def f(): return 1", "tests": ["x"]})
            ),
            "def f(): return 1"
        );
    }

    #[test]
    fn limits_are_validated() {
        let errors = CodeScorer::new(&CodeSpec {
            timeout_ms: 0,
            memory_mb: 1,
        })
        .err()
        .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["timeout_ms", "memory_mb"]);
        let scorer = CodeScorer::new(&CodeSpec {
            timeout_ms: 1500,
            memory_mb: 256,
        });
        let Ok(scorer) = scorer else { panic!("valid") };
        assert_eq!(scorer.limits.cpu_seconds, 2);
        assert_eq!(scorer.limits.memory_bytes, 256 << 20);
        assert_eq!(seconds(scorer.limits.wall), "1.5 s");
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
    }

    #[test]
    fn code_is_extracted_from_fences_or_taken_whole() {
        assert_eq!(
            extract_code("Here:\n```js\nx\n```\n```python\ndef f():\n    return 1\n```\n"),
            "def f():\n    return 1"
        );
        assert_eq!(extract_code("```py\ny = 2\n```"), "y = 2");
        assert_eq!(extract_code("```\nz = 3\n```"), "z = 3");
        assert_eq!(extract_code("def f(): return 1"), "def f(): return 1");
    }

    #[test]
    fn dedent_strips_the_common_indentation_only() {
        assert_eq!(
            dedent(" def f():\n     return 1\n"),
            "def f():\n    return 1\n"
        );
        assert_eq!(dedent("def f():\n    return 1"), "def f():\n    return 1");
        assert_eq!(dedent("\t\tx = 1\n\n\t\ty = 2\n"), "x = 1\n\ny = 2\n");
        assert_eq!(dedent("  a\n b\n"), " a\nb\n");
        assert_eq!(dedent(""), "");
    }

    #[test]
    fn humaneval_program_is_assembled_as_the_data_set_defines() {
        let target = Target::HumanEval {
            entry_point: "add".into(),
            prompt: "def add(a, b):\n    \"\"\"Add.\"\"\"\n".into(),
            test: "def check(c):\n    assert c(1, 2) == 3\n".into(),
            solution: "    return a + b\n".into(),
        };
        let (judge, worker) = target.specs("    return a + b\n", "n0");
        assert_eq!(
            worker["answer"],
            "def add(a, b):\n    \"\"\"Add.\"\"\"\n    return a + b\n"
        );
        assert_eq!(judge["test"], "def check(c):\n    assert c(1, 2) == 3\n");
        assert_eq!(judge["nonce"], "n0");
        assert!(
            judge.get("answer").is_none(),
            "the judge never sees the answer"
        );
        let (_, whole) = target.specs("def add(a, b):\n    return a + b", "n0");
        assert_eq!(
            whole["answer"],
            "def add(a, b):\n    \"\"\"Add.\"\"\"\n\ndef add(a, b):\n    return a + b"
        );
        assert!(defines("  def  add (x):", "add"));
        assert!(!defines("def adder(x):", "add"));
        assert!(!defines("x = add(1)", "add"));
    }

    #[test]
    fn reports_are_turned_into_details() {
        let tests = Target::Tests {
            entry_point: "f".into(),
            setup: String::new(),
            tests: vec!["a".into(), "b".into(), "c".into()],
            solution: String::new(),
        };
        let report = |v: Value| serde_json::from_value::<Report>(v).ok();
        let Some(r) = report(json!({"tests": [null, "AssertionError", "MemoryError"]})) else {
            panic!("parses")
        };
        assert_eq!(
            from_report(&tests, &r),
            Score::zero("1/3 tests passed: test 2 failed: AssertionError (and 1 more)")
        );
        let Some(r) = report(json!({"tests": [null, null]})) else {
            panic!("parses")
        };
        assert_eq!(
            from_report(&tests, &r),
            Score::zero("malformed result line")
        );
        let Some(r) = report(json!({"phase": "answer", "error": "MemoryError"})) else {
            panic!("parses")
        };
        assert_eq!(
            from_report(&tests, &r).detail,
            "answer failed: memory limit exceeded (MemoryError)"
        );
    }
}
