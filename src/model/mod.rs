//! The `Model` trait every backend implements (replay, HTTP, local burn) and
//! the plain data types that cross it.

use serde::{Deserialize, Serialize};

pub mod answers;
pub mod batching;
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

/// Token counts for one request, as the backend counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt (input) tokens billed at the full rate.
    pub prompt_tokens: u64,
    /// Generated (output) tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache (billed at the cached rate).
    #[serde(default)]
    pub cached_prompt_tokens: u64,
    /// Whether the counts are an estimate because the server reported no
    /// usage ([`crate::model::http::budget::estimate_usage`]: an upper
    /// bound); reports mark the costs built on them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// Where a completion's latency figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencySource {
    /// Measured in this run.
    Live,
    /// Measured earlier, not by this run: when the transcript was recorded
    /// and replayed now, or by the system whose answers file is read.
    Recorded,
    /// Served from a response cache; the latency is the one originally measured.
    Cached,
}

/// Timing of one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Wall time from request to last token, in milliseconds.
    pub total_ms: f64,
    /// Wall time to the first generated token, when the backend knows it.
    pub first_token_ms: Option<f64>,
    /// Wall time of the whole batch this request ran in, in milliseconds
    /// (students are priced per compute hour of their batches).
    pub batch_ms: Option<f64>,
    /// Number of requests in that batch.
    pub batch_size: usize,
    /// Whether the figure was measured now or earlier.
    pub source: LatencySource,
}

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

/// Every model backend: replay transcripts, HTTP teachers, local burn checkpoints.
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
