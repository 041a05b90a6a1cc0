//! Llama-family model configuration, read from a Hugging Face `config.json`
//! (the `LlamaForCausalLM` fields) or built from GGUF metadata.

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
