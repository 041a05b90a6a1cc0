//! Gating a student of your own architecture: a byte-level GRU language
//! model defined here, in burn (not the shipped Llama-family decoder),
//! gated against the replayed SmolLM2 teacher on a slice of the logistics
//! suite with `distill_gate::pipeline::run_with_models`.
//!
//! ```text
//! cargo run --release --example custom_student            # resumes its journal
//! cargo run --release --example custom_student -- --fresh # starts over
//! ```
//!
//! `examples/custom_student.toml` names the student `byte-gru`, of
//! `kind = "custom"`: the program supplies it at run time, everything else
//! (suites, thresholds, journal, statistics, reports, swap plan) is the
//! config's, exactly as for a configured model. The reports go to
//! `reports/custom-student/`.
//!
//! The GRU is untrained (its weights are seeded random), so it answers
//! nonsense and its gate FAILs: the example exits 1, as `distill-gate run`
//! would. A trained model of your own is gated the same way.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Embedding, EmbeddingConfig, Gru, GruConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use distill_gate::fingerprint::sha256_hex;
use distill_gate::llm::Backend;
use distill_gate::llm::sampling::argmax;
use distill_gate::model::custom::CustomModels;
use distill_gate::model::{
    Completion, FinishReason, GenerationRequest, Latency, LatencySource, Model, ModelError,
    ModelIdentity, Usage,
};
use distill_gate::pipeline::{self, RunOptions};
use distill_gate::report;

/// The 256 byte values, then end-of-sequence.
const VOCAB: usize = 257;
/// The end-of-sequence token.
const EOS: usize = 256;
/// Prompt bytes the model reads: the last `CONTEXT` (left-padded with
/// zero bytes), so a request's answer does not depend on its batch.
const CONTEXT: usize = 192;
/// Embedding width.
const EMBED: usize = 32;
/// GRU state width.
const HIDDEN: usize = 128;
/// The seed of the weights.
const SEED: u64 = 20_261_207;
/// What besides the weights decides the answers (the architecture and the
/// decoding rule), part of the fingerprint: change it with the code.
const CODE_VERSION: &str = "byte-gru v1: context 192, greedy";

/// A byte-level recurrent language model: embedding, one GRU layer, a
/// linear output over the bytes and end-of-sequence.
#[derive(Module, Debug)]
struct ByteGru {
    embed: Embedding,
    gru: Gru,
    head: Linear,
}

impl ByteGru {
    /// Seeded random weights on `device`.
    fn init(device: &Device) -> Self {
        device.seed(SEED);
        Self {
            embed: EmbeddingConfig::new(VOCAB, EMBED).init(device),
            gru: GruConfig::new(EMBED, HIDDEN, true).init(device),
            head: LinearConfig::new(HIDDEN, VOCAB).init(device),
        }
    }

    /// Reads `ids` (`[rows, cols]`) on from `state`: the state after the
    /// last column and the logits of the next token (`[rows, VOCAB]`).
    fn read(&self, ids: Tensor<2, Int>, state: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let hidden = self.gru.forward(self.embed.forward(ids), state);
        let [rows, cols, width] = hidden.dims();
        let last = hidden
            .slice([0..rows, cols - 1..cols, 0..width])
            .reshape([rows, width]);
        (last.clone(), self.head.forward(last))
    }
}

/// The GRU as a gated model: greedy decoding of a batch of requests.
struct ByteGruStudent {
    net: ByteGru,
    device: Device,
    fingerprint: String,
}

/// Every float parameter's shape and values, in module order: what the
/// fingerprint is a hash of. (Not the bytes of a burn record: those carry
/// parameter ids, new in every process.)
struct WeightBytes {
    bytes: Vec<u8>,
    error: Option<String>,
}

impl ModuleVisitor for WeightBytes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        for d in tensor.dims() {
            self.bytes.extend_from_slice(&(d as u64).to_le_bytes());
        }
        match tensor.try_into_data() {
            Ok(data) => self.bytes.extend_from_slice(data.as_bytes()),
            Err(e) => {
                self.error.get_or_insert(format!("reading a weight: {e:?}"));
            }
        }
    }
}

impl ByteGruStudent {
    fn new(device: Device) -> Result<Self, String> {
        let net = ByteGru::init(&device);
        // The identity: the code's version and the weights' values.
        let mut weights = WeightBytes {
            bytes: CODE_VERSION.as_bytes().to_vec(),
            error: None,
        };
        net.visit(&mut weights);
        if let Some(e) = weights.error {
            return Err(e);
        }
        Ok(Self {
            fingerprint: sha256_hex(&weights.bytes),
            net,
            device,
        })
    }

    /// Token ids as a `[rows, cols]` tensor.
    fn ids(&self, ids: Vec<i64>, rows: usize) -> Tensor<2, Int> {
        let cols = ids.len() / rows.max(1);
        Tensor::from_data(TensorData::new(ids, [rows, cols]), &self.device)
    }

    /// The greedy completions of `requests`, generated together.
    fn generate(&self, requests: &[GenerationRequest]) -> Result<Vec<Generated>, String> {
        let rows = requests.len();
        let mut context = Vec::with_capacity(rows * CONTEXT);
        for r in requests {
            let bytes = r.prompt.as_bytes();
            let tail = &bytes[bytes.len().saturating_sub(CONTEXT)..];
            context.extend(std::iter::repeat_n(0, CONTEXT - tail.len()));
            context.extend(tail.iter().map(|&b| i64::from(b)));
        }
        let mut out: Vec<Generated> = requests.iter().map(|_| Generated::default()).collect();
        let (mut state, mut logits) = self.net.read(self.ids(context, rows), None);
        let longest = requests
            .iter()
            .map(|r| r.settings.max_tokens)
            .max()
            .unwrap_or(0);
        for _ in 0..longest {
            let host = logits
                .try_into_data()
                .map_err(|e| format!("reading logits: {e:?}"))?
                .try_into_vec_as::<f32>()
                .map_err(|e| format!("reading logits: {e:?}"))?;
            let mut next = Vec::with_capacity(rows);
            for (row, (g, r)) in out.iter_mut().zip(requests).enumerate() {
                let token = argmax(&host[row * VOCAB..(row + 1) * VOCAB]).unwrap_or(0) as usize;
                if g.finish.is_none() {
                    g.push(token, r);
                }
                next.push(if token == EOS { 0 } else { token as i64 });
            }
            if out.iter().all(|g| g.finish.is_some()) {
                break;
            }
            (state, logits) = self.net.read(self.ids(next, rows), Some(state));
        }
        Ok(out)
    }
}

/// One request's completion as it is generated.
#[derive(Default)]
struct Generated {
    bytes: Vec<u8>,
    tokens: u64,
    finish: Option<FinishReason>,
}

impl Generated {
    /// Adds the greedy token `token`, and says when `request` is done.
    fn push(&mut self, token: usize, request: &GenerationRequest) {
        self.tokens += 1;
        if token == EOS {
            self.finish = Some(FinishReason::Eos);
            return;
        }
        self.bytes.push(token as u8);
        let stop = request
            .settings
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| find(&self.bytes, s.as_bytes()))
            .min();
        if let Some(at) = stop {
            self.bytes.truncate(at);
            self.finish = Some(FinishReason::Stop);
        } else if self.tokens as usize >= request.settings.max_tokens {
            self.finish = Some(FinishReason::Length);
        }
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Model for ByteGruStudent {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            backend: "burn (examples/custom_student.rs)".into(),
            name: "byte-gru".into(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        let started = Instant::now();
        let generated = self.generate(requests);
        let batch_ms = started.elapsed().as_secs_f64() * 1e3;
        match generated {
            Err(e) => requests
                .iter()
                .map(|_| Err(ModelError::Failed(e.clone())))
                .collect(),
            Ok(generated) => generated
                .into_iter()
                .zip(requests)
                .map(|(g, r)| {
                    Ok(Completion {
                        text: String::from_utf8_lossy(&g.bytes).into_owned(),
                        usage: Usage {
                            prompt_tokens: r.prompt.len().min(CONTEXT) as u64,
                            completion_tokens: g.tokens,
                            cached_prompt_tokens: 0,
                            estimated: false,
                        },
                        latency: Some(Latency {
                            total_ms: batch_ms,
                            first_token_ms: None,
                            batch_ms: Some(batch_ms),
                            batch_size: requests.len(),
                            source: LatencySource::Live,
                        }),
                        finish: g.finish,
                    })
                })
                .collect(),
        }
    }

    fn preferred_batch_size(&self) -> usize {
        16
    }
}

fn main() -> anyhow::Result<()> {
    let fresh = std::env::args().skip(1).any(|a| a == "--fresh");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom_student.toml");
    let student = ByteGruStudent::new(Backend::Flex.device()).map_err(anyhow::Error::msg)?;
    let parameters = student.net.num_params();
    eprintln!(
        "byte-gru: {parameters} parameters, fingerprint {}",
        student.fingerprint
    );
    let options = RunOptions {
        config: &config,
        fresh,
        show_progress: std::io::stderr().is_terminal(),
        max_cost: None,
        shard: None,
    };
    let done = pipeline::run_with_models(&options, CustomModels::new().with("byte-gru", student))?;
    let terminal = std::io::stdout().is_terminal();
    print!(
        "{}",
        report::terminal::render_terminal(&done.summary, terminal)
    );
    println!(
        "reports: {}",
        report::lexically_normal(&done.run_dir).display()
    );
    std::process::exit(done.summary.exit_code);
}
