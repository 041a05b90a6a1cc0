//! `junit.xml`: one `<testsuite>` per task suite, one `<testcase>` per
//! (student, suite) gate, so CI systems show each gate as a test. FAIL is a
//! `<failure>` with the reasons; INCONCLUSIVE is a `<failure>` when it fails
//! the run (`inconclusive_fails`), else `<skipped>`. Each test case carries
//! the retention numbers as `<property>` elements, in full precision (with
//! the interval's method and confidence, and where the speedup's latencies
//! come from); the failure message rounds numbers for people and marks
//! reasons resting on latencies recorded earlier.

use super::labels::{RECORDED_MARK, RECORDED_NOTE};
use super::{Exporter, GateRow, ReportContext, ReportError, gate_rows, items_needed};
use crate::summary::{Summary, Verdict};

/// The file name of the JUnit report.
pub const JUNIT_FILE: &str = "junit.xml";

/// Writes `junit.xml`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JUnit;

impl Exporter for JUnit {
    fn file_name(&self) -> &'static str {
        JUNIT_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        Ok(render_junit(ctx.summary).into_bytes())
    }
}

/// Escapes text for XML 1.0 element content: `& < > " '` become entities,
/// carriage returns become `&#13;` (parsers would turn them into line
/// feeds), and characters XML 1.0 forbids (control characters other than
/// tab, line feed and carriage return; U+FFFE and U+FFFF) become U+FFFD.
pub fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// Escapes text for an XML 1.0 attribute value in double or single quotes:
/// as [`escape_text`], and tab and line feed become character references
/// too, so parsers do not normalise them to spaces.
pub fn escape_attribute(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// How a gate shows up in JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

fn outcome(verdict: Verdict, inconclusive_fails: bool) -> Outcome {
    match verdict {
        Verdict::Pass => Outcome::Passed,
        Verdict::Fail => Outcome::Failed,
        Verdict::Inconclusive if inconclusive_fails => Outcome::Failed,
        Verdict::Inconclusive => Outcome::Skipped,
    }
}

/// The JUnit XML document. Suites appear in summary order (suites that only
/// gates name follow, sorted by name); test cases in gate order.
pub fn render_junit(summary: &Summary) -> String {
    let rows = gate_rows(summary);
    let mut suites: Vec<&str> = summary
        .suites
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| rows.iter().any(|r| r.gate.suite == *name))
        .collect();
    let mut extra: Vec<&str> = rows
        .iter()
        .map(|r| r.gate.suite.as_str())
        .filter(|name| !summary.suites.iter().any(|s| s.name == *name))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    suites.extend(extra);

    let count = |rows: &[&GateRow<'_>], o: Outcome| {
        rows.iter()
            .filter(|r| outcome(r.gate.verdict, summary.inconclusive_fails) == o)
            .count()
    };
    let all: Vec<&GateRow<'_>> = rows.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
        escape_attribute(&format!("distill-gate {}", summary.run)),
        all.len(),
        count(&all, Outcome::Failed),
        count(&all, Outcome::Skipped),
    ));
    for suite in suites {
        let cases: Vec<&GateRow<'_>> = rows.iter().filter(|r| r.gate.suite == suite).collect();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
            escape_attribute(suite),
            cases.len(),
            count(&cases, Outcome::Failed),
            count(&cases, Outcome::Skipped),
        ));
        out.extend(summary.isolation.as_ref().map(|i| {
            format!(
                "    <properties><property name=\"sandbox\" value=\"{}\"/></properties>\n",
                escape_attribute(i)
            )
        }));
        for case in cases {
            testcase(
                &mut out,
                case,
                summary.inconclusive_fails,
                summary.statistics.interval,
            );
        }
        let warnings = summary.warnings();
        if !warnings.is_empty() {
            out.push_str(&format!(
                "    <system-err>{}</system-err>\n",
                escape_text(&warnings.join("\n"))
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(
    out: &mut String,
    row: &GateRow<'_>,
    inconclusive_fails: bool,
    interval_method: crate::stats::IntervalMethod,
) {
    let g = row.gate;
    out.push_str(&format!(
        "    <testcase name=\"{}\" classname=\"{}\">\n",
        escape_attribute(&format!("{} / {}", g.student, g.scope())),
        escape_attribute(&format!("distill-gate.{}", g.suite)),
    ));
    out.push_str("      <properties>\n");
    for (name, value) in properties(row, interval_method) {
        out.push_str(&format!(
            "        <property name=\"{}\" value=\"{}\"/>\n",
            escape_attribute(name),
            escape_attribute(&value)
        ));
    }
    out.push_str("      </properties>\n");

    let mut lines: Vec<String> = Vec::new();
    lines.extend(row.unmeasured_note());
    let reasons = row.reasons();
    let marked = reasons.iter().any(|(_, recorded)| *recorded);
    lines.extend(reasons.into_iter().map(|(text, _)| text));
    if g.verdict == Verdict::Inconclusive {
        lines.extend(items_needed(row));
    }
    if marked {
        lines.push(format!("{RECORDED_MARK} {RECORDED_NOTE}"));
    }
    let message = if lines.is_empty() {
        g.verdict.to_string()
    } else {
        format!("{}: {}", g.verdict, lines.join("; "))
    };
    match outcome(g.verdict, inconclusive_fails) {
        Outcome::Passed => {}
        Outcome::Failed => out.push_str(&format!(
            "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
            escape_attribute(&message),
            g.verdict,
            escape_text(&lines.join("\n")),
        )),
        Outcome::Skipped => out.push_str(&format!(
            "      <skipped message=\"{}\"/>\n",
            escape_attribute(&message)
        )),
    }
    out.push_str("    </testcase>\n");
}

/// Name and value of every property of a test case, numbers in full precision.
fn properties(
    row: &GateRow<'_>,
    interval_method: crate::stats::IntervalMethod,
) -> Vec<(&'static str, String)> {
    let g = row.gate;
    let t = &g.thresholds;
    let mut props = vec![
        ("verdict", g.verdict.to_string()),
        ("min_retention", t.min_retention.to_string()),
        ("confidence", t.confidence.to_string()),
    ];
    let optional = [
        ("max_p95_latency_ms", t.max_p95_latency_ms),
        ("min_speedup", t.min_speedup),
        ("max_cost_ratio", t.max_cost_ratio),
        ("max_error_rate", t.max_error_rate),
    ];
    props.extend(
        optional
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v.to_string()))),
    );
    if let Some(c) = row.comparison {
        props.push(("paired_items", c.n.to_string()));
        props.push(("teacher_correct", c.teacher_correct.to_string()));
        props.push(("measurable", c.measurable.to_string()));
        if let Some(r) = c.retention {
            props.push(("retention", r.to_string()));
        }
        if let Some(r) = c.retention_lower {
            props.push(("retention_lower_bound", r.to_string()));
        }
        if let Some(i) = c.retention_interval {
            props.push(("retention_ci_lower", i.lower.to_string()));
            props.push(("retention_ci_upper", i.upper.to_string()));
            if let Some(confidence) = i.confidence {
                props.push(("retention_ci_confidence", confidence.to_string()));
            }
        }
        props.push(("retention_interval_method", interval_method.to_string()));
        if let Some(p) = c.mcnemar_p {
            props.push(("mcnemar_p", p.to_string()));
        }
        if let Some(a) = c.agreement {
            props.push(("agreement", a.to_string()));
        }
        if let Some(s) = c.speedup {
            props.push(("speedup", s.to_string()));
            let source = if row.speedup_recorded() {
                "recorded"
            } else {
                "live"
            };
            props.push(("speedup_latency_source", source.to_string()));
        }
        props.push(("savings_per_1k", c.savings_per_1k.to_string()));
    }
    if let Some(s) = row.teacher {
        props.push(("teacher_accuracy", s.accuracy.to_string()));
    }
    if let Some(s) = row.student {
        props.push(("student_accuracy", s.accuracy.to_string()));
        props.push(("student_error_rate", s.error_rate.to_string()));
    }
    if let Some(n) = g.items_needed {
        props.push(("items_needed", n.to_string()));
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_replaces_characters_xml_forbids() {
        assert_eq!(
            escape_text("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            escape_text("a\u{0}b\u{1b}c\u{7}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(escape_text("x\u{FFFE}\u{FFFF}y"), "x\u{FFFD}\u{FFFD}y");
        assert_eq!(escape_text("l1\nl2\tt\r"), "l1\nl2\tt&#13;");
        assert_eq!(escape_attribute("l1\nl2\tt\r"), "l1&#10;l2&#9;t&#13;");
        // Allowed outside the ASCII range, including astral characters.
        assert_eq!(escape_text("é€😀\u{85}"), "é€😀\u{85}");
    }

    #[test]
    fn inconclusive_outcome_follows_the_config() {
        assert_eq!(outcome(Verdict::Inconclusive, true), Outcome::Failed);
        assert_eq!(outcome(Verdict::Inconclusive, false), Outcome::Skipped);
        assert_eq!(outcome(Verdict::Fail, false), Outcome::Failed);
        assert_eq!(outcome(Verdict::Pass, true), Outcome::Passed);
    }

    #[test]
    fn no_gates_gives_an_empty_valid_document() {
        let summary = crate::report::tests::bare_summary();
        assert_eq!(
            render_junit(&summary),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"distill-gate bare\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\">\n\
             </testsuites>\n"
        );
    }
}
