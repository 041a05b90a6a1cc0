//! The teacher of token-level distillation: a local checkpoint run in
//! inference mode whose next-token logits the student learns to match, and
//! whose tokenizer the student adopts (so the two vocabularies line up).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::DistillError;
use super::loss::{LossBatch, completion_logits};
use crate::llm::weights::Weights;
use crate::llm::{Backend, Checkpoint, LlamaConfig, LlamaDecoder, TextTokenizer};

/// Token-level distillation settings (`--teacher-model`, `--kd-weight`,
/// `--kd-temperature`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherOptions {
    /// The teacher checkpoint: a Hugging Face directory or a `.gguf` file.
    pub model: PathBuf,
    /// Weight `alpha` of the KL term, in `[0, 1]`.
    pub kd_weight: f64,
    /// Softmax temperature `T` of the KL term (> 0).
    pub kd_temperature: f64,
}

/// Default `--kd-weight`.
pub const DEFAULT_KD_WEIGHT: f64 = 0.5;
/// Default `--kd-temperature`.
pub const DEFAULT_KD_TEMPERATURE: f64 = 2.0;

impl TeacherOptions {
    /// Checks the weight and the temperature.
    pub fn validate(&self) -> Result<(), DistillError> {
        if !(0.0..=1.0).contains(&self.kd_weight) {
            return Err(DistillError::option(
                "--kd-weight",
                format!("{} is not in [0, 1]", self.kd_weight),
            ));
        }
        if !(self.kd_temperature > 0.0 && self.kd_temperature.is_finite()) {
            return Err(DistillError::option(
                "--kd-temperature",
                format!("{} is not a positive number", self.kd_temperature),
            ));
        }
        Ok(())
    }
}

/// What identifies the teacher, as saved in `training.json` and the resume
/// state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherInfo {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// sha256 of its weights file.
    pub fingerprint: String,
    /// Rows of its output layer (the student's vocabulary size).
    pub vocab_rows: usize,
    /// Tokens of its tokenizer.
    pub tokenizer_vocab: usize,
}

/// A loaded teacher on an inference (non-autodiff) device.
#[derive(Debug)]
pub struct Teacher {
    decoder: LlamaDecoder,
    tokenizer: TextTokenizer,
    info: TeacherInfo,
}

impl Teacher {
    /// Loads the checkpoint at `path` onto `backend`'s inference device.
    pub fn load(path: &Path, backend: Backend) -> Result<Self, DistillError> {
        let ckpt = Checkpoint::load(path)?;
        if ckpt.config.output_tokens.is_some() {
            return Err(DistillError::option(
                "--teacher-model",
                format!(
                    "{}: its output layer is restricted to a task vocabulary; \
                     distil from a model that scores every token",
                    path.display()
                ),
            ));
        }
        let device: Device = backend.device();
        let info = TeacherInfo {
            path: path.to_path_buf(),
            fingerprint: ckpt.fingerprint.clone(),
            vocab_rows: ckpt.config.vocab_size,
            tokenizer_vocab: ckpt.tokenizer.vocab_size(),
        };
        let decoder = LlamaDecoder::from_weights_owned(&ckpt.config, ckpt.weights, &device)?
            .with_quantized(ckpt.quantized)?;
        Ok(Self {
            decoder,
            tokenizer: ckpt.tokenizer,
            info,
        })
    }

    /// The teacher's tokenizer (special tokens and chat template included).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Its identity.
    pub fn info(&self) -> &TeacherInfo {
        &self.info
    }

    /// Its logits at the batch's learned cells, `[cells, vocab_rows]`,
    /// computed without autodiff.
    pub fn completion_logits(&self, lb: &LossBatch) -> Result<Tensor<2>, DistillError> {
        completion_logits(&self.decoder, lb)
    }
}

/// Text whose token ids two tokenizers must agree on to be the same:
/// ChatML markers, digits, spaces, tabs, newlines, accents and non-Latin
/// scripts, and an emoji (byte fallback).
pub const TOKENIZER_PROBE: &str = "<|im_start|>user\nPrice: 1234.5 kg x 2.80 EUR\t\
     ünïcödé — 日本語 ✓ 🚚\n  def f(x):\n    return x + 1<|im_end|>\n<|endoftext|>";

/// Checks that `student` tokenizes exactly like `teacher`: the same
/// vocabulary size, the same ids for [`TOKENIZER_PROBE`], the same BOS and
/// EOS. `what` names the student tokenizer in the error.
pub fn check_same_tokenizer(
    student: &TextTokenizer,
    teacher: &TextTokenizer,
    what: &str,
) -> Result<(), DistillError> {
    let mismatch = |m: String| {
        DistillError::Tokenizer(format!(
            "{what} does not match the teacher model's tokenizer: {m}; token-level \
             distillation needs the student to use the teacher's vocabulary"
        ))
    };
    if student.vocab_size() != teacher.vocab_size() {
        return Err(mismatch(format!(
            "{} tokens vs the teacher's {}",
            student.vocab_size(),
            teacher.vocab_size()
        )));
    }
    let s = student.encode(TOKENIZER_PROBE)?;
    let t = teacher.encode(TOKENIZER_PROBE)?;
    if s != t {
        let at = s
            .iter()
            .zip(&t)
            .position(|(a, b)| a != b)
            .unwrap_or(s.len().min(t.len()));
        return Err(mismatch(format!(
            "the probe text encodes differently from token {at} on ({} vs {} ids)",
            s.len(),
            t.len()
        )));
    }
    if (student.bos, student.add_bos) != (teacher.bos, teacher.add_bos) {
        return Err(mismatch(format!(
            "BOS {:?} (added: {}) vs the teacher's {:?} (added: {})",
            student.bos, student.add_bos, teacher.bos, teacher.add_bos
        )));
    }
    if student.eos != teacher.eos {
        return Err(mismatch(format!(
            "EOS {:?} vs the teacher's {:?}",
            student.eos, teacher.eos
        )));
    }
    Ok(())
}

/// `count` of a teacher's `total` decoder layers, spread evenly from the
/// first to the last (both kept when `count` > 1): the default choice of
/// `--init-from-teacher --layers N`.
pub fn spread_layers(total: usize, count: usize) -> Vec<usize> {
    match count {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..count.min(total))
            .map(|i| (i * (total - 1) + (count.min(total) - 1) / 2) / (count.min(total) - 1))
            .collect(),
    }
}

/// A student's config and weights made of the teacher checkpoint's own:
/// embeddings, final norm, output layer and the decoder `layers` (renumbered
/// from 0 in the given order); every other hyper-parameter is the
/// teacher's. Quantized matrices come dequantized (the student trains in
/// f32).
pub fn kept_layers(
    ckpt: Checkpoint,
    layers: &[usize],
) -> Result<(LlamaConfig, Weights), DistillError> {
    let total = ckpt.config.num_hidden_layers;
    if let Some(bad) = layers.iter().find(|&&l| l >= total) {
        return Err(DistillError::option(
            "--keep-layers",
            format!(
                "layer {bad} does not exist: the teacher has {total} layers (0 to {})",
                total.saturating_sub(1)
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = layers.iter().find(|l| !seen.insert(**l)) {
        return Err(DistillError::option(
            "--keep-layers",
            format!("layer {twice} is listed twice"),
        ));
    }
    let mut config = ckpt.config;
    config.num_hidden_layers = layers.len();
    let mut weights = Weights::new();
    for (name, tensor) in ckpt.weights {
        let Some(rest) = name.strip_prefix("model.layers.") else {
            weights.insert(name, tensor);
            continue;
        };
        let (index, part) = rest.split_once('.').unwrap_or((rest, ""));
        let Some(new) = index
            .parse::<usize>()
            .ok()
            .and_then(|i| layers.iter().position(|&l| l == i))
        else {
            continue;
        };
        weights.insert(format!("model.layers.{new}.{part}"), tensor);
    }
    Ok((config, weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::bpe::{student_tokenizer, train_bpe};

    fn bpe(text: [&str; 2], vocab: usize) -> TextTokenizer {
        student_tokenizer(train_bpe(text.into_iter(), vocab).unwrap()).unwrap()
    }

    const TEXT: [&str; 2] = [
        "Price per kg: the price, the kg, the rate per kg",
        "def f(x): return x + 1; def g(x): return x + 2",
    ];

    #[test]
    fn identical_tokenizers_pass_and_differences_are_named() {
        let a = bpe(TEXT, 300);
        check_same_tokenizer(&a, &a.clone(), "the student").unwrap();
        let err = check_same_tokenizer(&bpe(TEXT, 260), &a, "the student")
            .unwrap_err()
            .to_string();
        assert!(err.contains("260 tokens vs the teacher's"), "{err}");
        // Same size (3 merges each), other merges: the probe tells them apart.
        let (b, c) = (
            bpe(TEXT, 262),
            bpe(["zzzz qqqq zzzz qqqq", "wwww vvvv wwww vvvv"], 262),
        );
        assert_eq!(b.vocab_size(), c.vocab_size());
        let err = check_same_tokenizer(&c, &b, "the student")
            .unwrap_err()
            .to_string();
        assert!(err.contains("probe text encodes differently"), "{err}");
        let mut other = a.clone();
        other.eos = vec![2];
        let err = check_same_tokenizer(&other, &a, "last/tokenizer.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("last/tokenizer.json") && err.contains("EOS"),
            "{err}"
        );
        let mut bos = a.clone();
        // A BOS that is added shows in the probe's ids; one that is not
        // still has to agree.
        bos.bos = Some(1);
        bos.add_bos = true;
        let err = check_same_tokenizer(&bos, &a, "x").unwrap_err().to_string();
        assert!(err.contains("probe"), "{err}");
        bos.add_bos = false;
        let err = check_same_tokenizer(&bos, &a, "x").unwrap_err().to_string();
        assert!(err.contains("BOS"), "{err}");
    }

    #[test]
    fn kd_options_are_checked() {
        let mut o = TeacherOptions {
            model: "t".into(),
            kd_weight: 0.5,
            kd_temperature: 2.0,
        };
        o.validate().unwrap();
        o.kd_weight = 1.5;
        assert!(
            o.validate()
                .unwrap_err()
                .to_string()
                .contains("--kd-weight")
        );
        o.kd_weight = 1.0;
        o.kd_temperature = 0.0;
        let err = o.validate().unwrap_err().to_string();
        assert!(err.contains("--kd-temperature"), "{err}");
    }

    #[test]
    fn spread_layers_keeps_both_ends_evenly() {
        assert_eq!(spread_layers(30, 1), vec![0]);
        assert_eq!(spread_layers(30, 2), vec![0, 29]);
        assert_eq!(spread_layers(30, 4), vec![0, 10, 19, 29]);
        assert_eq!(spread_layers(30, 6), vec![0, 6, 12, 17, 23, 29]);
        assert_eq!(spread_layers(4, 9), vec![0, 1, 2, 3]);
    }
}
