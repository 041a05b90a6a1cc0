//! `distill-gate compare`: may a candidate run's students replace the
//! baseline run's?
//!
//! Both runs are read from their directories (`summary.json` and the
//! journal `results.jsonl`); no model runs. Students are matched by name
//! and items by suite and task id ([`pairing`]). Per student and suite:
//! accuracy and retention of both runs on the matched items with a paired
//! interval of the change ([`statistics`]), McNemar's exact test on the
//! items whose outcome changed, latency and cost on the matched items, and
//! a decision by the gate's interval rule with the baseline in the
//! teacher's place ([`decision`]). The candidate run's swap plan
//! ([`swap`]) says which categories each candidate may take over from the
//! teacher. [`render`] writes it for a terminal, Markdown and JSON.

pub mod decision;
pub mod pairing;
pub mod render;
pub mod statistics;
pub mod swap;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gate::GateError;
use crate::run::journal::{self, JournalEntry, Role};
use crate::stats::{self, StatsError};
use crate::summary::Summary;

use decision::{Decided, Decision};
use pairing::{ItemKey, ItemScore, count_in, item_scores, pairs};
use statistics::{Change, Series};
use swap::SwapPlan;

/// A run read from its directory.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// Its `summary.json`.
    pub summary: Summary,
    /// Its journal, read without the answer texts.
    pub entries: Vec<JournalEntry>,
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
}

/// McNemar's exact test on the matched items: baseline against candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChangedItems {
    /// Items only the baseline got right.
    pub baseline_only: u64,
    /// Items only the candidate got right.
    pub candidate_only: u64,
    /// Two-sided exact p-value (1 when no item changed).
    pub p_value: f64,
}

/// One student on one suite, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteChange {
    /// Suite name.
    pub suite: String,
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
    pub baseline_retention: Option<f64>,
    /// Candidate retention against its run's teacher.
    pub candidate_retention: Option<f64>,
    /// Candidate minus baseline retention, with a paired interval.
    pub retention_change: Option<Change>,
    /// Candidate / baseline accuracy (the decision's ratio), when measurable.
    pub ratio: Option<f64>,
    /// Its one-sided lower bound at `confidence`.
    pub ratio_lower: Option<f64>,
    /// The minimum ratio applied.
    pub min_retention: f64,
    /// The confidence applied.
    pub confidence: f64,
    /// McNemar on the matched items.
    pub changed: ChangedItems,
    /// The baseline's latency and cost.
    pub baseline: Operating,
    /// The candidate's.
    pub candidate: Operating,
    /// The decision on this suite.
    pub decision: Decided,
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
        let mut suites = Vec::new();
        for suite in &c_suites {
            suites.push(suite_change(&sides, student, suite, opts)?);
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
    };
    Ok(CompareReport {
        baseline: run_ref(baseline),
        candidate: run_ref(candidate),
        students: out,
        unmatched_students,
        swap_plans: swap::swap_plans(&candidate.summary, &candidate.entries)?,
        exit_code: i32::from(!approved),
    })
}

type Items = BTreeMap<String, BTreeMap<ItemKey, ItemScore>>;

/// One run's summary and item scores.
struct Side<'a> {
    summary: &'a Summary,
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
            items,
            teacher,
        }
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
    let ratio_of = |s: &[f64], t: &[f64]| {
        let ts: f64 = t.iter().sum();
        (ts > 0.0).then(|| s.iter().sum::<f64>() / ts)
    };
    let retention_change = statistics::retention_change(
        &Series {
            baseline: &r[0],
            candidate: &r[1],
        },
        &r[2],
        &r[3],
        &boot,
    )?;
    let accuracy_change = statistics::accuracy_change(
        &Series {
            baseline: &b_scores,
            candidate: &c_scores,
        },
        &boot,
    )?;
    let right = |v: &[f64]| v.iter().map(|&x| x >= 1.0).collect::<Vec<bool>>();
    let mc = stats::mcnemar_exact(&right(&b_scores), &right(&c_scores))?;
    let ratio = decision::accuracy_ratio(&b_scores, &c_scores, &boot)?;
    let measured = ratio.measured().cloned();
    let own_gate = sides
        .candidate
        .summary
        .gates
        .iter()
        .find(|g| g.student == student && g.suite == suite);
    let decided = decision::decide(&thresholds, ratio, own_gate)?;
    Ok(SuiteChange {
        suite: suite.to_string(),
        baseline_items: count_in(suite, b),
        candidate_items: count_in(suite, c),
        matched: matched.len(),
        baseline_accuracy: b_scores.iter().sum::<f64>() / n,
        candidate_accuracy: c_scores.iter().sum::<f64>() / n,
        accuracy_change,
        retention_items: r[0].len(),
        baseline_retention: ratio_of(&r[0], &r[2]),
        candidate_retention: ratio_of(&r[1], &r[3]),
        retention_change,
        ratio: measured.as_ref().map(|e| e.point),
        ratio_lower: measured.as_ref().map(|e| e.lower_bound),
        min_retention: thresholds.min_retention,
        confidence: thresholds.confidence,
        changed: ChangedItems {
            baseline_only: mc.teacher_only,
            candidate_only: mc.student_only,
            p_value: mc.p_value,
        },
        baseline: operating(matched.iter().map(|(_, x, _)| *x))?,
        candidate: operating(matched.iter().map(|(_, _, y)| *y))?,
        decision: decided,
    })
}

/// Latency percentiles and cost per 1,000 of some items.
fn operating<'a>(items: impl Iterator<Item = &'a ItemScore>) -> Result<Operating, CompareError> {
    let mut latencies = Vec::new();
    let mut cost = 0.0;
    let mut n = 0usize;
    for i in items {
        latencies.extend_from_slice(&i.latencies_ms);
        cost += i.cost;
        n += 1;
    }
    let l = if latencies.is_empty() {
        None
    } else {
        Some(stats::summarize(&latencies)?)
    };
    Ok(Operating {
        p50_ms: l.map(|l| l.p50),
        p95_ms: l.map(|l| l.p95),
        cost_per_1k: if n == 0 {
            0.0
        } else {
            cost * 1000.0 / n as f64
        },
    })
}
