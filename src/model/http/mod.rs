//! Teachers behind HTTP APIs: the OpenAI-compatible Chat Completions API
//! and the Anthropic Messages API, behind the [`Model`] trait.
//!
//! One [`HttpModel`] answers a batch with up to `concurrency` requests in
//! flight, each passing, in order: the response cache, the run's budget
//! (worst-case cost reserved before sending), the client-side rate limits,
//! and up to `max_retries` retries with backoff (see [`retry`]). A request
//! that cannot succeed (bad key, bad request, budget spent, server
//! unreachable) stops the batch: requests not yet sent come back as
//! [`ModelError::Stopped`] and are asked again when the run resumes.
//!
//! The API key is read from the environment variable the config names and
//! lives only in this struct: it is not part of the identity, cache key,
//! journal or any message (server messages that echo it are redacted).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{
    Completion, FinishReason, GenerationRequest, Latency, LatencySource, Model, ModelError,
    ModelIdentity, Usage,
};
use crate::cost::Price;
use crate::cost::token_cost;

pub mod anthropic;
pub mod budget;
pub mod cache;
pub mod limiter;
pub mod openai;
pub mod probe;
pub mod retry;
pub mod stream;

use budget::{Budget, estimate_usage, worst_case_cost};
use cache::ResponseCache;
use limiter::{RateLimiter, estimate_tokens};
use retry::{Backoff, Outcome, is_retryable_status};

/// Largest response body read (a chat completion is far smaller).
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

pub use crate::config::http::{HttpSource, Provider, set_by_the_client};

/// Adds `extra` to the top level of a request body.
fn add_extra_fields(body: &mut serde_json::Value, extra: &BTreeMap<String, serde_json::Value>) {
    if let Some(fields) = body.as_object_mut() {
        for (k, v) in extra {
            fields.insert(k.clone(), v.clone());
        }
    }
}

/// One request as sent: everything that changes the answer. It is also the
/// response cache's key, so it never holds the API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRequest {
    /// `openai` or `anthropic`.
    pub provider: String,
    /// API base URL.
    pub base_url: String,
    /// API model name.
    pub model: String,
    /// System prompt, if any.
    pub system: Option<String>,
    /// The user prompt.
    pub prompt: String,
    /// Most tokens generated.
    pub max_tokens: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: u64,
    /// Extra body fields ([`HttpSource::extra_body`]); left out of the
    /// cache key when empty, so keys made before it existed still match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_body: BTreeMap<String, serde_json::Value>,
}

impl ApiRequest {
    /// SHA-256 (hex) of the request's JSON: the cache file name.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{:x}", Sha256::digest(&json))
    }
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Generated text.
    pub text: String,
    /// Why generation ended.
    pub finish: FinishReason,
    /// Token counts, when the server reported them.
    pub usage: Option<Usage>,
    /// Milliseconds to the first text, when streamed.
    pub first_token_ms: Option<f64>,
}

/// Why an HTTP model could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The environment variable named by `api_key_env` is not set.
    #[error("{model}: environment variable {var} (api_key_env) is not set")]
    MissingKey {
        /// Model name.
        model: String,
        /// The variable.
        var: String,
    },
}

/// A model behind an HTTP API.
pub struct HttpModel {
    name: String,
    source: HttpSource,
    key: Option<String>,
    price: Price,
    agent: ureq::Agent,
    limiter: RateLimiter,
    budget: Arc<Budget>,
    cache: Option<ResponseCache>,
    backoff: Backoff,
    /// Whether an answer without usage has been warned about.
    warned_no_usage: AtomicBool,
}

impl HttpModel {
    /// Opens a model: reads the API key from the environment and prepares
    /// the client. Nothing is sent until the first batch.
    pub fn open(
        name: &str,
        source: &HttpSource,
        price: &Price,
        budget: Arc<Budget>,
    ) -> Result<Self, HttpError> {
        let key = match &source.api_key_env {
            None => None,
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| HttpError::MissingKey {
                        model: name.to_string(),
                        var: var.clone(),
                    })?,
            ),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(source.timeout_secs)))
            .http_status_as_error(false)
            .max_idle_connections_per_host(source.concurrency.max(1))
            .user_agent(concat!("distill-gate/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            name: name.to_string(),
            key,
            price: price.clone(),
            agent,
            limiter: RateLimiter::new(source.requests_per_minute, source.tokens_per_minute),
            budget,
            cache: source.cache_dir.as_deref().map(ResponseCache::new),
            backoff: Backoff::default(),
            warned_no_usage: AtomicBool::new(false),
            source: source.clone(),
        })
    }

    /// The request as sent for a generation request: config overrides applied.
    pub fn api_request(&self, r: &GenerationRequest) -> ApiRequest {
        let s = &self.source;
        let mut stop = r.settings.stop.clone();
        stop.extend(
            s.stop
                .iter()
                .filter(|x| !r.settings.stop.contains(x))
                .cloned(),
        );
        ApiRequest {
            provider: s.provider.as_str().to_string(),
            base_url: s.base_url.clone(),
            model: s.model.clone(),
            system: s.system.clone(),
            prompt: r.prompt.clone(),
            max_tokens: s.max_tokens.unwrap_or(r.settings.max_tokens),
            temperature: s.temperature.unwrap_or(r.settings.temperature),
            top_p: r.settings.top_p,
            stop,
            seed: r.settings.seed,
            extra_body: s.extra_body.clone(),
        }
    }

    /// The provider's authentication (and version) headers.
    fn auth_headers(&self) -> Vec<(&'static str, String)> {
        match self.source.provider {
            Provider::Openai => openai::auth_headers(self.key.as_deref()),
            Provider::Anthropic => anthropic::auth_headers(self.key.as_deref()),
        }
    }

    /// The JSON body sent for `req`, extra fields included.
    fn body(&self, req: &ApiRequest) -> String {
        let mut body = match self.source.provider {
            Provider::Anthropic => anthropic::body(req, self.source.stream),
            Provider::Openai => openai::body(req, self.source.stream),
        };
        add_extra_fields(&mut body, &req.extra_body);
        body.to_string()
    }

    /// Replaces every occurrence of the API key in a message.
    fn redact(&self, message: String) -> String {
        match &self.key {
            Some(k) if !k.is_empty() => message.replace(k.as_str(), "[redacted]"),
            _ => message,
        }
    }

    /// Answers one request (cache, budget, limits, retries).
    fn answer(
        &self,
        r: &GenerationRequest,
        stopping: &AtomicBool,
    ) -> Result<Completion, ModelError> {
        let req = self.api_request(r);
        if let Some(c) = self.cache.as_ref().and_then(|c| c.get(&req)) {
            return Ok(c);
        }
        if stopping.load(Ordering::SeqCst) {
            return Err(ModelError::Stopped(format!(
                "{}: the run is stopping",
                r.id
            )));
        }
        let prompt_bytes = req.prompt.len() + req.system.as_ref().map_or(0, String::len);
        let reservation =
            match self
                .budget
                .reserve(worst_case_cost(prompt_bytes, req.max_tokens, &self.price))
            {
                Ok(res) => res,
                Err(why) => {
                    stopping.store(true, Ordering::SeqCst);
                    return Err(ModelError::Fatal(why));
                }
            };
        let body = self.body(&req);
        let tokens = estimate_tokens(prompt_bytes, req.max_tokens);
        let mut rng = rand::rng();
        let mut retry = 0u32;
        loop {
            // A request holding a reservation is sent; only retries stop
            // once the run is stopping (so a budget refusal elsewhere does
            // not waste money already committed).
            if retry > 0 && stopping.load(Ordering::SeqCst) {
                self.budget.release(reservation);
                return Err(ModelError::Stopped(format!(
                    "{}: the run is stopping",
                    r.id
                )));
            }
            self.limiter.acquire(tokens);
            let started = Instant::now();
            match self.attempt(&body, started) {
                Ok(reply) => {
                    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
                    let usage = reply.usage.unwrap_or_else(|| {
                        if !self.warned_no_usage.swap(true, Ordering::SeqCst) {
                            eprintln!(
                                "warning: {}: the response to {} carried no usage (and maybe others will): its tokens are estimated as an upper bound (prompt and answer bytes) and marked as estimated",
                                self.name, r.id
                            );
                        }
                        estimate_usage(
                            prompt_bytes,
                            &reply.text,
                            &req.stop,
                            req.max_tokens,
                            reply.finish,
                        )
                    });
                    self.budget
                        .settle(reservation, token_cost(&usage, &self.price));
                    let completion = Completion {
                        text: cut_at_stop(reply.text, &req.stop),
                        usage,
                        latency: Some(Latency {
                            total_ms,
                            first_token_ms: reply.first_token_ms,
                            batch_ms: None,
                            batch_size: 1,
                            source: LatencySource::Live,
                        }),
                        finish: Some(reply.finish),
                    };
                    if let Some(cache) = &self.cache
                        && let Err(e) = cache.put(&req, &completion)
                    {
                        eprintln!("warning: {}: response cache: {e}", self.name);
                    }
                    return Ok(completion);
                }
                Err(Outcome::Fatal(why) | Outcome::Refused { reason: why, .. }) => {
                    stopping.store(true, Ordering::SeqCst);
                    self.budget.release(reservation);
                    return Err(ModelError::Fatal(
                        self.redact(format!("{}: {why}", self.name)),
                    ));
                }
                Err(Outcome::Unreachable(why)) if retry >= self.source.max_retries => {
                    stopping.store(true, Ordering::SeqCst);
                    self.budget.release(reservation);
                    return Err(ModelError::Fatal(format!(
                        "{}: unreachable after {} attempts: {why}",
                        self.name,
                        retry + 1
                    )));
                }
                Err(Outcome::Unreachable(_)) => {
                    std::thread::sleep(self.backoff.delay(retry, None, &mut rng));
                    retry += 1;
                }
                Err(Outcome::Retry {
                    reason,
                    retry_after,
                }) => {
                    if retry >= self.source.max_retries {
                        self.budget.release(reservation);
                        return Err(ModelError::Failed(self.redact(format!(
                            "{}: gave up after {} attempts; last: {reason}",
                            r.id,
                            retry + 1
                        ))));
                    }
                    std::thread::sleep(self.backoff.delay(retry, retry_after, &mut rng));
                    retry += 1;
                }
            }
        }
    }

    /// One HTTP exchange, timed from `started`.
    fn attempt(&self, body: &str, started: Instant) -> Result<Reply, Outcome> {
        let s = &self.source;
        let url = match s.provider {
            Provider::Openai => openai::url(&s.base_url),
            Provider::Anthropic => anthropic::url(&s.base_url),
        };
        let mut request = self
            .agent
            .post(&url)
            .header("content-type", "application/json");
        for (name, value) in self.auth_headers() {
            request = request.header(name, value);
        }
        let mut response = request.send(body).map_err(|e| transport(&url, e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let wait = retry::retry_after(
            header("retry-after-ms").as_deref(),
            header("retry-after").as_deref(),
            SystemTime::now(),
        );
        let event_stream =
            header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        if status == 200 && event_stream {
            let mut answer = stream::Stream::new(s.provider);
            let reader = std::io::BufReader::new(
                response
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY_BYTES)
                    .reader(),
            );
            return stream::read_events(reader, &mut answer, started)
                .and_then(|first| answer.finish(first))
                .map_err(|e| Outcome::Retry {
                    reason: format!("HTTP 200 stream: {e}"),
                    retry_after: None,
                });
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| Outcome::Retry {
                reason: format!("HTTP {status}: reading the body failed: {e}"),
                retry_after: None,
            })?;
        if status == 200 {
            let parsed = match s.provider {
                Provider::Openai => openai::parse(&text),
                Provider::Anthropic => anthropic::parse(&text),
            };
            return parsed.map_err(|e| Outcome::Retry {
                reason: format!("HTTP 200 with an unusable body: {e}"),
                retry_after: None,
            });
        }
        let message = api_error_message(&text);
        if is_retryable_status(status) {
            Err(Outcome::Retry {
                reason: format!("HTTP {status}: {message}"),
                retry_after: wait,
            })
        } else {
            Err(Outcome::Refused {
                status,
                reason: format!(
                    "HTTP {status} from {url}: {message} (retrying cannot fix this; check the key, model and request settings)"
                ),
            })
        }
    }
}

/// Classifies a transport failure: timeouts and broken connections are
/// retried; a bad URL or a TLS failure is not.
fn transport(url: &str, e: ureq::Error) -> Outcome {
    match e {
        ureq::Error::Timeout(t) => Outcome::Retry {
            reason: format!("timed out ({t})"),
            retry_after: None,
        },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Outcome::Unreachable(format!("cannot connect to {url}: {e}"))
        }
        ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Outcome::Unreachable(format!("cannot connect to {url}: {e}"))
        }
        ureq::Error::Io(_) => Outcome::Retry {
            reason: format!("connection to {url} failed: {e}"),
            retry_after: None,
        },
        ureq::Error::Protocol(_) => Outcome::Retry {
            reason: format!("malformed HTTP from {url}: {e}"),
            retry_after: None,
        },
        other => Outcome::Fatal(format!("request to {url} failed: {other}")),
    }
}

/// The human message of an API error body (`error.message` in both APIs),
/// else the body's start.
fn api_error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// Cuts `text` before the first stop sequence (servers cut only the ones
/// they were sent, and OpenAI takes at most four).
fn cut_at_stop(mut text: String, stop: &[String]) -> String {
    if let Some(at) = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(at);
    }
    text
}

impl Model for HttpModel {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            backend: self.source.provider.as_str().to_string(),
            name: self.name.clone(),
            fingerprint: self.source.describe(),
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        let stopping = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<Completion, ModelError>>>> =
            requests.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.source.concurrency.clamp(1, requests.len().max(1));
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(r) = requests.get(i) else { break };
                        let answer = this.answer(r, &stopping);
                        if let Some(slot) = slots.get(i) {
                            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
                        }
                    }
                });
            }
        });
        slots
            .into_iter()
            .zip(requests)
            .map(|(slot, r)| {
                slot.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| Err(ModelError::Failed(format!("{}: no answer", r.id))))
            })
            .collect()
    }

    fn preferred_batch_size(&self) -> usize {
        self.source.concurrency.max(1) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sequences_cut_at_the_earliest() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(cut_at_stop("a END b\n\nc".into(), &stops), "a ");
        assert_eq!(cut_at_stop("abc".into(), &stops), "abc");
        assert_eq!(cut_at_stop("abc".into(), &["".to_string()]), "abc");
    }

    #[test]
    fn api_error_messages() {
        assert_eq!(
            api_error_message(
                r#"{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}"#
            ),
            "Incorrect API key"
        );
        assert_eq!(
            api_error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(api_error_message("Bad Gateway"), "Bad Gateway");
    }
}
