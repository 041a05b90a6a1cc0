//! Greedy completions and first-step logits of distill-gate's runtime, for
//! comparison with llama.cpp (`scripts/compare_llamacpp.py`).
//!
//! For each line `{"id": ..., "prompt": ...}` of a JSONL file, writes one
//! JSON line to stdout:
//! `{"id", "prompt_ids", "generated_ids", "text", "first_logits"}` where
//! `prompt_ids` is the prompt as the crate's tokenizer encodes it (special
//! tokens such as `<|im_start|>` become their ids), `generated_ids` the
//! greedy completion produced by `distill_gate::llm::generate` (at most
//! `--tokens`, ending early at EOS) and `first_logits` the full-vocabulary
//! logits of the first generation step.
//!
//! With `--export-f32 OUT.gguf` it also writes the loaded (dequantized)
//! checkpoint as an all-f32 GGUF with the crate's writer, so llama.cpp can
//! run exactly the weights this runtime uses.
//!
//! ```text
//! cargo run --release --example first_logits -- \
//!     --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     --prompts scripts/compare_prompts.jsonl --tokens 32 > ours.jsonl
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use distill_gate::llm::gguf::GgmlType;
use distill_gate::llm::{
    Backend, Checkpoint, GenerateRequest, LlamaDecoder, SamplingParams, generate,
};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "Greedy tokens and first-step logits of the burn runtime, as JSON lines")]
struct Args {
    /// A GGUF file or Hugging Face checkpoint directory.
    #[arg(long)]
    model: PathBuf,
    /// JSONL file with one {"id": ..., "prompt": ...} per line.
    #[arg(long)]
    prompts: PathBuf,
    /// Greedy tokens to generate per prompt (an EOS ends a completion early).
    #[arg(long, default_value_t = 32)]
    tokens: usize,
    /// Prompts generated together (1 = each prompt alone, no padding).
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// flex or ndarray.
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Also write the dequantized checkpoint here as an all-f32 GGUF.
    #[arg(long)]
    export_f32: Option<PathBuf>,
}

#[derive(Deserialize)]
struct PromptLine {
    id: String,
    prompt: String,
}

#[derive(Serialize)]
struct OutputLine<'a> {
    id: &'a str,
    prompt_ids: &'a [u32],
    generated_ids: &'a [u32],
    text: &'a str,
    first_logits: Vec<f32>,
}

fn read_prompts(path: &PathBuf) -> Result<Vec<PromptLine>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{}:{}: expected {{\"id\", \"prompt\"}}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// Logits after prefilling `prompt` alone (no padding), `[vocab]`.
fn first_logits(decoder: &LlamaDecoder, prompt: &[u32]) -> Result<Vec<f32>> {
    let mut cache = decoder.new_cache(vec![0], prompt.len());
    let hidden = decoder.forward_cached(prompt, prompt.len(), &mut cache)?;
    let [rows, cols, width] = hidden.dims();
    let last = hidden
        .slice([0..rows, cols - 1..cols, 0..width])
        .reshape([rows, width]);
    let logits = decoder
        .logits(last)
        .try_into_data()
        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
    Ok(logits)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let ckpt = Checkpoint::load(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?;
    if let Some(out) = &args.export_f32 {
        let fingerprint = ckpt
            .save_gguf(out, GgmlType::F32)
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {} (sha256 {fingerprint})", out.display());
    }
    let decoder = LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &args.backend.device())?;
    let tokenizer = &ckpt.tokenizer;
    let prompts = read_prompts(&args.prompts)?;
    let encoded: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| tokenizer.encode(&p.prompt))
        .collect::<Result<_, _>>()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (chunk, ids) in prompts
        .chunks(args.batch_size)
        .zip(encoded.chunks(args.batch_size))
    {
        let requests: Vec<GenerateRequest> = ids
            .iter()
            .map(|prompt| GenerateRequest {
                prompt: prompt.clone(),
                max_new_tokens: args.tokens,
                stop: Vec::new(),
                sampling: SamplingParams::greedy(),
            })
            .collect();
        let generated = generate(&decoder, tokenizer, &requests)?;
        for ((line, prompt), gen_out) in chunk.iter().zip(ids).zip(&generated) {
            let logits = first_logits(&decoder, prompt)?;
            let record = OutputLine {
                id: &line.id,
                prompt_ids: prompt,
                generated_ids: &gen_out.tokens,
                text: &gen_out.text,
                first_logits: logits,
            };
            serde_json::to_writer(&mut out, &record)?;
            writeln!(out)?;
            eprintln!("{} {:?}", line.id, gen_out.text);
        }
    }
    Ok(())
}
