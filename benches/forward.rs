//! GFLOP/s of the batched forward of the student architecture next to a
//! plain matmul, on flex, in one run (the issue's "at least 50% of the
//! matmul GFLOP/s").
//!
//! - `matmul`: a 512 x 1024 by 1024 x 1024 f32 product (1.07 GFLOP).
//! - `forward/<arch>`: `LlamaDecoder::forward_hidden` (the differentiable,
//!   cache-free forward that scoring and distillation run) over 16 rows of
//!   128 tokens, random weights, no download. FLOPs are counted from the
//!   architecture: `2 x` the layers' matrix weights per token, plus the
//!   attention products `4 x seq x hidden` per token and layer (the full
//!   square is computed under the causal mask). Norms, RoPE, softmax and
//!   SiLU are not counted, so the figure is a lower bound.
//!
//! Run: `cargo bench --bench forward`. After criterion's figures it prints
//! each forward's GFLOP/s as a share of the matmul's, from the medians of
//! the same run.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, Throughput};
use distill_gate::llm::{Backend, LlamaConfig, LlamaDecoder, TokenBatch};

const ROWS: usize = 16;
const SEQ: usize = 128;

/// The architectures measured: SmolLM2-135M (the teacher's, and a student
/// distilled at full size) and the largest demo student (s6m).
fn architectures() -> Vec<(&'static str, LlamaConfig)> {
    let arch =
        |hidden: usize, inter: usize, layers: usize, heads: usize, kv: usize, vocab: usize| {
            serde_json::from_value(serde_json::json!({
                "vocab_size": vocab,
                "hidden_size": hidden,
                "intermediate_size": inter,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "num_key_value_heads": kv,
                "max_position_embeddings": 2048,
                "tie_word_embeddings": true
            }))
            .expect("valid config")
        };
    vec![
        ("smollm2-135m", arch(576, 1536, 30, 9, 3, 49152)),
        ("s6m", arch(288, 768, 6, 6, 2, 1024)),
    ]
}

/// FLOPs of one `forward_hidden` over `ROWS x SEQ` tokens (see the module
/// docs).
fn forward_flops(c: &LlamaConfig) -> f64 {
    let h = c.hidden_size as f64;
    let kv = (c.kv_heads() * c.head_dim()) as f64;
    let per_layer_weights = h * h * 2.0 + h * kv * 2.0 + 3.0 * h * c.intermediate_size as f64;
    let tokens = (ROWS * SEQ) as f64;
    let per_token = c.num_hidden_layers as f64 * (2.0 * per_layer_weights + 4.0 * SEQ as f64 * h);
    tokens * per_token
}

/// Median seconds per iteration over criterion's samples.
fn median(samples: &RefCell<Vec<f64>>) -> f64 {
    let mut v = samples.borrow().clone();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times `f` like criterion's `iter`, keeping each sample's mean for the
/// ratio printed at the end.
fn timed(samples: &RefCell<Vec<f64>>, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let took = start.elapsed();
    samples
        .borrow_mut()
        .push(took.as_secs_f64() / iters.max(1) as f64);
    took
}

fn main() {
    // As the binary runs (src/allocator.rs).
    distill_gate::allocator::keep_freed_memory();
    let device = Backend::Flex.device();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    let (m, k, n) = (512, 1024, 1024);
    let a = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
    let matmul_flops = 2.0 * (m * k * n) as f64;
    let matmul_samples = RefCell::new(Vec::new());
    let mut group = c.benchmark_group("gflops");
    group.throughput(Throughput::Elements(matmul_flops as u64));
    group.bench_function("matmul_512x1024x1024", |bench| {
        bench.iter_custom(|iters| {
            timed(&matmul_samples, iters, || {
                black_box(a.clone().matmul(b.clone()).into_data());
            })
        })
    });

    let mut forwards = Vec::new();
    for (name, config) in architectures() {
        let decoder = LlamaDecoder::init_random(&config, &device, 1).expect("model");
        let sequences: Vec<Vec<u32>> = (0..ROWS)
            .map(|r| {
                (0..SEQ)
                    .map(|i| ((r * 7919 + i * 104_729) % (config.vocab_size - 1)) as u32 + 1)
                    .collect()
            })
            .collect();
        let batch = TokenBatch::left_padded(&sequences, 0).expect("batch");
        let flops = forward_flops(&config);
        let samples = RefCell::new(Vec::new());
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(format!("forward_{name}_{ROWS}x{SEQ}"), |bench| {
            bench.iter_custom(|iters| {
                timed(&samples, iters, || {
                    let hidden = decoder.forward_hidden(&batch).expect("forward");
                    black_box(hidden.into_data());
                })
            })
        });
        forwards.push((name, flops, samples));
    }
    group.finish();
    c.final_summary();

    let matmul_gflops = matmul_flops / median(&matmul_samples) / 1e9;
    println!("matmul 512x1024x1024: {matmul_gflops:.1} GFLOP/s (median)");
    for (name, flops, samples) in &forwards {
        let gflops = flops / median(samples) / 1e9;
        println!(
            "forward {name} ({ROWS} x {SEQ} tokens): {gflops:.1} GFLOP/s = {:.0}% of the matmul",
            100.0 * gflops / matmul_gflops
        );
    }
}
