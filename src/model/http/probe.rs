//! One tiny request per HTTP model before a long run (`validate --online`):
//! is the server reachable, is the key accepted, does the server know the
//! model, and does it report usage the way the run will ask for it
//! (streamed or not), so a missing usage is known before it makes every
//! cost an estimate.

use std::time::Instant;

use serde_json::Value;

use super::retry::Outcome;
use super::{HttpModel, MAX_BODY_BYTES, cut_at_stop};
use crate::model::{GenerationRequest, GenerationSettings, Usage};

/// The prompt of the probe request, answered in at most [`PROBE_TOKENS`].
const PROBE_PROMPT: &str = "Reply with the word OK.";

/// Most tokens the probe asks for.
const PROBE_TOKENS: usize = 4;

/// What the probe found out about a model that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// Whether the server's model list (`GET {base_url}/models`) names the
    /// configured model; `None` when the server has no usable list.
    pub listed: Option<bool>,
    /// The answer's text.
    pub answer: String,
    /// The usage the server reported (`None`: it reported none, and the
    /// run's costs of this model would be estimates).
    pub usage: Option<Usage>,
    /// Milliseconds the probe request took.
    pub total_ms: f64,
}

impl std::fmt::Display for ProbeReport {
    /// One line on what the probe found (`validate --online`), with a
    /// warning where the server's model list or usage falls short.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listed = match self.listed {
            Some(true) => "the server lists the model",
            Some(false) => {
                "WARNING: the server's model list does not name the model (a server of one model, as llama.cpp's, may ignore the name)"
            }
            None => "the server gives no model list",
        };
        let usage = match &self.usage {
            Some(u) => format!(
                "usage reported ({} input, {} cached, {} output tokens)",
                u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens
            ),
            None => "WARNING: no usage reported: this model's token counts and costs will be estimated (an upper bound)".to_string(),
        };
        write!(
            f,
            "reachable, key accepted, answered {:?} in {:.0} ms; {listed}; {usage}",
            self.answer, self.total_ms
        )
    }
}

/// Why a probe failed, and which key of the model entry to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProbeFailure {
    /// The model entry key most likely at fault (`base_url`,
    /// `api_key_env`, `model` or `extra_body`).
    pub key: &'static str,
    /// What happened, with the server's own message.
    pub message: String,
}

impl HttpModel {
    /// Sends one tiny request (the model's own settings, system prompt and
    /// extra fields, [`PROBE_TOKENS`] tokens at temperature 0, no cache,
    /// no retries) and asks the server for its model list.
    pub fn probe(&self) -> Result<ProbeReport, ProbeFailure> {
        let request = GenerationRequest {
            id: "probe".into(),
            prompt: PROBE_PROMPT.into(),
            settings: GenerationSettings {
                max_tokens: PROBE_TOKENS,
                temperature: 0.0,
                ..GenerationSettings::default()
            },
        };
        let mut req = self.api_request(&request);
        // The probe is about the server, not the entry's generation overrides.
        req.max_tokens = PROBE_TOKENS;
        let started = Instant::now();
        let reply = self.attempt(&self.body(&req), started).map_err(|o| {
            let (key, message) = match o {
                Outcome::Refused { status, reason } => (
                    match status {
                        401 | 403 => "api_key_env",
                        404 => "model",
                        _ => "extra_body",
                    },
                    reason,
                ),
                Outcome::Unreachable(why) => ("base_url", why),
                Outcome::Retry { reason, .. } => ("base_url", reason),
                Outcome::Fatal(why) => ("base_url", why),
            };
            ProbeFailure {
                key,
                message: self.redact(message),
            }
        })?;
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(ProbeReport {
            listed: self
                .listed_models()
                .map(|ids| ids.contains(&self.source.model)),
            answer: cut_at_stop(reply.text, &req.stop),
            usage: reply.usage,
            total_ms,
        })
    }

    /// The model ids of `GET {base_url}/models` (`data[].id`, as both APIs
    /// and most OpenAI-compatible servers answer it); `None` when the
    /// server does not answer it usably.
    fn listed_models(&self) -> Option<Vec<String>> {
        let url = format!("{}/models", self.source.base_url.trim_end_matches('/'));
        let mut request = self.agent.get(&url);
        for (name, value) in self.auth_headers() {
            request = request.header(name, value);
        }
        let mut response = request.call().ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let ids = v
            .get("data")?
            .as_array()?
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        Some(ids)
    }
}
