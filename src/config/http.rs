//! An HTTP model as `gate.toml` configures it (`kind = "openai"` or
//! `"anthropic"`): the plain settings `model::http` runs it with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which API an HTTP model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI Chat Completions (and compatible servers).
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

impl Provider {
    /// The name used in configs, identities and cache keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// The provider's public API, used when `base_url` is not given.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Openai => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com/v1",
        }
    }
}

/// An HTTP model as configured (`kind = "openai"` or `"anthropic"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpSource {
    /// The API spoken.
    pub provider: Provider,
    /// API base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The API's model name.
    pub model: String,
    /// Environment variable holding the API key (none: send no key).
    pub api_key_env: Option<String>,
    /// System prompt sent with every request.
    pub system: Option<String>,
    /// Overrides the suite's `max_tokens`.
    pub max_tokens: Option<usize>,
    /// Overrides the suite's temperature.
    pub temperature: Option<f32>,
    /// Stop sequences added to the suite's.
    pub stop: Vec<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Client-side limit on requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Client-side limit on (estimated) tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Seconds one attempt may take, connection to last byte.
    pub timeout_secs: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Response cache directory (none: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Ask for server-sent events (measures time to first token).
    pub stream: bool,
    /// Extra top-level fields of every request body (`extra_body`, as the
    /// OpenAI SDK names it), for what a server needs pinned: llama.cpp's
    /// `repeat_penalty = 1.0` for a greedy answer, say. Part of the model's
    /// identity, the cache key and the reports.
    #[serde(default)]
    pub extra_body: BTreeMap<String, serde_json::Value>,
}

/// Why a top-level request field may not be set through `extra_body`:
/// the client sends it itself (from the suite or another model key).
pub fn set_by_the_client(provider: Provider, field: &str) -> Option<&'static str> {
    let common = match field {
        "model" => Some("the `model` key"),
        "messages" | "system" => Some("the prompt and the `system` key"),
        "max_tokens" => Some("the suite's or the `max_tokens` key"),
        "temperature" => Some("the suite's or the `temperature` key"),
        "top_p" => Some("the suite's `top_p`"),
        "stream" => Some("the `stream` key"),
        _ => None,
    };
    common.or(match (provider, field) {
        (Provider::Openai, "stop") | (Provider::Anthropic, "stop_sequences") => {
            Some("the suite's or the `stop` key")
        }
        (Provider::Openai, "seed") => Some("the run's seed"),
        (Provider::Openai, "stream_options") => Some("the `stream` key"),
        _ => None,
    })
}

impl HttpSource {
    /// The model as the reports name it: API model name and URL, and the
    /// extra body fields when there are any.
    pub fn describe(&self) -> String {
        let mut text = format!("{} at {}", self.model, self.base_url);
        if !self.extra_body.is_empty() {
            let fields = serde_json::to_string(&self.extra_body).unwrap_or_default();
            text.push_str(&format!(" with extra_body {fields}"));
        }
        text
    }
}
