//! What answering one request took: its token counts ([`Usage`]) and its
//! timing ([`Latency`]), as a model reports them. Plain data below both
//! `model`, which produces them, and `cost`, which prices them.

use serde::{Deserialize, Serialize};

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
    /// usage (an upper bound from the prompt and the token limit, made
    /// by the HTTP models' budget); reports mark the costs built on them.
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
