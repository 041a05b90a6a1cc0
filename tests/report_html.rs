//! `report.html` from real runs of the demo fixtures (fixtures/gate.toml):
//! a live run of the students on a few items, and a re-report of the
//! committed example run's journal. The page must parse (it is written as
//! well-formed XML), every chart must be a parsable SVG with its text, it
//! must reference nothing outside the file, the numbers must be the ones in
//! summary.json, and answers must survive escaping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill_gate::fingerprint::sha256_file;
use distill_gate::report::html::MAX_ITEMS_PER_CATEGORY;
use distill_gate::run::journal::{self, JournalEntry, Role};
use distill_gate::summary::{LatencyOrigin, ModelInfo, Summary};
use roxmltree::{Document, Node, ParsingOptions};

mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn distill_gate(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn distill-gate")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exit 0 or 1: the gates were decided (2 would mean the run broke).
fn assert_evaluated(o: &Output) {
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(o));
}

fn parse(html: &str) -> Document<'_> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(html, options)
        .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"))
}

fn elements<'a, 'input>(doc: &'a Document<'input>, tag: &str) -> Vec<Node<'a, 'input>> {
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == tag)
        .collect()
}

fn value(n: Node<'_, '_>, attr: &str) -> f64 {
    let text = n
        .attribute(attr)
        .unwrap_or_else(|| panic!("<{}> has no {attr}", n.tag_name().name()));
    text.parse()
        .unwrap_or_else(|e| panic!("{attr}={text:?} is not a number: {e}"))
}

fn text_of(n: Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect()
}

/// Whether byte `at` of `html` is inside a tag (after a `<` not yet closed).
fn in_tag(html: &str, at: usize) -> bool {
    let before = &html[..at];
    match (before.rfind('<'), before.rfind('>')) {
        (Some(open), Some(close)) => open > close,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Nothing is loaded from anywhere: no `src=` attribute, no element that
/// embeds another resource, no CSS `url(` or `@import`; and every
/// `http://` or `https://` is the SVG namespace or text (an escaped
/// answer), never inside a tag.
fn assert_self_contained(html: &str) {
    for element in [
        "<link", "<img", "<iframe", "<object", "<embed", "<audio", "<video",
    ] {
        assert!(!html.contains(element), "report.html contains {element:?}");
    }
    let style_start = html.find("<style>").expect("<style>");
    let style_end = html.find("</style>").expect("</style>");
    let style = &html[style_start..style_end];
    for banned in ["url(", "@import", "@font-face"] {
        assert!(!style.contains(banned), "the style has {banned:?}");
    }
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for pattern in [" src=", " href=\"http", "http://", "https://"] {
        for (at, _) in rest.match_indices(pattern) {
            assert!(
                !in_tag(&rest, at),
                "{pattern:?} inside a tag: {}",
                &rest[at.saturating_sub(60)..(at + 40).min(rest.len())]
            );
        }
    }
}

/// Every SVG chart parses on its own as XML, is an `<svg>` root and has text.
fn assert_charts_parse(html: &str) -> usize {
    let mut count = 0;
    let mut rest = html;
    while let Some(start) = rest.find("<svg ") {
        let end = rest[start..]
            .find("</svg>")
            .map(|e| start + e + "</svg>".len())
            .expect("an <svg> without </svg>");
        let svg = &rest[start..end];
        let doc =
            Document::parse(svg).unwrap_or_else(|e| panic!("SVG {count} does not parse: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts = doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "text")
            .filter(|n| !text_of(*n).trim().is_empty())
            .count();
        assert!(texts >= 5, "SVG {count} has {texts} text labels");
        count += 1;
        rest = &rest[end..];
    }
    count
}

/// The swap plan: one table of categories per student, each category of
/// every suite once, and the two routings.
fn assert_swap_plan(doc: &Document<'_>, summary: &Summary) {
    let tables: Vec<Node<'_, '_>> = elements(doc, "table")
        .into_iter()
        .filter(|t| t.attribute("class") == Some("swap"))
        .collect();
    let students: Vec<&ModelInfo> = summary
        .models
        .iter()
        .filter(|m| m.role == Role::Student)
        .collect();
    assert_eq!(tables.len(), students.len(), "one swap table per student");
    let categories: usize = summary.suites.iter().map(|s| s.categories.len()).sum();
    for (table, student) in tables.iter().zip(&students) {
        assert_eq!(table.attribute("data-student"), Some(student.name.as_str()));
        let rows = table
            .descendants()
            .filter(|n| n.attribute("data-category").is_some())
            .count();
        // A task-specific student is decided only on the categories it takes.
        let want = if student.categories.is_empty() {
            categories
        } else {
            student.categories.len()
        };
        assert_eq!(
            rows, want,
            "{}: a row per category it may take",
            student.name
        );
    }
    let routings = elements(doc, "tr")
        .into_iter()
        .filter(|r| r.attribute("data-routing").is_some())
        .count();
    assert_eq!(routings, 2 * students.len());
}

/// Width in pixels the charts allow a label character (12px sans-serif,
/// as `src/report/html/charts.rs` estimates it), and a label's height.
const LABEL_CHAR_PX: f64 = 8.0;
const LABEL_HEIGHT_PX: f64 = 14.0;
/// Where the charts' legend panel starts: 960 wide, 190 of it legend.
const LEGEND_X: f64 = 770.0;

/// In every retention chart, the labels naming points stay left of the
/// legend panel and do not overlap one another.
fn assert_point_labels_clear(html: &str, summary: &Summary) {
    let names: BTreeSet<&str> = summary.models.iter().map(|m| m.name.as_str()).collect();
    let mut rest = html;
    while let Some(start) = rest.find("<svg ") {
        let end = start + rest[start..].find("</svg>").expect("</svg>") + "</svg>".len();
        let svg = &rest[start..end];
        rest = &rest[end..];
        if !svg.contains("aria-label=\"retention against cost") {
            continue;
        }
        let doc = Document::parse(svg).expect("the chart parses");
        let boxes: Vec<(String, [f64; 4])> = doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "text")
            .filter_map(|n| {
                let label = text_of(n).trim().to_string();
                let x = value(n, "x");
                let y = value(n, "y");
                (names.contains(label.as_str()) && x < LEGEND_X).then(|| {
                    let width = LABEL_CHAR_PX * label.chars().count() as f64;
                    (label, [x, y, x + width, y + LABEL_HEIGHT_PX])
                })
            })
            .collect();
        assert!(!boxes.is_empty(), "no point labels in {svg}");
        for (label, b) in &boxes {
            assert!(
                b[2] <= LEGEND_X,
                "label {label:?} runs into the legend: {b:?}"
            );
        }
        for (i, (a, p)) in boxes.iter().enumerate() {
            for (b, q) in &boxes[i + 1..] {
                let overlap = p[0] < q[2] && q[0] < p[2] && p[1] < q[3] && q[1] < p[3];
                assert!(!overlap, "labels {a:?} and {b:?} overlap: {p:?} {q:?}");
            }
        }
    }
}

/// The disagreements the report must list, computed here from the journal:
/// (suite, category) -> items where some student's score differs.
fn expected_disagreements(journal: &[JournalEntry]) -> BTreeMap<(String, String), usize> {
    let mut teacher = BTreeMap::new();
    for e in journal.iter().filter(|e| e.role == Role::Teacher) {
        teacher
            .entry((e.suite.clone(), e.task_id.clone(), e.sample))
            .or_insert(e);
    }
    let mut differ = BTreeSet::new();
    for e in journal.iter().filter(|e| e.role == Role::Student) {
        let key = (e.suite.clone(), e.task_id.clone(), e.sample);
        if let Some(t) = teacher.get(&key)
            && t.score != e.score
        {
            differ.insert((key, t.category.clone()));
        }
    }
    let mut counts = BTreeMap::new();
    for ((suite, _, _), category) in differ {
        *counts.entry((suite, category)).or_insert(0) += 1;
    }
    counts
}

/// Checks the page against the run's summary.json and journal. Returns the
/// number of SVG charts.
fn check_report(run_dir: &Path) -> usize {
    let html = std::fs::read_to_string(run_dir.join("report.html")).expect("report.html");
    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses");
    let journal = journal::read(&run_dir.join("results.jsonl")).expect("journal");

    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.ends_with("</html>\n"));
    assert_self_contained(&html);
    let charts = assert_charts_parse(&html);
    let doc = parse(&html);

    let ids: BTreeSet<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("id"))
        .collect();
    for id in [
        "verdicts",
        "accuracy",
        "retention",
        "latency",
        "swap",
        "disagreements",
        "models",
    ] {
        assert!(ids.contains(id), "no section #{id}");
    }
    assert_swap_plan(&doc, &summary);
    assert_point_labels_clear(&html, &summary);
    assert_eq!(elements(&doc, "script").len(), 1, "only the filter script");

    // Verdicts: one row per gate, numbers exactly as in summary.json.
    let verdict_rows: Vec<Node<'_, '_>> = elements(&doc, "tr")
        .into_iter()
        .filter(|r| r.attribute("data-verdict").is_some())
        .collect();
    assert_eq!(verdict_rows.len(), summary.gates.len());
    for gate in &summary.gates {
        let row = verdict_rows
            .iter()
            .find(|r| {
                r.attribute("data-student") == Some(&gate.student)
                    && r.attribute("data-suite") == Some(&gate.suite)
                    && r.attribute("data-category") == gate.category.as_deref()
            })
            .unwrap_or_else(|| panic!("no verdict row for {} / {}", gate.student, gate.scope()));
        assert_eq!(
            row.attribute("data-verdict"),
            Some(gate.verdict.to_string().as_str())
        );
        let field = |name: &str| {
            row.children()
                .find(|c| c.attribute("data-field") == Some(name))
        };
        // A speedup built on replayed latencies is marked, with its source.
        if let Some(speedup) = summary
            .comparisons
            .iter()
            .find(|c| gate.is_of(c))
            .and_then(|c| c.speedup.map(|x| (x, c.speedup_source)))
        {
            let cell = row
                .descendants()
                .find(|c| c.attribute("data-field") == Some("speedup"))
                .expect("speedup cell");
            assert_eq!(value(cell, "data-value"), speedup.0);
            let recorded = speedup.1 == Some(LatencyOrigin::Recorded);
            assert_eq!(
                cell.attribute("data-source"),
                Some(if recorded { "recorded" } else { "live" })
            );
            assert_eq!(text_of(cell).ends_with('*'), recorded, "{}", text_of(cell));
        }
        let threshold = field("threshold").expect("threshold cell");
        assert_eq!(
            value(threshold, "data-value"),
            gate.thresholds.min_retention
        );
        let c = summary
            .comparisons
            .iter()
            .find(|c| gate.is_of(c))
            .expect("a comparison per gate");
        match (c.measurable, c.retention) {
            (true, Some(r)) => {
                assert_eq!(
                    value(field("retention").expect("retention"), "data-value"),
                    r
                );
                let lower = c.retention_lower.expect("lower bound");
                assert_eq!(value(field("lower").expect("lower"), "data-value"), lower);
                let i = c.retention_interval.expect("interval");
                let cell = field("interval").expect("interval cell");
                assert_eq!(value(cell, "data-lower"), i.lower);
                assert_eq!(value(cell, "data-upper"), i.upper);
            }
            _ => {
                assert!(field("retention").is_none());
                // Not measurable, or (when the upper bound decided) that bound.
                let text = text_of(*row);
                assert!(
                    text.contains("not measurable") || text.contains("below: upper bound"),
                    "{text}"
                );
            }
        }
    }

    // Accuracy: every model on every suite and category.
    let accuracy_cells: Vec<Node<'_, '_>> = elements(&doc, "table")
        .into_iter()
        .filter(|t| t.attribute("class") == Some("accuracy"))
        .flat_map(|t| {
            t.descendants()
                .filter(|n| n.attribute("data-model").is_some())
        })
        .collect();
    let mut checked = 0;
    for s in summary.model_stats.iter().filter(|s| s.suite != "all") {
        let cell = accuracy_cells
            .iter()
            .find(|c| {
                let row = c.parent().expect("a row");
                c.attribute("data-model") == Some(&s.model)
                    && row.attribute("data-suite") == Some(&s.suite)
                    && row.attribute("data-category") == Some(s.category.as_deref().unwrap_or(""))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no accuracy cell for {} {} {:?}",
                    s.model, s.suite, s.category
                )
            });
        assert_eq!(value(*cell, "data-value"), s.accuracy);
        assert_eq!(value(*cell, "data-lower"), s.accuracy_interval.lower);
        assert_eq!(value(*cell, "data-upper"), s.accuracy_interval.upper);
        checked += 1;
    }
    assert_eq!(checked, accuracy_cells.len());

    // Latency: p50/p95/p99/mean per model over the whole run.
    let overall = |model: &str| {
        let rows: Vec<_> = summary
            .model_stats
            .iter()
            .filter(|s| s.model == model && s.category.is_none())
            .collect();
        rows.iter()
            .find(|s| s.suite == "all")
            .or(if rows.len() == 1 { rows.first() } else { None })
            .copied()
    };
    for m in &summary.models {
        let latency = overall(&m.name).and_then(|s| s.latency).expect("latency");
        let row = elements(&doc, "tr")
            .into_iter()
            .find(|r| r.attribute("data-model") == Some(&m.name))
            .unwrap_or_else(|| panic!("no latency row for {}", m.name));
        for (field, expected) in [
            ("p50", latency.p50_ms),
            ("p95", latency.p95_ms),
            ("p99", latency.p99_ms),
            ("mean", latency.mean_ms),
        ] {
            let cell = row
                .children()
                .find(|c| c.attribute("data-field") == Some(field))
                .unwrap_or_else(|| panic!("no {field} for {}", m.name));
            assert_eq!(value(cell, "data-value"), expected, "{} {field}", m.name);
        }
    }

    // Disagreements: counts from the journal, at most MAX per category
    // shown, and each shown answer is the journal's text after escaping.
    let expected = expected_disagreements(&journal);
    let groups: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("group"))
        .collect();
    let found: BTreeMap<(String, String), usize> = groups
        .iter()
        .map(|g| {
            (
                (
                    g.attribute("data-suite").unwrap_or_default().to_string(),
                    g.attribute("data-category").unwrap_or_default().to_string(),
                ),
                value(*g, "data-items") as usize,
            )
        })
        .collect();
    assert_eq!(found, expected);
    let by_key: BTreeMap<(&str, &str, &str), &JournalEntry> = journal
        .iter()
        .filter(|e| e.sample == 0)
        .map(|e| ((e.model.as_str(), e.suite.as_str(), e.task_id.as_str()), e))
        .collect();
    let mut answers = 0;
    for g in &groups {
        let items: Vec<Node<'_, '_>> = g
            .children()
            .filter(|n| n.attribute("class") == Some("item"))
            .collect();
        let total = value(*g, "data-items") as usize;
        assert_eq!(items.len(), total.min(MAX_ITEMS_PER_CATEGORY));
        let suite = g.attribute("data-suite").unwrap_or_default();
        for item in items {
            let task = item.attribute("data-task").expect("data-task");
            let input = item
                .descendants()
                .find(|n| n.attribute("class") == Some("task"))
                .expect("the task's text");
            assert!(!text_of(input).is_empty());
            for answer in item.descendants().filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.split(' ').any(|c| c == "answer"))
            }) {
                let h4 = answer
                    .children()
                    .find(|c| c.has_tag_name("h4"))
                    .expect("h4");
                let model = h4
                    .children()
                    .find(|c| c.is_text())
                    .and_then(|t| t.text())
                    .map(str::trim)
                    .expect("model name");
                let entry = by_key
                    .get(&(model, suite, task))
                    .unwrap_or_else(|| panic!("no journal line for {model} {suite} {task}"));
                let pre = answer
                    .children()
                    .find(|c| c.has_tag_name("pre"))
                    .expect("pre");
                if let (Some(output), None) = (&entry.output, &entry.error)
                    && output.chars().count() <= 2_000
                {
                    assert_eq!(text_of(pre), *output, "{model} {task}");
                }
                let detail = answer
                    .children()
                    .find(|c| c.attribute("class") == Some("detail"))
                    .expect("detail");
                if entry.detail.chars().count() <= 2_000 {
                    assert_eq!(text_of(detail), entry.detail);
                }
                answers += 1;
            }
        }
    }
    if !expected.is_empty() {
        assert!(answers > 0);
    }
    charts
}

#[test]
fn live_run_of_the_demo_fixtures_writes_a_checked_report_html() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        support::demo_config(6, &dir.path().join("reports")),
    )
    .unwrap();
    let out = distill_gate(&["run", "gate.toml", "--quiet"], dir.path());
    assert_evaluated(&out);
    let run_dir = dir.path().join("reports/demo");
    let charts = check_report(&run_dir);
    // An accuracy chart per suite and the latency chart at least.
    assert!(charts >= 3, "{charts} charts");
}

#[test]
fn report_of_the_example_run_shows_retention_and_escapes_answers() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("example");
    std::fs::create_dir_all(&run_dir).unwrap();
    let config = root().join("fixtures/gate.toml");
    let manifest = serde_json::json!({
        "config_sha256": sha256_file(&config).unwrap(),
        "config": config,
    });
    std::fs::write(run_dir.join("run.json"), manifest.to_string()).unwrap();

    // The committed journal, with one disagreeing teacher answer replaced
    // by markup that must come out as text.
    let mut entries = journal::read(&root().join("reports/example/results.jsonl")).unwrap();
    let hostile =
        "</pre><script>alert(\"x\")</script> & 'q' <img src=https://example.invalid/x.png>";
    let differs = |t: &JournalEntry, entries: &[JournalEntry]| {
        entries.iter().any(|s| {
            s.role == Role::Student
                && s.suite == t.suite
                && s.task_id == t.task_id
                && s.sample == t.sample
                && s.score != t.score
        })
    };
    let target = (0..entries.len())
        .find(|&i| {
            entries[i].role == Role::Teacher
                && entries[i].output.is_some()
                && differs(&entries[i], &entries)
        })
        .expect("a disagreement in the example run");
    entries[target].output = Some(hostile.to_string());
    let lines: String = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(run_dir.join("results.jsonl"), lines).unwrap();

    let out = distill_gate(&["report", run_dir.to_str().unwrap()], dir.path());
    assert_evaluated(&out);
    let charts = check_report(&run_dir);
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    // Accuracy per suite, latency, and retention for every suite where a
    // student's retention is measurable.
    let measurable_suites = summary
        .suites
        .iter()
        .filter(|s| {
            summary
                .comparisons
                .iter()
                .any(|c| c.suite == s.name && c.category.is_none() && c.measurable)
        })
        .count();
    assert!(
        measurable_suites > 0,
        "the example run has a measurable retention"
    );
    // And one per category a task-specific student is gated on.
    let measurable_categories = summary
        .gates
        .iter()
        .filter(|g| {
            g.category.is_some()
                && summary
                    .comparisons
                    .iter()
                    .any(|c| g.is_of(c) && c.measurable)
        })
        .count();
    assert_eq!(
        charts,
        summary.suites.len() + measurable_suites + measurable_categories + 1
    );

    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    // A suite where no student is plotted says why, with what its gate
    // decided: in the example the teacher got 6 coding items right, too
    // few to estimate retention, and s6m FAILs there on the upper bound.
    assert!(
        html.contains(
            "No student's retention is measurable on coding: s6m FAIL, below: upper bound 0.826 \
             (teacher got 6 items right)."
        ),
        "the empty chart's note names the student and its verdict"
    );
    assert!(html.contains(
        "&lt;/pre&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; \
         &lt;img src=https://example.invalid/x.png&gt;"
    ));
    // The threshold line and, where two or more students trade cost for
    // retention, the Pareto front are in the charts' legends.
    assert!(html.contains(">\nthreshold 0.950\n<"), "threshold legend");
    // A chart per suite and per category a student is gated on.
    let scopes: BTreeSet<(&str, Option<&str>)> = summary
        .suites
        .iter()
        .map(|s| (s.name.as_str(), None))
        .chain(
            summary
                .gates
                .iter()
                .map(|g| (g.suite.as_str(), g.category.as_deref())),
        )
        .collect();
    let longest_front = scopes
        .iter()
        .map(|&(suite, category)| {
            let points: Vec<(f64, f64)> = summary
                .comparisons
                .iter()
                .filter(|c| c.suite == suite && c.category.as_deref() == category && c.measurable)
                .filter_map(|c| {
                    let cost = summary
                        .model_stats
                        .iter()
                        .find(|s| {
                            s.model == c.student
                                && s.suite == suite
                                && s.category.as_deref() == category
                        })?
                        .cost_per_1k;
                    Some((cost, c.retention?))
                })
                .collect();
            points
                .iter()
                .filter(|p| {
                    !points
                        .iter()
                        .any(|q| q.0 <= p.0 && q.1 >= p.1 && (q.0 < p.0 || q.1 > p.1))
                })
                .count()
        })
        .max()
        .unwrap_or(0);
    assert_eq!(html.contains(">\nPareto front\n<"), longest_front > 1);
}
