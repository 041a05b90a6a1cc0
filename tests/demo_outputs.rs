//! The demo's answers and scores are those of the committed example run
//! (`reports/example/results.jsonl`), bit for bit: every change to the
//! runtime's speed (batching, kernels, threads) must keep the students'
//! greedy outputs, and every change to the harness must keep the scores.
//! Latencies and costs are measured anew and not compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use distill_gate::run::journal::{self, JournalEntry};

mod support;

type Key = (String, String, String, u32);

fn by_key(path: &Path) -> BTreeMap<Key, JournalEntry> {
    journal::read(path)
        .unwrap_or_else(|p| panic!("{}: {p}", path.display()))
        .into_iter()
        .map(|e| {
            (
                (
                    e.model.clone(),
                    e.suite.clone(),
                    e.task_id.clone(),
                    e.sample,
                ),
                e,
            )
        })
        .collect()
}

#[test]
fn demo_outputs_and_scores_match_the_committed_example_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        support::demo_config(120, &dir.path().join("reports")),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(["run", "gate.toml", "--quiet"])
        .current_dir(dir.path())
        .output()
        .expect("spawn distill-gate");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        support::text(&out)
    );
    let got = by_key(&dir.path().join("reports/demo/results.jsonl"));
    let want = by_key(&support::repo_root().join("reports/example/results.jsonl"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same items were answered"
    );
    let differing: Vec<String> = want
        .iter()
        .filter(|(k, w)| {
            let g = &got[*k];
            g.output != w.output
                || g.score.to_bits() != w.score.to_bits()
                || g.detail != w.detail
                || g.extracted != w.extracted
                || g.error != w.error
        })
        .map(|(k, w)| {
            let g = &got[k];
            format!(
                "{k:?}: output {:?} (was {:?}), score {} (was {})",
                g.output, w.output, g.score, w.score
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} answers differ from reports/example; first: {:#?}",
        differing.len(),
        want.len(),
        &differing[..differing.len().min(5)]
    );
}
