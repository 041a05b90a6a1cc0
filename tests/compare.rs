//! `distill-gate compare BASELINE CANDIDATE`: decisions, exit codes, files,
//! and refusals, on replay-only runs over the demo suites; and the swap plan
//! in a run's report.md.

use std::path::Path;

#[path = "support/demo.rs"]
mod demo;

use demo::{Student, run, text};

/// The demo teacher gets too few coding items right for retention to be
/// measurable on a small slice; logistics (120 items) is decidable.
const SUITES: &[(&str, usize)] = &[("logistics", 120)];

fn copy() -> Student {
    Student {
        name: "copy",
        speed: 0.05,
        wrong: |_| false,
    }
}

/// Workspaces of a baseline and a candidate run, each with `copy` and
/// `lossy`; the baseline's `lossy` answers every tenth item wrong, the
/// candidate's every other one (and twice as fast).
fn baseline_and_worse(suites: &[(&str, usize)]) -> (tempfile::TempDir, tempfile::TempDir) {
    let ws = |speed, wrong| {
        demo::workspace(
            1,
            &[
                copy(),
                Student {
                    name: "lossy",
                    speed,
                    wrong,
                },
            ],
            suites,
        )
    };
    (ws(0.02, |i| i % 10 == 0), ws(0.01, |i| i % 2 == 0))
}

/// `compare BASELINE CANDIDATE --out cmp` in `dir`.
fn compare_into_cmp(baseline: &Path, candidate: &Path, dir: &Path) -> std::process::Output {
    run(
        &[
            "compare",
            &baseline.display().to_string(),
            &candidate.display().to_string(),
            "--out",
            "cmp",
        ],
        dir,
    )
}

/// Runs a workspace's config and returns the run directory.
fn run_ws(ws: &Path) -> std::path::PathBuf {
    let out = run(&["run", "gate.toml", "--quiet"], ws);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    ws.join("reports/demo")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn compare_approves_the_same_and_rejects_the_worse() {
    let (base, cand) = baseline_and_worse(SUITES);
    let (b, c) = (run_ws(base.path()), run_ws(cand.path()));
    let (bs, cs) = (b.display().to_string(), c.display().to_string());
    let out = run(
        &["compare", &bs, &cs, "--out", "cmp", "--summary-md", "pr.md"],
        cand.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("copy: APPROVE"), "{stdout}");
    assert!(stdout.contains("lossy: REJECT"), "{stdout}");

    let report = json(&cand.path().join("cmp/compare.json"));
    assert_eq!(report["exit_code"], 1);
    let student = |name: &str| {
        report["students"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["student"] == name)
            .cloned()
            .unwrap()
    };
    let same = student("copy");
    assert_eq!(same["decision"]["decision"], "APPROVE");
    for suite in same["suites"].as_array().unwrap() {
        assert_eq!(suite["matched"], 120, "{suite}");
        // Identical answers: no change, no item scored lower or higher.
        assert_eq!(suite["accuracy_change"]["point"], 0.0);
        assert_eq!(suite["accuracy_change"]["lower"], 0.0);
        assert_eq!(suite["accuracy_change"]["upper"], 0.0);
        assert_eq!(suite["changes"]["down"], 0);
        assert_eq!(suite["changes"]["up"], 0);
        assert_eq!(suite["ratio"], 1.0);
    }
    let worse = student("lossy");
    assert_eq!(worse["decision"]["decision"], "REJECT");
    let logistics = worse["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["suite"] == "logistics")
        .cloned()
        .unwrap();
    let change = &logistics["accuracy_change"];
    let (point, lower, upper) = (
        change["point"].as_f64().unwrap(),
        change["lower"].as_f64().unwrap(),
        change["upper"].as_f64().unwrap(),
    );
    assert!(lower <= point && point <= upper && point < 0.0, "{change}");
    // The change equals the difference of the two accuracies.
    let diff = logistics["candidate_accuracy"].as_f64().unwrap()
        - logistics["baseline_accuracy"].as_f64().unwrap();
    assert!((diff - point).abs() < 1e-12);
    // The candidate only loses: items scored lower, none higher. Logistics
    // has partial-credit scores, so no McNemar (it needs pass/fail).
    assert!(logistics["changes"]["down"].as_u64().unwrap() > 0);
    assert_eq!(logistics["changes"]["up"], 0);
    assert!(logistics["changes"]["mcnemar_p"].is_null());
    // The candidate is faster: p50 went down.
    assert!(
        logistics["candidate"]["p50_ms"].as_f64().unwrap()
            < logistics["baseline"]["p50_ms"].as_f64().unwrap()
    );
    assert!(report["swap_plans"].as_array().unwrap().len() == 2);
    // They are the candidate run's own, as its summary stores them; a
    // summary written before plans were stored gets the same ones computed.
    assert_eq!(
        report["swap_plans"],
        json(&c.join("summary.json"))["swap_plans"]
    );
    let mut older = json(&c.join("summary.json"));
    older.as_object_mut().unwrap().remove("swap_plans");
    std::fs::write(c.join("summary.json"), older.to_string()).unwrap();
    let again = compare_into_cmp(&b, &c, cand.path());
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let recomputed = json(&cand.path().join("cmp/compare.json"));
    assert_eq!(recomputed["swap_plans"], report["swap_plans"]);

    let md = std::fs::read_to_string(cand.path().join("cmp/compare.md")).unwrap();
    assert!(
        md.contains("## Swap plan") && md.contains("| Suite |"),
        "{md}"
    );
    let pr = std::fs::read_to_string(cand.path().join("pr.md")).unwrap();
    assert!(
        pr.contains("✅ APPROVE") && pr.contains("❌ REJECT"),
        "{pr}"
    );
    assert!(!pr.contains("]("), "link-free: {pr}");

    // The run's own report.md has the swap plan: copy takes over categories.
    let report_md = std::fs::read_to_string(c.join("report.md")).unwrap();
    assert!(report_md.contains("## Swap plan"), "{report_md}");
    assert!(report_md.contains("| student |"), "{report_md}");
}

#[test]
fn every_student_approved_exits_0() {
    let base = demo::workspace(3, &[copy()], SUITES);
    let cand = demo::workspace(3, &[copy()], SUITES);
    let (b, c) = (run_ws(base.path()), run_ws(cand.path()));
    let out = run(
        &[
            "compare",
            &b.display().to_string(),
            &c.display().to_string(),
        ],
        base.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn runs_that_cannot_be_compared_exit_2() {
    let base = demo::workspace(1, &[copy()], SUITES);
    let other_suites = demo::workspace(1, &[copy()], &[("coding", 40), ("logistics", 120)]);
    let other_student = demo::workspace(
        1,
        &[Student {
            name: "renamed",
            speed: 0.05,
            wrong: |_| false,
        }],
        SUITES,
    );
    let b = run_ws(base.path());
    let check = |ws: &Path, want: &str| {
        let c = run_ws(ws);
        let out = run(
            &[
                "compare",
                &b.display().to_string(),
                &c.display().to_string(),
            ],
            ws,
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "expected {want:?}: {}", text(&out));
    };
    check(other_suites.path(), "the runs evaluated different suites");
    check(other_student.path(), "no student is in both runs");
    let out = run(
        &["compare", &b.display().to_string(), "nowhere"],
        base.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("summary.json"));
}

/// Every line of `text` is at most `width` characters.
fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "{} columns > {width}: {line:?}\n{text}",
            line.chars().count()
        );
    }
}

fn summary_row<'a>(
    summary: &'a serde_json::Value,
    key: &str,
    student: &str,
    suite: &str,
) -> &'a serde_json::Value {
    let name = if key == "model_stats" {
        "model"
    } else {
        "student"
    };
    summary[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[name] == student && r["suite"] == suite && r["category"].is_null())
        .unwrap_or_else(|| panic!("no {key} row for {student} on {suite}"))
}

/// Found comparing two demo runs: coding showed "0.000 -> 0.000" where the
/// run reports said "not measurable", the decision reason called the
/// baseline "the teacher", and the terminal table was about 250 columns.
/// Each figure compare shows for a run must be the run's own: the same
/// accuracy, the same retention by the same rule (interval method and the
/// run's own `min_teacher_correct`), the same verdict words and rounding.
#[test]
fn compare_agrees_with_the_runs_reports() {
    let suites = &[("coding", 40), ("logistics", 120)];
    let (base, cand) = baseline_and_worse(suites);
    // The baseline run needs 30 items right from its teacher (25 on
    // logistics): its report calls logistics retention not measurable,
    // the candidate's (default 10) does not.
    let config = base.path().join("gate.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replacen("seed = 1\n", "seed = 1\nmin_teacher_correct = 30\n", 1),
    )
    .unwrap();
    let (b, c) = (run_ws(base.path()), run_ws(cand.path()));
    let out = compare_into_cmp(&b, &c, cand.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // Not a terminal: laid out for 100 columns.
    assert_fits(&stdout, 100);
    // Numbers rounded for people.
    let long_float = regex::Regex::new(r"\d\.\d{7,}").unwrap();
    assert!(!long_float.is_match(&stdout), "{stdout}");

    let report = json(&cand.path().join("cmp/compare.json"));
    let runs = [json(&b.join("summary.json")), json(&c.join("summary.json"))];
    let mut not_measurable = 0;
    for student in report["students"].as_array().unwrap() {
        let name = student["student"].as_str().unwrap();
        for suite in student["suites"].as_array().unwrap() {
            let suite_name = suite["suite"].as_str().unwrap();
            for (side, summary) in ["baseline", "candidate"].iter().zip(&runs) {
                let stats = summary_row(summary, "model_stats", name, suite_name);
                let cmp = summary_row(summary, "comparisons", name, suite_name);
                let what = format!("{side} {name} {suite_name}");
                // Every item matched: the run's own accuracy and retention.
                assert_eq!(suite["matched"], stats["n"], "{what}");
                let acc = suite[format!("{side}_accuracy")].as_f64().unwrap();
                let run_acc = stats["accuracy"].as_f64().unwrap();
                assert!((acc - run_acc).abs() <= 1e-12 * run_acc.abs(), "{what}");
                let ret = &suite[format!("{side}_retention")];
                assert_eq!(ret["teacher_correct"], cmp["teacher_correct"], "{what}");
                assert_eq!(cmp["measurable"], !ret["retention"].is_null(), "{what}");
                if let Some(r) = cmp["retention"].as_f64() {
                    let x = ret["retention"].as_f64().unwrap();
                    assert!((x - r).abs() <= 1e-12 * r.abs(), "{what}: {x} vs {r}");
                } else {
                    not_measurable += 1;
                }
                // The run's verdict, in the run's words.
                let gate = summary["gates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["student"] == name && g["suite"] == suite_name)
                    .unwrap();
                assert_eq!(suite[format!("{side}_verdict")], gate["verdict"], "{what}");
            }
            if suite["baseline_retention"]["retention"].is_null()
                || suite["candidate_retention"]["retention"].is_null()
            {
                assert!(suite["retention_change"].is_null(), "{suite}");
            }
            // A ratio the decision calls not measurable has no number.
            let unmeasured = suite["decision"]["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("ratio cannot be measured"));
            if suite_name == "coding" {
                // The baseline got 2 of 40 right, fewer than 10.
                assert!(unmeasured, "{suite}");
            }
            assert_eq!(suite["ratio"].is_null(), unmeasured, "{suite}");
            assert_eq!(suite["ratio_lower"].is_null(), unmeasured, "{suite}");
        }
    }
    // coding in both runs (teacher 2 of 40 right) and logistics in the
    // baseline (25 < 30), for both students.
    assert_eq!(not_measurable, 2 * 3, "{report}");
    // In the run report's words (compare.md: table cells are not wrapped).
    let md = std::fs::read_to_string(cand.path().join("cmp/compare.md")).unwrap();
    assert!(
        md.contains("not measurable: teacher got 25 items right"),
        "{md}"
    );
    assert!(
        md.contains("not measurable: teacher got 2 items right"),
        "{md}"
    );

    // The decision against the baseline speaks of the baseline; only the
    // candidate's own gate is about a teacher.
    let lossy = &report["students"][1];
    assert_eq!(lossy["student"], "lossy");
    for suite in lossy["suites"].as_array().unwrap() {
        let reasons = suite["decision"]["reasons"].as_array().unwrap();
        for r in reasons.iter().map(|r| r.as_str().unwrap()) {
            if r.contains("baseline") {
                assert!(!r.contains("teacher"), "{r}");
            } else {
                assert!(r.starts_with("its own gate in the candidate run"), "{r}");
            }
        }
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("lossy: REJECT:"))
        .unwrap();
    assert!(
        line.contains("candidate / baseline accuracy ratio") && !line.contains("teacher"),
        "{stdout}"
    );

    // The swap plan's categories are the candidate run's own category
    // comparisons: the same retention, lower bound and measurability.
    let cand_summary = &runs[1];
    let mut categories = 0;
    for plan in report["swap_plans"].as_array().unwrap() {
        for cat in plan["categories"].as_array().unwrap() {
            let own = cand_summary["comparisons"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| {
                    c["student"] == plan["student"]
                        && c["suite"] == cat["suite"]
                        && c["category"] == cat["category"]
                })
                .unwrap();
            let what = format!("{} {} {}", plan["student"], cat["suite"], cat["category"]);
            for (mine, theirs) in [
                ("retention", "retention"),
                ("retention_lower", "retention_lower"),
            ] {
                match (cat[mine].as_f64(), own[theirs].as_f64()) {
                    (Some(x), Some(y)) => {
                        assert!(
                            (x - y).abs() <= 1e-12 * y.abs().max(1e-300),
                            "{what}: {x} vs {y}"
                        )
                    }
                    (x, y) => assert_eq!(x, y, "{what} {mine}"),
                }
            }
            categories += 1;
        }
    }
    assert!(categories > 4, "{report}");

    // Narrower terminals, and more suites than fit side by side: split
    // into several tables, every suite shown.
    use distill_gate::compare::render::render_terminal_at;
    let mut parsed: distill_gate::compare::CompareReport =
        serde_json::from_value(report.clone()).unwrap();
    assert_fits(&render_terminal_at(&parsed, 80), 80);
    let suites = parsed.students[0].suites.clone();
    for i in 0..5 {
        for s in &suites {
            let mut more = s.clone();
            more.suite = format!("{}-{i}", s.suite);
            parsed.students[0].suites.push(more);
        }
    }
    let wide = render_terminal_at(&parsed, 100);
    assert_fits(&wide, 100);
    for i in 0..5 {
        assert!(wide.contains(&format!("logistics-{i}")), "{wide}");
    }
}

/// Found comparing two demo runs: a change of +2.5% [+0.5%, +5.0%] beside
/// "0 lost, 0 gained". Partial-credit scores (the logistics route and
/// extraction scorers) can rise without an item becoming fully right:
/// compare counts every item whose score went down or up, and runs McNemar
/// only on pass/fail scores, saying so.
#[test]
fn partial_credit_changes_are_counted() {
    // The candidate answers as the teacher; the baseline answers every item
    // the teacher got partial credit on wrong.
    let cand = demo::workspace(1, &[copy()], SUITES);
    let c = run_ws(cand.path());
    let partial: std::collections::BTreeSet<String> =
        std::fs::read_to_string(c.join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["role"] == "teacher")
            .filter(|e| {
                let s = e["score"].as_f64().unwrap();
                s > 0.0 && s < 1.0
            })
            .map(|e| {
                format!(
                    "{}/{}",
                    e["suite"].as_str().unwrap(),
                    e["task_id"].as_str().unwrap()
                )
            })
            .collect();
    assert!(partial.len() >= 5, "{partial:?}");
    let base = demo::workspace(1, &[copy()], SUITES);
    let transcript = base.path().join("copy.jsonl");
    let spoiled: String = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if partial.contains(v["request_id"].as_str().unwrap()) {
                v["completion"]["text"] = " zzz-not-an-answer".into();
            }
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect();
    std::fs::write(&transcript, spoiled).unwrap();
    let b = run_ws(base.path());
    let out = compare_into_cmp(&b, &c, cand.path());
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let report = json(&cand.path().join("cmp/compare.json"));
    let suite = &report["students"][0]["suites"][0];
    let point = suite["accuracy_change"]["point"].as_f64().unwrap();
    assert!(point > 0.0, "{suite}");
    // Every spoiled item scores higher in the candidate, none lower.
    assert_eq!(suite["changes"]["up"], partial.len() as u64, "{suite}");
    assert_eq!(suite["changes"]["down"], 0, "{suite}");
    // Some scores are partial credit: no McNemar.
    assert!(suite["changes"]["mcnemar_p"].is_null(), "{suite}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("0 lower, {} higher", partial.len())),
        "{stdout}"
    );
    assert!(stdout.contains("partial-credit"), "{stdout}");
}
