//! The `distill-gate` command line: parses arguments, calls the library, maps
//! outcomes to exit codes (0 every gate passed, 1 a gate failed or was
//! inconclusive, 2 the run could not be evaluated).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

mod commands;

use commands as cli;

#[derive(Parser)]
#[command(
    name = "distill-gate",
    version,
    about = "Decides, with evidence, whether a distilled student model may replace its teacher.",
    after_help = "Examples:\n  distill-gate run                      # the demo: fixtures/gate.toml\n  distill-gate run gate.toml --fresh    # start over, ignoring an earlier journal\n  distill-gate validate gate.toml       # check config and suites, run nothing\n  distill-gate report reports/demo      # re-render reports from the journal\n  distill-gate generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat --prompt 'Hi'\n\nExit codes: 0 every gate passed, 1 a gate failed or was inconclusive, 2 the run could not be evaluated."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(default_value = cli::DEMO_CONFIG)]
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
struct QuantizeArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long)]
    model: PathBuf,
    /// The .gguf file to write.
    #[arg(long)]
    out: PathBuf,
    /// Matrix storage.
    #[arg(long = "type", value_enum)]
    matrix_type: QuantType,
    /// Restrict the output layer to the tokens of the answers the student
    /// was trained on (and EOS), read from the training.json beside
    /// --model: a task student then scores only those tokens, which makes
    /// each decoding step cheaper. Only for students of closed-vocabulary
    /// tasks; the gate measures the result as stored.
    #[arg(long)]
    task_vocab: bool,
}

/// The quantized formats `quantize` writes (the runtime decodes each).
#[derive(Clone, Copy, clap::ValueEnum)]
enum QuantType {
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
struct PlanArgs {
    /// Expected teacher accuracy.
    #[arg(long, required_unless_present = "run")]
    teacher_accuracy: Option<f64>,
    /// Expected retention (student accuracy / teacher accuracy).
    #[arg(long, required_unless_present = "run")]
    retention: Option<f64>,
    /// Expected disagreement: share of items exactly one model gets right.
    #[arg(long, required_unless_present = "run")]
    disagreement: Option<f64>,
    /// The gate's min_retention.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_MIN_RETENTION)]
    threshold: f64,
    /// The gate's confidence.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_CONFIDENCE)]
    confidence: f64,
    /// Wanted probability of PASS when the expectations hold.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_POWER)]
    power: f64,
    /// The run's min_teacher_correct.
    #[arg(long, default_value_t = distill_gate::gate::DEFAULT_MIN_TEACHER_CORRECT)]
    min_teacher_correct: u64,
    /// The run's [gate] interval (score, fieller, delta_log, bca, percentile).
    #[arg(long, default_value_t = distill_gate::stats::IntervalMethod::default())]
    interval: distill_gate::stats::IntervalMethod,
    /// A run directory: plan more items for its INCONCLUSIVE gates instead.
    #[arg(long, conflicts_with_all = ["teacher_accuracy", "retention", "disagreement"])]
    run: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    /// The run directory of the approved (baseline) run.
    baseline: PathBuf,
    /// The run directory of the candidate run.
    candidate: PathBuf,
    /// Write compare.json and compare.md into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Append a short Markdown summary to this file.
    #[arg(long, value_name = "PATH")]
    summary_md: Option<PathBuf>,
    /// Minimum candidate / baseline accuracy ratio (default: each gate's min_retention).
    #[arg(long)]
    min_retention: Option<f64>,
}

#[derive(Args)]
struct RunArgs {
    /// The gate config.
    #[arg(default_value = cli::DEMO_CONFIG)]
    config: PathBuf,
    /// Discard an earlier journal of this run and start over.
    #[arg(long)]
    fresh: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Spending limit in dollars for API models (overrides `[run] max_cost`).
    #[arg(long, value_name = "DOLLARS")]
    max_cost: Option<f64>,
    /// Run only shard i of N (1-based, e.g. 2/8): the items whose hash of
    /// suite and task id falls in it, into the run directory's shard-i-of-N/.
    /// Combine the shards with `distill-gate merge`.
    #[arg(long, value_name = "i/N", conflicts_with = "shard_index_from")]
    shard: Option<distill_gate::run::shard::Shard>,
    /// Instead of --shard: read the shard's index from this environment
    /// variable, as a scheduler sets it (JOB_COMPLETION_INDEX,
    /// SLURM_ARRAY_TASK_ID, ...); needs --shard-count.
    #[arg(long, value_name = "VAR", requires = "shard_count")]
    shard_index_from: Option<String>,
    /// With --shard-index-from: how many shards.
    #[arg(long, value_name = "N", requires = "shard_index_from")]
    shard_count: Option<u32>,
    /// With --shard-index-from: the index of the first shard (0 for
    /// Kubernetes and GitHub's job-index; Slurm's is where --array starts).
    #[arg(
        long,
        value_name = "B",
        default_value_t = 0,
        requires = "shard_index_from"
    )]
    shard_base: u32,
    /// Append a short Markdown summary (verdict table, one line per student)
    /// to this file, e.g. "$GITHUB_STEP_SUMMARY".
    #[arg(long, value_name = "PATH")]
    summary_md: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SuitesCommand {
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
        after_help = "Example:\n  distill-gate suites import-humaneval HumanEval.jsonl --out suites/humaneval"
    )]
    ImportHumaneval {
        /// The HumanEval-format JSONL file.
        file: PathBuf,
        /// The suite directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Suite name (default: the output directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Completion budget per problem, in tokens.
        #[arg(long, default_value_t = 384)]
        max_tokens: u32,
        /// Skip running the canonical solutions.
        #[arg(long)]
        no_verify: bool,
        /// Run the canonical solutions even where neither a namespace jail
        /// nor Landlock can confine them (only rlimits; as `[run]
        /// unsafe_sandbox = true` does for a run).
        #[arg(long, conflicts_with = "no_verify")]
        unsafe_sandbox: bool,
    },
}

#[derive(Args)]
struct RecordArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    model: Option<PathBuf>,
    /// Instead of --model: a gate config holding the model entry (e.g. an HTTP teacher).
    #[arg(long, requires = "name")]
    config: Option<PathBuf>,
    /// With --config: the model entry's name.
    #[arg(long, requires = "config")]
    name: Option<String>,
    /// Suite directory.
    #[arg(long)]
    suite: PathBuf,
    /// Split to record.
    #[arg(long, default_value = "test")]
    split: String,
    /// Transcript to write (appended to, resumable).
    #[arg(long)]
    out: PathBuf,
    /// Only this category (repeatable; default: all).
    #[arg(long = "category", value_name = "CATEGORY")]
    categories: Vec<String>,
    /// Only N items, taking the categories in turn.
    #[arg(long)]
    limit: Option<usize>,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    backend: distill_gate::llm::Backend,
    /// Requests per forward batch.
    #[arg(long, default_value_t = distill_gate::model::local::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Answers per task (as `samples` of the gate.toml suite entry it serves).
    #[arg(long, default_value_t = 1)]
    samples: u32,
    /// Sampling temperature (as the suite entry's `temperature`).
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus mass (as the suite entry's `top_p`).
    #[arg(long)]
    top_p: Option<f32>,
    /// Base sampling seed (the gate.toml's `[run] seed`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct InitStudentArgs {
    /// Checkpoint whose tokenizer (and vocabulary size) the student takes.
    #[arg(long)]
    tokenizer_from: PathBuf,
    /// Decoder layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Model width.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Query heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Key/value heads.
    #[arg(long, default_value_t = 2)]
    kv_heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 176)]
    intermediate: usize,
    /// Initialisation seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (Hugging Face layout).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct GenerateArgs {
    /// Checkpoint: a Hugging Face directory or a .gguf file.
    #[arg(long)]
    model: PathBuf,
    /// The prompt.
    #[arg(long, conflicts_with = "prompts", required_unless_present = "prompts")]
    prompt: Option<String>,
    /// A JSONL file with one {"prompt": ...} per line, generated as one batch run.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Wrap each prompt in the model's chat template as one user turn.
    #[arg(long)]
    chat: bool,
    /// Maximum new tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Stop sequence (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    backend: distill_gate::llm::Backend,
    /// Requests per forward batch.
    #[arg(long, default_value_t = distill_gate::model::local::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
}

#[derive(Args)]
struct DistillArgs {
    /// Teacher transcript (JSONL from `record`); repeatable.
    #[arg(long = "transcript", required = true)]
    transcripts: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Decoder layers (with --init-from-teacher: how many of the teacher's,
    /// spread evenly from its first to its last).
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Model width.
    #[arg(long, default_value_t = 128, conflicts_with = "init_from_teacher")]
    hidden: usize,
    /// Query heads.
    #[arg(long, default_value_t = 4, conflicts_with = "init_from_teacher")]
    heads: usize,
    /// Key/value heads.
    #[arg(long, default_value_t = 2, conflicts_with = "init_from_teacher")]
    kv_heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 352, conflicts_with = "init_from_teacher")]
    intermediate: usize,
    /// Start from the --teacher-model's own weights (its embeddings, final
    /// norm, output layer, tokenizer and --layers of its decoder layers)
    /// instead of random ones; use --kd-weight 0 to learn only its answers.
    #[arg(long, requires = "teacher_model")]
    init_from_teacher: bool,
    /// With --init-from-teacher: exactly which of the teacher's layers to
    /// keep, 0-based and comma-separated (e.g. 0,5,10,29), instead of
    /// --layers spread evenly.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "init_from_teacher",
        conflicts_with = "layers"
    )]
    keep_layers: Vec<usize>,
    /// A task-specific student: learn only answers to train tasks of this
    /// suite directory (repeatable); a transcript line answering a test
    /// task is an error.
    #[arg(long = "suite", value_name = "DIR")]
    suites: Vec<PathBuf>,
    /// With --suite: only this category (`category` or `suite/category`;
    /// repeatable).
    #[arg(long = "category", value_name = "CATEGORY", requires = "suites")]
    categories: Vec<String>,
    /// With --suite: build the student's prompts with N few-shot examples
    /// (0: none) instead of learning the teacher's prompts as recorded; gate
    /// it with `few_shot = N` in its gate.toml entry.
    #[arg(long, value_name = "N", requires = "suites")]
    few_shot: Option<usize>,
    /// Tokenizer vocabulary size (byte-level BPE trained on the training text;
    /// default 1024). Not with --teacher-model: the student then uses the
    /// teacher's tokenizer.
    #[arg(long, conflicts_with = "teacher_model")]
    vocab_size: Option<usize>,
    /// Longest training sequence in tokens (prompts are cut from the left to fit).
    #[arg(long, default_value_t = 512)]
    max_seq_len: usize,
    /// Passes over the training pairs (default 10 unless --steps is given).
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<usize>,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Sequences per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Final learning rate of the cosine decay (default --lr / 10).
    #[arg(long)]
    min_lr: Option<f64>,
    /// Linear warmup steps (default: 5% of the steps, at most 100).
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// Maximum global gradient norm (0 disables clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Fraction of pairs held out for validation (by a seeded hash of the request key).
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Evaluate and checkpoint every N steps (0: once per epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: usize,
    /// Seed of initialisation, data order and the validation split.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// CPU backend: flex or ndarray.
    #[arg(long, default_value_t)]
    backend: distill_gate::llm::Backend,
    /// Storage of the saved student: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Continue the run saved in OUT/last (same options and transcripts).
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps in this invocation (continue later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Token-level distillation: a local teacher checkpoint (Hugging Face
    /// directory or .gguf) whose next-token distributions the student also
    /// learns; the student uses its tokenizer.
    #[arg(long)]
    teacher_model: Option<PathBuf>,
    /// Weight alpha of the KL term: loss = (1 - alpha) * CE + alpha * T^2 * KL
    /// (default 0.5; needs --teacher-model).
    #[arg(long, requires = "teacher_model")]
    kd_weight: Option<f64>,
    /// Softmax temperature T of the KL term (default 2.0; needs --teacher-model).
    #[arg(long, requires = "teacher_model")]
    kd_temperature: Option<f64>,
}

fn main() -> ExitCode {
    distill_gate::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run(RunArgs {
        config: PathBuf::from(cli::DEMO_CONFIG),
        fresh: false,
        quiet: false,
        max_cost: None,
        shard: None,
        shard_index_from: None,
        shard_count: None,
        shard_base: 0,
        summary_md: None,
    }));
    match dispatch(command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(cli::EXIT_BROKEN)
        }
    }
}

/// An error and its causes joined by ": ", as `{:#}` prints them, but
/// without a cause whose text the message already holds (a library error
/// that names its I/O error would otherwise show "(os error 2)" twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn dispatch(command: Command) -> Result<u8> {
    use distill_gate::llm::gguf::GgmlType;
    match command {
        Command::Quantize(a) => cli::quantize(
            &a.model,
            &a.out,
            a.task_vocab,
            match a.matrix_type {
                QuantType::Q8_0 => GgmlType::Q8_0,
                QuantType::Q4_1 => GgmlType::Q4_1,
                QuantType::Q4_0 => GgmlType::Q4_0,
            },
        ),
        Command::Plan(a) => match a.run {
            Some(dir) => cli::plan_more(&dir, a.power),
            None => cli::plan(&distill_gate::plan::PlanInput {
                teacher_accuracy: a.teacher_accuracy.unwrap_or(0.0),
                retention: a.retention.unwrap_or(0.0),
                disagreement: a.disagreement.unwrap_or(0.0),
                threshold: a.threshold,
                confidence: a.confidence,
                power: a.power,
                min_teacher_correct: a.min_teacher_correct,
                method: a.interval,
            }),
        },
        Command::Run(a) => cli::run(&cli::RunOptions {
            config: &a.config,
            fresh: a.fresh,
            show_progress: !a.quiet,
            max_cost: a.max_cost,
            shard: match (&a.shard_index_from, a.shard_count) {
                (Some(var), Some(count)) => Some(distill_gate::run::shard::Shard::from_scheduler(
                    var,
                    std::env::var(var).ok().as_deref(),
                    a.shard_base,
                    count,
                )?),
                _ => a.shard,
            },
            summary_md: a.summary_md.as_deref(),
        }),
        Command::Validate { config, online } => cli::validate(&config, online),
        Command::Report {
            run_dir,
            summary_md,
        } => cli::report(&run_dir, summary_md.as_deref()),
        Command::Merge {
            shard_dirs,
            out,
            config,
            summary_md,
        } => cli::merge(&shard_dirs, &out, config.as_deref(), summary_md.as_deref()),
        Command::Compare(a) => cli::compare(&cli::CompareOptions {
            baseline: a.baseline,
            candidate: a.candidate,
            out: a.out,
            summary_md: a.summary_md,
            min_retention: a.min_retention,
        }),
        Command::Suites(SuitesCommand::List { dir }) => cli::suites_list(&dir),
        Command::Suites(SuitesCommand::ImportHumaneval {
            file,
            out,
            name,
            max_tokens,
            no_verify,
            unsafe_sandbox,
        }) => {
            distill_gate::sandbox::allow_unsafe(unsafe_sandbox);
            cli::import_humaneval(&file, &out, name.as_deref(), max_tokens, !no_verify)
        }
        Command::Record(a) => cli::record(&cli::RecordOptions {
            model: match (a.model, a.config, a.name) {
                (Some(path), _, _) => cli::RecordModel::Checkpoint(path),
                (None, Some(config), Some(name)) => cli::RecordModel::FromConfig { config, name },
                _ => anyhow::bail!("record needs --model PATH, or --config FILE with --name MODEL"),
            },
            suite: a.suite,
            split: a.split,
            out: a.out,
            categories: a.categories,
            limit: a.limit,
            backend: a.backend,
            batch_size: a.batch_size,
            sampling: distill_gate::run::plan::Sampling {
                samples: a.samples,
                temperature: a.temperature,
                top_p: a.top_p,
                seed: a.seed,
            },
        }),
        Command::InitStudent(a) => cli::init_student(&cli::StudentShape {
            tokenizer_from: a.tokenizer_from,
            layers: a.layers,
            hidden: a.hidden,
            heads: a.heads,
            kv_heads: a.kv_heads,
            intermediate: a.intermediate,
            seed: a.seed,
            out: a.out,
        }),
        Command::Generate(a) => generate(a),
        Command::Distill(a) => cli::distill(&distill_options(a)?),
    }
}

fn generate(a: GenerateArgs) -> Result<u8> {
    let prompts = match (&a.prompt, &a.prompts) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(file)) => read_prompts(file)?,
        (None, None) => anyhow::bail!("give --prompt or --prompts"),
    };
    let settings = distill_gate::model::GenerationSettings {
        max_tokens: a.max_tokens,
        stop: a.stop,
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        chat: a.chat,
    };
    cli::generate(&a.model, a.backend, a.batch_size, &prompts, &settings)
}

fn distill_options(a: DistillArgs) -> Result<distill_gate::distill::DistillOptions> {
    use distill_gate::distill::tasks::TaskSelection;
    use distill_gate::distill::teacher::spread_layers;
    use distill_gate::distill::teacher::{DEFAULT_KD_TEMPERATURE, DEFAULT_KD_WEIGHT};
    use distill_gate::distill::train::{StudentInit, TrainLength};
    use distill_gate::distill::{DistillOptions, StudentShape, TeacherOptions};
    let length = match (a.epochs, a.steps) {
        (_, Some(s)) => TrainLength::Steps(s),
        (e, None) => TrainLength::Epochs(e.unwrap_or(10)),
    };
    let dtype = serde_json::from_value(serde_json::Value::String(a.dtype.to_lowercase()))
        .with_context(|| format!("--dtype {:?}: expected f32, f16 or bf16", a.dtype))?;
    let init = match (&a.teacher_model, a.init_from_teacher) {
        (Some(teacher), true) => StudentInit::Teacher {
            layers: if a.keep_layers.is_empty() {
                let total = distill_gate::llm::Checkpoint::inspect(teacher)?.num_hidden_layers;
                spread_layers(total, a.layers)
            } else {
                a.keep_layers.clone()
            },
        },
        _ => StudentInit::Random,
    };
    Ok(DistillOptions {
        transcripts: a.transcripts,
        out: a.out,
        shape: StudentShape {
            layers: a.layers,
            hidden: a.hidden,
            heads: a.heads,
            kv_heads: a.kv_heads,
            intermediate: a.intermediate,
        },
        vocab_size: match a.teacher_model {
            Some(_) => None,
            None => Some(a.vocab_size.unwrap_or(1024)),
        },
        max_seq_len: a.max_seq_len,
        length,
        batch_size: a.batch_size,
        lr: a.lr,
        min_lr: a.min_lr.unwrap_or(a.lr / 10.0),
        warmup_steps: a.warmup_steps,
        clip: a.clip,
        weight_decay: a.weight_decay,
        val_fraction: a.val_fraction,
        eval_every: a.eval_every,
        seed: a.seed,
        backend: a.backend,
        dtype,
        teacher: a.teacher_model.map(|model| TeacherOptions {
            model,
            kd_weight: a.kd_weight.unwrap_or(DEFAULT_KD_WEIGHT),
            kd_temperature: a.kd_temperature.unwrap_or(DEFAULT_KD_TEMPERATURE),
        }),
        init,
        tasks: (!a.suites.is_empty()).then_some(TaskSelection {
            suites: a.suites,
            categories: a.categories,
            few_shot: a.few_shot,
        }),
        resume: a.resume,
        stop_after: a.stop_after,
    })
}

fn read_prompts(path: &Path) -> Result<Vec<String>> {
    /// One line of a prompts file; other fields (an `id`, say) are ignored.
    #[derive(serde::Deserialize)]
    struct Line {
        prompt: String,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: prompt", path.display(), i + 1))?;
        out.push(l.prompt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(2);
        let text = io.to_string();
        // A library error that names its source, as thiserror's
        // `#[error("{path}: cannot read: {source}")]` does.
        #[derive(Debug, thiserror::Error)]
        #[error("x.json: cannot read: {source}")]
        struct Named {
            #[source]
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Named { source: io }).context("loading the run");
        let shown = error_chain(&e);
        assert_eq!(
            shown,
            format!("loading the run: x.json: cannot read: {text}")
        );
        assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        // Causes not in the message are kept.
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }
}
