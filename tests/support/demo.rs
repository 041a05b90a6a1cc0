//! Test support: workspaces over the demo suites with replay-only models.
//! The teacher is the demo's recorded transcript (fixtures/teacher); each
//! student replays a transcript derived from it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary with `args` in `dir`, not yet started.
pub fn command(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_distill-gate"));
    c.args(args).current_dir(dir);
    c
}

/// Runs the binary in `dir`.
pub fn run(args: &[&str], dir: &Path) -> Output {
    command(args, dir).output().expect("spawn distill-gate")
}

/// Status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The repository.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A replay student: the teacher's answers, wrong where `wrong(line of the
/// teacher transcript)`, latencies scaled by `speed`.
pub struct Student {
    /// Model name (also its fingerprint, `fp-NAME`).
    pub name: &'static str,
    /// Latency factor against the teacher.
    pub speed: f64,
    /// Which answers are replaced by a wrong one.
    pub wrong: fn(usize) -> bool,
}

/// Writes `dir/NAME.jsonl` for a student.
pub fn derived_transcript(dir: &Path, s: &Student) {
    let teacher =
        std::fs::read_to_string(repo().join("fixtures/teacher/smollm2-135m-test.jsonl")).unwrap();
    let mut text = String::new();
    for (i, line) in teacher.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["model"]["name"] = s.name.into();
        v["model"]["backend"] = "test".into();
        v["model"]["fingerprint"] = format!("fp-{}", s.name).into();
        if let Some(c) = v["completion"].as_object_mut() {
            if (s.wrong)(i) {
                c.insert("text".into(), " zzz-not-an-answer".into());
            }
            let ms = c["latency"]["total_ms"].as_f64().unwrap();
            c["latency"]["total_ms"] = (ms * s.speed).into();
            c["latency"]["first_token_ms"] = serde_json::Value::Null;
        }
        text.push_str(&serde_json::to_string(&v).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join(format!("{}.jsonl", s.name)), text).unwrap();
}

/// A workspace with `gate.toml` (run "demo", reports in `reports/`): the
/// demo teacher, `students`, and `suites` as (demo suite name, limit).
pub fn workspace(seed: u64, students: &[Student], suites: &[(&str, usize)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        r#"[run]
name = "demo"
output_dir = "reports"
seed = {seed}

[teacher]
name = "smollm2-135m"
kind = "replay"
transcript = "{}"
price = {{ input_per_mtok = 0.15, output_per_mtok = 0.60 }}

[gate]
min_retention = 0.9
"#,
        repo()
            .join("fixtures/teacher/smollm2-135m-test.jsonl")
            .display()
    );
    for s in students {
        derived_transcript(dir.path(), s);
        config.push_str(&format!(
            "\n[[students]]\nname = \"{0}\"\nkind = \"replay\"\ntranscript = \"{0}.jsonl\"\nprice = {{ per_hour = 0.09 }}\n",
            s.name
        ));
    }
    for (suite, limit) in suites {
        config.push_str(&format!(
            "\n[[suites]]\npath = \"{}\"\nsplit = \"test\"\nlimit = {limit}\n",
            repo().join("suites").join(suite).display()
        ));
    }
    std::fs::write(dir.path().join("gate.toml"), config).unwrap();
    dir
}
