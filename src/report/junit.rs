//! `junit.xml`: one `<testsuite>` per task suite, one `<testcase>` per
//! (student, suite) gate, so CI systems show each gate as a test. FAIL is a
//! `<failure>` with the reasons; INCONCLUSIVE is a `<failure>` when it fails
//! the run (`inconclusive_fails`), else `<skipped>`. Each test case carries
//! the retention numbers as `<property>` elements, in full precision (with
//! the interval's method and confidence, and where the speedup's latencies
//! come from); the failure message rounds numbers for people and marks
//! reasons resting on latencies recorded earlier.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::labels::{RECORDED_MARK, recorded_note};
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
        Ok(render_junit(ctx.summary)?.into_bytes())
    }
}

/// `text` ready for quick-junit: every character XML 1.0 forbids (control
/// characters other than tab, line feed and carriage return; U+FFFE and
/// U+FFFF) replaced by U+FFFD, so the file stays well-formed and a reader
/// sees that something was there (quick-junit would drop control characters
/// and the ANSI sequences they start without a trace, and lets U+FFFE and
/// U+FFFF through); tabs as spaces and CR or CRLF line ends as LF (quick-junit
/// keeps line feeds but drops tabs and carriage returns, which would glue
/// words together). Escaping markup is quick-junit's.
fn xml_chars(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            '\r' => '\n',
            '\n' => c,
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
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

/// The JUnit XML document, serialised by quick-junit (the counts of every
/// suite and of the whole report are its own). Suites appear in summary
/// order (suites that only gates name follow, sorted by name); test cases
/// in gate order.
pub fn render_junit(summary: &Summary) -> Result<String, ReportError> {
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

    let mut report = Report::new(xml_chars(&format!("distill-gate {}", summary.run)));
    let warnings = summary.warnings();
    for name in suites {
        let mut suite = TestSuite::new(xml_chars(name));
        if let Some(isolation) = &summary.isolation {
            suite.add_property(Property::new("sandbox", xml_chars(isolation)));
        }
        suite.add_test_cases(
            rows.iter()
                .filter(|r| r.gate.suite == name)
                .map(|row| test_case(row, summary)),
        );
        if !warnings.is_empty() {
            suite.set_system_err(xml_chars(&warnings.join("\n")));
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|source| ReportError::Xml {
        file: JUNIT_FILE,
        source,
    })
}

/// One gate as a test case: its numbers as properties; a `<failure>` with
/// the reasons, or `<skipped>`, unless it passed.
fn test_case(row: &GateRow<'_>, summary: &Summary) -> TestCase {
    let g = row.gate;
    let mut lines: Vec<String> = Vec::new();
    lines.extend(row.unmeasured_note());
    let reasons = row.reasons();
    let marked = reasons.iter().any(|(_, recorded)| *recorded);
    lines.extend(reasons.into_iter().map(|(text, _)| text));
    if g.verdict == Verdict::Inconclusive {
        lines.extend(items_needed(row));
    }
    if marked {
        lines.push(format!("{RECORDED_MARK} {}", recorded_note(summary)));
    }
    let message = if lines.is_empty() {
        g.verdict.to_string()
    } else {
        format!("{}: {}", g.verdict, lines.join("; "))
    };
    let status = match outcome(g.verdict, summary.inconclusive_fails) {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Failed => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(xml_chars(&message))
                .set_type(g.verdict.to_string())
                .set_description(xml_chars(&lines.join("\n")));
            status
        }
        Outcome::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(xml_chars(&message));
            status
        }
    };
    let mut case = TestCase::new(xml_chars(&format!("{} / {}", g.student, g.scope())), status);
    case.set_classname(xml_chars(&format!("distill-gate.{}", g.suite)));
    case.add_properties(
        properties(row, summary.statistics.interval)
            .into_iter()
            .map(|(name, value)| Property::new(name, xml_chars(&value))),
    );
    case
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
    fn characters_xml_forbids_are_replaced_and_markup_is_kept_for_escaping() {
        assert_eq!(xml_chars("<a href=\"x\">&'</a>"), "<a href=\"x\">&'</a>");
        assert_eq!(
            xml_chars("a\u{0}b\u{1b}c\u{7}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(xml_chars("x\u{FFFE}\u{FFFF}y"), "x\u{FFFD}\u{FFFD}y");
        assert_eq!(xml_chars("l1\nl2\tt\r\nl3\rl4"), "l1\nl2 t\nl3\nl4");
        // Allowed outside the ASCII range, including astral characters.
        assert_eq!(xml_chars("é€😀\u{85}"), "é€😀\u{85}");
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
        let xml = render_junit(&summary).unwrap();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("name"), Some("distill-gate bare"));
        for count in ["tests", "failures", "errors", "skipped"] {
            assert_eq!(root.attribute(count), Some("0"), "{count}: {xml}");
        }
        assert_eq!(root.children().filter(|n| n.is_element()).count(), 0);
    }
}
