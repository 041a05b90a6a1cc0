//! Opening a local checkpoint as a [`Model`](super::Model), and checking,
//! before a run, that every model of a config can be opened.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::http::HttpModel;
use super::http::budget::Budget;
use super::http::probe::ProbeReport;
use super::local::LocalModel;
use crate::config::{GateConfig, ModelSource};
use crate::diagnostics::Problem;
use crate::llm::{Backend, Checkpoint, LlamaDecoder, LlmError};

/// What would stop the models of `config` from opening, found without
/// running or loading any of them: a replay transcript that does not
/// exist; a local checkpoint that does not exist, is not a checkpoint, or
/// whose config, tensor table (names, shapes, data within the file) or
/// tokenizer is wrong (see [`Checkpoint::inspect`]); a `kind = "custom"`
/// entry no model was supplied for, or whose model gives an empty
/// fingerprint. Each problem is at the `gate.toml` line of the model's
/// `transcript`, `path` or `kind`. `supplied` holds the fingerprints of
/// the models a program supplies, by entry name; each must name a
/// `kind = "custom"` entry.
pub fn source_problems(config: &GateConfig, supplied: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let custom: Vec<&str> = config
        .models()
        .filter(|m| m.source == ModelSource::Custom)
        .map(|m| m.name.as_str())
        .collect();
    for name in supplied.keys().filter(|n| !custom.contains(&n.as_str())) {
        let entries = if custom.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", quoted(&custom))
        };
        problems.push(Problem::new(
            &config.path,
            0,
            "",
            format!(
                "a model was supplied for {name:?}, but no entry of kind = \"custom\" has that \
                 name ({entries})"
            ),
        ));
    }
    for (field, spec) in config.models_with_fields() {
        let (key, message) = match &spec.source {
            ModelSource::Custom => match supplied.get(&spec.name) {
                None => ("kind", not_supplied(&spec.name)),
                Some(f) if f.trim().is_empty() => (
                    "kind",
                    format!(
                        "the model supplied for {:?} gives an empty fingerprint in its identity(): \
                         its answers could not be told from another model's (give e.g. the \
                         SHA-256 of its weights)",
                        spec.name
                    ),
                ),
                Some(_) => continue,
            },
            ModelSource::Replay { transcript } if !transcript.exists() => (
                "transcript",
                format!("transcript {} does not exist", transcript.display()),
            ),
            ModelSource::Answers { answers } if !answers.exists() => (
                "answers",
                format!("answers file {} does not exist", answers.display()),
            ),
            ModelSource::Local { path, .. } if !path.exists() => (
                "path",
                format!("checkpoint {} does not exist", path.display()),
            ),
            ModelSource::Local { path, .. } => match Checkpoint::inspect(path) {
                Ok(_) => continue,
                Err(e) => ("path", e.to_string()),
            },
            _ => continue,
        };
        problems.push(config.problem(format!("{field}.{key}"), message));
    }
    problems
}

/// Why a `kind = "custom"` entry named `name` cannot run: no program
/// supplied its model.
pub fn not_supplied(name: &str) -> String {
    format!(
        "kind = \"custom\": no model was supplied for {name:?}; a program supplies it at run time \
         (distill_gate::pipeline::run_with_models, see the README's \"Gating your own burn \
         model\"), the command line has none to run"
    )
}

/// `names` quoted and joined with commas.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `validate --online` found for one HTTP model of a config.
#[derive(Debug)]
pub struct OnlineCheck {
    /// The model's name.
    pub name: String,
    /// Its table in the config file (`teacher`, `students[0]`, ...).
    pub field: String,
    /// The config line of its table.
    pub line: usize,
    /// What the probe found, or the problem at the key to look at.
    pub result: Result<ProbeReport, Problem>,
}

/// Probes every HTTP model of `config` with one tiny request each
/// ([`HttpModel::probe`]), in config order, teacher first. Models of other
/// kinds are not in the list.
pub fn check_online(config: &GateConfig) -> Vec<OnlineCheck> {
    config
        .models_with_fields()
        .filter_map(|(field, spec)| {
            let ModelSource::Http(source) = &spec.source else {
                return None;
            };
            let budget = Arc::new(Budget::new(None, 0.0));
            let result = match HttpModel::open(&spec.name, source, &spec.price, budget) {
                Err(e) => Err(config.problem(format!("{field}.api_key_env"), e.to_string())),
                Ok(model) => model
                    .probe()
                    .map_err(|f| config.problem(format!("{field}.{}", f.key), f.message)),
            };
            Some(OnlineCheck {
                name: spec.name.clone(),
                line: config.lines.line(&field),
                field,
                result,
            })
        })
        .collect()
}

/// Loads a checkpoint (Hugging Face directory or `.gguf`) and builds a
/// [`LocalModel`] on a CPU backend.
pub fn open_local(
    name: &str,
    path: &Path,
    backend: Backend,
    batch_size: usize,
) -> Result<LocalModel, LlmError> {
    let ckpt = Checkpoint::load(path)?;
    let decoder = LlamaDecoder::from_weights_owned(&ckpt.config, ckpt.weights, &backend.device())?
        .with_quantized(ckpt.quantized)?;
    let model = LocalModel::from_decoder(name, ckpt.fingerprint, decoder, ckpt.tokenizer, backend);
    Ok(model.with_batch_size(batch_size))
}

/// [`open_local`] with the model named after the checkpoint's file or
/// directory name (`record --model`, `generate`).
pub fn open_checkpoint(
    path: &Path,
    backend: Backend,
    batch_size: usize,
) -> Result<LocalModel, LlmError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    open_local(&name, path, backend, batch_size)
}
