//! `distill-gate compare`: may a candidate run's students replace the
//! baseline run's?
//!
//! Both runs are read from their directories (`summary.json` and the
//! journal `results.jsonl`); no model runs. Students are matched by name
//! and items by suite and task id ([`pairing`]). Per student and suite:
//! accuracy and retention of both runs on the matched items with a paired
//! interval of the change ([`statistics`]); retention by each run's own
//! rule (its interval method and its `min_teacher_correct`), so a retention
//! the run's report calls not measurable is not measurable here either; the
//! items whose score went down or up (any amount, so the counts agree with
//! the change of fractional scores), with McNemar's exact test only when
//! every matched score is pass/fail; latency and cost on the matched items;
//! and a decision by the gate's interval rule with the baseline in the
//! teacher's place ([`decision`]). The candidate run's swap plan
//! ([`swap`]) says which categories each candidate may take over from the
//! teacher. [`render`] writes it for a terminal, Markdown and JSON.

pub mod decision;
pub mod render;
pub mod statistics;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gate::{self, GateError, Verdict};
use crate::run::execute::RunManifest;
use crate::run::journal::{self, JournalEntry, Role};
use crate::stats::{self, IntervalMethod, StatsError};
use crate::summary::Summary;

use crate::run::pairing::{ItemKey, ItemScore, count_in, item_scores, pairs};
use crate::run::swap;
use crate::summary::SwapPlan;
use decision::{Decided, Decision};
use statistics::{Change, Series};

/// A run read from its directory.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// Its `summary.json`.
    pub summary: Summary,
    /// Its journal, read without the answer texts.
    pub entries: Vec<JournalEntry>,
    /// Its `[run] min_teacher_correct`: the floor of its retention rule.
    pub floor: TeacherFloor,
}

/// The fewest items a run's teacher must get right for the run to call
/// retention measurable (`[run] min_teacher_correct`), and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherFloor {
    /// The minimum.
    pub min_teacher_correct: u64,
    /// The config it was read from, or why the default was assumed (the
    /// config named by `run.json` is gone or changed since the run).
    pub source: String,
    /// Whether it is the default assumed for want of the run's config.
    pub assumed: bool,
}

impl TeacherFloor {
    /// The run's floor: as its summary records it; for a summary written
    /// before it was recorded, from the config its `run.json` names, when
    /// that file still has the content the run used (`summary.config_sha256`);
    /// otherwise the default, marked as assumed.
    pub fn of_run(dir: &Path, summary: &Summary) -> TeacherFloor {
        if let Some(min_teacher_correct) = summary.statistics.min_teacher_correct {
            return TeacherFloor {
                min_teacher_correct,
                source: dir.join("summary.json").display().to_string(),
                assumed: false,
            };
        }
        let assumed = |why: String| TeacherFloor {
            min_teacher_correct: gate::DEFAULT_MIN_TEACHER_CORRECT,
            source: format!("default assumed: {why}"),
            assumed: true,
        };
        let manifest_path = dir.join("run.json");
        let manifest: RunManifest = match std::fs::read_to_string(&manifest_path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return assumed(format!("{}: {e}", manifest_path.display())),
        };
        let config = &manifest.config;
        let bytes = match std::fs::read(config) {
            Ok(b) => b,
            Err(e) => return assumed(format!("{}: {e}", config.display())),
        };
        if crate::fingerprint::sha256_hex(&bytes) != summary.config_sha256 {
            return assumed(format!("{} changed since the run", config.display()));
        }
        let table: toml::Table = match std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str(t).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => return assumed(format!("{}: {e}", config.display())),
        };
        let value = table
            .get("run")
            .and_then(|r| r.get("min_teacher_correct"))
            .and_then(toml::Value::as_integer)
            .and_then(|v| u64::try_from(v).ok());
        TeacherFloor {
            min_teacher_correct: value
                .unwrap_or_else(|| crate::config::RunSettings::default().min_teacher_correct),
            source: config.display().to_string(),
            assumed: false,
        }
    }
}

/// Why two runs cannot be compared (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A run file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The runs evaluated different suites.
    #[error(
        "the runs evaluated different suites (baseline: {}; candidate: {}); compare runs of the same suites",
        baseline.join(", "), candidate.join(", ")
    )]
    SuitesDiffer {
        /// The baseline's suites.
        baseline: Vec<String>,
        /// The candidate's suites.
        candidate: Vec<String>,
    },
    /// No student is in both runs.
    #[error(
        "no student is in both runs (baseline: {}; candidate: {}); students are matched by name",
        baseline.join(", "), candidate.join(", ")
    )]
    NoCommonStudent {
        /// The baseline's students.
        baseline: Vec<String>,
        /// The candidate's students.
        candidate: Vec<String>,
    },
    /// A student has no item of a suite in both runs.
    #[error(
        "student {student:?}, suite {suite:?}: no item is in both runs \
         (baseline has {baseline}, candidate {candidate}); items are matched by suite and task id"
    )]
    NoMatchingItems {
        /// Student.
        student: String,
        /// Suite.
        suite: String,
        /// The baseline's items of the suite.
        baseline: usize,
        /// The candidate's.
        candidate: usize,
    },
    /// A statistic rejected its input.
    #[error("statistics: {0}")]
    Stats(#[from] StatsError),
    /// The gate rule rejected its thresholds or input.
    #[error("decision: {0}")]
    Gate(#[from] GateError),
    /// `--min-retention` is not a finite number above 0.
    #[error("--min-retention {0}: expected a finite number > 0")]
    MinRetention(f64),
    /// The output directory could not be created.
    #[error("{}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `compare.json` could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// `compare.json` or `compare.md` could not be written.
    #[error(transparent)]
    Write(#[from] crate::report::ReportError),
}

impl From<crate::run::summarize::SummarizeError> for CompareError {
    fn from(e: crate::run::summarize::SummarizeError) -> Self {
        use crate::run::summarize::SummarizeError;
        match e {
            SummarizeError::Stats(e) => CompareError::Stats(e),
            SummarizeError::Gate(e) => CompareError::Gate(e),
        }
    }
}

/// A run's swap plans: those its summary stores, or, for a summary written
/// before they were stored, computed from its journal the same way.
fn swap_plans_of(run: &RunData) -> Result<Vec<SwapPlan>, CompareError> {
    let has_students = run.summary.models.iter().any(|m| m.role == Role::Student);
    if run.summary.swap_plans.is_empty() && has_students {
        return Ok(swap::swap_plans(&run.summary, &run.entries)?);
    }
    Ok(run.summary.swap_plans.clone())
}

/// Reads `summary.json` and `results.jsonl` of a run directory.
pub fn load_run(dir: &Path) -> Result<RunData, CompareError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| CompareError::Read {
        path: path.clone(),
        message: format!("{e} (is {} a finished run directory?)", dir.display()),
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| CompareError::Read {
        path: path.clone(),
        message: format!("not a valid summary: {e}"),
    })?;
    let journal_path = dir.join("results.jsonl");
    // Comparing needs scores, costs and latencies, not the answers' text.
    let entries = journal::read_for_reports(&journal_path)
        .and_then(|entries| {
            // Every answer must be the one of the model the summary names.
            let ids = crate::run::identity::ModelIds::from_models(&summary.models);
            crate::run::identity::check_journal(None, &ids, &entries, &journal_path)?;
            Ok(entries)
        })
        .map_err(|p| CompareError::Read {
            path: journal_path,
            message: p.to_string(),
        })?;
    Ok(RunData {
        dir: dir.to_path_buf(),
        floor: TeacherFloor::of_run(dir, &summary),
        summary,
        entries,
    })
}

/// Options of a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompareOptions {
    /// Minimum candidate / baseline accuracy ratio; `None`: each candidate
    /// gate's `min_retention`.
    pub min_retention: Option<f64>,
}

/// Which run a side of the comparison is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    /// The run directory.
    pub dir: PathBuf,
    /// The run name.
    pub run: String,
    /// SHA-256 of its config.
    pub config_sha256: String,
    /// Its retention interval method (`[gate] interval`).
    pub interval: IntervalMethod,
    /// Its retention floor.
    pub floor: TeacherFloor,
    /// Whether a model of the run read an answers file (its recorded
    /// latencies may come from there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answers_files: bool,
}

/// Latency (ms) and cost of one side on the matched items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Operating {
    /// Median latency, when measured.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, when measured.
    pub p95_ms: Option<f64>,
    /// Dollars per 1,000 items.
    pub cost_per_1k: f64,
    /// Whether some latencies were measured earlier (a replayed transcript
    /// or a response cache), not in the run.
    pub recorded: bool,
}

/// How the matched items' scores changed from baseline to candidate.
///
/// `down` and `up` count every item whose score changed, by any amount, so
/// they agree with the accuracy change also for fractional scores (partial
/// credit): no item down and none up is no change. McNemar's exact test
/// needs pass/fail outcomes: it is computed only when every matched score
/// of both runs is 0 or 1, and then its discordant pairs are `down` and `up`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreChanges {
    /// Items whose score went down (candidate below baseline).
    pub down: u64,
    /// Items whose score went up.
    pub up: u64,
    /// McNemar's exact two-sided p-value on `down` and `up` (1 when no item
    /// changed); `None` when some matched score is fractional.
    pub mcnemar_p: Option<f64>,
}

/// Retention of one run's student against that run's teacher, by the run's
/// own rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SideRetention {
    /// Items the run's teacher got right on the retention items: the sum of
    /// its scores rounded down, as the run counts them.
    pub teacher_correct: u64,
    /// Student accuracy / teacher accuracy on those items; `None` when the
    /// run's rule calls it not measurable: its interval method cannot
    /// measure it (e.g. the teacher scored 0), or the teacher got fewer than
    /// the run's `min_teacher_correct` items right.
    pub retention: Option<f64>,
    /// The one-sided upper bound of retention at the run's confidence, by
    /// its interval method, when it could be computed (even below the
    /// floor): where it is below the threshold the run FAILs the gate.
    #[serde(default)]
    pub upper_bound: Option<f64>,
}

/// One student on one suite, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteChange {
    /// Suite name.
    pub suite: String,
    /// A task-specific student's categories of the suite: its items there
    /// are exactly these (empty: the whole suite).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The baseline student's items of the suite.
    pub baseline_items: usize,
    /// The candidate's.
    pub candidate_items: usize,
    /// Items in both (by suite and task id): what everything below is computed on.
    pub matched: usize,
    /// Baseline accuracy on the matched items.
    pub baseline_accuracy: f64,
    /// Candidate accuracy on the matched items.
    pub candidate_accuracy: f64,
    /// Candidate minus baseline accuracy, with a paired interval.
    pub accuracy_change: Option<Change>,
    /// Matched items both runs' teachers answered without error (retention's items).
    pub retention_items: usize,
    /// Baseline retention against its run's teacher, on those items.
    pub baseline_retention: SideRetention,
    /// Candidate retention against its run's teacher.
    pub candidate_retention: SideRetention,
    /// Candidate minus baseline retention, with a paired interval; `None`
    /// unless both retentions are measurable.
    pub retention_change: Option<Change>,
    /// Candidate / baseline accuracy (the decision's ratio), when measurable
    /// by the gate's rule (the baseline scored above 0 and got at least the
    /// candidate run's `min_teacher_correct` items right).
    pub ratio: Option<f64>,
    /// Its one-sided lower bound at `confidence`.
    pub ratio_lower: Option<f64>,
    /// The minimum ratio applied.
    pub min_retention: f64,
    /// The confidence applied.
    pub confidence: f64,
    /// The interval method of the ratio's lower bound (the candidate run's).
    pub interval: IntervalMethod,
    /// How the matched items' scores changed.
    pub changes: ScoreChanges,
    /// The baseline run's own gate verdict for this student and suite.
    pub baseline_verdict: Option<Verdict>,
    /// The candidate run's.
    pub candidate_verdict: Option<Verdict>,
    /// The baseline's latency and cost.
    pub baseline: Operating,
    /// The candidate's.
    pub candidate: Operating,
    /// The decision on this suite.
    pub decision: Decided,
}

impl SuiteChange {
    /// What the column covers, for people: `suite`, or `suite/category`
    /// for a task-specific student.
    pub fn label(&self) -> String {
        if self.categories.is_empty() {
            return self.suite.clone();
        }
        let cats: Vec<String> = self
            .categories
            .iter()
            .map(|c| format!("{}/{c}", self.suite))
            .collect();
        cats.join(", ")
    }
}

/// One student, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentChange {
    /// Student name.
    pub student: String,
    /// Weights hash or API model string in the baseline run.
    pub baseline_fingerprint: String,
    /// In the candidate run.
    pub candidate_fingerprint: String,
    /// The worst of its suites' decisions.
    pub decision: Decided,
    /// The one-line decision.
    pub line: String,
    /// Per suite.
    pub suites: Vec<SuiteChange>,
}

/// The whole comparison; `compare.json` is this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// The approved run.
    pub baseline: RunRef,
    /// The candidate run.
    pub candidate: RunRef,
    /// Students in both runs, in the candidate's order.
    pub students: Vec<StudentChange>,
    /// Students in only one run (not compared).
    pub unmatched_students: Vec<String>,
    /// The candidate run's swap plan.
    pub swap_plans: Vec<SwapPlan>,
    /// 0 when every student is approved, 1 otherwise.
    pub exit_code: i32,
}

/// `distill-gate compare`: the runs in the directories `baseline` and
/// `candidate` compared; with `out`, `compare.json` and `compare.md` are
/// written there (created if missing).
pub fn compare_dirs(
    baseline: &Path,
    candidate: &Path,
    opts: &CompareOptions,
    out: Option<&Path>,
) -> Result<CompareReport, CompareError> {
    let result = compare_runs(&load_run(baseline)?, &load_run(candidate)?, opts)?;
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|source| CompareError::Output {
            path: out.to_path_buf(),
            source,
        })?;
        let json = serde_json::to_string_pretty(&result)? + "\n";
        crate::report::write_atomic(&out.join("compare.json"), json.as_bytes())?;
        crate::report::write_atomic(
            &out.join("compare.md"),
            render::render_markdown(&result).as_bytes(),
        )?;
    }
    Ok(result)
}

/// Compares two runs.
pub fn compare_runs(
    baseline: &RunData,
    candidate: &RunData,
    opts: &CompareOptions,
) -> Result<CompareReport, CompareError> {
    if let Some(m) = opts.min_retention
        && !(m.is_finite() && m > 0.0)
    {
        return Err(CompareError::MinRetention(m));
    }
    let suite_names =
        |r: &RunData| -> Vec<String> { r.summary.suites.iter().map(|s| s.name.clone()).collect() };
    let (b_suites, c_suites) = (suite_names(baseline), suite_names(candidate));
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if as_set(&b_suites) != as_set(&c_suites) {
        return Err(CompareError::SuitesDiffer {
            baseline: b_suites,
            candidate: c_suites,
        });
    }
    let students = |r: &RunData| -> Vec<String> {
        r.summary
            .models
            .iter()
            .filter(|m| m.role == Role::Student)
            .map(|m| m.name.clone())
            .collect()
    };
    let (b_students, c_students) = (students(baseline), students(candidate));
    let common: Vec<&String> = c_students
        .iter()
        .filter(|s| b_students.contains(s))
        .collect();
    if common.is_empty() {
        return Err(CompareError::NoCommonStudent {
            baseline: b_students,
            candidate: c_students,
        });
    }
    let unmatched_students = b_students
        .iter()
        .chain(&c_students)
        .filter(|s| !common.contains(s))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let b_items = item_scores(&baseline.entries);
    let c_items = item_scores(&candidate.entries);
    let sides = Sides {
        baseline: Side::of(baseline, &b_items),
        candidate: Side::of(candidate, &c_items),
    };
    let mut out = Vec::new();
    for student in common {
        // A task-specific student is compared on the suites of the
        // categories it takes (its items there are exactly those).
        let takes: Vec<String> = candidate
            .summary
            .models
            .iter()
            .find(|m| &m.name == student)
            .map(|m| m.categories.clone())
            .unwrap_or_default();
        let mut suites = Vec::new();
        for suite in c_suites
            .iter()
            .filter(|s| crate::config::takes(&takes, s, None))
        {
            let mut change = suite_change(&sides, student, suite, opts)?;
            change.categories = takes
                .iter()
                .filter_map(|c| c.split_once('/'))
                .filter(|(s, _)| s == suite)
                .map(|(_, c)| c.to_string())
                .collect();
            suites.push(change);
        }
        let decision = Decided::worst(suites.iter().map(|s| s.decision.clone()));
        let fingerprint = |r: &RunData| {
            r.summary
                .models
                .iter()
                .find(|m| &m.name == student)
                .map(|m| m.fingerprint.clone())
                .unwrap_or_default()
        };
        out.push(StudentChange {
            student: student.clone(),
            baseline_fingerprint: fingerprint(baseline),
            candidate_fingerprint: fingerprint(candidate),
            line: render::decision_line(student, &decision, &suites),
            decision,
            suites,
        });
    }
    let approved = out.iter().all(|s| s.decision.decision == Decision::Approve);
    let run_ref = |r: &RunData| RunRef {
        dir: r.dir.clone(),
        run: r.summary.run.clone(),
        config_sha256: r.summary.config_sha256.clone(),
        interval: r.summary.statistics.interval,
        floor: r.floor.clone(),
        answers_files: r.summary.reads_answers(),
    };
    Ok(CompareReport {
        baseline: run_ref(baseline),
        candidate: run_ref(candidate),
        students: out,
        unmatched_students,
        swap_plans: swap_plans_of(candidate)?,
        exit_code: i32::from(!approved),
    })
}

type Items = BTreeMap<String, BTreeMap<ItemKey, ItemScore>>;

/// One run's summary, floor and item scores.
struct Side<'a> {
    summary: &'a Summary,
    floor: u64,
    items: &'a Items,
    teacher: Option<&'a BTreeMap<ItemKey, ItemScore>>,
}

impl<'a> Side<'a> {
    fn of(run: &'a RunData, items: &'a Items) -> Self {
        let teacher = run
            .summary
            .models
            .iter()
            .find(|m| m.role == Role::Teacher)
            .and_then(|m| items.get(&m.name));
        Side {
            summary: &run.summary,
            floor: run.floor.min_teacher_correct,
            items,
            teacher,
        }
    }

    /// Retention of `student` against this run's teacher by the run's rule
    /// (its interval method at `confidence`, its floor).
    fn retention(
        &self,
        teacher: &[f64],
        student: &[f64],
        confidence: f64,
    ) -> Result<SideRetention, CompareError> {
        let estimate = stats::retention_estimate(
            teacher,
            student,
            None,
            self.summary.statistics.interval,
            &swap::bootstrap_options(self.summary, confidence),
        )?;
        // The run's count: the sum of the teacher's scores, rounded down.
        let teacher_correct = teacher.iter().sum::<f64>().floor() as u64;
        Ok(SideRetention {
            teacher_correct,
            retention: estimate
                .measured()
                .filter(|_| teacher_correct >= self.floor)
                .map(|e| e.point),
            upper_bound: estimate.measured().map(|e| e.upper_bound),
        })
    }

    /// The run's own gate verdict for a student on a suite.
    fn verdict(&self, student: &str, suite: &str) -> Option<Verdict> {
        self.summary
            .gates
            .iter()
            .find(|g| g.student == student && g.suite == suite)
            .map(|g| g.verdict)
    }
}

struct Sides<'a> {
    baseline: Side<'a>,
    candidate: Side<'a>,
}

fn suite_change(
    sides: &Sides<'_>,
    student: &str,
    suite: &str,
    opts: &CompareOptions,
) -> Result<SuiteChange, CompareError> {
    let empty = BTreeMap::new();
    let b = sides.baseline.items.get(student).unwrap_or(&empty);
    let c = sides.candidate.items.get(student).unwrap_or(&empty);
    let matched = pairs(suite, b, c);
    if matched.is_empty() {
        return Err(CompareError::NoMatchingItems {
            student: student.to_string(),
            suite: suite.to_string(),
            baseline: count_in(suite, b),
            candidate: count_in(suite, c),
        });
    }
    let mut thresholds = swap::suite_thresholds(sides.candidate.summary, student, suite);
    if let Some(m) = opts.min_retention {
        thresholds.min_retention = m;
    }
    // The baseline is in the teacher's place: the candidate run's floor applies to it.
    thresholds.min_teacher_correct = sides.candidate.floor;
    // The error rate is judged by the candidate's own gate, not against the baseline.
    thresholds.max_error_rate = None;
    let boot = swap::bootstrap_options(sides.baseline.summary, thresholds.confidence);
    let b_scores: Vec<f64> = matched.iter().map(|(_, x, _)| x.score).collect();
    let c_scores: Vec<f64> = matched.iter().map(|(_, _, y)| y.score).collect();
    let n = matched.len() as f64;

    // Retention: the matched items both teachers answered without error.
    let (bt, ct) = (
        sides.baseline.teacher.unwrap_or(&empty),
        sides.candidate.teacher.unwrap_or(&empty),
    );
    let mut r = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for (key, x, y) in &matched {
        if let (Some(tb), Some(tc)) = (bt.get(*key), ct.get(*key))
            && !tb.errored
            && !tc.errored
        {
            r[0].push(x.score);
            r[1].push(y.score);
            r[2].push(tb.score);
            r[3].push(tc.score);
        }
    }
    let own_confidence =
        |side: &Side<'_>| swap::suite_thresholds(side.summary, student, suite).confidence;
    let baseline_retention =
        sides
            .baseline
            .retention(&r[2], &r[0], own_confidence(&sides.baseline))?;
    let candidate_retention =
        sides
            .candidate
            .retention(&r[3], &r[1], own_confidence(&sides.candidate))?;
    let retention_change =
        if baseline_retention.retention.is_some() && candidate_retention.retention.is_some() {
            statistics::retention_change(
                &Series {
                    baseline: &r[0],
                    candidate: &r[1],
                },
                &r[2],
                &r[3],
                &boot,
            )?
        } else {
            None
        };
    let accuracy_change = statistics::accuracy_change(
        &Series {
            baseline: &b_scores,
            candidate: &c_scores,
        },
        &boot,
    )?;
    let method = sides.candidate.summary.statistics.interval;
    let ratio = decision::accuracy_ratio(&b_scores, &c_scores, method, &boot)?;
    // Not measurable by the gate's rule when the baseline, in the teacher's
    // place, got fewer than the floor right: then no number either.
    let measured = ratio
        .measured()
        .filter(|e| e.teacher_correct >= thresholds.min_teacher_correct as f64)
        .cloned();
    let own_gate = sides
        .candidate
        .summary
        .gates
        .iter()
        .find(|g| g.student == student && g.suite == suite);
    let decided = decision::decide(
        &thresholds,
        ratio,
        own_gate.map(|g| decision::OwnGate {
            gate: g,
            retention: candidate_retention,
        }),
    )?;
    Ok(SuiteChange {
        suite: suite.to_string(),
        categories: Vec::new(),
        baseline_items: count_in(suite, b),
        candidate_items: count_in(suite, c),
        matched: matched.len(),
        baseline_accuracy: b_scores.iter().sum::<f64>() / n,
        candidate_accuracy: c_scores.iter().sum::<f64>() / n,
        accuracy_change,
        retention_items: r[0].len(),
        baseline_retention,
        candidate_retention,
        retention_change,
        ratio: measured.as_ref().map(|e| e.point),
        ratio_lower: measured.as_ref().map(|e| e.lower_bound),
        min_retention: thresholds.min_retention,
        confidence: thresholds.confidence,
        interval: method,
        changes: score_changes(&b_scores, &c_scores)?,
        baseline_verdict: sides.baseline.verdict(student, suite),
        candidate_verdict: sides.candidate.verdict(student, suite),
        baseline: operating(matched.iter().map(|(_, x, _)| *x))?,
        candidate: operating(matched.iter().map(|(_, _, y)| *y))?,
        decision: decided,
    })
}

/// Items down and up, and McNemar when every score is pass/fail.
fn score_changes(baseline: &[f64], candidate: &[f64]) -> Result<ScoreChanges, CompareError> {
    let pairs = || baseline.iter().zip(candidate);
    let count = |f: fn(&f64, &f64) -> bool| pairs().filter(|(b, c)| f(b, c)).count() as u64;
    let pass_fail = baseline
        .iter()
        .chain(candidate)
        .all(|&x| x == 0.0 || x == 1.0);
    let mcnemar_p = if pass_fail {
        let right = |v: &[f64]| v.iter().map(|&x| x == 1.0).collect::<Vec<bool>>();
        Some(stats::mcnemar_exact(&right(baseline), &right(candidate))?.p_value)
    } else {
        None
    };
    Ok(ScoreChanges {
        down: count(|b, c| c < b),
        up: count(|b, c| c > b),
        mcnemar_p,
    })
}

/// Latency percentiles and cost per 1,000 of some items.
fn operating<'a>(items: impl Iterator<Item = &'a ItemScore>) -> Result<Operating, CompareError> {
    let mut latencies = Vec::new();
    let mut cost = 0.0;
    let mut n = 0usize;
    let mut recorded = false;
    for i in items {
        latencies.extend_from_slice(&i.latencies_ms);
        cost += i.cost;
        n += 1;
        recorded |= i.recorded_latency;
    }
    let l = if latencies.is_empty() {
        None
    } else {
        Some(stats::summarize(&latencies)?)
    };
    Ok(Operating {
        p50_ms: l.map(|l| l.p50),
        p95_ms: l.map(|l| l.p95),
        cost_per_1k: crate::cost::per_1k(cost, n),
        recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_changes_count_partial_credit_and_test_only_pass_fail() {
        // 0.5 -> 1.0 went up and 0.25 -> 0.0 down, though no item went from
        // fully right to wrong or back: counted, and no McNemar.
        let c = score_changes(&[0.5, 1.0, 0.0, 0.25], &[1.0, 1.0, 0.0, 0.0]).unwrap();
        assert_eq!((c.down, c.up, c.mcnemar_p), (1, 1, None));
        // Pass/fail: 3 lower, 1 higher. Exact two-sided McNemar p =
        // scipy.stats.binomtest(1, 4, 0.5).pvalue = 2 * 5/16 = 0.625.
        let c = score_changes(
            &[1.0, 1.0, 1.0, 0.0, 1.0, 0.0],
            &[0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        )
        .unwrap();
        assert_eq!((c.down, c.up), (3, 1));
        assert!((c.mcnemar_p.unwrap() - 0.625).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn the_floor_is_the_summarys_or_else_the_unchanged_configs() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gate.toml");
        let text = "[run]\nmin_teacher_correct = 3\n";
        std::fs::write(&config, text).unwrap();
        std::fs::write(
            dir.path().join("run.json"),
            serde_json::to_string(&RunManifest {
                config_sha256: crate::fingerprint::sha256_hex(text.as_bytes()),
                config: config.clone(),
                shard: None,
            })
            .unwrap(),
        )
        .unwrap();
        let mut summary = crate::report::tests::bare_summary();
        summary.config_sha256 = crate::fingerprint::sha256_hex(text.as_bytes());
        let floor = TeacherFloor::of_run(dir.path(), &summary);
        assert_eq!((floor.min_teacher_correct, floor.assumed), (3, false));
        // Without the key: the config's default.
        summary.config_sha256 = crate::fingerprint::sha256_hex(b"[run]\n");
        std::fs::write(&config, "[run]\n").unwrap();
        let floor = TeacherFloor::of_run(dir.path(), &summary);
        assert_eq!((floor.min_teacher_correct, floor.assumed), (10, false));
        // Changed since the run: the default, marked as assumed.
        std::fs::write(&config, text).unwrap();
        let floor = TeacherFloor::of_run(dir.path(), &summary);
        assert!(
            floor.assumed && floor.source.contains("changed"),
            "{floor:?}"
        );
        assert_eq!(floor.min_teacher_correct, gate::DEFAULT_MIN_TEACHER_CORRECT);
        // A summary that records the floor is its own source, config or not.
        summary.statistics.min_teacher_correct = Some(4);
        std::fs::remove_file(&config).unwrap();
        let floor = TeacherFloor::of_run(dir.path(), &summary);
        assert_eq!((floor.min_teacher_correct, floor.assumed), (4, false));
        assert!(floor.source.ends_with("summary.json"), "{floor:?}");
    }
}
