//! Prefill and decode throughput (tokens/s) of a small random Llama model
//! at batch 1 and 16, on flex and ndarray. Decode steps include the LM head
//! and reading the logits back to the host, as generation does.
//!
//! Run: `cargo bench --bench decode -- --quick`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use distill_gate::llm::{Backend, LlamaConfig, LlamaDecoder};

const PROMPT: usize = 64;
const DECODE_STEPS: usize = 16;

fn small_config() -> LlamaConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 4096,
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "tie_word_embeddings": true
    }))
    .expect("valid config")
}

fn prompt_block(batch: usize) -> Vec<u32> {
    (0..batch * PROMPT)
        .map(|i| (i * 7919 % 4000) as u32 + 1)
        .collect()
}

/// Reads the last column's logits to the host, as generation does.
fn read_last_logits(decoder: &LlamaDecoder, hidden: burn::tensor::Tensor<3>) -> Vec<f32> {
    let [rows, cols, width] = hidden.dims();
    let last = hidden
        .slice([0..rows, cols - 1..cols, 0..width])
        .reshape([rows, width]);
    decoder.logits(last).into_data().iter::<f32>().collect()
}

fn bench(c: &mut Criterion) {
    // As the binary runs (src/allocator.rs).
    distill_gate::allocator::keep_freed_memory();
    let config = small_config();
    for backend in Backend::ALL {
        let decoder = LlamaDecoder::init_random(&config, &backend.device(), 1).expect("model");
        for batch in [1usize, 16] {
            let block = prompt_block(batch);
            let mut group = c.benchmark_group(format!("{backend}/batch{batch}"));
            group.throughput(Throughput::Elements((batch * PROMPT) as u64));
            group.bench_function("prefill", |b| {
                b.iter(|| {
                    let mut cache = decoder.new_cache(vec![0; batch], PROMPT);
                    let hidden = decoder
                        .forward_cached(&block, PROMPT, &mut cache)
                        .expect("prefill");
                    black_box(read_last_logits(&decoder, hidden))
                })
            });
            group.throughput(Throughput::Elements((batch * DECODE_STEPS) as u64));
            group.bench_function("decode", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut cache = decoder.new_cache(vec![0; batch], PROMPT + DECODE_STEPS);
                        let hidden = decoder
                            .forward_cached(&block, PROMPT, &mut cache)
                            .expect("prefill");
                        black_box(read_last_logits(&decoder, hidden));
                        let step: Vec<u32> = (0..batch as u32).map(|i| i + 5).collect();
                        let start = Instant::now();
                        for _ in 0..DECODE_STEPS {
                            let hidden = decoder
                                .forward_cached(&step, 1, &mut cache)
                                .expect("decode");
                            black_box(read_last_logits(&decoder, hidden));
                        }
                        total += start.elapsed();
                    }
                    total
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
