//! `report.html`: the run for a researcher, in one self-contained file that
//! opens in any browser without a network: inline CSS, a few lines of inline
//! JavaScript for the disagreement filter, and SVG charts drawn by plotters.
//!
//! It shows the verdicts; accuracy per suite and category with intervals;
//! retention against cost with the thresholds and the students' Pareto
//! front; latency distributions with p50/p95/p99; and the items where a
//! student and the teacher scored differently, with the task, both answers
//! and the verifiers' details. Everything comes from the summary and the
//! journal; no model is run. Every piece of text from the run goes through
//! [`escape`]. The markup is also well-formed XML (void elements closed,
//! only XML's character references), so an XML parser can check it.

mod charts;
mod disagreements;
mod pareto;

use std::collections::BTreeMap;

use serde_json::Value;

use self::charts::{
    AccuracyPoint, AccuracySeries, ChartError, LatencyRow, RetentionChart, RetentionPoint,
    css_color, model_color,
};
use self::disagreements::{Disagreement, Group, disagreements};
use super::labels::{
    RECORDED_MARK, accuracy_confidence, accuracy_sentence, gate_confidence, lower_bound_sentence,
    recorded_note as note_text, retention_method, thousands,
};
use super::numbers::{
    confidence, dollars, factor, millis, model_dollars, opt, percent, percent_interval, ratio,
    ratio_interval,
};
use super::{
    Exporter, GateRow, ReportContext, ReportError, gate_rows, items_needed, latencies_recorded,
    model_rank, model_stats, not_measurable, overall_stats, overall_verdict, role_name,
    verdict_counts,
};
use crate::run::journal::{JournalEntry, Role};
use crate::run::plan::Plan;
use crate::stats::percentile;
use crate::summary::{Comparison, ModelStats, Summary, Verdict};

/// The file name of the HTML report.
pub const HTML_FILE: &str = "report.html";

/// Disagreeing items shown per (suite, category); the rest are counted.
pub const MAX_ITEMS_PER_CATEGORY: usize = 20;

/// Characters of one answer, input or detail shown; the rest is cut with a note.
const MAX_TEXT_CHARS: usize = 2_000;

/// What one task asked and what its verifier accepts, as shown next to the answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskText {
    /// The task's input (the variable part of the prompt).
    pub input: String,
    /// The target: a JSON string as its text, any other value as indented JSON.
    pub target: String,
}

/// Task texts by (suite name, task id).
pub type TaskTexts = BTreeMap<(String, String), TaskText>;

/// The task texts of every item a plan evaluates.
pub fn task_texts(plan: &Plan) -> TaskTexts {
    plan.suites
        .iter()
        .flat_map(|suite| {
            suite.items.iter().map(move |item| {
                let target = match &item.task.target {
                    Value::String(s) => s.clone(),
                    other => {
                        serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string())
                    }
                };
                (
                    (suite.name().to_string(), item.task.id.clone()),
                    TaskText {
                        input: item.task.input.clone(),
                        target,
                    },
                )
            })
        })
        .collect()
}

/// Writes `report.html`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl Exporter for Html {
    fn file_name(&self) -> &'static str {
        HTML_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        render_html(ctx).map(String::into_bytes)
    }
}

/// Escapes text for HTML element content and quoted attribute values:
/// `&`, `<`, `>`, `"` and `'` become character references, and control
/// characters other than tab and line breaks become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most [`MAX_TEXT_CHARS`] characters of `text`, escaped, with a note
/// of how many were cut.
fn escape_cut(text: &str) -> String {
    let total = text.chars().count();
    if total <= MAX_TEXT_CHARS {
        return escape(text);
    }
    let kept: String = text.chars().take(MAX_TEXT_CHARS).collect();
    format!(
        "{}<span class=\"cut\">… {} more characters</span>",
        escape(&kept),
        total - MAX_TEXT_CHARS
    )
}

/// A number for a `data-value` attribute: the shortest text that parses
/// back to the same `f64`, so a reader (or a test) gets the summary's number.
fn data(x: f64) -> String {
    format!("{x}")
}

/// The whole page.
pub fn render_html(ctx: &ReportContext<'_>) -> Result<String, ReportError> {
    let summary = ctx.summary;
    let mut out = String::with_capacity(256 * 1024);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>distill-gate report: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        escape(&summary.run)
    ));
    header(&mut out, summary);
    for w in summary.warnings() {
        out.push_str(&format!(
            "<p class=\"warning\"><strong>WARNING:</strong> {}</p>\n",
            escape(&w)
        ));
    }
    out.extend(
        summary
            .isolation_line()
            .map(|l| format!("<p>{}</p>\n", escape(&l))),
    );
    verdicts(&mut out, summary);
    retention_cost(&mut out, summary)?;
    accuracy(&mut out, summary)?;
    latency(&mut out, summary, ctx.journal)?;
    swap_plan_section(&mut out, ctx);
    disagreement_section(&mut out, ctx)?;
    models_and_suites(&mut out, summary);
    footer(&mut out, ctx);
    out.push_str("<script>\n");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    Ok(out)
}

/// An SVG chart in a `<figure>`, labelled for screen readers.
fn figure(out: &mut String, svg: &str, label: &str) {
    let labelled = svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(label)),
        1,
    );
    out.push_str("<figure class=\"chart\">\n");
    out.push_str(&labelled);
    out.push_str("</figure>\n");
}

/// Maps a plotting error to the report error naming the chart.
fn chart_error(chart: &str) -> impl FnOnce(ChartError) -> ReportError + '_ {
    move |e| ReportError::Chart {
        file: HTML_FILE,
        chart: chart.to_string(),
        message: e.to_string(),
    }
}

fn verdict_badge(v: Verdict) -> String {
    let class = match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    };
    format!("<span class=\"badge v-{class}\">{v}</span>")
}

fn header(out: &mut String, summary: &Summary) {
    let sha: String = summary.config_sha256.chars().take(12).collect();
    out.push_str(&format!(
        "<header class=\"top\">\n<h1>distill-gate report: {}</h1>\n\
         <p class=\"result\">{} <span>exit code {} · {}</span></p>\n\
         <p class=\"meta\">distill-gate {} · config sha256 <code>{}</code> · retention interval: \
         {}{} · seed {}, {} bootstrap resamples · an INCONCLUSIVE verdict {} the run</p>\n",
        escape(&summary.run),
        verdict_badge(overall_verdict(summary)),
        summary.exit_code,
        escape(&verdict_counts(summary)),
        escape(&summary.harness_version),
        escape(&sha),
        escape(&retention_method(summary)),
        gate_confidence(summary)
            .map(|c| format!(" at {c}"))
            .unwrap_or_default(),
        summary.seed,
        thousands(summary.bootstrap_resamples),
        if summary.inconclusive_fails {
            "fails"
        } else {
            "does not fail"
        },
    ));
    out.push_str(
        "<nav><a href=\"#verdicts\">Verdicts</a><a href=\"#retention\">Retention and cost</a>\
         <a href=\"#accuracy\">Accuracy</a><a href=\"#latency\">Latency</a>\
         <a href=\"#swap\">Swap plan</a><a href=\"#disagreements\">Disagreements</a>\
         <a href=\"#models\">Models and suites</a></nav>\n\
         </header>\n",
    );
}

fn accuracy_text(s: Option<&ModelStats>) -> String {
    s.map_or_else(
        || "—".into(),
        |s| {
            format!(
                "{} <span class=\"ci\">{}</span>",
                percent(s.accuracy),
                percent_interval(&s.accuracy_interval)
            )
        },
    )
}

fn verdicts(out: &mut String, summary: &Summary) {
    out.push_str("<section id=\"verdicts\">\n<h2>Verdicts</h2>\n");
    let rows = gate_rows(summary);
    if rows.is_empty() {
        out.push_str("<p class=\"note\">No gates: the run has no students.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<div class=\"wide\"><table class=\"verdicts\">\n<thead><tr><th>Student</th><th>Suite</th><th>Verdict</th>\
         <th>Teacher accuracy</th><th>Student accuracy</th><th>Retention</th><th>Interval</th>\
         <th>Lower bound</th><th>Threshold</th><th>Items</th><th>p95 latency<br/>speedup (p50)</th>\
         </tr></thead>\n<tbody>\n",
    );
    for row in &rows {
        verdict_row(out, row, summary.inconclusive_fails);
    }
    out.push_str(&format!(
        "</tbody>\n</table></div>\n<p class=\"note\">Retention is student accuracy / teacher accuracy on \
         the same items; {}, and the interval is two-sided at the same confidence. A gate passes \
         when the lower bound reaches the threshold and fails when the estimate, or even the one-sided upper bound, is below it. \
         {}</p>\n",
        escape(&lower_bound_sentence(summary)),
        escape(&accuracy_sentence(summary)),
    ));
    if rows.iter().any(GateRow::any_recorded) {
        out.push_str(&recorded_note(summary));
    }
    out.push_str("</section>\n");
}

/// The footnote of [`RECORDED_MARK`] in a report of `summary`.
fn recorded_note(summary: &Summary) -> String {
    format!(
        "<p class=\"note recorded\"><span class=\"mark\">{RECORDED_MARK}</span> {}.</p>\n",
        escape(&note_text(summary))
    )
}

/// A number with the recorded mark when `recorded`.
fn marked(text: String, recorded: bool) -> String {
    if recorded {
        format!("{text}<span class=\"mark\" title=\"recorded earlier\">{RECORDED_MARK}</span>")
    } else {
        text
    }
}

fn verdict_row(out: &mut String, row: &GateRow<'_>, inconclusive_fails: bool) {
    let g = row.gate;
    let t = &g.thresholds;
    let missing = || "<td class=\"num\">—</td>".to_string();
    let value_cell = |field: &str, v: Option<f64>, text: String| {
        v.map_or_else(missing, |v| {
            format!(
                "<td class=\"num\" data-field=\"{field}\" data-value=\"{}\">{text}</td>",
                data(v)
            )
        })
    };
    let c = row.comparison;
    let measurable = c.filter(|c| c.measurable);
    let retention = match (c, measurable.and_then(|c| c.retention)) {
        (_, Some(r)) => value_cell("retention", Some(r), ratio(r)),
        (Some(c), None) if !c.measurable => {
            format!(
                "<td class=\"num muted\">{}</td>",
                escape(&row.unmeasured_cell(c))
            )
        }
        _ => missing(),
    };
    let interval = measurable
        .and_then(|c| c.retention_interval)
        .map_or_else(missing, |i| {
            format!(
                "<td class=\"num\" data-field=\"interval\" data-lower=\"{}\" data-upper=\"{}\">{}</td>",
                data(i.lower),
                data(i.upper),
                ratio_interval(&i)
            )
        });
    let lower = measurable
        .and_then(|c| c.retention_lower)
        .map_or_else(missing, |l| value_cell("lower", Some(l), ratio(l)));
    // p95 latency over the speedup in one cell, each marked when recorded.
    let dash = || "—".to_string();
    let latency = row.student.and_then(|s| s.latency).map_or_else(dash, |l| {
        format!(
            "<span data-field=\"p95\" data-value=\"{}\" data-source=\"{}\">{}</span>",
            data(l.p95_ms),
            source_name(row.latency_recorded()),
            marked(millis(l.p95_ms), row.latency_recorded())
        )
    });
    let speedup = c.and_then(|c| c.speedup).map_or_else(dash, |x| {
        format!(
            "<span data-field=\"speedup\" data-value=\"{}\" data-source=\"{}\">{}</span>",
            data(x),
            source_name(row.speedup_recorded()),
            marked(factor(x), row.speedup_recorded())
        )
    });
    let mut why: Vec<String> = row.reasons().iter().map(|(r, _)| escape(r)).collect();
    if g.verdict == Verdict::Inconclusive {
        why.extend(items_needed(row).map(|n| escape(&n)));
        if !inconclusive_fails {
            why.push("does not fail the run (inconclusive_fails = false)".into());
        }
    }
    out.push_str(&format!(
        "<tr data-student=\"{}\" data-suite=\"{}\"{} data-verdict=\"{}\"><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td>{retention}{interval}{lower}\
         <td class=\"num\" data-field=\"threshold\" data-value=\"{}\">≥ {}<br/><span class=\"ci\">{} one-sided</span></td>\
         <td class=\"num\">{}</td><td class=\"num\">{latency}<br/>{speedup}</td></tr>\n\
         <tr class=\"why\"><td></td><td colspan=\"10\">{}</td></tr>\n",
        escape(&g.student),
        escape(&g.suite),
        g.category.as_ref().map_or_else(String::new, |c| format!(
            " data-category=\"{}\"",
            escape(c)
        )),
        g.verdict,
        escape(&g.student),
        escape(&g.scope()),
        verdict_badge(g.verdict),
        row.teacher.map_or_else(|| "—".into(), |s| percent(s.accuracy)),
        accuracy_text(row.student),
        data(t.min_retention),
        ratio(t.min_retention),
        confidence(t.confidence),
        c.map_or_else(|| "—".into(), |c| c.n.to_string()),
        why.iter()
            .map(|w| format!("<div>{w}</div>"))
            .collect::<String>(),
    ));
}

/// `recorded` or `live`, as in `summary.json`.
fn source_name(recorded: bool) -> &'static str {
    if recorded { "recorded" } else { "live" }
}

/// Legend swatches in the same colours as the charts.
fn model_legend(summary: &Summary) -> String {
    summary
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "<span class=\"key\"><span class=\"dot\" style=\"background:{}\"></span>{} ({})</span>",
                css_color(model_color(i)),
                escape(&m.name),
                role_name(m.role)
            )
        })
        .collect()
}

fn accuracy(out: &mut String, summary: &Summary) -> Result<(), ReportError> {
    out.push_str(
        "<section id=\"accuracy\">\n<h2>Accuracy by suite and category</h2>\n<p class=\"note\">\
         Mean score per model with its interval; each suite's first row is the whole suite.</p>\n",
    );
    for suite in &summary.suites {
        let rows: Vec<(String, Option<&str>)> =
            std::iter::once((format!("{} (all)", suite.name), None))
                .chain(
                    suite
                        .categories
                        .iter()
                        .map(|c| (c.clone(), Some(c.as_str()))),
                )
                .collect();
        let series: Vec<AccuracySeries<'_>> = summary
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| AccuracySeries {
                name: &m.name,
                color: model_color(i),
                points: rows
                    .iter()
                    .map(|(_, category)| {
                        model_stats(summary, &m.name, &suite.name, *category).map(|s| {
                            AccuracyPoint {
                                accuracy: s.accuracy,
                                lower: s.accuracy_interval.lower,
                                upper: s.accuracy_interval.upper,
                            }
                        })
                    })
                    .collect(),
            })
            .collect();
        let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
        let title = format!("accuracy on {}", suite.name);
        let desc = format!(
            "accuracy (mean score); bars: {}two-sided interval",
            accuracy_confidence(summary)
                .map(|c| format!("{c} "))
                .unwrap_or_default()
        );
        let svg = charts::accuracy_chart(&labels, &series, &desc).map_err(chart_error(&title))?;
        out.push_str(&format!(
            "<h3>{} <small>{} items, split {}, version {}</small></h3>\n",
            escape(&suite.name),
            suite.items,
            escape(&suite.split),
            escape(&suite.version)
        ));
        figure(out, &svg, &title);
        accuracy_table(out, summary, &suite.name, &rows);
    }
    out.push_str("</section>\n");
    Ok(())
}

fn accuracy_table(
    out: &mut String,
    summary: &Summary,
    suite: &str,
    rows: &[(String, Option<&str>)],
) {
    out.push_str("<details><summary>Numbers</summary>\n<table class=\"accuracy\">\n<thead><tr><th>Category</th><th>Items</th>");
    for m in &summary.models {
        out.push_str(&format!("<th>{}</th>", escape(&m.name)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (label, category) in rows {
        let stats: Vec<Option<&ModelStats>> = summary
            .models
            .iter()
            .map(|m| model_stats(summary, &m.name, suite, *category))
            .collect();
        let n = stats
            .iter()
            .flatten()
            .next()
            .map_or_else(|| "—".into(), |s| s.n.to_string());
        out.push_str(&format!(
            "<tr data-suite=\"{}\" data-category=\"{}\"><td>{}</td><td class=\"num\">{n}</td>",
            escape(suite),
            escape(category.unwrap_or("")),
            escape(label)
        ));
        for (m, s) in summary.models.iter().zip(&stats) {
            match s {
                Some(s) => out.push_str(&format!(
                    "<td class=\"num\" data-model=\"{}\" data-value=\"{}\" data-lower=\"{}\" data-upper=\"{}\">{}</td>",
                    escape(&m.name),
                    data(s.accuracy),
                    data(s.accuracy_interval.lower),
                    data(s.accuracy_interval.upper),
                    accuracy_text(Some(s))
                )),
                None => out.push_str("<td class=\"num\">—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</details>\n");
}

fn retention_cost(out: &mut String, summary: &Summary) -> Result<(), ReportError> {
    out.push_str(&format!(
        "<section id=\"retention\">\n<h2>Retention against cost</h2>\n<p class=\"note\">Each \
         student's retention on a suite (bar: two-sided interval at {}, {}) against its cost per \
         1,000 tasks; the dashed line is the gate's threshold, the grey line joins the students \
         no other student beats on both cost and retention (the Pareto front), and the triangle \
         is the teacher (retention 1 by definition).</p>\n",
        gate_confidence(summary).unwrap_or_else(|| "the gate's confidence".into()),
        escape(&retention_method(summary)),
    ));
    let teacher = summary.models.iter().find(|m| m.role == Role::Teacher);
    let students: Vec<(usize, &str)> = summary
        .models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Student)
        .map(|(i, m)| (i, m.name.as_str()))
        .collect();
    // Whole suites, then each category a task-specific student is gated on.
    let mut scopes: Vec<(&str, Option<&str>)> = summary
        .suites
        .iter()
        .map(|s| (s.name.as_str(), None))
        .collect();
    for g in &summary.gates {
        let scope = (g.suite.as_str(), g.category.as_deref());
        if g.category.is_some() && !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    for (suite, category) in scopes {
        let label = match category {
            Some(c) => format!("{suite}/{c}"),
            None => suite.to_string(),
        };
        let mut thresholds: Vec<f64> = summary
            .gates
            .iter()
            .filter(|g| g.suite == suite && g.category.as_deref() == category)
            .map(|g| g.thresholds.min_retention)
            .collect();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let whole = |student: &str| {
            summary.comparisons.iter().find(|c| {
                c.student == student && c.suite == suite && c.category.as_deref() == category
            })
        };
        // A task-specific student shows only where it is gated.
        let shown = |name: &str| {
            summary
                .models
                .iter()
                .any(|m| m.name == name && m.categories.is_empty())
                || summary.gates.iter().any(|g| {
                    g.student == name && g.suite == suite && g.category.as_deref() == category
                })
        };
        let rows: Vec<(usize, &str, Option<&Comparison>, Option<&ModelStats>)> = students
            .iter()
            .filter(|&&(_, name)| shown(name))
            .map(|&(i, name)| {
                (
                    i,
                    name,
                    whole(name),
                    model_stats(summary, name, suite, category),
                )
            })
            .collect();
        let points: Vec<RetentionPoint<'_>> = rows
            .iter()
            .filter_map(|&(i, name, c, s)| {
                let c = c.filter(|c| c.measurable)?;
                Some(RetentionPoint {
                    name,
                    color: model_color(i),
                    cost_per_1k: s?.cost_per_1k,
                    retention: c.retention?,
                    interval: c.retention_interval.map(|i| (i.lower, i.upper)),
                })
            })
            .collect();
        let front = pareto::pareto_front(
            &points
                .iter()
                .map(|p| (p.cost_per_1k, p.retention))
                .collect::<Vec<_>>(),
        );
        let chart = RetentionChart {
            teacher: teacher.and_then(|t| {
                model_stats(summary, &t.name, suite, category)
                    .map(|s| (t.name.as_str(), s.cost_per_1k))
            }),
            points,
            front,
            thresholds,
        };
        out.push_str(&format!("<h3>{}</h3>\n", escape(&label)));
        if chart.points.is_empty() {
            out.push_str(&format!(
                "<p class=\"note\">No student's retention is measurable on {}{}.</p>\n",
                escape(&label),
                unplotted(summary, (suite, category), &rows)
            ));
        } else {
            let title = format!("retention against cost on {label}");
            let svg = charts::retention_chart(&chart).map_err(chart_error(&title))?;
            figure(out, &svg, &title);
        }
        retention_table(out, summary, (suite, category), &rows, &chart);
    }
    out.push_str("</section>\n");
    Ok(())
}

/// Why the students of an empty retention chart are left out, each with
/// its verdict: `": s6m FAIL, below: upper bound 0.826 (teacher got 6
/// items right)"`, so the note agrees with a gate that decided without a
/// point estimate.
fn unplotted(
    summary: &Summary,
    (suite, category): (&str, Option<&str>),
    rows: &[(usize, &str, Option<&Comparison>, Option<&ModelStats>)],
) -> String {
    let gates = gate_rows(summary);
    let why: Vec<String> = rows
        .iter()
        .filter_map(|&(_, name, c, _)| {
            let c = c?;
            let gate = gates.iter().find(|g| {
                g.gate.student == name
                    && g.gate.suite == suite
                    && g.gate.category.as_deref() == category
            });
            Some(match gate {
                Some(g) => format!(
                    "{} {}, {}",
                    escape(name),
                    g.gate.verdict,
                    escape(&g.unmeasured_cell(c))
                ),
                None => format!("{} {}", escape(name), escape(&not_measurable(c))),
            })
        })
        .collect();
    if why.is_empty() {
        String::new()
    } else {
        format!(": {}", why.join("; "))
    }
}

fn retention_table(
    out: &mut String,
    summary: &Summary,
    (suite, category): (&str, Option<&str>),
    rows: &[(usize, &str, Option<&Comparison>, Option<&ModelStats>)],
    chart: &RetentionChart<'_>,
) {
    out.push_str(
        "<details><summary>Numbers</summary>\n<table class=\"retention\">\n<thead><tr><th>Student</th>\
         <th>Cost / 1k tasks</th><th>Retention</th><th>Interval</th><th>Pareto front</th>\
         <th>Verdict</th></tr></thead>\n<tbody>\n",
    );
    for &(_, name, c, s) in rows {
        let on_front = chart
            .front
            .iter()
            .filter_map(|&i| chart.points.get(i))
            .any(|p| p.name == name);
        let (retention, interval) = match c {
            Some(c) if c.measurable => (
                c.retention.map_or_else(
                    || "—".into(),
                    |r| format!("<span data-value=\"{}\">{}</span>", data(r), ratio(r)),
                ),
                c.retention_interval
                    .map_or_else(|| "—".into(), |i| ratio_interval(&i)),
            ),
            Some(c) => (escape(&not_measurable(c)), "—".into()),
            None => ("—".into(), "—".into()),
        };
        let verdict = summary
            .gates
            .iter()
            .find(|g| g.student == name && g.suite == suite && g.category.as_deref() == category)
            .map_or_else(|| "—".into(), |g| verdict_badge(g.verdict));
        out.push_str(&format!(
            "<tr data-student=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{retention}</td>\
             <td class=\"num\">{interval}</td><td>{}</td><td>{verdict}</td></tr>\n",
            escape(name),
            escape(name),
            s.map_or_else(
                || "—".into(),
                |s| format!("<span data-value=\"{}\">{}</span>", data(s.cost_per_1k), model_dollars(s, s.cost_per_1k))
            ),
            if on_front { "yes" } else { "" },
        ));
    }
    out.push_str("</tbody>\n</table>\n</details>\n");
}

/// Axis labels for milliseconds: `200 ms`, `1 s`, `20 s`, `0.5 ms`.
fn millis_short(ms: f64) -> String {
    let (v, unit) = if ms >= 1000.0 {
        (ms / 1000.0, "s")
    } else {
        (ms, "ms")
    };
    let text = if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

fn latency(
    out: &mut String,
    summary: &Summary,
    journal: &[JournalEntry],
) -> Result<(), ReportError> {
    let most = charts::MAX_STRIP_POINTS;
    let recorded = if summary.reads_answers() {
        "replay latencies measured when their transcript was recorded, or give those their \
         answers file reports, not measured in this run"
    } else {
        "replay latencies measured when their transcript was recorded, not in this run"
    };
    out.push_str(&format!(
        "<section id=\"latency\">\n<h2>Latency</h2>\n<p class=\"note\">Every item's latency per \
         model over all suites (dots; above {most} items, {most} of them evenly spaced in rank), the \
         middle half of the items (box) and the 50th, 95th and 99th percentiles (ticks), all \
         computed from every item. Models marked “recorded” {recorded}.</p>\n",
    ));
    let mut labels = Vec::new();
    let mut data_rows = Vec::new();
    for (i, m) in summary.models.iter().enumerate() {
        let Some(stats) = overall_stats(summary, &m.name) else {
            continue;
        };
        let Some(l) = stats.latency else {
            continue;
        };
        let mut sorted: Vec<f64> = journal
            .iter()
            .filter(|e| e.model == m.name)
            .filter_map(|e| e.latency.map(|l| l.total_ms))
            .filter(|ms| ms.is_finite())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let (Ok(q1), Ok(q3)) = (percentile(&sorted, 25.0), percentile(&sorted, 75.0)) else {
            continue;
        };
        labels.push(if l.recorded > 0 {
            format!("{} (recorded)", m.name)
        } else {
            m.name.clone()
        });
        data_rows.push((i, stats, l, sorted, (q1, q3)));
    }
    if data_rows.is_empty() {
        out.push_str("<p class=\"note\">No item has a latency.</p>\n</section>\n");
        return Ok(());
    }
    let rows: Vec<LatencyRow<'_>> = data_rows
        .iter()
        .zip(&labels)
        .map(|((i, _, l, sorted, quartiles), label)| LatencyRow {
            name: label,
            color: model_color(*i),
            sorted_ms: sorted.clone(),
            quartiles: *quartiles,
            p50_p95_p99: (l.p50_ms, l.p95_ms, l.p99_ms),
        })
        .collect();
    let title = "latency per model";
    let svg = charts::latency_chart(&rows).map_err(chart_error(title))?;
    figure(out, &svg, title);
    out.push_str(
        "<table class=\"latency\">\n<thead><tr><th>Model</th><th>Items</th><th>p50</th><th>p95</th>\
         <th>p99</th><th>Mean</th><th>Measured in this run</th><th>Recorded earlier</th></tr></thead>\n<tbody>\n",
    );
    for (i, stats, l, sorted, _) in &data_rows {
        let name = summary.models.get(*i).map_or("", |m| m.name.as_str());
        let cell = |field: &str, v: f64| {
            format!(
                "<td class=\"num\" data-field=\"{field}\" data-value=\"{}\">{}</td>",
                data(v),
                millis(v)
            )
        };
        out.push_str(&format!(
            "<tr data-model=\"{}\"><td>{}</td><td class=\"num\">{}</td>{}{}{}{}<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(name),
            escape(&stats.model),
            sorted.len(),
            cell("p50", l.p50_ms),
            cell("p95", l.p95_ms),
            cell("p99", l.p99_ms),
            cell("mean", l.mean_ms),
            l.live,
            l.recorded,
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

/// The swap plan, as in `report.md` (the summary's plans, computed by
/// [`crate::run::swap`]): per student, the categories it may take over and the blend of
/// routing just those to it.
fn swap_plan_section(out: &mut String, ctx: &ReportContext<'_>) {
    let summary = ctx.summary;
    if !summary.models.iter().any(|m| m.role == Role::Student) {
        return;
    }
    let recorded = latencies_recorded(summary);
    out.push_str(&format!(
        "<section id=\"swap\">\n<h2>Swap plan</h2>\n<p class=\"note\">Per student, the categories \
         it may take over from the teacher (the gate's retention rule on that category's items) \
         and the blend of routing just those to it while the teacher keeps the rest, over the \
         suites' items; it assumes traffic has the categories in the suites' proportions. Lower \
         bounds here are one-sided at the gate's confidence by the run's interval method ({}).\
         </p>\n",
        escape(&super::labels::swap_method(summary))
    ));
    for plan in &summary.swap_plans {
        out.push_str(&format!(
            "<h3>{}</h3>\n<table class=\"swap\" data-student=\"{}\">\n<thead><tr><th>Suite</th>\
             <th>Category</th><th>Items</th><th>Retention</th><th>Lower bound</th><th>Verdict</th>\
             <th>Routed to</th><th>Items needed</th><th>Why</th></tr></thead>\n<tbody>\n",
            escape(&plan.student),
            escape(&plan.student)
        ));
        for c in &plan.categories {
            let why: Vec<String> = c
                .reasons
                .iter()
                .map(|r| escape(&super::labels::readable(r)))
                .collect();
            out.push_str(&format!(
                "<tr data-suite=\"{}\" data-category=\"{}\"><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"why\">{}</td></tr>\n",
                escape(&c.suite),
                escape(&c.category),
                escape(&c.suite),
                escape(&c.category),
                c.n,
                opt(c.retention, ratio),
                opt(c.retention_lower, ratio),
                verdict_badge(c.verdict),
                if c.take_over { "student" } else { "teacher" },
                c.items_needed.map_or_else(|| "—".into(), |n| n.to_string()),
                why.join("<br/>"),
            ));
        }
        out.push_str(
            "</tbody>\n</table>\n<table class=\"blend\">\n<thead><tr><th>Routing</th>\
             <th>Share to student</th><th>Retention</th><th>Lower bound</th><th>p50</th><th>p95</th>\
             <th>Cost / 1k tasks</th></tr></thead>\n<tbody>\n",
        );
        for (name, b) in [
            ("teacher only", &plan.teacher_only),
            ("swap plan", &plan.blended),
        ] {
            let ms = |x: Option<f64>| opt(x, millis);
            out.push_str(&format!(
                "<tr data-routing=\"{name}\"><td>{name}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                if b.items == 0 {
                    "—".to_string()
                } else {
                    percent(b.routed_items as f64 / b.items as f64)
                },
                opt(b.retention, ratio),
                opt(b.retention_lower, ratio),
                marked(ms(b.p50_ms), recorded && b.p50_ms.is_some()),
                marked(ms(b.p95_ms), recorded && b.p95_ms.is_some()),
                dollars(b.cost_per_1k),
            ));
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if recorded {
        out.push_str(&recorded_note(ctx.summary));
    }
    out.push_str("</section>\n");
}

/// A score as text: `1`, `0`, `0.667`.
fn score_text(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        super::numbers::significant(x, 3)
    }
}

fn disagreement_section(out: &mut String, ctx: &ReportContext<'_>) -> Result<(), ReportError> {
    let summary = ctx.summary;
    let groups = disagreements(summary, ctx.journal);
    let total: usize = groups.iter().map(|g| g.items.len()).sum();
    out.push_str(&format!(
        "<section id=\"disagreements\">\n<h2>Where students and the teacher disagree</h2>\n\
         <p class=\"note\">{total} item(s) where at least one student's score differs from the \
         teacher's, with the task, each answer and the verifier's detail; at most \
         {MAX_ITEMS_PER_CATEGORY} per category are shown (results.csv has every answer).</p>\n"
    ));
    if groups.is_empty() {
        out.push_str("</section>\n");
        return Ok(());
    }
    out.push_str("<div class=\"filters\"><label>Category <select id=\"f-group\"><option value=\"\">all</option>");
    for (g, group) in groups.iter().enumerate() {
        out.push_str(&format!(
            "<option value=\"g{g}\">{} / {} ({})</option>",
            escape(group.suite),
            escape(group.category),
            group.items.len()
        ));
    }
    out.push_str(
        "</select></label> <label>Student <select id=\"f-student\"><option value=\"\">all</option>",
    );
    for m in summary.models.iter().filter(|m| m.role == Role::Student) {
        out.push_str(&format!(
            "<option value=\"m{}\">{}</option>",
            model_rank(summary, &m.name),
            escape(&m.name)
        ));
    }
    out.push_str("</select></label> <span id=\"f-count\"></span></div>\n");
    for (g, group) in groups.iter().enumerate() {
        disagreement_group(out, ctx, g, group)?;
    }
    out.push_str("</section>\n");
    Ok(())
}

fn disagreement_group(
    out: &mut String,
    ctx: &ReportContext<'_>,
    index: usize,
    group: &Group<'_>,
) -> Result<(), ReportError> {
    let shown = group.items.len().min(MAX_ITEMS_PER_CATEGORY);
    out.push_str(&format!(
        "<div class=\"group\" data-group=\"g{index}\" data-suite=\"{}\" data-category=\"{}\" \
         data-items=\"{}\">\n<h3>{} / {} <small>{} item(s){}</small></h3>\n",
        escape(group.suite),
        escape(group.category),
        group.items.len(),
        escape(group.suite),
        escape(group.category),
        group.items.len(),
        if shown < group.items.len() {
            format!(", the first {shown} shown")
        } else {
            String::new()
        }
    ));
    for item in group.items.iter().take(MAX_ITEMS_PER_CATEGORY) {
        disagreement_item(out, ctx, item)?;
    }
    if shown < group.items.len() {
        out.push_str(&format!(
            "<p class=\"more\">{} more item(s) in this category are not shown; results.csv has them.</p>\n",
            group.items.len() - shown
        ));
    }
    out.push_str("</div>\n");
    Ok(())
}

fn disagreement_item(
    out: &mut String,
    ctx: &ReportContext<'_>,
    item: &Disagreement<'_>,
) -> Result<(), ReportError> {
    let summary = ctx.summary;
    let t = item.teacher;
    let sample = if t.sample > 0 {
        format!(" <span class=\"muted\">sample {}</span>", t.sample)
    } else {
        String::new()
    };
    out.push_str(&format!(
        "<article class=\"item\" data-task=\"{}\">\n<header><code>{}</code>{sample}</header>\n",
        escape(&t.task_id),
        escape(&t.task_id)
    ));
    match ctx
        .tasks
        .and_then(|tasks| tasks.get(&(t.suite.clone(), t.task_id.clone())))
    {
        Some(task) => out.push_str(&format!(
            "<div class=\"task\"><div><h4>Task input</h4><pre>{}</pre></div>\
             <div><h4>Target</h4><pre>{}</pre></div></div>\n",
            escape_cut(&task.input),
            escape_cut(&task.target)
        )),
        None => out.push_str(
            "<p class=\"muted\">The task's text is not in the journal; `distill-gate report` on \
             the run directory shows it.</p>\n",
        ),
    }
    out.push_str("<div class=\"answers\">\n");
    answer(out, summary, ctx.full(t)?.as_ref());
    for s in &item.differ {
        answer(out, summary, ctx.full(s)?.as_ref());
    }
    out.push_str("</div>\n");
    if !item.agree.is_empty() {
        let names: Vec<String> = item.agree.iter().map(|e| escape(&e.model)).collect();
        out.push_str(&format!(
            "<p class=\"agree\">Same score as the teacher: {}.</p>\n",
            names.join(", ")
        ));
    }
    out.push_str("</article>\n");
    Ok(())
}

fn answer(out: &mut String, summary: &Summary, e: &JournalEntry) {
    let rank = model_rank(summary, &e.model);
    let (class, attr) = match e.role {
        Role::Teacher => ("answer teacher", String::new()),
        Role::Student => ("answer", format!(" data-student=\"m{rank}\"")),
    };
    let body = match (&e.output, &e.error) {
        (_, Some(err)) => format!("<pre class=\"error\">error: {}</pre>", escape_cut(err)),
        (Some(text), None) => format!("<pre>{}</pre>", escape_cut(text)),
        (None, None) => "<pre class=\"muted\">(no output)</pre>".into(),
    };
    let extracted = match (&e.extracted, &e.output) {
        (Some(x), Some(o)) if x.trim() != o.trim() => format!(
            "<p class=\"extracted\">extracted: <code>{}</code></p>",
            escape_cut(x)
        ),
        _ => String::new(),
    };
    out.push_str(&format!(
        "<div class=\"{class}\"{attr}><h4><span class=\"dot\" style=\"background:{}\"></span>{} \
         <span class=\"muted\">{}</span><span class=\"score s-{}\">score {}</span></h4>{body}{extracted}\
         <p class=\"detail\">{}</p></div>\n",
        css_color(model_color(rank)),
        escape(&e.model),
        role_name(e.role),
        if e.score >= 1.0 { "right" } else if e.score > 0.0 { "part" } else { "wrong" },
        score_text(e.score),
        escape_cut(&e.detail),
    ));
}

fn models_and_suites(out: &mut String, summary: &Summary) {
    out.push_str(
        "<section id=\"models\">\n<h2>Models and suites</h2>\n<table>\n<thead><tr><th>Model</th>\
         <th>Role</th><th>Asked</th><th>Backend</th><th>Fingerprint</th><th>Price</th></tr></thead>\n<tbody>\n",
    );
    for m in &summary.models {
        let fp: String = m.fingerprint.chars().take(16).collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>\n",
            escape(&m.name),
            role_name(m.role),
            escape(&m.asked()),
            escape(&m.backend),
            escape(&m.fingerprint),
            escape(&fp),
            escape(&m.price)
        ));
    }
    out.push_str(
        "</tbody>\n</table>\n<table>\n<thead><tr><th>Suite</th><th>Version</th><th>Split</th>\
         <th>Items</th><th>Categories</th></tr></thead>\n<tbody>\n",
    );
    for s in &summary.suites {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
            escape(&s.name),
            escape(&s.version),
            escape(&s.split),
            s.items,
            escape(&s.categories.join(", "))
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn footer(out: &mut String, ctx: &ReportContext<'_>) {
    out.push_str(&format!(
        "<footer><p>Made by distill-gate {} from the run's summary and journal; no model was run \
         to make this page.{}</p><p class=\"legend\">{}</p></footer>\n",
        escape(&ctx.summary.harness_version),
        ctx.reproduce
            .map(|r| format!(" Reproduce: <code>{}</code>", escape(r)))
            .unwrap_or_default(),
        model_legend(ctx.summary),
    ));
}

/// The page's style: system fonts only, nothing fetched.
const STYLE: &str = include_str!("style.css");

/// The disagreement filter: hides items outside the chosen category and
/// without an answer from the chosen student. Without JavaScript every item
/// is shown. No `&` or `<` in it, so the page stays well-formed XML.
const SCRIPT: &str = include_str!("filter.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>\u{7}\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;\u{FFFD}\n"
        );
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let long = "<".repeat(MAX_TEXT_CHARS + 5);
        let cut = escape_cut(&long);
        assert!(cut.starts_with("&lt;&lt;"));
        assert_eq!(cut.matches("&lt;").count(), MAX_TEXT_CHARS);
        assert!(cut.ends_with("… 5 more characters</span>"), "{cut}");
        assert_eq!(escape_cut("a&b"), "a&amp;b");
    }

    #[test]
    fn data_values_read_back_exactly() {
        for x in [0.9430999999999999, 1e-7, 0.1 + 0.2, 123456.789] {
            assert_eq!(data(x).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn scores_and_axis_labels() {
        assert_eq!(score_text(1.0), "1");
        assert_eq!(score_text(0.0), "0");
        assert_eq!(score_text(2.0 / 3.0), "0.667");
        assert_eq!(millis_short(200.0), "200 ms");
        assert_eq!(millis_short(1000.0), "1 s");
        assert_eq!(millis_short(20_000.0), "20 s");
        assert_eq!(millis_short(5.0), "5 ms");
        assert_eq!(millis_short(0.5), "0.5 ms");
        assert_eq!(millis_short(10f64.powf(200f64.log10())), "200 ms");
    }
}
