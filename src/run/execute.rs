//! Executing a plan: every model answers every planned task not yet in the
//! journal; every answer is scored and journaled before the next batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{ModelSource, ModelSpec};
use crate::cost::request_cost;
use crate::diagnostics::{Problem, Problems};
use crate::model::answers::AnswersModel;
use crate::model::batching::request_batches;
use crate::model::custom::CustomModels;
use crate::model::http::HttpModel;
use crate::model::http::budget::Budget;
use crate::model::replay::ReplayModel;
use crate::model::transcript::key_of;
use crate::model::{Completion, Model, ModelError};
use crate::run::identity::{ModelId, ModelIds, SuppliedId, answers_id};
use crate::run::in_flight::{self, InFlight};
use crate::run::journal::{Journal, JournalEntry, Role, WorkKey, WorkStatus};
use crate::run::plan::{Plan, PlannedItem, PlannedSuite};
use crate::run::progress::Progress;
use crate::run::timings::Timings;

/// Why a run could not be evaluated (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Problems in the config, suites, transcripts or journal.
    #[error("{0}")]
    Input(#[from] Problems),
    /// A model could not be opened or stopped answering for good.
    #[error("{0}")]
    Model(String),
    /// Reading or writing the run directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Opens the model a config entry names; API models spend from `budget`.
/// With `expected`, an answers file must still be the one that identity
/// was computed from (an answer is journaled under that identity). A
/// `kind = "custom"` entry cannot be opened: a program supplies its model
/// ([`execute`]'s `custom`).
pub fn open_model(
    spec: &ModelSpec,
    budget: &Arc<Budget>,
    expected: Option<&ModelId>,
) -> Result<Box<dyn Model>, RunError> {
    match &spec.source {
        ModelSource::Http(h) => Ok(Box::new(
            HttpModel::open(&spec.name, h, &spec.price, Arc::clone(budget))
                .map_err(|e| RunError::Model(e.to_string()))?,
        )),
        ModelSource::Replay { transcript } => {
            Ok(Box::new(ReplayModel::open(&spec.name, transcript)?))
        }
        ModelSource::Answers { answers } => {
            let model = AnswersModel::open(&spec.name, answers)?;
            if let Some(id) = expected
                && answers_id(model.sha256()) != *id
            {
                return Err(RunError::Model(format!(
                    "{}: answers file {} changed during the run; run again to use it as it is now",
                    spec.name,
                    answers.display()
                )));
            }
            Ok(Box::new(model))
        }
        ModelSource::Local {
            path,
            backend,
            batch_size,
        } => {
            let model = crate::model::open::open_local(
                &spec.name,
                path,
                *backend,
                batch_size.unwrap_or(crate::model::local::DEFAULT_BATCH_SIZE),
            )
            .map_err(|e| RunError::Model(format!("{}: {e}", spec.name)))?;
            Ok(Box::new(model))
        }
        ModelSource::Custom => Err(RunError::Model(format!(
            "{}: {}",
            spec.name,
            crate::model::open::not_supplied(&spec.name)
        ))),
    }
}

/// The model a program supplied for the `kind = "custom"` entry `spec`,
/// taken out of `custom`; it must still say the identity `expected` was
/// computed from (its answers are journaled under it).
fn take_custom(
    spec: &ModelSpec,
    custom: &mut CustomModels,
    expected: &ModelId,
) -> Result<Box<dyn Model>, RunError> {
    let model = custom.take(&spec.name).ok_or_else(|| {
        RunError::Model(format!(
            "{}: {}",
            spec.name,
            crate::model::open::not_supplied(&spec.name)
        ))
    })?;
    if SuppliedId::of(&model.identity()).id != *expected {
        return Err(RunError::Model(format!(
            "{}: the supplied model's identity() changed during the run (it must describe \
             the model that answers, and stay the same while it does)",
            spec.name
        )));
    }
    Ok(model)
}

/// For a replay model, every planned request must be in its transcript;
/// each missing one is reported at the task's `file:line`. For an answers
/// file model, every planned item must have an answer and every answer an
/// item ([`crate::run::answers::problems_for`]).
pub fn check_coverage(plan: &Plan, spec: &ModelSpec) -> Result<(), Problems> {
    let transcript = match &spec.source {
        ModelSource::Replay { transcript } => transcript,
        ModelSource::Answers { answers } => {
            let problems = crate::run::answers::problems_for(
                &crate::model::answers::read(answers)?,
                plan,
                spec,
            );
            return if problems.is_empty() {
                Ok(())
            } else {
                Err(Problems(problems))
            };
        }
        _ => return Ok(()),
    };
    let t = crate::model::transcript::read_shared(transcript)?;
    let mut problems = Vec::new();
    for suite in &plan.suites {
        for item in &suite.items {
            if !spec.takes(suite.name(), &item.task.category) {
                continue;
            }
            let requests = item.requests_for(spec.few_shot);
            if let Some(missing) = requests.iter().position(|r| !t.contains(r)) {
                let which = if requests.len() > 1 {
                    format!(" (sample {missing} of {})", requests.len())
                } else {
                    String::new()
                };
                problems.push(Problem::new(
                    &suite.file,
                    item.line,
                    "id",
                    format!(
                        "task {:?}{which}: no completion for this prompt and these settings in transcript {} of model {:?}",
                        item.task.id,
                        transcript.display(),
                        spec.name
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// Dollars already spent on API calls by the journaled part of a run:
/// the cost of every answer an HTTP model gave live (cached and replayed
/// answers cost nothing now).
fn api_spend(plan: &Plan, journal: &Journal) -> f64 {
    plan.config
        .models()
        .filter(|m| matches!(m.source, ModelSource::Http(_)))
        .map(|m| journal.live_cost(&m.name))
        .sum()
}

/// Runs every model over every planned item not yet journaled.
///
/// Models are asked on this thread, one batch after another; a second
/// thread scores each batch and journals it, in order, while the models go
/// on (a replayed teacher's answers are scored while the first student
/// runs). A killed run redoes what was answered but not yet journaled.
/// Where the time went is added to `timings`. A journaled answer counts as
/// done only when it is the answer of the model with identity `ids` gives
/// it now to the request the plan asks now; any other is asked again.
/// The models of `kind = "custom"` entries are taken from `custom`.
pub fn execute(
    plan: &Plan,
    ids: &ModelIds,
    journal: &mut Journal,
    progress: &mut Progress,
    timings: &mut Timings,
    custom: &mut CustomModels,
) -> Result<(), RunError> {
    let run = &plan.config.run;
    let budget = Arc::new(Budget::of_run(
        run.max_cost,
        run.max_cost_from_flag,
        api_spend(plan, journal),
    ));
    let mut models = Vec::new();
    for (role, spec) in std::iter::once((Role::Teacher, &plan.config.teacher))
        .chain(plan.config.students.iter().map(|s| (Role::Student, s)))
    {
        let id = ids
            .get(&spec.name)
            .ok_or_else(|| RunError::Model(format!("{}: no model identity computed", spec.name)))?;
        let pending = pending_work(plan, spec, id, journal);
        models.push((role, spec, id, pending));
    }
    let (to_scorer, inbox) = std::sync::mpsc::channel();
    let in_flight = InFlight::new(in_flight::MAX_BYTES);
    std::thread::scope(|scope| {
        let in_flight = &in_flight;
        let scorer = scope.spawn(move || {
            let _closer = in_flight.closer();
            score_and_journal(&inbox, in_flight, journal, progress)
        });
        let asked = ask_models(
            plan, &models, &budget, &to_scorer, in_flight, timings, custom,
        );
        drop(to_scorer);
        let waiting = Instant::now();
        let scored = scorer
            .join()
            .map_err(|_| RunError::Model("the scoring thread panicked".into()))?;
        timings.scoring_secs += waiting.elapsed().as_secs_f64();
        let busy = scored?;
        timings.scoring_busy_secs += busy;
        asked
    })
}

/// The items `spec` (identity `id`) still has to answer, suite by suite,
/// each suite's in the order of their prompts: prompts sharing a prefix (a
/// category's instructions and few-shot examples) are asked together, so a
/// local model prefills the prefix once per batch and an API's prompt cache
/// sees it repeated back to back. Items journaled by another identity of
/// the model or for another request are pending again and counted.
fn pending_work<'a>(
    plan: &'a Plan,
    spec: &ModelSpec,
    id: &ModelId,
    journal: &Journal,
) -> Pending<'a> {
    let mut pending = Pending::default();
    for suite in &plan.suites {
        for (item, n) in suite.asking_order(spec) {
            let Some(request) = item.requests_for(spec.few_shot).get(n as usize) else {
                continue;
            };
            let key = work_key(spec, suite, item, n);
            let prior_errors = match journal.status(&key, &id.0, &key_of(request)) {
                WorkStatus::Done => continue,
                WorkStatus::Stale => {
                    pending.stale += 1;
                    0
                }
                WorkStatus::Errored { attempts } => {
                    pending.errored += 1;
                    attempts
                }
                WorkStatus::Missing => 0,
            };
            pending.works.push(Work {
                suite,
                item,
                sample: n,
                prior_errors,
            });
        }
    }
    pending
}

/// What a model still has to answer.
#[derive(Default)]
struct Pending<'a> {
    /// Its units of work, in asking order.
    works: Vec<Work<'a>>,
    /// How many of them were journaled by another identity of the model
    /// or for another request, and are asked again.
    stale: usize,
    /// How many of them were journaled as errors of this model, and are
    /// asked again.
    errored: usize,
}

/// What the asking thread tells the scoring thread, in order.
enum ToScorer<'a> {
    /// A model starts: `total` items, `already` of them journaled before,
    /// `stale` journaled answers of another identity or request and
    /// `errored` journaled errors asked again.
    Start {
        model: &'a str,
        total: usize,
        already: usize,
        stale: usize,
        errored: usize,
    },
    /// A batch of answers to score and journal.
    Batch {
        spec: &'a ModelSpec,
        id: &'a ModelId,
        role: Role,
        works: Vec<Work<'a>>,
        answers: Vec<Result<Completion, ModelError>>,
        /// What the answers weigh, counted in [`InFlight`].
        bytes: usize,
    },
    /// The model's last batch was sent.
    Finish,
}

/// Asks each model for its pending items, batch by batch, and hands the
/// answers to the scoring thread. Stops early (without an error of its
/// own) when the scoring thread has stopped.
fn ask_models<'a>(
    plan: &Plan,
    models: &'a [(Role, &'a ModelSpec, &'a ModelId, Pending<'a>)],
    budget: &Arc<Budget>,
    to_scorer: &std::sync::mpsc::Sender<ToScorer<'a>>,
    in_flight: &InFlight,
    timings: &mut Timings,
    custom: &mut CustomModels,
) -> Result<(), RunError> {
    for (role, spec, id, pending) in models {
        let total = plan.work_of(spec);
        let start = ToScorer::Start {
            model: &spec.name,
            total,
            already: total - pending.works.len(),
            stale: pending.stale,
            errored: pending.errored,
        };
        let pending = &pending.works;
        if to_scorer.send(start).is_err() {
            return Ok(());
        }
        if pending.is_empty() {
            continue;
        }
        let loading = Instant::now();
        let mut model = match spec.source {
            ModelSource::Custom => take_custom(spec, custom, id)?,
            _ => open_model(spec, budget, Some(id))?,
        };
        timings.model_load_secs += loading.elapsed().as_secs_f64();
        let batches = request_batches(
            pending,
            |w| w.item.prompt(spec.few_shot, w.sample),
            model.preferred_batch_size(),
        );
        for chunk in batches.into_iter().map(|range| &pending[range]) {
            let requests: Vec<_> = chunk
                .iter()
                .filter_map(|w| {
                    let requests = w.item.requests_for(spec.few_shot);
                    requests.get(w.sample as usize).cloned()
                })
                .collect();
            let asking = Instant::now();
            let answers = model.complete_batch(&requests);
            timings.add_model(&spec.name, asking.elapsed());
            if answers.len() != requests.len() {
                return Err(RunError::Model(format!(
                    "{}: backend returned {} answers for {} requests",
                    spec.name,
                    answers.len(),
                    requests.len()
                )));
            }
            let mut fatal = None;
            let mut answered = Vec::with_capacity(chunk.len());
            for (work, answer) in chunk.iter().zip(answers) {
                match answer {
                    Err(ModelError::Fatal(msg)) => {
                        fatal.get_or_insert(msg);
                    }
                    Err(ModelError::Stopped(_)) => {}
                    answer => answered.push((*work, answer)),
                }
            }
            let (works, answers): (Vec<Work>, Vec<_>) = answered.into_iter().unzip();
            let bytes = in_flight::answer_bytes(&answers);
            if !in_flight.acquire(bytes) {
                return Ok(());
            }
            let batch = ToScorer::Batch {
                spec,
                id,
                role: *role,
                works,
                answers,
                bytes,
            };
            if to_scorer.send(batch).is_err() {
                return Ok(());
            }
            if let Some(msg) = fatal {
                return Err(RunError::Model(format!(
                    "{} stopped the run: {msg} (results answered so far are saved in the journal)",
                    spec.name,
                )));
            }
        }
        if to_scorer.send(ToScorer::Finish).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The scoring thread: scores each batch, journals it and reports
/// progress, until the asking thread hangs up. Returns the seconds it
/// spent working.
fn score_and_journal(
    inbox: &std::sync::mpsc::Receiver<ToScorer<'_>>,
    in_flight: &InFlight,
    journal: &mut Journal,
    progress: &mut Progress,
) -> Result<f64, RunError> {
    let mut busy = 0.0;
    for message in inbox {
        let working = Instant::now();
        match message {
            ToScorer::Start {
                model,
                total,
                already,
                stale,
                errored,
            } => {
                if stale > 0 {
                    // Always said, --quiet or not: the journal held answers
                    // that are not this model's answers to these requests.
                    eprintln!(
                        "{model}: {stale} journaled answer(s) were given by another model \
                         (its checkpoint, transcript, backend or settings changed) or to \
                         another request (the suite's prompt or settings changed): asking again"
                    );
                }
                if errored > 0 {
                    eprintln!(
                        "{model}: {errored} item(s) journaled as errors (the model call failed): \
                         asking again (the failed attempts still count in the error rate)"
                    );
                }
                progress.start_model(model, total, already)
            }
            ToScorer::Batch {
                spec,
                id,
                role,
                works,
                answers,
                bytes,
            } => {
                let entries = journal_entries(spec, id, role, &works, answers);
                in_flight.release(bytes);
                for entry in &entries {
                    progress.item_done(entry.error.is_some(), entry.cost);
                }
                journal.append_all(entries).map_err(|source| RunError::Io {
                    path: journal.path().to_path_buf(),
                    source,
                })?;
            }
            ToScorer::Finish => progress.finish_model(),
        }
        busy += working.elapsed().as_secs_f64();
    }
    Ok(busy)
}

/// One unit of work: an item of a suite, and which of its samples.
#[derive(Clone, Copy)]
struct Work<'a> {
    suite: &'a PlannedSuite,
    item: &'a PlannedItem,
    sample: u32,
    /// Errored attempts of this model at it already journaled.
    prior_errors: u32,
}

fn work_key(spec: &ModelSpec, suite: &PlannedSuite, item: &PlannedItem, sample: u32) -> WorkKey {
    WorkKey {
        model: spec.name.clone(),
        suite: suite.name().to_string(),
        task_id: item.task.id.clone(),
        sample,
    }
}

/// Scores a batch of answers (in parallel, one thread per core: a scorer may
/// run code in a sandbox) and builds their journal lines, in order.
/// `answers` may be shorter than `items`; the extra items are skipped.
fn journal_entries(
    spec: &ModelSpec,
    id: &ModelId,
    role: Role,
    items: &[Work],
    answers: Vec<Result<Completion, ModelError>>,
) -> Vec<JournalEntry> {
    let work: Vec<_> = items.iter().zip(answers).collect();
    crate::parallel::map_in_order(work, |(w, answer)| journal_entry(spec, id, role, w, answer))
}

/// Scores one answer (a sample of an item) of the model `spec` with
/// identity `id` and builds its journal line, bound to that identity and
/// to the request answered.
fn journal_entry(
    spec: &ModelSpec,
    id: &ModelId,
    role: Role,
    work: &Work,
    answer: Result<Completion, ModelError>,
) -> JournalEntry {
    let Work {
        suite,
        item,
        sample,
        prior_errors,
    } = *work;
    let base = JournalEntry {
        sample,
        model_id: Some(id.0.clone()),
        request: item
            .requests_for(spec.few_shot)
            .get(sample as usize)
            .map(key_of),
        prior_errors,
        ..JournalEntry::new(
            spec.name.clone(),
            role,
            suite.name().to_string(),
            item.task.id.clone(),
            item.task.category.clone(),
        )
    };
    match answer {
        Ok(c) => {
            let score = suite.suite.score(&item.task, &c.text);
            JournalEntry {
                output: Some(c.text.clone()),
                score: score.value,
                detail: score.detail,
                extracted: score.extracted,
                usage: c.usage,
                cost: request_cost(&c.usage, c.latency.as_ref(), &spec.price),
                latency: c.latency,
                finish: c.finish,
                ..base
            }
        }
        Err(e) => JournalEntry {
            detail: "model call failed".into(),
            error: Some(e.to_string()),
            ..base
        },
    }
}

/// `run.json`: what the journal in a run directory belongs to. A journal is
/// only resumed under the same config (by content hash).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RunManifest {
    /// SHA-256 of the config file.
    pub config_sha256: String,
    /// The config file.
    pub config: PathBuf,
    /// When the run is one shard of a larger one (`run --shard i/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::run::shard::Shard>,
}

/// Prepares the run directory: checks or writes `run.json`; `fresh` discards
/// an earlier journal.
pub fn prepare_run_dir(dir: &Path, manifest: &RunManifest, fresh: bool) -> Result<(), RunError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let manifest_path = dir.join("run.json");
    let journal_path = dir.join("results.jsonl");
    if fresh {
        for p in [&journal_path, &manifest_path] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RunError::Io {
                        path: p.clone(),
                        source: e,
                    });
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(&manifest_path) {
        let old: RunManifest = serde_json::from_str(&text).map_err(|e| {
            RunError::Input(Problems::one(Problem::new(
                &manifest_path,
                e.line(),
                "",
                e.to_string(),
            )))
        })?;
        if old.config_sha256 != manifest.config_sha256 {
            return Err(RunError::Input(Problems::one(Problem::new(
                &manifest_path,
                0,
                "config_sha256",
                format!(
                    "this run directory holds results of a different config ({}); \
                     use --fresh to start over or set another [run] name",
                    old.config.display()
                ),
            ))));
        }
        if old.shard != manifest.shard {
            let name = |s: Option<crate::run::shard::Shard>| {
                s.map_or_else(|| "the whole run".to_string(), |s| format!("shard {s}"))
            };
            return Err(RunError::Input(Problems::one(Problem::new(
                &manifest_path,
                0,
                "shard",
                format!(
                    "this run directory holds {}, not {}; use --fresh to start over",
                    name(old.shard),
                    name(manifest.shard)
                ),
            ))));
        }
        return Ok(());
    }
    let text =
        serde_json::to_string_pretty(manifest).map_err(|e| RunError::Model(e.to_string()))?;
    // Written aside and renamed, so a run killed here never leaves a torn
    // run.json that would stop the next attempt from resuming.
    let partial = dir.join("run.json.partial");
    std::fs::write(&partial, text + "\n").map_err(io(&partial))?;
    std::fs::rename(&partial, &manifest_path).map_err(io(&manifest_path))
}
