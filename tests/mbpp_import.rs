//! Importing an MBPP-format file as a suite, as a user does it with the CLI
//! (tests/data/mbpp: problems in MBPP's format, see its PROVENANCE.md):
//! every reference solution passes its asserts in the sandbox at import, a
//! broken one is named by task id and line, wrong answers fail, and the
//! gzip file imports like the plain one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill_gate::suite::load_suite;

mod support;
use support::{gzip_copy, text};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mbpp/sample.jsonl")
}

/// `distill-gate suites import-mbpp FILE --out OUT [extra]`.
fn import(file: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(["suites", "import-mbpp"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

#[test]
fn import_runs_every_reference_solution_and_scores_like_mbpp() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = dir.path().join("mbpp");
    let result = import(&sample(), &out, &[]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    assert!(stdout.contains("wrote 6 problems"), "{stdout}");
    assert!(
        stdout.contains("verified 6/6 canonical solutions pass"),
        "{stdout}"
    );

    let suite = load_suite(&out).unwrap_or_else(|e| panic!("imported suite must load: {e}"));
    assert_eq!(suite.config.name, "mbpp");
    let tasks = &suite
        .split("test")
        .unwrap_or_else(|| panic!("no test split"))
        .tasks;
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["9001", "9002", "9003", "9004", "9005", "9006"]);
    // The prompt is the benchmark's: the statement, the tests, then [BEGIN].
    let prompt = distill_gate::suite::build_prompt(&suite, &tasks[0]);
    assert!(
        prompt.starts_with(
            "You are an expert Python programmer, and here is your task: Write a function to \
             return the sum of the squares of a list of integers. Your code should pass these \
             tests:\n\nassert sum_squares([1, 2, 3]) == 14\n"
        ),
        "{prompt:?}"
    );
    assert!(prompt.ends_with("== 29\n[BEGIN]\n"), "{prompt:?}");
    assert_eq!(
        suite.generation_settings(&tasks[0]).stop,
        vec!["[DONE]".to_string()]
    );
    // A fields kept in meta.
    assert_eq!(
        tasks[4].meta.get("challenge_test_list"),
        Some(&serde_json::json!([
            "assert find_digits('12 34') == ['12', '34']"
        ]))
    );

    // Another right answer passes; a wrong one fails the assert it breaks.
    let right = "def sum_squares(xs):\n    total = 0\n    for x in xs:\n        total += x ** 2\n    return total\n";
    let s = suite.score(&tasks[0], right);
    assert_eq!(s.value, 1.0, "{}", s.detail);
    let wrong = "def sum_squares(xs):\n    return sum(xs) ** 2\n";
    let s = suite.score(&tasks[0], wrong);
    assert_eq!(s.value, 0.0, "{}", s.detail);
    assert!(s.detail.contains("AssertionError"), "{}", s.detail);
    // The tests' setup (9004's Counter) is there for the tests, and an
    // answer that does not define the function under test fails.
    let s = suite.score(
        &tasks[3],
        "def most_common_char(s):\n    return max(s, key=s.count)\n",
    );
    assert_eq!(s.value, 1.0, "{}", s.detail);
    let s = suite.score(
        &tasks[5],
        "def helper_sorted(nums):\n    return sorted(nums)\n",
    );
    assert_eq!(s.value, 0.0, "{}", s.detail);

    // Importing over an existing suite is refused, nothing overwritten.
    let again = import(&sample(), &out, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn a_broken_reference_solution_is_named_by_task_id_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let text_in = std::fs::read_to_string(sample()).unwrap_or_else(|e| panic!("read: {e}"));
    // 9003 (line 3) adding modulo 8: its own asserts catch it.
    let broken = text_in.replace("% MOD", "% (MOD + 1)");
    assert_ne!(broken, text_in);
    let file = dir.path().join("broken.jsonl");
    std::fs::write(&file, broken).unwrap_or_else(|e| panic!("write: {e}"));
    let result = import(&file, &dir.path().join("mbpp"), &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result));
    let want = format!("{}:3: 9003: canonical solution fails: ", file.display());
    assert!(stderr.contains(&want), "{want:?} in\n{stderr}");
    assert!(stderr.contains("AssertionError"), "{stderr}");
    assert_eq!(
        stderr.matches("canonical solution fails").count(),
        1,
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("verified 5/6"), "{stdout}");

    // A line the importer cannot read is named by line and field, and
    // nothing is written.
    let bad = text_in.replacen("\"test_list\"", "\"tests\"", 1);
    std::fs::write(&file, bad).unwrap_or_else(|e| panic!("write: {e}"));
    let out = dir.path().join("bad");
    let result = import(&file, &out, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result));
    let want = format!("{}:1: test_list: missing required field", file.display());
    assert!(stderr.contains(&want), "{want:?} in\n{stderr}");
    assert!(!out.join("test.jsonl").exists());
}

#[test]
fn the_gzip_file_imports_like_its_jsonl() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let gz = dir.path().join("mbpp.jsonl.gz");
    gzip_copy(&sample(), &gz);
    let from_gz = dir.path().join("from-gz");
    let from_jsonl = dir.path().join("from-jsonl");
    let result = import(&gz, &from_gz, &["--no-verify", "--name", "mbpp"]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    let result = import(&sample(), &from_jsonl, &["--no-verify", "--name", "mbpp"]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    let tasks = |d: &Path| std::fs::read_to_string(d.join("test.jsonl")).unwrap_or_default();
    assert!(!tasks(&from_gz).is_empty());
    assert_eq!(tasks(&from_gz), tasks(&from_jsonl));
}
