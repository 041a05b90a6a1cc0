//! Streamed answers: server-sent events (the `text/event-stream` format of
//! the WHATWG HTML standard, §9.2) as both APIs send them with
//! `"stream": true`.
//!
//! OpenAI sends `data: {chunk}` events whose `choices[0].delta.content`
//! carries text, a `finish_reason` on the last choice chunk, a final chunk
//! with `usage` (asked for with `stream_options.include_usage`), then
//! `data: [DONE]` (servers that ignore `include_usage`, llama.cpp's among
//! them, send no usage). Anthropic sends typed events: `message_start`
//! (usage so far), `content_block_delta` with `text_delta`s,
//! `message_delta` (stop reason, cumulative usage) and `message_stop`. A stream that ends before its
//! end marker is an error (retried), never a short answer.

use std::io::BufRead;
use std::time::Instant;

use serde_json::Value;

use super::{Provider, Reply, anthropic, openai};
use crate::model::{FinishReason, Usage};

/// An answer being assembled from its events.
#[derive(Debug)]
pub struct Stream {
    provider: Provider,
    text: String,
    finish: Option<FinishReason>,
    /// OpenAI: the usage chunk, when the server sent one.
    usage: Option<Usage>,
    /// Anthropic: the counts of `message_start` updated by each
    /// `message_delta` (cumulative there).
    counts: anthropic::UsageCounts,
    done: bool,
}

impl Stream {
    /// An empty answer for `provider`'s event format.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            text: String::new(),
            finish: None,
            usage: None,
            counts: anthropic::UsageCounts::default(),
            done: false,
        }
    }

    /// Takes one event's data; says whether it carried text.
    pub fn feed(&mut self, data: &str) -> Result<bool, String> {
        if self.provider == Provider::Openai && data.trim() == "[DONE]" {
            self.done = true;
            return Ok(false);
        }
        let v: Value =
            serde_json::from_str(data).map_err(|e| format!("malformed event JSON: {e}"))?;
        if let Some(message) = v.get("error").map(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("error event")
        }) {
            return Err(format!("error event in the stream: {message}"));
        }
        let before = self.text.len();
        match self.provider {
            Provider::Openai => {
                if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
                    if let Some(t) = choice
                        .get("delta")
                        .and_then(|d| d.get("content"))
                        .and_then(Value::as_str)
                    {
                        self.text.push_str(t);
                    }
                    if let Some(f) = openai::finish(choice.get("finish_reason")) {
                        self.finish = Some(f);
                    }
                }
                if let Some(u) = openai::usage(&v) {
                    self.usage = Some(u);
                }
            }
            Provider::Anthropic => match v.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    if let Some(u) = v.get("message").and_then(|m| m.get("usage")) {
                        self.counts.update(u);
                    }
                }
                Some("content_block_delta") => {
                    if let Some(t) = v
                        .get("delta")
                        .filter(|d| d.get("type").and_then(Value::as_str) == Some("text_delta"))
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                    {
                        self.text.push_str(t);
                    }
                }
                Some("message_delta") => {
                    if let Some(f) =
                        anthropic::finish(v.get("delta").and_then(|d| d.get("stop_reason")))
                    {
                        self.finish = Some(f);
                    }
                    if let Some(u) = v.get("usage") {
                        self.counts.update(u);
                    }
                }
                Some("message_stop") => self.done = true,
                _ => {}
            },
        }
        Ok(self.text.len() > before)
    }

    /// The whole answer, once the end marker has arrived.
    pub fn finish(self, first_token_ms: Option<f64>) -> Result<Reply, String> {
        if !self.done {
            return Err("the stream ended before its end marker".into());
        }
        Ok(Reply {
            text: self.text,
            finish: self.finish.unwrap_or(match self.provider {
                Provider::Openai => FinishReason::Stop,
                Provider::Anthropic => FinishReason::Eos,
            }),
            usage: match self.provider {
                Provider::Openai => self.usage,
                Provider::Anthropic => self.counts.usage(),
            },
            first_token_ms,
        })
    }
}

/// Reads events from `body` into `stream` until the end marker or the end
/// of input; returns the milliseconds from `started` to the first text.
pub fn read_events(
    body: impl BufRead,
    stream: &mut Stream,
    started: Instant,
) -> Result<Option<f64>, String> {
    let mut first = None;
    let mut data = String::new();
    for line in body.lines() {
        let line = line.map_err(|e| format!("connection dropped mid-stream: {e}"))?;
        if line.is_empty() {
            if !data.is_empty() {
                if stream.feed(&data)? && first.is_none() {
                    first = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
                data.clear();
                if stream.done {
                    break;
                }
            }
            continue;
        }
        // `data:` lines of one event are joined with newlines; comments
        // (`:`), `event:`, `id:` and `retry:` carry nothing needed here.
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    if !data.is_empty() && stream.feed(&data)? && first.is_none() {
        first = Some(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(provider: Provider, events: &str) -> Result<Reply, String> {
        let mut s = Stream::new(provider);
        let first = read_events(events.as_bytes(), &mut s, Instant::now())?;
        s.finish(first)
    }

    #[test]
    fn openai_stream_as_documented() {
        let events = concat!(
            ": keep-alive\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
            "data: [DONE]\n\n",
        );
        let r = read(Provider::Openai, events).unwrap();
        assert_eq!(r.text, "Hello");
        assert_eq!(r.finish, FinishReason::Length);
        assert_eq!(r.usage.unwrap().completion_tokens, 2);
        assert!(r.first_token_ms.is_some());
        let cut = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        assert!(
            read(Provider::Openai, cut)
                .unwrap_err()
                .contains("end marker")
        );
    }

    #[test]
    fn anthropic_stream_as_documented() {
        let events = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":5}}}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\n",
            "data: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n",
            "event: content_block_stop\n",
            "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"\\n\"},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        let r = read(Provider::Anthropic, events).unwrap();
        assert_eq!(r.text, "Hi there");
        assert_eq!(r.finish, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 25,
                completion_tokens: 15,
                cached_prompt_tokens: 5,
                estimated: false,
            })
        );
        let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert!(
            read(Provider::Anthropic, err)
                .unwrap_err()
                .contains("Overloaded")
        );
    }

    /// A LiteLLM proxy in front of an OpenAI-compatible server sends
    /// `input_tokens: 0` at the start and the real counts in
    /// `message_delta`, whose usage the API reference defines as
    /// cumulative: the delta's counts replace the start's.
    #[test]
    fn anthropic_delta_usage_is_cumulative() {
        let events = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":2095,\"output_tokens\":2,\"cache_read_input_tokens\":null,\"cache_creation_input_tokens\":5}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        let r = read(Provider::Anthropic, events).unwrap();
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 2100,
                completion_tokens: 2,
                cached_prompt_tokens: 0,
                estimated: false,
            })
        );
    }

    /// llama.cpp's server ignores `stream_options.include_usage`: the
    /// stream ends with no usage, which the reply says (the caller then
    /// estimates it), never as zero tokens.
    #[test]
    fn a_stream_without_usage_has_none() {
        let events = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"7\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(read(Provider::Openai, events).unwrap().usage, None);
        let events = concat!(
            "data: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\n\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"7\"}}\n\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        assert_eq!(read(Provider::Anthropic, events).unwrap().usage, None);
    }

    #[test]
    fn multi_line_data_is_joined() {
        let events =
            "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(read(Provider::Openai, events).unwrap().text, "x");
    }
}
