//! HTTP teachers against a real HTTP server on loopback, started by the
//! test and speaking the OpenAI Chat Completions and Anthropic Messages
//! protocols as documented and as real servers send them (a LiteLLM proxy
//! streams Anthropic usage with `input_tokens: 0` at the start and the
//! cumulative counts in `message_delta`; llama.cpp's server streams no
//! usage at all), with faults injected per item: 429 with and without
//! `retry-after`, 500, 503, a response slower than the timeout, a
//! connection closed mid-body, malformed JSON, a missing usage field, a
//! key revoked mid-run, a proxy whose backend is down, and a spending
//! limit.
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

mod support;
use support::text;

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
    /// Dollars of the usage the server counted for each delivered answer,
    /// per (path, item), at the config's prices (whether or not the answer
    /// carried that usage).
    reported_cost: BTreeMap<(String, usize), f64>,
    /// Headers of the last request per path.
    headers: BTreeMap<String, BTreeMap<String, String>>,
    /// Body of the last request per path.
    bodies: BTreeMap<String, Value>,
}

#[derive(Default)]
struct ServerState {
    faults: BTreeMap<(String, usize), VecDeque<Fault>>,
    /// After this many answers, every request gets 401 (a revoked key).
    revoke_after: Option<usize>,
    /// Paths whose backend is down: a proxy in front answers HTTP 500.
    down: Vec<String>,
    /// Streamed chat completions carry no usage even when asked for
    /// (llama.cpp's server ignores `stream_options.include_usage`).
    stream_without_usage: bool,
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

/// The ledger's item of `validate --online`'s probe request.
const PROBE: usize = 999;

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
    if request_line.starts_with("GET ") && path == "/v1/models" {
        // The model list, as both APIs answer it.
        let list = json!({"object": "list", "data": [
            {"id": "gpt-test", "object": "model"}, {"id": "claude-test", "type": "model"}]});
        return respond(&mut stream, 200, "", &list.to_string());
    }
    let anthropic = path == "/v1/messages";
    let prompt = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    // `validate --online`'s probe asks for a word: item PROBE answers it.
    let probe = prompt.contains("Reply with the word OK");
    let Some((item, sum)) = question(&prompt).or(probe.then_some((PROBE, 0))) else {
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
        s.ledger.bodies.insert(path.clone(), request.clone());
        let answered: usize = s.ledger.answered.values().sum();
        let revoked = s.revoke_after.is_some_and(|n| answered >= n);
        let fault = s
            .faults
            .get_mut(&(path.clone(), item))
            .and_then(VecDeque::pop_front);
        (fault, revoked)
    };
    if state.lock().unwrap().down.contains(&path) {
        // What a LiteLLM proxy answers when the model behind it is down.
        return respond(
            &mut stream,
            500,
            "",
            &error_body("litellm.APIConnectionError: OpenAIException - Connection error."),
        );
    }
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
    let answer = if item == PROBE {
        "OK".to_string()
    } else {
        format!(" {sum}")
    };
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
        *s.ledger
            .reported_cost
            .entry((path.clone(), item))
            .or_default() += cost;
    };
    if request["stream"] == true {
        let usage = request["stream_options"]["include_usage"] == true
            && !state.lock().unwrap().stream_without_usage;
        let events = sse_events(anthropic, &reply, &answer, usage);
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
            deliver(state, cost);
            respond(&mut stream, 200, "", &reply.to_string())
        }
        Some(Fault::CloseMidStream) => respond(&mut stream, 200, "", &reply.to_string()),
    }
}

/// The event sequence of a streamed answer, split in two deltas, as real
/// servers send it: Anthropic's usage (through a LiteLLM proxy) as
/// `input_tokens: 0` in `message_start` and the cumulative counts in
/// `message_delta`; OpenAI's usage in a last chunk when `usage` (asked for
/// and sent by the server).
fn sse_events(anthropic: bool, reply: &Value, answer: &str, usage: bool) -> Vec<String> {
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
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
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
                "usage": u}),
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
        let mut events = vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": a}), Value::Null),
            chunk(json!({"content": b}), Value::Null),
            chunk(json!({}), json!("stop")),
        ];
        if usage {
            events.push(format!(
                "data: {}\n\n",
                json!({"id": reply["id"], "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": reply["model"], "choices": [],
                "usage": reply["usage"]})
            ));
        }
        events.push("data: [DONE]\n\n".to_string());
        events
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
    support::write_arith_suite(dir.path(), N);
    dir
}

/// A config: an OpenAI-protocol teacher and an Anthropic-protocol student,
/// both served by `server`.
fn config(dir: &Path, server: &Server, run_extra: &str) -> PathBuf {
    config_with(dir, server, run_extra, "")
}

/// As [`config`], with `model_extra` keys in both model entries.
fn config_with(dir: &Path, server: &Server, run_extra: &str, model_extra: &str) -> PathBuf {
    let teacher = format!(
        "system = \"Answer with the number only.\"\nconcurrency = 3\ntimeout_secs = 1.0\nmax_retries = 3\n{model_extra}"
    );
    let student = format!("concurrency = 2\ntimeout_secs = 1.0\n{model_extra}");
    write_config(
        dir,
        run_extra,
        &model_entry("[teacher]", "teacher", Protocol::Chat, server, &teacher),
        &model_entry(
            "[[students]]",
            "student",
            Protocol::Messages,
            server,
            &student,
        ),
    )
}

/// The API a model entry speaks, with the prices the server bills it at.
#[derive(Clone, Copy)]
enum Protocol {
    /// OpenAI Chat Completions, model `gpt-test`, at INPUT/OUTPUT/CACHED.
    Chat,
    /// Anthropic Messages, model `claude-test`, at STUDENT_INPUT/STUDENT_OUTPUT.
    Messages,
}

/// A model table: header, name, kind, URL, model and key on the lines
/// after `header`, then the `settings` lines, then the price.
fn model_entry(
    header: &str,
    name: &str,
    protocol: Protocol,
    server: &Server,
    settings: &str,
) -> String {
    let (kind, model, price) = match protocol {
        Protocol::Chat => (
            "openai",
            "gpt-test",
            format!(
                "{{ input_per_mtok = {INPUT}, output_per_mtok = {OUTPUT}, cached_input_per_mtok = {CACHED} }}"
            ),
        ),
        Protocol::Messages => (
            "anthropic",
            "claude-test",
            format!("{{ input_per_mtok = {STUDENT_INPUT}, output_per_mtok = {STUDENT_OUTPUT} }}"),
        ),
    };
    format!(
        "{header}\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\nmodel = \"{model}\"\napi_key_env = \"{KEY_VAR}\"\n{settings}\nprice = {price}\n",
        url = server.base_url
    )
}

/// Writes `gate.toml`: the `[run]` table with `run_extra` on its line 4,
/// the teacher's table from line 5, the student's, and the arithmetic suite.
fn write_config(dir: &Path, run_extra: &str, teacher: &str, student: &str) -> PathBuf {
    let text = format!(
        "[run]\nname = \"t\"\noutput_dir = \"reports\"\n{run_extra}\n{teacher}{student}[[suites]]\npath = \"suites/arith\"\n[gate]\nmax_error_rate = 1.0\nmin_retention = 0.5\n"
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

/// Each model's journaled cost of each item equals the cost of the usage
/// the server counted, at the config's prices, where the server reported
/// it; where it did not, the journal's estimate is marked and never lower.
/// `paths` says which protocol each model speaks.
fn assert_costs_match(server: &Server, entries: &[Value], paths: &[(&str, &str)]) {
    server.with(|s| {
        for (model, path) in paths {
            for e in entries.iter().filter(|e| e["model"] == *model) {
                let item: usize = e["task_id"].as_str().unwrap()[2..].parse().unwrap();
                let Some(server_cost) = s.ledger.reported_cost.get(&(path.to_string(), item))
                else {
                    assert!(e["error"].is_string() || e["cost"] == 0.0, "{e}");
                    continue;
                };
                let journal_cost = e["cost"].as_f64().unwrap();
                if e["usage"]["estimated"] == true {
                    assert!(journal_cost >= *server_cost, "{e}: server {server_cost}");
                } else {
                    assert!(
                        (journal_cost - server_cost).abs() < 1e-15,
                        "{e}: server {server_cost}"
                    );
                }
            }
        }
    });
}

/// The protocols of [`config`]: an OpenAI teacher and an Anthropic student.
const TEACHER_CHAT: &[(&str, &str)] = &[("teacher", CHAT), ("student", MESSAGES)];

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
    // No usage reported: estimated from above and marked, never free.
    assert_eq!(teacher(7)["usage"]["estimated"], true, "{}", teacher(7));
    assert!(teacher(7)["usage"]["prompt_tokens"].as_u64().unwrap() > 64);
    assert!(teacher(7)["cost"].as_f64().unwrap() > 0.0);
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
    assert_costs_match(&server, &entries, TEACHER_CHAT);

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
    assert!(
        stderr.contains("run.max_cost is $0.0004"),
        "the limit is named where it came from: {stderr}"
    );

    // The flag's limit is named as the flag's.
    let out = bin(
        dir.path(),
        &["run", "gate.toml", "--quiet", "--max-cost", "0.00001"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-cost is $0.00001"), "{stderr}");
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
    // Fails every attempt: recorded as an error, asked again on resume.
    server.fault(CHAT, 5, &[Fault::Status(500); 4]);
    config(dir.path(), &server, "");
    let out = bin(dir.path(), RECORD_TEACHER);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let read_lines = || -> Vec<Value> {
        std::fs::read_to_string(dir.path().join("teacher.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let lines = read_lines();
    assert_eq!(lines.len(), N);
    assert_eq!(
        lines.iter().filter(|l| l["error"].is_string()).count(),
        1,
        "{lines:?}"
    );
    let out = bin(dir.path(), RECORD_TEACHER);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 recorded error(s) asked again"),
        "{}",
        text(&out)
    );
    let lines = read_lines();
    assert_eq!(lines.len(), N + 1, "the error stays, answered below it");
    assert!(lines[N]["completion"]["text"].is_string());
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
    assert_costs_match(&server, &entries, TEACHER_CHAT);
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

/// A config with the protocols swapped: an Anthropic teacher (billed at the
/// Messages path's prices) and an OpenAI student, each with its own extra
/// keys (the teacher's on line 14, the student's on line 25).
fn config_anthropic_teacher(
    dir: &Path,
    server: &Server,
    run_extra: &str,
    teacher_extra: &str,
    student_extra: &str,
) -> PathBuf {
    let settings =
        |extra: &str| format!("concurrency = 2\ntimeout_secs = 1.0\nmax_retries = 2\n{extra}");
    write_config(
        dir,
        run_extra,
        &model_entry(
            "[teacher]",
            "teacher",
            Protocol::Messages,
            server,
            &settings(teacher_extra),
        ),
        &model_entry(
            "[[students]]",
            "student",
            Protocol::Chat,
            server,
            &settings(student_extra),
        ),
    )
}

/// The protocols of [`config_anthropic_teacher`].
const TEACHER_MESSAGES: &[(&str, &str)] = &[("teacher", MESSAGES), ("student", CHAT)];

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("reports/t/summary.json")).unwrap())
        .unwrap()
}

/// The whole-suite row of `model` in summary.json.
fn overall(summary: &Value, model: &str) -> Value {
    summary["model_stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model && m["category"].is_null())
        .unwrap()
        .clone()
}

#[test]
fn an_anthropic_teacher_streamed_through_a_proxy_is_billed_its_input_tokens() {
    // Issue 20.1: LiteLLM sends input_tokens 0 at message_start and the real
    // count in message_delta; the journal had prompt_tokens 0, the cost ~10x low.
    let dir = workspace();
    let server = Server::start();
    config_anthropic_teacher(dir.path(), &server, "", "stream = true", "");
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let entries = journal(dir.path());
    assert_eq!(entries.len(), 2 * N);
    for e in entries.iter().filter(|e| e["model"] == "teacher") {
        assert!(e["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{e}");
        assert!(e["usage"]["estimated"].is_null(), "{e}");
        assert!(e["latency"]["first_token_ms"].is_number(), "{e}");
    }
    assert_costs_match(&server, &entries, TEACHER_MESSAGES);
    assert_answered_once(&server);
}

#[test]
fn answers_without_usage_are_billed_an_upper_bound_marked_in_every_report() {
    // Issue 20.2: llama.cpp's server streams no usage; it was billed $0.
    let dir = workspace();
    let server = Server::start();
    server.with(|s| s.stream_without_usage = true);
    config_anthropic_teacher(dir.path(), &server, "", "", "stream = true");
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("carried no usage").count(),
        1,
        "warned once: {stderr}"
    );
    let entries = journal(dir.path());
    for e in entries.iter().filter(|e| e["model"] == "student") {
        assert_eq!(e["usage"]["estimated"], true, "{e}");
        assert!(e["cost"].as_f64().unwrap() > 0.0, "{e}");
    }
    // Never below what the server counted.
    assert_costs_match(&server, &entries, TEACHER_MESSAGES);
    let summary = summary(dir.path());
    assert_eq!(overall(&summary, "student")["estimated_usage"], N);
    assert!(overall(&summary, "teacher")["estimated_usage"].is_null());
    let run = dir.path().join("reports/t");
    for report in ["report.md", "report.html", "junit.xml"] {
        let text = std::fs::read_to_string(run.join(report)).unwrap();
        assert!(
            text.contains("Estimated cost: 12 of student"),
            "{report} marks the estimate"
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("Estimated cost: 12 of student"));
    // The student's cost figures are marked where they are shown.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("≈$"), "{md}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("≈$"));
    let stats = std::fs::read_to_string(run.join("stats.csv")).unwrap();
    assert!(stats.lines().next().unwrap().contains("estimated_usage"));
    let results = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(results.matches(",true,").count(), N, "{results}");
}

#[test]
fn a_budget_holds_when_the_server_reports_no_usage() {
    // Issue 20.2: with no usage, spend never grew and max_cost never stopped a run.
    let dir = workspace();
    let server = Server::start();
    server.with(|s| s.stream_without_usage = true);
    // The student's estimated answers cost about (prompt bytes + 64) * 1.5e-6
    // + ~5 * 6e-6 each: $0.0012 covers a few of them and the teacher's.
    config_anthropic_teacher(
        dir.path(),
        &server,
        "max_cost = 0.0012",
        "",
        "stream = true",
    );
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("budget: run.max_cost is $0.0012"),
        "{}",
        text(&out)
    );
    let entries = journal(dir.path());
    let student: Vec<&Value> = entries.iter().filter(|e| e["model"] == "student").collect();
    assert!(
        !student.is_empty() && student.len() < N,
        "{}",
        student.len()
    );
    let spent: f64 = entries.iter().map(|e| e["cost"].as_f64().unwrap()).sum();
    assert!(spent <= 0.0012, "spent {spent}");
}

#[test]
fn a_proxy_whose_backend_is_down_is_reported_and_a_resume_asks_again() {
    // Issue 20.3: every teacher item errored; the run exited 2 ("McNemar: no
    // observations") with no report, and a rerun asked nothing.
    let dir = workspace();
    let server = Server::start();
    server.with(|s| s.down.push(CHAT.to_string()));
    let path = config(dir.path(), &server, "");
    let text_before = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text_before.replacen("max_retries = 3", "max_retries = 1", 1),
    )
    .unwrap();
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "inconclusive, not broken: {}",
        text(&out)
    );
    let run = dir.path().join("reports/t");
    for report in [
        "summary.json",
        "report.md",
        "report.html",
        "junit.xml",
        "stats.csv",
        "results.csv",
    ] {
        assert!(run.join(report).exists(), "{report} written");
    }
    let s = summary(dir.path());
    let cmp = &s["comparisons"][0];
    assert_eq!(cmp["n"], 0, "{cmp}");
    assert_eq!(cmp["measurable"], false);
    assert!(cmp["mcnemar_p"].is_null());
    let gate = &s["gates"][0];
    assert_eq!(gate["verdict"], "INCONCLUSIVE", "{gate}");
    let reasons = gate["reasons"].to_string();
    assert!(reasons.contains("no paired items"), "{reasons}");
    assert!(reasons.contains("teacher has no answer"), "{reasons}");
    assert_eq!(overall(&s, "teacher")["errors"], N);
    assert_eq!(overall(&s, "teacher")["unanswered"], N);

    // The backend is back: a plain rerun asks the errored items again.
    server.with(|s| s.down.clear());
    let before = server.with(|s| s.ledger.requests.values().sum::<usize>());
    let out = bin(dir.path(), &["run", "gate.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("12 item(s) journaled as errors"),
        "{}",
        text(&out)
    );
    let after = server.with(|s| s.ledger.requests.values().sum::<usize>());
    assert_eq!(after - before, N, "only the errored items are asked");
    let s = summary(dir.path());
    assert_eq!(s["comparisons"][0]["n"], N);
    assert_eq!(s["gates"][0]["verdict"], "PASS");
    // The failed attempts stay in the journal and in the error rate.
    let teacher = overall(&s, "teacher");
    assert_eq!(
        (teacher["errors"].as_u64(), teacher["unanswered"].as_u64()),
        (Some(N as u64), None)
    );
    assert_eq!(teacher["accuracy"], 1.0);
    let lines = journal(dir.path());
    assert_eq!(lines.len(), 3 * N);
    assert!(
        lines
            .iter()
            .filter(|e| e["model"] == "teacher" && e["error"].is_null())
            .all(|e| e["prior_errors"] == 1)
    );
}

#[test]
fn extra_body_fields_are_sent_and_bind_the_answers() {
    // Issue 20.4: llama.cpp's server applies repeat_penalty 1.1 unless told.
    let dir = workspace();
    let server = Server::start();
    let path = config_anthropic_teacher(
        dir.path(),
        &server,
        "",
        "",
        "extra_body = { repeat_penalty = 1.0, top_k = 1 }",
    );
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    server.with(|s| {
        let body = &s.ledger.bodies[CHAT];
        assert_eq!(body["repeat_penalty"], 1.0, "{body}");
        assert_eq!(body["top_k"], 1);
        assert!(s.ledger.bodies[MESSAGES].get("repeat_penalty").is_none());
    });
    // The reports name the fields with the model.
    let backend = summary(dir.path())["models"][1]["backend"].clone();
    assert!(
        backend
            .as_str()
            .unwrap()
            .ends_with(r#"with extra_body {"repeat_penalty":1.0,"top_k":1}"#),
        "{backend}"
    );
    let report = std::fs::read_to_string(dir.path().join("reports/t/report.md")).unwrap();
    assert!(report.contains(r#"extra\_body {"repeat\_penalty":1.0,"top\_k":1}"#));
    // Other fields are another model: another identity, and another cache
    // key, so a fresh run asks the server again rather than reuse answers
    // given under other fields.
    let id_before = summary(dir.path())["models"][1]["model_id"].clone();
    let before = server.with(|s| s.ledger.requests.values().sum::<usize>());
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("repeat_penalty = 1.0", "repeat_penalty = 1.1");
    std::fs::write(&path, changed).unwrap();
    let out = bin(dir.path(), &["run", "gate.toml", "--quiet", "--fresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = server.with(|s| s.ledger.requests.values().sum::<usize>());
    assert_eq!(
        after - before,
        N,
        "only the student's answers are asked again"
    );
    assert_ne!(summary(dir.path())["models"][1]["model_id"], id_before);

    // What the client sends itself cannot be overridden.
    let bad = std::fs::read_to_string(&path)
        .unwrap()
        .replace("top_k = 1", "temperature = 0.5");
    std::fs::write(&path, bad).unwrap();
    let out = bin(dir.path(), &["validate", "gate.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gate.toml:25") && stderr.contains("students[0].extra_body"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"temperature\" is sent by distill-gate itself"),
        "{stderr}"
    );
}

#[test]
fn validate_online_sends_one_tiny_request_per_api_model() {
    // Issue 20.6.
    let dir = workspace();
    let server = Server::start();
    server.with(|s| s.stream_without_usage = true);
    config_anthropic_teacher(dir.path(), &server, "", "", "stream = true");
    let out = bin(dir.path(), &["validate", "gate.toml", "--online"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("teacher: gate.toml:5 (teacher): reachable, key accepted, answered \"OK\""),
        "{stdout}"
    );
    assert!(stdout.contains("the server lists the model"), "{stdout}");
    assert!(
        stdout.contains("student: gate.toml:16 (students[0])")
            && stdout.contains("WARNING: no usage reported"),
        "{stdout}"
    );
    server.with(|s| {
        assert_eq!(s.ledger.requests[&(MESSAGES.to_string(), PROBE)], 1);
        assert_eq!(s.ledger.requests[&(CHAT.to_string(), PROBE)], 1);
    });
    // Nothing is journaled or cached by a validation.
    assert!(!dir.path().join("reports/t/results.jsonl").exists());

    // A refused key names the key's line; a backend that is down, the URL's.
    server.with(|s| {
        s.revoke_after = Some(0);
    });
    let out = bin(dir.path(), &["validate", "gate.toml", "--online"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gate.toml:10: teacher.api_key_env") && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY), "the key is redacted: {stderr}");
    server.with(|s| {
        s.revoke_after = None;
        s.down.push(CHAT.to_string());
    });
    let out = bin(dir.path(), &["validate", "gate.toml", "--online"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gate.toml:19: students[0].base_url") && stderr.contains("HTTP 500"),
        "{stderr}"
    );
}
