//! Errors of the model runtime: every one names the file and what is wrong.

use std::path::PathBuf;

/// A failure to load, save or run a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file is malformed (truncated, bad header, bad dtype, ...).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field or tensor.
        message: String,
    },
    /// The weights do not fit the configuration (missing tensor, wrong shape, ...).
    #[error("{path}: {message}")]
    Mismatch {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong, naming the tensor and both shapes.
        message: String,
    },
    /// The tokenizer could not be loaded or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A generation request cannot be served (e.g. prompt longer than the context).
    #[error("generation: {0}")]
    Generation(String),
}

impl LlmError {
    /// Builds a [`LlmError::Format`].
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds a [`LlmError::Mismatch`].
    pub fn mismatch(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Mismatch {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds a [`LlmError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
