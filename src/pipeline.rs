//! The stages end to end, one function per command that evaluates a run:
//! [`run`] (prepare -> execute -> evaluate -> report), [`rerender`]
//! (evaluate -> report from a run's journal) and [`merge`] (shard runs into
//! one, then evaluate -> report). Each returns the summary; saying it is
//! the caller's. [`run_with_models`] is [`run`] for a program that supplies
//! models of its own (`kind = "custom"` entries: any [`Model`], such as a
//! burn module of another architecture than the shipped decoder).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config;
use crate::diagnostics::Problems;
use crate::fingerprint::sha256_hex;
use crate::jsonl::{self, JsonFileError};
#[cfg(doc)]
use crate::model::Model;
use crate::model::custom::CustomModels;
use crate::model::transcript;
use crate::report::{self, ReportError};
use crate::run::execute::{self, RunError, RunManifest};
use crate::run::identity::{self, ModelIds, Supplied, SuppliedId};
use crate::run::journal::{self, Journal};
use crate::run::merge::{self, MergeError};
use crate::run::plan::{self, Plan};
use crate::run::prepare::{Prepared, prepare};
use crate::run::progress::Progress;
use crate::run::shard::Shard;
use crate::run::summarize::{SummarizeError, summarize};
use crate::run::timings::Timings;
use crate::summary::{ModelInfo, Summary};

/// Why a run, its re-report or a merge could not finish (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Preparing or executing the run failed, or its journal or models'
    /// identities are not usable.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The statistics rejected their input.
    #[error(transparent)]
    Summarize(#[from] SummarizeError),
    /// A report could not be written.
    #[error("writing reports in {}", dir.display())]
    Reports {
        /// The run directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: ReportError,
    },
    /// A directory given as a run holds no readable `run.json`.
    #[error(transparent)]
    Manifest(#[from] JsonFileError),
    /// The config changed since the run, so its journal no longer matches.
    #[error(
        "{} changed since this run ({}): its journal no longer matches; re-run it",
        config.display(),
        run_dir.display()
    )]
    ConfigChanged {
        /// The config `run.json` names.
        config: PathBuf,
        /// The run directory.
        run_dir: PathBuf,
    },
    /// The shards cannot be merged.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// The merged run's files could not be written.
    #[error(transparent)]
    Write(#[from] ReportError),
    /// A merged journal line or manifest could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<Problems> for PipelineError {
    fn from(p: Problems) -> Self {
        PipelineError::Run(RunError::Input(p))
    }
}

/// A run evaluated, its reports written.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// What every report shows; its `exit_code` is the run's.
    pub summary: Summary,
    /// Where the reports are.
    pub run_dir: PathBuf,
    /// Where the time went (statistics and reports only, but for [`run`]).
    pub timings: Timings,
}

/// What `distill-gate run` is asked.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// The gate config.
    pub config: &'a Path,
    /// Discard an earlier journal.
    pub fresh: bool,
    /// Show progress on stderr.
    pub show_progress: bool,
    /// Overrides `[run] max_cost` without changing the config (so the
    /// journal still resumes).
    pub max_cost: Option<f64>,
    /// Only this slice of the items, into the run directory's `shard-i-of-N/`.
    pub shard: Option<Shard>,
}

/// `distill-gate run`: prepares the plan, asks every model what the
/// journal lacks, evaluates and writes every report and `timings.json`.
/// A config with a `kind = "custom"` entry is refused (exit code 2, at the
/// entry's line): see [`run_with_models`].
pub fn run(o: &RunOptions) -> Result<Evaluated, PipelineError> {
    run_with_models(o, CustomModels::new())
}

/// [`run`], with the models of the config's `kind = "custom"` entries
/// supplied by the caller: the one entry point that gates any [`Model`]
/// (a burn module of the caller's own architecture, a model behind a
/// client of its own) with everything else unchanged: the config's suites,
/// thresholds and run directory, the journal and resume, the statistics,
/// every report and the swap plan.
///
/// `models` holds one model per `kind = "custom"` entry, by entry name
/// (`[[students]] name = "mine"` and `kind = "custom"`, no other key of
/// its own; `price`, `gate`, `categories` and `few_shot` as for any
/// model). Every report names it by its entry name. Its journaled answers
/// are bound to its [`Model::identity`] (backend, name and fingerprint):
/// a resumed run, `report`, `merge` and `compare` reuse an answer only
/// while all three are the same, so the fingerprint must change whenever
/// the model's answers may (e.g. the SHA-256 of its weights, with a
/// version of its code); an empty one is refused.
///
/// Refused with the config's problems (exit code 2) before any model
/// runs: an entry without a supplied model, a model supplied for a name
/// that is not a `kind = "custom"` entry, an empty fingerprint. A
/// supplied model is asked only for what the journal lacks, in batches of
/// at most its [`Model::preferred_batch_size`], on the calling thread.
///
/// ```no_run
/// use std::path::Path;
/// use distill_gate::model::custom::CustomModels;
/// use distill_gate::pipeline::{self, RunOptions};
/// use distill_gate::model::{local::DEFAULT_BATCH_SIZE, open::open_checkpoint};
/// let options = RunOptions {
///     config: Path::new("gate.toml"),
///     fresh: false,
///     show_progress: true,
///     max_cost: None,
///     shard: None,
/// };
/// // Any `Model`; here a checkpoint the shipped runtime loads, for brevity.
/// let student = open_checkpoint(Path::new("student.gguf"), Default::default(), DEFAULT_BATCH_SIZE)?;
/// let done = pipeline::run_with_models(&options, CustomModels::new().with("mine", student))?;
/// println!("exit code {}", done.summary.exit_code);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_with_models(
    o: &RunOptions,
    mut models: CustomModels,
) -> Result<Evaluated, PipelineError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let identities = models.identities();
    let fingerprints: BTreeMap<String, String> = identities
        .iter()
        .map(|(name, i)| (name.clone(), i.fingerprint.clone()))
        .collect();
    let supplied: Supplied = identities
        .iter()
        .map(|(name, i)| (name.clone(), SuppliedId::of(i)))
        .collect();
    let Prepared {
        mut plan,
        config_sha256,
    } = prepare(o.config, &fingerprints)?;
    if let Some(c) = o.max_cost {
        plan.config.run.max_cost = Some(c);
        plan.config.run.max_cost_from_flag = true;
    }
    let (plan, run_dir) = match o.shard {
        Some(s) => {
            let dir = plan.config.run_dir().join(s.dir_name());
            (s.apply(plan), dir)
        }
        None => {
            let dir = plan.config.run_dir();
            (plan, dir)
        }
    };
    let manifest = RunManifest {
        config_sha256: config_sha256.clone(),
        config: std::path::absolute(o.config).unwrap_or_else(|_| o.config.to_path_buf()),
        shard: o.shard,
    };
    execute::prepare_run_dir(&run_dir, &manifest, o.fresh)?;
    let mut journal = Journal::open(&run_dir.join("results.jsonl"))?;
    let ids = ModelIds::of_plan(&plan, &supplied)?;
    let mut progress = Progress::new(o.show_progress);
    timings.setup_secs = started.elapsed().as_secs_f64();
    execute::execute(
        &plan,
        &ids,
        &mut journal,
        &mut progress,
        &mut timings,
        &mut models,
    )?;
    let models = identity::model_infos(&plan, &ids)?;
    transcript::release_shared();
    // The journal holds no lines in memory: the reports read them back, now
    // that the models (and any replayed transcripts) are gone.
    let journal_path = journal.path().to_path_buf();
    drop(journal);
    let summary = evaluate_and_report(
        &plan,
        &ids,
        &journal_path,
        &config_sha256,
        &run_dir,
        models,
        &mut timings,
    )?;
    timings.total_secs = started.elapsed().as_secs_f64();
    let timings_path = run_dir.join("timings.json");
    std::fs::write(
        &timings_path,
        serde_json::to_string_pretty(&timings)? + "\n",
    )
    .map_err(|source| RunError::Io {
        path: timings_path,
        source,
    })?;
    Ok(Evaluated {
        summary,
        run_dir,
        timings,
    })
}

/// `distill-gate report`: every report of a run (or of one shard) again,
/// from its journal, under the config its `run.json` names, which must not
/// have changed since. The models a program supplied to the run
/// ([`run_with_models`]) are not needed: their answers are checked
/// against the identities the run's `summary.json` recorded for them.
pub fn rerender(run_dir: &Path) -> Result<Evaluated, PipelineError> {
    let path = run_dir.join("run.json");
    let manifest: RunManifest = jsonl::read_json(
        &path,
        format!("{}: not a run directory", path.display()),
        format!("{}: malformed", path.display()),
    )?;
    let supplied = supplied_of_run(run_dir);
    let fingerprints = supplied
        .iter()
        .map(|(name, s)| (name.clone(), s.fingerprint.clone()))
        .collect();
    let Prepared {
        plan,
        config_sha256,
    } = prepare(&manifest.config, &fingerprints)?;
    if config_sha256 != manifest.config_sha256 {
        return Err(PipelineError::ConfigChanged {
            config: manifest.config,
            run_dir: run_dir.to_path_buf(),
        });
    }
    let plan = match manifest.shard {
        Some(s) => s.apply(plan),
        None => plan,
    };
    let ids = ModelIds::of_plan(&plan, &supplied)?;
    let models = identity::model_infos(&plan, &ids)?;
    let mut timings = Timings::default();
    let summary = evaluate_and_report(
        &plan,
        &ids,
        &run_dir.join("results.jsonl"),
        &config_sha256,
        run_dir,
        models,
        &mut timings,
    )?;
    Ok(Evaluated {
        summary,
        run_dir: run_dir.to_path_buf(),
        timings,
    })
}

/// The identities of the models a program supplied to the run in
/// `run_dir`, as its `summary.json` recorded them; none when it has no
/// readable summary (a `kind = "custom"` entry is then refused as not
/// supplied).
fn supplied_of_run(run_dir: &Path) -> Supplied {
    std::fs::read_to_string(run_dir.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Summary>(&text).ok())
        .map(|s| identity::supplied_of_run(&s.models))
        .unwrap_or_default()
}

/// Shard runs merged into one run directory, evaluated and reported.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged run.
    pub evaluated: Evaluated,
    /// How many shards were merged.
    pub shards: usize,
    /// How many journal lines the merged run holds.
    pub results: usize,
}

/// `distill-gate merge`: the shard runs in `shard_dirs` into one run
/// directory `out`, whose summary equals the unsharded run's. The config is
/// the one the shards' `run.json` names, or `config` (which must have the
/// same content) when it lives elsewhere on this machine.
pub fn merge(
    shard_dirs: &[PathBuf],
    out: &Path,
    config: Option<&Path>,
) -> Result<Merged, PipelineError> {
    let shards = shard_dirs
        .iter()
        .map(|d| merge::read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut manifest = merge::check_shards(&shards)?;
    if let Some(c) = config {
        manifest.config = std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf());
    }
    // The suites are needed (the merged summary counts every planned item);
    // the models are not: their identities come from the shards' summaries.
    let config = config::load(&manifest.config)?;
    let bytes = std::fs::read(&manifest.config).map_err(|source| RunError::Io {
        path: manifest.config.clone(),
        source,
    })?;
    if sha256_hex(&bytes) != manifest.config_sha256 {
        return Err(MergeError::ConfigDiffers {
            config: manifest.config,
        }
        .into());
    }
    let plan = plan::plan(config)?;
    let entries = merge::merge_entries(&plan, &shards)?;
    if out.join("results.jsonl").exists() {
        return Err(MergeError::JournalExists {
            dir: out.to_path_buf(),
        }
        .into());
    }
    std::fs::create_dir_all(out).map_err(|source| RunError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let manifest_text = serde_json::to_string_pretty(&manifest)? + "\n";
    report::write_atomic(&out.join("run.json"), manifest_text.as_bytes())?;
    let mut journal_text = String::new();
    for e in &entries {
        journal_text.push_str(&serde_json::to_string(e)?);
        journal_text.push('\n');
    }
    let journal_path = out.join("results.jsonl");
    report::write_atomic(&journal_path, journal_text.as_bytes())?;
    let results = entries.len();
    drop((entries, journal_text));
    let models = shards.first().map(|s| s.models.clone()).unwrap_or_default();
    // Every merged line must be the answer of the model the shards'
    // summaries name (check_shards made sure they name the same ones).
    let ids = ModelIds::from_models(&models);
    let mut timings = Timings::default();
    let summary = evaluate_and_report(
        &plan,
        &ids,
        &journal_path,
        &manifest.config_sha256,
        out,
        models,
        &mut timings,
    )?;
    Ok(Merged {
        evaluated: Evaluated {
            summary,
            run_dir: out.to_path_buf(),
            timings,
        },
        shards: shards.len(),
        results,
    })
}

/// Summarises a journal and writes every report into `run_dir`; the
/// journal's problems when a line does not parse or is not the current
/// answer of the model the config names (see [`identity::check_journal`]).
/// The journal's lines are held without their answer texts, which the
/// reports read back from the file as they write them.
fn evaluate_and_report(
    plan: &Plan,
    ids: &ModelIds,
    journal_path: &Path,
    config_sha256: &str,
    run_dir: &Path,
    models: Vec<ModelInfo>,
    timings: &mut Timings,
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let entries = journal::read_for_reports(journal_path)?;
    let texts = journal::AnswerTexts::open(journal_path)?;
    identity::check_journal(Some(plan), ids, &entries, journal_path)?;
    let summary = summarize(plan, &entries, models, config_sha256)?;
    timings.statistics_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let reproduce = format!("distill-gate run {}", plan.config.path.display());
    let tasks = report::html::task_texts(plan);
    let ctx = report::ReportContext::new(&summary, &entries)
        .with_reproduce(&reproduce)
        .with_tasks(&tasks)
        .with_texts(&texts);
    report::write_reports(run_dir, &ctx, &report::standard_exporters()).map_err(|source| {
        PipelineError::Reports {
            dir: run_dir.to_path_buf(),
            source,
        }
    })?;
    timings.reports_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}
