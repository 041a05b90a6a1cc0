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
/// has no usage and costs nothing.
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
        usage: v.get("usage").filter(|u| !u.is_null()).map(usage),
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

/// Token counts of a `usage` object.
pub fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: n("input_tokens") + n("cache_creation_input_tokens"),
        completion_tokens: n("output_tokens"),
        cached_prompt_tokens: n("cache_read_input_tokens"),
    }
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
                cached_prompt_tokens: 100
            })
        );
        let cut = parse(r#"{"content":[],"stop_reason":"max_tokens"}"#).unwrap();
        assert_eq!(cut.finish, FinishReason::Length);
        assert_eq!(cut.usage, None);
        assert!(parse("not json").is_err());
    }
}
