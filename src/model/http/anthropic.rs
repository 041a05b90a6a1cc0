//! The Anthropic Messages API (`POST {base_url}/messages`).
//!
//! Fields as documented (<https://docs.anthropic.com/en/api/messages>): the
//! prompt goes as one `user` message, the system prompt in `system`; the
//! answer is the concatenated `text` blocks of `content`, `stop_reason`
//! says why it ended, and `usage` counts `input_tokens` (excluding cache
//! reads), `output_tokens`, `cache_read_input_tokens` and
//! `cache_creation_input_tokens` (billed here at the input rate).

use serde_json::{Value, json};

use super::{ApiRequest, Reply};
use crate::model::{FinishReason, Usage};

/// The API version header this client speaks.
pub const VERSION: &str = "2023-06-01";

/// The request URL.
pub fn url(base_url: &str) -> String {
    format!("{}/messages", base_url.trim_end_matches('/'))
}

/// Authentication and version headers for `key`.
pub fn auth_headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![("anthropic-version", VERSION.to_string())];
    if let Some(k) = key {
        h.push(("x-api-key", k.to_string()));
    }
    h
}

/// The JSON body of a request; `stream` asks for server-sent events.
pub fn body(r: &ApiRequest, stream: bool) -> Value {
    let mut body = json!({
        "model": r.model,
        "max_tokens": r.max_tokens,
        "messages": [{"role": "user", "content": r.prompt}],
        "temperature": r.temperature,
    });
    if let Some(system) = &r.system {
        body["system"] = json!(system);
    }
    if r.top_p < 1.0 {
        body["top_p"] = json!(r.top_p);
    }
    if !r.stop.is_empty() {
        body["stop_sequences"] = json!(r.stop);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Reads a response body. Missing `usage` is not an error: the reply then
/// has no usage, and the caller estimates it.
pub fn parse(body: &str) -> Result<Reply, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("response has no content array")?;
    let text: String = content
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    Ok(Reply {
        text,
        finish: finish(v.get("stop_reason")).unwrap_or(FinishReason::Eos),
        usage: v.get("usage").and_then(usage),
        first_token_ms: None,
    })
}

/// The finish reason of a `stop_reason` value, if set.
pub fn finish(reason: Option<&Value>) -> Option<FinishReason> {
    Some(match reason?.as_str()? {
        "max_tokens" => FinishReason::Length,
        "stop_sequence" => FinishReason::Stop,
        _ => FinishReason::Eos,
    })
}

/// Token counts as the Messages API reports them, field by field. A
/// streamed answer reports them in two places: `message_start` carries the
/// message's usage so far, and each `message_delta` carries *cumulative*
/// counts (input, cache and output tokens, per the API reference), so a
/// non-null value there replaces the one before. A proxy may send
/// `input_tokens: 0` at the start and the real count only in the delta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

impl UsageCounts {
    /// Takes the non-null counts of a `usage` object, replacing earlier ones.
    pub fn update(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        for (field, key) in [
            (&mut self.input, "input_tokens"),
            (&mut self.output, "output_tokens"),
            (&mut self.cache_read, "cache_read_input_tokens"),
            (&mut self.cache_creation, "cache_creation_input_tokens"),
        ] {
            if let Some(v) = n(key) {
                *field = Some(v);
            }
        }
    }

    /// The usage, or `None` when no count arrived at all.
    pub fn usage(&self) -> Option<Usage> {
        if *self == Self::default() {
            return None;
        }
        let n = |v: Option<u64>| v.unwrap_or(0);
        Some(Usage {
            prompt_tokens: n(self.input) + n(self.cache_creation),
            completion_tokens: n(self.output),
            cached_prompt_tokens: n(self.cache_read),
            estimated: false,
        })
    }
}

/// Token counts of a `usage` object (`None` when it holds none).
pub fn usage(u: &Value) -> Option<Usage> {
    let mut counts = UsageCounts::default();
    counts.update(u);
    counts.usage()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body() {
        let r = ApiRequest {
            provider: "anthropic".into(),
            base_url: "https://api.anthropic.com/v1".into(),
            model: "claude-haiku".into(),
            system: Some("Be brief.".into()),
            prompt: "2+2?".into(),
            max_tokens: 16,
            temperature: 0.0,
            top_p: 0.9,
            stop: vec!["\n".into()],
            seed: 0,
            extra_body: Default::default(),
        };
        assert_eq!(url(&r.base_url), "https://api.anthropic.com/v1/messages");
        let b = body(&r, false);
        assert_eq!(b["system"], "Be brief.");
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["stop_sequences"][0], "\n");
        assert!((b["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
        let h = auth_headers(Some("k"));
        assert!(h.contains(&("x-api-key", "k".to_string())));
    }

    #[test]
    fn documented_response() {
        // The example response of the API reference, with cache fields.
        let body = r#"{
          "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
          "content": [{"type": "text", "text": "Hi! My name is Claude."}],
          "model": "claude-3-5-sonnet-20241022", "stop_reason": "end_turn", "stop_sequence": null,
          "usage": {"input_tokens": 2095, "output_tokens": 503,
                    "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}
        }"#;
        let r = parse(body).unwrap();
        assert_eq!(r.text, "Hi! My name is Claude.");
        assert_eq!(r.finish, FinishReason::Eos);
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 2100,
                completion_tokens: 503,
                cached_prompt_tokens: 100,
                estimated: false,
            })
        );
        let cut = parse(r#"{"content":[],"stop_reason":"max_tokens"}"#).unwrap();
        assert_eq!(cut.finish, FinishReason::Length);
        assert_eq!(cut.usage, None);
        assert!(parse("not json").is_err());
    }
}
