//! The batches `distill-gate distill` trains on in its first steps, as one
//! JSON document on stdout, so another framework can train on exactly the
//! same data (`scripts/bench-training` replays them in PyTorch):
//! `{"vocab_size", "pad", "batches": [{"ids": [[...], ...], "prompt_lens": [...]}, ...]}`
//! where `ids` are each example's prompt, completion and EOS tokens (not
//! padded) and `prompt_lens` how many of them are prompt (not learned).
//!
//! ```text
//! cargo run --release --example training_batches -- \
//!     --transcript fixtures/teacher/smollm2-135m-train.jsonl --vocab-size 1024 \
//!     --max-seq-len 512 --batch-size 8 --seed 1 --steps 30 > batches.json
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use distill_gate::distill::TeacherOptions;
use distill_gate::distill::train::{DistillOptions, StudentShape, TrainLength, planned_batches};
use distill_gate::llm::{Backend, StorageDtype};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "The first training batches of `distill-gate distill`, as JSON")]
struct Args {
    /// Teacher transcript (JSONL); repeatable.
    #[arg(long = "transcript", required = true)]
    transcripts: Vec<PathBuf>,
    /// Tokenizer vocabulary (without --teacher-model).
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Token-level distillation's teacher (its tokenizer is used).
    #[arg(long)]
    teacher_model: Option<PathBuf>,
    /// Longest training sequence in tokens.
    #[arg(long, default_value_t = 512)]
    max_seq_len: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Seed of the data order and the validation split.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of pairs held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Steps whose batches to write.
    #[arg(long)]
    steps: usize,
}

#[derive(Serialize)]
struct Batch {
    ids: Vec<Vec<u32>>,
    prompt_lens: Vec<usize>,
}

#[derive(Serialize)]
struct Out {
    vocab_size: usize,
    pad: u32,
    batches: Vec<Batch>,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let options = DistillOptions {
        transcripts: a.transcripts,
        out: PathBuf::new(),
        // Only the data matters here; any valid shape will do.
        shape: StudentShape {
            layers: 1,
            hidden: 8,
            heads: 1,
            kv_heads: 1,
            intermediate: 8,
        },
        vocab_size: a.vocab_size,
        max_seq_len: a.max_seq_len,
        length: TrainLength::Steps(a.steps),
        batch_size: a.batch_size,
        lr: 1e-3,
        min_lr: 0.0,
        warmup_steps: None,
        clip: 1.0,
        weight_decay: 0.0,
        val_fraction: a.val_fraction,
        eval_every: 0,
        seed: a.seed,
        backend: Backend::Flex,
        dtype: StorageDtype::F32,
        teacher: a.teacher_model.map(|model| TeacherOptions {
            model,
            kd_weight: 0.5,
            kd_temperature: 2.0,
        }),
        init: Default::default(),
        tasks: None,
        resume: false,
        stop_after: None,
    };
    let (tokenizer, batches) = planned_batches(&options, a.steps)?;
    let out = Out {
        vocab_size: tokenizer.vocab_size(),
        pad: tokenizer.eos.first().copied().unwrap_or(0),
        batches: batches
            .into_iter()
            .map(|b| Batch {
                prompt_lens: b.iter().map(|e| e.prompt_len).collect(),
                ids: b.into_iter().map(|e| e.ids).collect(),
            })
            .collect(),
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
