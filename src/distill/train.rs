//! The distillation loop: AdamW with a warmup + cosine schedule and global
//! gradient-norm clipping, seeded data order, periodic validation, the best
//! checkpoint in Hugging Face layout, and a resumable last state.
//!
//! The loss per completion token is the cross-entropy on the teacher's
//! token; with a teacher model (token-level distillation) it is
//! `(1 - alpha) * CE + alpha * T^2 * KL(softmax(teacher / T) ||
//! softmax(student / T))`, the teacher run without autodiff on the same
//! padded batch, and the student uses the teacher's tokenizer.
//!
//! Output directory layout:
//! - `config.json`, `model.safetensors`, `tokenizer.json`,
//!   `tokenizer_config.json`: the best student so far (lowest validation
//!   loss; lowest training loss of the eval window when there is no
//!   validation slice), loadable by `generate --model DIR` and gate configs.
//! - `training.json`: options, transcript hashes, data counts, every
//!   evaluation, timings; rewritten at each evaluation.
//! - `last/`: `model.bpk` and `optimizer.bpk` (burnpack, parameter ids and
//!   AdamW moments included), `tokenizer.json` and `state.json`, written at
//!   each evaluation and at the end of a run; `--resume` continues from it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::adamw::FusedAdamW;
use super::bpe;
use super::clip::clip_global_norm;
use super::data::{self, TranscriptSource};
use super::error::DistillError;
use super::examples::{EncodeStats, Example, encode_pairs};
use super::loss::{KdWeights, LossBatch, completion_logits, kl_sum, nll_sum};
use super::schedule::LrSchedule;
use super::tasks::{self, TaskSelection};
use super::teacher::{self, Teacher, TeacherInfo, TeacherOptions, check_same_tokenizer};
use crate::llm::config::EosTokens;
use crate::llm::{
    Backend, Checkpoint, LlamaConfig, LlamaDecoder, StorageDtype, TextTokenizer, expected_tensors,
};

/// Architecture of the student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentShape {
    /// Decoder layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Feed-forward width.
    pub intermediate: usize,
}

/// Where the student's weights start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudentInit {
    /// Random (Hugging Face's default initialisation), of the options' shape.
    #[default]
    Random,
    /// The teacher model's own weights: its embeddings, final norm, output
    /// layer and these of its decoder layers (0-based, in this order); its
    /// width, heads and feed-forward size (the options' shape is not used).
    Teacher {
        /// The teacher's decoder layers the student keeps.
        layers: Vec<usize>,
    },
}

impl StudentInit {
    fn is_random(&self) -> bool {
        *self == StudentInit::Random
    }
}

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainLength {
    /// Passes over the training pairs.
    Epochs(usize),
    /// Optimizer steps.
    Steps(usize),
}

/// Everything `distill` needs; all of it (but `resume` and `stop_after`)
/// must match when resuming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillOptions {
    /// Teacher transcripts (JSONL).
    pub transcripts: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Student architecture.
    pub shape: StudentShape,
    /// Vocabulary size of the byte-level BPE tokenizer trained for the
    /// student (specials and byte symbols included); required without a
    /// teacher model, refused with one (the student then uses the teacher's
    /// tokenizer).
    pub vocab_size: Option<usize>,
    /// Longest training sequence (prompt + completion + EOS) in tokens.
    pub max_seq_len: usize,
    /// Training length.
    pub length: TrainLength,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Linear warmup steps (`None`: 5% of the steps, at most 100).
    pub warmup_steps: Option<usize>,
    /// Maximum global gradient norm (0 disables clipping).
    pub clip: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Fraction of pairs held out for validation.
    pub val_fraction: f64,
    /// Evaluate (and checkpoint) every this many steps (0: once per epoch).
    pub eval_every: usize,
    /// Seed of initialisation, data order and the validation split.
    pub seed: u64,
    /// CPU backend.
    pub backend: Backend,
    /// Storage precision of the saved student.
    pub dtype: StorageDtype,
    /// Token-level distillation on a local teacher model's logits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherOptions>,
    /// Where the student's weights start (`--init-from-teacher` needs
    /// `teacher`).
    #[serde(default, skip_serializing_if = "StudentInit::is_random")]
    pub init: StudentInit,
    /// A task-specific student: the suites and categories it learns and the
    /// prompt template it is asked with (`None`: every pair as recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<TaskSelection>,
    /// Continue from `out/last/`.
    #[serde(skip)]
    pub resume: bool,
    /// Stop after this many steps in this invocation (continue later with
    /// `resume`); the schedule still spans the whole training length.
    #[serde(skip)]
    pub stop_after: Option<usize>,
}

/// The defaults of [`DistillOptions`], which `distill-gate distill` shows
/// in `--help`: defined here once.
pub mod defaults {
    use super::StudentShape;

    /// A random student's shape: 4 layers of width 128.
    pub const SHAPE: StudentShape = StudentShape {
        layers: 4,
        hidden: 128,
        heads: 4,
        kv_heads: 2,
        intermediate: 352,
    };
    /// The byte-level BPE vocabulary of a student without a teacher model.
    pub const VOCAB_SIZE: usize = 1024;
    /// Longest training sequence in tokens.
    pub const MAX_SEQ_LEN: usize = 512;
    /// Passes over the training pairs when no step count is given.
    pub const EPOCHS: usize = 10;
    /// Sequences per optimizer step.
    pub const BATCH_SIZE: usize = 16;
    /// Peak learning rate.
    pub const LR: f64 = 3e-3;
    /// The final learning rate is the peak divided by this.
    pub const MIN_LR_DIVISOR: f64 = 10.0;
    /// Maximum global gradient norm.
    pub const CLIP: f64 = 1.0;
    /// AdamW's decoupled weight decay.
    pub const WEIGHT_DECAY: f64 = 0.01;
    /// Fraction of pairs held out for validation.
    pub const VAL_FRACTION: f64 = 0.1;
    /// Seed of initialisation, data order and the validation split.
    pub const SEED: u64 = 1;
}

/// AdamW's first-moment decay.
const BETA_1: f32 = 0.9;
/// AdamW's second-moment decay (0.95, the usual choice for language models).
const BETA_2: f32 = 0.95;
/// AdamW's epsilon.
const ADAM_EPSILON: f32 = 1e-8;

/// One evaluation, as logged in `training.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs done (fractional).
    pub epoch: f64,
    /// Mean training loss per completion token since the previous evaluation.
    pub train_loss: f64,
    /// Mean validation loss per completion token (none without a validation slice).
    pub val_loss: Option<f64>,
    /// Mean KL divergence per completion token from the teacher model to the
    /// student at the distillation temperature, on the validation slice
    /// (token-level distillation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_kl: Option<f64>,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Global gradient norm of the last step, before clipping.
    pub grad_norm: f64,
    /// Training throughput since the previous evaluation (real input tokens per second).
    pub tokens_per_s: f64,
    /// Training seconds so far (all runs of a resumed training).
    pub train_seconds: f64,
    /// Whether this evaluation produced a new best checkpoint.
    pub best: bool,
}

/// Training state saved in `last/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    step: usize,
    train_seconds: f64,
    tokens_seen: u64,
    best_criterion: Option<f64>,
    best_step: Option<usize>,
    evals: Vec<EvalRecord>,
    options: DistillOptions,
    transcripts: Vec<TranscriptSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    teacher: Option<TeacherInfo>,
}

/// What a finished (or stopped) run reports, also written to `training.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistillSummary {
    /// The options used.
    pub options: DistillOptions,
    /// The transcripts read, with sha256.
    pub transcripts: Vec<TranscriptSource>,
    /// The teacher model of token-level distillation, with its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<TeacherInfo>,
    /// Distinct pairs (prompt, completion) in the transcripts.
    pub pairs: usize,
    /// Lines repeating a key already read.
    pub duplicates: usize,
    /// Encoding of the training pairs.
    pub train: EncodeStats,
    /// Encoding of the validation pairs.
    pub validation: EncodeStats,
    /// The student's architecture.
    pub config: LlamaConfig,
    /// Number of parameters.
    pub parameters: usize,
    /// Total optimizer steps of the schedule.
    pub total_steps: usize,
    /// Steps done.
    pub steps_done: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Step of the best checkpoint.
    pub best_step: Option<usize>,
    /// Its selection criterion (validation loss, else training loss).
    pub best_loss: Option<f64>,
    /// Every evaluation.
    pub evals: Vec<EvalRecord>,
    /// Training seconds (all runs).
    pub train_seconds: f64,
    /// Real input tokens processed (all runs).
    pub tokens_seen: u64,
    /// Mean training throughput (tokens_seen / train_seconds).
    pub tokens_per_s: f64,
    /// The harness version.
    pub harness_version: String,
}

/// Progress reported while training.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// Data and model are ready.
    Prepared {
        /// Training examples.
        train: usize,
        /// Validation examples.
        validation: usize,
        /// Tokenizer vocabulary.
        vocab: usize,
        /// Student parameters.
        parameters: usize,
        /// Schedule length.
        total_steps: usize,
        /// First step of this run (> 0 when resumed).
        start_step: usize,
    },
    /// One optimizer step done.
    Step {
        /// Steps done.
        step: usize,
        /// Schedule length.
        total: usize,
        /// This batch's mean loss per completion token.
        loss: f64,
        /// Its learning rate.
        lr: f64,
        /// Throughput over this run so far.
        tokens_per_s: f64,
        /// Estimated seconds to the end of the schedule.
        eta_s: f64,
    },
    /// An evaluation (and checkpoint) happened.
    Eval(EvalRecord),
    /// Something the user should know that does not stop training.
    Warning(String),
}

/// `out/last`.
fn last_dir(out: &Path) -> PathBuf {
    out.join("last")
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DistillError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| DistillError::io(path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| DistillError::io(path, e))
}

fn validate(o: &DistillOptions) -> Result<(), DistillError> {
    let positive = [
        ("--layers", o.shape.layers),
        ("--hidden", o.shape.hidden),
        ("--heads", o.shape.heads),
        ("--kv-heads", o.shape.kv_heads),
        ("--intermediate", o.shape.intermediate),
        ("--batch-size", o.batch_size),
    ];
    for (name, v) in positive {
        if v == 0 {
            return Err(DistillError::option(name, "must be positive"));
        }
    }
    if o.max_seq_len < 2 {
        return Err(DistillError::option("--max-seq-len", "must be at least 2"));
    }
    if matches!(o.length, TrainLength::Epochs(0) | TrainLength::Steps(0)) {
        return Err(DistillError::option("--epochs/--steps", "must be positive"));
    }
    if !(o.lr > 0.0 && o.lr.is_finite()) {
        return Err(DistillError::option("--lr", "must be positive"));
    }
    if !(o.min_lr >= 0.0 && o.min_lr <= o.lr) {
        return Err(DistillError::option("--min-lr", "must be in [0, --lr]"));
    }
    if !(o.clip >= 0.0 && o.clip.is_finite()) {
        return Err(DistillError::option("--clip", "must be >= 0"));
    }
    if !(o.weight_decay >= 0.0 && o.weight_decay < 1.0) {
        return Err(DistillError::option("--weight-decay", "must be in [0, 1)"));
    }
    if !(0.0..1.0).contains(&o.val_fraction) {
        return Err(DistillError::option("--val-fraction", "must be in [0, 1)"));
    }
    if o.transcripts.is_empty() {
        return Err(DistillError::option("--transcript", "give at least one"));
    }
    match (&o.teacher, o.vocab_size) {
        (Some(_), Some(_)) => {
            return Err(DistillError::option(
                "--vocab-size",
                "the student uses the teacher model's tokenizer with --teacher-model \
                 (its vocabulary must match the teacher's logits); leave --vocab-size out",
            ));
        }
        (None, None) => {
            return Err(DistillError::option(
                "--vocab-size",
                "required without --teacher-model",
            ));
        }
        (Some(t), None) => t.validate()?,
        (None, Some(_)) => {}
    }
    if let StudentInit::Teacher { layers } = &o.init {
        if o.teacher.is_none() {
            return Err(DistillError::option(
                "--init-from-teacher",
                "needs --teacher-model (the checkpoint whose weights the student starts from)",
            ));
        }
        if layers.is_empty() {
            return Err(DistillError::option(
                "--keep-layers",
                "keep at least one layer",
            ));
        }
    }
    Ok(())
}

/// The transcripts' pairs, narrowed to the task selection when there is one
/// (prompts rewritten with the student's template).
fn training_pairs(
    options: &DistillOptions,
) -> Result<(data::Pairs, Option<tasks::Selected>), DistillError> {
    let mut loaded = data::load_pairs(&options.transcripts)?;
    let Some(selection) = &options.tasks else {
        return Ok((loaded, None));
    };
    let mut selected = tasks::select(std::mem::take(&mut loaded.pairs), selection)?;
    loaded.pairs = std::mem::take(&mut selected.pairs);
    Ok((loaded, Some(selected)))
}

/// The tokens a student learned to emit: every completion token of the
/// pairs it was trained on (training and validation, encoded exactly as
/// training encoded them) and the tokenizer's EOS ids, sorted. Read from the
/// run's `training.json` (`summary`); fails when a transcript is missing or
/// differs from the one trained on (by sha256). For restricting a task
/// student's output layer (`distill-gate quantize --task-vocab`).
pub fn answer_tokens(
    summary: &DistillSummary,
    tokenizer: &TextTokenizer,
) -> Result<Vec<u32>, DistillError> {
    let (loaded, _) = training_pairs(&summary.options)?;
    for (now, then) in loaded.sources.iter().zip(&summary.transcripts) {
        if now.sha256 != then.sha256 {
            return Err(DistillError::NoData(format!(
                "{} changed since the student was trained on it (sha256 {} then, {} now)",
                now.path.display(),
                then.sha256,
                now.sha256
            )));
        }
    }
    let (examples, _) = encode_pairs(tokenizer, &loaded.pairs, summary.options.max_seq_len)?;
    if examples.is_empty() {
        return Err(DistillError::NoData(
            "the training transcripts hold no answer to learn from".into(),
        ));
    }
    let mut tokens: Vec<u32> = examples
        .iter()
        .flat_map(|e| e.ids[e.prompt_len..].iter().copied())
        .chain(tokenizer.eos.iter().copied())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    Ok(tokens)
}

/// The student's architecture for a tokenizer and an output layer of
/// `vocab_rows` rows (at least the tokenizer's size; more when it must match
/// a teacher whose embedding is padded).
pub fn student_config(
    shape: &StudentShape,
    tokenizer: &TextTokenizer,
    vocab_rows: usize,
    max_seq_len: usize,
) -> Result<LlamaConfig, DistillError> {
    if vocab_rows < tokenizer.vocab_size() {
        return Err(DistillError::Tokenizer(format!(
            "an output layer of {vocab_rows} rows cannot cover the tokenizer's {} tokens",
            tokenizer.vocab_size()
        )));
    }
    let config = LlamaConfig {
        vocab_size: vocab_rows,
        hidden_size: shape.hidden,
        intermediate_size: shape.intermediate,
        num_hidden_layers: shape.layers,
        num_attention_heads: shape.heads,
        num_key_value_heads: Some(shape.kv_heads),
        head_dim: None,
        // RoPE has no learned positions; leave room for prompts longer than
        // the training window.
        max_position_embeddings: max_seq_len.max(2048),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        hidden_act: "silu".into(),
        rope_scaling: None,
        attention_bias: false,
        mlp_bias: false,
        sliding_window: None,
        tie_word_embeddings: true,
        bos_token_id: tokenizer.bos,
        eos_token_id: Some(EosTokens::Many(tokenizer.eos.clone())),
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: "llama".into(),
        torch_dtype: Some("float32".into()),
        output_tokens: None,
    };
    crate::llm::tensor_layout::validate_config(&config, std::path::Path::new("<student shape>"))?;
    if !shape.hidden.is_multiple_of(shape.heads) {
        return Err(DistillError::option(
            "--hidden",
            format!(
                "{} is not a multiple of --heads {}",
                shape.hidden, shape.heads
            ),
        ));
    }
    Ok(config)
}

/// Saves `model` with `tokenizer` as a Hugging Face directory.
pub fn save_student(
    model: &LlamaDecoder,
    tokenizer: &TextTokenizer,
    dir: &Path,
    dtype: StorageDtype,
) -> Result<String, DistillError> {
    let ckpt = Checkpoint {
        config: model.config().clone(),
        weights: model.to_weights()?,
        quantized: Default::default(),
        tokenizer: tokenizer.clone(),
        fingerprint: String::new(),
        source: dir.to_path_buf(),
    };
    Ok(ckpt.save_hf_dir(dir, dtype)?)
}

/// The order in which epoch `epoch` visits the `n` training examples.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

/// Which training examples each optimizer step takes: epoch after epoch,
/// each in its seeded order ([`epoch_order`]), `batch_size` at a time (the
/// last batch of an epoch may be smaller).
struct EpochOrder {
    n: usize,
    batch_size: usize,
    seed: u64,
    current: Option<(usize, Vec<usize>)>,
}

impl EpochOrder {
    fn new(n: usize, batch_size: usize, seed: u64) -> Self {
        Self {
            n,
            batch_size,
            seed,
            current: None,
        }
    }

    /// Indices of the examples of step `step` (0-based).
    fn step(&mut self, step: usize) -> &[usize] {
        let per_epoch = self.n.div_ceil(self.batch_size).max(1);
        let epoch = step / per_epoch;
        if self.current.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.current = Some((epoch, epoch_order(self.n, self.seed, epoch)));
        }
        let order = self.current.as_ref().map_or(&[][..], |(_, o)| o.as_slice());
        let from = ((step % per_epoch) * self.batch_size).min(order.len());
        let to = (from + self.batch_size).min(order.len());
        &order[from..to]
    }
}

/// The tokenizer of a fresh run: the teacher model's, or a byte-level BPE
/// of `--vocab-size` trained on the training pairs.
fn fresh_tokenizer(
    options: &DistillOptions,
    train_pairs: &[data::Pair],
    teacher: Option<&TextTokenizer>,
) -> Result<TextTokenizer, DistillError> {
    if let Some(t) = teacher {
        return Ok(t.clone());
    }
    let vocab_size = options
        .vocab_size
        .ok_or_else(|| DistillError::option("--vocab-size", "required without --teacher-model"))?;
    let text = bpe::training_text(train_pairs);
    let inner = bpe::train_bpe(text.iter().map(String::as_str), vocab_size)?;
    bpe::student_tokenizer(inner)
}

/// The training batches of the first `steps` optimizer steps of a fresh
/// `distill` run with `options`, exactly as it takes them (same
/// tokenizer, encoding, validation split and seeded order), with the
/// tokenizer: for benchmarks that replay the same batches in another
/// framework (`scripts/bench-training`). Loads the teacher model only for
/// its tokenizer.
pub fn planned_batches(
    options: &DistillOptions,
    steps: usize,
) -> Result<(TextTokenizer, Vec<Vec<Example>>), DistillError> {
    validate(options)?;
    let (loaded, _) = training_pairs(options)?;
    let (train_pairs, _) = data::split(&loaded.pairs, options.seed, options.val_fraction);
    let teacher = match &options.teacher {
        Some(t) => Some(Checkpoint::load(&t.model)?.tokenizer),
        None => None,
    };
    let tokenizer = fresh_tokenizer(options, &train_pairs, teacher.as_ref())?;
    let (train, _) = encode_pairs(&tokenizer, &train_pairs, options.max_seq_len)?;
    if train.is_empty() {
        return Err(DistillError::NoData("no training example".into()));
    }
    let mut order = EpochOrder::new(train.len(), options.batch_size, options.seed);
    let batches = (0..steps)
        .map(|s| order.step(s).iter().map(|&i| train[i].clone()).collect())
        .collect();
    Ok((tokenizer, batches))
}

/// The teacher of token-level distillation and the weights of the loss terms.
#[derive(Clone, Copy)]
struct Kd<'a> {
    teacher: &'a Teacher,
    weights: KdWeights,
}

/// The loss of one batch summed over its learned cells (cross-entropy, or
/// the distillation mix with a teacher), and the KL sum when a teacher
/// contributed one (the teacher is not run when `alpha` is 0).
fn batch_loss(
    model: &LlamaDecoder,
    kd: Option<Kd<'_>>,
    lb: &LossBatch,
) -> Result<(Tensor<1>, Option<Tensor<1>>), DistillError> {
    let student = completion_logits(model, lb)?;
    match kd {
        Some(kd) if kd.weights.alpha > 0.0 => {
            let teacher = kd.teacher.completion_logits(lb)?;
            let ce = nll_sum(student.clone(), &lb.targets)?;
            let kl = kl_sum(student, teacher, kd.weights.temperature)?;
            Ok((kd.weights.combine(ce, kl.clone()), Some(kl)))
        }
        _ => Ok((nll_sum(student, &lb.targets)?, None)),
    }
}

/// Mean loss and mean KL (with a teacher) per completion token of `model`
/// over `examples`.
fn evaluate(
    model: &LlamaDecoder,
    kd: Option<Kd<'_>>,
    examples: &[Example],
    batch_size: usize,
    pad: u32,
) -> Result<(Option<f64>, Option<f64>), DistillError> {
    let (mut sum, mut kl_total, mut count) = (0f64, None::<f64>, 0usize);
    for chunk in examples.chunks(batch_size) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let lb = LossBatch::new(&refs, pad)?;
        if lb.target_tokens == 0 {
            continue;
        }
        let (loss, kl) = batch_loss(model, kd, &lb)?;
        sum += scalar(loss)?;
        if let Some(kl) = kl {
            *kl_total.get_or_insert(0.0) += scalar(kl)?;
        }
        count += lb.target_tokens;
    }
    if count == 0 {
        return Ok((None, None));
    }
    Ok((Some(sum / count as f64), kl_total.map(|k| k / count as f64)))
}

fn scalar(t: Tensor<1>) -> Result<f64, DistillError> {
    t.into_data()
        .iter::<f32>()
        .next()
        .map(f64::from)
        .ok_or_else(|| DistillError::Tensor("empty loss tensor".into()))
}

/// Refuses to resume when the options or transcripts differ from the saved run.
fn check_resumable(
    state: &TrainState,
    options: &DistillOptions,
    sources: &[TranscriptSource],
    path: &Path,
) -> Result<(), DistillError> {
    let saved = serde_json::to_value(&state.options).unwrap_or_default();
    let now = serde_json::to_value(options).unwrap_or_default();
    if let (Some(saved), Some(now)) = (saved.as_object(), now.as_object()) {
        // Keys of both sides: an option present in one run only (a teacher
        // model, say) differs too.
        let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
        let differing: Vec<String> = keys
            .into_iter()
            .filter(|k| saved.get(*k) != now.get(*k))
            .map(|k| {
                format!(
                    "{k} (saved {}, now {})",
                    saved.get(k).cloned().unwrap_or_default(),
                    now.get(k).cloned().unwrap_or_default()
                )
            })
            .collect();
        if !differing.is_empty() {
            return Err(DistillError::Resume {
                path: path.to_path_buf(),
                message: format!(
                    "options differ from the saved run: {}",
                    differing.join(", ")
                ),
            });
        }
    }
    let hashes = |s: &[TranscriptSource]| s.iter().map(|t| t.sha256.clone()).collect::<Vec<_>>();
    if hashes(&state.transcripts) != hashes(sources) {
        return Err(DistillError::Resume {
            path: path.to_path_buf(),
            message: "the transcripts changed since the saved run (sha256 differs)".into(),
        });
    }
    Ok(())
}

/// Saves the resumable state into `out/last` (written beside, then swapped in).
fn save_last(
    out: &Path,
    model: &LlamaDecoder,
    optim: &ModuleOptimizer,
    tokenizer: &TextTokenizer,
    state: &TrainState,
) -> Result<(), DistillError> {
    let tmp = out.join("last.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| DistillError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| DistillError::io(&tmp, e))?;
    let record_err = |p: &Path, e: burn::store::RecordError| {
        DistillError::io(p, std::io::Error::other(format!("{e:?}")))
    };
    let model_path = tmp.join("model.bpk");
    model
        .clone()
        .save_file(&model_path)
        .map_err(|e| record_err(&model_path, e))?;
    let optim_path = tmp.join("optimizer.bpk");
    optim
        .save(&optim_path)
        .map_err(|e| record_err(&optim_path, e))?;
    let tok_path = tmp.join("tokenizer.json");
    tokenizer
        .inner()
        .save(&tok_path, true)
        .map_err(|e| DistillError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
    write_json(&tmp.join("state.json"), state)?;
    let last = last_dir(out);
    if last.exists() {
        std::fs::remove_dir_all(&last).map_err(|e| DistillError::io(&last, e))?;
    }
    std::fs::rename(&tmp, &last).map_err(|e| DistillError::io(&last, e))
}

/// Refuses to resume with a teacher model other than the saved run's.
fn check_same_teacher(
    saved: Option<&TeacherInfo>,
    now: &TeacherInfo,
    path: &Path,
) -> Result<(), DistillError> {
    let message = match saved {
        None => "the saved run has no teacher model".to_string(),
        Some(s) if s.fingerprint != now.fingerprint => format!(
            "the teacher model changed since the saved run: {} has fingerprint {}, \
             the run was trained with {} (fingerprint {})",
            now.path.display(),
            now.fingerprint,
            s.path.display(),
            s.fingerprint
        ),
        Some(_) => return Ok(()),
    };
    Err(DistillError::Resume {
        path: path.to_path_buf(),
        message,
    })
}

fn read_state(path: &Path) -> Result<TrainState, DistillError> {
    let text = std::fs::read_to_string(path).map_err(|e| DistillError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DistillError::Resume {
        path: path.to_path_buf(),
        message: format!("invalid state: {e}"),
    })
}

/// Trains a student on the transcripts' pairs (see the module docs for what
/// is written where). `on_event` sees progress.
pub fn distill(
    options: &DistillOptions,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<DistillSummary, DistillError> {
    validate(options)?;
    let (loaded, selected) = training_pairs(options)?;
    if let Some(s) = &selected {
        on_event(TrainEvent::Warning(format!(
            "learning {} answer(s) to train tasks of the chosen suites and categories; left \
             out {} of other suites or categories and {} answering an older prompt of their \
             task (recorded on another version of the suite)",
            loaded.pairs.len(),
            s.left_out,
            s.stale
        )));
    }
    let (train_pairs, val_pairs) = data::split(&loaded.pairs, options.seed, options.val_fraction);
    if train_pairs.is_empty() {
        return Err(DistillError::NoData(format!(
            "{} pair(s) with a completion in the transcripts, none left for training",
            loaded.pairs.len()
        )));
    }
    let resumed = resumed_state(options, &loaded.sources)?;
    let teacher = load_teacher(options, &loaded.sources, resumed.as_ref(), on_event)?;
    let tokenizer = run_tokenizer(options, teacher.as_ref(), resumed.is_some(), &train_pairs)?;
    let pad = tokenizer.eos.first().copied().unwrap_or(0);
    let (train, train_stats) = encode_pairs(&tokenizer, &train_pairs, options.max_seq_len)?;
    let (val, val_stats) = encode_pairs(&tokenizer, &val_pairs, options.max_seq_len)?;
    if train.is_empty() {
        return Err(DistillError::NoData(format!(
            "every training pair was skipped ({} too long for --max-seq-len {}, {} empty)",
            train_stats.skipped_too_long, options.max_seq_len, train_stats.skipped_empty
        )));
    }
    let (config, model) = student_model(options, &tokenizer, teacher.as_ref())?;
    let optim = ModuleOptimizer::from(FusedAdamW::new(
        BETA_1,
        BETA_2,
        ADAM_EPSILON,
        options.weight_decay as f32,
    ));
    let (model, optim, state) = match resumed {
        Some(state) => resume(&options.out, model, optim, state)?,
        None => {
            let out = &options.out;
            std::fs::create_dir_all(out).map_err(|e| DistillError::io(out, e))?;
            let state = TrainState {
                step: 0,
                train_seconds: 0.0,
                tokens_seen: 0,
                best_criterion: None,
                best_step: None,
                evals: Vec::new(),
                options: options.clone(),
                transcripts: loaded.sources.clone(),
                teacher: teacher.as_ref().map(|t| t.info().clone()),
            };
            (model, optim, state)
        }
    };
    let run = Run {
        options,
        schedule: Schedule::of(options, train.len()),
        parameters: expected_tensors(&config)
            .iter()
            .filter(|(name, _)| name != "lm_head.weight")
            .map(|(_, s)| s.iter().product::<usize>())
            .sum(),
        kd: teacher
            .as_ref()
            .zip(options.teacher.as_ref())
            .map(|(teacher, o)| Kd {
                teacher,
                weights: KdWeights {
                    alpha: o.kd_weight,
                    temperature: o.kd_temperature,
                },
            }),
        tokenizer,
        pad,
        train,
        val,
        data: DataSummary {
            transcripts: loaded.sources,
            pairs: loaded.pairs.len(),
            duplicates: loaded.duplicates,
            train: train_stats,
            validation: val_stats,
        },
        config,
    };
    run.train(model, optim, state, on_event)
}

/// The saved state `--resume` continues from (checked against the options
/// and transcripts), or `None` for a fresh run into an unused directory.
fn resumed_state(
    options: &DistillOptions,
    sources: &[TranscriptSource],
) -> Result<Option<TrainState>, DistillError> {
    let out = &options.out;
    let state_path = last_dir(out).join("state.json");
    if options.resume {
        let state = read_state(&state_path)?;
        check_resumable(&state, options, sources, &state_path)?;
        return Ok(Some(state));
    }
    if last_dir(out).exists() || out.join("training.json").exists() {
        return Err(DistillError::option(
            "--out",
            format!(
                "{} already holds a training run: pass --resume to continue it or choose another directory",
                out.display()
            ),
        ));
    }
    Ok(None)
}

/// The teacher model of token-level distillation: the resumed run's own,
/// with a warning for each transcript another model wrote.
fn load_teacher(
    options: &DistillOptions,
    sources: &[TranscriptSource],
    resumed: Option<&TrainState>,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<Option<Teacher>, DistillError> {
    let Some(o) = &options.teacher else {
        return Ok(None);
    };
    let t = Teacher::load(&o.model, options.backend)?;
    if let Some(state) = resumed {
        let state_path = last_dir(&options.out).join("state.json");
        check_same_teacher(state.teacher.as_ref(), t.info(), &state_path)?;
    }
    for source in sources {
        if let Some(id) = source.teacher.as_ref()
            && id.fingerprint != t.info().fingerprint
        {
            on_event(TrainEvent::Warning(format!(
                "{} was written by {} (fingerprint {}), not by the teacher model {} \
                 (fingerprint {}): the student learns the transcript's answers and \
                 the teacher model's distributions",
                source.path.display(),
                id.name,
                id.fingerprint,
                t.info().path.display(),
                t.info().fingerprint
            )));
        }
    }
    Ok(Some(t))
}

/// The student's tokenizer: the teacher model's (on resume, checked against
/// the saved one), the resumed run's, or a fresh byte-level BPE.
fn run_tokenizer(
    options: &DistillOptions,
    teacher: Option<&Teacher>,
    resumed: bool,
    train_pairs: &[data::Pair],
) -> Result<TextTokenizer, DistillError> {
    let saved = last_dir(&options.out).join("tokenizer.json");
    match (teacher, resumed) {
        (Some(t), resumed) => {
            let tok = t.tokenizer().clone();
            if resumed {
                let mut old = TextTokenizer::from_file(&saved)?;
                old.bos = tok.bos;
                old.add_bos = tok.add_bos;
                old.eos = tok.eos.clone();
                check_same_tokenizer(&old, &tok, &saved.display().to_string())?;
            }
            Ok(tok)
        }
        (None, true) => {
            let tok = TextTokenizer::from_file(&saved)?;
            bpe::student_tokenizer(tok.inner().clone())
        }
        (None, false) => fresh_tokenizer(options, train_pairs, None),
    }
}

/// The student's architecture and starting weights: the teacher's kept
/// layers, or random ones of the options' shape.
fn student_model(
    options: &DistillOptions,
    tokenizer: &TextTokenizer,
    teacher: Option<&Teacher>,
) -> Result<(LlamaConfig, LlamaDecoder), DistillError> {
    let device: Device = options.backend.device().autodiff();
    if let (StudentInit::Teacher { layers }, Some(t)) = (&options.init, &options.teacher) {
        let (config, weights) = teacher::kept_layers(Checkpoint::load(&t.model)?, layers)?;
        let model = LlamaDecoder::from_weights_owned(&config, weights, &device)?;
        return Ok((config, model));
    }
    let vocab_rows = teacher.map_or(tokenizer.vocab_size(), |t| t.info().vocab_rows);
    let config = student_config(&options.shape, tokenizer, vocab_rows, options.max_seq_len)?;
    let model = LlamaDecoder::init_random(&config, &device, options.seed)?;
    Ok((config, model))
}

/// The model and optimizer state saved in `out/last`.
fn resume(
    out: &Path,
    model: LlamaDecoder,
    optim: ModuleOptimizer,
    state: TrainState,
) -> Result<(LlamaDecoder, ModuleOptimizer, TrainState), DistillError> {
    let last = last_dir(out);
    let resume_err = |p: PathBuf, e: burn::store::RecordError| DistillError::Resume {
        path: p,
        message: format!("{e:?}"),
    };
    let model_path = last.join("model.bpk");
    let model = model
        .try_load_file(&model_path)
        .map_err(|e| resume_err(model_path.clone(), e))?;
    let optim_path = last.join("optimizer.bpk");
    let optim = optim
        .load(&optim_path)
        .map_err(|e| resume_err(optim_path.clone(), e))?;
    Ok((model, optim, state))
}

/// The run's length and rhythm, from the options and the number of
/// training examples.
struct Schedule {
    /// Optimizer steps per pass over the training examples.
    steps_per_epoch: usize,
    /// Steps of the whole schedule.
    total_steps: usize,
    /// Evaluate and checkpoint every this many steps.
    eval_every: usize,
    /// The learning rate of each step.
    lr: LrSchedule,
}

impl Schedule {
    fn of(options: &DistillOptions, examples: usize) -> Self {
        let steps_per_epoch = examples.div_ceil(options.batch_size);
        let total_steps = match options.length {
            TrainLength::Epochs(e) => e * steps_per_epoch,
            TrainLength::Steps(s) => s,
        };
        Self {
            steps_per_epoch,
            total_steps,
            eval_every: match options.eval_every {
                0 => steps_per_epoch,
                n => n,
            },
            lr: LrSchedule {
                peak: options.lr,
                min: options.min_lr,
                warmup: options
                    .warmup_steps
                    .unwrap_or((total_steps / 20).min(100))
                    .min(total_steps.saturating_sub(1)),
                total: total_steps,
            },
        }
    }
}

/// What `training.json` says of the data, fixed for the whole run.
struct DataSummary {
    transcripts: Vec<TranscriptSource>,
    pairs: usize,
    duplicates: usize,
    train: EncodeStats,
    validation: EncodeStats,
}

/// Everything a training run holds fixed: its options, data, tokenizer,
/// teacher and schedule.
struct Run<'a> {
    options: &'a DistillOptions,
    schedule: Schedule,
    parameters: usize,
    kd: Option<Kd<'a>>,
    tokenizer: TextTokenizer,
    pad: u32,
    train: Vec<Example>,
    val: Vec<Example>,
    data: DataSummary,
    config: LlamaConfig,
}

/// Loss and throughput since the last evaluation.
#[derive(Default)]
struct Window {
    loss: f64,
    target_tokens: usize,
    input_tokens: u64,
    seconds: f64,
}

impl Run<'_> {
    /// Trains from `state` to the end of the schedule (or `stop_after`
    /// steps), evaluating and checkpointing on the schedule's rhythm.
    fn train(
        &self,
        mut model: LlamaDecoder,
        mut optim: ModuleOptimizer,
        mut state: TrainState,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<DistillSummary, DistillError> {
        let (options, schedule) = (self.options, &self.schedule);
        let total_steps = schedule.total_steps;
        let end = options
            .stop_after
            .map_or(total_steps, |n| (state.step + n).min(total_steps));
        on_event(TrainEvent::Prepared {
            train: self.train.len(),
            validation: self.val.len(),
            vocab: self.tokenizer.vocab_size(),
            parameters: self.parameters,
            total_steps,
            start_step: state.step,
        });
        let (start_step, start_seconds) = (state.step, state.train_seconds);
        let mut run_tokens = 0u64;
        let mut window = Window::default();
        let mut order = EpochOrder::new(self.train.len(), options.batch_size, options.seed);
        while state.step < end {
            let step_start = Instant::now();
            let refs: Vec<&Example> = order
                .step(state.step)
                .iter()
                .map(|&i| &self.train[i])
                .collect();
            let lb = LossBatch::new(&refs, self.pad)?;
            let (loss, _) = batch_loss(&model, self.kd, &lb)?;
            let loss = loss.div_scalar(lb.target_tokens.max(1) as f64);
            let loss_value = scalar(loss.clone())?;
            if !loss_value.is_finite() {
                return Err(DistillError::Tensor(format!(
                    "loss is {loss_value} at step {} (training diverged; lower --lr)",
                    state.step + 1
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            let grad_norm = clip_global_norm(&model, &mut grads, options.clip)?;
            let lr = schedule.lr.lr(state.step);
            model = optim.step(lr, model, grads);
            state.step += 1;

            let secs = step_start.elapsed().as_secs_f64();
            state.train_seconds += secs;
            state.tokens_seen += lb.input_tokens as u64;
            run_tokens += lb.input_tokens as u64;
            window.loss += loss_value * lb.target_tokens as f64;
            window.target_tokens += lb.target_tokens;
            window.input_tokens += lb.input_tokens as u64;
            window.seconds += secs;
            let run_secs = state.train_seconds - start_seconds;
            let per_step = run_secs / (state.step - start_step) as f64;
            on_event(TrainEvent::Step {
                step: state.step,
                total: total_steps,
                loss: loss_value,
                lr,
                tokens_per_s: run_tokens as f64 / run_secs.max(1e-9),
                eta_s: per_step * (total_steps - state.step) as f64,
            });
            if state.step.is_multiple_of(schedule.eval_every) || state.step == total_steps {
                let window = std::mem::take(&mut window);
                let record = self.evaluate(&model, &mut state, &window, lr, grad_norm)?;
                on_event(TrainEvent::Eval(record));
                save_last(&options.out, &model, &optim, &self.tokenizer, &state)?;
                write_json(&options.out.join("training.json"), &self.summary(&state))?;
            }
        }
        // A run stopped between evaluations keeps its progress.
        if state.evals.last().is_none_or(|e| e.step != state.step) {
            save_last(&options.out, &model, &optim, &self.tokenizer, &state)?;
        }
        let done = self.summary(&state);
        write_json(&options.out.join("training.json"), &done)?;
        Ok(done)
    }

    /// Evaluates `model` on the validation examples, saves it as the
    /// student when it is the best so far, and records the evaluation in
    /// `state`.
    fn evaluate(
        &self,
        model: &LlamaDecoder,
        state: &mut TrainState,
        window: &Window,
        lr: f64,
        grad_norm: f64,
    ) -> Result<EvalRecord, DistillError> {
        let out = &self.options.out;
        let train_loss = window.loss / window.target_tokens.max(1) as f64;
        let (val_loss, val_kl) = evaluate(
            &model.valid(),
            self.kd,
            &self.val,
            self.options.batch_size,
            self.pad,
        )?;
        let criterion = val_loss.unwrap_or(train_loss);
        let best = state.best_criterion.is_none_or(|b| criterion < b);
        if best {
            save_student(model, &self.tokenizer, out, self.options.dtype)?;
            if let Some(kd) = &self.kd {
                // The saved student must tokenize exactly like the teacher
                // (its tokenizer went through tokenizer.json and
                // tokenizer_config.json).
                let saved = crate::llm::hf_dir::read_tokenizer(out, &self.config)?;
                check_same_tokenizer(
                    &saved,
                    kd.teacher.tokenizer(),
                    &format!("the saved student's tokenizer ({})", out.display()),
                )?;
            }
            state.best_criterion = Some(criterion);
            state.best_step = Some(state.step);
        }
        let record = EvalRecord {
            step: state.step,
            epoch: state.step as f64 / self.schedule.steps_per_epoch as f64,
            train_loss,
            val_loss,
            val_kl,
            lr,
            grad_norm,
            tokens_per_s: window.input_tokens as f64 / window.seconds.max(1e-9),
            train_seconds: state.train_seconds,
            best,
        };
        state.evals.push(record.clone());
        Ok(record)
    }

    /// What the run did so far, as `training.json` holds it.
    fn summary(&self, state: &TrainState) -> DistillSummary {
        DistillSummary {
            options: self.options.clone(),
            transcripts: self.data.transcripts.clone(),
            teacher: self.kd.map(|kd| kd.teacher.info().clone()),
            pairs: self.data.pairs,
            duplicates: self.data.duplicates,
            train: self.data.train.clone(),
            validation: self.data.validation.clone(),
            config: self.config.clone(),
            parameters: self.parameters,
            total_steps: self.schedule.total_steps,
            steps_done: state.step,
            steps_per_epoch: self.schedule.steps_per_epoch,
            best_step: state.best_step,
            best_loss: state.best_criterion,
            evals: state.evals.clone(),
            train_seconds: state.train_seconds,
            tokens_seen: state.tokens_seen,
            tokens_per_s: state.tokens_seen as f64 / state.train_seconds.max(1e-9),
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
