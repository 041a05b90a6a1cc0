//! Every report format rendered from a hand-built run: a teacher, three
//! students (one with a name full of characters Markdown and XML care
//! about) and two suites, with one PASS, one FAIL and two INCONCLUSIVE
//! gates (one of them because retention is not measurable).

use std::collections::BTreeMap;
use std::path::Path;

use distill_gate::model::{FinishReason, Latency, LatencySource, Usage};

mod support;
use distill_gate::gate::GateThresholds;
use distill_gate::report::csv::{RESULTS_COLUMNS, STATS_COLUMNS, render_results, render_stats};
use distill_gate::report::json::{read_summary, render_summary};
use distill_gate::report::junit::render_junit;
use distill_gate::report::markdown::{render_markdown, render_markdown_short};
use distill_gate::report::terminal::render_terminal;
use distill_gate::report::{
    Exporter, ReportContext, ReportError, standard_exporters, write_reports,
};
use distill_gate::run::journal::{JournalEntry, Role};
use distill_gate::summary::{
    Comparison, GateResult, Interval, LatencyStats, ModelInfo, ModelStats, SuiteInfo, Summary,
    Verdict,
};

const TEACHER: &str = "teacher-api";
const S2M: &str = "student-2m";
const S8M: &str = "student-8m";
/// A name with every character the formats must escape.
const ODD: &str = "odd|<b>&\"q\"'*_x_";

const FAIL_REASON: &str = "retention 0.812 is below the minimum 0.950 (point estimate)";
const INCONCLUSIVE_REASON: &str =
    "lower bound 0.921 is below the minimum 0.950, but the point estimate 0.968 is above it";

fn stats(
    model: &str,
    role: Role,
    suite: &str,
    category: Option<&str>,
    n: usize,
    accuracy: f64,
    p95_ms: f64,
) -> ModelStats {
    let errors = if role == Role::Student && suite == "logistics" {
        2
    } else {
        0
    };
    ModelStats {
        model: model.into(),
        role,
        suite: suite.into(),
        category: category.map(String::from),
        n,
        errors,
        error_rate: errors as f64 / n as f64,
        accuracy,
        accuracy_interval: Interval {
            lower: accuracy - 0.071,
            upper: (accuracy + 0.064).min(1.0),
            confidence: None,
            method: None,
        },
        latency: Some(LatencyStats {
            p50_ms: p95_ms / 2.0,
            p95_ms,
            p99_ms: p95_ms * 1.3,
            mean_ms: p95_ms / 1.8,
            ttft_mean_ms: (role == Role::Teacher).then_some(210.5),
            live: if role == Role::Teacher { 0 } else { n },
            recorded: if role == Role::Teacher { n } else { 0 },
            cached: 0,
        }),
        tokens_per_s: Some(if role == Role::Teacher { 85.26 } else { 410.0 }),
        prompt_tokens: 150 * n as u64,
        completion_tokens: 40 * n as u64,
        cost: if role == Role::Teacher {
            0.0039 * n as f64
        } else {
            0.00012 * n as f64
        },
        cost_per_1k: if role == Role::Teacher { 3.9 } else { 0.12 },
        estimated_usage: 0,
        unanswered: 0,
        pass_at_k: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn comparison(
    student: &str,
    suite: &str,
    category: Option<&str>,
    n: usize,
    teacher_correct: u64,
    retention: Option<(f64, f64, f64, f64)>,
    mcnemar_p: f64,
) -> Comparison {
    Comparison {
        student: student.into(),
        suite: suite.into(),
        category: category.map(String::from),
        n,
        teacher_correct,
        measurable: retention.is_some(),
        retention: retention.map(|r| r.0),
        retention_interval: retention.map(|r| Interval {
            lower: r.2,
            upper: r.3,
            confidence: None,
            method: None,
        }),
        retention_lower: retention.map(|r| r.1),
        retention_delta_interval: retention.map(|r| Interval {
            lower: r.2 - 0.004,
            upper: r.3 + 0.003,
            confidence: None,
            method: None,
        }),
        teacher_only: 9,
        student_only: 3,
        mcnemar_p: Some(mcnemar_p),
        agreement: Some(0.9123),
        speedup: Some(4.213),
        speedup_source: None,
        cost_ratio: Some(0.0307),
        savings_per_1k: 3.78,
    }
}

fn gate(
    student: &str,
    suite: &str,
    verdict: Verdict,
    reasons: &[&str],
    items_needed: Option<u64>,
) -> GateResult {
    GateResult {
        student: student.into(),
        suite: suite.into(),
        category: None,
        verdict,
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
        items_needed,
        thresholds: GateThresholds {
            max_p95_latency_ms: Some(500.0),
            max_cost_ratio: Some(0.5),
            max_error_rate: Some(0.05),
            ..GateThresholds::new(0.95)
        },
    }
}

fn summary() -> Summary {
    let suites = [
        ("coding", vec!["parse", "strings"]),
        ("logistics", vec!["routing", "scheduling"]),
    ];
    let models = [
        (TEACHER, Role::Teacher, 0.82, 1850.0),
        (S2M, Role::Student, 0.78, 240.0),
        (S8M, Role::Student, 0.80, 410.0),
        (ODD, Role::Student, 0.5, 95.0),
    ];
    let mut model_stats = Vec::new();
    for (model, role, acc, p95) in models {
        for (suite, categories) in &suites {
            model_stats.push(stats(model, role, suite, None, 120, acc, p95));
            for (i, c) in categories.iter().enumerate() {
                let acc = acc + 0.01 * i as f64;
                model_stats.push(stats(model, role, suite, Some(c), 60, acc, p95));
            }
        }
        model_stats.push(stats(model, role, "all", None, 240, acc, p95));
    }
    let r = |point: f64, lower: f64| Some((point, lower, lower - 0.01, point + 0.04));
    let comparisons = vec![
        comparison(S2M, "coding", None, 120, 98, r(0.9612, 0.9531), 0.146),
        comparison(S2M, "coding", Some("parse"), 60, 49, r(0.97, 0.94), 0.5),
        comparison(S2M, "logistics", None, 120, 98, r(0.8123, 0.77), 0.003125),
        comparison(S8M, "coding", None, 120, 98, r(0.968, 0.921), 0.0412),
        comparison(S8M, "logistics", None, 120, 3, None, 1.0),
        comparison(ODD, "coding", None, 120, 98, r(0.61, 0.55), 0.000012),
    ];
    let gates = vec![
        gate(
            S2M,
            "coding",
            Verdict::Pass,
            &["lower bound 0.953 >= 0.950"],
            None,
        ),
        gate(S2M, "logistics", Verdict::Fail, &[FAIL_REASON], None),
        gate(
            S8M,
            "coding",
            Verdict::Inconclusive,
            &[INCONCLUSIVE_REASON],
            Some(420),
        ),
        gate(S8M, "logistics", Verdict::Inconclusive, &[], None),
        gate(
            ODD,
            "coding",
            Verdict::Fail,
            &["retention 0.610 < 0.950 | see <log> & \"notes\""],
            None,
        ),
    ];
    Summary {
        harness_version: "0.1.0".into(),
        run: "nightly-2026-11-25".into(),
        config_sha256: "9f2c4e0b7d".into(),
        seed: 20_261_125,
        bootstrap_resamples: 10_000,
        models: models
            .iter()
            .map(|(name, role, _, _)| ModelInfo {
                name: name.to_string(),
                role: *role,
                backend: if *role == Role::Teacher {
                    "replay"
                } else {
                    "local"
                }
                .into(),
                fingerprint: if *role == Role::Teacher {
                    "gpt-4o-mini-2024-07-18".into()
                } else {
                    format!("sha256:{}", "ab12".repeat(16))
                },
                model_id: "cd34".repeat(16),
                price: if *role == Role::Teacher {
                    "$0.15/Mtok in, $0.60/Mtok out".into()
                } else {
                    "$0.50/hour".into()
                },
                categories: Vec::new(),
                few_shot: None,
            })
            .collect(),
        suites: suites
            .iter()
            .map(|(name, categories)| SuiteInfo {
                name: name.to_string(),
                version: "1.2.0".into(),
                split: "test".into(),
                items: 120,
                categories: categories.iter().map(|c| c.to_string()).collect(),
            })
            .collect(),
        model_stats,
        comparisons,
        gates,
        inconclusive_fails: true,
        exit_code: 1,
        statistics: Default::default(),
        contamination: Vec::new(),
        isolation: None,
        swap_plans: Vec::new(),
    }
}

fn entry(model: &str, role: Role, suite: &str, task: &str, output: Option<&str>) -> JournalEntry {
    JournalEntry {
        output: output.map(String::from),
        score: if output.is_some() { 1.0 } else { 0.0 },
        detail: if output.is_some() {
            "route valid, cost 42 = optimum".into()
        } else {
            "model error".into()
        },
        extracted: output.map(|_| "A -> C -> B".into()),
        usage: Usage {
            prompt_tokens: 153,
            completion_tokens: 41,
            cached_prompt_tokens: 0,
            estimated: false,
        },
        latency: output.map(|_| Latency {
            total_ms: 812.375,
            first_token_ms: Some(140.0),
            batch_ms: None,
            batch_size: 1,
            source: LatencySource::Recorded,
        }),
        finish: output.map(|_| FinishReason::Stop),
        cost: 0.003_912_5,
        error: output
            .is_none()
            .then(|| "model call failed: timeout, retried 3×".into()),
        ..JournalEntry::new(model, role, suite, task, "routing")
    }
}

/// Journal lines in the order a resumed, concurrent run might write them.
fn journal() -> Vec<JournalEntry> {
    vec![
        entry(S2M, Role::Student, "logistics", "t2", None),
        entry(
            S2M,
            Role::Student,
            "logistics",
            "t1",
            Some("Route: A, C, B\n\"cost\": 42\r\n<done> & \u{1b}[0m"),
        ),
        entry(
            TEACHER,
            Role::Teacher,
            "logistics",
            "t1",
            Some("A -> C -> B, cost 42"),
        ),
        entry(
            TEACHER,
            Role::Teacher,
            "coding",
            "t1",
            Some("def f(x):\n    return x, 1"),
        ),
        entry(ODD, Role::Student, "coding", "t1", Some("")),
    ]
}

fn context<'a>(summary: &'a Summary, journal: &'a [JournalEntry]) -> ReportContext<'a> {
    ReportContext::new(summary, journal)
}

#[test]
fn summary_json_is_byte_identical_across_renders_and_loads_back() {
    let s = summary();
    let first = render_summary(&s).unwrap();
    let second = render_summary(&s.clone()).unwrap();
    assert_eq!(first, second);
    assert!(first.ends_with(b"}\n"));

    let dir = tempfile::tempdir().unwrap();
    let journal = journal();
    write_reports(dir.path(), &context(&s, &journal), &standard_exporters()).unwrap();
    let path = dir.path().join("summary.json");
    assert_eq!(std::fs::read(&path).unwrap(), first);
    assert_eq!(read_summary(&path).unwrap(), s);
    // Full precision: the numbers are not rounded for display.
    let text = String::from_utf8(first).unwrap();
    assert!(text.contains("\"retention\": 0.8123"), "{text}");
    assert!(text.contains("\"verdict\": \"INCONCLUSIVE\""));
}

#[test]
fn summary_json_refuses_non_finite_numbers_and_nothing_is_written() {
    let mut s = summary();
    s.comparisons[2].retention = Some(f64::NAN);
    let err = render_summary(&s).unwrap_err();
    assert!(
        matches!(&err, ReportError::NotRepresentable { field, .. } if field == "comparisons[2].retention"),
        "{err}"
    );
    assert!(
        err.to_string().contains("comparisons[2].retention is NaN"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let journal = journal();
    assert!(write_reports(&out, &context(&s, &journal), &standard_exporters()).is_err());
    assert!(!out.exists(), "a failed render must write nothing");
}

#[test]
fn read_summary_names_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    std::fs::write(&path, "{\n  \"run\": 3\n}\n").unwrap();
    let err = read_summary(&path).unwrap_err().to_string();
    assert!(
        err.contains("summary.json") && err.contains("line 2"),
        "{err}"
    );
    let missing = read_summary(&dir.path().join("nope.json"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.json"), "{missing}");
}

#[test]
fn results_csv_round_trips_outputs_with_newlines_quotes_and_commas() {
    let s = summary();
    let journal = journal();
    let bytes = render_results(&s, &journal).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, RESULTS_COLUMNS);
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), journal.len());

    // Sorted: teacher first, then students in summary order; suites in
    // summary order; task ids ascending.
    let order: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["model"].as_str(),
                r["suite"].as_str(),
                r["task_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (TEACHER, "coding", "t1"),
            (TEACHER, "logistics", "t1"),
            (S2M, "logistics", "t1"),
            (S2M, "logistics", "t2"),
            (ODD, "coding", "t1"),
        ]
    );
    assert_eq!(
        rows[2]["output"],
        "Route: A, C, B\n\"cost\": 42\r\n<done> & \u{1b}[0m"
    );
    assert_eq!(rows[1]["output"], "A -> C -> B, cost 42");
    assert_eq!(rows[0]["role"], "teacher");
    assert_eq!(rows[0]["latency_ms"], "812.375");
    assert_eq!(rows[0]["ttft_ms"], "140.0");
    assert_eq!(rows[0]["latency_source"], "recorded");
    assert_eq!(rows[0]["finish"], "stop");
    assert_eq!(rows[0]["cost"].parse::<f64>().unwrap(), 0.003_912_5);
    // The errored item: error text present, no output, no latency.
    assert_eq!(rows[3]["error"], "model call failed: timeout, retried 3×");
    assert_eq!(rows[3]["output"], "");
    assert_eq!(rows[3]["latency_ms"], "");
    assert_eq!(rows[3]["score"], "0.0");
}

#[test]
fn results_csv_of_an_empty_journal_still_has_its_header() {
    let bytes = render_results(&summary(), &[]).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        format!("{}\n", RESULTS_COLUMNS.join(","))
    );
}

#[test]
fn stats_csv_has_one_row_per_model_suite_category_with_comparisons_on_student_rows() {
    let s = summary();
    let bytes = render_stats(&s).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        STATS_COLUMNS
    );
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), s.model_stats.len());
    // Teacher rows first; "all" after the suites; whole suite before its categories.
    assert_eq!(rows[0]["model"], TEACHER);
    assert_eq!(rows[0]["suite"], "coding");
    assert_eq!(rows[0]["category"], "");
    assert_eq!(rows[1]["category"], "parse");
    assert_eq!(rows[6]["suite"], "all");
    assert_eq!(rows[0]["retention"], "");
    let s2m_logistics = rows
        .iter()
        .find(|r| r["model"] == S2M && r["suite"] == "logistics" && r["category"].is_empty())
        .unwrap();
    assert_eq!(s2m_logistics["retention"], "0.8123");
    assert_eq!(s2m_logistics["mcnemar_p"], "0.003125");
    assert_eq!(s2m_logistics["measurable"], "true");
    assert_eq!(s2m_logistics["latency_p95_ms"], "240.0");
    let s8m_logistics = rows
        .iter()
        .find(|r| r["model"] == S8M && r["suite"] == "logistics" && r["category"].is_empty())
        .unwrap();
    assert_eq!(s8m_logistics["measurable"], "false");
    assert_eq!(s8m_logistics["teacher_correct"], "3");
    assert_eq!(s8m_logistics["retention"], "");
}

/// Unescaped `|` in a Markdown table line.
fn cell_separators(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count
}

/// Every table's rows have as many cells as its header.
fn assert_tables_are_rectangular(md: &str) {
    let mut expected = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = cell_separators(line);
            let want = *expected.get_or_insert(n);
            assert_eq!(n, want, "ragged table line: {line}");
        } else {
            expected = None;
        }
    }
}

#[test]
fn markdown_report_has_every_section_with_formatted_numbers_and_escaped_text() {
    let s = summary();
    let journal = journal();
    let ctx = context(&s, &journal).with_reproduce("distill-gate run fixtures/gate.toml");
    let md = render_markdown(&ctx);
    assert!(
        md.starts_with("# distill-gate report: nightly-2026-11-25\n"),
        "{md}"
    );
    assert!(
        md.contains("**Result: ❌ FAIL** (exit code 1), 5 gates: 1 PASS, 2 FAIL, 2 INCONCLUSIVE.")
    );
    for heading in [
        "## Verdicts",
        "## Reasons",
        "## Accuracy by category",
        "### coding",
        "### logistics",
        "## Comparison with the teacher",
        "## Latency and cost",
        "## Models",
        "## Suites",
        "## How to reproduce",
    ] {
        assert!(md.contains(&format!("\n{heading}\n")), "missing {heading}");
    }
    assert_tables_are_rectangular(&md);
    // Verdict row of the FAIL gate: accuracy as a percentage with one decimal
    // and its interval, retention with three decimals, p-value with three
    // significant digits, latency marked as measured now, the speedup
    // marked as built on the teacher's replayed latencies.
    assert!(
        md.contains(
            "| student-2m | logistics | ❌ FAIL | 82.0% | 78.0% [70.9%, 84.4%] | 0.812 | 0.770 | \
             ≥ 0.950 (95% one-sided) | 0.00313 | 91.2% | 240.0 ms | 4.21×\\* | $0.120 | $3.78 | 1.7% (2) |"
        ),
        "{md}"
    );
    assert!(md.contains(&format!(
        "- **FAIL** student-2m / logistics\n  - {FAIL_REASON}\n"
    )));
    assert!(md.contains("  - 420 more paired items would decide it at the observed rates"));
    assert!(md.contains("not measurable: teacher got 3 items right"));
    // The odd name cannot break tables or add emphasis.
    assert!(md.contains("odd\\|\\<b\\>\\&\"q\"'\\*\\_x\\_"), "{md}");
    assert!(!md.contains(ODD));
    assert!(md.contains("retention 0.610 \\< 0.950 \\| see \\<log\\> \\& \"notes\""));
    assert!(
        md.contains("1.20e-5"),
        "tiny p-value in scientific notation"
    );
    // Teacher latency was replayed, and the report says so.
    assert!(md.contains("1850 ms\\*"));
    assert!(md.contains("not measured in this run"));
    assert!(md.contains("sha256:ab12ab12"));
    assert!(md.contains("$0.15/Mtok in, $0.60/Mtok out"));
    assert!(md.contains(
        "Run `distill-gate run fixtures/gate.toml` with distill-gate 0.1.0 (config sha256 \
         9f2c4e0b7d, seed 20261125, 10,000 bootstrap resamples)."
    ));
    assert_eq!(md, render_markdown(&ctx), "deterministic");
}

#[test]
fn short_markdown_has_verdicts_and_reasons_only() {
    let s = summary();
    let md = render_markdown_short(&s);
    assert_tables_are_rectangular(&md);
    assert!(md.contains("**Result: ❌ FAIL**"));
    assert!(
        md.contains("| student-2m | coding | ✅ PASS | 0.961 | 0.953 | ≥ 0.950 (95% one-sided) |"),
        "{md}"
    );
    assert!(md.contains(FAIL_REASON));
    assert!(md.contains(INCONCLUSIVE_REASON));
    assert!(!md.contains("## Latency"));
    assert!(!md.contains("## Models"));
    // PASS gates have no reasons block.
    assert!(!md.contains("lower bound 0.953 >= 0.950"));
}

#[test]
fn terminal_report_shows_verdicts_reasons_and_models() {
    let s = summary();
    let plain = render_terminal(&s, false);
    assert!(!plain.contains('\u{1b}'), "no colour when not asked");
    assert!(plain.starts_with(
        "distill-gate run nightly-2026-11-25: FAIL (exit code 1), 5 gates: 1 PASS, 2 FAIL, 2 INCONCLUSIVE\n"
    ));
    assert!(
        plain.contains(&format!("FAIL student-2m / logistics\n  - {FAIL_REASON}\n")),
        "{plain}"
    );
    assert!(plain.contains(&format!(
        "INCONCLUSIVE student-8m / coding\n  - {INCONCLUSIVE_REASON}\n  - 420 more paired items would decide it at the observed rates\n"
    )));
    assert!(plain.contains(
        "INCONCLUSIVE student-8m / logistics\n  - retention not measurable: teacher got 3 items right\n"
    ));
    assert!(plain.contains("0.812 [0.770]"), "{plain}");
    assert!(plain.contains("min 0.950 @ 95%"));
    assert!(plain.contains("78.0%"));
    assert!(plain.contains("[70.9%, 84.4%]"));
    assert!(plain.contains("saves $3.78"));
    assert!(plain.contains("0.00313"));
    assert!(plain.contains("1.7% (2)"));
    // The PASS gate has no reasons block.
    assert!(!plain.contains("PASS student-2m / coding"));
    // Per-model table: accuracy per suite and replayed teacher latency marked.
    assert!(plain.contains("coding acc"));
    assert!(plain.contains("1850 ms*"));
    assert!(plain.contains("85.3"), "teacher tokens/s");
    assert!(plain.contains("not measured in this run"));
    assert_eq!(plain, render_terminal(&s, false), "deterministic");

    let coloured = render_terminal(&s, true);
    assert!(coloured.contains("\u{1b}[1;31mFAIL\u{1b}[0m student-2m / logistics"));
    assert!(coloured.contains("\u{1b}["), "table cells coloured too");
}

#[test]
fn terminal_notes_when_inconclusive_does_not_fail_the_run() {
    let mut s = summary();
    s.inconclusive_fails = false;
    let text = render_terminal(&s, false);
    assert_eq!(
        text.matches("does not fail the run (inconclusive_fails = false)")
            .count(),
        2
    );
}

/// A parsed XML element.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
        }
        for c in &self.children {
            c.all(name, out);
        }
    }

    fn find(&self, name: &str) -> Vec<&Element> {
        let mut out = Vec::new();
        self.all(name, &mut out);
        out
    }

    fn attr(&self, name: &str) -> &str {
        self.attributes
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    fn count(&self, name: &str) -> usize {
        self.attr(name).parse().unwrap()
    }
}

/// Parses a document with roxmltree (a strict XML 1.0 parser: it rejects
/// unescaped markup, mismatched tags and characters XML forbids), resolving
/// entity and character references.
fn parse_xml(text: &str) -> Element {
    fn convert(node: roxmltree::Node<'_, '_>) -> Element {
        Element {
            name: node.tag_name().name().to_string(),
            attributes: node
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect(),
            children: node
                .children()
                .filter(|c| c.is_element())
                .map(convert)
                .collect(),
            text: node
                .children()
                .filter(|c| c.is_text())
                .map(|c| c.text().unwrap_or_default())
                .collect(),
        }
    }
    let doc =
        roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("invalid XML: {e}\n{text}"));
    convert(doc.root_element())
}

/// Characters XML 1.0 allows (https://www.w3.org/TR/xml/#charsets).
fn xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[test]
fn junit_parses_with_correct_counts_and_escaped_text() {
    let s = summary();
    let xml = render_junit(&s).unwrap();
    assert!(xml.chars().all(xml10_char));
    let root = parse_xml(&xml);
    assert_eq!(root.name, "testsuites");
    assert_eq!(root.count("tests"), 5);
    assert_eq!(
        root.count("failures"),
        4,
        "2 FAIL + 2 INCONCLUSIVE (inconclusive_fails)"
    );
    assert_eq!(root.count("skipped"), 0);
    assert_eq!(root.count("errors"), 0);

    let suites = root.find("testsuite");
    assert_eq!(
        suites.iter().map(|s| s.attr("name")).collect::<Vec<_>>(),
        ["coding", "logistics"]
    );
    for suite in &suites {
        let cases = suite.find("testcase");
        assert_eq!(suite.count("tests"), cases.len());
        assert_eq!(suite.count("failures"), suite.find("failure").len());
        assert_eq!(suite.count("skipped"), suite.find("skipped").len());
        for case in cases {
            assert_eq!(
                case.attr("classname"),
                format!("distill-gate.{}", suite.attr("name"))
            );
        }
    }
    let cases = root.find("testcase");
    let case = |name: &str| *cases.iter().find(|c| c.attr("name") == name).unwrap();

    let failed = case("student-2m / logistics");
    let failure = &failed.find("failure")[0];
    assert_eq!(failure.attr("type"), "FAIL");
    assert_eq!(failure.attr("message"), format!("FAIL: {FAIL_REASON}"));
    assert_eq!(failure.text, FAIL_REASON);
    let props: BTreeMap<&str, &str> = failed
        .find("property")
        .iter()
        .map(|p| (p.attr("name"), p.attr("value")))
        .collect();
    assert_eq!(props["retention"], "0.8123");
    assert_eq!(props["retention_lower_bound"], "0.77");
    assert_eq!(props["min_retention"], "0.95");
    assert_eq!(props["mcnemar_p"], "0.003125");
    assert_eq!(props["verdict"], "FAIL");

    let passed = case("student-2m / coding");
    assert!(passed.find("failure").is_empty() && passed.find("skipped").is_empty());

    let not_measurable = case("student-8m / logistics");
    assert_eq!(
        not_measurable.find("failure")[0].attr("message"),
        "INCONCLUSIVE: retention not measurable: teacher got 3 items right"
    );

    // The odd name and reason survive escaping exactly.
    let odd = case(&format!("{ODD} / coding"));
    assert_eq!(
        odd.find("failure")[0].text,
        "retention 0.610 < 0.950 | see <log> & \"notes\""
    );
}

#[test]
fn junit_skips_inconclusive_gates_when_they_do_not_fail_the_run() {
    let mut s = summary();
    s.inconclusive_fails = false;
    let root = parse_xml(&render_junit(&s).unwrap());
    assert_eq!(root.count("tests"), 5);
    assert_eq!(root.count("failures"), 2);
    assert_eq!(root.count("skipped"), 2);
    let skipped = root.find("skipped");
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        skipped[0].attr("message"),
        format!(
            "INCONCLUSIVE: {INCONCLUSIVE_REASON}; 420 more paired items would decide it at the observed rates"
        )
    );
}

#[test]
fn junit_replaces_control_characters_and_keeps_line_breaks_in_the_failure_text() {
    let mut s = summary();
    s.gates[1].reasons = vec![
        "bad\u{0}byte\u{1b}[31m".into(),
        "two\nlines\tand\rcr".into(),
    ];
    let xml = render_junit(&s).unwrap();
    assert!(xml.chars().all(xml10_char), "{xml:?}");
    let root = parse_xml(&xml);
    let failure = root
        .find("testcase")
        .into_iter()
        .find(|c| c.attr("name") == "student-2m / logistics")
        .unwrap()
        .find("failure")[0];
    // A control character (and the ANSI sequence it starts) shows where it
    // was; a tab reads as a space and a carriage return as a line end. The
    // message attribute is one line: XML readers turn its line breaks into
    // spaces.
    assert_eq!(
        failure.attr("message"),
        "FAIL: bad\u{FFFD}byte\u{FFFD}[31m; two lines and cr"
    );
    assert_eq!(
        failure.text,
        "bad\u{FFFD}byte\u{FFFD}[31m\ntwo\nlines and\ncr"
    );
}

#[test]
fn write_reports_writes_every_format_atomically_and_rejects_duplicate_names() {
    let s = summary();
    let journal = journal();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("reports").join("nightly");
    let written = write_reports(&run, &context(&s, &journal), &standard_exporters()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "summary.json",
            "results.csv",
            "stats.csv",
            "report.md",
            "junit.xml",
            "report.txt",
            "report.html"
        ]
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(on_disk, expected, "no temporary files left behind");
    assert_eq!(
        std::fs::read_to_string(run.join("report.txt")).unwrap(),
        render_terminal(&s, false)
    );

    // Rewriting replaces the files with identical bytes.
    let before = std::fs::read(run.join("junit.xml")).unwrap();
    write_reports(&run, &context(&s, &journal), &standard_exporters()).unwrap();
    assert_eq!(std::fs::read(run.join("junit.xml")).unwrap(), before);

    let twice: Vec<Box<dyn Exporter>> = vec![
        Box::new(distill_gate::report::json::SummaryJson),
        Box::new(distill_gate::report::json::SummaryJson),
    ];
    let err = write_reports(&run, &context(&s, &journal), &twice).unwrap_err();
    assert!(
        matches!(
            err,
            ReportError::DuplicateFile {
                file: "summary.json"
            }
        ),
        "{err}"
    );
}

#[test]
fn write_atomic_reports_the_path_when_the_directory_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let err = distill_gate::report::write_atomic(&blocker.join("summary.json"), b"{}")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not-a-dir") && err.contains("temporary file"),
        "{err}"
    );
    assert!(Path::new(&blocker).is_file());
}

/// A run of the CLI on a small replay-only workspace: teacher and student
/// answer from transcripts (so every latency is recorded earlier), the
/// config in `conf/` and the reports under `reports/` beside it.
struct CliRun {
    dir: tempfile::TempDir,
    stdout: String,
    stderr: String,
}

impl CliRun {
    /// Runs `run conf/gate.toml --quiet --summary-md summary.md` with
    /// `gate` as the `[gate]` table.
    fn new(gate: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        support::write_arith_suite(root, 80);
        // The teacher is right on 9 items in 10; the student on all of those
        // but 4 (retention 0.944).
        support::arith_transcript(root, "teacher", 900.0, |i| !i.is_multiple_of(10));
        support::arith_transcript(root, "student", 30.0, |i| {
            !i.is_multiple_of(10) && i % 25 != 1
        });
        std::fs::create_dir_all(root.join("conf")).unwrap();
        let config = format!(
            "[run]\nname = \"t\"\noutput_dir = \"../reports\"\n\
             [teacher]\nname = \"teacher\"\nkind = \"replay\"\ntranscript = \"../teacher.jsonl\"\n\
             price = {{ input_per_mtok = 1.0, output_per_mtok = 4.0 }}\n\
             [[students]]\nname = \"student\"\nkind = \"replay\"\ntranscript = \"../student.jsonl\"\n\
             price = {{ per_hour = 1.0 }}\n\
             [[suites]]\npath = \"../suites/arith\"\n\
             [gate]\n{gate}\n"
        );
        std::fs::write(root.join("conf/gate.toml"), config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_distill-gate"))
            .args([
                "run",
                "conf/gate.toml",
                "--quiet",
                "--summary-md",
                "summary.md",
            ])
            .current_dir(root)
            .output()
            .expect("spawn distill-gate");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            support::text(&out)
        );
        Self {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir,
        }
    }

    /// A file of the run directory (or `summary.md`) as text.
    fn file(&self, name: &str) -> String {
        let path = if name == "summary.md" {
            self.dir.path().join(name)
        } else {
            self.dir.path().join("reports/t").join(name)
        };
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::from_str(&self.file("summary.json")).unwrap()
    }
}

#[test]
fn every_report_names_the_configured_interval_method_and_confidence() {
    for (method, label) in [
        ("fieller", "Fieller interval"),
        ("bca", "BCa paired bootstrap, 10,000 resamples"),
    ] {
        let run = CliRun::new(&format!(
            "interval = \"{method}\"\nconfidence = 0.9\nmin_retention = 0.8"
        ));
        let sentence = format!("one-sided at 90% ({label})");
        let human = [
            ("stdout", run.stdout.clone()),
            ("report.txt", run.file("report.txt")),
            ("report.md", run.file("report.md")),
            ("report.html", run.file("report.html")),
            ("summary.md", run.file("summary.md")),
        ];
        for (name, text) in &human {
            assert!(
                text.contains(&sentence),
                "{method}: {name} lacks {sentence:?}:\n{text}"
            );
            for wrong in ["score interval", "95%", "(paired bootstrap)"] {
                assert!(
                    !text.contains(wrong),
                    "{method}: {name} says {wrong:?}:\n{text}"
                );
            }
        }
        let md = run.file("report.md");
        assert!(
            md.contains("Accuracy intervals are two-sided 90% Wilson intervals"),
            "{md}"
        );
        // The machine files carry the method and confidence of each interval.
        let summary = run.summary();
        let comparisons = summary["comparisons"].as_array().unwrap();
        assert!(!comparisons.is_empty());
        for c in comparisons {
            let i = &c["retention_interval"];
            assert_eq!(i["confidence"], 0.9, "{c}");
            assert_eq!(i["method"], method, "{c}");
            assert_eq!(c["retention_delta_interval"]["method"], "delta_log", "{c}");
        }
        for s in summary["model_stats"].as_array().unwrap() {
            assert_eq!(s["accuracy_interval"]["confidence"], 0.9, "{s}");
            assert_eq!(s["accuracy_interval"]["method"], "wilson", "{s}");
        }
        let junit = run.file("junit.xml");
        for property in [
            format!("<property name=\"retention_interval_method\" value=\"{method}\"/>"),
            "<property name=\"retention_ci_confidence\" value=\"0.9\"/>".to_string(),
        ] {
            assert!(junit.contains(&property), "{junit}");
        }
    }
}

#[test]
fn speedups_on_replayed_latencies_are_marked_in_every_output() {
    // Every latency is replayed; min_speedup puts the speedup in a reason.
    let run = CliRun::new("min_retention = 0.8\nmin_speedup = 1000.0");
    let summary = run.summary();
    let whole = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"].is_null() && c["suite"] == "arith")
        .unwrap()
        .clone();
    assert_eq!(whole["speedup_source"], "recorded", "{whole}");
    let speedup = whole["speedup"].as_f64().unwrap();
    assert!(speedup > 10.0, "{whole}");
    let shown = if speedup < 10.0 {
        format!("{speedup:.2}×")
    } else {
        format!("{speedup:.1}×")
    };
    let note = "built on latencies recorded earlier";
    // The tables show the speedup with the mark, and a footnote says why.
    for (name, text, mark) in [
        ("stdout", run.stdout.clone(), "*"),
        ("report.txt", run.file("report.txt"), "*"),
        ("report.md", run.file("report.md"), "\\*"),
    ] {
        assert!(
            text.contains(&format!("{shown}{mark}")),
            "{name}: {shown} unmarked:\n{text}"
        );
        assert!(text.contains(note), "{name} has no footnote:\n{text}");
    }
    let html = run.file("report.html");
    assert!(
        html.contains(&format!(
            "data-field=\"speedup\" data-value=\"{speedup}\" data-source=\"recorded\">{shown}<span class=\"mark\""
        )),
        "{html}"
    );
    assert!(html.contains(note), "report.html has no footnote");
    // The reason about the speedup is marked wherever reasons are shown.
    for (name, text) in [
        ("report.md", run.file("report.md")),
        ("summary.md", run.file("summary.md")),
        ("junit.xml", run.file("junit.xml")),
        ("stdout", run.stdout.clone()),
    ] {
        assert!(
            text.contains("(recorded latencies"),
            "{name}: speedup reason unmarked:\n{text}"
        );
        assert!(text.contains(note), "{name} has no footnote:\n{text}");
    }
    let junit = run.file("junit.xml");
    assert!(
        junit.contains("<property name=\"speedup_latency_source\" value=\"recorded\"/>"),
        "{junit}"
    );
    let stats = run.file("stats.csv");
    assert!(
        stats
            .lines()
            .next()
            .unwrap()
            .contains("speedup,speedup_source")
    );
    assert!(stats.contains(",recorded,"), "{stats}");
}

#[test]
fn quiet_runs_print_no_timing_and_the_reports_path_is_normalised() {
    let run = CliRun::new("min_retention = 0.8");
    assert!(
        !run.stderr.contains("time:"),
        "--quiet printed:\n{}",
        run.stderr
    );
    // conf/gate.toml writes to conf/../reports/t.
    assert!(
        run.stdout.contains("\nreports: reports/t\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn reasons_round_their_numbers_for_people_and_summary_json_keeps_them() {
    let mut s = summary();
    let raw = "retention 0.8123456789012345 is below the threshold 0.95 (one-sided lower bound \
               0.7698765432109876 at confidence 0.95, 120 items)";
    s.gates[1].reasons = vec![raw.to_string()];
    let journal = journal();
    let rounded = "retention 0.812 is below the threshold 0.95 (one-sided lower bound 0.770 at \
                   confidence 0.95, 120 items)";
    let md = render_markdown(&context(&s, &journal));
    assert!(md.contains(rounded), "{md}");
    let text = render_terminal(&s, false);
    assert!(text.contains(rounded), "{text}");
    let junit = render_junit(&s).unwrap();
    assert!(junit.contains(rounded), "{junit}");
    for (name, text) in [("report.md", &md), ("terminal", &text), ("junit", &junit)] {
        assert!(!text.contains("0.8123456789"), "{name}:\n{text}");
    }
    let json = String::from_utf8(render_summary(&s).unwrap()).unwrap();
    assert!(
        json.contains(raw),
        "summary.json keeps the reason as computed"
    );
}

#[test]
fn live_latencies_carry_no_mark() {
    let mut s = summary();
    for m in &mut s.model_stats {
        if let Some(l) = m.latency.as_mut() {
            l.live += l.recorded;
            l.recorded = 0;
        }
    }
    // The swap plan's latencies come from the journal: live there too.
    let mut journal = journal();
    for e in &mut journal {
        if let Some(l) = e.latency.as_mut() {
            l.source = LatencySource::Live;
        }
    }
    let md = render_markdown(&context(&s, &journal));
    let text = render_terminal(&s, false);
    for (name, out) in [("report.md", &md), ("terminal", &text)] {
        assert!(out.contains("4.21×"), "{name}:\n{out}");
        assert!(
            !out.contains("4.21×*") && !out.contains("4.21×\\*"),
            "{name}:\n{out}"
        );
        assert!(!out.contains("recorded earlier"), "{name}:\n{out}");
    }
}
