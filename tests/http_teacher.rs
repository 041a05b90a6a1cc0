//! HTTP teachers against a real HTTP server on loopback, started by the
//! test and speaking the OpenAI Chat Completions and Anthropic Messages
//! protocols as documented, with faults injected per item: 429 with and
//! without `retry-after`, 500, 503, a response slower than the timeout, a
//! connection closed mid-body, malformed JSON, a missing usage field, a
//! key revoked mid-run, and a spending limit.
//!
//! Each test runs the real binary (`distill-gate run` / `record`) and
//! checks that every task is accounted for, nothing is asked twice once
//! answered, the cost ledger equals the usage the server reported, and the
//! API key appears in no output.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::text;

const KEY: &str = "sk-test-0123456789abcdef";
const KEY_VAR: &str = "DISTILL_GATE_TEST_KEY";

/// Teacher prices (dollars per million tokens), as in the config below.
const INPUT: f64 = 1.5;
const OUTPUT: f64 = 6.0;
const CACHED: f64 = 0.75;
/// Student prices (no cached rate: cached tokens are billed at the input rate).
const STUDENT_INPUT: f64 = 0.5;
const STUDENT_OUTPUT: f64 = 1.0;

/// One injected misbehaviour, consumed by one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    TooManyRequests {
        retry_after: bool,
    },
    Status(u16),
    /// Answer only after this many milliseconds (past the client's timeout).
    Slow(u64),
    /// Send the headers and half the body, then close.
    CloseMidBody,
    MalformedJson,
    NoUsage,
    /// Streamed: send the first events, then close without the end marker.
    CloseMidStream,
}

/// What the server saw and billed.
#[derive(Default)]
struct Ledger {
    /// Requests received, per (path, item).
    requests: BTreeMap<(String, usize), usize>,
    /// Complete successful answers delivered, per (path, item).
    answered: BTreeMap<(String, usize), usize>,
    /// Dollars of the usage reported in delivered answers, per path (the
    /// teacher speaks chat completions, the student messages), at the
    /// config's prices.
    reported_cost: BTreeMap<String, f64>,
    /// Headers of the last request per path.
    headers: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Default)]
struct ServerState {
    faults: BTreeMap<(String, usize), VecDeque<Fault>>,
    /// After this many answers, every request gets 401 (a revoked key).
    revoke_after: Option<usize>,
    ledger: Ledger,
}

struct Server {
    base_url: String,
    state: Arc<Mutex<ServerState>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ServerState::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = handle(stream, &state);
                });
            }
        });
        Self { base_url, state }
    }

    fn fault(&self, path: &str, item: usize, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert((path.to_string(), item), faults.iter().copied().collect());
    }

    fn with<T>(&self, f: impl FnOnce(&mut ServerState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

/// The item a prompt asks about: the `a` of its last `Q: a + b` line, and the sum.
fn question(prompt: &str) -> Option<(usize, usize)> {
    let q = prompt.rsplit("Q: ").next()?;
    let (a, rest) = q.split_once(" + ")?;
    let b = rest.split('\n').next()?;
    let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    Some((a, a + b))
}

fn handle(stream: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let anthropic = path == "/v1/messages";
    let prompt = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let Some((item, sum)) = question(&prompt) else {
        return respond(
            &mut stream,
            400,
            "",
            &error_body("no question in the prompt"),
        );
    };
    let key_ok = if anthropic {
        headers.get("x-api-key").map(String::as_str) == Some(KEY)
            && headers.get("anthropic-version").map(String::as_str) == Some("2023-06-01")
    } else {
        headers.get("authorization").map(String::as_str) == Some(&format!("Bearer {KEY}"))
    };
    let (fault, revoked) = {
        let mut s = state.lock().unwrap();
        *s.ledger.requests.entry((path.clone(), item)).or_default() += 1;
        s.ledger.headers.insert(path.clone(), headers.clone());
        let answered: usize = s.ledger.answered.values().sum();
        let revoked = s.revoke_after.is_some_and(|n| answered >= n);
        let fault = s
            .faults
            .get_mut(&(path.clone(), item))
            .and_then(VecDeque::pop_front);
        (fault, revoked)
    };
    if !key_ok || revoked {
        // Like the real APIs, echo (part of) the key back: the client must redact it.
        let sent = headers
            .get("authorization")
            .or(headers.get("x-api-key"))
            .cloned()
            .unwrap_or_default();
        return respond(
            &mut stream,
            401,
            "",
            &error_body(&format!("Incorrect API key provided: {sent}")),
        );
    }
    // Usage as a tokenizer would count it: deterministic from the texts.
    let answer = format!(" {sum}");
    let prompt_tokens = prompt.len() as u64 / 4 + 7;
    let cached = if item % 3 == 0 { 4 } else { 0 };
    let completion_tokens = answer.len() as u64;
    let mut reply = if anthropic {
        json!({
            "id": format!("msg_{item}"), "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": answer}],
            "model": request["model"], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": prompt_tokens - cached, "output_tokens": completion_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}
        })
    } else {
        json!({
            "id": format!("chatcmpl-{item}"), "object": "chat.completion", "created": 1_700_000_000,
            "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}}
        })
    };
    let (input, cached_rate, output) = if anthropic {
        (STUDENT_INPUT, STUDENT_INPUT, STUDENT_OUTPUT)
    } else {
        (INPUT, CACHED, OUTPUT)
    };
    let cost = ((prompt_tokens - cached) as f64 * input
        + cached as f64 * cached_rate
        + completion_tokens as f64 * output)
        / 1e6;
    let deliver = |state: &Mutex<ServerState>, cost: f64| {
        let mut s = state.lock().unwrap();
        *s.ledger.answered.entry((path.clone(), item)).or_default() += 1;
        *s.ledger.reported_cost.entry(path.clone()).or_default() += cost;
    };
    if request["stream"] == true {
        let events = sse_events(anthropic, &reply, &answer);
        if fault == Some(Fault::CloseMidStream) {
            return send_events(&mut stream, &events[..events.len() / 2]);
        }
        // Counted before the last byte leaves: the client may act on the
        // answer (and the test read the ledger) before this thread resumes.
        deliver(state, cost);
        return send_events(&mut stream, &events);
    }
    match fault {
        None => {
            deliver(state, cost);
            respond(&mut stream, 200, "", &reply.to_string())
        }
        Some(Fault::TooManyRequests { retry_after }) => respond(
            &mut stream,
            429,
            if retry_after {
                "retry-after: 1\r\n"
            } else {
                ""
            },
            &error_body("Rate limit reached"),
        ),
        Some(Fault::Status(code)) => respond(&mut stream, code, "", &error_body("server error")),
        Some(Fault::Slow(ms)) => {
            // The client has given up by then: nothing is delivered.
            std::thread::sleep(Duration::from_millis(ms));
            respond(&mut stream, 200, "", &reply.to_string())
        }
        Some(Fault::CloseMidBody) => {
            let body = reply.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body.as_bytes()[..body.len() / 2])?;
            stream.flush()?;
            stream.shutdown(std::net::Shutdown::Both)
        }
        Some(Fault::MalformedJson) => respond(&mut stream, 200, "", "{\"choices\": [{\"mess"),
        Some(Fault::NoUsage) => {
            reply.as_object_mut().unwrap().remove("usage");
            deliver(state, 0.0);
            respond(&mut stream, 200, "", &reply.to_string())
        }
        Some(Fault::CloseMidStream) => respond(&mut stream, 200, "", &reply.to_string()),
    }
}

/// The documented event sequence of a streamed answer, split in two deltas.
fn sse_events(anthropic: bool, reply: &Value, answer: &str) -> Vec<String> {
    let (a, b) = answer.split_at(answer.len() / 2);
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    if anthropic {
        let u = &reply["usage"];
        vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": reply["id"], "type": "message", "role": "assistant", "content": [],
                "model": reply["model"], "stop_reason": null,
                "usage": {"input_tokens": u["input_tokens"], "output_tokens": 1,
                          "cache_read_input_tokens": u["cache_read_input_tokens"]}}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            event("ping", json!({"type": "ping"})),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": a}}),
            ),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": b}}),
            ),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            event(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": u["output_tokens"]}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ]
    } else {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": reply["id"], "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": reply["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            )
        };
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": a}), Value::Null),
            chunk(json!({"content": b}), Value::Null),
            chunk(json!({}), json!("stop")),
            format!(
                "data: {}\n\n",
                json!({"id": reply["id"], "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": reply["model"], "choices": [],
                "usage": reply["usage"]})
            ),
            "data: [DONE]\n\n".to_string(),
        ]
    }
}

/// Sends events as a chunked `text/event-stream` response, then closes.
fn send_events(stream: &mut TcpStream, events: &[String]) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    for e in events {
        stream.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes())?;
        stream.flush()?;
    }
    if events
        .iter()
        .any(|e| e.contains("[DONE]") || e.contains("message_stop"))
    {
        stream.write_all(b"0\r\n\r\n")?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn error_body(message: &str) -> String {
    json!({"error": {"message": message, "type": "test_error"}}).to_string()
}

fn respond(stream: &mut TcpStream, status: u16, extra: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

// ---------------------------------------------------------------------------
// The workspace: a small arithmetic suite and a config pointing at the server.

/// Items in the test split.
const N: usize = 12;

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write_arith_suite(dir.path(), N);
    dir
}

/// A config: an OpenAI-protocol teacher and an Anthropic-protocol student,
/// both served by `server`.
fn config(dir: &Path, server: &Server, run_extra: &str) -> PathBuf {
    config_with(dir, server, run_extra, "")
}

/// As [`config`], with `model_extra` keys in both model entries.
fn config_with(dir: &Path, server: &Server, run_extra: &str, model_extra: &str) -> PathBuf {
    let text = format!(
        r#"[run]
name = "t"
output_dir = "reports"
{run_extra}
[teacher]
name = "teacher"
kind = "openai"
base_url = "{url}"
model = "gpt-test"
api_key_env = "{KEY_VAR}"
system = "Answer with the number only."
concurrency = 3
timeout_secs = 1.0
max_retries = 3
{model_extra}
price = {{ input_per_mtok = {INPUT}, output_per_mtok = {OUTPUT}, cached_input_per_mtok = {CACHED} }}
[[students]]
name = "student"
kind = "anthropic"
base_url = "{url}"
model = "claude-test"
api_key_env = "{KEY_VAR}"
concurrency = 2
timeout_secs = 1.0
{model_extra}
price = {{ input_per_mtok = {STUDENT_INPUT}, output_per_mtok = {STUDENT_OUTPUT} }}
[[suites]]
path = "suites/arith"
[gate]
max_error_rate = 1.0
min_retention = 0.5
"#,
        url = server.base_url
    );
    let path = dir.join("gate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn bin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(args)
        .current_dir(dir)
        .env(KEY_VAR, KEY)
        .output()
        .expect("spawn distill-gate")
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("reports/t/results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under `dir`, concatenated (to look for the key).
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
    out
}

/// No item was answered twice by the server (nothing billed twice).
fn assert_answered_once(server: &Server) {
    server.with(|s| {
        for ((path, item), n) in &s.ledger.answered {
            assert_eq!(*n, 1, "{path} item {item} answered {n} times");
        }
    });
}

/// Each model's journaled cost equals the usage the server reported, at
/// the config's prices (the teacher speaks chat completions, the student
/// messages).
fn assert_costs_match(server: &Server, entries: &[Value]) {
    server.with(|s| {
        for (model, path) in [("teacher", CHAT), ("student", MESSAGES)] {
            let journal_cost: f64 = entries
                .iter()
                .filter(|e| e["model"] == model)
                .map(|e| e["cost"].as_f64().unwrap())
                .sum();
            let server_cost = s.ledger.reported_cost[path];
            assert!(
                (journal_cost - server_cost).abs() < 1e-12,
                "{model}: journal {journal_cost} vs server {server_cost}"
            );
        }
    });
}

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

#[test]
fn faults_are_retried_or_recorded_and_billing_matches_the_server() {
    let dir = workspace();
    let server = Server::start();
    server.fault(CHAT, 0, &[Fault::TooManyRequests { retry_after: true }]);
    server.fault(CHAT, 1, &[Fault::TooManyRequests { retry_after: false }]);
    server.fault(CHAT, 2, &[Fault::Status(500)]);
    server.fault(CHAT, 3, &[Fault::Status(503), Fault::Status(503)]);
    server.fault(CHAT, 4, &[Fault::Slow(2500)]);
    server.fault(CHAT, 5, &[Fault::CloseMidBody]);
    server.fault(CHAT, 6, &[Fault::MalformedJson]);
    server.fault(CHAT, 7, &[Fault::NoUsage]);
    // Fails on every attempt (1 + max_retries = 4): recorded as an error.
    server.fault(CHAT, 8, &[Fault::Status(500); 4]);
    server.fault(MESSAGES, 9, &[Fault::Status(529)]);
    server.fault(MESSAGES, 10, &[Fault::CloseMidBody]);
    config(dir.path(), &server, "");

    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let entries = journal(dir.path());
    // Every task accounted for, once per model.
    assert_eq!(entries.len(), 2 * N, "{}", text(&out));
    for model in ["teacher", "student"] {
        let mut ids: Vec<&str> = entries
            .iter()
            .filter(|e| e["model"] == model)
            .map(|e| e["task_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), N, "{model}");
    }
    let teacher = |i: usize| {
        entries
            .iter()
            .find(|e| e["model"] == "teacher" && e["task_id"] == format!("t-{i}"))
            .unwrap()
    };
    let error = teacher(8)["error"].as_str().unwrap();
    assert!(
        error.contains("gave up after 4 attempts") && error.contains("HTTP 500"),
        "{error}"
    );
    for i in (0..N).filter(|i| *i != 8) {
        assert_eq!(teacher(i)["score"], 1.0, "item {i}: {}", teacher(i));
        assert_eq!(teacher(i)["latency"]["source"], "live");
    }
    assert_eq!(
        teacher(7)["usage"]["prompt_tokens"],
        0,
        "no usage reported, none billed"
    );
    assert_eq!(teacher(3)["usage"]["cached_prompt_tokens"], 4);

    server.with(|s| {
        let l = &s.ledger;
        // Retried items were asked again; none was answered twice.
        assert_eq!(l.requests[&(CHAT.to_string(), 3)], 3);
        assert_eq!(l.requests[&(CHAT.to_string(), 8)], 4);
        assert_eq!(l.answered.len(), 2 * N - 1, "all but the failing item");
        // The protocols' headers as documented.
        assert_eq!(l.headers[MESSAGES]["anthropic-version"], "2023-06-01");
        assert_eq!(l.headers[CHAT]["content-type"], "application/json");
    });

    assert_answered_once(&server);
    assert_costs_match(&server, &entries);

    // A second run of the same suite pays nothing: every answer comes from
    // the cache except the one that failed, which is asked again.
    let before = server.with(|s| s.ledger.requests.values().sum::<usize>());
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet", "--fresh"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let after = server.with(|s| s.ledger.requests.values().sum::<usize>());
    assert_eq!(after - before, 1, "only the errored item is asked again");
    let entries = journal(dir.path());
    let cached = entries
        .iter()
        .filter(|e| e["latency"]["source"] == "cached")
        .count();
    assert_eq!(cached, 2 * N - 1);
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("reports/t/summary.json")).unwrap(),
    )
    .unwrap();
    let overall = summary["model_stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "teacher" && m["category"].is_null())
        .unwrap();
    assert_eq!(overall["latency"]["live"], 1, "{overall}");
    assert_eq!(overall["latency"]["cached"], N - 1);
    assert!(!all_text(dir.path()).contains(KEY));
}

#[test]
fn a_revoked_key_stops_the_run_with_exit_2_and_keeps_what_is_done() {
    let dir = workspace();
    let server = Server::start();
    server.with(|s| s.revoke_after = Some(5));
    config(dir.path(), &server, "");
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stderr.contains(KEY), "the key is redacted: {stderr}");
    assert!(stderr.contains("[redacted]"), "{stderr}");
    let done = journal(dir.path());
    // Everything the server answered before the revocation is kept (a few
    // more than five may have been in flight when it happened).
    let answered = server.with(|s| s.ledger.answered.values().sum::<usize>());
    assert!((5..N).contains(&done.len()), "{}", done.len());
    assert_eq!(done.len(), answered);
    assert!(done.iter().all(|e| e["error"].is_null()));

    // The key works again: the run resumes and asks only for the rest.
    server.with(|s| s.revoke_after = None);
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert_eq!(journal(dir.path()).len(), 2 * N);
    assert_answered_once(&server);
    assert!(!all_text(dir.path()).contains(KEY));
}

#[test]
fn the_budget_stops_the_run_before_it_is_exceeded_and_a_higher_one_resumes() {
    let dir = workspace();
    let server = Server::start();
    // Worst case per teacher request is about (prompt bytes + 64) * 1.5e-6
    // + 8 * 6e-6, roughly $0.0003, and an answer costs about $0.00005:
    // a $0.0004 budget allows a few requests.
    config(dir.path(), &server, "max_cost = 0.0004");
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("budget"), "{stderr}");
    let done = journal(dir.path());
    assert!(!done.is_empty() && done.len() < N, "{}", done.len());
    let spent: f64 = done.iter().map(|e| e["cost"].as_f64().unwrap()).sum();
    assert!(spent <= 0.0004, "spent {spent}");
    server.with(|s| assert!(s.ledger.reported_cost.values().sum::<f64>() <= 0.0004));

    let out = bin(
        dir.path(),
        &["run", "gate.toml", "--quiet", "--max-cost", "1"],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert_eq!(journal(dir.path()).len(), 2 * N);
    assert_answered_once(&server);
}

/// `record` of the config's HTTP teacher over the test split.
const RECORD_TEACHER: &[&str] = &[
    "record",
    "--config",
    "gate.toml",
    "--name",
    "teacher",
    "--suite",
    "suites/arith",
    "--split",
    "test",
    "--out",
    "teacher.jsonl",
];

#[test]
fn record_against_an_http_teacher_then_replay_it() {
    let dir = workspace();
    let server = Server::start();
    server.fault(CHAT, 2, &[Fault::Status(503)]);
    config(dir.path(), &server, "");
    let out = bin(dir.path(), RECORD_TEACHER);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("teacher.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), N);
    assert!(lines.iter().all(|l| l["completion"]["text"].is_string()));
    assert_eq!(lines[0]["model"]["backend"], "openai");
    let prov = std::fs::read_to_string(dir.path().join("teacher.jsonl.provenance.jsonl")).unwrap();
    assert!(prov.contains("gate.toml") && !prov.contains(KEY), "{prov}");

    // Recording again asks nothing: the transcript is resumed.
    let before = server.with(|s| s.ledger.requests.values().sum::<usize>());
    let out = bin(dir.path(), RECORD_TEACHER);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        server.with(|s| s.ledger.requests.values().sum::<usize>()),
        before
    );

    // The transcript replays as a teacher.
    let replay = r#"[run]
name = "t"
output_dir = "reports"
[teacher]
name = "teacher"
kind = "replay"
transcript = "teacher.jsonl"
[[students]]
name = "same"
kind = "replay"
transcript = "teacher.jsonl"
[[suites]]
path = "suites/arith"
[gate]
min_retention = 0.5
"#;
    std::fs::write(dir.path().join("replay.toml"), replay).unwrap();
    let out = bin(dir.path(), &["run", "replay.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_missing_key_variable_is_a_clear_error() {
    let dir = workspace();
    let server = Server::start();
    config(dir.path(), &server, "");
    let out = Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(["run", "gate.toml", "--quiet"])
        .current_dir(dir.path())
        .env_remove(KEY_VAR)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("environment variable {KEY_VAR}")),
        "{}",
        text(&out)
    );
    assert!(server.with(|s| s.ledger.requests.is_empty()));
}

#[test]
fn streamed_answers_measure_time_to_first_token() {
    let dir = workspace();
    let server = Server::start();
    server.fault(CHAT, 1, &[Fault::CloseMidStream]);
    server.fault(MESSAGES, 2, &[Fault::CloseMidStream]);
    server.fault(CHAT, 3, &[Fault::TooManyRequests { retry_after: true }]);
    config_with(dir.path(), &server, "", "stream = true");
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let entries = journal(dir.path());
    assert_eq!(entries.len(), 2 * N);
    for e in &entries {
        assert_eq!(e["score"], 1.0, "{e}");
        let l = &e["latency"];
        assert!(
            l["first_token_ms"].as_f64().unwrap() <= l["total_ms"].as_f64().unwrap(),
            "{e}"
        );
    }
    server.with(|s| {
        assert_eq!(
            s.ledger.requests[&(CHAT.to_string(), 1)],
            2,
            "a cut stream is retried"
        )
    });
    assert_answered_once(&server);
    assert_costs_match(&server, &entries);
}

#[test]
fn an_unreachable_teacher_is_exit_2() {
    let dir = workspace();
    let server = Server::start();
    config_with(dir.path(), &server, "", "");
    // Point the teacher at a port nobody listens on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let path = dir.path().join("gate.toml");
    let text_before = std::fs::read_to_string(&path).unwrap();
    let changed = text_before
        .replacen(
            &server.base_url,
            &format!("http://127.0.0.1:{closed}/v1"),
            1,
        )
        .replacen("max_retries = 3", "max_retries = 1", 1);
    std::fs::write(&path, changed).unwrap();
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable after 2 attempts"),
        "{}",
        text(&out)
    );
    assert!(journal(dir.path()).is_empty());
}
