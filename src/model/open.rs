//! Opening a local checkpoint as a [`Model`](super::Model).

use std::path::Path;

use super::local::LocalModel;
use crate::llm::{Backend, Checkpoint, LlamaDecoder, LlmError};

/// Loads a checkpoint (Hugging Face directory or `.gguf`) and builds a
/// [`LocalModel`] on the named CPU backend (`flex` or `ndarray`).
pub fn open_local(
    name: &str,
    path: &Path,
    backend: &str,
    batch_size: usize,
) -> Result<LocalModel, LlmError> {
    let backend: Backend = backend
        .parse()
        .map_err(|e| LlmError::Generation(format!("{e}")))?;
    let ckpt = Checkpoint::load(path)?;
    let decoder = LlamaDecoder::from_weights_owned(&ckpt.config, ckpt.weights, &backend.device())?
        .with_quantized(ckpt.quantized)?;
    let model = LocalModel::from_decoder(name, ckpt.fingerprint, decoder, ckpt.tokenizer, backend);
    Ok(model.with_batch_size(batch_size))
}
