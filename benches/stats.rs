//! Benchmarks of the statistics behind the gate: the paired bootstrap at its
//! default size (10,000 resamples) on 10,000 items, binary and fractional.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use distill_gate::stats::{BootstrapOptions, mcnemar_exact, paired_bootstrap_retention, summarize};

/// Deterministic paired scores: item `i` is right for the teacher unless
/// `i % 5 == 0`, for the student unless `i % 7 == 0`.
fn binary_items(n: usize) -> (Vec<f64>, Vec<f64>) {
    let teacher = (0..n).map(|i| f64::from(u8::from(i % 5 != 0))).collect();
    let student = (0..n).map(|i| f64::from(u8::from(i % 7 != 0))).collect();
    (teacher, student)
}

fn bootstrap(c: &mut Criterion) {
    let mut group = c.benchmark_group("paired_bootstrap_10k_resamples");
    group.sample_size(10);
    let opts = BootstrapOptions::default();
    let (teacher, student) = binary_items(10_000);
    group.bench_function("binary_10k_items", |b| {
        b.iter(|| paired_bootstrap_retention(black_box(&teacher), black_box(&student), &opts))
    });
    let fractional: Vec<f64> = student.iter().map(|s| s * 0.75).collect();
    group.bench_function("fractional_10k_items", |b| {
        b.iter(|| paired_bootstrap_retention(black_box(&teacher), black_box(&fractional), &opts))
    });
    group.finish();
}

fn small_stats(c: &mut Criterion) {
    let (teacher, student) = binary_items(10_000);
    let t: Vec<bool> = teacher.iter().map(|&x| x == 1.0).collect();
    let s: Vec<bool> = student.iter().map(|&x| x == 1.0).collect();
    c.bench_function("mcnemar_exact_10k", |b| {
        b.iter(|| mcnemar_exact(black_box(&t), black_box(&s)))
    });
    let latencies: Vec<f64> = (0..10_000).map(|i| f64::from((i * 7919) % 1000)).collect();
    c.bench_function("summarize_10k", |b| {
        b.iter(|| summarize(black_box(&latencies)))
    });
}

criterion_group!(benches, bootstrap, small_stats);
criterion_main!(benches);
