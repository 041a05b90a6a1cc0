//! Llama-family model configuration, read from a Hugging Face `config.json`
//! (the fields of `LlamaForCausalLM`, `MistralForCausalLM`,
//! `Qwen2ForCausalLM` and `Qwen3ForCausalLM`) or built from GGUF metadata.
//!
//! The four share one decoder; they differ only in parts this module names
//! ([`Architecture`]): biases on the attention projections (Qwen2 always
//! on q/k/v, others when `attention_bias`), an RMSNorm of each query and
//! key head (Qwen3), a sliding attention window (Mistral) and Llama 3's
//! rescaled rotary frequencies ([`RopeScaling`]).

use serde::{Deserialize, Serialize};

/// Architecture hyper-parameters of a Llama-family decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU feed-forward.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Longest sequence the rotary table covers.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary base frequency.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// The MLP's activation; only `"silu"` (SwiGLU) is implemented.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Llama 3's rescaling of the rotary frequencies (`rope_scaling` with
    /// `rope_type = "llama3"`, or its per-frequency divisors from GGUF);
    /// `None`: plain RoPE. Other scalings are refused when `config.json`
    /// is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Biases on the q/k/v/o projections (Llama, Mistral and Qwen3 configs
    /// say so here; Qwen2 has q/k/v biases whatever this says).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attention_bias: bool,
    /// Biases on the MLP projections; not implemented, refused at
    /// validation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mlp_bias: bool,
    /// Mistral's sliding attention window: a token attends to at most this
    /// many positions. The runtime caps the context at the window instead
    /// of sliding it (see [`LlamaConfig::context_length`]), which computes
    /// every sequence it accepts exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    /// Whether the output projection shares the input embedding.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id(s); HF allows a number or a list.
    #[serde(default)]
    pub eos_token_id: Option<EosTokens>,
    /// Architecture names, e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// `"llama"` for this family.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Storage dtype of the weights, e.g. `"float32"`, `"bfloat16"`.
    #[serde(default)]
    pub torch_dtype: Option<String>,
    /// The token ids the output layer scores, in row order, when it was
    /// restricted to a task's vocabulary (`distill-gate quantize
    /// --task-vocab`); the model then emits only these tokens. `None`: one
    /// output row per vocabulary token. A distill-gate extension, absent
    /// from other runtimes' configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Vec<u32>>,
}

/// HF `eos_token_id`: a single id or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EosTokens {
    /// One id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

/// A rescaling of the rotary frequencies, tagged by `rope_type` as in
/// `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type")]
pub enum RopeScaling {
    /// Llama 3.x's rescaling (transformers' `_compute_llama3_parameters`):
    /// wavelengths longer than `original_max_position_embeddings /
    /// low_freq_factor` are divided by `factor`, shorter than
    /// `original_max_position_embeddings / high_freq_factor` kept, and
    /// those in between interpolated.
    #[serde(rename = "llama3")]
    Llama3 {
        /// Division of the low frequencies.
        factor: f64,
        /// Start of the interpolated band, as a divisor of the original context.
        low_freq_factor: f64,
        /// End of the interpolated band, as a divisor of the original context.
        high_freq_factor: f64,
        /// The context length the model was pre-trained with.
        original_max_position_embeddings: usize,
    },
    /// One divisor per rotary frequency (`head_dim / 2` of them), as GGUF
    /// files store Llama 3's rescaling: llama.cpp's converter writes the
    /// `rope_freqs.weight` tensor instead of the four settings, and
    /// llama.cpp divides frequency `i` by `divisors[i]`.
    #[serde(rename = "frequency_divisors")]
    FrequencyDivisors {
        /// The divisor of each frequency, lowest index (fastest) first.
        divisors: Vec<f32>,
    },
}

/// The variants of the Llama-family decoder this runtime implements, from
/// `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `"llama"` (Llama 2, Llama 3.x, SmolLM2, TinyLlama, ...).
    Llama,
    /// `"mistral"`: Llama with a sliding window.
    Mistral,
    /// `"qwen2"` (Qwen2, Qwen2.5): biases on q/k/v.
    Qwen2,
    /// `"qwen3"`: RMSNorm on each query and key head.
    Qwen3,
}

impl Architecture {
    /// Every implemented `model_type`, for messages.
    pub const MODEL_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

    /// The variant of a `model_type`, if implemented.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "llama" => Some(Self::Llama),
            "mistral" => Some(Self::Mistral),
            "qwen2" => Some(Self::Qwen2),
            "qwen3" => Some(Self::Qwen3),
            _ => None,
        }
    }

    /// The transformers class a checkpoint of this variant is loaded with.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_hidden_act() -> String {
    "silu".to_string()
}

fn default_max_pos() -> usize {
    2048
}
fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_model_type() -> String {
    "llama".to_string()
}

impl LlamaConfig {
    /// Key/value heads, falling back to the query heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The decoder variant; `Llama` for a `model_type` this runtime does
    /// not implement (validation refuses those first).
    pub fn architecture(&self) -> Architecture {
        Architecture::from_model_type(&self.model_type).unwrap_or(Architecture::Llama)
    }

    /// Whether the q/k/v projections have biases.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.architecture() == Architecture::Qwen2
    }

    /// Whether the output projection has a bias.
    pub fn o_bias(&self) -> bool {
        self.attention_bias && self.architecture() != Architecture::Qwen2
    }

    /// Whether each query and key head is RMS-normalised before the rotation.
    pub fn qk_norm(&self) -> bool {
        self.architecture() == Architecture::Qwen3
    }

    /// The longest sequence (prompt and generated tokens) this runtime
    /// computes: `max_position_embeddings`, or a smaller sliding window,
    /// within which sliding-window attention equals full causal attention.
    pub fn context_length(&self) -> usize {
        match self.sliding_window {
            Some(window) if window > 0 => window.min(self.max_position_embeddings),
            _ => self.max_position_embeddings,
        }
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Rows of the output layer: the restricted task vocabulary's size, or
    /// the whole vocabulary.
    pub fn output_rows(&self) -> usize {
        self.output_tokens
            .as_ref()
            .map_or(self.vocab_size, |tokens| tokens.len())
    }

    /// The token id output row `row` scores.
    pub fn output_token(&self, row: usize) -> u32 {
        match &self.output_tokens {
            Some(tokens) => tokens[row],
            None => row as u32,
        }
    }

    /// The output row scoring `token`, if the output layer has one.
    pub fn output_row(&self, token: u32) -> Option<usize> {
        match &self.output_tokens {
            Some(tokens) => tokens.binary_search(&token).ok(),
            None => ((token as usize) < self.vocab_size).then_some(token as usize),
        }
    }

    /// End-of-sequence ids as a list.
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            None => Vec::new(),
            Some(EosTokens::One(id)) => vec![*id],
            Some(EosTokens::Many(ids)) => ids.clone(),
        }
    }
}
