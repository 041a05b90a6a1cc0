//! The swap plan of a run ([`crate::summary::SwapPlan`], computed by
//! [`crate::run::swap`]) in words and tables: the section of `report.md`,
//! and the lines and section `compare` prints.

use super::markdown::{escape, plain_table};
use super::numbers::{MISSING, dollars, millis, opt, percent, ratio};
use crate::summary::{Blend, SwapPlan};

/// The footnote of a swap plan's latency marked `*`; `answers`: a model of
/// the run read an answers file.
pub(crate) fn recorded_note(answers: bool) -> String {
    let sources = if answers {
        "replayed transcript, cache or answers file"
    } else {
        "replayed transcript or cache"
    };
    format!("* latency includes items recorded earlier ({sources}), not measured in this run")
}

/// Whether some latency of a swap plan was recorded earlier.
fn plans_recorded(plans: &[SwapPlan]) -> bool {
    plans
        .iter()
        .any(|p| p.blended.recorded || p.teacher_only.recorded)
}

/// Whether a swap plan's line ([`swap_line`]) shows a latency recorded earlier.
pub(crate) fn swap_lines_recorded(plans: &[SwapPlan]) -> bool {
    plans
        .iter()
        .any(|p| p.blended.recorded && p.categories.iter().any(|c| c.take_over))
}

/// "swap plan s2m: takes over coding/strings, logistics/rates (40% of items): retention ...".
pub(crate) fn swap_line(plan: &SwapPlan) -> String {
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
        blend_latency(b, b.p50_ms),
        blend_latency(b, b.p95_ms),
        dollars(b.cost_per_1k)
    )
}

/// A blend's latency, with `*` when some of it was recorded earlier.
fn blend_latency(b: &Blend, ms: Option<f64>) -> String {
    match ms {
        Some(ms) if b.recorded => format!("{}*", millis(ms)),
        Some(ms) => millis(ms),
        None => MISSING.to_string(),
    }
}

/// The swap plan as Markdown: per student, the categories it takes over and
/// the blend against the teacher alone; `answers`: a model of the run read
/// an answers file (named among the sources of recorded latencies).
pub fn swap_markdown(plans: &[SwapPlan], answers: bool) -> String {
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
        plain_table(
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
                blend_latency(b, b.p50_ms),
                blend_latency(b, b.p95_ms),
                dollars(b.cost_per_1k),
            ]
        };
        plain_table(
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
    if plans_recorded(plans) {
        out.push_str(&format!("\n{}\n", escape(&recorded_note(answers))));
    }
    out
}
