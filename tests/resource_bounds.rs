//! Resource bounds of `distill-gate run`: a 1 GB suite file, a 100,000-item
//! suite, a 10 MB completion, a model that never stops, and answers of any
//! length. Memory stays bounded (measured as the child's peak RSS), and
//! every run ends with a clear result or a clear error.

mod support;

use std::process::Output;
use std::time::Instant;

use support::{Workspace, arith, text};

/// Runs `distill-gate <args>` and returns its output and its peak RSS in
/// bytes (from `wait4`, for this child alone).
#[allow(clippy::zombie_processes)] // reaped by `wait4` below, which std cannot do
fn run_measured(ws: &Workspace, args: &[&str]) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = ws
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, writing into values we own. The
    // `Child` is not waited on afterwards (dropping it does not wait).
    let rss_kb = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut ru), pid);
        ru.ru_maxrss as u64
    };
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    (out, rss_kb * 1024)
}

const MB: u64 = 1 << 20;

#[test]
fn a_1gb_suite_file_is_refused_before_it_is_read() {
    let ws = arith(10);
    standard_models_small(&ws);
    // 1 GiB, sparse: the size check comes before any byte is read.
    let path = ws.path().join("suites/s/test.jsonl");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.set_len(1 << 30).expect("grow to 1 GiB");
    let (out, rss) = run_measured(&ws, &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("test.jsonl") && all.contains("more than the 256 MiB a split may hold"),
        "{all}"
    );
    assert!(rss < 200 * MB, "peak RSS {} MB", rss / MB);
}

fn standard_models_small(ws: &Workspace) {
    let models = support::standard_models(ws);
    ws.config(&models, "");
}

/// A run over `items` arithmetic items whose three replayed models answer
/// with `padding` bytes of words before the number; its peak RSS.
fn run_with_answers_of(items: usize, padding: usize) -> u64 {
    let ws = arith(items);
    let answer = |right: bool, t: &distill_gate::suite::Task| {
        let target = t.target.as_f64().unwrap_or(0.0);
        let said = if right { target } else { target + 1.0 };
        format!("{} {said}", "so ".repeat(padding / 3))
    };
    ws.transcript("teacher", |i, t| answer(i % 10 != 0, t));
    ws.transcript("good", |i, t| answer(i % 10 != 0, t));
    ws.transcript("bad", |i, t| answer(i % 2 == 0, t));
    ws.config(&["teacher", "good", "bad"], "");
    let (out, rss) = run_measured(&ws, &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let csv = std::fs::read_to_string(ws.run_dir().join("results.csv")).expect("results.csv");
    assert_eq!(csv.lines().count(), 1 + 3 * items, "one row per answer");
    assert!(
        csv.len() > 3 * items * padding,
        "results.csv holds every answer"
    );
    rss
}

/// The run holds its answers' numbers, not their text: the transcripts are
/// indexed and read back per request, the journal keeps a digest per line,
/// and the reports read answers back from the journal as they write them.
/// 3,000 items answered with 8 KB each (72 MB per replayed model, 216 MB
/// of journal) take about the memory of the same run with 3-byte answers.
#[test]
fn memory_does_not_grow_with_the_length_of_the_answers() {
    let short = run_with_answers_of(3_000, 0);
    let long = run_with_answers_of(3_000, 8 * 1024);
    eprintln!(
        "peak RSS: {} MB with short answers, {} MB with 8 KB answers",
        short / MB,
        long / MB
    );
    assert!(
        long < short + 60 * MB,
        "8 KB answers: {} MB, short answers: {} MB",
        long / MB,
        short / MB
    );
}

#[test]
fn a_10mb_completion_and_a_model_that_never_stops_end_with_a_result() {
    let ws = arith(20);
    // The teacher rambles on: item 0 is 10 MB of text that never reaches a
    // stop sequence (finish = length), item 1 ends in the right answer
    // after 1 MB of noise.
    ws.transcript("teacher", |i, t| {
        let target = t.target.as_f64().unwrap_or(0.0);
        match i {
            0 => "9 ".repeat(5 * MB as usize),
            1 => format!("{} {target}", "so ".repeat(MB as usize / 3)),
            _ => format!(" {target}"),
        }
    });
    ws.transcript("good", |_, t| {
        format!(" {}", t.target.as_f64().unwrap_or(0.0))
    });
    ws.transcript("bad", |_, _| " 0".into());
    ws.config(&["teacher", "good", "bad"], "");
    let (out, rss) = run_measured(&ws, &["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary = std::fs::read_to_string(ws.run_dir().join("summary.json")).expect("summary");
    assert!(
        summary.len() < MB as usize,
        "summary.json is {} bytes",
        summary.len()
    );
    eprintln!("peak RSS {} MB", rss / MB);
    // The whole 10 MB answer is held a few times over at most.
    assert!(rss < 400 * MB, "peak RSS {} MB", rss / MB);
}

/// 100,000 items, three models: 300,000 journal lines. Slow in debug
/// builds and on small CI machines, so run on demand:
/// `cargo test --release --test resource_bounds -- --ignored`.
#[test]
#[ignore]
fn a_100k_item_suite_runs_with_bounded_memory_and_visible_progress() {
    let items: usize = std::env::var("BIG_SUITE_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ws = arith(items);
    standard_models_small(&ws);
    let started = Instant::now();
    let (out, rss) = run_measured(&ws, &["run", "gate.toml"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&items.to_string()),
        "no progress shown: {stderr}"
    );
    eprintln!(
        "{items} items x 3 models: {took:?}, peak RSS {} MB",
        rss / MB
    );
    assert!(rss < 1024 * MB, "peak RSS {} MB", rss / MB);
}
