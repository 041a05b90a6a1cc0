//! A checkpoint: configuration, f32 weights under Hugging Face names,
//! tokenizer and a content fingerprint, loaded from a Hugging Face directory
//! or a GGUF file and saved as a Hugging Face directory (or GGUF).
//!
//! Loading validates everything the decoder relies on (see
//! [`tensor_layout`](super::tensor_layout)): every tensor present with its
//! shape, no unknown tensors, layer count matching the config, and a
//! tokenizer whose ids all fit the embedding (an embedding with more rows
//! than the tokenizer has tokens is normal padding and accepted).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::burnpack;
use super::config::LlamaConfig;
use super::error::LlmError;
use super::gguf::{self, GgmlType, GgufFile};
use super::hf_dir;
use super::quant_matrix::QuantWeights;
use super::safetensors_io::{
    StorageDtype, parse_safetensors, read_safetensors_header, write_safetensors,
};
use super::tensor_layout::{validate_config, validate_shapes, validate_weights};
use super::tokenizer::TextTokenizer;
use super::weights::{HostTensor, Weights};

/// Everything needed to build and run a model.
#[derive(Clone)]
pub struct Checkpoint {
    /// Architecture hyper-parameters.
    pub config: LlamaConfig,
    /// All tensors as f32 under Hugging Face names (Q/K in rotate-half order).
    pub weights: Weights,
    /// The matrices a GGUF file stores as `Q4_0`, `Q4_1` or `Q8_0`, kept
    /// quantized for fast decoding (empty for other checkpoints). `weights`
    /// holds the same matrices dequantized.
    pub quantized: QuantWeights,
    /// Tokenizer with BOS/EOS and chat template.
    pub tokenizer: TextTokenizer,
    /// sha256 (lowercase hex) of the weights file (`model.safetensors` or the `.gguf`).
    pub fingerprint: String,
    /// The directory or file this was loaded from.
    pub source: PathBuf,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint)
            .field("config", &self.config)
            .field("tensors", &self.weights.len())
            .field("quantized", &self.quantized.len())
            .field("tokenizer", &self.tokenizer)
            .finish()
    }
}

/// sha256 of `bytes` as lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// sha256 (lowercase hex) of the file at `path`.
pub(super) fn file_sha256(path: &Path) -> Result<String, LlmError> {
    let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

/// HF checkpoints written by older transformers carry the RoPE inverse
/// frequencies as a tensor; they follow from the config, so they are dropped.
fn is_derived_buffer(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

/// Whether `path` is a Hugging Face directory (`true`) or a `.gguf` file
/// (`false`); an error for anything else.
fn is_hf_dir(path: &Path) -> Result<bool, LlmError> {
    let meta = std::fs::metadata(path).map_err(|e| LlmError::io(path, e))?;
    if meta.is_dir() {
        Ok(true)
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        Ok(false)
    } else {
        Err(LlmError::format(
            path,
            "not a checkpoint: expected a Hugging Face directory (config.json, \
             model.safetensors, tokenizer.json), a .gguf file or a burn record (.bpk)",
        ))
    }
}

/// A Hugging Face directory's `config.json`, validated, and a refusal of
/// sharded weights.
fn hf_config(dir: &Path) -> Result<LlamaConfig, LlmError> {
    let config = hf_dir::read_config(dir)?;
    validate_config(&config, &dir.join(hf_dir::CONFIG_FILE))?;
    if !dir.join(hf_dir::WEIGHTS_FILE).exists() && dir.join("model.safetensors.index.json").exists()
    {
        return Err(LlmError::format(
            dir,
            "sharded checkpoints (model.safetensors.index.json) are not supported; \
             save the model as a single model.safetensors",
        ));
    }
    Ok(config)
}

/// Checks the tokenizer against the embedding: every token id has an
/// embedding row (an embedding with more rows is normal padding) and BOS
/// and EOS are inside it. `path` is the checkpoint.
fn check_tokenizer(
    config: &LlamaConfig,
    tokenizer: &TextTokenizer,
    path: &Path,
) -> Result<(), LlmError> {
    let rows = config.vocab_size;
    let tokens = tokenizer.vocab_size();
    if tokens > rows {
        return Err(LlmError::mismatch(
            path,
            format!(
                "the tokenizer has {tokens} tokens but model.embed_tokens.weight has only {rows} rows \
                 (vocab_size = {rows}); token ids {rows}..{tokens} could not be embedded"
            ),
        ));
    }
    let specials = tokenizer.bos.iter().chain(&tokenizer.eos);
    if let Some(bad) = specials.into_iter().find(|&&id| id as usize >= rows) {
        return Err(LlmError::mismatch(
            path,
            format!("special token id {bad} (BOS/EOS) is outside the {rows}-row embedding"),
        ));
    }
    Ok(())
}

impl Checkpoint {
    /// Loads a Hugging Face checkpoint directory (`config.json`,
    /// `model.safetensors`, `tokenizer.json`, optionally
    /// `chat_template.jinja`), a `.gguf` file or a burn record of the
    /// decoder (`.bpk`, read with the JSON files that go with it: see
    /// [`burnpack`](super::burnpack)), and validates it.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let ckpt = if burnpack::is_record(path) {
            burnpack::load(path)?
        } else if is_hf_dir(path)? {
            Self::load_hf_dir(path)?
        } else {
            Self::load_gguf(path)?
        };
        ckpt.validate()?;
        Ok(ckpt)
    }

    /// Checks a checkpoint as [`load`](Self::load) does without reading
    /// or converting its weights: the config; the tensor table (every
    /// tensor the architecture needs, with its shape, nothing else, and
    /// the file long enough for the data it declares); the tokenizer, and
    /// that it fits the embedding. A Hugging Face directory's
    /// `model.safetensors` is read up to the end of its header only; a
    /// `.gguf` file is read (its tokenizer is in the header) but no tensor
    /// is dequantized. A burn record (`.bpk`) has no header to read
    /// apart: it is loaded. Returns the config.
    pub fn inspect(path: &Path) -> Result<LlamaConfig, LlmError> {
        if burnpack::is_record(path) {
            return Ok(Self::load(path)?.config);
        }
        let (config, tokenizer) = if is_hf_dir(path)? {
            let config = hf_config(path)?;
            let weights_path = path.join(hf_dir::WEIGHTS_FILE);
            let mut tensors = read_safetensors_header(&weights_path)?;
            tensors.retain(|name, _| !is_derived_buffer(name));
            let shapes = tensors
                .iter()
                .map(|(name, t)| (name.as_str(), t.shape.as_slice()))
                .collect();
            validate_shapes(&config, &shapes, path)?;
            let tokenizer = hf_dir::read_tokenizer(path, &config)?;
            (config, tokenizer)
        } else {
            let file = GgufFile::read(path)?;
            let config = gguf::config_from_gguf(&file)?;
            validate_config(&config, path)?;
            let tokenizer = gguf::tokenizer_from_gguf(&file)?;
            let mut shapes = Vec::new();
            for info in gguf::llama::weight_tensors(&file) {
                shapes.push((gguf::llama::tensor_hf_name(info, path)?, info.shape()));
            }
            let shapes = shapes
                .iter()
                .map(|(name, shape)| (name.as_str(), shape.as_slice()))
                .collect();
            validate_shapes(&config, &shapes, path)?;
            (config, tokenizer)
        };
        check_tokenizer(&config, &tokenizer, path)?;
        Ok(config)
    }

    fn load_hf_dir(dir: &Path) -> Result<Self, LlmError> {
        let config = hf_config(dir)?;
        let weights_path = dir.join(hf_dir::WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|e| LlmError::io(&weights_path, e))?;
        let fingerprint = sha256_hex(&bytes);
        let mut weights = parse_safetensors(&bytes, &weights_path)?;
        drop(bytes);
        weights.retain(|name, _| !is_derived_buffer(name));
        let tokenizer = hf_dir::read_tokenizer(dir, &config)?;
        Ok(Self {
            config,
            weights,
            quantized: QuantWeights::new(),
            tokenizer,
            fingerprint,
            source: dir.to_path_buf(),
        })
    }

    fn load_gguf(path: &Path) -> Result<Self, LlmError> {
        let file = GgufFile::read(path)?;
        let fingerprint = sha256_hex(file.file_bytes());
        let config = gguf::config_from_gguf(&file)?;
        validate_config(&config, path)?;
        let tokenizer = gguf::tokenizer_from_gguf(&file)?;
        let weights = gguf::weights_from_gguf(&file, &config)?;
        let quantized = gguf::quantized_from_gguf(&file, &config)?;
        Ok(Self {
            config,
            weights,
            quantized,
            tokenizer,
            fingerprint,
            source: path.to_path_buf(),
        })
    }

    /// Checks the weights against the config (every tensor present with the
    /// right shape, nothing unknown, layer count) and the tokenizer against
    /// the embedding (every token id must have an embedding row; BOS/EOS
    /// inside the vocabulary).
    pub fn validate(&self) -> Result<(), LlmError> {
        validate_weights(&self.config, &self.weights, &self.source)?;
        check_tokenizer(&self.config, &self.tokenizer, &self.source)
    }

    /// Writes a Hugging Face directory that transformers can load:
    /// `config.json`, `model.safetensors` (tensors stored as `dtype`),
    /// `tokenizer.json` and `tokenizer_config.json` (BOS/EOS names,
    /// `add_bos_token`, chat template). Creates `dir` if needed and
    /// overwrites those files. Returns the fingerprint the saved checkpoint
    /// will have when loaded.
    pub fn save_hf_dir(&self, dir: &Path, dtype: StorageDtype) -> Result<String, LlmError> {
        validate_weights(&self.config, &self.weights, dir)?;
        std::fs::create_dir_all(dir).map_err(|e| LlmError::io(dir, e))?;
        let weights_path = dir.join(hf_dir::WEIGHTS_FILE);
        write_safetensors(&weights_path, &self.weights, dtype)?;
        hf_dir::write_json_files(dir, &self.config, &self.tokenizer, dtype)?;
        file_sha256(&weights_path)
    }

    /// Writes the checkpoint as a GGUF file for llama.cpp, matrices stored
    /// as `matrix_type` (see [`gguf::export_gguf`]). Returns the fingerprint
    /// the saved checkpoint will have when loaded.
    pub fn save_gguf(&self, path: &Path, matrix_type: GgmlType) -> Result<String, LlmError> {
        gguf::export_gguf(
            path,
            &self.config,
            &self.weights,
            &self.tokenizer,
            matrix_type,
        )?;
        file_sha256(path)
    }

    /// The same model with its output layer restricted to `tokens` (any
    /// order, duplicates ignored): one output row per token, copied from
    /// the output layer (or the tied embedding), so the model scores and
    /// emits only those tokens and its logits for them are unchanged. The
    /// quantized copies are dropped (a save quantizes again). Fails for an
    /// empty list, a token outside the vocabulary, or a model already
    /// restricted.
    pub fn restrict_output(mut self, tokens: &[u32]) -> Result<Self, LlmError> {
        let path = self.source.clone();
        if self.config.output_tokens.is_some() {
            return Err(LlmError::mismatch(
                &path,
                "the output layer is already restricted to a task vocabulary",
            ));
        }
        let mut tokens = tokens.to_vec();
        tokens.sort_unstable();
        tokens.dedup();
        let from = if self.config.tie_word_embeddings {
            "model.embed_tokens.weight"
        } else {
            "lm_head.weight"
        };
        let head = self
            .weights
            .get(from)
            .ok_or_else(|| LlmError::mismatch(&path, format!("missing tensor {from}")))?;
        let hidden = self.config.hidden_size;
        let mut data = Vec::with_capacity(tokens.len() * hidden);
        for &t in &tokens {
            let row = head
                .data
                .get(t as usize * hidden..(t as usize + 1) * hidden)
                .ok_or_else(|| {
                    LlmError::mismatch(
                        &path,
                        format!(
                            "token {t} is outside the {}-token vocabulary",
                            self.config.vocab_size
                        ),
                    )
                })?;
            data.extend_from_slice(row);
        }
        self.weights.insert(
            "lm_head.weight".to_string(),
            HostTensor {
                shape: vec![tokens.len(), hidden],
                data,
            },
        );
        self.config.tie_word_embeddings = false;
        self.config.output_tokens = Some(tokens);
        self.quantized.clear();
        validate_config(&self.config, &path)?;
        validate_weights(&self.config, &self.weights, &path)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_digest() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn load_refuses_other_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weights.bin");
        std::fs::write(&p, b"x").unwrap();
        let msg = Checkpoint::load(&p).unwrap_err().to_string();
        assert!(msg.contains("not a checkpoint"), "{msg}");
        let missing = dir.path().join("absent.gguf");
        assert!(matches!(
            Checkpoint::load(&missing),
            Err(LlmError::Io { .. })
        ));
        let msg = Checkpoint::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("config.json"), "{msg}");
    }
}
