//! Task-specific students (issue 21): a student entry with `categories` is
//! asked only those categories' items, with its own prompt template
//! (`few_shot`), gated on each category it takes; the teacher is asked
//! everything with the suite's prompts; reports and the swap plan follow.

use std::path::PathBuf;

use distill_gate::suite::Task;

mod support;
use support::{Workspace, text};

/// Few-shot prompts: one example from train.
const SUITE: &str = "name = \"arith\"\nversion = \"1.0\"\ndescription = \"sums\"\n[defaults]\nprompt = \"Add.\\n\\n{examples}Q: {input}\\nA:\"\nexample = \"Q: {input}\\nA: {target}\"\nfew_shot = 1\nmax_tokens = 8\nstop = [\"\\n\"]\nscorer = { kind = \"numeric\", abs_tol = 0.0 }\n";

/// 90 test items, 30 per category (`even`, `odd`, `big` in turn), and a
/// train split for the examples.
fn workspace() -> Workspace {
    let tasks = |split: &str, n: usize| -> String {
        (0..n)
            .map(|i| {
                let cat = ["even", "odd", "big"][i % 3];
                format!(
                    "{{\"id\": \"{split}-{i}\", \"category\": \"{cat}\", \"input\": \"{i} + 3\", \"target\": {}}}\n",
                    i + 3
                )
            })
            .collect()
    };
    let ws = Workspace::new(SUITE, &tasks("t", 90));
    std::fs::write(ws.path().join("suites/s/train.jsonl"), tasks("tr", 6)).unwrap();
    ws
}

/// A transcript of `model` answering the items `asked` takes, under the
/// template with `few_shot` examples (`None`: the suite's), right where
/// `right(i)`.
fn transcript(
    ws: &Workspace,
    model: &str,
    few_shot: Option<usize>,
    asked: impl Fn(&Task) -> bool,
    right: impl Fn(usize) -> bool,
) -> PathBuf {
    ws.transcript_with(model, few_shot, asked, |i, t| {
        let target = t.target.as_f64().unwrap_or(0.0);
        format!(" {}", if right(i) { target } else { target + 1.0 })
    })
}

const SPECIALIST: &str = "categories = [\"arith/odd\"]\nfew_shot = 0\n";

/// The config: teacher, a general student and the `odd` specialist.
fn config(ws: &Workspace, specialist: &str) {
    let path = ws.config(&["teacher", "general"], "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[[suites]]",
        &format!(
            "[[students]]\nname = \"odd-only\"\nkind = \"replay\"\ntranscript = \"odd-only.jsonl\"\nprice = {{ per_hour = 1.0 }}\n{specialist}[[suites]]"
        ),
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_task_specific_student_is_asked_and_gated_only_on_its_categories() {
    let ws = workspace();
    transcript(&ws, "teacher", None, |_| true, |i| i % 10 != 0);
    transcript(&ws, "general", None, |_| true, |i| i % 10 != 0);
    // Asked only `odd`, zero-shot: its transcript has nothing else, so a
    // run that asked it anything more (or with the suite's prompts) would
    // stop at a missing transcript entry.
    transcript(&ws, "odd-only", Some(0), |t| t.category == "odd", |_| true);
    config(&ws, SPECIALIST);
    let out = ws.run(&["run", "gate.toml", "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.run_dir().join("summary.json")).unwrap())
            .unwrap();
    let gates = summary["gates"].as_array().unwrap();
    let of = |s: &str| {
        gates
            .iter()
            .filter(|g| g["student"] == s)
            .collect::<Vec<_>>()
    };
    // The general student: one gate on the whole suite; the specialist:
    // one on its category.
    assert_eq!(of("general").len(), 1);
    assert!(of("general")[0].get("category").is_none());
    let special = of("odd-only");
    assert_eq!(special.len(), 1, "{special:?}");
    assert_eq!(special[0]["suite"], "arith");
    assert_eq!(special[0]["category"], "odd");
    // Its comparison is on the 30 odd items, paired by task id although
    // its prompts differ from the teacher's.
    let cmp = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["student"] == "odd-only")
        .collect::<Vec<_>>();
    assert_eq!(cmp.len(), 1, "compared only on its category: {cmp:?}");
    assert_eq!(cmp[0]["category"], "odd");
    assert_eq!(cmp[0]["n"], 30);
    let model = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "odd-only")
        .unwrap();
    assert_eq!(model["categories"][0], "arith/odd");
    assert_eq!(model["few_shot"], 0);
    // The journal: the teacher answered 90 items, the specialist 30.
    let journal = std::fs::read_to_string(ws.run_dir().join("results.jsonl")).unwrap();
    let count = |m: &str| {
        journal
            .lines()
            .filter(|l| l.contains(&format!("\"model\":\"{m}\"")))
            .count()
    };
    assert_eq!((count("teacher"), count("odd-only")), (90, 30));
    // Every report names what it was asked and the gate's scope.
    let report = std::fs::read_to_string(ws.run_dir().join("report.txt")).unwrap();
    assert!(report.contains("arith/odd"), "{report}");
    assert!(
        report.contains("odd-only was asked: arith/odd; own prompts without few-shot examples"),
        "{report}"
    );
    let md = std::fs::read_to_string(ws.run_dir().join("report.md")).unwrap();
    assert!(md.contains("own prompts without few-shot examples"), "{md}");
    assert!(md.contains("arith/odd"), "{md}");
    let html = std::fs::read_to_string(ws.run_dir().join("report.html")).unwrap();
    assert!(html.contains("own prompts without few-shot examples"));
    let junit = std::fs::read_to_string(ws.run_dir().join("junit.xml")).unwrap();
    assert!(junit.contains("odd-only / arith/odd"), "{junit}");
    // compare: the specialist is compared on its category, and says so.
    let run = ws.run_dir().display().to_string();
    let out = ws.run(&["compare", &run, &run, "--out", "cmp"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("cmp/compare.json")).unwrap())
            .unwrap();
    let student = report["students"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["student"] == "odd-only")
        .unwrap();
    assert_eq!(student["suites"][0]["categories"][0], "odd", "{student}");
    assert_eq!(student["suites"][0]["matched"], 30, "{student}");
    let md = std::fs::read_to_string(ws.path().join("cmp/compare.md")).unwrap();
    assert!(md.contains("| arith/odd |"), "{md}");
}

#[test]
fn a_specialist_asked_with_the_suites_prompts_is_missing_its_answers() {
    // The transcript holds zero-shot answers; without `few_shot = 0` the
    // run asks the suite's few-shot prompts, which it does not have.
    let ws = workspace();
    transcript(&ws, "teacher", None, |_| true, |_| true);
    transcript(&ws, "general", None, |_| true, |_| true);
    transcript(&ws, "odd-only", Some(0), |t| t.category == "odd", |_| true);
    config(&ws, "categories = [\"arith/odd\"]\n");
    let out = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no completion for this prompt"),
        "{}",
        text(&out)
    );
}

#[test]
fn unknown_categories_are_refused_at_their_line() {
    let ws = workspace();
    transcript(&ws, "teacher", None, |_| true, |_| true);
    transcript(&ws, "general", None, |_| true, |_| true);
    transcript(&ws, "odd-only", Some(0), |t| t.category == "odd", |_| true);
    for (categories, want) in [
        (
            "categories = [\"arith/nope\"]\n",
            "students[1].categories: \"arith/nope\": suite \"arith\" has no planned item of category \"nope\"",
        ),
        (
            "categories = [\"other/odd\"]\n",
            "no suite named \"other\" in this run",
        ),
        (
            "categories = [\"odd\"]\n",
            "\"odd\" is not `suite/category`",
        ),
    ] {
        config(&ws, categories);
        let out = ws.run(&["validate", "gate.toml"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(want), "{}", text(&out));
        assert!(text(&out).contains("gate.toml:"), "{}", text(&out));
    }
}
