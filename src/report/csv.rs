//! CSV for spreadsheets and scripts: `results.csv` (one row per journal
//! entry) and `stats.csv` (one row per model x suite x category, with the
//! comparison against the teacher on student rows). Numbers are written in
//! full precision (shortest text that reads back as the same float); quoting
//! of commas, quotes and newlines in model outputs is the csv crate's.

use std::io::Write;

use serde::Serialize;

use super::{Exporter, ReportContext, ReportError, model_rank, suite_rank};
use crate::model::{FinishReason, LatencySource};
use crate::run::journal::{JournalEntry, Role};
use crate::summary::{Comparison, LatencyOrigin, ModelStats, Summary};

/// The file name of the per-item table.
pub const RESULTS_FILE: &str = "results.csv";
/// The file name of the statistics table.
pub const STATS_FILE: &str = "stats.csv";

/// Columns of `results.csv`, in order.
pub const RESULTS_COLUMNS: [&str; 20] = [
    "model",
    "role",
    "suite",
    "task_id",
    "sample",
    "category",
    "score",
    "error",
    "extracted",
    "detail",
    "prompt_tokens",
    "cached_prompt_tokens",
    "completion_tokens",
    "usage_estimated",
    "latency_ms",
    "ttft_ms",
    "latency_source",
    "cost",
    "finish",
    "output",
];

/// Columns of `stats.csv`, in order. `category` is empty on whole-suite rows;
/// the comparison columns are empty on teacher rows.
pub const STATS_COLUMNS: [&str; 38] = [
    "model",
    "role",
    "suite",
    "category",
    "n",
    "errors",
    "error_rate",
    "accuracy",
    "accuracy_lower",
    "accuracy_upper",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_mean_ms",
    "ttft_mean_ms",
    "tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_per_1k",
    "estimated_usage",
    "paired_n",
    "teacher_correct",
    "measurable",
    "retention",
    "retention_ci_lower",
    "retention_ci_upper",
    "retention_lower_bound",
    "retention_delta_lower",
    "retention_delta_upper",
    "teacher_only",
    "student_only",
    "mcnemar_p",
    "agreement",
    "speedup",
    "speedup_source",
    "cost_ratio",
    "savings_per_1k",
];

/// Writes `results.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultsCsv;

/// Writes `stats.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsCsv;

impl Exporter for ResultsCsv {
    fn file_name(&self) -> &'static str {
        RESULTS_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        let mut bytes = Vec::new();
        write_results(ctx, &mut bytes)?;
        Ok(bytes)
    }

    fn write(&self, ctx: &ReportContext<'_>, out: &mut dyn Write) -> Result<(), ReportError> {
        write_results(ctx, out)
    }
}

impl Exporter for StatsCsv {
    fn file_name(&self) -> &'static str {
        STATS_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        render_stats(ctx.summary)
    }
}

/// One row of `results.csv`; field order is [`RESULTS_COLUMNS`].
#[derive(Serialize)]
struct ResultRow<'a> {
    model: &'a str,
    role: Role,
    suite: &'a str,
    task_id: &'a str,
    sample: u32,
    category: &'a str,
    score: f64,
    error: Option<&'a str>,
    extracted: Option<&'a str>,
    detail: &'a str,
    prompt_tokens: u64,
    cached_prompt_tokens: u64,
    completion_tokens: u64,
    usage_estimated: bool,
    latency_ms: Option<f64>,
    ttft_ms: Option<f64>,
    latency_source: Option<LatencySource>,
    cost: f64,
    finish: Option<FinishReason>,
    output: Option<&'a str>,
}

impl<'a> From<&'a JournalEntry> for ResultRow<'a> {
    fn from(e: &'a JournalEntry) -> Self {
        Self {
            model: &e.model,
            role: e.role,
            suite: &e.suite,
            task_id: &e.task_id,
            sample: e.sample,
            category: &e.category,
            score: e.score,
            error: e.error.as_deref(),
            extracted: e.extracted.as_deref(),
            detail: &e.detail,
            prompt_tokens: e.usage.prompt_tokens,
            cached_prompt_tokens: e.usage.cached_prompt_tokens,
            completion_tokens: e.usage.completion_tokens,
            usage_estimated: e.usage.estimated,
            latency_ms: e.latency.map(|l| l.total_ms),
            ttft_ms: e.latency.and_then(|l| l.first_token_ms),
            latency_source: e.latency.map(|l| l.source),
            cost: e.cost,
            finish: e.finish,
            output: e.output.as_deref(),
        }
    }
}

/// One row of `stats.csv`; field order is [`STATS_COLUMNS`].
#[derive(Serialize)]
struct StatsRow<'a> {
    model: &'a str,
    role: Role,
    suite: &'a str,
    category: Option<&'a str>,
    n: Option<usize>,
    errors: Option<usize>,
    error_rate: Option<f64>,
    accuracy: Option<f64>,
    accuracy_lower: Option<f64>,
    accuracy_upper: Option<f64>,
    latency_p50_ms: Option<f64>,
    latency_p95_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    latency_mean_ms: Option<f64>,
    ttft_mean_ms: Option<f64>,
    tokens_per_s: Option<f64>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    cost: Option<f64>,
    cost_per_1k: Option<f64>,
    estimated_usage: Option<usize>,
    paired_n: Option<usize>,
    teacher_correct: Option<u64>,
    measurable: Option<bool>,
    retention: Option<f64>,
    retention_ci_lower: Option<f64>,
    retention_ci_upper: Option<f64>,
    retention_lower_bound: Option<f64>,
    retention_delta_lower: Option<f64>,
    retention_delta_upper: Option<f64>,
    teacher_only: Option<u64>,
    student_only: Option<u64>,
    mcnemar_p: Option<f64>,
    agreement: Option<f64>,
    speedup: Option<f64>,
    speedup_source: Option<LatencyOrigin>,
    cost_ratio: Option<f64>,
    savings_per_1k: Option<f64>,
}

impl<'a> StatsRow<'a> {
    fn new(stats: Option<&'a ModelStats>, cmp: Option<&'a Comparison>) -> Option<Self> {
        let (model, role, suite, category) = match (stats, cmp) {
            (Some(s), _) => (&s.model, s.role, &s.suite, s.category.as_deref()),
            (None, Some(c)) => (&c.student, Role::Student, &c.suite, c.category.as_deref()),
            (None, None) => return None,
        };
        let latency = stats.and_then(|s| s.latency);
        Some(Self {
            model,
            role,
            suite,
            category,
            n: stats.map(|s| s.n),
            errors: stats.map(|s| s.errors),
            error_rate: stats.map(|s| s.error_rate),
            accuracy: stats.map(|s| s.accuracy),
            accuracy_lower: stats.map(|s| s.accuracy_interval.lower),
            accuracy_upper: stats.map(|s| s.accuracy_interval.upper),
            latency_p50_ms: latency.map(|l| l.p50_ms),
            latency_p95_ms: latency.map(|l| l.p95_ms),
            latency_p99_ms: latency.map(|l| l.p99_ms),
            latency_mean_ms: latency.map(|l| l.mean_ms),
            ttft_mean_ms: latency.and_then(|l| l.ttft_mean_ms),
            tokens_per_s: stats.and_then(|s| s.tokens_per_s),
            prompt_tokens: stats.map(|s| s.prompt_tokens),
            completion_tokens: stats.map(|s| s.completion_tokens),
            cost: stats.map(|s| s.cost),
            cost_per_1k: stats.map(|s| s.cost_per_1k),
            estimated_usage: stats.map(|s| s.estimated_usage),
            paired_n: cmp.map(|c| c.n),
            teacher_correct: cmp.map(|c| c.teacher_correct),
            measurable: cmp.map(|c| c.measurable),
            retention: cmp.and_then(|c| c.retention),
            retention_ci_lower: cmp.and_then(|c| c.retention_interval).map(|i| i.lower),
            retention_ci_upper: cmp.and_then(|c| c.retention_interval).map(|i| i.upper),
            retention_lower_bound: cmp.and_then(|c| c.retention_lower),
            retention_delta_lower: cmp
                .and_then(|c| c.retention_delta_interval)
                .map(|i| i.lower),
            retention_delta_upper: cmp
                .and_then(|c| c.retention_delta_interval)
                .map(|i| i.upper),
            teacher_only: cmp.map(|c| c.teacher_only),
            student_only: cmp.map(|c| c.student_only),
            mcnemar_p: cmp.and_then(|c| c.mcnemar_p),
            agreement: cmp.and_then(|c| c.agreement),
            speedup: cmp.and_then(|c| c.speedup),
            speedup_source: cmp.and_then(|c| c.speedup_source),
            cost_ratio: cmp.and_then(|c| c.cost_ratio),
            savings_per_1k: cmp.map(|c| c.savings_per_1k),
        })
    }
}

/// Renders `results.csv`: the header, then every journal entry sorted by
/// model (summary order, teacher first), suite (summary order) and task id;
/// entries with equal keys keep their journal order.
pub fn render_results(summary: &Summary, journal: &[JournalEntry]) -> Result<Vec<u8>, ReportError> {
    let mut bytes = Vec::new();
    write_results(&ReportContext::new(summary, journal), &mut bytes)?;
    Ok(bytes)
}

/// Writes `results.csv` as [`render_results`] renders it, one row at a
/// time, reading each answer back from the journal file when the context's
/// lines were read without their texts.
fn write_results(ctx: &ReportContext<'_>, out: &mut dyn Write) -> Result<(), ReportError> {
    let summary = ctx.summary;
    let mut entries: Vec<&JournalEntry> = ctx.journal.iter().collect();
    entries.sort_by(|a, b| {
        let key = |e: &JournalEntry| (model_rank(summary, &e.model), suite_rank(summary, &e.suite));
        key(a)
            .cmp(&key(b))
            .then_with(|| a.model.cmp(&b.model))
            .then_with(|| a.suite.cmp(&b.suite))
            .then_with(|| a.task_id.cmp(&b.task_id))
            .then_with(|| a.sample.cmp(&b.sample))
    });
    let err = |source| ReportError::Csv {
        file: RESULTS_FILE,
        source,
    };
    let mut writer = csv_writer(RESULTS_FILE, &RESULTS_COLUMNS, out)?;
    for e in entries {
        writer
            .serialize(ResultRow::from(ctx.full(e)?.as_ref()))
            .map_err(err)?;
    }
    writer.flush().map_err(|e| err(e.into()))
}

/// Renders `stats.csv`: one row per model statistics row, joined with the
/// matching comparison on student rows, sorted by model, suite (`"all"`
/// last) and category (whole suite first).
pub fn render_stats(summary: &Summary) -> Result<Vec<u8>, ReportError> {
    let find_cmp = |model: &str, suite: &str, category: Option<&str>| {
        summary
            .comparisons
            .iter()
            .find(|c| c.student == model && c.suite == suite && c.category.as_deref() == category)
    };
    let mut rows: Vec<StatsRow<'_>> = summary
        .model_stats
        .iter()
        .filter_map(|s| {
            let cmp = match s.role {
                Role::Student => find_cmp(&s.model, &s.suite, s.category.as_deref()),
                Role::Teacher => None,
            };
            StatsRow::new(Some(s), cmp)
        })
        .collect();
    // Comparisons without a statistics row still get a row of their own.
    rows.extend(
        summary
            .comparisons
            .iter()
            .filter(|c| {
                !summary
                    .model_stats
                    .iter()
                    .any(|s| s.model == c.student && s.suite == c.suite && s.category == c.category)
            })
            .filter_map(|c| StatsRow::new(None, Some(c))),
    );
    rows.sort_by(|a, b| {
        let key = |r: &StatsRow<'_>| {
            (
                model_rank(summary, r.model),
                r.model.to_string(),
                suite_rank(summary, r.suite),
                r.suite.to_string(),
                r.category.map(str::to_string),
            )
        };
        key(a).cmp(&key(b))
    });
    write_csv(STATS_FILE, &STATS_COLUMNS, rows)
}

/// Writes the header and then every row (the header is written even when
/// there are no rows, which serde-driven headers would not do).
/// A CSV writer on `out` that has written `header`.
fn csv_writer<W: Write>(
    file: &'static str,
    header: &[&str],
    out: W,
) -> Result<::csv::Writer<W>, ReportError> {
    let mut writer = ::csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer
        .write_record(header)
        .map_err(|source| ReportError::Csv { file, source })?;
    Ok(writer)
}

fn write_csv<R: Serialize>(
    file: &'static str,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<Vec<u8>, ReportError> {
    let err = |source| ReportError::Csv { file, source };
    let mut writer = csv_writer(file, header, Vec::new())?;
    for row in rows {
        writer.serialize(row).map_err(err)?;
    }
    writer
        .into_inner()
        .map_err(|e| err(::csv::Error::from(e.into_error())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Latency, Usage};

    fn entry() -> JournalEntry {
        JournalEntry {
            output: Some("a, \"b\"\nc".into()),
            score: 0.5,
            detail: "partial".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 3,
                cached_prompt_tokens: 2,
                estimated: false,
            },
            latency: Some(Latency {
                total_ms: 12.5,
                first_token_ms: None,
                batch_ms: None,
                batch_size: 1,
                source: LatencySource::Recorded,
            }),
            finish: Some(FinishReason::Length),
            cost: 1e-7,
            ..JournalEntry::new("m", Role::Student, "s", "t1", "c")
        }
    }

    /// The hand-written column lists must match the serde field names (what
    /// a header written by the csv crate itself would be).
    #[test]
    fn column_lists_match_the_row_structs() {
        let e = entry();
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.serialize(ResultRow::from(&e)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), RESULTS_COLUMNS.join(","));

        let cmp = Comparison {
            student: "m".into(),
            suite: "s".into(),
            category: None,
            n: 1,
            teacher_correct: 1,
            measurable: false,
            retention: None,
            retention_interval: None,
            retention_lower: None,
            retention_delta_interval: None,
            teacher_only: 0,
            student_only: 0,
            mcnemar_p: Some(1.0),
            agreement: Some(1.0),
            speedup: None,
            speedup_source: None,
            cost_ratio: None,
            savings_per_1k: 0.0,
        };
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.serialize(StatsRow::new(None, Some(&cmp)).unwrap())
            .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), STATS_COLUMNS.join(","));
    }

    #[test]
    fn row_fields_are_written_in_full_precision_and_quoted() {
        let e = entry();
        let summary = crate::report::tests::bare_summary();
        let bytes = render_results(&summary, std::slice::from_ref(&e)).unwrap();
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let field = |name: &str| {
            let at = header.iter().position(|h| h == name).unwrap();
            record[at].to_string()
        };
        assert_eq!(field("role"), "student");
        assert_eq!(field("sample"), "0");
        assert_eq!(field("score"), "0.5");
        assert_eq!(field("error"), "");
        assert_eq!(field("usage_estimated"), "false");
        assert_eq!(field("latency_ms"), "12.5");
        assert_eq!(field("latency_source"), "recorded");
        assert_eq!(field("cost"), "1e-7");
        assert_eq!(field("finish"), "length");
        assert_eq!(field("output"), "a, \"b\"\nc");
    }
}
