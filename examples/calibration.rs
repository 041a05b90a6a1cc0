//! Regenerates the calibration table of docs/calibration.md.
//!
//! ```text
//! cargo run --release --example calibration [-- --sims 2000 --resamples 1000 --threads 2]
//! ```
//!
//! Simulates every scenario of `distill_gate::calibration::full_grid` with
//! every interval method on the same simulated suites and prints a markdown
//! table: coverage of the two-sided 95% interval, coverage of the one-sided
//! 95% lower bound, and the gate's PASS rate when the threshold equals the
//! true retention (all in percent).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use distill_gate::calibration::{SimulationOptions, full_grid, markdown_table, simulate_all};

fn main() -> Result<()> {
    let mut opts = SimulationOptions::default();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sims" => opts.simulations = value.parse().context("--sims")?,
            "--resamples" => opts.resamples = value.parse().context("--resamples")?,
            "--threads" => threads = value.parse().context("--threads")?,
            "--seed" => opts.seed = value.parse().context("--seed")?,
            other => {
                bail!("unknown flag {other} (expected --sims, --resamples, --threads, --seed)")
            }
        }
    }
    let grid = full_grid()?;
    let start = Instant::now();
    let results = simulate_all(&grid, &opts, threads)?;
    println!(
        "Simulated suites per row: {}; bootstrap resamples: {}; confidence: {}; \
         min_teacher_correct: {}; seed: {}.\n",
        opts.simulations, opts.resamples, opts.confidence, opts.min_teacher_correct, opts.seed
    );
    print!("{}", markdown_table(&results));
    eprintln!(
        "{} scenarios in {:.1} s",
        grid.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
