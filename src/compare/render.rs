//! A comparison for people and machines: the terminal, `compare.md`, a short
//! Markdown summary for a CI job or a pull request, and `compare.json` (the
//! swap plan's words are the run report's, [`crate::report::swap`]).

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use super::decision::{Decided, Decision};
use super::statistics::Change;
use super::{CompareReport, Operating, RunRef, SideRetention, StudentChange, SuiteChange};
use crate::report::markdown::{escape, plain_table};
use crate::report::numbers::{MISSING, confidence, dollars, millis, opt, p_value, percent, ratio};
use crate::report::swap::{recorded_note, swap_line, swap_lines_recorded, swap_markdown};
use crate::summary::Verdict;

/// The width the terminal output fits when stdout is not a terminal (or
/// its width is unknown).
pub const DEFAULT_WIDTH: u16 = 100;

/// Narrowest width the terminal output is laid out for.
const MIN_WIDTH: u16 = 60;

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
                        s.label(),
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

/// `812.4 ms`, with `*` when some latencies were recorded earlier.
fn latency(o: &Operating, pick: fn(&Operating) -> Option<f64>) -> String {
    match pick(o) {
        Some(ms) if o.recorded => format!("{}*", millis(ms)),
        Some(ms) => millis(ms),
        None => MISSING.to_string(),
    }
}

/// Retention as a run's report shows it: `0.261`, `not measurable:
/// teacher got 6 items right`, or, when the run FAILed the gate on the
/// upper bound, `below: upper bound 0.451 (teacher got 6 items right)`.
fn side_retention(r: &SideRetention, verdict: Option<Verdict>) -> String {
    let items = match r.teacher_correct {
        1 => "1 item".to_string(),
        n => format!("{n} items"),
    };
    match (r.retention, r.upper_bound) {
        (Some(x), _) => ratio(x),
        (None, Some(upper)) if verdict == Some(Verdict::Fail) => {
            format!(
                "below: upper bound {} (teacher got {items} right)",
                ratio(upper)
            )
        }
        (None, _) => format!("not measurable: teacher got {items} right"),
    }
}

fn verdict(v: Option<Verdict>) -> String {
    v.map_or_else(|| MISSING.to_string(), |v| v.to_string())
}

/// The rows of a student's table: a label and one cell per suite (plain
/// text; Markdown escapes them).
fn suite_rows(suites: &[SuiteChange]) -> Vec<(String, Vec<String>)> {
    let c = suites.first().map_or(0.95, |s| s.confidence);
    let row = |label: &str, f: &dyn Fn(&SuiteChange) -> String| {
        (label.to_string(), suites.iter().map(f).collect())
    };
    vec![
        row("Matched items (of base/cand)", &|s| {
            format!(
                "{} (of {} / {})",
                s.matched, s.baseline_items, s.candidate_items
            )
        }),
        row("Run verdicts (base → cand)", &|s| {
            format!(
                "{} → {}",
                verdict(s.baseline_verdict),
                verdict(s.candidate_verdict)
            )
        }),
        row("Accuracy (base → cand)", &|s| {
            format!(
                "{} → {}",
                percent(s.baseline_accuracy),
                percent(s.candidate_accuracy)
            )
        }),
        row(&format!("Δ accuracy [{} CI]", confidence(c)), &|s| {
            change(s.accuracy_change.as_ref(), percent)
        }),
        row("Items scored lower / higher", &|s| {
            format!("{} lower, {} higher", s.changes.down, s.changes.up)
        }),
        row("McNemar p (pass/fail scores)", &|s| {
            s.changes
                .mcnemar_p
                .map_or_else(|| "— (partial-credit scores)".to_string(), p_value)
        }),
        row("Retention, baseline", &|s| {
            side_retention(&s.baseline_retention, s.baseline_verdict)
        }),
        row("Retention, candidate", &|s| {
            side_retention(&s.candidate_retention, s.candidate_verdict)
        }),
        row(&format!("Δ retention [{} CI]", confidence(c)), &|s| {
            change(s.retention_change.as_ref(), ratio)
        }),
        row("Cand/base ratio [lower bound]", &|s| {
            let estimate = match (s.ratio, s.ratio_lower) {
                (Some(r), Some(l)) => format!("{} [{}]", ratio(r), ratio(l)),
                _ => "not measurable".to_string(),
            };
            format!(
                "{estimate}, min {} @ {} ({})",
                ratio(s.min_retention),
                confidence(s.confidence),
                s.interval
            )
        }),
        row("p50 latency (base → cand)", &|s| {
            format!(
                "{} → {}",
                latency(&s.baseline, |o| o.p50_ms),
                latency(&s.candidate, |o| o.p50_ms)
            )
        }),
        row("p95 latency (base → cand)", &|s| {
            format!(
                "{} → {}",
                latency(&s.baseline, |o| o.p95_ms),
                latency(&s.candidate, |o| o.p95_ms)
            )
        }),
        row("Cost / 1k (base → cand)", &|s| {
            format!(
                "{} → {}",
                dollars(s.baseline.cost_per_1k),
                dollars(s.candidate.cost_per_1k)
            )
        }),
        row("Decision", &|s| s.decision.decision.to_string()),
    ]
}

/// Whether a model of either run read an answers file.
fn reads_answers(report: &CompareReport) -> bool {
    report.baseline.answers_files || report.candidate.answers_files
}

/// Whether some latency in the students' tables was recorded earlier.
fn suites_recorded(report: &CompareReport) -> bool {
    report
        .students
        .iter()
        .flat_map(|s| &s.suites)
        .any(|s| s.baseline.recorded || s.candidate.recorded)
}

/// Notes on a run's floor when it was assumed.
fn floor_notes(report: &CompareReport) -> Vec<String> {
    [
        ("baseline", &report.baseline),
        ("candidate", &report.candidate),
    ]
    .into_iter()
    .filter(|(_, r)| r.floor.assumed)
    .map(|(side, r): (&str, &RunRef)| {
        format!(
            "{side} run: min_teacher_correct {} ({})",
            r.floor.min_teacher_correct, r.floor.source
        )
    })
    .collect()
}

/// The width of the terminal stdout writes to, or [`DEFAULT_WIDTH`] when it
/// is not a terminal.
pub fn terminal_width() -> u16 {
    if !std::io::stdout().is_terminal() {
        return DEFAULT_WIDTH;
    }
    Table::new().width().unwrap_or(DEFAULT_WIDTH)
}

/// The comparison for the terminal stdout writes to (see [`terminal_width`]).
pub fn render_terminal(report: &CompareReport) -> String {
    render_terminal_at(report, terminal_width())
}

/// The comparison laid out to fit `width` columns (at least 60): per
/// student, its numbers with one row per measure and one column per suite,
/// in as many tables as the suites need to fit; then the decisions and the
/// swap plan, wrapped.
pub fn render_terminal_at(report: &CompareReport, width: u16) -> String {
    let width = width.max(MIN_WIDTH);
    let mut out = wrap(
        &format!(
            "compare: baseline {} ({}) vs candidate {} ({}); items are matched by suite and \
             task id, and every number is on the matched items",
            report.baseline.run,
            report.baseline.dir.display(),
            report.candidate.run,
            report.candidate.dir.display()
        ),
        width,
    );
    for s in &report.students {
        out.push_str(&format!("\n{}: {}\n", s.student, s.decision.decision));
        for table in student_tables(&s.suites, width) {
            out.push_str(&format!("{table}\n"));
        }
    }
    out.push('\n');
    for s in &report.students {
        out.push_str(&wrap(&s.line, width));
    }
    if !report.unmatched_students.is_empty() {
        out.push_str(&wrap(
            &format!(
                "not compared (in one run only): {}",
                report.unmatched_students.join(", ")
            ),
            width,
        ));
    }
    for plan in &report.swap_plans {
        out.push_str(&wrap(&swap_line(plan), width));
    }
    for note in floor_notes(report) {
        out.push_str(&wrap(&note, width));
    }
    if suites_recorded(report) || swap_lines_recorded(&report.swap_plans) {
        out.push_str(&wrap(&recorded_note(reads_answers(report)), width));
    }
    out
}

/// A student's tables, each with as many suites as fit `width`.
fn student_tables(suites: &[SuiteChange], width: u16) -> Vec<Table> {
    const LABEL: usize = 33;
    const SUITE: usize = 30;
    let per_table = ((usize::from(width) - LABEL) / SUITE).max(1);
    suites
        .chunks(per_table)
        .map(|chunk| {
            let mut table = Table::new();
            let mut header = vec![String::new()];
            header.extend(chunk.iter().map(|s| s.label()));
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .force_no_tty()
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(width)
                .set_header(header);
            for (label, cells) in suite_rows(chunk) {
                let mut row = vec![label];
                row.extend(cells);
                table.add_row(row);
            }
            for column in table.column_iter_mut().skip(1) {
                column.set_cell_alignment(CellAlignment::Right);
            }
            table
        })
        .collect()
}

/// `text` broken at spaces into lines of at most `width` characters (a
/// longer word stays whole), continuation lines indented by two spaces.
fn wrap(text: &str, width: u16) -> String {
    let width = usize::from(width);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = "  ".to_string();
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
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
    let notes: Vec<String> = floor_notes(report)
        .into_iter()
        .chain(suites_recorded(report).then(|| recorded_note(reads_answers(report))))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&format!("{}\n\n", escape(&note)));
        }
    }
    out.push_str("\n## Swap plan (candidate run)\n\n");
    out.push_str(&swap_markdown(
        &report.swap_plans,
        report.candidate.answers_files,
    ));
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
    let mut header = vec![String::new()];
    header.extend(s.suites.iter().map(|x| escape(&x.label())));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = suite_rows(&s.suites)
        .into_iter()
        .map(|(label, cells)| {
            std::iter::once(label)
                .chain(cells)
                .map(|c| escape(&c))
                .collect()
        })
        .collect();
    plain_table(out, &header, &rows);
    out.push('\n');
    for suite in &s.suites {
        for r in &suite.decision.reasons {
            out.push_str(&format!("- {}: {}\n", escape(&suite.label()), escape(r)));
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
    plain_table(
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
