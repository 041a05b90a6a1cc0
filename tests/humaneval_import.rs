//! Importing a HumanEval-format file as a suite, as a user does it with the
//! CLI, on a real sample of OpenAI's HumanEval (tests/data/humaneval): the
//! canonical solutions pass their benchmark tests in the sandbox, and wrong
//! completions fail them.

use std::path::{Path, PathBuf};
use std::process::Command;

use distill_gate::suite::load_suite;

mod support;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_distill-gate"))
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/humaneval/sample.jsonl")
}

#[test]
fn import_verifies_canonical_solutions_and_scores_like_humaneval() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = dir.path().join("he");
    let result = Command::new(bin())
        .args(["suites", "import-humaneval"])
        .arg(sample())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("wrote 12 problems"), "{stdout}");
    assert!(
        stdout.contains("verified 12/12 canonical solutions pass"),
        "{stdout}"
    );

    let suite = load_suite(&out).unwrap_or_else(|e| panic!("imported suite must load: {e}"));
    let tasks = &suite
        .split("test")
        .unwrap_or_else(|| panic!("no test split"))
        .tasks;
    assert_eq!(tasks.len(), 12);
    let task = &tasks[0];
    assert_eq!(task.id, "HumanEval/0");

    // A completion-style body (what a base model continues the prompt with).
    let body = "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n            if abs(a - b) < threshold:\n                return True\n    return False\n";
    assert_eq!(suite.score(task, body).value, 1.0);
    // The whole function rewritten, in a fenced block (what an instruct model writes).
    let fenced = format!(
        "Here it is:\n```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n{body}```\n"
    );
    let s = suite.score(task, &fenced);
    assert_eq!(s.value, 1.0, "{}", s.detail);
    // Wrong: ignores the threshold.
    let wrong = "    return len(numbers) > 1\n";
    let s = suite.score(task, wrong);
    assert_eq!(s.value, 0.0, "{}", s.detail);
    assert!(s.detail.contains("AssertionError"), "{}", s.detail);

    // Importing over an existing suite is refused, nothing overwritten.
    let again = Command::new(bin())
        .args(["suites", "import-humaneval"])
        .arg(sample())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn a_broken_canonical_solution_fails_the_import() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let text = std::fs::read_to_string(sample()).unwrap_or_else(|e| panic!("read: {e}"));
    let first = text.lines().next().unwrap_or_default();
    // HumanEval/0 with its comparison reversed: the benchmark's own tests catch it.
    let broken = first.replace("if distance < threshold", "if distance > threshold");
    assert_ne!(broken, first);
    let file = dir.path().join("broken.jsonl");
    std::fs::write(&file, format!("{broken}\n")).unwrap_or_else(|e| panic!("write: {e}"));
    let result = Command::new(bin())
        .args(["suites", "import-humaneval"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("he"))
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HumanEval/0: canonical solution fails"),
        "{stderr}"
    );
}

#[test]
fn the_benchmarks_own_gzip_file_imports_like_its_jsonl() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // As OpenAI ships it: HumanEval.jsonl.gz.
    let gz = dir.path().join("HumanEval.jsonl.gz");
    support::gzip_copy(&sample(), &gz);
    let import = |source: &Path, out: &Path| {
        Command::new(bin())
            .args(["suites", "import-humaneval"])
            .arg(source)
            .arg("--out")
            .arg(out)
            .arg("--no-verify")
            .output()
            .unwrap_or_else(|e| panic!("spawn: {e}"))
    };
    let from_gz = dir.path().join("from-gz");
    let result = import(&gz, &from_gz);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("wrote 12 problems"), "{stdout}");
    // The same tasks as from the uncompressed file.
    let from_jsonl = dir.path().join("from-jsonl");
    assert_eq!(import(&sample(), &from_jsonl).status.code(), Some(0));
    let tasks = |d: &Path| std::fs::read_to_string(d.join("test.jsonl")).unwrap_or_default();
    assert_eq!(tasks(&from_gz), tasks(&from_jsonl));
    assert!(!tasks(&from_gz).is_empty());

    // A corrupt gzip file is an error naming the file, not a panic.
    let broken = dir.path().join("broken.jsonl.gz");
    let mut bytes = std::fs::read(&gz).unwrap_or_else(|e| panic!("read: {e}"));
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&broken, bytes).unwrap_or_else(|e| panic!("write: {e}"));
    let result = import(&broken, &dir.path().join("broken"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.jsonl.gz"), "{stderr}");
}
