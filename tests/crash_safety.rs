//! Crash safety of `distill-gate run`: the binary is killed with SIGKILL at
//! seeded random moments and while a journal line is half written, then
//! resumed, again and again. The finished run must give the same
//! `summary.json`, byte for byte, as a run never interrupted, and no
//! (model, task, sample) may be journaled twice: a result on disk is never
//! asked for again, and a torn last line is redone, never misread.

mod support;

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use distill_gate::run::journal::{JournalEntry, TEAR_AT_ENV, TORN_NOTICE};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use support::{Workspace, arith, standard_models, text};

const ITEMS: usize = 300;

/// (model, task, sample) of every complete journal line, checking that each
/// complete line parses and that none repeats.
fn journaled(journal: &Path) -> Vec<(String, String, u32)> {
    let bytes = std::fs::read(journal).unwrap_or_default();
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break; // a torn last line: not journaled
        }
        let entry: JournalEntry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => panic!("complete journal line does not parse ({e}): {line:?}"),
        };
        let key = (entry.model, entry.task_id, entry.sample);
        assert!(seen.insert(key.clone()), "{key:?} journaled twice");
        keys.push(key);
    }
    keys
}

/// Complete lines in the journal.
fn journaled_lines(journal: &Path) -> usize {
    std::fs::read(journal).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn kill(mut child: Child) {
    // SIGKILL: no clean-up, as a crash or an OOM kill would leave it.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn start(ws: &Workspace, tear_at: Option<usize>) -> Child {
    let mut c = ws.command(&["run", "gate.toml", "--quiet"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(n) = tear_at {
        c.env(TEAR_AT_ENV, n.to_string()).stderr(Stdio::piped());
    }
    c.spawn().expect("spawn distill-gate")
}

/// Waits until the tear hook says the torn line is on disk (it then
/// sleeps); false after the timeout or if the child ends first. The file
/// alone cannot tell: it also ends without a newline while a batch is being
/// written, or while an earlier kill's torn line awaits truncation.
fn wait_for_torn_line(child: &mut Child, timeout: Duration) -> bool {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line == TORN_NOTICE {
                let _ = tx.send(());
                break;
            }
        }
    });
    rx.recv_timeout(timeout).is_ok()
}

#[test]
fn sigkill_at_random_points_and_mid_line_resumes_to_the_same_summary() {
    // The reference: one uninterrupted run.
    let reference = arith(ITEMS);
    let models = standard_models(&reference);
    reference.config(&models, "");
    let started = Instant::now();
    let out = reference.run(&["run", "gate.toml", "--quiet"]);
    let full_run = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = std::fs::read(reference.run_dir().join("summary.json")).expect("summary");
    let total = 3 * ITEMS;
    assert_eq!(
        journaled(&reference.run_dir().join("results.jsonl")).len(),
        total
    );

    // The victim: the same inputs, killed over and over.
    let ws = arith(ITEMS);
    standard_models(&ws);
    ws.config(&models, "");
    let journal = ws.run_dir().join("results.jsonl");
    let mut rng = ChaCha8Rng::seed_from_u64(20261125);
    let mut kills = 0;
    let mut torn = 0;
    let mut before: Vec<(String, String, u32)> = Vec::new();
    for round in 0..120 {
        let done = before.len();
        if done >= total {
            break;
        }
        // Three kinds of kill point: a seeded random moment (from start-up
        // on), right after the journal has grown by a random number of
        // lines, and (most often) in the middle of writing a line. The
        // replay models answer in batches of 256, so the first two can
        // overshoot by a whole batch; the mid-line kills advance by at most
        // ten lines, which keeps the number of kill points above twenty
        // however the timing falls.
        let child = match round % 10 {
            0 => {
                let child = start(&ws, None);
                let ms = rng.random_range(0..=full_run.as_millis() as u64 / 40);
                std::thread::sleep(Duration::from_millis(ms));
                child
            }
            5 => {
                let mut child = start(&ws, None);
                let want = done + rng.random_range(1..=total / 150);
                while journaled_lines(&journal) < want && child.try_wait().ok().flatten().is_none()
                {
                    std::thread::sleep(Duration::from_micros(200));
                }
                child
            }
            _ => {
                let mut child = start(&ws, Some(rng.random_range(0..(total - done).min(10))));
                assert!(
                    wait_for_torn_line(&mut child, Duration::from_secs(30)),
                    "the tear hook never left a torn line"
                );
                torn += 1;
                child
            }
        };
        kills += 1;
        kill(child);

        let after = journaled(&journal);
        // Nothing journaled is lost, and nothing journaled is asked again
        // (a re-asked item would be appended a second time).
        assert!(after.len() >= before.len(), "round {round}: lines lost");
        assert_eq!(
            after[..before.len()],
            before[..],
            "round {round}: journal rewritten"
        );
        before = after;
    }
    assert!(kills >= 20, "only {kills} kills before the run finished");
    assert!(torn >= 5, "only {torn} mid-line kills");

    // The final resume finishes the run.
    let out = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let keys = journaled(&journal);
    assert_eq!(keys.len(), total, "every (model, task) exactly once");
    let got = std::fs::read(ws.run_dir().join("summary.json")).expect("summary");
    assert!(
        got == want,
        "summary.json differs after {kills} kills ({torn} mid-line)"
    );
    eprintln!(
        "{kills} kills ({torn} mid-line), {} of {total} lines journaled before the last resume",
        before.len()
    );
}

#[test]
fn torn_last_line_is_redone_not_misread() {
    let ws = arith(30);
    let models = standard_models(&ws);
    ws.config(&models, "");
    let mut child = start(&ws, Some(17));
    let journal = ws.run_dir().join("results.jsonl");
    assert!(wait_for_torn_line(&mut child, Duration::from_secs(30)));
    kill(child);
    let bytes = std::fs::read(&journal).expect("journal");
    let tail_start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[tail_start..];
    assert!(!tail.is_empty() && serde_json::from_slice::<JournalEntry>(tail).is_err());
    assert_eq!(journaled(&journal).len(), 17);

    // `report` on the torn journal reads the complete lines and says the
    // run is unfinished, without crashing.
    let out = ws.run(&["report", "reports/t"]);
    assert!(!text(&out).contains("panicked"), "{}", text(&out));

    let out = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(journaled(&journal).len(), 90);
    let bytes = std::fs::read(&journal).expect("journal");
    assert!(bytes.ends_with(b"\n"));
    // The torn half line is gone: line 18 is the redone line in full.
    let line18 = bytes.split(|&b| b == b'\n').nth(17).unwrap_or_default();
    assert!(line18.starts_with(tail) && line18.len() > tail.len());
}

/// Determinism: the same inputs and seed give a byte-identical
/// `summary.json` run after run, on every core or pinned to one (the
/// scorers' thread pool and the bootstrap then see one thread).
#[test]
fn summary_is_byte_identical_across_runs_and_thread_counts() {
    let ws = arith(200);
    let models = standard_models(&ws);
    ws.config(&models, "");
    let summary = |command: &mut std::process::Command| {
        let out = command.output().expect("spawn");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        std::fs::read(ws.run_dir().join("summary.json")).expect("summary")
    };
    let args = ["run", "gate.toml", "--quiet", "--fresh"];
    let first = summary(&mut ws.command(&args));
    let again = summary(&mut ws.command(&args));
    assert!(first == again, "two runs differ");
    let mut one_thread = ws.command(&args);
    one_thread.env("RAYON_NUM_THREADS", "1");
    let taskset = std::path::Path::new("/usr/bin/taskset");
    if taskset.exists() {
        one_thread = std::process::Command::new(taskset);
        one_thread
            .args(["-c", "0", env!("CARGO_BIN_EXE_distill-gate")])
            .args(args)
            .current_dir(ws.path())
            .env("RAYON_NUM_THREADS", "1");
    }
    let single = summary(&mut one_thread);
    assert!(first == single, "one core and all cores differ");
}
