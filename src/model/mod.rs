//! The `Model` trait every backend implements (replay, HTTP, local burn) and
//! the plain data types that cross it.

use serde::{Deserialize, Serialize};

pub mod answers;
pub mod batching;
pub mod custom;
pub mod generate;
pub mod http;
pub mod local;
pub mod open;

pub use local::LocalModel;

/// One generation request: a fully formatted prompt plus generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    /// Caller's identifier for the request (e.g. `suite/task_id`); echoed in errors.
    pub id: String,
    /// The prompt text, already formatted (few-shot examples, chat template).
    pub prompt: String,
    /// Generation settings that change the answer.
    pub settings: GenerationSettings,
}

/// The id of sample `sample` of the request `id` (`suite/task`): `id`
/// itself for sample 0, `"{id}#{sample}"` after it.
pub fn sample_request_id(id: &str, sample: u32) -> String {
    if sample == 0 {
        id.to_string()
    } else {
        format!("{id}#{sample}")
    }
}

/// Settings that change what a model answers; part of every cache/replay key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSettings {
    /// Maximum number of new tokens.
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these strings.
    #[serde(default)]
    pub stop: Vec<String>,
    /// 0.0 means greedy decoding.
    #[serde(default)]
    pub temperature: f32,
    /// Nucleus sampling mass; 1.0 disables it.
    #[serde(default = "one")]
    pub top_p: f32,
    /// Seed for sampling (ignored by greedy decoding).
    #[serde(default)]
    pub seed: u64,
    /// Wrap the prompt in the model's chat template as a single user turn.
    #[serde(default)]
    pub chat: bool,
}

fn one() -> f32 {
    1.0
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            max_tokens: 64,
            stop: Vec::new(),
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            chat: false,
        }
    }
}

/// What answering one request took, in tokens and time (defined below
/// both the models and the costs built on them).
pub use crate::measure::{Latency, LatencySource, Usage};

/// Why generation stopped (defined by the runtime, which every model's
/// answer reports in its terms).
pub use crate::llm::generate::FinishReason;

/// A model's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Generated text, with the stop sequence removed.
    pub text: String,
    /// Token counts.
    pub usage: Usage,
    /// Timing; `None` when nobody measured it (an answers file that gives
    /// no latency), never an invented figure.
    pub latency: Option<Latency>,
    /// Why generation stopped; `None` when the answer does not say.
    pub finish: Option<FinishReason>,
}

/// Who a model is: enough to key a transcript or cache and to tell two
/// checkpoints apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// Backend kind: `local`, `replay`, `openai`, `anthropic`.
    pub backend: String,
    /// Human name of the model (config name or checkpoint file name).
    pub name: String,
    /// Content hash of the weights (sha256 hex) or the API model string.
    pub fingerprint: String,
}

/// A failure to answer one request. Errors are results, never silent zeros.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ModelError {
    /// The backend has no answer for this prompt (e.g. missing transcript entry).
    #[error("no recorded completion for request {0}")]
    Missing(String),
    /// The backend failed for this request; retrying later may help.
    #[error("model call failed: {0}")]
    Failed(String),
    /// The backend cannot go on at all (bad key, unreadable checkpoint); the run stops.
    #[error("{0}")]
    Fatal(String),
    /// The request was not sent because the run is stopping (another request
    /// failed fatally or the budget is spent); it is asked again on resume.
    #[error("not sent: {0}")]
    Stopped(String),
}

/// Every model backend: replay transcripts, answers files, HTTP teachers,
/// local burn checkpoints, and the models a program supplies
/// ([`custom::CustomModels`]).
pub trait Model {
    /// Identity used in journals, transcripts and reports.
    fn identity(&self) -> ModelIdentity;

    /// Answers a batch of requests. The result has one entry per request, in
    /// order; a per-request failure is an `Err` in its slot. Backends may run
    /// the batch concurrently (HTTP) or as one padded tensor batch (local).
    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>>;

    /// Largest batch this backend wants per call.
    fn preferred_batch_size(&self) -> usize {
        1
    }
}

pub mod replay;
pub mod transcript;
