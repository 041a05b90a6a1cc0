//! Student checkpoints around training: a random student to start from
//! (`init-student`, shaped and initialised exactly as `distill` does), the
//! teacher layers a student started from the teacher keeps, a student stored
//! as deployed (`quantize`), and the progress lines of `distill`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::distill::teacher::spread_layers;
use crate::distill::train::{answer_tokens, student_config};
use crate::distill::{DistillError, DistillSummary, StudentShape, TeacherOptions, TrainEvent};
use crate::jsonl::{JsonFileError, read_json};
use crate::llm::gguf::GgmlType;
use crate::llm::{Backend, Checkpoint, LlamaDecoder, LlmError, StorageDtype};
use crate::run::contamination::{TRAINING_FILE, training_file_of};

/// Why a student checkpoint could not be made (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StudentError {
    /// A checkpoint could not be loaded, built or saved.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The shape is not a valid student, or its training answers cannot be
    /// read back.
    #[error(transparent)]
    Distill(#[from] DistillError),
    /// `--task-vocab` found no readable `training.json`.
    #[error(transparent)]
    TrainingLog(#[from] JsonFileError),
    /// The GGUF file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: LlmError,
    },
    /// The training log could not be copied beside the GGUF file.
    #[error("copying {} to {}", from.display(), to.display())]
    CopyLog {
        /// The training log.
        from: PathBuf,
        /// Its copy.
        to: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `init-student`'s default shape: 2 layers of width 64, an untrained
/// baseline small enough to start quickly.
pub const INIT_SHAPE: StudentShape = StudentShape {
    layers: 2,
    hidden: 64,
    heads: 4,
    kv_heads: 2,
    intermediate: 176,
};

/// What `distill-gate init-student` makes.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The checkpoint whose tokenizer (and vocabulary size) the student takes.
    pub tokenizer_from: PathBuf,
    /// The student's architecture.
    pub shape: StudentShape,
    /// Initialisation seed.
    pub seed: u64,
    /// Output directory (Hugging Face layout).
    pub out: PathBuf,
}

/// A student written by [`init_student`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initialised {
    /// Its number of parameters.
    pub parameters: usize,
    /// SHA-256 of its `model.safetensors`.
    pub sha256: String,
}

/// Writes a randomly initialised student of `o.shape` with the tokenizer of
/// `o.tokenizer_from`, in f16: the architecture defaults (RoPE base, norm
/// epsilon, context length) and the initialisation are `distill`'s own
/// ([`student_config`], [`LlamaDecoder::init_random`]), so it is the student
/// `distill` would start from.
pub fn init_student(o: &InitOptions) -> Result<Initialised, StudentError> {
    let source = Checkpoint::load(&o.tokenizer_from)?;
    // No training window: the student gets the default context length.
    let config = student_config(&o.shape, &source.tokenizer, source.config.vocab_size, 0)?;
    let decoder = LlamaDecoder::init_random(&config, &Backend::default().device(), o.seed)?;
    let weights = decoder.to_weights()?;
    let parameters = weights.values().map(|t| t.data.len()).sum();
    let student = Checkpoint {
        config,
        weights,
        quantized: Default::default(),
        tokenizer: source.tokenizer,
        fingerprint: String::new(),
        source: o.out.clone(),
    };
    let sha256 = student.save_hf_dir(&o.out, StorageDtype::F16)?;
    Ok(Initialised { parameters, sha256 })
}

/// The teacher's decoder layers a student started from it keeps: `keep`
/// when given, else `count` of them spread evenly from the first to the
/// last (`distill --init-from-teacher --layers N`).
pub fn teacher_layers(
    teacher: &Path,
    count: usize,
    keep: &[usize],
) -> Result<Vec<usize>, LlmError> {
    if !keep.is_empty() {
        return Ok(keep.to_vec());
    }
    let total = Checkpoint::inspect(teacher)?.num_hidden_layers;
    Ok(spread_layers(total, count))
}

/// A checkpoint written by [`quantize`].
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// With `task_vocab`: the output rows kept, of how many, and the
    /// transcripts whose answers chose them.
    pub output: Option<OutputRows>,
    /// SHA-256 of the GGUF file.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The output layer of a student restricted to its training answers' tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRows {
    /// Rows kept.
    pub kept: usize,
    /// Rows before.
    pub vocab: usize,
    /// The training transcripts, as `training.json` names them.
    pub transcripts: Vec<PathBuf>,
}

/// Writes the checkpoint at `model` to `out` as GGUF with its matrices
/// stored as `matrix_type`; with `task_vocab`, its output layer restricted
/// to the tokens of the answers it was trained on (read through its
/// `training.json`) and EOS. What it was trained on goes with it: the
/// `training.json` is copied beside `out` (the contamination check reads it
/// there).
pub fn quantize(
    model: &Path,
    out: &Path,
    task_vocab: bool,
    matrix_type: GgmlType,
) -> Result<Quantized, StudentError> {
    let mut ckpt = Checkpoint::load(model)?;
    let log = training_file_of(model);
    let mut output = None;
    if task_vocab {
        let summary: DistillSummary = read_json(
            &log,
            format!(
                "--task-vocab reads what the student was trained on from {}",
                log.display()
            ),
            format!("{}: not a distill log", log.display()),
        )?;
        let tokens = answer_tokens(&summary, &ckpt.tokenizer)?;
        let vocab = ckpt.config.vocab_size;
        ckpt = ckpt.restrict_output(&tokens)?;
        output = Some(OutputRows {
            kept: tokens.len(),
            vocab,
            transcripts: summary.transcripts.iter().map(|t| t.path.clone()).collect(),
        });
    }
    let sha256 = ckpt
        .save_gguf(out, matrix_type)
        .map_err(|source| StudentError::Write {
            path: out.to_path_buf(),
            source,
        })?;
    let beside = out.parent().map(|dir| dir.join(TRAINING_FILE));
    let same = |copy: &Path| match (copy.canonicalize(), log.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(copy) = beside.filter(|copy| log.is_file() && !same(copy)) {
        std::fs::copy(&log, &copy).map_err(|source| StudentError::CopyLog {
            from: log.clone(),
            to: copy.clone(),
            source,
        })?;
    }
    Ok(Quantized {
        output,
        sha256,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
    })
}

/// The lines `distill` says on stderr while it trains: what it prepared,
/// a step line every few seconds (and the last step), every evaluation,
/// warnings, and at the end what it did.
#[derive(Debug)]
pub struct TrainingLog {
    out: PathBuf,
    teacher: Option<TeacherOptions>,
    started: Instant,
    last_step_line: Option<Instant>,
}

/// Seconds between two step lines.
const STEP_LINE_SECS: f64 = 5.0;

impl TrainingLog {
    /// The log of training into `out`, from `teacher` for token-level
    /// distillation; starts the clock.
    pub fn new(out: &Path, teacher: Option<&TeacherOptions>) -> Self {
        Self {
            out: out.to_path_buf(),
            teacher: teacher.cloned(),
            started: Instant::now(),
            last_step_line: None,
        }
    }

    /// The line to say for `event`, if any (step lines are thinned out).
    pub fn line(&mut self, event: TrainEvent) -> Option<String> {
        Some(match event {
            TrainEvent::Prepared {
                train,
                validation,
                vocab,
                parameters,
                total_steps,
                start_step,
            } => format!(
                "distilling into {}: {train} training + {validation} validation examples, \
                 vocab {vocab}, {parameters} parameters, steps {start_step}..{total_steps}{}",
                self.out.display(),
                self.teacher.as_ref().map_or(String::new(), |t| format!(
                    "; token-level distillation from {} (alpha {}, T {})",
                    t.model.display(),
                    t.kd_weight,
                    t.kd_temperature
                ))
            ),
            TrainEvent::Step {
                step,
                total,
                loss,
                lr,
                tokens_per_s,
                eta_s,
            } => {
                let due = self
                    .last_step_line
                    .is_none_or(|t| t.elapsed().as_secs_f64() >= STEP_LINE_SECS);
                if !due && step != total {
                    return None;
                }
                self.last_step_line = Some(Instant::now());
                format!(
                    "  step {step}/{total}  loss {loss:.4}  lr {lr:.2e}  {tokens_per_s:.0} tok/s  ETA {}",
                    format_secs(eta_s)
                )
            }
            TrainEvent::Eval(r) => format!(
                "  eval at step {} (epoch {:.2}): train loss {:.4}, validation loss {}{}, grad norm {:.3}{}",
                r.step,
                r.epoch,
                r.train_loss,
                r.val_loss.map_or("-".to_string(), |v| format!("{v:.4}")),
                r.val_kl
                    .map_or(String::new(), |k| format!(" (KL to teacher {k:.4})")),
                r.grad_norm,
                if r.best { "  [best: saved]" } else { "" }
            ),
            TrainEvent::Warning(w) => format!("warning: {w}"),
        })
    }

    /// The last line: steps, time, throughput, the best checkpoint.
    pub fn done(&self, summary: &DistillSummary) -> String {
        format!(
            "done: {} of {} steps in {} ({:.0} tok/s); best step {} loss {}; wrote {}",
            summary.steps_done,
            summary.total_steps,
            format_secs(self.started.elapsed().as_secs_f64()),
            summary.tokens_per_s,
            summary.best_step.map_or("-".to_string(), |s| s.to_string()),
            summary
                .best_loss
                .map_or("-".to_string(), |l| format!("{l:.4}")),
            self.out.display()
        )
    }
}

/// Seconds as `1h02m03s`, `2m03s` or `3s`.
fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_as_hours_minutes_and_seconds() {
        assert_eq!(format_secs(-1.0), "0s");
        assert_eq!(format_secs(3.4), "3s");
        assert_eq!(format_secs(123.0), "2m03s");
        assert_eq!(format_secs(3723.0), "1h02m03s");
    }
}
