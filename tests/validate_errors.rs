//! `validate` and `run` on the demo config with one thing wrong: every
//! problem is reported as `file:line: field: message` at the line of the key
//! at fault (or, in a JSONL file, at the line and the column within it), and
//! `run` reports it before any model runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::{demo_config, repo_root, text};

/// A temporary directory holding a `gate.toml` made from the demo config.
struct Case {
    dir: tempfile::TempDir,
    config: String,
}

impl Case {
    /// The demo config (8 items per suite, reports under the directory).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(8, &dir.path().join("reports"));
        Self { dir, config }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the only occurrence of `from` in the config with `to`.
    fn replace(mut self, from: &str, to: &str) -> Self {
        assert_eq!(self.config.matches(from).count(), 1, "{from:?} in config");
        self.config = self.config.replacen(from, to, 1);
        self
    }

    /// The 1-based line of the config's only line containing `needle`.
    fn line_of(&self, needle: &str) -> usize {
        let lines: Vec<usize> = (1..)
            .zip(self.config.lines())
            .filter(|(_, l)| l.contains(needle))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(lines.len(), 1, "{needle:?} in config:\n{}", self.config);
        lines[0]
    }

    /// Runs `distill-gate ARGS gate.toml` in the directory.
    fn cli(&self, args: &[&str]) -> Output {
        std::fs::write(self.path().join("gate.toml"), &self.config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_distill-gate"))
            .args(args)
            .arg("gate.toml")
            .current_dir(self.path())
            .output()
            .expect("spawn distill-gate")
    }

    /// `validate` and `run` both exit 2 with `want` on a line of stderr of
    /// its own, and `run` asked no model anything.
    fn assert_reported(&self, want: &str) {
        for args in [&["validate"][..], &["run", "--quiet"][..]] {
            let out = self.cli(args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.lines().any(|l| l == want),
                "{args:?}: expected the line\n{want}\nin:\n{}",
                text(&out)
            );
        }
        assert!(
            !self.path().join("reports/demo/results.jsonl").exists(),
            "run must stop before any model runs"
        );
    }

    /// [`assert_reported`](Self::assert_reported) of `gate.toml:L: what`,
    /// `L` the line of the config's only line containing `needle`.
    fn assert_at(&self, needle: &str, what: &str) {
        self.assert_reported(&format!("gate.toml:{}: {what}", self.line_of(needle)));
    }

    /// A copy of a fixture file or directory in the case's directory.
    fn copy_fixture(&self, rel: &str) -> PathBuf {
        let from = repo_root().join("fixtures").join(rel);
        let to = self.path().join(from.file_name().unwrap());
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
        to
    }
}

fn fixture(rel: &str) -> String {
    repo_root().join("fixtures").join(rel).display().to_string()
}

#[test]
fn the_demo_config_validates() {
    let case = Case::new();
    let out = case.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("gate.toml: OK: teacher smollm2-135m"));
}

#[test]
fn a_gate_threshold_is_reported_at_its_own_line() {
    let case = Case::new().replace("min_retention = 0.95", "min_retention = 95");
    assert!(case.line_of("min_retention = 95") > case.line_of("[gate]"));
    case.assert_at(
        "min_retention = 95",
        "gate.min_retention: must be in (0, 2], got 95",
    );
}

#[test]
fn an_unknown_student_in_an_override_is_reported_at_its_line() {
    let mut case = Case::new();
    case.config.push_str(
        "\n[[gate.overrides]]\nsuite = \"logistics\"\nstudent = \"s7m\"\nmin_retention = 0.9\n",
    );
    case.assert_at(
        "student = \"s7m\"",
        "gate.overrides[0].student: no student named \"s7m\"",
    );
}

#[test]
fn an_unknown_suite_in_an_override_and_a_suite_listed_twice_are_reported_at_their_lines() {
    let mut case = Case::new();
    case.config.push_str(
        "\n[[gate.overrides]]\nstudent = \"s6m\"\nsuite = \"routing\"\nmin_retention = 0.9\n",
    );
    case.assert_at(
        "suite = \"routing\"",
        "gate.overrides[0].suite: no suite named \"routing\" in this run",
    );
    let case = Case::new().replace("/suites/logistics\"", "/suites/coding\" # twice");
    case.assert_at(
        "# twice",
        "suites[1].path: suite \"coding\" is listed twice (also suites[0])",
    );
}

#[test]
fn a_run_setting_is_reported_at_its_line() {
    let case = Case::new().replace("bootstrap_resamples = 10000", "bootstrap_resamples = 999");
    case.assert_at(
        "bootstrap_resamples",
        "run.bootstrap_resamples: must be at least 10000, got 999",
    );
}

#[test]
fn a_missing_split_is_reported_at_the_split_key() {
    let case = Case::new().replace(
        "/suites/coding\"\nsplit = \"test\"",
        "/suites/coding\"\nsplit = \"dev\"",
    );
    let dir = repo_root().join("suites/coding");
    case.assert_at(
        "split = \"dev\"",
        &format!(
            "suites[0].split: suite {} has no split \"dev\" (it has: test, train)",
            dir.display()
        ),
    );
}

#[test]
fn a_missing_suite_directory_is_reported_at_its_path() {
    let case = Case::new().replace("/suites/logistics\"", "/suites/logistix\"");
    let dir = repo_root().join("suites/logistix");
    case.assert_at(
        "logistix",
        &format!(
            "suites[1].path: suite directory {} does not exist",
            dir.display()
        ),
    );
}

#[test]
fn a_student_path_to_a_jsonl_file_is_reported_at_its_path() {
    let transcript = fixture("teacher/smollm2-135m-train.jsonl");
    let case = Case::new().replace(
        &format!("\"{}\"", fixture("students/s6m")),
        &format!("\"{transcript}\""),
    );
    case.assert_at(
        "smollm2-135m-train.jsonl",
        &format!(
            "students[0].path: {transcript}: not a checkpoint: expected a Hugging Face \
             directory (config.json, model.safetensors, tokenizer.json), a .gguf file or a burn record (.bpk)"
        ),
    );
}

#[test]
fn an_unsupported_gguf_architecture_is_refused_by_name_at_its_path() {
    let case = Case::new();
    // llama.cpp's conversion of the qwen2 fixture with "qwen2" renamed
    // "gemma" (general.architecture and its keys alike).
    let bytes =
        std::fs::read(repo_root().join("tests/data/architectures/qwen2/model.gguf")).unwrap();
    let mut renamed = Vec::with_capacity(bytes.len());
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        if rest.starts_with(b"qwen2") {
            renamed.extend_from_slice(b"gemma");
            rest = &rest[5..];
        } else {
            renamed.push(rest[0]);
            rest = &rest[1..];
        }
    }
    let gguf = case.path().join("gemma.gguf");
    std::fs::write(&gguf, renamed).unwrap();
    let case = case.replace(
        &format!("\"{}\"", fixture("students/s6m")),
        &format!("\"{}\"", gguf.display()),
    );
    case.assert_at(
        &gguf.display().to_string(),
        &format!(
            "students[0].path: {}: general.architecture is \"gemma\"; supported: llama, qwen2, qwen3",
            gguf.display()
        ),
    );
}

#[test]
fn a_truncated_checkpoint_is_reported_at_its_path() {
    let case = Case::new();
    let student = case.copy_fixture("students/s6m");
    let weights = student.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 1000]).unwrap();
    let case = case.replace(
        &format!("\"{}\"", fixture("students/s6m")),
        &format!("\"{}\"", student.display()),
    );
    let line = case.line_of(&student.display().to_string());
    let out = case.cli(&["validate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!(
        "gate.toml:{line}: students[0].path: {}: invalid safetensors file: tensor ",
        weights.display()
    );
    let reported = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "expected a line starting with\n{prefix}\nin:\n{}",
                text(&out)
            )
        });
    assert!(reported.ends_with("truncated file?"), "{reported}");
    case.assert_reported(reported);
}

#[test]
fn missing_checkpoints_and_transcripts_are_reported_at_their_keys() {
    for (from, to, what) in [
        (
            "students/s6m\"",
            "students/s7m",
            "students[0].path: checkpoint",
        ),
        (
            "teacher/smollm2-135m-test.jsonl\"",
            "teacher/smollm2-135m-tset.jsonl",
            "teacher.transcript: transcript",
        ),
    ] {
        let case = Case::new().replace(from, &format!("{to}\""));
        let missing = fixture(to);
        case.assert_at(&missing, &format!("{what} {missing} does not exist"));
    }
}

#[test]
fn a_jsonl_trailing_comma_gives_the_line_and_its_column() {
    let case = Case::new();
    let transcript = case.copy_fixture("teacher/smollm2-135m-test.jsonl");
    let text_before = std::fs::read_to_string(&transcript).unwrap();
    let mut lines: Vec<String> = text_before.lines().map(String::from).collect();
    let second = lines[1].strip_suffix('}').unwrap().to_string() + ",}";
    // The closing brace after the comma, 1-based within the line.
    let column = second.len();
    lines[1] = second;
    std::fs::write(&transcript, lines.join("\n") + "\n").unwrap();
    let case = case.replace(
        &format!("\"{}\"", fixture("teacher/smollm2-135m-test.jsonl")),
        &format!("\"{}\"", transcript.display()),
    );
    case.assert_reported(&format!(
        "{}:2: malformed JSON: trailing comma (column {column})",
        transcript.display()
    ));
}
