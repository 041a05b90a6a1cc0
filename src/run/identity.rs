//! Who answered: the identity every journaled answer is bound to.
//!
//! A journal line is reused (on resume, by `report`, `merge` and `compare`)
//! only when it is provably the answer of the model the config names now to
//! the request the plan asks now: its [`ModelId`] (a digest of everything
//! that changes what the model answers: the checkpoint's or transcript's
//! content, the backend and the model's own settings) and its request key
//! (prompt and generation settings, as transcripts key them) must both
//! match. Replacing a checkpoint at the same path, re-recording a
//! transcript or changing a suite's prompt therefore asks again instead of
//! reporting the old answers under the new model's name.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ModelSource, ModelSpec};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::{sha256_file, sha256_hex};

use crate::model::ModelIdentity;
use crate::model::transcript::key_of;
use crate::run::journal::{JournalEntry, Role};
use crate::run::plan::{Plan, PlannedItem};
use crate::summary::{ANSWERS_BACKEND, CUSTOM_BACKEND, ModelInfo};

/// The identity of a model as configured: lowercase hex SHA-256 of what
/// changes its answers (see [`model_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId(pub String);

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The files of a Hugging Face checkpoint directory that change what the
/// model answers (weights, architecture, tokenizer and its chat template,
/// generation defaults); absent optional files are left out.
const CHECKPOINT_FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
];

/// What a model's identity digest is computed over, by backend. Operational
/// settings that do not change an answer (concurrency, rate limits,
/// time-outs, retries, the response cache, prices) are left out.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum IdentityParts<'a> {
    /// A local checkpoint: the content of its files, the CPU backend and the
    /// batch size (padding and kernel choice may change float sums).
    Local {
        files: Vec<(String, String)>,
        backend: &'a str,
        batch_size: Option<usize>,
    },
    /// A replayed transcript: its content (re-recording changes it).
    Replay { transcript_sha256: String },
    /// An answers file: its content (any edit changes it).
    Answers { answers_sha256: &'a str },
    /// An API model: what is sent besides each request's own prompt and
    /// settings.
    Http {
        provider: &'a str,
        base_url: &'a str,
        model: &'a str,
        system: Option<&'a str>,
        max_tokens: Option<usize>,
        temperature: Option<f32>,
        stop: &'a [String],
        /// Left out when empty, so identities made before it existed hold.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extra_body: &'a BTreeMap<String, serde_json::Value>,
    },
    /// A model a program supplies (`kind = "custom"`): the identity it
    /// gives itself ([`crate::model::Model::identity`]).
    Custom {
        backend: &'a str,
        name: &'a str,
        fingerprint: &'a str,
    },
}

/// The identity of a model a program supplies (`kind = "custom"`, see
/// [`crate::pipeline::run_with_models`]): the digest its journaled answers
/// are bound to, and the fingerprint the reports show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppliedId {
    /// What every journaled answer of the model is bound to.
    pub id: ModelId,
    /// The fingerprint the model gives itself.
    pub fingerprint: String,
}

impl SuppliedId {
    /// The identity of a supplied model that says it is `identity`: a
    /// digest of its backend, name and fingerprint, so a change to any of
    /// them asks every item again.
    pub fn of(identity: &ModelIdentity) -> Self {
        Self {
            id: id_of(&IdentityParts::Custom {
                backend: &identity.backend,
                name: &identity.name,
                fingerprint: &identity.fingerprint,
            }),
            fingerprint: identity.fingerprint.clone(),
        }
    }
}

/// The identities of the models a program supplies, by entry name.
pub type Supplied = BTreeMap<String, SuppliedId>;

/// The identity of the model `spec` configures, computed from its files
/// without loading it (`None` for a model a program supplies, which says
/// its own identity); the file that could not be read, when one could not.
pub fn model_id(spec: &ModelSpec) -> Result<Option<ModelId>, (PathBuf, std::io::Error)> {
    let unreadable = |file: &Path, e: std::io::Error| (file.to_path_buf(), e);
    let parts = match &spec.source {
        ModelSource::Local {
            path,
            backend,
            batch_size,
        } => {
            let mut files = Vec::new();
            if let Some(dir) = crate::llm::burnpack::companion_dir(path) {
                // A burn record: its weights, and the architecture and
                // tokenizer files read with it.
                let digest = sha256_file(path).map_err(|e| unreadable(path, e))?;
                files.push((String::new(), digest));
                for name in CHECKPOINT_FILES {
                    let file = dir.join(name);
                    if file.exists() {
                        let digest = sha256_file(&file).map_err(|e| unreadable(&file, e))?;
                        files.push((name.to_string(), digest));
                    }
                }
            } else if path.is_dir() {
                for name in CHECKPOINT_FILES {
                    let file = path.join(name);
                    if name == "model.safetensors" || file.exists() {
                        let digest = sha256_file(&file).map_err(|e| unreadable(&file, e))?;
                        files.push((name.to_string(), digest));
                    }
                }
            } else {
                let digest = sha256_file(path).map_err(|e| unreadable(path, e))?;
                files.push((String::new(), digest));
            }
            IdentityParts::Local {
                files,
                backend: backend.name(),
                batch_size: *batch_size,
            }
        }
        ModelSource::Replay { transcript } => IdentityParts::Replay {
            transcript_sha256: sha256_file(transcript).map_err(|e| unreadable(transcript, e))?,
        },
        ModelSource::Answers { answers } => {
            let digest = sha256_file(answers).map_err(|e| unreadable(answers, e))?;
            return Ok(Some(answers_id(&digest)));
        }
        ModelSource::Custom => return Ok(None),
        ModelSource::Http(h) => IdentityParts::Http {
            provider: h.provider.as_str(),
            base_url: &h.base_url,
            model: &h.model,
            system: h.system.as_deref(),
            max_tokens: h.max_tokens,
            temperature: h.temperature,
            stop: &h.stop,
            extra_body: &h.extra_body,
        },
    };
    Ok(Some(id_of(&parts)))
}

/// The identity of an answers file model whose file's content has SHA-256
/// `answers_sha256` (hex): what [`model_id`] gives, and what a run checks
/// the file it read against.
pub fn answers_id(answers_sha256: &str) -> ModelId {
    id_of(&IdentityParts::Answers { answers_sha256 })
}

/// The digest of a model's identity parts.
fn id_of(parts: &IdentityParts<'_>) -> ModelId {
    // serde_json writes fields in declaration order: the digest is stable.
    let bytes = serde_json::to_vec(parts).unwrap_or_default();
    ModelId(sha256_hex(&bytes))
}

/// The identities of every model of a plan, by config name.
#[derive(Debug, Clone, Default)]
pub struct ModelIds {
    ids: HashMap<String, ModelId>,
    /// The fingerprints the models a program supplies give themselves.
    supplied: HashMap<String, String>,
}

impl ModelIds {
    /// Computes the identity of every model the plan's config names (one
    /// thread per core: each hashes its checkpoint or transcript); a model
    /// a program supplies (`kind = "custom"`) has the identity `supplied`
    /// gives it.
    pub fn of_plan(plan: &Plan, supplied: &Supplied) -> Result<Self, Problems> {
        let specs: Vec<(String, &ModelSpec)> = plan.config.models_with_fields().collect();
        let ids = crate::parallel::map_in_order(specs.clone(), |(_, spec)| model_id(spec));
        let mut map = HashMap::new();
        let mut fingerprints = HashMap::new();
        let mut problems = Vec::new();
        for ((field, spec), id) in specs.into_iter().zip(ids) {
            match id {
                Ok(Some(id)) => {
                    map.insert(spec.name.clone(), id);
                }
                Ok(None) => match supplied.get(&spec.name) {
                    Some(s) => {
                        map.insert(spec.name.clone(), s.id.clone());
                        fingerprints.insert(spec.name.clone(), s.fingerprint.clone());
                    }
                    None => problems.push(plan.config.problem(
                        format!("{field}.kind"),
                        crate::model::open::not_supplied(&spec.name),
                    )),
                },
                Err((file, e)) => {
                    let key = match spec.source {
                        ModelSource::Replay { .. } => "transcript",
                        ModelSource::Answers { .. } => "answers",
                        _ => "path",
                    };
                    problems.push(plan.config.problem(
                        format!("{field}.{key}"),
                        format!("cannot read {}: {e}", file.display()),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Self {
                ids: map,
                supplied: fingerprints,
            })
        } else {
            Err(Problems(problems))
        }
    }

    /// The identities a run's summary recorded for its models (`merge`
    /// checks shards against them without opening any model).
    pub fn from_models(models: &[ModelInfo]) -> Self {
        Self {
            ids: models
                .iter()
                .map(|m| (m.name.clone(), ModelId(m.model_id.clone())))
                .collect(),
            supplied: HashMap::new(),
        }
    }

    /// The identity of the model named `name`, if the config names it.
    pub fn get(&self, name: &str) -> Option<&ModelId> {
        self.ids.get(name)
    }
}

/// The identities a run's summary recorded for the models a program
/// supplied (`report` re-renders such a run without the program: its
/// journal must still hold the answers of the models the run was given).
pub fn supplied_of_run(models: &[ModelInfo]) -> Supplied {
    models
        .iter()
        .filter(|m| m.is_custom())
        .map(|m| {
            let id = SuppliedId {
                id: ModelId(m.model_id.clone()),
                fingerprint: m.fingerprint.clone(),
            };
            (m.name.clone(), id)
        })
        .collect()
}

/// What the reports say about each model of a plan (teacher first), with
/// the identity `ids` gives it; computed without loading any model.
pub fn model_infos(plan: &Plan, ids: &ModelIds) -> Result<Vec<ModelInfo>, Problems> {
    plan.config
        .models()
        .map(|spec| {
            let role = if spec.name == plan.config.teacher.name {
                Role::Teacher
            } else {
                Role::Student
            };
            let mut info = model_info(spec, role, ids)?;
            info.model_id = ids
                .get(&spec.name)
                .map(|id| id.0.clone())
                .unwrap_or_default();
            Ok(info)
        })
        .collect()
}

/// What the reports say about a model: its backend, the fingerprint of its
/// weights (or of its recorded model, or its API model name), its price.
fn model_info(spec: &ModelSpec, role: Role, ids: &ModelIds) -> Result<ModelInfo, Problems> {
    let (backend, fingerprint) = match &spec.source {
        ModelSource::Replay { transcript } => {
            let t = crate::model::transcript::read_shared(transcript)?;
            let m = t.model.clone().unwrap_or_else(|| ModelIdentity {
                backend: "unknown".into(),
                name: spec.name.clone(),
                fingerprint: String::new(),
            });
            (
                format!("replay of {} ({})", m.backend, m.name),
                m.fingerprint,
            )
        }
        ModelSource::Answers { answers } => {
            let fingerprint = sha256_file(answers)
                .map_err(|e| Problems::one(Problem::file(answers, e.to_string())))?;
            (
                format!("{ANSWERS_BACKEND} {}", answers.display()),
                fingerprint,
            )
        }
        ModelSource::Local { path, backend, .. } => {
            // The weights file: a `.gguf`, or `model.safetensors` in a directory.
            let file = if path.is_dir() {
                path.join("model.safetensors")
            } else {
                path.to_path_buf()
            };
            let fingerprint = sha256_file(&file)
                .map_err(|e| Problems::one(Problem::file(&file, e.to_string())))?;
            (format!("local burn ({backend})"), fingerprint)
        }
        ModelSource::Http(h) => (
            format!("{} API: {}", h.provider.as_str(), h.describe()),
            h.model.clone(),
        ),
        ModelSource::Custom => (
            CUSTOM_BACKEND.to_string(),
            ids.supplied.get(&spec.name).cloned().unwrap_or_default(),
        ),
    };
    Ok(ModelInfo {
        name: spec.name.clone(),
        role,
        backend,
        fingerprint,
        model_id: String::new(),
        price: spec.price.describe(),
        categories: spec.categories.clone(),
        few_shot: spec.few_shot,
    })
}

/// Checks that every line of a journal (as its readers see it: the last
/// line of each unit of work) is the answer of the model `ids` names, and,
/// given the plan, to the request the plan asks now: a run's reports never
/// show one model's answers under another's name. Lines of models or
/// items the plan does not have are left to the summary to judge. Each
/// model whose lines do not match is one problem, at its first such line.
pub fn check_journal(
    plan: Option<&Plan>,
    ids: &ModelIds,
    entries: &[JournalEntry],
    journal_path: &Path,
) -> Result<(), Problems> {
    let mut items: HashMap<(&str, &str), &PlannedItem> = HashMap::new();
    for suite in plan.iter().flat_map(|p| &p.suites) {
        for item in &suite.items {
            items.insert((suite.name(), item.task.id.as_str()), item);
        }
    }
    let few_shot: HashMap<&str, Option<usize>> = plan
        .iter()
        .flat_map(|p| p.config.models())
        .map(|m| (m.name.as_str(), m.few_shot))
        .collect();
    let mut stale: Vec<Stale> = Vec::new();
    for e in entries {
        let Some(id) = ids.get(&e.model) else {
            continue;
        };
        let request = match plan {
            None => None,
            Some(_) => {
                let template = few_shot.get(e.model.as_str()).copied().flatten();
                let request = items
                    .get(&(e.suite.as_str(), e.task_id.as_str()))
                    .and_then(|i| i.requests_for(template).get(e.sample as usize));
                match request {
                    Some(r) => Some(key_of(r)),
                    None => continue,
                }
            }
        };
        // A line without an identity matches only a summary without one
        // (a run written before answers were bound to models).
        let other_model = e.model_id.as_deref().unwrap_or("") != id.0;
        let other_request =
            !other_model && request.is_some_and(|r| e.request.as_deref() != Some(r.as_str()));
        if !(other_model || other_request) {
            continue;
        }
        let at = match stale.iter().position(|s| s.model == e.model) {
            Some(at) => at,
            None => {
                stale.push(Stale {
                    model: &e.model,
                    other_model: 0,
                    other_request: 0,
                    line: e.texts_at.map_or(0, |s| s.number),
                });
                stale.len() - 1
            }
        };
        stale[at].other_model += usize::from(other_model);
        stale[at].other_request += usize::from(other_request);
    }
    if stale.is_empty() {
        return Ok(());
    }
    let again = match plan {
        Some(p) => format!(
            "run `distill-gate run {}` to ask it again",
            p.config.path.display()
        ),
        None => "re-run it to ask it again".to_string(),
    };
    let problems = stale
        .into_iter()
        .map(|s| {
            let mut why = Vec::new();
            if s.other_model > 0 {
                why.push(format!(
                    "{} were given by another model than the {:?} of this run (its checkpoint, \
                     transcript, backend or settings changed, or the line predates model \
                     identities)",
                    s.other_model, s.model
                ));
            }
            if s.other_request > 0 {
                why.push(format!(
                    "{} answer another request than the plan asks now (the suite's prompt or \
                     generation settings changed)",
                    s.other_request
                ));
            }
            Problem::new(
                journal_path,
                s.line,
                "model_id",
                format!("answers of {:?}: {}; {again}", s.model, why.join("; ")),
            )
        })
        .collect();
    Err(Problems(problems))
}

/// A model whose journaled answers are not current (see [`check_journal`]).
struct Stale<'a> {
    model: &'a str,
    /// Lines given by another identity of the model.
    other_model: usize,
    /// Lines of the model's identity answering another request.
    other_request: usize,
    /// The first such line.
    line: usize,
}
