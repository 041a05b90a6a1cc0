//! `report.md`: the run for a reader on GitHub or in a pull request. The
//! full report has the verdicts, reasons, accuracy per category, the
//! comparison statistics, latency and cost, the swap plan (which categories
//! each student may take over), the models and suites, and how to reproduce
//! the run; [`render_markdown_short`] has verdicts and reasons
//! only (for a CI job summary).
//!
//! Every piece of text that comes from the run (model names, reasons,
//! fingerprints) goes through [`escape`], so a `|` or `*` in a name cannot
//! break a table or the emphasis.

use super::labels::{
    RECORDED_MARK, accuracy_sentence, gate_confidence, lower_bound_sentence, recorded_note,
    retention_method, thousands,
};
use super::numbers::{
    MISSING, confidence, dollars, factor, millis, model_dollars, p_value, percent,
    percent_interval, rate, ratio, ratio_interval,
};
use super::{
    ALL_SUITES, Exporter, GateRow, ReportContext, ReportError, gate_rows, items_needed,
    latencies_recorded, model_rank, model_stats, not_measurable, overall_verdict, role_name,
    suite_rank, verdict_counts,
};
use crate::summary::{Comparison, LatencyStats, ModelStats, Summary, Verdict};

/// The file name of the Markdown report.
pub const MARKDOWN_FILE: &str = "report.md";

/// Writes `report.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Markdown;

impl Exporter for Markdown {
    fn file_name(&self) -> &'static str {
        MARKDOWN_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        Ok(render_markdown(ctx).into_bytes())
    }
}

/// Escapes text for Markdown (GitHub flavour), inside or outside a table:
/// ASCII punctuation with a meaning is backslash-escaped (`|` included, so a
/// cell cannot split), line breaks become spaces and other control
/// characters become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The full Markdown report.
pub fn render_markdown(ctx: &ReportContext<'_>) -> String {
    let summary = ctx.summary;
    let rows = gate_rows(summary);
    let mut out = String::new();
    title(&mut out, summary);
    section(&mut out, "Verdicts");
    verdict_table(&mut out, summary, &rows);
    // The verdict table's footnote explains the marks.
    reasons(&mut out, &rows, summary.inconclusive_fails);
    accuracy_tables(&mut out, summary);
    comparison_table(&mut out, summary);
    pass_at_k_table(&mut out, summary);
    statistics_section(&mut out, summary);
    latency_cost_table(&mut out, summary);
    swap_plan_section(&mut out, ctx);
    models_table(&mut out, summary);
    suites_table(&mut out, summary);
    reproduce(&mut out, ctx);
    out
}

/// Verdicts and reasons only, for a CI job summary.
pub fn render_markdown_short(summary: &Summary) -> String {
    let rows = gate_rows(summary);
    let mut out = String::new();
    title(&mut out, summary);
    if !rows.is_empty() {
        let header = [
            "Student",
            "Suite",
            "Verdict",
            "Retention",
            "Lower bound",
            "Threshold",
        ];
        let align = [L, L, L, R, R, R];
        out.push('\n');
        let body = rows
            .iter()
            .map(|r| {
                let (point, lower) = retention_cells(r.comparison);
                vec![
                    escape(&r.gate.student),
                    escape(&r.gate.scope()),
                    verdict_md(r.gate.verdict),
                    point,
                    lower,
                    threshold(r),
                ]
            })
            .collect::<Vec<_>>();
        table(&mut out, &header, &align, &body);
    }
    if reasons(&mut out, &rows, summary.inconclusive_fails) {
        out.push_str(&format!(
            "\n\\{RECORDED_MARK} {}.\n",
            escape(&recorded_note(summary))
        ));
    }
    out
}

/// The swap plan: per student, the categories it may take over from the
/// teacher and the blended numbers (see [`crate::run::swap`]).
fn swap_plan_section(out: &mut String, ctx: &ReportContext<'_>) {
    if !ctx
        .summary
        .models
        .iter()
        .any(|m| m.role == crate::run::journal::Role::Student)
    {
        return;
    }
    section(out, "Swap plan");
    out.push_str(&super::swap::swap_markdown(
        &ctx.summary.swap_plans,
        ctx.summary.reads_answers(),
    ));
    if latencies_recorded(ctx.summary) {
        out.push_str(&format!(
            "\nThe routings' p50 and p95 are \\{RECORDED_MARK} {}.\n",
            escape(&recorded_note(ctx.summary))
        ));
    }
}

fn title(out: &mut String, summary: &Summary) {
    let overall = overall_verdict(summary);
    out.push_str(&format!(
        "# distill-gate report: {}\n\n**Result: {}** (exit code {}), {}.\n",
        escape(&summary.run),
        verdict_md(overall),
        summary.exit_code,
        verdict_counts(summary),
    ));
    contamination(out, summary);
}

/// A warning block per [`Summary::warnings`] line, then the code
/// sandbox's line (runs that score code).
pub(crate) fn contamination(out: &mut String, summary: &Summary) {
    for w in summary.warnings() {
        out.push_str(&format!("\n> **WARNING:** {}\n", escape(&w)));
    }
    out.extend(
        summary
            .isolation_line()
            .map(|l| format!("\n{}\n", escape(&l))),
    );
}

fn section(out: &mut String, name: &str) {
    out.push_str(&format!("\n## {name}\n\n"));
}

pub(crate) fn verdict_md(verdict: Verdict) -> String {
    let mark = match verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Inconclusive => "⚠️",
    };
    format!("{mark} {verdict}")
}

/// Column alignment.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
const L: Align = Align::Left;
const R: Align = Align::Right;

/// A GitHub-flavoured table with every column left-aligned. Cells are
/// Markdown already (text escaped by the caller with [`escape`]).
pub(crate) fn plain_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    table(out, header, &[], rows);
}

/// A GitHub-flavoured table. Cells are Markdown already (text escaped by
/// the caller with [`escape`]).
fn table(out: &mut String, header: &[&str], align: &[Align], rows: &[Vec<String>]) {
    out.push_str(&format!("| {} |\n|", header.join(" | ")));
    for i in 0..header.len() {
        out.push_str(match align.get(i) {
            Some(Align::Right) => "---:|",
            _ => "---|",
        });
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
}

/// Retention point estimate and one-sided lower bound, or "not measurable".
fn retention_cells(c: Option<&Comparison>) -> (String, String) {
    match c {
        Some(c) if !c.measurable => (escape(&not_measurable(c)), MISSING.into()),
        Some(c) => (
            c.retention.map_or_else(|| MISSING.into(), ratio),
            c.retention_lower.map_or_else(|| MISSING.into(), ratio),
        ),
        None => (MISSING.into(), MISSING.into()),
    }
}

/// "≥ 0.950 (95% one-sided)".
fn threshold(row: &GateRow<'_>) -> String {
    let t = &row.gate.thresholds;
    format!(
        "≥ {} ({} one-sided)",
        ratio(t.min_retention),
        confidence(t.confidence)
    )
}

fn accuracy_cell(s: Option<&ModelStats>) -> String {
    s.map_or_else(
        || MISSING.into(),
        |s| {
            format!(
                "{} {}",
                percent(s.accuracy),
                percent_interval(&s.accuracy_interval)
            )
        },
    )
}

fn verdict_table(out: &mut String, summary: &Summary, rows: &[GateRow<'_>]) {
    if rows.is_empty() {
        out.push_str("No gates: the run has no students.\n");
        return;
    }
    let header = [
        "Student",
        "Suite",
        "Verdict",
        "Teacher acc",
        "Student acc",
        "Retention",
        "Lower bound",
        "Threshold",
        "McNemar p",
        "Agreement",
        "p95 latency",
        "Speedup",
        "Cost / 1k",
        "Savings / 1k",
        "Error rate",
    ];
    let align = [L, L, L, R, R, R, R, R, R, R, R, R, R, R, R];
    let body = rows
        .iter()
        .map(|r| {
            let (point, lower) = retention_cells(r.comparison);
            let cmp = |f: fn(&Comparison) -> String| r.comparison.map_or_else(|| MISSING.into(), f);
            vec![
                escape(&r.gate.student),
                escape(&r.gate.scope()),
                verdict_md(r.gate.verdict),
                r.teacher
                    .map_or_else(|| MISSING.into(), |s| percent(s.accuracy)),
                accuracy_cell(r.student),
                point,
                lower,
                threshold(r),
                cmp(|c| c.mcnemar_p.map_or_else(|| MISSING.into(), p_value)),
                cmp(|c| c.agreement.map_or_else(|| MISSING.into(), percent)),
                r.student
                    .and_then(|s| s.latency)
                    .map_or_else(|| MISSING.into(), |l| latency(&l, l.p95_ms)),
                r.comparison.and_then(|c| c.speedup).map_or_else(
                    || MISSING.into(),
                    |x| {
                        if r.speedup_recorded() {
                            format!("{}\\{RECORDED_MARK}", factor(x))
                        } else {
                            factor(x)
                        }
                    },
                ),
                r.student
                    .map_or_else(|| MISSING.into(), |s| model_dollars(s, s.cost_per_1k)),
                cmp(|c| dollars(c.savings_per_1k)),
                r.student.map_or_else(
                    || MISSING.into(),
                    |s| format!("{} ({})", percent(s.error_rate), s.errors),
                ),
            ]
        })
        .collect::<Vec<_>>();
    table(out, &header, &align, &body);
    out.push_str(&format!(
        "\nRetention is student accuracy / teacher accuracy on the same items; {}. {}\n",
        escape(&lower_bound_sentence(summary)),
        escape(&accuracy_sentence(summary)),
    ));
    if rows.iter().any(GateRow::any_recorded) {
        out.push_str(&format!(
            "\n\\{RECORDED_MARK} {}.\n",
            escape(&recorded_note(summary))
        ));
    }
}

/// `812.4 ms`, marked `*` when some items were recorded earlier.
fn latency(l: &LatencyStats, ms: f64) -> String {
    if l.recorded > 0 {
        format!("{}\\*", millis(ms))
    } else {
        millis(ms)
    }
}

/// The reasons of every gate that did not pass; whether one is marked as
/// resting on recorded latencies.
fn reasons(out: &mut String, rows: &[GateRow<'_>], inconclusive_fails: bool) -> bool {
    let open: Vec<&GateRow<'_>> = rows
        .iter()
        .filter(|r| r.gate.verdict != Verdict::Pass)
        .collect();
    let mut marked = false;
    if open.is_empty() {
        return marked;
    }
    section(out, "Reasons");
    for row in open {
        let g = row.gate;
        out.push_str(&format!(
            "- **{}** {} / {}\n",
            g.verdict,
            escape(&g.student),
            escape(&g.scope())
        ));
        if let Some(note) = row.unmeasured_note() {
            out.push_str(&format!("  - {}\n", escape(&note)));
        }
        for (reason, recorded) in row.reasons() {
            marked |= recorded;
            out.push_str(&format!("  - {}\n", escape(&reason)));
        }
        if g.verdict == Verdict::Inconclusive {
            if let Some(needed) = items_needed(row) {
                out.push_str(&format!("  - {}\n", escape(&needed)));
            }
            if !inconclusive_fails {
                out.push_str("  - does not fail the run (inconclusive\\_fails = false)\n");
            }
        }
    }
    marked
}

/// Per suite: one row per category (then the whole suite), one column per model.
fn accuracy_tables(out: &mut String, summary: &Summary) {
    if summary.suites.is_empty() || summary.models.is_empty() {
        return;
    }
    section(out, "Accuracy by category");
    out.push_str("Mean score with its interval, per model; the teacher is first.\n");
    let mut header = vec!["Category".to_string(), "Items".to_string()];
    header.extend(
        summary
            .models
            .iter()
            .map(|m| format!("{} ({})", escape(&m.name), role_name(m.role))),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut align = vec![L, R];
    align.extend(summary.models.iter().map(|_| R));
    for suite in &summary.suites {
        out.push_str(&format!("\n### {}\n\n", escape(&suite.name)));
        let categories = suite
            .categories
            .iter()
            .map(|c| (escape(c), Some(c.as_str())))
            .chain(std::iter::once(("**all**".to_string(), None)));
        let body = categories
            .map(|(label, category)| {
                let stats: Vec<Option<&ModelStats>> = summary
                    .models
                    .iter()
                    .map(|m| model_stats(summary, &m.name, &suite.name, category))
                    .collect();
                // Items: from the teacher (first model), else any model that has the row.
                let n = stats
                    .iter()
                    .flatten()
                    .next()
                    .map_or_else(|| MISSING.into(), |s| s.n.to_string());
                let mut row = vec![label, n];
                row.extend(stats.into_iter().map(accuracy_cell));
                row
            })
            .collect::<Vec<_>>();
        table(out, &header, &align, &body);
    }
}

/// Every comparison, sorted by student, suite and category (whole suite first).
fn comparison_table(out: &mut String, summary: &Summary) {
    if summary.comparisons.is_empty() {
        return;
    }
    section(out, "Comparison with the teacher");
    let mut comparisons: Vec<&Comparison> = summary.comparisons.iter().collect();
    comparisons.sort_by(|a, b| {
        let key = |c: &Comparison| {
            (
                model_rank(summary, &c.student),
                c.student.clone(),
                suite_rank(summary, &c.suite),
                c.suite.clone(),
                c.category.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let header = [
        "Student",
        "Suite",
        "Category",
        "Paired items",
        "Teacher right",
        "Retention",
        "Interval",
        "Lower bound",
        "Delta-method interval",
        "Teacher only",
        "Student only",
        "McNemar p",
        "Agreement",
    ];
    let align = [L, L, L, R, R, R, R, R, R, R, R, R, R];
    let body = comparisons
        .into_iter()
        .map(|c| {
            let (point, lower) = retention_cells(Some(c));
            vec![
                escape(&c.student),
                escape(&c.suite),
                c.category
                    .as_deref()
                    .map_or_else(|| "**all**".into(), escape),
                c.n.to_string(),
                c.teacher_correct.to_string(),
                point,
                c.retention_interval
                    .map_or_else(|| MISSING.into(), |i| ratio_interval(&i)),
                lower,
                c.retention_delta_interval
                    .map_or_else(|| MISSING.into(), |i| ratio_interval(&i)),
                c.teacher_only.to_string(),
                c.student_only.to_string(),
                c.mcnemar_p.map_or_else(|| MISSING.into(), p_value),
                c.agreement.map_or_else(|| MISSING.into(), percent),
            ]
        })
        .collect::<Vec<_>>();
    table(out, &header, &align, &body);
    out.push_str(&format!(
        "\nIntervals are two-sided at {} ({}); the delta-method interval (on log retention) is a \
         cross-check. Teacher only / student only count the discordant items McNemar's exact \
         test uses (an item is right at full credit).\n",
        gate_confidence(summary).unwrap_or_else(|| "the gate's confidence".into()),
        escape(&retention_method(summary)),
    ));
}

/// Latency, throughput and cost per model and suite (whole suites, then all).
/// pass@k per model, suite and category, for suites that draw several samples.
fn pass_at_k_table(out: &mut String, summary: &Summary) {
    let stats: Vec<&ModelStats> = summary
        .model_stats
        .iter()
        .filter(|s| !s.pass_at_k.is_empty() && s.suite != ALL_SUITES)
        .collect();
    let mut ks: Vec<u64> = stats
        .iter()
        .flat_map(|s| s.pass_at_k.iter().map(|p| p.k))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() {
        return;
    }
    section(out, "pass@k");
    let names: Vec<String> = ks.iter().map(|k| format!("pass@{k}")).collect();
    let mut header = vec!["Model", "Suite", "Category", "Items"];
    header.extend(names.iter().map(String::as_str));
    let mut align = vec![L, L, L, R];
    align.extend(ks.iter().map(|_| R));
    let body: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            let mut row = vec![
                escape(&s.model),
                escape(&s.suite),
                s.category.as_deref().map_or_else(|| "(all)".into(), escape),
                s.n.to_string(),
            ];
            row.extend(ks.iter().map(|k| {
                s.pass_at_k
                    .iter()
                    .find(|p| p.k == *k)
                    .map_or_else(|| MISSING.into(), |p| percent(p.value))
            }));
            row
        })
        .collect();
    table(out, &header, &align, &body);
    out.push_str(
        "\nUnbiased estimator 1 - C(n-c, k)/C(n, k) per item (n samples, c right), averaged over items; \
         the gate uses each item's mean score (pass@1).\n",
    );
}

fn latency_cost_table(out: &mut String, summary: &Summary) {
    let mut stats: Vec<&ModelStats> = summary
        .model_stats
        .iter()
        .filter(|s| s.category.is_none())
        .collect();
    if stats.is_empty() {
        return;
    }
    stats.sort_by(|a, b| {
        let key = |s: &ModelStats| {
            (
                model_rank(summary, &s.model),
                s.model.clone(),
                suite_rank(summary, &s.suite),
                s.suite.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    section(out, "Latency and cost");
    let header = [
        "Model",
        "Suite",
        "Items",
        "p50",
        "p95",
        "p99",
        "Mean",
        "Time to first token",
        "Tokens/s",
        "Prompt tokens",
        "Completion tokens",
        "Cost",
        "Cost / 1k",
    ];
    let align = [L, L, R, R, R, R, R, R, R, R, R, R, R];
    let mut recorded = false;
    let body = stats
        .into_iter()
        .map(|s| {
            let l = s.latency;
            recorded |= l.is_some_and(|l| l.recorded > 0);
            let ms = |f: fn(&LatencyStats) -> f64| {
                l.map_or_else(|| MISSING.into(), |l| latency(&l, f(&l)))
            };
            let suite = if s.suite == ALL_SUITES {
                "**all**".to_string()
            } else {
                escape(&s.suite)
            };
            vec![
                escape(&s.model),
                suite,
                s.n.to_string(),
                ms(|l| l.p50_ms),
                ms(|l| l.p95_ms),
                ms(|l| l.p99_ms),
                ms(|l| l.mean_ms),
                l.and_then(|l| l.ttft_mean_ms)
                    .map_or_else(|| MISSING.into(), millis),
                s.tokens_per_s.map_or_else(|| MISSING.into(), rate),
                s.prompt_tokens.to_string(),
                s.completion_tokens.to_string(),
                model_dollars(s, s.cost),
                model_dollars(s, s.cost_per_1k),
            ]
        })
        .collect::<Vec<_>>();
    table(out, &header, &align, &body);
    out.push_str(
        "\nPercentiles interpolate linearly between order statistics; time to first token is a mean.\n",
    );
    if recorded {
        out.push_str(&format!(
            "\\{RECORDED_MARK} {}.\n",
            escape(&recorded_note(summary))
        ));
    }
}

fn models_table(out: &mut String, summary: &Summary) {
    if summary.models.is_empty() {
        return;
    }
    section(out, "Models");
    let body = summary
        .models
        .iter()
        .map(|m| {
            vec![
                escape(&m.name),
                role_name(m.role).to_string(),
                escape(&m.asked()),
                escape(&m.backend),
                escape(&m.fingerprint),
                escape(&m.price),
            ]
        })
        .collect::<Vec<_>>();
    table(
        out,
        &["Model", "Role", "Asked", "Backend", "Fingerprint", "Price"],
        &[L, L, L, L, L, L],
        &body,
    );
}

fn suites_table(out: &mut String, summary: &Summary) {
    if summary.suites.is_empty() {
        return;
    }
    section(out, "Suites");
    let body = summary
        .suites
        .iter()
        .map(|s| {
            let categories: Vec<String> = s.categories.iter().map(|c| escape(c)).collect();
            vec![
                escape(&s.name),
                escape(&s.version),
                escape(&s.split),
                s.items.to_string(),
                categories.join(", "),
            ]
        })
        .collect::<Vec<_>>();
    table(
        out,
        &["Suite", "Version", "Split", "Items", "Categories"],
        &[L, L, L, R, L],
        &body,
    );
}

/// How retention was estimated, the design effects, the spread of repeated
/// samples and the family-wise confidences.
fn statistics_section(out: &mut String, summary: &Summary) {
    let st = &summary.statistics;
    section(out, "Statistics");
    let family = match st.family_wise {
        crate::gate::FamilyWise::None => {
            "none (each gate's confidence holds for that gate alone)".to_string()
        }
        rule => format!("{rule} (one error rate for the whole run)"),
    };
    out.push_str(&format!(
        "Retention interval: {} (`[gate] interval = \"{}\"`), at {}; clusters: {}; family-wise \
         adjustment: {family}.\n",
        escape(&retention_method(summary)),
        st.interval,
        gate_confidence(summary).unwrap_or_else(|| "the gates' confidence".into()),
        escape(&String::from(st.clusters.clone())),
    ));
    let scope = |suite: &str, category: &Option<String>| match category {
        Some(c) => format!("{} / {}", escape(suite), escape(c)),
        None => escape(suite),
    };
    if !st.design_effects.is_empty() {
        out.push_str(
            "\nDesign effect: how many times clustering multiplies the variance of retention \
             (1 = items independent).\n\n",
        );
        let rows: Vec<Vec<String>> = st
            .design_effects
            .iter()
            .map(|d| {
                vec![
                    escape(&d.student),
                    scope(&d.suite, &d.category),
                    escape(&String::from(d.clustered_by.clone())),
                    d.clusters.to_string(),
                    format!("{:.2}", d.design_effect),
                ]
            })
            .collect();
        table(
            out,
            &[
                "Student",
                "Scope",
                "Clusters by",
                "Clusters",
                "Design effect",
            ],
            &[
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Right,
            ],
            &rows,
        );
    }
    if !st.sample_variances.is_empty() {
        out.push_str("\nRepeated samples: mean within-item variance of the sample scores.\n\n");
        let rows: Vec<Vec<String>> = st
            .sample_variances
            .iter()
            .map(|v| {
                vec![
                    escape(&v.model),
                    scope(&v.suite, &v.category),
                    v.items.to_string(),
                    format!("{:.4}", v.mean_item_variance),
                ]
            })
            .collect();
        table(
            out,
            &["Model", "Scope", "Items", "Mean item variance"],
            &[Align::Left, Align::Left, Align::Right, Align::Right],
            &rows,
        );
    }
    if !st.adjusted_confidences.is_empty() {
        out.push_str(
            "\nConfidence of each retention criterion after the family-wise adjustment.\n\n",
        );
        let rows: Vec<Vec<String>> = st
            .adjusted_confidences
            .iter()
            .map(|a| {
                vec![
                    escape(&a.student),
                    escape(&a.suite),
                    a.configured.to_string(),
                    a.adjusted.to_string(),
                ]
            })
            .collect();
        table(
            out,
            &["Student", "Suite", "Configured", "Adjusted"],
            &[Align::Left, Align::Left, Align::Right, Align::Right],
            &rows,
        );
    }
}

fn reproduce(out: &mut String, ctx: &ReportContext<'_>) {
    let s = ctx.summary;
    section(out, "How to reproduce");
    let settings = format!(
        "config sha256 {}, seed {}, {} bootstrap resamples",
        escape(&s.config_sha256),
        s.seed,
        thousands(s.bootstrap_resamples)
    );
    let version = escape(&s.harness_version);
    match ctx.reproduce {
        // A code span shows the command verbatim; a backtick would end it early
        // and a line break would end the paragraph.
        Some(command) => out.push_str(&format!(
            "Run `{}` with distill-gate {version} ({settings}).\n",
            command.replace('`', "'").replace(['\n', '\r'], " ")
        )),
        None => out.push_str(&format!(
            "Run distill-gate {version} on the same config ({settings}).\n"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_table_and_inline_syntax() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("*x*_y_"), "\\*x\\*\\_y\\_");
        assert_eq!(escape("<b>&"), "\\<b\\>\\&");
        assert_eq!(escape("line\nnext\r"), "line next ");
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape("student-2m v1.0"), "student-2m v1.0");
    }

    #[test]
    fn table_has_alignment_row() {
        let mut out = String::new();
        table(
            &mut out,
            &["A", "B"],
            &[L, R],
            &[vec!["x".into(), "1".into()]],
        );
        assert_eq!(out, "| A | B |\n|---|---:|\n| x | 1 |\n");
    }
}
