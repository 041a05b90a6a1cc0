//! The command line's arguments (clap), and their conversion to the
//! library's options: what `--help` shows, and every check of an argument
//! that clap cannot make.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use distill_gate::distill::tasks::TaskSelection;
use distill_gate::distill::teacher::{DEFAULT_KD_TEMPERATURE, DEFAULT_KD_WEIGHT};
use distill_gate::distill::train::{StudentInit, TrainLength, defaults};
use distill_gate::distill::{DistillOptions, StudentShape, TeacherOptions};
use distill_gate::llm::StorageDtype;
use distill_gate::llm::gguf::GgmlType;
use distill_gate::run::record::{RecordModel, RecordOptions};
use distill_gate::run::shard::Shard;
use distill_gate::student::INIT_SHAPE;

/// The committed demo config, run by `distill-gate run` with no argument.
const DEMO_CONFIG: &str = "fixtures/gate.toml";

#[derive(Parser)]
#[command(
    name = "distill-gate",
    version,
    about = "Decides, with evidence, whether a distilled student model may replace its teacher.",
    after_help = "Examples:\n  distill-gate run                      # the demo: fixtures/gate.toml\n  distill-gate run gate.toml --fresh    # start over, ignoring an earlier journal\n  distill-gate validate gate.toml       # check config and suites, run nothing\n  distill-gate report reports/demo      # re-render reports from the journal\n  distill-gate generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt 'Hi'\n\nExit codes: 0 every gate passed, 1 a gate failed or was inconclusive, 2 the run could not be evaluated."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run every model over every suite of a config, gate the students, write reports.
    #[command(
        after_help = "Example:\n  distill-gate run fixtures/gate.toml\n\nA killed run resumes from reports/<run>/results.jsonl when started again."
    )]
    Run(RunArgs),
    /// Check a config and its suites (and replay transcripts) without running any model.
    #[command(
        after_help = "Examples:\n  distill-gate validate fixtures/gate.toml\n  distill-gate validate gate.toml --online   # also send one tiny request per API model"
    )]
    Validate {
        /// The gate config.
        #[arg(default_value = DEMO_CONFIG)]
        config: PathBuf,
        /// Also send one tiny request to each API model (openai / anthropic
        /// kinds): reachable, key accepted, model known, usage reported.
        #[arg(long)]
        online: bool,
    },
    /// Re-render every report of a run from its journal; no model runs.
    #[command(after_help = "Example:\n  distill-gate report reports/demo")]
    Report {
        /// The run directory (holding run.json and results.jsonl).
        run_dir: PathBuf,
        /// Append a short Markdown summary to this file.
        #[arg(long, value_name = "PATH")]
        summary_md: Option<PathBuf>,
    },
    /// Combine the shard runs of `run --shard i/N` into one run.
    #[command(
        after_help = "Example:\n  distill-gate merge reports/demo/shard-*-of-4 --out reports/demo-merged\n\nRefuses shards of different configs or models, a shard given twice, a missing or\nunfinished shard. The merged summary equals that of an unsharded run."
    )]
    Merge {
        /// The shard run directories (every shard exactly once).
        #[arg(required = true)]
        shard_dirs: Vec<PathBuf>,
        /// The merged run directory (must not hold a journal yet).
        #[arg(long)]
        out: PathBuf,
        /// The config, when not at the path the shards' run.json names
        /// (another machine); its content must be the same.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Append a short Markdown summary to this file.
        #[arg(long, value_name = "PATH")]
        summary_md: Option<PathBuf>,
    },
    /// May a candidate run's students replace the baseline run's? Per student
    /// and suite: accuracy and retention change, McNemar, latency and cost
    /// deltas, a decision and a swap plan.
    #[command(
        after_help = "Example:\n  distill-gate compare reports/approved reports/candidate --out reports/compare\n\nExit codes: 0 every student approved, 1 a student rejected or inconclusive,\n2 the runs cannot be compared (different suites, no matching items)."
    )]
    Compare(CompareArgs),
    /// Work with suites.
    #[command(subcommand)]
    Suites(SuitesCommand),
    /// Run one local model over a suite split and write a replay transcript.
    #[command(
        after_help = "Example:\n  distill-gate record --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n      --suite suites/logistics --split test --out fixtures/teacher/logistics-test.jsonl\n  distill-gate record --config gate.toml --name gpt-4o-mini \\\n      --suite suites/coding --split train --out transcripts/coding-train.jsonl\n\nAn existing transcript is resumed: recorded prompts are not asked again."
    )]
    Record(RecordArgs),
    /// Write a randomly initialised Llama-family student (HF layout) with another checkpoint's tokenizer.
    #[command(
        after_help = "Example:\n  distill-gate init-student --tokenizer-from models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n      --layers 2 --hidden 64 --heads 4 --kv-heads 2 --intermediate 176 --seed 1 --out students/untrained\n\nThe starting point of distillation; untrained, it is a baseline that must fail every gate."
    )]
    InitStudent(InitStudentArgs),
    /// Generate text with a local checkpoint (HF directory or .gguf).
    #[command(
        after_help = "Examples:\n  distill-gate generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt 'What is 2+2?'\n  distill-gate generate --model fixtures/students/s2m --prompts prompts.jsonl   # {\"prompt\": ...} per line\n\nThe completion goes to stdout; usage and tokens/s to stderr."
    )]
    Generate(GenerateArgs),
    /// Train a student on teacher transcripts (sequence-level knowledge distillation).
    #[command(
        after_help = "Example (the demo teacher's answers to 900 train items):\n  distill-gate distill --transcript fixtures/teacher/smollm2-135m-train.jsonl --out students/mine \\\n      --layers 4 --hidden 128 --heads 4 --kv-heads 2 --intermediate 352 --epochs 20\n\nThe student learns the teacher's completion (and where it stops) for each prompt; the\nprompt itself is not learned. DIR holds the best student (Hugging Face layout),\nDIR/training.json the log, DIR/last/ the state --resume continues from."
    )]
    Distill(DistillArgs),
    /// How many paired items a gate needs (from expected rates), or how many
    /// more would settle each INCONCLUSIVE gate of a run.
    #[command(
        after_help = "Examples:\n  distill-gate plan --teacher-accuracy 0.8 --retention 0.98 --disagreement 0.1\n  distill-gate plan --run reports/demo --power 0.9\n\nExact: the gate's own rule (the min_teacher_correct floor, the interval method)\nover every table of paired pass/fail outcomes; see docs/calibration.md."
    )]
    Plan(PlanArgs),
    /// Store a checkpoint as one GGUF file with its matrices quantized, as a
    /// student would be deployed; a gate then measures it as stored.
    #[command(
        after_help = "Example:\n  distill-gate quantize --model students/mine --out students/mine.q8_0.gguf --type q8_0\n\nNorms stay f32; the embedding and every projection matrix are quantized\n(blocks of 32). Use the .gguf file as the student's `path` in gate.toml.\nWith --task-vocab the output layer keeps one row per token of the answers\nthe student was trained on; distill-gate runs such a file, llama.cpp does not."
    )]
    Quantize(QuantizeArgs),
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,
    /// The .gguf file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Matrix storage.
    #[arg(long = "type", value_enum)]
    pub matrix_type: QuantType,
    /// Restrict the output layer to the tokens of the answers the student
    /// was trained on (and EOS), read from the training.json beside
    /// --model: a task student then scores only those tokens, which makes
    /// each decoding step cheaper. Only for students of closed-vocabulary
    /// tasks; the gate measures the result as stored.
    #[arg(long)]
    pub task_vocab: bool,
}

/// The quantized formats `quantize` writes (the runtime decodes each).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum QuantType {
    /// 8-bit, symmetric, blocks of 32.
    #[value(name = "q8_0")]
    Q8_0,
    /// 4-bit with a minimum, blocks of 32.
    #[value(name = "q4_1")]
    Q4_1,
    /// 4-bit, symmetric, blocks of 32.
    #[value(name = "q4_0")]
    Q4_0,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Expected teacher accuracy.
    #[arg(long, required_unless_present = "run")]
    pub teacher_accuracy: Option<f64>,
    /// Expected retention (student accuracy / teacher accuracy).
    #[arg(long, required_unless_present = "run")]
    pub retention: Option<f64>,
    /// Expected disagreement: share of items exactly one model gets right.
    #[arg(long, required_unless_present = "run")]
    pub disagreement: Option<f64>,
    /// The gate's min_retention.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_MIN_RETENTION)]
    pub threshold: f64,
    /// The gate's confidence.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
    /// Wanted probability of PASS when the expectations hold.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_POWER)]
    pub power: f64,
    /// The run's min_teacher_correct.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_MIN_TEACHER_CORRECT)]
    pub min_teacher_correct: u64,
    /// The run's [gate] interval (score, fieller, delta_log, bca, percentile).
    #[arg(long, default_value_t = distill_gate::stats::IntervalMethod::default())]
    pub interval: distill_gate::stats::IntervalMethod,
    /// A run directory: plan more items for its INCONCLUSIVE gates instead.
    #[arg(long, conflicts_with_all = ["teacher_accuracy", "retention", "disagreement"])]
    pub run: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The run directory of the approved (baseline) run.
    pub baseline: PathBuf,
    /// The run directory of the candidate run.
    pub candidate: PathBuf,
    /// Write compare.json and compare.md into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Append a short Markdown summary to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_md: Option<PathBuf>,
    /// Minimum candidate / baseline accuracy ratio (default: each gate's min_retention).
    #[arg(long)]
    pub min_retention: Option<f64>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The gate config.
    #[arg(default_value = DEMO_CONFIG)]
    pub config: PathBuf,
    /// Discard an earlier journal of this run and start over.
    #[arg(long)]
    pub fresh: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Spending limit in dollars for API models (overrides `[run] max_cost`).
    #[arg(long, value_name = "DOLLARS")]
    pub max_cost: Option<f64>,
    /// Run only shard i of N (1-based, e.g. 2/8): the items whose hash of
    /// suite and task id falls in it, into the run directory's shard-i-of-N/.
    /// Combine the shards with `distill-gate merge`.
    #[arg(long, value_name = "i/N", conflicts_with = "shard_index_from")]
    pub shard: Option<distill_gate::run::shard::Shard>,
    /// Instead of --shard: read the shard's index from this environment
    /// variable, as a scheduler sets it (JOB_COMPLETION_INDEX,
    /// SLURM_ARRAY_TASK_ID, ...); needs --shard-count.
    #[arg(long, value_name = "VAR", requires = "shard_count")]
    pub shard_index_from: Option<String>,
    /// With --shard-index-from: how many shards.
    #[arg(long, value_name = "N", requires = "shard_index_from")]
    pub shard_count: Option<u32>,
    /// With --shard-index-from: the index of the first shard (0 for
    /// Kubernetes and GitHub's job-index; Slurm's is where --array starts).
    #[arg(
        long,
        value_name = "B",
        default_value_t = 0,
        requires = "shard_index_from"
    )]
    pub shard_base: u32,
    /// Append a short Markdown summary (verdict table, one line per student)
    /// to this file, e.g. "$GITHUB_STEP_SUMMARY".
    #[arg(long, value_name = "PATH")]
    pub summary_md: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum SuitesCommand {
    /// List the suites under a directory with their splits and categories.
    #[command(after_help = "Example:\n  distill-gate suites list suites")]
    List {
        /// Directory holding suite directories.
        #[arg(default_value = "suites")]
        dir: PathBuf,
    },
    /// Import a HumanEval-format JSONL file (task_id, prompt,
    /// canonical_solution, test, entry_point) as a coding suite, then check
    /// that every canonical solution passes its tests in the sandbox.
    #[command(
        after_help = "Example:\n  distill-gate suites import-humaneval HumanEval.jsonl.gz --out suites/humaneval"
    )]
    ImportHumaneval(ImportArgs),
    /// Import an MBPP-format JSONL file (task_id, text, code, test_list,
    /// optional test_setup_code) as a coding suite, then check that every
    /// reference solution passes its tests in the sandbox.
    #[command(
        after_help = "Example:\n  distill-gate suites import-mbpp mbpp.jsonl --out suites/mbpp"
    )]
    ImportMbpp(ImportArgs),
}

/// The arguments of every benchmark import (`suites import-humaneval`,
/// `suites import-mbpp`).
#[derive(Args)]
pub struct ImportArgs {
    /// The benchmark's JSONL file (plain, or gzip as shipped: .jsonl.gz).
    pub file: PathBuf,
    /// The suite directory to create.
    #[arg(long)]
    pub out: PathBuf,
    /// Suite name (default: the output directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Completion budget per problem, in tokens (default: 384 for
    /// HumanEval, 512 for MBPP).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Skip running the reference solutions.
    #[arg(long)]
    pub no_verify: bool,
    /// Run the reference solutions even where neither a namespace jail
    /// nor Landlock can confine them (only rlimits; as `[run]
    /// unsafe_sandbox = true` does for a run).
    #[arg(long, conflicts_with = "no_verify")]
    pub unsafe_sandbox: bool,
}

impl ImportArgs {
    /// The suite name: `--name`, else the output directory's name.
    pub fn name(&self) -> Result<String> {
        match &self.name {
            Some(n) => Ok(n.clone()),
            None => self
                .out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("--out has no directory name; pass --name"),
        }
    }
}

#[derive(Args)]
pub struct RecordArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    pub model: Option<PathBuf>,
    /// Instead of --model: a gate config holding the model entry (e.g. an HTTP teacher).
    #[arg(long, requires = "name")]
    pub config: Option<PathBuf>,
    /// With --config: the model entry's name.
    #[arg(long, requires = "config")]
    pub name: Option<String>,
    /// Suite directory.
    #[arg(long)]
    pub suite: PathBuf,
    /// Split to record.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Transcript to write (appended to, resumable).
    #[arg(long)]
    pub out: PathBuf,
    /// Only this category (repeatable; default: all).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Only N items, taking the categories in turn.
    #[arg(long)]
    pub limit: Option<usize>,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    pub backend: distill_gate::llm::Backend,
    /// Requests per forward batch.
    #[arg(long, default_value_t = distill_gate::model::local::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Answers per task (as `samples` of the gate.toml suite entry it serves).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Sampling temperature (as the suite entry's `temperature`).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus mass (as the suite entry's `top_p`).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Base sampling seed (the gate.toml's `[run] seed`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args)]
pub struct InitStudentArgs {
    /// Checkpoint whose tokenizer (and vocabulary size) the student takes.
    #[arg(long)]
    pub tokenizer_from: PathBuf,
    /// Decoder layers.
    #[arg(long, default_value_t = INIT_SHAPE.layers)]
    pub layers: usize,
    /// Model width.
    #[arg(long, default_value_t = INIT_SHAPE.hidden)]
    pub hidden: usize,
    /// Query heads.
    #[arg(long, default_value_t = INIT_SHAPE.heads)]
    pub heads: usize,
    /// Key/value heads.
    #[arg(long, default_value_t = INIT_SHAPE.kv_heads)]
    pub kv_heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = INIT_SHAPE.intermediate)]
    pub intermediate: usize,
    /// Initialisation seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (Hugging Face layout).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,
    /// The prompt.
    #[arg(long, conflicts_with = "prompts", required_unless_present = "prompts")]
    pub prompt: Option<String>,
    /// A JSONL file with one {"prompt": ...} per line, generated as one batch run.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Wrap each prompt in the model's chat template as one user turn.
    #[arg(long)]
    pub chat: bool,
    /// Maximum new tokens.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Stop sequence (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    pub backend: distill_gate::llm::Backend,
    /// Requests per forward batch.
    #[arg(long, default_value_t = distill_gate::model::local::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
}

#[derive(Args)]
pub struct DistillArgs {
    /// Teacher transcript (JSONL from `record`); repeatable.
    #[arg(long = "transcript", required = true)]
    pub transcripts: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Decoder layers (with --init-from-teacher: how many of the teacher's,
    /// spread evenly from its first to its last).
    #[arg(long, default_value_t = defaults::SHAPE.layers)]
    pub layers: usize,
    /// Model width.
    #[arg(long, default_value_t = defaults::SHAPE.hidden, conflicts_with = "init_from_teacher")]
    pub hidden: usize,
    /// Query heads.
    #[arg(long, default_value_t = defaults::SHAPE.heads, conflicts_with = "init_from_teacher")]
    pub heads: usize,
    /// Key/value heads.
    #[arg(long, default_value_t = defaults::SHAPE.kv_heads, conflicts_with = "init_from_teacher")]
    pub kv_heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = defaults::SHAPE.intermediate, conflicts_with = "init_from_teacher")]
    pub intermediate: usize,
    /// Start from the --teacher-model's own weights (its embeddings, final
    /// norm, output layer, tokenizer and --layers of its decoder layers)
    /// instead of random ones; use --kd-weight 0 to learn only its answers.
    #[arg(long, requires = "teacher_model")]
    pub init_from_teacher: bool,
    /// With --init-from-teacher: exactly which of the teacher's layers to
    /// keep, 0-based and comma-separated (e.g. 0,5,10,29), instead of
    /// --layers spread evenly.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "init_from_teacher",
        conflicts_with = "layers"
    )]
    pub keep_layers: Vec<usize>,
    /// A task-specific student: learn only answers to train tasks of this
    /// suite directory (repeatable); a transcript line answering a test
    /// task is an error.
    #[arg(long = "suite", value_name = "DIR")]
    pub suites: Vec<PathBuf>,
    /// With --suite: only this category (`category` or `suite/category`;
    /// repeatable).
    #[arg(long = "category", value_name = "CATEGORY", requires = "suites")]
    pub categories: Vec<String>,
    /// With --suite: build the student's prompts with N few-shot examples
    /// (0: none) instead of learning the teacher's prompts as recorded; gate
    /// it with `few_shot = N` in its gate.toml entry.
    #[arg(long, value_name = "N", requires = "suites")]
    pub few_shot: Option<usize>,
    /// Tokenizer vocabulary size (byte-level BPE trained on the training text;
    /// default 1024). Not with --teacher-model: the student then uses the
    /// teacher's tokenizer.
    #[arg(long, conflicts_with = "teacher_model")]
    pub vocab_size: Option<usize>,
    /// Longest training sequence in tokens (prompts are cut from the left to fit).
    #[arg(long, default_value_t = defaults::MAX_SEQ_LEN)]
    pub max_seq_len: usize,
    /// Passes over the training pairs (default 10 unless --steps is given).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<usize>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sequences per step.
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = defaults::LR)]
    pub lr: f64,
    /// Final learning rate of the cosine decay (default --lr / 10).
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Linear warmup steps (default: 5% of the steps, at most 100).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Maximum global gradient norm (0 disables clipping).
    #[arg(long, default_value_t = defaults::CLIP)]
    pub clip: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = defaults::WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Fraction of pairs held out for validation (by a seeded hash of the request key).
    #[arg(long, default_value_t = defaults::VAL_FRACTION)]
    pub val_fraction: f64,
    /// Evaluate and checkpoint every N steps (0: once per epoch).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// Seed of initialisation, data order and the validation split.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    pub backend: distill_gate::llm::Backend,
    /// Storage of the saved student.
    #[arg(long, value_enum, ignore_case = true, default_value = "f32")]
    pub dtype: StorageDtype,
    /// Continue the run saved in OUT/last (same options and transcripts).
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps in this invocation (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Token-level distillation: a local teacher checkpoint (Hugging Face
    /// directory or .gguf) whose next-token distributions the student also
    /// learns; the student uses its tokenizer.
    #[arg(long)]
    pub teacher_model: Option<PathBuf>,
    /// Weight alpha of the KL term: loss = (1 - alpha) * CE + alpha * T^2 * KL
    /// (default 0.5; needs --teacher-model).
    #[arg(long, requires = "teacher_model")]
    pub kd_weight: Option<f64>,
    /// Softmax temperature T of the KL term (default 2.0; needs --teacher-model).
    #[arg(long, requires = "teacher_model")]
    pub kd_temperature: Option<f64>,
}

impl Cli {
    /// The command given, or `run` with its defaults (the demo) when none is.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Run(RunArgs {
            config: PathBuf::from(DEMO_CONFIG),
            fresh: false,
            quiet: false,
            max_cost: None,
            shard: None,
            shard_index_from: None,
            shard_count: None,
            shard_base: 0,
            summary_md: None,
        }))
    }
}

impl From<QuantType> for GgmlType {
    fn from(t: QuantType) -> Self {
        match t {
            QuantType::Q8_0 => GgmlType::Q8_0,
            QuantType::Q4_1 => GgmlType::Q4_1,
            QuantType::Q4_0 => GgmlType::Q4_0,
        }
    }
}

impl PlanArgs {
    /// The expectations and the gate's settings (with `--run`, only the
    /// power is used).
    pub fn input(&self) -> distill_gate::plan::PlanInput {
        distill_gate::plan::PlanInput {
            teacher_accuracy: self.teacher_accuracy.unwrap_or(0.0),
            retention: self.retention.unwrap_or(0.0),
            disagreement: self.disagreement.unwrap_or(0.0),
            threshold: self.threshold,
            confidence: self.confidence,
            power: self.power,
            min_teacher_correct: self.min_teacher_correct,
            method: self.interval,
        }
    }
}

impl RunArgs {
    /// The library's options: `--max-cost` checked, the shard read from
    /// the scheduler's variable with `--shard-index-from`.
    pub fn options(&self) -> Result<distill_gate::pipeline::RunOptions<'_>> {
        if let Some(c) = self.max_cost
            && !(c.is_finite() && c >= 0.0)
        {
            bail!("--max-cost must be a non-negative number of dollars, got {c}");
        }
        let shard = match (&self.shard_index_from, self.shard_count) {
            (Some(var), Some(count)) => Some(Shard::from_scheduler(
                var,
                std::env::var(var).ok().as_deref(),
                self.shard_base,
                count,
            )?),
            _ => self.shard,
        };
        Ok(distill_gate::pipeline::RunOptions {
            config: &self.config,
            fresh: self.fresh,
            show_progress: !self.quiet,
            max_cost: self.max_cost,
            shard,
        })
    }
}

impl RecordArgs {
    /// The library's options; `command` is the command line, for the
    /// provenance line.
    pub fn options(self, command: String) -> Result<RecordOptions> {
        Ok(RecordOptions {
            model: match (self.model, self.config, self.name) {
                (Some(path), _, _) => RecordModel::Checkpoint(path),
                (None, Some(config), Some(name)) => RecordModel::FromConfig { config, name },
                _ => bail!("record needs --model PATH, or --config FILE with --name MODEL"),
            },
            suite: self.suite,
            split: self.split,
            out: self.out,
            categories: self.categories,
            limit: self.limit,
            backend: self.backend,
            batch_size: self.batch_size,
            sampling: distill_gate::run::plan::Sampling {
                samples: self.samples,
                temperature: self.temperature,
                top_p: self.top_p,
                seed: self.seed,
            },
            command,
        })
    }
}

impl InitStudentArgs {
    /// The library's options.
    pub fn options(self) -> distill_gate::student::InitOptions {
        distill_gate::student::InitOptions {
            tokenizer_from: self.tokenizer_from,
            shape: StudentShape {
                layers: self.layers,
                hidden: self.hidden,
                heads: self.heads,
                kv_heads: self.kv_heads,
                intermediate: self.intermediate,
            },
            seed: self.seed,
            out: self.out,
        }
    }
}

impl GenerateArgs {
    /// The generation settings.
    pub fn settings(&self) -> distill_gate::model::GenerationSettings {
        distill_gate::model::GenerationSettings {
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            chat: self.chat,
        }
    }
}

impl DistillArgs {
    /// The library's options, with the defaults that depend on other
    /// arguments (epochs unless `--steps`, the final learning rate, the
    /// vocabulary without a teacher, the teacher's kept layers).
    pub fn options(self) -> Result<DistillOptions> {
        let length = match (self.epochs, self.steps) {
            (_, Some(s)) => TrainLength::Steps(s),
            (e, None) => TrainLength::Epochs(e.unwrap_or(defaults::EPOCHS)),
        };
        let init = match (&self.teacher_model, self.init_from_teacher) {
            (Some(teacher), true) => StudentInit::Teacher {
                layers: distill_gate::student::teacher_layers(
                    teacher,
                    self.layers,
                    &self.keep_layers,
                )?,
            },
            _ => StudentInit::Random,
        };
        Ok(DistillOptions {
            transcripts: self.transcripts,
            out: self.out,
            shape: StudentShape {
                layers: self.layers,
                hidden: self.hidden,
                heads: self.heads,
                kv_heads: self.kv_heads,
                intermediate: self.intermediate,
            },
            vocab_size: match self.teacher_model {
                Some(_) => None,
                None => Some(self.vocab_size.unwrap_or(defaults::VOCAB_SIZE)),
            },
            max_seq_len: self.max_seq_len,
            length,
            batch_size: self.batch_size,
            lr: self.lr,
            min_lr: self.min_lr.unwrap_or(self.lr / defaults::MIN_LR_DIVISOR),
            warmup_steps: self.warmup_steps,
            clip: self.clip,
            weight_decay: self.weight_decay,
            val_fraction: self.val_fraction,
            eval_every: self.eval_every,
            seed: self.seed,
            backend: self.backend,
            dtype: self.dtype,
            teacher: self.teacher_model.map(|model| TeacherOptions {
                model,
                kd_weight: self.kd_weight.unwrap_or(DEFAULT_KD_WEIGHT),
                kd_temperature: self.kd_temperature.unwrap_or(DEFAULT_KD_TEMPERATURE),
            }),
            init,
            tasks: (!self.suites.is_empty()).then_some(TaskSelection {
                suites: self.suites,
                categories: self.categories,
                few_shot: self.few_shot,
            }),
            resume: self.resume,
            stop_after: self.stop_after,
        })
    }
}
