//! The harness alone: a 10,000-item suite answered by three replayed
//! models (teacher and two students, 30,000 answers) is scored, journaled,
//! summarised with the paired percentile bootstrap (10,000 resamples) and
//! reported (every format), end to end through `distill-gate run --fresh`.
//! The target is under one second.
//!
//! Run: `cargo bench --bench harness`. After criterion's figure it prints
//! the run's own split of the time (`timings.json`); with `HARNESS_KEEP=1`
//! it keeps the workspace for profiling.

use std::time::Duration;

use criterion::{Criterion, Throughput};

#[path = "../tests/support/mod.rs"]
mod support;

const ITEMS: usize = 10_000;

fn main() {
    let ws = support::arith(ITEMS);
    let models = support::standard_models(&ws);
    ws.config(&models, "[gate]\ninterval = \"percentile\"\n");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = c.benchmark_group("harness");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("run_10k_items_3_replay_models", |b| {
        b.iter(|| {
            let out = ws.run(&["run", "gate.toml", "--fresh", "--quiet"]);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{}",
                support::text(&out)
            );
        })
    });
    group.finish();
    c.final_summary();
    let timings = ws.run_dir().join("timings.json");
    match std::fs::read_to_string(&timings) {
        Ok(t) => println!("split of the last run ({}):\n{t}", timings.display()),
        Err(e) => println!("{}: {e}", timings.display()),
    }
    // HARNESS_KEEP=1 keeps the workspace for profiling by hand.
    if std::env::var_os("HARNESS_KEEP").is_some() {
        println!("workspace kept: {}", ws.dir.keep().display());
    }
}
