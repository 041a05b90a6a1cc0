//! The OpenAI Chat Completions API (`POST {base_url}/chat/completions`),
//! which vLLM, llama.cpp's server, Ollama and most gateways also speak.
//!
//! Request and response fields as documented in the API reference
//! (<https://platform.openai.com/docs/api-reference/chat/create>): the
//! prompt goes as one `user` message after an optional `system` message;
//! the answer is `choices[0].message.content`, `finish_reason` says why it
//! ended and `usage` counts tokens, with cached prompt tokens in
//! `usage.prompt_tokens_details.cached_tokens` (a part of `prompt_tokens`).

use serde_json::{Value, json};

use super::{ApiRequest, Reply};
use crate::model::{FinishReason, Usage};

/// The API accepts at most this many stop sequences; the rest are applied
/// by the client.
pub const MAX_STOP: usize = 4;

/// The request URL.
pub fn url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// Authentication headers for `key`.
pub fn auth_headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| vec![("authorization", format!("Bearer {k}"))])
        .unwrap_or_default()
}

/// The JSON body of a request; `stream` asks for server-sent events with
/// a final usage chunk.
pub fn body(r: &ApiRequest, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &r.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": r.prompt}));
    let mut body = json!({
        "model": r.model,
        "messages": messages,
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
    });
    if r.top_p < 1.0 {
        body["top_p"] = json!(r.top_p);
    }
    if !r.stop.is_empty() {
        body["stop"] = json!(r.stop.iter().take(MAX_STOP).collect::<Vec<_>>());
    }
    if r.temperature > 0.0 {
        body["seed"] = json!(r.seed);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Reads a response body. Missing `usage` is not an error (some servers
/// omit it): the reply then has no usage, and the caller estimates it.
pub fn parse(body: &str) -> Result<Reply, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("response has no choices[0]")?;
    let text = match choice.get("message").and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(format!(
                "choices[0].message.content is not a string: {other}"
            ));
        }
    };
    Ok(Reply {
        text,
        finish: finish(choice.get("finish_reason")).unwrap_or(FinishReason::Stop),
        usage: usage(&v),
        first_token_ms: None,
    })
}

/// The finish reason of a `finish_reason` value (`None` while streaming).
pub fn finish(reason: Option<&Value>) -> Option<FinishReason> {
    match reason?.as_str()? {
        "length" => Some(FinishReason::Length),
        _ => Some(FinishReason::Stop),
    }
}

/// The `usage` object of a response or final stream chunk, if present.
pub fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| !u.is_null())?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt = n(u.get("prompt_tokens"));
    let cached = n(u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens")))
    .min(prompt);
    Some(Usage {
        prompt_tokens: prompt - cached,
        completion_tokens: n(u.get("completion_tokens")),
        cached_prompt_tokens: cached,
        estimated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ApiRequest {
        ApiRequest {
            provider: "openai".into(),
            base_url: "https://api.openai.com/v1/".into(),
            model: "gpt-4o-mini".into(),
            system: Some("Be brief.".into()),
            prompt: "2+2?".into(),
            max_tokens: 16,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec!["\n".into(), "a".into(), "b".into(), "c".into(), "d".into()],
            seed: 3,
            extra_body: Default::default(),
        }
    }

    #[test]
    fn request_body() {
        let r = request();
        assert_eq!(
            url(&r.base_url),
            "https://api.openai.com/v1/chat/completions"
        );
        let b = body(&r, false);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "2+2?");
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["stop"].as_array().unwrap().len(), MAX_STOP);
        assert!(b.get("seed").is_none(), "greedy requests carry no seed");
        assert!(b.get("top_p").is_none());
    }

    #[test]
    fn documented_response() {
        // The example response of the API reference, with cached tokens.
        let body = r#"{
          "id": "chatcmpl-123", "object": "chat.completion", "created": 1677652288,
          "model": "gpt-4o-mini",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"},
                       "logprobs": null, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                    "prompt_tokens_details": {"cached_tokens": 4}}
        }"#;
        let r = parse(body).unwrap();
        assert_eq!(r.text, "4");
        assert_eq!(r.finish, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 12,
                cached_prompt_tokens: 4,
                estimated: false,
            })
        );
        let no_usage =
            parse(r#"{"choices":[{"message":{"content":"x"},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!(no_usage.usage, None);
        assert_eq!(no_usage.finish, FinishReason::Length);
        assert!(
            parse("{\"choices\": [")
                .unwrap_err()
                .contains("malformed JSON")
        );
        assert!(parse("{}").unwrap_err().contains("choices"));
    }
}
