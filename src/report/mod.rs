//! Report formats: one file per format behind the small [`Exporter`] trait,
//! and [`write_reports`], which writes every format to a temporary file
//! first and then renames each into a run directory (temporary file, sync,
//! rename), so a run directory holds a whole set of reports or the old one.
//!
//! Every format renders from the [`Summary`] (and the journal, for per-item
//! views; its answer texts may stay in the file until a report shows them). Nothing here decides anything: numbers are formatted for display
//! only, after every comparison has been made by the gate.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::diagnostics::Problem;
use crate::run::journal::{AnswerTexts, JournalEntry, Role};
use crate::summary::{Comparison, GateResult, LatencyOrigin, ModelStats, Summary, Verdict};

pub mod csv;
mod finite;
pub mod html;
pub mod json;
pub mod junit;
pub(crate) mod labels;
pub mod markdown;
pub(crate) mod numbers;
pub mod summary_md;
pub(crate) mod swap;
pub mod terminal;

/// What every format renders from.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// The run's numbers and verdicts.
    pub summary: &'a Summary,
    /// One line per (model, task), for per-item formats.
    pub journal: &'a [JournalEntry],
    /// The command line that reproduces the run, shown in `report.md` when known.
    pub reproduce: Option<&'a str>,
    /// What each task asked and expected, for per-item views (`report.html`
    /// shows it next to the answers) when known.
    pub tasks: Option<&'a html::TaskTexts>,
    /// Where the answer texts of journal lines read without them
    /// ([`crate::run::journal::read_for_reports`]) are read back from.
    pub texts: Option<&'a AnswerTexts>,
}

impl<'a> ReportContext<'a> {
    /// A context without a reproduce command.
    pub fn new(summary: &'a Summary, journal: &'a [JournalEntry]) -> Self {
        Self {
            summary,
            journal,
            reproduce: None,
            tasks: None,
            texts: None,
        }
    }

    /// The same context, reading answer texts back with `texts`.
    pub fn with_texts(self, texts: &'a AnswerTexts) -> Self {
        Self {
            texts: Some(texts),
            ..self
        }
    }

    /// A journal line with its answer texts, read back from the journal
    /// file when the line was read without them.
    pub fn full<'e>(&self, entry: &'e JournalEntry) -> Result<Cow<'e, JournalEntry>, ReportError> {
        match self.texts {
            Some(texts) => texts.full(entry).map_err(ReportError::Journal),
            None => Ok(Cow::Borrowed(entry)),
        }
    }

    /// The same context, showing `command` as the way to reproduce the run.
    pub fn with_reproduce(self, command: &'a str) -> Self {
        Self {
            reproduce: Some(command),
            ..self
        }
    }

    /// The same context, with the task texts per-item views show.
    pub fn with_tasks(self, tasks: &'a html::TaskTexts) -> Self {
        Self {
            tasks: Some(tasks),
            ..self
        }
    }
}

/// Why a report could not be rendered, written or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// serde_json failed to serialise the summary.
    #[error("{file}: cannot serialise the summary: {source}")]
    Json {
        /// The report file being rendered.
        file: &'static str,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
    /// The summary holds a number JSON cannot represent (NaN or infinite):
    /// serde_json would write `null`, which loads back as `None` or not at all.
    #[error("{file}: {field} is {value}, which JSON cannot represent")]
    NotRepresentable {
        /// The report file being rendered.
        file: &'static str,
        /// Path of the number in the summary, e.g. `comparisons[2].retention`.
        field: String,
        /// The number.
        value: f64,
    },
    /// The csv crate failed to write a record.
    #[error("{file}: cannot write CSV: {source}")]
    Csv {
        /// The report file being rendered.
        file: &'static str,
        /// The csv error.
        #[source]
        source: ::csv::Error,
    },
    /// Writing a report's bytes failed.
    #[error("{file}: cannot write: {source}")]
    Write {
        /// The report file being written.
        file: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file-system operation failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (e.g. "create the temporary file").
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `summary.json` did not parse as a [`Summary`].
    #[error("{}: not a valid summary: {source}", path.display())]
    ReadSummary {
        /// The file.
        path: PathBuf,
        /// The serde_json error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The plotting library failed to draw a chart.
    #[error("{file}: cannot draw the chart \"{chart}\": {message}")]
    Chart {
        /// The report file being rendered.
        file: &'static str,
        /// The chart's title.
        chart: String,
        /// plotters' error.
        message: String,
    },
    /// An answer could not be read back from the journal.
    #[error("{0}")]
    Journal(Problem),
    /// quick-junit failed to serialise the JUnit report.
    #[error("{file}: cannot write XML: {source}")]
    Xml {
        /// The report file being rendered.
        file: &'static str,
        /// quick-junit's error.
        #[source]
        source: quick_junit::SerializeError,
    },
    /// Two exporters in one call write the same file name.
    #[error("two report formats both write {file}")]
    DuplicateFile {
        /// The file name.
        file: &'static str,
    },
}

/// One report format.
pub trait Exporter {
    /// The file name the format is written to inside a run directory.
    fn file_name(&self) -> &'static str;

    /// Renders the whole file. Same context in, same bytes out.
    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError>;

    /// Writes the file to `out`: the bytes [`Exporter::render`] returns. A
    /// format whose size grows with the run's answers streams them instead.
    fn write(&self, ctx: &ReportContext<'_>, out: &mut dyn Write) -> Result<(), ReportError> {
        let bytes = self.render(ctx)?;
        out.write_all(&bytes).map_err(|source| ReportError::Write {
            file: self.file_name(),
            source,
        })
    }
}

/// Every file format a run writes: `summary.json`, `results.csv`,
/// `stats.csv`, `report.md`, `junit.xml`, `report.txt` (the terminal
/// report without colour) and `report.html` (charts).
pub fn standard_exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::SummaryJson),
        Box::new(csv::ResultsCsv),
        Box::new(csv::StatsCsv),
        Box::new(markdown::Markdown),
        Box::new(junit::JUnit),
        Box::new(terminal::TerminalText),
        Box::new(html::Html),
    ]
}

/// Writes every exporter's file into `dir` (created if missing): each to a
/// temporary file beside its name, then, once all are written and synced,
/// each renamed over its name. Nothing is written (and a directory this
/// call created is removed) when any format fails.
/// Returns the paths written, in exporter order.
pub fn write_reports(
    dir: &Path,
    ctx: &ReportContext<'_>,
    exporters: &[Box<dyn Exporter>],
) -> Result<Vec<PathBuf>, ReportError> {
    let mut names = BTreeSet::new();
    for exporter in exporters {
        if !names.insert(exporter.file_name()) {
            return Err(ReportError::DuplicateFile {
                file: exporter.file_name(),
            });
        }
    }
    let created = !dir.exists();
    fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        action: "create the report directory",
        source,
    })?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(exporters.len());
    for exporter in exporters {
        let path = dir.join(exporter.file_name());
        match write_temporary(&path, |out| exporter.write(ctx, out)) {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                // Best effort: the render error is what the caller needs.
                for (tmp, _) in &staged {
                    let _ = fs::remove_file(tmp);
                }
                if created {
                    let _ = fs::remove_dir(dir);
                }
                return Err(e);
            }
        }
    }
    let mut written = Vec::with_capacity(staged.len());
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(tmp, path) {
            for (tmp, _) in &staged[i..] {
                let _ = fs::remove_file(tmp);
            }
            return Err(ReportError::Io {
                path: path.clone(),
                action: "rename the temporary file to",
                source,
            });
        }
        written.push(path.clone());
    }
    sync_dir(dir)?;
    Ok(written)
}

/// Writes `bytes` to `path` so that readers see either the old file or the
/// complete new one: a temporary file next to it is written, synced and
/// renamed over `path`. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = write_temporary(path, |out| {
        out.write_all(bytes).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            action: "write the temporary file for",
            source,
        })
    })?;
    fs::rename(&tmp, path).map_err(|source| {
        // Best effort: the rename error is what the caller needs.
        let _ = fs::remove_file(&tmp);
        ReportError::Io {
            path: path.to_path_buf(),
            action: "rename the temporary file to",
            source,
        }
    })
}

/// Writes a temporary file next to `path` with `fill` (buffered), syncs it
/// and returns its path; removes it on failure.
fn write_temporary(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), ReportError>,
) -> Result<PathBuf, ReportError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.as_deref().unwrap_or("report"),
        std::process::id()
    ));
    let io = |action: &'static str| {
        let path = tmp.clone();
        move |source| ReportError::Io {
            path,
            action,
            source,
        }
    };
    let result = File::create(&tmp)
        .map_err(io("create the temporary file"))
        .and_then(|f| {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, f);
            fill(&mut out)?;
            let f = out
                .into_inner()
                .map_err(|e| io("write the temporary file")(e.into_error()))?;
            f.sync_all().map_err(io("sync the temporary file"))
        });
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            // Best effort: the original error is what the caller needs to see.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ReportError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| ReportError::Io {
                path: dir.to_path_buf(),
                action: "sync the report directory",
                source,
            })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `path` with `.` components dropped and each `..` taking back the
/// component before it, by the text alone (the path need not exist, and
/// symbolic links are not followed): `fixtures/../reports/demo` becomes
/// `reports/demo`. A `..` at the start of a relative path is kept; one
/// right after the root is dropped. For showing paths to people.
pub fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// One (student, suite) gate with the numbers shown next to it.
pub(crate) struct GateRow<'a> {
    /// The decision.
    pub gate: &'a GateResult,
    /// The student against the teacher on the whole suite.
    pub comparison: Option<&'a Comparison>,
    /// The student on the whole suite.
    pub student: Option<&'a ModelStats>,
    /// The teacher on the whole suite.
    pub teacher: Option<&'a ModelStats>,
    /// How the gate judged retention (rule, bounds, items to add).
    pub retention: Option<&'a crate::summary::GateRetention>,
}

impl GateRow<'_> {
    /// Whether the speedup shown rests on latencies recorded earlier (the
    /// comparison's `speedup_source`; for summaries without it, the
    /// teacher's and student's latency counts).
    pub(crate) fn speedup_recorded(&self) -> bool {
        match self.comparison {
            Some(c) if c.speedup.is_some() => {
                c.speedup_source
                    .or_else(|| LatencyOrigin::of_rows([self.teacher, self.student]))
                    == Some(LatencyOrigin::Recorded)
            }
            _ => false,
        }
    }

    /// Whether the student's latency includes latencies recorded earlier.
    pub(crate) fn latency_recorded(&self) -> bool {
        self.student
            .and_then(|s| s.latency)
            .is_some_and(|l| l.origin() == LatencyOrigin::Recorded)
    }

    /// The gate's reasons for people: numbers rounded
    /// ([`labels::readable`]), and a reason about the speedup or the p95
    /// latency marked with [`labels::RECORDED_MARK`] when it rests on
    /// latencies recorded earlier (then paired with `true`).
    pub(crate) fn reasons(&self) -> Vec<(String, bool)> {
        self.gate
            .reasons
            .iter()
            .map(|r| {
                let text = labels::readable(r);
                let recorded = (r.starts_with("speedup") && self.speedup_recorded())
                    || (r.starts_with("p95 latency") && self.latency_recorded());
                if recorded {
                    (
                        format!("{text} (recorded latencies{})", labels::RECORDED_MARK),
                        true,
                    )
                } else {
                    (text, false)
                }
            })
            .collect()
    }

    /// Whether any figure of this row is marked as recorded.
    pub(crate) fn any_recorded(&self) -> bool {
        self.speedup_recorded() || self.latency_recorded()
    }
}

/// Every gate in summary order, with its whole-suite numbers.
pub(crate) fn gate_rows(summary: &Summary) -> Vec<GateRow<'_>> {
    summary
        .gates
        .iter()
        .map(|gate| GateRow {
            gate,
            comparison: summary.comparisons.iter().find(|c| gate.is_of(c)),
            student: model_stats(
                summary,
                &gate.student,
                &gate.suite,
                gate.category.as_deref(),
            ),
            teacher: summary.model_stats.iter().find(|s| {
                s.role == Role::Teacher && s.suite == gate.suite && s.category == gate.category
            }),
            retention: summary.statistics.gate_retention.iter().find(|r| {
                r.student == gate.student && r.suite == gate.suite && r.category == gate.category
            }),
        })
        .collect()
}

/// The statistics of one model on one suite (`"all"` for every suite) and category.
pub(crate) fn model_stats<'a>(
    summary: &'a Summary,
    model: &str,
    suite: &str,
    category: Option<&str>,
) -> Option<&'a ModelStats> {
    summary
        .model_stats
        .iter()
        .find(|s| s.model == model && s.suite == suite && s.category.as_deref() == category)
}

/// A model's statistics over the whole run: the `"all"` row, or the only
/// suite's row when the run has one suite and no `"all"` row.
pub(crate) fn overall_stats<'a>(summary: &'a Summary, model: &str) -> Option<&'a ModelStats> {
    summary.overall_stats(model)
}

/// Whether any model's latencies include some recorded earlier.
pub(crate) fn latencies_recorded(summary: &Summary) -> bool {
    summary
        .model_stats
        .iter()
        .filter_map(|s| s.latency)
        .any(|l| l.origin() == LatencyOrigin::Recorded)
}

/// The suite name under which statistics over every suite are stored.
pub(crate) const ALL_SUITES: &str = "all";

/// The run's result: FAIL if any gate failed, else INCONCLUSIVE if any gate
/// was, else PASS. A run without gates is INCONCLUSIVE (nothing was shown).
pub(crate) fn overall_verdict(summary: &Summary) -> Verdict {
    let has = |v: Verdict| summary.gates.iter().any(|g| g.verdict == v);
    if has(Verdict::Fail) {
        Verdict::Fail
    } else if has(Verdict::Inconclusive) || summary.gates.is_empty() {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

/// "3 gates: 1 PASS, 1 FAIL, 1 INCONCLUSIVE", omitting zero counts.
pub(crate) fn verdict_counts(summary: &Summary) -> String {
    let count = |v: Verdict| summary.gates.iter().filter(|g| g.verdict == v).count();
    let parts: Vec<String> = [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive]
        .into_iter()
        .filter_map(|v| match count(v) {
            0 => None,
            n => Some(format!("{n} {v}")),
        })
        .collect();
    let n = summary.gates.len();
    let gates = if n == 1 { "gate" } else { "gates" };
    if parts.is_empty() {
        format!("{n} {gates}")
    } else {
        format!("{n} {gates}: {}", parts.join(", "))
    }
}

/// Text for a retention that cannot be measured.
pub(crate) fn not_measurable(c: &Comparison) -> String {
    let items = if c.teacher_correct == 1 {
        "item"
    } else {
        "items"
    };
    format!(
        "not measurable: teacher got {} {items} right",
        c.teacher_correct
    )
}

/// For an INCONCLUSIVE gate: how many more paired items would decide it
/// (PASS or FAIL), with what probability, and how that was computed;
/// `None` when the gate's own reason says it already (a measured retention
/// whose lower bound, or teacher count, fell short: the gate states the
/// items to add in that reason).
pub(crate) fn items_needed(row: &GateRow<'_>) -> Option<String> {
    if row.retention.is_some_and(|r| {
        matches!(
            r.basis,
            crate::gate::RetentionBasis::LowerBoundBelow
                | crate::gate::RetentionBasis::TooFewTeacherCorrect
        )
    }) {
        return None;
    }
    let more = row.gate.items_needed?;
    let items = |n: u64| if n == 1 { "item" } else { "items" };
    let total = row
        .retention
        .and_then(|r| r.items_total)
        .map(|t| format!(" ({t} in total)"))
        .unwrap_or_default();
    let how = match row.retention {
        Some(r) => format!(
            " with probability {} at the observed rates{}",
            numbers::percent(r.power),
            if r.items_exact { "" } else { " (estimate)" }
        ),
        None => " at the observed rates".to_string(),
    };
    Some(format!(
        "{more} more paired {}{total} would decide it{how}",
        items(more)
    ))
}

impl GateRow<'_> {
    /// "retention not measurable: ..." when the run could not estimate
    /// retention and that is what held the verdict; `None` when the gate
    /// decided anyway (the upper bound showed the student below).
    pub(crate) fn unmeasured_note(&self) -> Option<String> {
        let c = self.comparison.filter(|c| !c.measurable)?;
        (!self.upper_bound_decided()).then(|| format!("retention {}", not_measurable(c)))
    }

    /// Whether the one-sided upper bound below the threshold gave the FAIL.
    pub(crate) fn upper_bound_decided(&self) -> bool {
        self.retention
            .is_some_and(|r| r.basis == crate::gate::RetentionBasis::UpperBoundBelow)
    }

    /// The retention cell when it could not be estimated: why, or, when the
    /// upper bound decided, that bound.
    pub(crate) fn unmeasured_cell(&self, c: &Comparison) -> String {
        match self.retention.and_then(|r| r.upper_bound) {
            Some(upper) if self.upper_bound_decided() => format!(
                "below: upper bound {} (teacher got {} {} right)",
                numbers::ratio(upper),
                c.teacher_correct,
                if c.teacher_correct == 1 {
                    "item"
                } else {
                    "items"
                }
            ),
            _ => not_measurable(c),
        }
    }
}

/// Position of a model in the summary (teacher first), unknown models last.
pub(crate) fn model_rank(summary: &Summary, model: &str) -> usize {
    summary
        .models
        .iter()
        .position(|m| m.name == model)
        .unwrap_or(usize::MAX)
}

/// Position of a suite in the summary; `"all"` and unknown suites last.
pub(crate) fn suite_rank(summary: &Summary, suite: &str) -> usize {
    summary
        .suites
        .iter()
        .position(|s| s.name == suite)
        .unwrap_or(usize::MAX)
}

/// Lower-case name of a role, as in the journal.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Teacher => "teacher",
        Role::Student => "student",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn every_format_shows_the_code_sandbox_isolation() {
        let line = "jail in a user namespace (not root): netns; fs jail; seccomp <&>";
        let summary = Summary {
            isolation: Some(line.into()),
            suites: vec![crate::summary::SuiteInfo {
                name: "coding".into(),
                version: "1".into(),
                split: "test".into(),
                items: 1,
                categories: Vec::new(),
            }],
            gates: vec![crate::summary::GateResult {
                student: "s".into(),
                suite: "coding".into(),
                category: None,
                verdict: crate::gate::Verdict::Inconclusive,
                reasons: Vec::new(),
                items_needed: None,
                thresholds: crate::gate::GateThresholds::new(0.9),
            }],
            ..bare_summary()
        };
        let journal = Vec::new();
        let ctx = ReportContext::new(&summary, &journal);
        let html = html::render_html(&ctx).unwrap_or_default();
        let rendered = [
            ("terminal", terminal::render_terminal(&summary, false)),
            ("markdown", markdown::render_markdown(&ctx)),
            ("summary markdown", summary_md::render_run(&summary)),
            ("junit", junit::render_junit(&summary).unwrap_or_default()),
            ("html", html),
        ];
        for (format, text) in &rendered {
            assert_eq!(
                text.matches("jail in a user namespace (not root)").count(),
                1,
                "{format}: {text}"
            );
        }
        // Without code to run, no line.
        let bare = bare_summary();
        assert!(!terminal::render_terminal(&bare, false).contains("Code sandbox"));
    }

    #[test]
    fn paths_are_normalised_by_their_text() {
        let n = |p: &str| lexically_normal(Path::new(p));
        assert_eq!(n("fixtures/../reports/demo"), PathBuf::from("reports/demo"));
        assert_eq!(n("./a/./b/"), PathBuf::from("a/b"));
        assert_eq!(n("../x/../../y"), PathBuf::from("../../y"));
        assert_eq!(n("/a/../../b"), PathBuf::from("/b"));
        assert_eq!(n("a/.."), PathBuf::from("."));
        assert_eq!(
            n("/tmp/no/such/dir/../demo"),
            PathBuf::from("/tmp/no/such/demo")
        );
    }

    /// A summary with no models, suites or gates.
    pub(crate) fn bare_summary() -> Summary {
        Summary {
            harness_version: "0.1.0".into(),
            run: "bare".into(),
            config_sha256: "00".into(),
            seed: 1,
            bootstrap_resamples: 10_000,
            models: Vec::new(),
            suites: Vec::new(),
            model_stats: Vec::new(),
            comparisons: Vec::new(),
            gates: Vec::new(),
            inconclusive_fails: true,
            exit_code: 1,
            statistics: Default::default(),
            contamination: Vec::new(),
            isolation: None,
            swap_plans: Vec::new(),
        }
    }
}
