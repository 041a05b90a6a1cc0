//! `distill-gate record` as a user runs it, with a committed distilled
//! student (fixtures/students/s05m) as the model: the transcript resumes
//! without re-asking finished items, every call appends a provenance line,
//! and replaying the transcript gives exactly what the model says live.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::text;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn record_resumes_appends_provenance_and_replays_what_the_model_says() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let student = root().join("fixtures/students/s05m");
    let suite = root().join("tests/data/suites/mixed");
    let out = dir.path().join("recorded.jsonl");
    let (student_s, suite_s, out_s) = (
        student.to_string_lossy().into_owned(),
        suite.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    let record = |extra: &[&str]| {
        let mut args = vec![
            "record", "--model", &student_s, "--suite", &suite_s, "--split", "test", "--out",
            &out_s,
        ];
        args.extend_from_slice(extra);
        run(&args, dir.path())
    };

    let first = record(&["--limit", "4"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(lines(&out).len(), 4);
    let second = record(&[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("4 already in"),
        "{}",
        text(&second)
    );
    let entries = lines(&out);
    assert_eq!(entries.len(), 6, "the 4 finished items are not asked again");
    let provenance = lines(&dir.path().join("recorded.jsonl.provenance.jsonl"));
    assert_eq!(provenance.len(), 2, "one provenance line per call");
    assert_eq!(provenance[1]["suite"], "mixed");
    assert_eq!(provenance[1]["items"], 6);
    assert_eq!(
        entries[0]["model"]["fingerprint"],
        provenance[0]["model"]["fingerprint"]
    );

    // Replay the transcript as the teacher and run the same student live:
    // every output must be identical (greedy decoding, batch-independent).
    let config = format!(
        r#"[run]
name = "replay"
output_dir = "reports"
[teacher]
name = "recorded"
kind = "replay"
transcript = "recorded.jsonl"
[[students]]
name = "live"
kind = "local"
path = {student:?}
[[suites]]
path = {suite:?}
"#,
        student = student_s,
        suite = suite_s,
    );
    std::fs::write(dir.path().join("gate.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let gate = run(&["run", "gate.toml", "--quiet"], dir.path());
    assert!(matches!(gate.status.code(), Some(0 | 1)), "{}", text(&gate));
    let journal = lines(&dir.path().join("reports/replay/results.jsonl"));
    let mut by_model: HashMap<(String, String), String> = HashMap::new();
    for e in &journal {
        by_model.insert(
            (
                e["model"].as_str().unwrap_or_default().to_string(),
                e["task_id"].as_str().unwrap_or_default().to_string(),
            ),
            e["output"].as_str().unwrap_or_default().to_string(),
        );
    }
    assert_eq!(journal.len(), 12);
    for e in entries {
        let id = e["request_id"].as_str().unwrap_or_default();
        let task = id.rsplit('/').next().unwrap_or_default().to_string();
        let recorded = &by_model[&("recorded".to_string(), task.clone())];
        let live = &by_model[&("live".to_string(), task.clone())];
        assert_eq!(recorded, live, "{task}");
        assert_eq!(e["completion"]["text"].as_str(), Some(live.as_str()));
    }
}
