//! Errors of distillation; each names the file (and line and field, where
//! there is one) it is about.

use std::path::PathBuf;

use crate::diagnostics::Problems;
use crate::llm::LlmError;

/// Why distillation could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// A transcript is malformed (every problem with file:line:field).
    #[error("{0}")]
    Transcript(Problems),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The model runtime refused something (config, weights, tokens).
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// Training or using the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The options cannot be used as given.
    #[error("invalid option {option}: {message}")]
    Option {
        /// The option's name (as on the command line).
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// There is nothing to train on.
    #[error("no training data: {0}")]
    NoData(String),
    /// A saved training state cannot be resumed.
    #[error("{path}: cannot resume: {message}")]
    Resume {
        /// The state file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A suite of `--suite` did not load.
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    /// A transcript line answers a task the student may not learn from.
    #[error("transcript request {request_id}: {message}")]
    NotTrain {
        /// The line's request id (`suite/task id`).
        request_id: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor computation failed (e.g. reading a value back).
    #[error("training: {0}")]
    Tensor(String),
}

impl DistillError {
    /// Builds a [`DistillError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`DistillError::Option`].
    pub fn option(option: &'static str, message: impl Into<String>) -> Self {
        Self::Option {
            option,
            message: message.into(),
        }
    }
}
