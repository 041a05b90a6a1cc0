//! burn's own record files (`.bpk`, burnpack) of the decoder as
//! checkpoints: `model.save_file(path)` of a [`LlamaDecoder`], as
//! `distill` writes `last/model.bpk`.
//!
//! A record holds the module's tensors only. Its architecture and tokenizer
//! are read from the Hugging Face JSON files that go with it
//! ([`companion_dir`]): `config.json` and `tokenizer.json` (optionally
//! `tokenizer_config.json`, `generation_config.json`, `chat_template.jinja`)
//! beside the record, or, for `distill`'s `last/model.bpk`, in its training
//! run's directory, where `distill` writes that run's architecture and
//! tokenizer. Nothing is guessed: without a `config.json` the record is
//! refused, naming the file it needs.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;

use super::checkpoint::Checkpoint;
use super::decoder::LlamaDecoder;
use super::device::Backend;
use super::error::LlmError;
use super::hf_dir;
use super::quant_matrix::QuantWeights;
use super::tensor_layout::{expected_tensors, validate_config};
use super::weights::{HostTensor, Weights};

/// The extension of a burn record file.
pub const EXTENSION: &str = "bpk";

/// Whether `path` names a burn record file (`.bpk`).
pub fn is_record(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(EXTENSION))
}

/// The directory whose `config.json` and tokenizer files go with the
/// record at `path`; `None` when `path` is not a record. It is the
/// record's own directory, unless that holds no `config.json` and is
/// `distill`'s `last/` (its `state.json` beside the record, the run's
/// `training.json` and `config.json` one level up): then the run's
/// directory, whose files describe the same student.
pub fn companion_dir(path: &Path) -> Option<PathBuf> {
    if !is_record(path) {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    if dir.join(hf_dir::CONFIG_FILE).exists() {
        return Some(dir);
    }
    match dir.parent() {
        Some(run)
            if dir.join("state.json").exists()
                && run.join("training.json").exists()
                && run.join(hf_dir::CONFIG_FILE).exists() =>
        {
            Some(run.to_path_buf())
        }
        _ => Some(dir),
    }
}

/// Loads the record at `path` with the architecture and tokenizer of its
/// [`companion_dir`]: every tensor of that architecture present with its
/// shape and no other (burn's strict loading), the fingerprint the SHA-256
/// of the record file. The caller validates the checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint, LlmError> {
    let dir = companion_dir(path).unwrap_or_default();
    let config_path = dir.join(hf_dir::CONFIG_FILE);
    if !config_path.exists() {
        return Err(LlmError::format(
            path,
            format!(
                "a burn record holds weights only, and {} is missing: its architecture is read \
                 from the config.json beside it (with tokenizer.json); `distill` writes both \
                 beside its best checkpoint, and its last/model.bpk is read with its run's",
                config_path.display()
            ),
        ));
    }
    let config = hf_dir::read_config(&dir)?;
    validate_config(&config, &config_path)?;
    if dir != path.parent().unwrap_or(Path::new("")) {
        same_tokenizer(path, &dir)?;
    }
    let tokenizer = hf_dir::read_tokenizer(&dir, &config)?;
    let fingerprint = super::checkpoint::file_sha256(path)?;
    let record = ModuleRecord::load(path)
        .map_err(|e| LlmError::format(path, format!("not a burn record: {e}")))?;
    // The module the record is applied to: the architecture, zeros.
    let zeros: Weights = expected_tensors(&config)
        .into_iter()
        .map(|(name, shape)| {
            let data = vec![0.0; shape.iter().product()];
            (name, HostTensor { shape, data })
        })
        .collect();
    let device = Backend::Flex.device();
    let decoder = LlamaDecoder::from_weights_owned(&config, zeros, &device)?
        .try_load_record(record.cast_to_module_dtype())
        .map_err(|e| {
            LlmError::mismatch(
                path,
                format!(
                    "not a record of the decoder {} describes: {e}",
                    config_path.display()
                ),
            )
        })?;
    Ok(Checkpoint {
        weights: decoder.to_weights()?,
        config,
        quantized: QuantWeights::new(),
        tokenizer,
        fingerprint,
        source: path.to_path_buf(),
    })
}

/// A record read with the files of another directory (`distill`'s
/// `last/`): the tokenizer saved beside it must be the one there.
fn same_tokenizer(path: &Path, dir: &Path) -> Result<(), LlmError> {
    let beside = path
        .parent()
        .unwrap_or(Path::new(""))
        .join(hf_dir::TOKENIZER_FILE);
    if !beside.exists() {
        return Ok(());
    }
    let there = dir.join(hf_dir::TOKENIZER_FILE);
    let read = |p: &Path| std::fs::read(p).map_err(|e| LlmError::io(p, e));
    if read(&beside)? != read(&there)? {
        return Err(LlmError::mismatch(
            path,
            format!(
                "{} differs from {}: the record's run directory describes another student; \
                 put its config.json beside the record",
                beside.display(),
                there.display()
            ),
        ));
    }
    Ok(())
}
