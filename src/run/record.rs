//! `distill-gate record`: one model over a suite split into a replay
//! transcript, resumable, with a provenance line beside it per invocation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::config;
use crate::diagnostics::Problems;
use crate::llm::{Backend, LlmError};
use crate::model::http::budget::Budget;
use crate::model::transcript::{self, TranscriptEntry, TranscriptWriter, key_of};
use crate::model::{GenerationRequest, Model, ModelError, ModelIdentity, batching};
use crate::run::execute::{self, RunError};
use crate::run::plan::{self, Sampling};
use crate::suite::{self, Suite, SuiteError};

/// Which model `record` asks.
#[derive(Debug, Clone)]
pub enum RecordModel {
    /// A local checkpoint (Hugging Face directory or `.gguf`).
    Checkpoint(PathBuf),
    /// A model entry (teacher or student) of a gate config, e.g. an HTTP API.
    FromConfig {
        /// The gate config.
        config: PathBuf,
        /// The entry's `name`.
        name: String,
    },
}

/// What `distill-gate record` is asked.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The model.
    pub model: RecordModel,
    /// Suite directory.
    pub suite: PathBuf,
    /// Split.
    pub split: String,
    /// Transcript file (appended to).
    pub out: PathBuf,
    /// Only these categories (empty: all).
    pub categories: Vec<String>,
    /// First N items only, taking the categories in turn.
    pub limit: Option<usize>,
    /// CPU backend of a local checkpoint.
    pub backend: Backend,
    /// Requests per forward batch of a local checkpoint.
    pub batch_size: usize,
    /// Answers per task and how they are drawn.
    pub sampling: Sampling,
    /// The command line, as the provenance line records it.
    pub command: String,
}

/// Why `record` could not record (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Several samples of greedy decoding would all be the same.
    #[error(
        "--samples {samples} needs --temperature > 0 (greedy decoding gives the same answer every time)"
    )]
    SamplesNeedTemperature {
        /// The samples asked for.
        samples: u32,
    },
    /// The suite does not load.
    #[error("{0}")]
    Suite(#[from] SuiteError),
    /// The suite has no such split.
    #[error("{}: no split {split:?}", suite.display())]
    NoSplit {
        /// The suite directory.
        suite: PathBuf,
        /// The split asked for.
        split: String,
    },
    /// The split has no such category.
    #[error(
        "--category {category:?}: the {split} split of {} has no such category (it has: {})",
        suite.display(),
        categories.join(", ")
    )]
    UnknownCategory {
        /// The category asked for.
        category: String,
        /// The split.
        split: String,
        /// The suite directory.
        suite: PathBuf,
        /// The split's categories.
        categories: Vec<String>,
    },
    /// The transcript to resume does not read.
    #[error("{0}")]
    Transcript(Problems),
    /// The gate config does not load.
    #[error("{0}")]
    Config(Problems),
    /// The gate config has no model of that name.
    #[error("{}: no model named {name:?} (it has {})", config.display(), names.join(", "))]
    NoModel {
        /// The config.
        config: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it has.
        names: Vec<String>,
    },
    /// The checkpoint could not be opened.
    #[error(transparent)]
    Checkpoint(#[from] LlmError),
    /// The config's model could not be opened.
    #[error(transparent)]
    Open(#[from] RunError),
    /// The transcript could not be opened for appending.
    #[error("{}", path.display())]
    Out {
        /// The transcript.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An answer could not be appended to the transcript.
    #[error(transparent)]
    Append(std::io::Error),
    /// The model cannot go on; what it answered is saved.
    #[error(
        "{message}\n(answers so far are saved in {}; run the same command again to resume)",
        out.display()
    )]
    Fatal {
        /// Why the model stopped.
        message: String,
        /// The transcript.
        out: PathBuf,
    },
    /// The provenance line could not be written.
    #[error("{}", path.display())]
    Provenance {
        /// The provenance file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The provenance line could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl RecordError {
    /// Whether the input was refused before any model was opened, said as
    /// it is (not as an error of the run).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RecordError::SamplesNeedTemperature { .. }
                | RecordError::Suite(_)
                | RecordError::NoSplit { .. }
                | RecordError::UnknownCategory { .. }
        )
    }
}

/// What `record` is doing, for people (each displays as one line).
#[derive(Debug, Clone)]
pub enum RecordEvent {
    /// The model is open and the work known.
    Started {
        /// The model's name.
        model: String,
        /// The suite's name.
        suite: String,
        /// The split.
        split: String,
        /// Requests selected.
        items: usize,
        /// Requests already answered in the transcript.
        already: usize,
        /// The transcript.
        out: PathBuf,
        /// Requests the transcript holds as errors, asked again.
        errored: usize,
    },
    /// A batch is written.
    Progress {
        /// Requests answered in this invocation.
        finished: usize,
        /// Requests this invocation asks.
        pending: usize,
        /// Requests per second so far.
        per_second: f64,
    },
}

impl fmt::Display for RecordEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordEvent::Started {
                model,
                suite,
                split,
                items,
                already,
                out,
                errored,
            } => {
                write!(
                    f,
                    "recording {model} on {suite}/{split}: {items} items, {already} already in {}",
                    out.display()
                )?;
                if *errored > 0 {
                    write!(f, " ({errored} recorded error(s) asked again)")?;
                }
                Ok(())
            }
            RecordEvent::Progress {
                finished,
                pending,
                per_second,
            } => write!(f, "  {finished}/{pending} ({per_second:.1} items/s)"),
        }
    }
}

/// Provenance appended beside a transcript (`<out>.provenance.jsonl`, one
/// line per `record` invocation).
#[derive(Serialize)]
struct Provenance<'a> {
    model: ModelIdentity,
    /// The checkpoint, or the gate config holding the model entry.
    source: &'a Path,
    suite: &'a str,
    suite_version: &'a str,
    split: &'a str,
    items: usize,
    harness_version: &'static str,
    recorded_at_unix: u64,
    /// CPU backend and batch size of a local checkpoint (absent for a config entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    command: String,
}

/// Records the answers of `o.model` to the split's selected items that the
/// transcript at `o.out` does not hold yet (an answer recorded as an error
/// is asked again), in prompt order so a batch shares its category's prompt
/// prefix (prefilled once by a local model), as in `run`. Each batch is
/// appended as it is answered; what `on_event` is given says how far it is.
pub fn record(o: &RecordOptions, on_event: &mut dyn FnMut(RecordEvent)) -> Result<(), RecordError> {
    if o.sampling.samples > 1 && o.sampling.temperature.is_none_or(|t| t <= 0.0) {
        return Err(RecordError::SamplesNeedTemperature {
            samples: o.sampling.samples,
        });
    }
    let (s, requests) = requests_of(o)?;
    let done = if o.out.exists() {
        Some(transcript::read(&o.out).map_err(RecordError::Transcript)?)
    } else {
        None
    };
    let mut pending: Vec<&GenerationRequest> = requests
        .iter()
        .filter(|r| !done.as_ref().is_some_and(|t| t.completes(r)))
        .collect();
    pending.sort_by(|a, b| a.prompt.cmp(&b.prompt));
    let (mut model, source) = open_model(o)?;
    let identity = model.identity();
    let mut writer = TranscriptWriter::open(&o.out).map_err(|source| RecordError::Out {
        path: o.out.clone(),
        source,
    })?;
    on_event(RecordEvent::Started {
        model: identity.name.clone(),
        suite: s.config.name.clone(),
        split: o.split.clone(),
        items: requests.len(),
        already: requests.len() - pending.len(),
        out: o.out.clone(),
        errored: pending
            .iter()
            .filter(|r| done.as_ref().is_some_and(|t| t.contains(r)))
            .count(),
    });
    ask(
        o,
        model.as_mut(),
        &identity,
        &pending,
        &mut writer,
        on_event,
    )?;
    let local = matches!(o.model, RecordModel::Checkpoint(_));
    append_provenance(
        &o.out,
        &Provenance {
            model: identity,
            source: &source,
            suite: &s.config.name,
            suite_version: &s.config.version,
            split: &o.split,
            items: requests.len(),
            harness_version: env!("CARGO_PKG_VERSION"),
            recorded_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            backend: local.then_some(o.backend.name()),
            batch_size: local.then_some(o.batch_size),
            command: o.command.clone(),
        },
    )
}

/// The suite, and the requests of the chosen split, categories and limit
/// (each sample its own request).
fn requests_of(o: &RecordOptions) -> Result<(Suite, Vec<GenerationRequest>), RecordError> {
    let s = suite::load_suite(&o.suite)?;
    let Some(split) = s.split(&o.split) else {
        return Err(RecordError::NoSplit {
            suite: o.suite.clone(),
            split: o.split.clone(),
        });
    };
    if let Some(unknown) = o
        .categories
        .iter()
        .find(|c| !split.tasks.iter().any(|t| &t.category == *c))
    {
        return Err(RecordError::UnknownCategory {
            category: unknown.clone(),
            split: o.split.clone(),
            suite: o.suite.clone(),
            categories: split.categories().into_iter().map(String::from).collect(),
        });
    }
    let requests = plan::select(&split.tasks, &o.categories, o.limit)
        .into_iter()
        .map(|i| &split.tasks[i])
        .flat_map(|t| {
            o.sampling.requests(GenerationRequest {
                id: format!("{}/{}", s.config.name, t.id),
                prompt: suite::build_prompt(&s, t),
                settings: s.generation_settings(t),
            })
        })
        .collect();
    Ok((s, requests))
}

/// Asks `model` the `pending` requests in batches and appends each answer
/// (or its error) to `writer` as it comes; an answer never obtained
/// is not written, so a resumed run asks it again.
fn ask(
    o: &RecordOptions,
    model: &mut dyn Model,
    identity: &ModelIdentity,
    pending: &[&GenerationRequest],
    writer: &mut TranscriptWriter,
    on_event: &mut dyn FnMut(RecordEvent),
) -> Result<(), RecordError> {
    let started = Instant::now();
    let mut finished = 0usize;
    let batches = batching::request_batches(pending, |r| &r.prompt, model.preferred_batch_size());
    for chunk in batches.into_iter().map(|range| &pending[range]) {
        let batch: Vec<GenerationRequest> = chunk.iter().map(|r| (*r).clone()).collect();
        let mut fatal = None;
        for (req, answer) in batch.iter().zip(model.complete_batch(&batch)) {
            let (completion, error) = match answer {
                Ok(c) => (Some(c), None),
                Err(ModelError::Fatal(msg)) => {
                    fatal.get_or_insert(msg);
                    continue;
                }
                Err(ModelError::Stopped(_)) => continue,
                Err(e) => (None, Some(e.to_string())),
            };
            writer
                .append(&TranscriptEntry {
                    key: key_of(req),
                    model: identity.clone(),
                    request_id: req.id.clone(),
                    prompt: req.prompt.clone(),
                    settings: req.settings.clone(),
                    completion,
                    error,
                })
                .map_err(RecordError::Append)?;
        }
        if let Some(message) = fatal {
            return Err(RecordError::Fatal {
                message,
                out: o.out.clone(),
            });
        }
        finished += chunk.len();
        on_event(RecordEvent::Progress {
            finished,
            pending: pending.len(),
            per_second: finished as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
    }
    Ok(())
}

/// Appends the recording's provenance line to `<out>.provenance.jsonl`.
fn append_provenance(out: &Path, provenance: &Provenance) -> Result<(), RecordError> {
    let mut prov_path = out.to_path_buf().into_os_string();
    prov_path.push(".provenance.jsonl");
    let prov_path = PathBuf::from(prov_path);
    let line = serde_json::to_string(provenance)? + "\n";
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&prov_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
        .map_err(|source| RecordError::Provenance {
            path: prov_path,
            source,
        })
}

/// Opens the model `record` asks, and names the file it comes from
/// (checkpoint or config).
fn open_model(o: &RecordOptions) -> Result<(Box<dyn Model>, PathBuf), RecordError> {
    match &o.model {
        RecordModel::Checkpoint(path) => {
            let model = crate::model::open::open_checkpoint(path, o.backend, o.batch_size)?;
            Ok((Box::new(model), path.clone()))
        }
        RecordModel::FromConfig { config, name } => {
            let cfg = config::load(config).map_err(RecordError::Config)?;
            let Some(spec) = cfg.models().find(|m| &m.name == name) else {
                return Err(RecordError::NoModel {
                    config: config.clone(),
                    name: name.clone(),
                    names: cfg.models().map(|m| m.name.clone()).collect(),
                });
            };
            let budget = Arc::new(Budget::of_run(
                cfg.run.max_cost,
                cfg.run.max_cost_from_flag,
                0.0,
            ));
            let model = execute::open_model(spec, &budget, None)?;
            Ok((model, config.clone()))
        }
    }
}
