//! `kind = "answers"`: outputs another system already gave, one
//! `{"id": "<suite>/<task id>", "output": ...}` a line, are gated exactly as
//! the same outputs replayed from a transcript; every bad line, missing and
//! unknown item is named by file and line; latencies the file gives are
//! marked recorded and none is made up; an edited file is read again.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod support;
use support::{Workspace, arith, standard_models, text};

/// The answer of the "good" student of [`standard_models`] to item `i`
/// (target `t`): right except on every tenth item.
fn good_output(i: usize) -> String {
    let wrong = if i.is_multiple_of(10) { 1.0 } else { 0.0 };
    format!(" {}", (i + 3) as f64 + wrong)
}

/// Writes `<name>.answers.jsonl` with `lines` and returns its path.
fn answers_file(ws: &Workspace, name: &str, lines: &[String]) -> PathBuf {
    let path = ws.path().join(format!("{name}.answers.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// One answers line.
fn line(task: usize, output: &str, extra: &str) -> String {
    format!(
        "{{\"id\": \"arith/t-{task}\", \"output\": {}{extra}}}",
        serde_json::to_string(output).unwrap()
    )
}

/// `gate.toml` with a replayed teacher (`teacher.jsonl`) and one student:
/// `student` is the TOML of its table's model keys.
fn config(ws: &Workspace, student: &str) -> PathBuf {
    let text = format!(
        "[run]\nname = \"t\"\noutput_dir = \"reports\"\nseed = 7\n\
         [teacher]\nname = \"teacher\"\nkind = \"replay\"\ntranscript = \"teacher.jsonl\"\n\
         price = {{ input_per_mtok = 1.0, output_per_mtok = 4.0 }}\n\
         [[students]]\nname = \"good\"\n{student}\n\
         [[suites]]\npath = \"suites/s\"\n"
    );
    let path = ws.path().join("gate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn summary(ws: &Workspace) -> Value {
    let text = std::fs::read_to_string(ws.run_dir().join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The statistics and verdicts of a run, without what names the models'
/// files (identities, fingerprints, backends) or their latencies.
fn verdicts(s: &Value) -> Value {
    let mut comparisons = s["comparisons"].clone();
    for c in comparisons.as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        for key in ["speedup", "speedup_source", "cost_ratio", "savings_per_1k"] {
            c.remove(key);
        }
    }
    let mut gates = s["gates"].clone();
    for g in gates.as_array_mut().unwrap() {
        // The reasons may cite speed and cost; the verdict and the
        // retention figures are what must agree.
        g.as_object_mut().unwrap().remove("reasons");
    }
    serde_json::json!({ "comparisons": comparisons, "gates": gates })
}

/// (task id, output, score) of the last journaled answer of `model` to
/// each task.
fn answers_of(ws: &Workspace, model: &str) -> Vec<(String, String, f64)> {
    let entries = distill_gate::run::journal::read(&ws.run_dir().join("results.jsonl")).unwrap();
    let last: std::collections::BTreeMap<String, (String, f64)> = entries
        .into_iter()
        .filter(|e| e.model == model)
        .map(|e| (e.task_id, (e.output.unwrap_or_default(), e.score)))
        .collect();
    last.into_iter().map(|(id, (o, s))| (id, o, s)).collect()
}

/// What `summary.json` says of `model` on the whole suite.
fn overall(s: &Value, model: &str) -> Value {
    s["model_stats"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|m| m["model"] == model && m["suite"] == "arith" && m["category"].is_null())
        })
        .cloned()
        .unwrap_or_else(|| panic!("no row of {model} in {s}"))
}

/// The accuracy `summary.json` gives `model` on the whole suite.
fn accuracy(ws: &Workspace, model: &str) -> f64 {
    overall(&summary(ws), model)["accuracy"].as_f64().unwrap()
}

#[test]
fn an_answers_file_is_gated_exactly_as_a_transcript_of_the_same_outputs() {
    let ws = arith(60);
    standard_models(&ws);
    // The student replayed from its transcript.
    let cfg = config(
        &ws,
        "kind = \"replay\"\ntranscript = \"good.jsonl\"\nprice = { per_hour = 1.0 }",
    );
    let replayed = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(
        matches!(replayed.status.code(), Some(0 | 1)),
        "{}",
        text(&replayed)
    );
    let replayed_summary = summary(&ws);
    let replayed_answers = answers_of(&ws, "good");
    // Its reports name only the sources of recorded latencies it can have.
    let md = std::fs::read_to_string(ws.run_dir().join("report.md")).unwrap();
    assert!(md.contains("replayed from a transcript or served"), "{md}");
    assert!(!md.contains("answers file"), "{md}");

    // The same outputs as an answers file: no usage, no latency, in
    // another order than the suite's, with a blank line.
    let mut lines: Vec<String> = (0..60)
        .rev()
        .map(|i| line(i, &good_output(i), ""))
        .collect();
    lines.insert(7, String::new());
    let file = answers_file(&ws, "good", &lines);
    let cfg = config(&ws, "kind = \"answers\"\nanswers = \"good.answers.jsonl\"");
    let validated = ws.run(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(validated.status.code(), Some(0), "{}", text(&validated));
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet", "--fresh"]);
    assert_eq!(out.status.code(), replayed.status.code(), "{}", text(&out));
    let s = summary(&ws);
    assert_eq!(verdicts(&s), verdicts(&replayed_summary));
    assert_eq!(answers_of(&ws, "good"), replayed_answers);

    // Its identity is the file's content hash; no latency was made up.
    let sha = distill_gate::fingerprint::sha256_file(&file).unwrap();
    let model = s["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == "good"))
        .unwrap();
    assert_eq!(model["fingerprint"], Value::String(sha));
    assert!(
        model["backend"]
            .as_str()
            .unwrap()
            .starts_with("answers file "),
        "{model}"
    );
    let stats = overall(&s, "good");
    assert_eq!(stats["latency"], Value::Null, "{stats}");
    let entries = distill_gate::run::journal::read(&ws.run_dir().join("results.jsonl")).unwrap();
    for e in entries.iter().filter(|e| e.model == "good") {
        assert_eq!(e.latency, None, "{e:?}");
        assert_eq!(e.finish, None, "{e:?}");
    }
    for file in ["report.md", "report.html", "results.csv", "junit.xml"] {
        assert!(ws.run_dir().join(file).is_file(), "{file}");
    }
}

#[test]
fn an_answers_teacher_s_latencies_are_recorded_not_measured() {
    let ws = arith(30);
    standard_models(&ws);
    let teacher: Vec<String> = (0..30)
        .map(|i| {
            line(
                i,
                &format!(" {}", i + 3),
                &format!(
                    ", \"usage\": {{\"prompt_tokens\": 40, \"completion_tokens\": 2}}, \"latency_ms\": {}",
                    200 + i
                ),
            )
        })
        .collect();
    answers_file(&ws, "teacher", &teacher);
    let student: Vec<String> = (0..30).map(|i| line(i, &good_output(i), "")).collect();
    answers_file(&ws, "good", &student);
    let text_cfg = "[run]\nname = \"t\"\noutput_dir = \"reports\"\nseed = 7\n\
         [teacher]\nname = \"teacher\"\nkind = \"answers\"\nanswers = \"teacher.answers.jsonl\"\n\
         price = { input_per_mtok = 1.0, output_per_mtok = 4.0 }\n\
         [[students]]\nname = \"good\"\nkind = \"answers\"\nanswers = \"good.answers.jsonl\"\n\
         [[suites]]\npath = \"suites/s\"\n";
    let cfg = ws.path().join("gate.toml");
    std::fs::write(&cfg, text_cfg).unwrap();
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary(&ws);
    let teacher = overall(&s, "teacher");
    // 200..=229 ms: all 30 recorded, none measured by this run.
    assert_eq!(teacher["latency"]["recorded"], 30, "{teacher}");
    assert_eq!(teacher["latency"]["live"], 0, "{teacher}");
    assert_eq!(teacher["latency"]["p50_ms"], 214.5, "{teacher}");
    // The teacher's cost comes from the usage the file gives: 30 answers of
    // 40 + 2 tokens at $1 and $4 per million.
    let teacher_cost: f64 = distill_gate::run::journal::read(&ws.run_dir().join("results.jsonl"))
        .unwrap()
        .iter()
        .filter(|e| e.model == "teacher")
        .map(|e| e.cost)
        .sum();
    assert!(
        (teacher_cost - 30.0 * 48e-6).abs() < 1e-12,
        "{teacher_cost}"
    );
    // The reports say where the recorded latencies may come from.
    let md = std::fs::read_to_string(ws.run_dir().join("report.md")).unwrap();
    assert!(md.contains("given in an answers file"), "{md}");
    let csv = std::fs::read_to_string(ws.run_dir().join("results.csv")).unwrap();
    assert!(csv.contains("recorded"), "{csv}");
}

/// `validate` on `cfg`: exit 2, and its stderr.
fn refused(ws: &Workspace, cfg: &Path) -> String {
    let out = ws.run(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_bad_missing_duplicate_and_unknown_answer_is_named_by_file_and_line() {
    let ws = arith(6);
    standard_models(&ws);
    let lines = vec![
        line(0, " 3", ""),
        line(1, " 4", ""),
        line(1, " 4", ""),                                         // 3: duplicate
        "{\"id\": \"other/t-2\", \"output\": \" 5\"}".to_string(), // 4: no such suite
        line(77, " 80", ""),                                       // 5: no such task
        line(2, " 5", ", \"sample\": 1"),                          // 6: one sample only
        line(3, " 6", ", \"latency_ms\": -3"),                     // 7: negative
        "{\"id\": \"arith/t-4\", \"output\": \" 7\", \"score\": 1}".to_string(), // 8: unknown key
        "{\"id\": \"arith/t-5\"}".to_string(),                     // 9: no output
        "not json".to_string(),                                    // 10
    ];
    let file = answers_file(&ws, "good", &lines);
    let cfg = config(&ws, "kind = \"answers\"\nanswers = \"good.answers.jsonl\"");
    let f = file.display().to_string();
    // Line errors first: the file is not used until every line reads.
    let err = refused(&ws, &cfg);
    for want in [
        format!("{f}:3: id: duplicate answer to \"arith/t-1\": line 2 answers it already"),
        format!("{f}:7: latency_ms: -3 is not a duration"),
        format!("{f}:8: "),
        format!("{f}:9: "),
        format!("{f}:10: "),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("score"), "{err}");
    assert!(err.contains("output"), "{err}");

    // The lines read: unknown ids at their lines, missing items at theirs
    // in the suite file.
    let lines: Vec<String> = lines[..6]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l.clone())
        .collect();
    answers_file(&ws, "good", &lines);
    let err = refused(&ws, &cfg);
    let suite = ws.path().join("suites/s/test.jsonl").display().to_string();
    for want in [
        format!(
            "{f}:3: id: unknown id \"other/t-2\": this run has no suite \"other\" (its suites: arith)"
        ),
        format!(
            "{f}:4: id: unknown id \"arith/t-77\": suite \"arith\" has no task \"t-77\" in its \"test\" split"
        ),
        format!("{f}:5: sample: sample 1 of \"arith/t-2\", but the run draws 1 answer(s) per item"),
        format!("{suite}:3: id: task \"t-2\": no answer with id \"arith/t-2\""),
        format!("{suite}:4: id: task \"t-3\": no answer"),
        format!("{suite}:5: id: task \"t-4\": no answer"),
        format!("{suite}:6: id: task \"t-5\": no answer"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains(&format!("{suite}:1:")),
        "t-0 is answered:\n{err}"
    );
    // `run` refuses it alike, before any model runs.
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!ws.run_dir().join("results.jsonl").exists());

    // A per-token price needs usage on every line, a missing file is named.
    let all: Vec<String> = (0..6).map(|i| line(i, " 1", "")).collect();
    answers_file(&ws, "good", &all);
    let priced = config(
        &ws,
        "kind = \"answers\"\nanswers = \"good.answers.jsonl\"\nprice = { input_per_mtok = 1.0, output_per_mtok = 1.0 }",
    );
    let err = refused(&ws, &priced);
    assert!(
        err.contains(&format!("{f}:1: usage: model \"good\" is priced per token")),
        "{err}"
    );
    let gone = config(&ws, "kind = \"answers\"\nanswers = \"nowhere.jsonl\"");
    let err = refused(&ws, &gone);
    assert!(
        err.contains("answers file")
            && err.contains("nowhere.jsonl")
            && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn an_edited_answers_file_is_read_again_on_resume() {
    let ws = arith(20);
    standard_models(&ws);
    let mut lines: Vec<String> = (0..20).map(|i| line(i, &good_output(i), "")).collect();
    answers_file(&ws, "good", &lines);
    let cfg = config(&ws, "kind = \"answers\"\nanswers = \"good.answers.jsonl\"");
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let before = answers_of(&ws, "good");
    let t0 = before.iter().find(|(id, _, _)| id == "t-0").unwrap();
    assert_eq!(t0.2, 0.0, "t-0 was answered wrong");
    assert_eq!(accuracy(&ws, "good"), 0.9);
    let journal = ws.run_dir().join("results.jsonl");
    let lines_before = std::fs::read_to_string(&journal).unwrap().lines().count();

    // The same run again reuses every answer: nothing is journaled.
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let count = || std::fs::read_to_string(&journal).unwrap().lines().count();
    assert_eq!(count(), lines_before);

    // The file edited (t-0 now right) is another model: all 20 of its
    // answers are read again, and the verdict is the new file's.
    lines[0] = line(0, " 3", "");
    answers_file(&ws, "good", &lines);
    let out = ws.run(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert_eq!(count(), lines_before + 20);
    let after = answers_of(&ws, "good");
    let t0 = after.iter().find(|(id, _, _)| id == "t-0").unwrap();
    assert_eq!((t0.1.as_str(), t0.2), (" 3", 1.0), "{after:?}");
    assert_eq!(accuracy(&ws, "good"), 0.95);
}

/// The scenario README's "Where the numbers come from" and
/// docs/calibration.md describe, on the repo's own data: a student that
/// gives exactly the demo teacher's answers on 60 logistics test items
/// (partial credit). It must not PASS with certainty: the score interval
/// on the expected pass/fail table bounds it at a / (a + z^2), `a` the
/// teacher's score sum (no discordance), with or without clustering, and
/// the items to add are the same 200 in the gate, its reports and
/// `plan --run`.
#[test]
fn a_student_copying_the_teachers_partial_credit_answers_is_not_certain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let transcript = root.join("fixtures/teacher/smollm2-135m-test.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut copy = String::new();
    for l in std::fs::read_to_string(&transcript).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let id = v["request_id"].as_str().unwrap_or_default().to_string();
        if id.starts_with("logistics/") && seen.insert(id.clone()) {
            let out = serde_json::json!({"id": id, "output": v["completion"]["text"]});
            copy.push_str(&format!("{out}\n"));
        }
    }
    std::fs::write(dir.path().join("copy.jsonl"), copy).unwrap();
    let z = 1.6448536269514722; // the standard normal's 95% quantile
    for (name, gate) in [
        ("plain", ""),
        ("clustered", "[gate]\nclusters = \"category\"\n"),
    ] {
        let toml = format!(
            "[run]\nname = \"{name}\"\noutput_dir = \"reports\"\n\n\
             [teacher]\nname = \"teacher\"\nkind = \"replay\"\ntranscript = {:?}\n\n\
             [[students]]\nname = \"copycat\"\nkind = \"answers\"\nanswers = \"copy.jsonl\"\n\n\
             [[suites]]\npath = {:?}\nsplit = \"test\"\nlimit = 60\n\n{gate}",
            transcript.display().to_string(),
            root.join("suites/logistics").display().to_string(),
        );
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, toml).unwrap();
        let bin = env!("CARGO_BIN_EXE_distill-gate");
        let out = std::process::Command::new(bin)
            .args(["run", config.to_str().unwrap(), "--quiet"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let run_dir = dir.path().join("reports").join(name);
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["gates"][0]["verdict"], "INCONCLUSIVE", "{name}");
        let r = &s["statistics"]["gate_retention"][0];
        let a = r["teacher_correct"].as_f64().unwrap();
        assert!(a.fract() != 0.0, "{name}: partial credit, {a}");
        assert_eq!(r["point"].as_f64(), Some(1.0));
        let lower = r["lower_bound"].as_f64().unwrap();
        assert!(
            (lower - a / (a + z * z)).abs() < 1e-9,
            "{name}: {lower} vs a = {a}"
        );
        assert!((0.828..0.829).contains(&lower), "{name}: {lower}");
        assert_eq!(r["items_to_add"].as_u64(), Some(200), "{name}: {r}");
        let plan = std::process::Command::new(bin)
            .args(["plan", "--run", run_dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&plan.stdout).contains("200 more paired items (260 in total)"),
            "{name}: {}",
            text(&plan)
        );
    }
}
