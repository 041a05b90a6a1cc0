//! Every journaled answer is bound to the model that gave it (issue 18,
//! item 1): replacing a checkpoint at the same path, re-recording a
//! transcript or changing a suite's prompt asks again on resume instead of
//! reporting the old answers under the new model; `report`, `merge` and
//! `compare` refuse a journal whose answers are not the named model's.

use std::path::Path;

use distill_gate::run::journal::{self, JournalEntry};
use distill_gate::summary::Summary;

mod support;
use support::{Workspace, arith, standard_models, text};

fn summary(run_dir: &Path) -> Summary {
    let text = std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary parses")
}

fn journal_of(run_dir: &Path, model: &str) -> Vec<JournalEntry> {
    journal::read(&run_dir.join("results.jsonl"))
        .expect("journal")
        .into_iter()
        .filter(|e| e.model == model)
        .collect()
}

/// A workspace of `n` arithmetic items, the standard teacher and two
/// students replayed, run once.
fn ran(n: usize) -> (Workspace, [&'static str; 3]) {
    let ws = arith(n);
    let models = standard_models(&ws);
    ws.config(&models, "");
    let first = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    (ws, models)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A student whose transcript is re-recorded with other answers is asked
/// again on a plain resume; the others are not; the summary equals that of
/// a fresh run on the new transcript.
#[test]
fn a_re_recorded_transcript_is_asked_again_and_nothing_else_is() {
    let (ws, _) = ran(30);
    let before = journal_of(&ws.run_dir(), "good");
    assert!(
        before
            .iter()
            .all(|e| e.model_id.is_some() && e.request.is_some())
    );

    // Re-record "good": now wrong everywhere.
    ws.transcript("good", |_, t| {
        format!(" {}", t.target.as_f64().unwrap_or(0.0) + 1.0)
    });
    let again = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let err = stderr(&again);
    assert!(
        err.contains("good: 30 journaled answer(s) were given by another model"),
        "{err}"
    );
    assert!(!err.contains("teacher:") && !err.contains("bad:"), "{err}");
    let after = journal_of(&ws.run_dir(), "good");
    assert_eq!(after.len(), 30, "readers see one line per item");
    assert!(after.iter().all(|e| e.score == 0.0));
    assert_ne!(after[0].model_id, before[0].model_id);
    let resumed = summary(&ws.run_dir());

    // A fresh run on the same inputs reports the same.
    let fresh = ws.run(&["run", "gate.toml", "--quiet", "--fresh"]);
    assert_eq!(fresh.status.code(), Some(1), "{}", text(&fresh));
    let fresh = summary(&ws.run_dir());
    assert_eq!(
        serde_json::to_value(&resumed.gates).unwrap(),
        serde_json::to_value(&fresh.gates).unwrap()
    );
    assert_eq!(resumed.models, fresh.models);
}

/// `report` of a run whose student changed since refuses, naming the
/// model and the journal line, instead of showing the old answers under
/// the new model's fingerprint.
#[test]
fn report_refuses_answers_of_a_changed_model() {
    let (ws, _) = ran(12);
    ws.transcript("bad", |_, t| {
        format!(" {}", t.target.as_f64().unwrap_or(0.0))
    });
    let report = ws.run(&["report", "reports/t"]);
    assert_eq!(report.status.code(), Some(2), "{}", text(&report));
    let err = stderr(&report);
    assert!(
        err.contains("results.jsonl:")
            && err.contains("answers of \"bad\": 12 were given by another model"),
        "{err}"
    );
}

/// A changed prompt (the suite's template) makes every journaled answer
/// one to another request: asked again, for every model.
#[test]
fn a_changed_prompt_asks_every_model_again() {
    let (ws, models) = ran(9);
    let suite_toml = ws.path().join("suites/s/suite.toml");
    let toml = std::fs::read_to_string(&suite_toml).unwrap();
    std::fs::write(&suite_toml, toml.replace("Q: {input}", "Question: {input}")).unwrap();
    // The models' transcripts are recorded for the new prompt.
    standard_models(&ws);
    let again = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let err = stderr(&again);
    for m in models {
        assert!(
            err.contains(&format!("{m}: 9 journaled answer(s)")),
            "{m}: {err}"
        );
    }
}

/// `compare` refuses a run whose journal mixes answers of two identities
/// of one model.
#[test]
fn compare_refuses_a_mixed_journal() {
    let (ws, _) = ran(12);
    let base = ws.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    for f in ["run.json", "summary.json", "results.jsonl"] {
        std::fs::copy(ws.run_dir().join(f), base.join(f)).unwrap();
    }
    let ok = ws.run(&["compare", "base", "reports/t"]);
    assert_ne!(ok.status.code(), Some(2), "{}", text(&ok));

    let path = ws.run_dir().join("results.jsonl");
    let journal = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = journal.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"model\":\"good\""))
        .unwrap();
    let mut e: JournalEntry = serde_json::from_str(&lines[at]).unwrap();
    e.model_id = Some("0".repeat(64));
    lines[at] = serde_json::to_string(&e).unwrap();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mixed = ws.run(&["compare", "base", "reports/t"]);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    let err = stderr(&mixed);
    assert!(
        err.contains(&format!("results.jsonl:{}", at + 1))
            && err.contains("answers of \"good\": 1 were given by another model"),
        "{err}"
    );
}

/// Shards run before and after a student's transcript was re-recorded are
/// not merged into one run.
#[test]
fn merge_refuses_shards_of_different_model_identities() {
    let ws = arith(12);
    let models = standard_models(&ws);
    ws.config(&models, "");
    let one = ws.run(&["run", "gate.toml", "--quiet", "--shard", "1/2"]);
    assert!(matches!(one.status.code(), Some(0 | 1)), "{}", text(&one));
    ws.transcript("bad", |_, t| {
        format!(" {}", t.target.as_f64().unwrap_or(0.0))
    });
    let two = ws.run(&["run", "gate.toml", "--quiet", "--shard", "2/2"]);
    assert!(matches!(two.status.code(), Some(0 | 1)), "{}", text(&two));
    let merged = ws.run(&[
        "merge",
        "reports/t/shard-1-of-2",
        "reports/t/shard-2-of-2",
        "--out",
        "merged",
    ]);
    assert_eq!(merged.status.code(), Some(2), "{}", text(&merged));
    assert!(
        stderr(&merged).contains("measured different models"),
        "{}",
        text(&merged)
    );
}

/// A workspace whose config gates the local model in `student/` (see
/// [`copy_student`]) against the replayed SmolLM2 teacher on the first 6
/// logistics test items; `extra` is added to `[run]`.
fn student_workspace(extra: &str) -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let root = support::repo_root();
    let config = format!(
        "[run]\nname = \"c\"\noutput_dir = \"reports\"\n{extra}\n\
         [teacher]\nname = \"teacher\"\nkind = \"replay\"\ntranscript = \"{}\"\n\
         [[students]]\nname = \"student\"\nkind = \"local\"\npath = \"student\"\n\
         [[suites]]\npath = \"{}\"\nsplit = \"test\"\nlimit = 6\n",
        root.join("fixtures/teacher/smollm2-135m-test.jsonl")
            .display(),
        root.join("suites/logistics").display()
    );
    std::fs::write(dir.path().join("gate.toml"), config).unwrap();
    Workspace { dir }
}

/// Copies the fixture student `from` into the workspace's `student/`.
fn copy_student(ws: &Workspace, from: &str) {
    let student = ws.path().join("student");
    std::fs::create_dir_all(&student).unwrap();
    let src = support::repo_root().join("fixtures/students").join(from);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), student.join(f)).unwrap();
    }
}

/// The issue's own case: a student checkpoint replaced at the same path is
/// asked again, and its answers are the new checkpoint's (those of a fresh
/// run of it), reported under its fingerprint.
#[test]
fn a_checkpoint_replaced_at_the_same_path_is_asked_again() {
    let ws = student_workspace("");
    copy_student(&ws, "s05m");
    let run_dir = ws.path().join("reports/c");
    let first = ws.run(&["run", "gate.toml", "--quiet"]);
    assert!(
        matches!(first.status.code(), Some(0 | 1)),
        "{}",
        text(&first)
    );
    let old = journal_of(&run_dir, "student");

    copy_student(&ws, "s2m");
    let again = ws.run(&["run", "gate.toml", "--quiet"]);
    assert!(
        matches!(again.status.code(), Some(0 | 1)),
        "{}",
        text(&again)
    );
    assert!(
        stderr(&again).contains("student: 6 journaled answer(s) were given by another model"),
        "{}",
        text(&again)
    );
    let resumed = journal_of(&run_dir, "student");
    let resumed_summary = summary(&run_dir);
    let fresh = ws.run(&["run", "gate.toml", "--quiet", "--fresh"]);
    assert!(
        matches!(fresh.status.code(), Some(0 | 1)),
        "{}",
        text(&fresh)
    );
    let fresh_entries = journal_of(&run_dir, "student");
    let outputs = |v: &[JournalEntry]| v.iter().map(|e| e.output.clone()).collect::<Vec<_>>();
    assert_eq!(outputs(&resumed), outputs(&fresh_entries));
    assert_ne!(resumed[0].model_id, old[0].model_id);
    let student_info = |s: &Summary| {
        s.models
            .iter()
            .find(|m| m.name == "student")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        student_info(&resumed_summary),
        student_info(&summary(&run_dir))
    );
}

/// A workspace gating a copy of the fixture student `s05m`, whose
/// `training.json` names `transcript` (copied into the workspace), on the
/// first 6 logistics test items; `extra` is added to `[run]`.
fn contaminated_workspace(transcript: &str, extra: &str) -> Workspace {
    let ws = student_workspace(extra);
    copy_student(&ws, "s05m");
    let data = ws.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let from = support::repo_root()
        .join("fixtures/teacher")
        .join(transcript);
    std::fs::copy(from, data.join(transcript)).unwrap();
    let sha = distill_gate::fingerprint::sha256_file(&data.join(transcript)).unwrap();
    // As distill writes it: the path it was given, relative to where it ran.
    let training = serde_json::json!({
        "transcripts": [{ "path": format!("data/{transcript}"), "sha256": sha }]
    });
    let path = ws.path().join("student/training.json");
    std::fs::write(path, training.to_string()).unwrap();
    ws
}

/// A student distilled from a transcript of the test split is refused by
/// `validate` and `run` unless contamination is allowed; allowed, every
/// report warns.
#[test]
fn a_student_trained_on_the_gated_items_is_refused_or_warned_about() {
    let ws = contaminated_workspace("smollm2-135m-test.jsonl", "");
    for cmd in ["validate", "run"] {
        let out = ws.run(&[cmd, "gate.toml"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("gate.toml:") && err.contains("students[0].path") && err.contains("allow_contamination = true")
                && err.contains("student was trained on data/smollm2-135m-test.jsonl, which holds 6 of the gated items (logistics: 6"),
            "{err}"
        );
    }
    assert!(!ws.path().join("reports/c/results.jsonl").exists());

    let ws = contaminated_workspace("smollm2-135m-test.jsonl", "allow_contamination = true");
    let out = ws.run(&["run", "gate.toml", "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let run_dir = ws.path().join("reports/c");
    let s = summary(&run_dir);
    assert_eq!(s.contamination.len(), 1);
    assert_eq!(s.contamination[0].items(), 6);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, text) in [
        ("terminal", stdout.to_string()),
        (
            "report.md",
            std::fs::read_to_string(run_dir.join("report.md")).unwrap(),
        ),
        (
            "report.html",
            std::fs::read_to_string(run_dir.join("report.html")).unwrap(),
        ),
        (
            "report.txt",
            std::fs::read_to_string(run_dir.join("report.txt")).unwrap(),
        ),
        (
            "junit.xml",
            std::fs::read_to_string(run_dir.join("junit.xml")).unwrap(),
        ),
    ] {
        assert!(
            text.contains("ontaminat") && text.contains("holds 6 of the gated items"),
            "{name} does not warn:\n{text}"
        );
    }
}

/// The train split's transcript holds none of the test items: quiet.
#[test]
fn a_student_trained_on_the_train_split_is_not_contaminated() {
    let ws = contaminated_workspace("smollm2-135m-train.jsonl", "");
    let out = ws.run(&["validate", "gate.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stderr(&out).contains("ontaminat"), "{}", text(&out));
}
