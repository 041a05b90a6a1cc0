//! The terminal report: what a person reads at a glance after a run. A
//! verdict table (one row per student and suite), the reasons for every
//! verdict that is not PASS, and a compact table per model. Coloured only
//! when asked (the CLI asks when stdout is a terminal).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, CellAlignment, Color, Table};

use super::labels::{RECORDED_MARK, lower_bound_sentence, recorded_note};
use super::numbers::{
    confidence, dollars, factor, millis, model_dollars, p_value, percent, percent_interval, rate,
    ratio,
};
use super::{
    Exporter, GateRow, ReportContext, ReportError, gate_rows, items_needed, model_stats,
    overall_stats, overall_verdict, role_name, verdict_counts,
};
use crate::summary::{LatencyStats, ModelStats, Summary, Verdict};

/// The file name of the plain-text copy of the terminal report.
pub const TEXT_FILE: &str = "report.txt";

/// Writes `report.txt`: the terminal report without colour.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalText;

impl Exporter for TerminalText {
    fn file_name(&self) -> &'static str {
        TEXT_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        Ok(render_terminal(ctx.summary, false).into_bytes())
    }
}

/// The terminal report. With `color`, verdicts are coloured with ANSI
/// escapes (green PASS, red FAIL, yellow INCONCLUSIVE); without, the text is
/// plain. The result ends with a newline.
pub fn render_terminal(summary: &Summary, color: bool) -> String {
    let overall = overall_verdict(summary);
    let mut out = format!(
        "distill-gate run {}: {} (exit code {}), {}\n",
        summary.run,
        paint(overall, &overall.to_string(), color),
        summary.exit_code,
        verdict_counts(summary),
    );
    for w in summary.warnings() {
        out.push_str(&format!("WARNING: {w}\n"));
    }
    out.extend(summary.isolation_line().map(|l| format!("{l}\n")));
    let rows = gate_rows(summary);
    let mut recorded = false;
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&verdict_table(&rows, color, &mut recorded).to_string());
        out.push('\n');
        out.push_str(&format!(
            "Retention = student / teacher accuracy on the same items; {}.\n",
            lower_bound_sentence(summary)
        ));
    }
    let reasons = reasons(&rows, summary.inconclusive_fails, color, &mut recorded);
    if !reasons.is_empty() {
        out.push_str("\nWhy:\n");
        out.push_str(&reasons);
    }
    if !summary.models.is_empty() {
        out.push_str("\nModels:\n");
        out.push_str(&model_table(summary, &mut recorded).to_string());
        out.push('\n');
        for m in summary.models.iter().filter(|m| m.has_own_scope()) {
            out.push_str(&format!("{} was asked: {}\n", m.name, m.asked()));
        }
    }
    if recorded {
        out.push_str(&format!("\n{RECORDED_MARK} {}\n", recorded_note(summary)));
    }
    out
}

/// Wraps `text` in the ANSI colour of `verdict` when `color` is set.
fn paint(verdict: Verdict, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match verdict {
        Verdict::Pass => "32",
        Verdict::Fail => "31",
        Verdict::Inconclusive => "33",
    };
    format!("\x1b[1;{code}m{text}\x1b[0m")
}

fn verdict_cell(verdict: Verdict) -> Cell {
    let color = match verdict {
        Verdict::Pass => Color::Green,
        Verdict::Fail => Color::Red,
        Verdict::Inconclusive => Color::Yellow,
    };
    Cell::new(verdict).fg(color).add_attribute(Attribute::Bold)
}

fn new_table(header: &[&str], color: bool) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

fn align_right(table: &mut Table, from: usize) {
    for column in table.column_iter_mut().skip(from) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}

/// `812.4 ms`, with `*` when some of the items were recorded earlier.
fn latency_text(latency: &LatencyStats, ms: f64, recorded: &mut bool) -> String {
    if latency.recorded > 0 {
        *recorded = true;
        format!("{}*", millis(ms))
    } else {
        millis(ms)
    }
}

const MISSING: &str = "—";

/// Two values in one cell, one per line; a missing one shows as `—`.
fn pair(first: Option<String>, second: Option<String>) -> String {
    format!(
        "{}\n{}",
        first.as_deref().unwrap_or(MISSING),
        second.as_deref().unwrap_or(MISSING)
    )
}

fn verdict_table(rows: &[GateRow<'_>], color: bool, recorded: &mut bool) -> Table {
    let mut table = new_table(
        &[
            "Student",
            "Suite",
            "Verdict",
            "Accuracy\nteacher → student",
            "Retention\n[lower bound]",
            "McNemar p\nagreement",
            "p95 latency\nspeedup",
            "Cost / 1k\nsavings",
            "Errors",
        ],
        color,
    );
    for row in rows {
        let g = row.gate;
        let t = &g.thresholds;
        let threshold = format!(
            "min {} @ {}",
            ratio(t.min_retention),
            confidence(t.confidence)
        );
        let retention = match row.comparison {
            Some(c) if !c.measurable && row.upper_bound_decided() => {
                format!(
                    "{}\n{threshold}",
                    row.unmeasured_cell(c).replacen(" (", "\n(", 1)
                )
            }
            Some(c) if !c.measurable => format!(
                "not measurable:\nteacher got {} right\n{threshold}",
                items(c.teacher_correct)
            ),
            Some(c) => format!(
                "{} [{}]\n{threshold}",
                c.retention.map_or_else(|| MISSING.to_string(), ratio),
                c.retention_lower.map_or_else(|| MISSING.to_string(), ratio)
            ),
            None => format!("{MISSING}\n{threshold}"),
        };
        let accuracy = format!(
            "{} → {}\n{}",
            row.teacher
                .map_or_else(|| MISSING.to_string(), |s| percent(s.accuracy)),
            row.student
                .map_or_else(|| MISSING.to_string(), |s| percent(s.accuracy)),
            row.student.map_or_else(
                || MISSING.to_string(),
                |s| percent_interval(&s.accuracy_interval)
            ),
        );
        let mcnemar = pair(
            row.comparison.and_then(|c| c.mcnemar_p).map(p_value),
            row.comparison.and_then(|c| c.agreement).map(percent),
        );
        let speed = pair(
            row.student
                .and_then(|s| s.latency)
                .map(|l| latency_text(&l, l.p95_ms, recorded)),
            row.comparison.and_then(|c| c.speedup).map(|x| {
                if row.speedup_recorded() {
                    *recorded = true;
                    format!("{}{RECORDED_MARK}", factor(x))
                } else {
                    factor(x)
                }
            }),
        );
        let cost = pair(
            row.student.map(|s| model_dollars(s, s.cost_per_1k)),
            row.comparison.map(|c| savings(c.savings_per_1k)),
        );
        table.add_row(vec![
            Cell::new(&g.student),
            Cell::new(g.scope()),
            verdict_cell(g.verdict),
            Cell::new(accuracy),
            Cell::new(retention),
            Cell::new(mcnemar),
            Cell::new(speed),
            Cell::new(cost),
            Cell::new(row.student.map_or_else(|| MISSING.to_string(), errors)),
        ]);
    }
    align_right(&mut table, 3);
    table
}

/// "3 items" or "1 item".
fn items(n: u64) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}

/// "saves $3.40" or "costs $0.12 more" (per 1,000 items).
fn savings(per_1k: f64) -> String {
    if per_1k < 0.0 {
        format!("costs {} more", dollars(-per_1k))
    } else {
        format!("saves {}", dollars(per_1k))
    }
}

/// "1.7% (2)": error rate and count.
fn errors(s: &ModelStats) -> String {
    format!("{} ({})", percent(s.error_rate), s.errors)
}

/// One block per verdict that is not PASS: the gate's reasons with their
/// numbers, and for INCONCLUSIVE how many items would decide it.
fn reasons(
    rows: &[GateRow<'_>],
    inconclusive_fails: bool,
    color: bool,
    recorded: &mut bool,
) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|r| r.gate.verdict != Verdict::Pass) {
        let g = row.gate;
        out.push_str(&format!(
            "{} {} / {}\n",
            paint(g.verdict, &g.verdict.to_string(), color),
            g.student,
            g.scope()
        ));
        if let Some(note) = row.unmeasured_note() {
            out.push_str(&format!("  - {note}\n"));
        }
        for (reason, marked) in row.reasons() {
            *recorded |= marked;
            out.push_str(&format!("  - {reason}\n"));
        }
        if g.verdict == Verdict::Inconclusive {
            if let Some(needed) = items_needed(row) {
                out.push_str(&format!("  - {needed}\n"));
            }
            if !inconclusive_fails {
                out.push_str("  - does not fail the run (inconclusive_fails = false)\n");
            }
        }
    }
    out
}

/// One row per model: accuracy per suite, then latency, throughput and cost
/// over the whole run.
fn model_table(summary: &Summary, recorded: &mut bool) -> Table {
    let mut header: Vec<String> = vec!["Model".into(), "Role".into()];
    header.extend(summary.suites.iter().map(|s| format!("{} acc", s.name)));
    header.extend(
        ["p50", "p95", "p99", "tokens/s", "Cost / 1k"]
            .into_iter()
            .map(String::from),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    // Colour is only for verdicts, and this table has none.
    let mut table = new_table(&header, false);
    for model in &summary.models {
        let mut cells = vec![model.name.clone(), role_name(model.role).to_string()];
        for suite in &summary.suites {
            cells.push(
                model_stats(summary, &model.name, &suite.name, None)
                    .map_or_else(|| MISSING.to_string(), |s| percent(s.accuracy)),
            );
        }
        let overall = overall_stats(summary, &model.name);
        match overall.and_then(|s| s.latency) {
            Some(l) => {
                for ms in [l.p50_ms, l.p95_ms, l.p99_ms] {
                    cells.push(latency_text(&l, ms, recorded));
                }
            }
            None => cells.extend(std::iter::repeat_n(MISSING.to_string(), 3)),
        }
        cells.push(
            overall
                .and_then(|s| s.tokens_per_s)
                .map_or_else(|| MISSING.to_string(), rate),
        );
        cells
            .push(overall.map_or_else(|| MISSING.to_string(), |s| model_dollars(s, s.cost_per_1k)));
        table.add_row(cells);
    }
    align_right(&mut table, 2);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_only_with_color() {
        assert_eq!(paint(Verdict::Fail, "FAIL", false), "FAIL");
        assert_eq!(paint(Verdict::Fail, "FAIL", true), "\x1b[1;31mFAIL\x1b[0m");
        assert_eq!(savings(-0.12), "costs $0.120 more");
        assert_eq!(savings(3.4), "saves $3.40");
    }

    #[test]
    fn empty_run_is_inconclusive_and_plain() {
        let summary = crate::report::tests::bare_summary();
        let text = render_terminal(&summary, false);
        assert_eq!(
            text,
            "distill-gate run bare: INCONCLUSIVE (exit code 1), 0 gates\n"
        );
    }
}
