//! A comparison for people and machines: the terminal, `compare.md`, a short
//! Markdown summary for a CI job or a pull request, and `compare.json`; and
//! the swap plan section shared with a run's `report.md`.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::decision::{Decided, Decision};
use super::statistics::Change;
use super::swap::{Blend, SwapPlan};
use super::{CompareReport, Operating, StudentChange, SuiteChange};
use crate::report::markdown::escape;
use crate::report::numbers::{confidence, dollars, millis, p_value, percent, ratio};

const MISSING: &str = "—";

/// The one-line decision of a student.
pub fn decision_line(student: &str, decided: &Decided, suites: &[SuiteChange]) -> String {
    let first_reason = decided.reasons.first().map_or("", String::as_str);
    match decided.decision {
        Decision::Approve => {
            let parts: Vec<String> = suites
                .iter()
                .map(|s| {
                    format!(
                        "{} ratio {} (lower bound {} >= {})",
                        s.suite,
                        opt(s.ratio, ratio),
                        opt(s.ratio_lower, ratio),
                        ratio(s.min_retention)
                    )
                })
                .collect();
            format!(
                "{student}: APPROVE: keeps the baseline's accuracy on every suite: {}",
                parts.join("; ")
            )
        }
        Decision::Reject => format!("{student}: REJECT: {first_reason}"),
        Decision::Inconclusive => match decided.items_needed {
            Some(n) => format!(
                "{student}: INCONCLUSIVE: about {n} more matched items needed; {first_reason}"
            ),
            None => format!("{student}: INCONCLUSIVE: {first_reason}"),
        },
    }
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or_else(|| MISSING.to_string(), f)
}

/// `+2.5% [-1.0%, +6.0%]` (percentage points of accuracy) or `-0.042
/// [-0.080, -0.010]` (retention), by `f`.
fn change(c: Option<&Change>, f: fn(f64) -> String) -> String {
    let signed = |x: f64| {
        let t = f(x);
        if x >= 0.0 { format!("+{t}") } else { t }
    };
    c.map_or_else(
        || MISSING.to_string(),
        |c| {
            format!(
                "{} [{}, {}]",
                signed(c.point),
                signed(c.lower),
                signed(c.upper)
            )
        },
    )
}

fn latency_pair(b: &Operating, c: &Operating, pick: fn(&Operating) -> Option<f64>) -> String {
    match (pick(b), pick(c)) {
        (Some(x), Some(y)) => format!("{} → {}", millis(x), millis(y)),
        _ => MISSING.to_string(),
    }
}

/// The cells of one suite row (plain text; Markdown escapes them).
fn suite_cells(s: &SuiteChange) -> Vec<String> {
    vec![
        s.suite.clone(),
        format!(
            "{} of {}/{}",
            s.matched, s.baseline_items, s.candidate_items
        ),
        format!(
            "{} → {}",
            percent(s.baseline_accuracy),
            percent(s.candidate_accuracy)
        ),
        change(s.accuracy_change.as_ref(), percent),
        format!(
            "{} → {}",
            opt(s.baseline_retention, ratio),
            opt(s.candidate_retention, ratio)
        ),
        change(s.retention_change.as_ref(), ratio),
        format!(
            "{} (≥ {} at {}: {})",
            opt(s.ratio, ratio),
            ratio(s.min_retention),
            confidence(s.confidence),
            opt(s.ratio_lower, ratio)
        ),
        format!(
            "{} lost, {} gained, p = {}",
            s.changed.baseline_only,
            s.changed.candidate_only,
            p_value(s.changed.p_value)
        ),
        latency_pair(&s.baseline, &s.candidate, |o| o.p50_ms),
        latency_pair(&s.baseline, &s.candidate, |o| o.p95_ms),
        format!(
            "{} → {}",
            dollars(s.baseline.cost_per_1k),
            dollars(s.candidate.cost_per_1k)
        ),
        s.decision.decision.to_string(),
    ]
}

const SUITE_HEADER: [&str; 12] = [
    "Suite",
    "Matched of base/cand",
    "Accuracy",
    "Δ accuracy [CI]",
    "Retention",
    "Δ retention [CI]",
    "Cand/base ratio (min, lower bound)",
    "McNemar",
    "p50",
    "p95",
    "Cost / 1k",
    "Decision",
];

/// The comparison for a terminal.
pub fn render_terminal(report: &CompareReport) -> String {
    let mut out = format!(
        "compare: baseline {} ({}) vs candidate {} ({})\n",
        report.baseline.run,
        report.baseline.dir.display(),
        report.candidate.run,
        report.candidate.dir.display()
    );
    for s in &report.students {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(SUITE_HEADER);
        for suite in &s.suites {
            table.add_row(suite_cells(suite));
        }
        for i in 1..SUITE_HEADER.len() - 1 {
            if let Some(col) = table.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&format!("\n{}\n{table}\n", s.student));
    }
    out.push('\n');
    for s in &report.students {
        out.push_str(&s.line);
        out.push('\n');
    }
    if !report.unmatched_students.is_empty() {
        out.push_str(&format!(
            "not compared (in one run only): {}\n",
            report.unmatched_students.join(", ")
        ));
    }
    for plan in &report.swap_plans {
        out.push_str(&swap_line(plan));
        out.push('\n');
    }
    out
}

/// "swap plan s2m: takes over coding/strings, logistics/rates (40% of items): retention ...".
fn swap_line(plan: &SwapPlan) -> String {
    let taken: Vec<String> = plan
        .categories
        .iter()
        .filter(|c| c.take_over)
        .map(|c| format!("{}/{}", c.suite, c.category))
        .collect();
    if taken.is_empty() {
        return format!(
            "swap plan {}: takes over no category; the teacher keeps everything",
            plan.student
        );
    }
    format!(
        "swap plan {}: takes over {} ({} of items): {}",
        plan.student,
        taken.join(", "),
        share(&plan.blended),
        blend_text(&plan.blended)
    )
}

fn share(b: &Blend) -> String {
    if b.items == 0 {
        MISSING.to_string()
    } else {
        percent(b.routed_items as f64 / b.items as f64)
    }
}

fn blend_text(b: &Blend) -> String {
    format!(
        "retention {} (lower bound {}), p50 {}, p95 {}, {} per 1k items",
        opt(b.retention, ratio),
        opt(b.retention_lower, ratio),
        opt(b.p50_ms, millis),
        opt(b.p95_ms, millis),
        dollars(b.cost_per_1k)
    )
}

/// A GitHub-flavoured table of already-escaped cells.
fn md_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push_str(&format!("| {} |\n|", header.join(" | ")));
    for _ in header {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
}

/// `compare.md`: the decisions, the per-suite numbers and the swap plan.
pub fn render_markdown(report: &CompareReport) -> String {
    let mut out = format!(
        "# distill-gate compare: {} → {}\n\n",
        escape(&report.baseline.run),
        escape(&report.candidate.run)
    );
    out.push_str(&format!(
        "Baseline `{}`, candidate `{}`. Items are matched by suite and task id; every \
         number below is on the matched items.\n\n",
        report.baseline.dir.display().to_string().replace('`', "'"),
        report.candidate.dir.display().to_string().replace('`', "'"),
    ));
    for s in &report.students {
        out.push_str(&format!("- {}\n", escape(&s.line)));
    }
    for s in &report.students {
        student_section(&mut out, s);
    }
    if !report.unmatched_students.is_empty() {
        out.push_str(&format!(
            "\nNot compared (in one run only): {}.\n",
            escape(&report.unmatched_students.join(", "))
        ));
    }
    out.push_str("\n## Swap plan (candidate run)\n\n");
    out.push_str(&swap_markdown(&report.swap_plans));
    out
}

fn student_section(out: &mut String, s: &StudentChange) {
    out.push_str(&format!(
        "\n## {}: {}\n\nWeights: baseline `{}`, candidate `{}`.\n\n",
        escape(&s.student),
        s.decision.decision,
        short(&s.baseline_fingerprint),
        short(&s.candidate_fingerprint)
    ));
    let rows: Vec<Vec<String>> = s
        .suites
        .iter()
        .map(|x| suite_cells(x).iter().map(|c| escape(c)).collect())
        .collect();
    md_table(out, &SUITE_HEADER, &rows);
    out.push('\n');
    for suite in &s.suites {
        for r in &suite.decision.reasons {
            out.push_str(&format!("- {}: {}\n", escape(&suite.suite), escape(r)));
        }
    }
}

fn short(fingerprint: &str) -> String {
    let f: String = fingerprint.chars().take(16).collect();
    if f.is_empty() {
        "?".into()
    } else {
        f.replace('`', "'")
    }
}

/// The short Markdown summary of a comparison, for `$GITHUB_STEP_SUMMARY`
/// or a pull-request comment: a decision table and one line per student.
pub fn render_summary_md(report: &CompareReport) -> String {
    let mut out = format!(
        "### distill-gate compare: {} → {}\n\n",
        escape(&report.baseline.run),
        escape(&report.candidate.run)
    );
    let rows: Vec<Vec<String>> = report
        .students
        .iter()
        .map(|s| {
            let worst_ratio = s
                .suites
                .iter()
                .filter_map(|x| x.ratio_lower)
                .min_by(f64::total_cmp);
            vec![
                escape(&s.student),
                mark(s.decision.decision),
                opt(worst_ratio, ratio),
                s.decision
                    .items_needed
                    .map_or_else(|| MISSING.to_string(), |n| n.to_string()),
            ]
        })
        .collect();
    md_table(
        &mut out,
        &["Student", "Decision", "Lowest ratio bound", "Items needed"],
        &rows,
    );
    out.push('\n');
    for s in &report.students {
        out.push_str(&format!("- {}\n", escape(&s.line)));
    }
    out
}

fn mark(d: Decision) -> String {
    let m = match d {
        Decision::Approve => "✅",
        Decision::Reject => "❌",
        Decision::Inconclusive => "⚠️",
    };
    format!("{m} {d}")
}

/// The swap plan as Markdown: per student, the categories it takes over and
/// the blend against the teacher alone.
pub fn swap_markdown(plans: &[SwapPlan]) -> String {
    if plans.is_empty() {
        return "No students.\n".to_string();
    }
    let mut out = String::from(
        "Per student, the categories it may take over from the teacher (the gate's interval \
         rule on that category's items), and the blend of routing just those to it while the \
         teacher keeps the rest, over the suites' items.\n",
    );
    for plan in plans {
        out.push_str(&format!("\n### {}\n\n", escape(&plan.student)));
        let rows: Vec<Vec<String>> = plan
            .categories
            .iter()
            .map(|c| {
                vec![
                    escape(&c.suite),
                    escape(&c.category),
                    c.n.to_string(),
                    opt(c.retention, ratio),
                    opt(c.retention_lower, ratio),
                    c.verdict.to_string(),
                    if c.take_over { "student" } else { "teacher" }.to_string(),
                    c.items_needed
                        .map_or_else(|| MISSING.to_string(), |n| n.to_string()),
                ]
            })
            .collect();
        md_table(
            &mut out,
            &[
                "Suite",
                "Category",
                "Items",
                "Retention",
                "Lower bound",
                "Verdict",
                "Routed to",
                "Items needed",
            ],
            &rows,
        );
        out.push('\n');
        let blend_row = |name: &str, b: &Blend| {
            vec![
                name.to_string(),
                share(b),
                opt(b.retention, ratio),
                opt(b.retention_lower, ratio),
                opt(b.p50_ms, millis),
                opt(b.p95_ms, millis),
                dollars(b.cost_per_1k),
            ]
        };
        md_table(
            &mut out,
            &[
                "Routing",
                "Share to student",
                "Retention",
                "Lower bound",
                "p50",
                "p95",
                "Cost / 1k",
            ],
            &[
                blend_row("teacher only", &plan.teacher_only),
                blend_row("swap plan", &plan.blended),
            ],
        );
    }
    out
}
