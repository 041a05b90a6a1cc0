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
    let base = demo::workspace(
        1,
        &[
            copy(),
            Student {
                name: "lossy",
                speed: 0.02,
                wrong: |i| i % 10 == 0,
            },
        ],
        SUITES,
    );
    let cand = demo::workspace(
        1,
        &[
            copy(),
            Student {
                name: "lossy",
                speed: 0.01,
                wrong: |i| i % 2 == 0,
            },
        ],
        SUITES,
    );
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
        // Identical answers: no change, no changed item, McNemar p = 1.
        assert_eq!(suite["accuracy_change"]["point"], 0.0);
        assert_eq!(suite["accuracy_change"]["lower"], 0.0);
        assert_eq!(suite["accuracy_change"]["upper"], 0.0);
        assert_eq!(suite["changed"]["baseline_only"], 0);
        assert_eq!(suite["changed"]["candidate_only"], 0);
        assert_eq!(suite["changed"]["p_value"], 1.0);
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
    // McNemar on the items whose outcome changed: the candidate only loses,
    // so the exact two-sided p-value is min(1, 2 * 0.5^lost) (the binomial
    // tail at 0, as statsmodels' mcnemar(exact=True) computes it).
    let lost = logistics["changed"]["baseline_only"].as_u64().unwrap();
    assert!(lost > 0);
    assert_eq!(logistics["changed"]["candidate_only"], 0);
    let p = logistics["changed"]["p_value"].as_f64().unwrap();
    assert!(
        (p - (2.0 * 0.5f64.powi(lost as i32)).min(1.0)).abs() < 1e-12,
        "{p}"
    );
    // The candidate is faster: p50 went down.
    assert!(
        logistics["candidate"]["p50_ms"].as_f64().unwrap()
            < logistics["baseline"]["p50_ms"].as_f64().unwrap()
    );
    assert!(report["swap_plans"].as_array().unwrap().len() == 2);

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
