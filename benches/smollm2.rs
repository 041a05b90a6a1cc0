//! Prefill and decode throughput (tokens/s) of the real SmolLM2-135M-Instruct
//! (Q4_1 GGUF) at batch 1 and 16: on flex and ndarray as `generate` runs it
//! (decode-shaped products from the quantized blocks, the rest in f32), and
//! on flex from the dequantized f32 weights alone (`flex-f32`).
//!
//! Prefill: one `forward_cached` over a block of 64-token prompts plus the
//! LM head on the last column, read back to the host. Decode: 16 greedy
//! steps (LM head, logits to the host, argmax) after that prefill; the
//! prefill itself is not timed. Throughput is in tokens (rows x columns).
//!
//! Run: `cargo bench --bench smollm2`. The model path is
//! `models/SmolLM2-135M-Instruct.Q4_1.gguf` or `$SMOLLM2_GGUF`; when the file
//! is absent the bench prints `SKIPPED` and exits successfully.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::Tensor;
use criterion::{Criterion, Throughput};
use distill_gate::llm::{Backend, Checkpoint, KvCache, LlamaDecoder};

const PROMPT: usize = 64;
const DECODE_STEPS: usize = 16;
const BATCHES: [usize; 2] = [1, 16];

/// The text the prompts are cut from (the shipment prompts of
/// `scripts/bench_smollm2.py`, repeated until 64 tokens).
fn prompt_text(i: usize) -> String {
    format!(
        "Shipment {i}: {} pallets of machine parts leave the Hamburg depot on Monday \
         for a customer in Lyon; the carrier quotes a transit time of three business \
         days, a fuel surcharge of twelve percent and a weight of {} kg per pallet. Summary:",
        2 + i % 5,
        310 + 17 * i
    )
}

fn model_path() -> PathBuf {
    std::env::var_os("SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        })
}

/// `batch` rows of exactly `PROMPT` real tokens, row-major.
fn prompt_block(ckpt: &Checkpoint, batch: usize) -> Vec<u32> {
    let mut block = Vec::with_capacity(batch * PROMPT);
    for row in 0..batch {
        let mut ids = Vec::with_capacity(PROMPT);
        let mut k = row;
        while ids.len() < PROMPT {
            let text = prompt_text(k);
            ids.extend(ckpt.tokenizer.encode(&text).expect("tokenize prompt"));
            k += batch;
        }
        block.extend_from_slice(&ids[..PROMPT]);
    }
    block
}

/// LM head on the last column, logits to the host, greedy token per row.
fn next_tokens(decoder: &LlamaDecoder, hidden: Tensor<3>) -> Vec<u32> {
    let [rows, cols, width] = hidden.dims();
    let last = hidden
        .slice([0..rows, cols - 1..cols, 0..width])
        .reshape([rows, width]);
    let logits: Vec<f32> = decoder.logits(last).into_data().iter::<f32>().collect();
    let vocab = logits.len() / rows;
    logits
        .chunks(vocab)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect()
}

fn prefill(decoder: &LlamaDecoder, block: &[u32], batch: usize) -> (KvCache, Vec<u32>) {
    let mut cache = decoder.new_cache(vec![0; batch], PROMPT + DECODE_STEPS);
    let hidden = decoder
        .forward_cached(block, PROMPT, &mut cache)
        .expect("prefill");
    let next = next_tokens(decoder, hidden);
    (cache, next)
}

fn bench_backend(c: &mut Criterion, ckpt: &Checkpoint, backend: Backend, quantized: bool) {
    let decoder =
        LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &backend.device()).expect("model");
    let (decoder, label) = if quantized {
        let q = decoder
            .with_quantized(ckpt.quantized.clone())
            .expect("quantized matrices fit");
        (q, backend.to_string())
    } else {
        (decoder, format!("{backend}-f32"))
    };
    for batch in BATCHES {
        let block = prompt_block(ckpt, batch);
        let mut group = c.benchmark_group(format!("smollm2/{label}/batch{batch}"));
        group.throughput(Throughput::Elements((batch * PROMPT) as u64));
        group.bench_function("prefill", |b| {
            b.iter(|| black_box(prefill(&decoder, &block, batch).1))
        });
        // Every iteration decodes from the same prefilled cache (a clone;
        // the steps write columns past the prompt, which stays intact).
        let (filled, first) = prefill(&decoder, &block, batch);
        group.throughput(Throughput::Elements((batch * DECODE_STEPS) as u64));
        group.bench_function("decode", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut cache = filled.clone();
                    let mut step = first.clone();
                    let start = Instant::now();
                    for _ in 0..DECODE_STEPS {
                        let hidden = decoder
                            .forward_cached(&step, 1, &mut cache)
                            .expect("decode");
                        step = next_tokens(&decoder, hidden);
                    }
                    total += start.elapsed();
                    black_box(step);
                }
                total
            })
        });
        group.finish();
    }
}

fn main() {
    // As the binary runs (src/allocator.rs).
    distill_gate::allocator::keep_freed_memory();
    let path = model_path();
    if !path.exists() {
        println!(
            "SKIPPED: {} is absent; run scripts/fetch-smollm2 (or set SMOLLM2_GGUF)",
            path.display()
        );
        return;
    }
    let ckpt = match Checkpoint::load(&path) {
        Ok(ckpt) => ckpt,
        Err(e) => {
            eprintln!("cannot load {}: {e}", path.display());
            std::process::exit(2);
        }
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    for backend in Backend::ALL {
        bench_backend(&mut c, &ckpt, backend, true);
    }
    bench_backend(&mut c, &ckpt, Backend::Flex, false);
    c.final_summary();
}
