//! The CLI as a user runs it: `run`, `validate`, `report` on small suites
//! with replay transcripts written by the test, checking exit codes, files
//! and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill_gate::model::GenerationRequest;
use distill_gate::run::plan::Sampling;
use distill_gate::suite;

mod support;
use support::text;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_distill-gate"))
}

fn run(args: &[&str], dir: &Path) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn distill-gate")
}

/// A workspace with one suite of `n` items and a config; transcripts are
/// added by [`Workspace::transcript`].
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        support::write_arith_suite(dir.path(), n);
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a transcript for `model` answering correctly when `right(i)`.
    fn transcript(&self, model: &str, latency_ms: f64, right: impl Fn(usize) -> bool) -> PathBuf {
        self.sampled_transcript(model, latency_ms, &Sampling::SINGLE, |i, _| right(i))
    }

    /// Writes a transcript for `model` with every sample `sampling` draws,
    /// answering sample `s` of item `i` correctly when `right(i, s)`.
    fn sampled_transcript(
        &self,
        model: &str,
        latency_ms: f64,
        sampling: &Sampling,
        right: impl Fn(usize, u32) -> bool,
    ) -> PathBuf {
        let s = suite::load_suite(self.path().join("suites/arith")).unwrap();
        let split = s.split("test").unwrap();
        let mut out = String::new();
        let requests = split.tasks.iter().enumerate().flat_map(|(i, t)| {
            let base = GenerationRequest {
                id: t.id.clone(),
                prompt: suite::build_prompt(&s, t),
                settings: s.generation_settings(t),
            };
            sampling
                .requests(base)
                .into_iter()
                .zip(0u32..)
                .map(move |(r, n)| (i, t, n, r))
        });
        for (i, t, n, request) in requests {
            let target = t.target.as_f64().unwrap();
            let answer = if right(i, n) { target } else { target + 1.0 };
            out.push_str(&support::transcript_line(
                model,
                &t.id,
                request.prompt,
                request.settings,
                &format!(" {answer}"),
                (latency_ms + i as f64, latency_ms / 2.0),
            ));
        }
        let path = self.path().join(format!("{model}.jsonl"));
        std::fs::write(&path, out).unwrap();
        path
    }

    fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            r#"[run]
name = "t"
output_dir = "reports"
[teacher]
name = "teacher"
kind = "replay"
transcript = "teacher.jsonl"
price = {{ input_per_mtok = 1.0, output_per_mtok = 4.0 }}
[[students]]
name = "good"
kind = "replay"
transcript = "good.jsonl"
price = {{ per_hour = 1.0 }}
[[students]]
name = "bad"
kind = "replay"
transcript = "bad.jsonl"
price = {{ per_hour = 1.0 }}
[[suites]]
path = "suites/arith"
{extra}"#
        );
        let path = self.path().join("gate.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn standard(n: usize) -> Self {
        let ws = Self::new(n);
        // Teacher right on 90% of items; "good" right wherever the teacher
        // is; "bad" right on half of those.
        ws.transcript("teacher", 400.0, |i| !i.is_multiple_of(10));
        ws.transcript("good", 50.0, |i| !i.is_multiple_of(10));
        ws.transcript("bad", 50.0, |i| {
            !i.is_multiple_of(10) && i.is_multiple_of(2)
        });
        ws
    }
}

/// The run's `summary.json`.
fn summary_of(ws: &Workspace) -> serde_json::Value {
    let path = ws.path().join("reports/t/summary.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The (whole-suite) gate of `student` in a summary.
fn gate_of(summary: &serde_json::Value, student: &str) -> serde_json::Value {
    summary["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["student"] == student)
        .cloned()
        .unwrap()
}

#[test]
fn run_gates_writes_reports_and_exits_1_when_a_student_fails() {
    let ws = Workspace::standard(300);
    ws.config("");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS"), "{}", text(&out));
    assert!(stdout.contains("FAIL"), "{}", text(&out));
    let run_dir = ws.path().join("reports/t");
    for f in [
        "summary.json",
        "results.csv",
        "report.md",
        "junit.xml",
        "results.jsonl",
        "run.json",
    ] {
        assert!(run_dir.join(f).is_file(), "missing {f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    let gates = summary["gates"].as_array().unwrap();
    let verdict = |s: &str| {
        gates
            .iter()
            .find(|g| g["student"] == s)
            .map(|g| g["verdict"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(verdict("good"), "PASS");
    assert_eq!(verdict("bad"), "FAIL");
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
}

#[test]
fn only_passing_students_exit_0() {
    let ws = Workspace::standard(300);
    ws.transcript("bad", 50.0, |i| !i.is_multiple_of(10)); // now as good as the teacher
    ws.config("");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_pair_override_applies_to_that_student_and_suite_only() {
    let ws = Workspace::standard(300);
    // "bad" keeps half the teacher's accuracy: FAIL at [gate]'s 0.9, PASS
    // under its own override of 0.3.
    ws.config(
        "[gate]\nmin_retention = 0.9\n[[gate.overrides]]\nstudent = \"bad\"\nsuite = \"arith\"\n\
         min_retention = 0.3\nmax_error_rate = 0.5\n",
    );
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_of(&ws);
    let (good, bad) = (gate_of(&summary, "good"), gate_of(&summary, "bad"));
    assert_eq!(good["thresholds"]["min_retention"], 0.9);
    assert_eq!(good["thresholds"]["max_error_rate"], 0.0);
    assert_eq!(bad["thresholds"]["min_retention"], 0.3);
    assert_eq!(bad["thresholds"]["max_error_rate"], 0.5);
    // Everything the gate applied is recorded, defaults included.
    assert_eq!(bad["thresholds"]["confidence"], 0.95);
    assert_eq!(bad["thresholds"]["min_teacher_correct"], 10);
    assert_eq!(bad["verdict"], "PASS");
}

#[test]
fn impossible_threshold_exits_1_naming_student_suite_and_numbers() {
    let ws = Workspace::standard(300);
    ws.config("[gate]\nmin_retention = 1.5\n");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("good") && all.contains("arith"), "{all}");
    assert!(all.contains("1.5"), "threshold missing: {all}");
}

#[test]
fn killed_run_resumes_to_the_same_summary() {
    let ws = Workspace::standard(200);
    ws.config("");
    let first = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let run_dir = ws.path().join("reports/t");
    let summary = std::fs::read(run_dir.join("summary.json")).unwrap();
    let journal = std::fs::read(run_dir.join("results.jsonl")).unwrap();

    // Cut the journal mid-line, as a SIGKILL during a write would leave it.
    let cut = journal.len() * 3 / 5;
    std::fs::write(run_dir.join("results.jsonl"), &journal[..cut]).unwrap();
    std::fs::remove_file(run_dir.join("summary.json")).unwrap();
    let again = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert_eq!(
        std::fs::read(run_dir.join("summary.json")).unwrap(),
        summary
    );
    let lines = std::fs::read_to_string(run_dir.join("results.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        3 * 200,
        "every (model, task) exactly once"
    );

    // Re-rendering from the journal gives the same summary too.
    std::fs::remove_file(run_dir.join("summary.json")).unwrap();
    let rep = run(&["report", "reports/t"], ws.path());
    assert_eq!(rep.status.code(), Some(1), "{}", text(&rep));
    assert_eq!(
        std::fs::read(run_dir.join("summary.json")).unwrap(),
        summary
    );
}

#[test]
fn sampled_suites_gate_on_mean_scores_and_report_pass_at_k() {
    let ws = Workspace::new(40);
    let sampling = Sampling {
        samples: 4,
        temperature: Some(0.8),
        top_p: None,
        seed: 20_261_125, // the config's default [run] seed
    };
    // Teacher: every sample right. good: 3 of 4 samples right on every item.
    // bad: only sample 0 right, on even items.
    ws.sampled_transcript("teacher", 400.0, &sampling, |_, _| true);
    ws.sampled_transcript("good", 50.0, &sampling, |i, s| {
        !(i + s as usize).is_multiple_of(4)
    });
    ws.sampled_transcript("bad", 50.0, &sampling, |i, s| s == 0 && i.is_multiple_of(2));
    ws.config("samples = 4\ntemperature = 0.8\n[gate]\nmin_retention = 0.6\n");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run_dir = ws.path().join("reports/t");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    let row = |model: &str| {
        summary["model_stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == model && r["suite"] == "arith" && r["category"].is_null())
            .cloned()
            .unwrap()
    };
    let pass_at = |model: &str| -> Vec<(u64, f64)> {
        row(model)["pass_at_k"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["k"].as_u64().unwrap(), p["value"].as_f64().unwrap()))
            .collect()
    };
    // pass@k = 1 - C(n-c, k)/C(n, k) with n = 4: c = 3 gives 3/4, 1, 1;
    // c = 1 gives 1/4, 1/2, 1 (half the items) and 0 (the other half).
    assert_eq!(pass_at("teacher"), vec![(1, 1.0), (2, 1.0), (4, 1.0)]);
    assert_eq!(pass_at("good"), vec![(1, 0.75), (2, 1.0), (4, 1.0)]);
    assert_eq!(pass_at("bad"), vec![(1, 0.125), (2, 0.25), (4, 0.5)]);
    assert_eq!(row("good")["accuracy"].as_f64(), Some(0.75));
    assert_eq!(row("good")["n"].as_u64(), Some(40));
    // The paired statistics use the per-item means: retention 0.75 / 1.
    let good_cmp = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["student"] == "good" && c["category"].is_null())
        .unwrap();
    assert_eq!(good_cmp["retention"].as_f64(), Some(0.75));
    // Its bound: the score interval on the expected pass/fail cells (30
    // both right, 10 teacher only), not Fieller's on the item means, whose
    // sample variance is 0 here (every item 3 of 4) and would put the bound
    // at 0.75 itself. Reference: tests/reference/calibration_reference.py's
    // `score` on (30, 10, 0, 0) inverted by brentq at 0.95.
    let lower = good_cmp["retention_lower"].as_f64().unwrap();
    assert!((lower - 0.6240270595401831).abs() < 1e-6, "{lower}");
    // Per-item variance across samples: 3 of 4 right is 3·1/(4·3) = 0.25
    // (sample variance of [1, 1, 1, 0]); the teacher never varies.
    let variance = |model: &str| {
        summary["statistics"]["sample_variances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["model"] == model && v["category"].is_null())
            .map(|v| v["mean_item_variance"].as_f64().unwrap())
            .unwrap()
    };
    assert_eq!(variance("good"), 0.25);
    assert_eq!(variance("teacher"), 0.0);
    let verdict = |s: &str| {
        summary["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["student"] == s)
            .map(|g| g["verdict"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(verdict("good"), "PASS");
    assert_eq!(verdict("bad"), "FAIL");
    let journal = std::fs::read_to_string(run_dir.join("results.jsonl")).unwrap();
    assert_eq!(
        journal.lines().count(),
        3 * 40 * 4,
        "every sample journaled once"
    );
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.contains("## pass@k") && md.contains("pass@4"), "{md}");
}

#[test]
fn samples_without_temperature_are_refused() {
    let ws = Workspace::standard(20);
    ws.config("samples = 3\n");
    assert_broken(&ws, "suites[0].samples: 3 samples need `temperature` > 0");
}

#[test]
fn validate_runs_nothing_and_says_ok() {
    let ws = Workspace::standard(50);
    ws.config("");
    let out = run(&["validate", "gate.toml"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!ws.path().join("reports").exists());
}

#[test]
fn report_of_a_run_whose_config_no_longer_loads_lists_its_problems() {
    let ws = Workspace::standard(20);
    ws.config("");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    edit(&ws.path().join("gate.toml"), |s| {
        s + "\n[gate]\nmin_retenton = 0.9\n"
    });
    let out = run(&["report", "reports/t"], ws.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // As `validate` and `run` say them: each problem, then how many.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            lines[0],
            "error: the run could not be evaluated (1 problem(s))"
        ],
        "{stderr}"
    );
    assert!(lines[0].contains("min_retenton"), "{stderr}");
    assert!(!lines[0].starts_with("error:"), "{stderr}");
}

/// Asserts `distill-gate validate` and `run` exit 2 with a message containing `want`.
fn assert_broken(ws: &Workspace, want: &str) {
    for cmd in ["validate", "run"] {
        let out = run(
            &[cmd, "gate.toml", "--quiet"][..if cmd == "run" { 3 } else { 2 }],
            ws.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(want),
            "{cmd}: expected {want:?} in:\n{}",
            text(&out)
        );
    }
    assert!(
        !ws.path().join("reports/t/results.jsonl").exists(),
        "nothing may run"
    );
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let s = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(s)).unwrap();
}

#[test]
fn malformed_json_line_is_reported_with_file_and_line() {
    let ws = Workspace::standard(20);
    ws.config("");
    edit(&ws.path().join("suites/arith/test.jsonl"), |s| {
        let mut lines: Vec<String> = s.lines().map(String::from).collect();
        lines[4] = "{\"id\": \"broken\", ".into();
        lines.join("\n") + "\n"
    });
    assert_broken(&ws, "test.jsonl:5");
}

#[test]
fn unknown_task_field_is_reported() {
    let ws = Workspace::standard(20);
    ws.config("");
    edit(&ws.path().join("suites/arith/test.jsonl"), |s| {
        s.replacen("\"category\"", "\"colour\": 1, \"category\"", 1)
    });
    assert_broken(&ws, "test.jsonl:1");
}

#[test]
fn duplicate_task_id_is_reported() {
    let ws = Workspace::standard(20);
    ws.config("");
    edit(&ws.path().join("suites/arith/test.jsonl"), |s| {
        s.replace("\"t-3\"", "\"t-2\"")
    });
    assert_broken(&ws, "test.jsonl:4");
}

#[test]
fn missing_transcript_entry_is_reported_at_the_task() {
    let ws = Workspace::standard(20);
    ws.config("");
    edit(&ws.path().join("good.jsonl"), |s| {
        s.lines()
            .filter(|l| !l.contains("\"request_id\":\"t-7\""))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert_broken(&ws, "test.jsonl:8");
}

#[test]
fn empty_suite_is_reported() {
    let ws = Workspace::standard(20);
    ws.config("");
    std::fs::write(ws.path().join("suites/arith/test.jsonl"), "").unwrap();
    assert_broken(&ws, "test.jsonl");
}

#[test]
fn threshold_out_of_range_is_reported_with_line() {
    let ws = Workspace::standard(20);
    ws.config("[gate]\nconfidence = 1.5\n");
    assert_broken(&ws, "gate.toml:");
    assert_broken(&ws, "confidence");
}

#[test]
fn unknown_config_field_is_reported_with_line() {
    let ws = Workspace::standard(20);
    ws.config("[gate]\nmin_retenton = 0.9\n");
    assert_broken(&ws, "min_retenton");
}

#[test]
fn non_utf8_file_is_reported() {
    let ws = Workspace::standard(20);
    ws.config("");
    let path = ws.path().join("suites/arith/test.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().position(|&b| b == b'\n').unwrap() + 5;
    bytes[at] = 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert_broken(&ws, "test.jsonl:2");
}

#[test]
fn suites_list_shows_splits() {
    let ws = Workspace::new(12);
    let out = run(&["suites", "list", "suites"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("arith 1.0") && stdout.contains("test: 12 tasks"),
        "{stdout}"
    );
}

#[test]
fn clusters_and_holm_are_reported_and_plan_reads_the_run() {
    let ws = Workspace::standard(200);
    ws.config("[gate]\nclusters = \"category\"\nfamily_wise = \"holm\"\n");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run_dir = ws.path().join("reports/t");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    let st = &summary["statistics"];
    assert_eq!(st["interval"], "score");
    assert_eq!(st["clusters"], "category");
    assert_eq!(st["family_wise"], "holm");
    let deff = st["design_effects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["student"] == "bad" && d["suite"] == "arith" && d["category"].is_null())
        .unwrap();
    assert_eq!(deff["clusters"].as_u64(), Some(2), "{deff}");
    assert!(deff["design_effect"].as_f64().unwrap() > 0.0);
    // Holm over two gates: "good" passes at 1 - 0.05/2; "bad" fails and
    // stays at 1 - 0.05/1.
    let adjusted = |s: &str| {
        st["adjusted_confidences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["student"] == s)
            .map(|a| a["adjusted"].as_f64().unwrap())
            .unwrap()
    };
    assert_eq!(adjusted("good"), 0.975);
    assert_eq!(adjusted("bad"), 0.95);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Statistics") && md.contains("Design effect"),
        "{md}"
    );

    let out = run(&["plan", "--run", "reports/t"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("no INCONCLUSIVE gate"),
        "{}",
        text(&out)
    );
    let out = run(
        &[
            "plan",
            "--teacher-accuracy",
            "0.8",
            "--retention",
            "0.98",
            "--disagreement",
            "0.1",
        ],
        ws.path(),
    );
    // The exact plan (tests/plan.rs simulates it).
    assert!(
        text(&out).contains("paired items in total (a fresh suite)"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_confidently_worse_student_fails_on_a_small_suite() {
    // Issue 18: 8 items, teacher right on 7, "bad" on none (McNemar
    // p = 0.016). The teacher is below min_teacher_correct = 10, but the
    // score interval's upper bound shows "bad" below 0.95 with 95%
    // confidence: FAIL, not "not measurable". "good" keeps every item the
    // teacher got right: the data cannot tell, INCONCLUSIVE with items to add.
    let ws = Workspace::new(8);
    ws.transcript("teacher", 400.0, |i| i != 0);
    ws.transcript("good", 50.0, |i| i != 0);
    ws.transcript("bad", 50.0, |_| false);
    ws.config("");
    let out = run(&["run", "gate.toml", "--quiet"], ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary = summary_of(&ws);
    let bad = gate_of(&summary, "bad");
    assert_eq!(bad["verdict"], "FAIL", "{bad}");
    let reason = bad["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("one-sided upper bound") && reason.contains("< 0.95 at confidence 0.95"),
        "{reason}"
    );
    let good = gate_of(&summary, "good");
    assert_eq!(good["verdict"], "INCONCLUSIVE", "{good}");
    let more = good["items_needed"].as_u64().unwrap();
    let detail = summary["statistics"]["gate_retention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["student"] == "good")
        .cloned()
        .unwrap();
    assert_eq!(detail["basis"], "too_few_teacher_correct", "{detail}");
    assert_eq!(detail["items_total"].as_u64(), Some(8 + more), "{detail}");
    // 7 of 8 right for both: the score bound at 0.95 needs 52 such items.
    assert!(more > 40, "{detail}");
    // `plan --run` at the gate's power gives the same items to add.
    let out = run(&["plan", "--run", "reports/t"], ws.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want = format!(
        "good on arith: 8 items, teacher accuracy 0.875, retention not measurable, \
         disagreement 0.000: {more} more paired items ({} in total) would decide it with \
         probability 0.8",
        8 + more
    );
    assert!(text(&out).contains(&want), "{}", text(&out));
    // The reports say the items to add once: in the gate's reason (JUnit
    // in its failure's message and text).
    let advice = format!("{more} more paired items");
    for (file, times) in [
        ("report.md", 1),
        ("report.txt", 1),
        ("report.html", 1),
        ("junit.xml", 2),
    ] {
        let body = std::fs::read_to_string(ws.path().join("reports/t").join(file)).unwrap();
        assert_eq!(body.matches(&advice).count(), times, "{file}: {body}");
    }
}
