//! The Llama family in GGUF: llama.cpp tensor names <-> Hugging Face
//! names, the Q/K row permutation of llama.cpp's converter, and
//! `LlamaConfig` <-> `<arch>.*` metadata.
//!
//! llama.cpp's converter (`convert_hf_to_gguf.py`) writes three of the
//! variants this runtime implements, each read back here:
//!
//! - `llama` (`LlamaForCausalLM`, and `MistralForCausalLM`, which it
//!   writes as `llama` without its sliding window): Q/K rows (and biases,
//!   with `attention_bias`) permuted to the interleaved rotary layout,
//!   undone when reading; Llama 3's rope scaling as the `rope_freqs.weight`
//!   tensor of per-frequency divisors;
//! - `qwen2`: q/k/v biases (`attn_q.bias`, ...), rows as in Hugging Face
//!   (llama.cpp rotates them in the rotate-half layout);
//! - `qwen3`: per-head Q/K norms (`attn_q_norm.weight`, `attn_k_norm.weight`),
//!   rows as in Hugging Face.
//!
//! Any other `general.architecture` is refused by name.

use std::path::Path;

use super::reader::{GgufFile, GgufTensorInfo};
use super::value::{GgufArray, GgufValue};
use crate::llm::config::{Architecture, EosTokens, LlamaConfig, RopeScaling};
use crate::llm::error::LlmError;
use crate::llm::quant_matrix::{QuantMatrix, QuantWeights};
use crate::llm::weights::{HostTensor, Weights};

/// Per-layer tensors: (llama.cpp suffix after `blk.N.`, HF suffix after `model.layers.N.`).
/// Which of them a model has is the config's business (`tensor_layout`).
const LAYER_NAMES: [(&str, &str); 15] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_output.bias", "self_attn.o_proj.bias"),
    ("attn_q_norm.weight", "self_attn.q_norm.weight"),
    ("attn_k_norm.weight", "self_attn.k_norm.weight"),
];

/// Model-level tensors: (llama.cpp name, HF name).
const GLOBAL_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// The tensor in which llama.cpp's converter stores Llama 3's rope scaling:
/// one divisor per rotary frequency (read into
/// [`RopeScaling::FrequencyDivisors`]; not a weight).
pub const ROPE_FREQS_TENSOR: &str = "rope_freqs.weight";

/// Splits `prefix N . rest` into `(N, rest)`.
fn split_layer<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (n, rest) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, rest))
}

/// The Hugging Face name of a llama.cpp tensor name
/// (`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_name(gguf_name: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL_NAMES.iter().find(|(g, _)| *g == gguf_name) {
        return Some(hf.to_string());
    }
    let (layer, rest) = split_layer(gguf_name, "blk.")?;
    let (_, hf) = LAYER_NAMES.iter().find(|(g, _)| *g == rest)?;
    Some(format!("model.layers.{layer}.{hf}"))
}

/// The llama.cpp name of a Hugging Face tensor name (inverse of [`hf_name`]).
pub fn gguf_name(hf_name: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL_NAMES.iter().find(|(_, h)| *h == hf_name) {
        return Some(g.to_string());
    }
    let (layer, rest) = split_layer(hf_name, "model.layers.")?;
    let (g, _) = LAYER_NAMES.iter().find(|(_, h)| *h == rest)?;
    Some(format!("blk.{layer}.{g}"))
}

/// Which way [`permute_qk_rows`] moves rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkOrder {
    /// Hugging Face rotate-half order -> llama.cpp interleaved order (what
    /// llama.cpp's `convert_hf_to_gguf.py` does when writing).
    ToInterleaved,
    /// llama.cpp interleaved order -> Hugging Face rotate-half order (undoing
    /// the converter when reading).
    ToRotateHalf,
}

/// Permutes the rows of a Q or K projection (`[heads * head_dim, cols]`,
/// row-major) between the two RoPE layouts. Within each head, rotate-half
/// row `j * head_dim/2 + i` (j in 0..2) is interleaved row `2 * i + j`.
///
/// Fails when the rows do not split into `heads` heads of even width.
pub fn permute_qk_rows(
    data: &[f32],
    rows: usize,
    cols: usize,
    heads: usize,
    order: QkOrder,
) -> Result<Vec<f32>, String> {
    if rows.checked_mul(cols) != Some(data.len()) || rows > data.len() {
        return Err(format!(
            "cannot permute a [{rows}, {cols}] projection holding {} values",
            data.len()
        ));
    }
    let sources = qk_row_sources(rows, heads, order)?;
    let mut out = Vec::with_capacity(data.len());
    for from in sources {
        out.extend_from_slice(&data[from * cols..(from + 1) * cols]);
    }
    Ok(out)
}

/// The row permutation of [`permute_qk_rows`]: row `r` of the result is
/// row `sources[r]` of the input. Fails when the rows do not split into
/// `heads` heads of even width.
pub fn qk_row_sources(rows: usize, heads: usize, order: QkOrder) -> Result<Vec<usize>, String> {
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(format!(
            "cannot permute a projection of {rows} rows into {heads} heads of even width"
        ));
    }
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut sources = vec![0; rows];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..half {
                let rotate_half = h * head_dim + j * half + i;
                let interleaved = h * head_dim + 2 * i + j;
                let (from, to) = match order {
                    QkOrder::ToInterleaved => (rotate_half, interleaved),
                    QkOrder::ToRotateHalf => (interleaved, rotate_half),
                };
                sources[to] = from;
            }
        }
    }
    Ok(sources)
}

/// The number of heads a projection's rows are grouped in for the Q/K
/// permutation, or `None` for tensors that are not permuted. Only the
/// `llama` architecture is permuted by llama.cpp's converter, weights and
/// biases alike (it rotates Qwen2 and Qwen3 in the rotate-half layout,
/// rows as in Hugging Face).
pub fn qk_heads(hf_name: &str, config: &LlamaConfig) -> Option<usize> {
    if config.architecture() != Architecture::Llama {
        None
    } else if hf_name.ends_with(".self_attn.q_proj.weight")
        || hf_name.ends_with(".self_attn.q_proj.bias")
    {
        Some(config.num_attention_heads)
    } else if hf_name.ends_with(".self_attn.k_proj.weight")
        || hf_name.ends_with(".self_attn.k_proj.bias")
    {
        Some(config.kv_heads())
    } else {
        None
    }
}

/// The metadata key of [`LlamaConfig::output_tokens`]: the token id of each
/// row of `output.weight`, when the output layer is restricted to a task's
/// vocabulary (a distill-gate extension; llama.cpp refuses such a file,
/// whose `output.weight` has fewer rows than the vocabulary).
pub const OUTPUT_TOKENS_KEY: &str = "distill_gate.output_tokens";

/// The `general.architecture` values read, with the variant each is.
/// llama.cpp's converter writes Mistral as `llama` (without its window).
pub const GGUF_ARCHITECTURES: [(&str, Architecture); 3] = [
    ("llama", Architecture::Llama),
    ("qwen2", Architecture::Qwen2),
    ("qwen3", Architecture::Qwen3),
];

/// Builds a `LlamaConfig` from `<arch>.*` and `tokenizer.ggml.*` metadata,
/// `<arch>` being `general.architecture` (one of [`GGUF_ARCHITECTURES`];
/// any other is refused by name). `vocab_size` is the number of tokenizer
/// tokens; embeddings are tied when the file has no `output.weight`.
pub fn config_from_gguf(file: &GgufFile) -> Result<LlamaConfig, LlmError> {
    let path = file.path();
    let arch_name = file.req_str("general.architecture")?;
    let Some(&(arch_name, architecture)) = GGUF_ARCHITECTURES
        .iter()
        .find(|(name, _)| *name == arch_name)
    else {
        let supported: Vec<&str> = GGUF_ARCHITECTURES.iter().map(|(n, _)| *n).collect();
        return Err(LlmError::format(
            path,
            format!(
                "general.architecture is {arch_name:?}; supported: {}",
                supported.join(", ")
            ),
        ));
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let scaling_key = key("rope.scaling.type");
    if let Some(scaling) = file.opt_str(&scaling_key)?
        && scaling != "none"
    {
        return Err(LlmError::format(
            path,
            format!("{scaling_key} is {scaling:?}; RoPE scaling is not supported"),
        ));
    }
    let hidden_size = file.req_usize(&key("embedding_length"))?;
    let heads = file.req_usize(&key("attention.head_count"))?;
    let kv_heads = file.opt_usize(&key("attention.head_count_kv"))?;
    let default_head_dim = hidden_size / heads.max(1);
    let head_dim = file.opt_usize(&key("attention.key_length"))?;
    let rope_dims_key = key("rope.dimension_count");
    let rope_dims = file.opt_usize(&rope_dims_key)?;
    let effective_head_dim = head_dim.unwrap_or(default_head_dim);
    if let Some(r) = rope_dims
        && r != effective_head_dim
    {
        return Err(LlmError::format(
            path,
            format!(
                "{rope_dims_key} is {r} but heads are {effective_head_dim} wide; \
                 partial rotary embeddings are not supported"
            ),
        ));
    }
    let tokens = file
        .opt_str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| LlmError::format(path, "metadata \"tokenizer.ggml.tokens\" is missing"))?;
    let to_u32 = |key: &str| -> Result<Option<u32>, LlmError> {
        file.opt_usize(key)?
            .map(|v| {
                u32::try_from(v).map_err(|_| {
                    LlmError::format(path, format!("metadata {key:?} = {v} is not a token id"))
                })
            })
            .transpose()
    };
    let output_tokens = file
        .opt_int_array(OUTPUT_TOKENS_KEY)?
        .map(|ids| {
            ids.into_iter()
                .map(|id| {
                    u32::try_from(id).map_err(|_| {
                        LlmError::format(
                            path,
                            format!("metadata {OUTPUT_TOKENS_KEY:?} holds {id}, not a token id"),
                        )
                    })
                })
                .collect::<Result<Vec<u32>, _>>()
        })
        .transpose()?;
    Ok(LlamaConfig {
        vocab_size: tokens.len(),
        hidden_size,
        intermediate_size: file.req_usize(&key("feed_forward_length"))?,
        num_hidden_layers: file.req_usize(&key("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim: head_dim.filter(|&d| d != default_head_dim),
        max_position_embeddings: file.req_usize(&key("context_length"))?,
        rms_norm_eps: file
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                LlmError::format(
                    path,
                    format!(
                        "metadata {:?} is missing",
                        key("attention.layer_norm_rms_epsilon")
                    ),
                )
            })?,
        rope_theta: file.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        hidden_act: "silu".to_string(),
        rope_scaling: rope_freqs(file)?,
        // Plain Llama's `attention_bias` (q/k/v/o); Qwen2's q/k/v biases
        // come with its architecture.
        attention_bias: architecture == Architecture::Llama
            && ["blk.0.attn_q.bias", "blk.0.attn_output.bias"]
                .iter()
                .any(|name| file.tensor_info(name).is_some()),
        mlp_bias: false,
        // 0: no window (as llama.cpp reads it); a window caps the context.
        sliding_window: file
            .opt_usize(&key("attention.sliding_window"))?
            .filter(|&w| w > 0),
        tie_word_embeddings: file.tensor_info("output.weight").is_none(),
        bos_token_id: to_u32("tokenizer.ggml.bos_token_id")?,
        eos_token_id: to_u32("tokenizer.ggml.eos_token_id")?.map(EosTokens::One),
        architectures: vec![architecture.class_name().to_string()],
        model_type: arch_name.to_string(),
        torch_dtype: None,
        output_tokens,
    })
}

/// Llama 3's rope scaling as llama.cpp's converter stores it: the
/// [`ROPE_FREQS_TENSOR`] of per-frequency divisors, if the file has one.
/// (Its length is validated with the rest of the config.)
fn rope_freqs(file: &GgufFile) -> Result<Option<RopeScaling>, LlmError> {
    let Some(info) = file.tensor_info(ROPE_FREQS_TENSOR) else {
        return Ok(None);
    };
    if info.shape().len() != 1 {
        return Err(LlmError::format(
            file.path(),
            format!(
                "tensor {ROPE_FREQS_TENSOR:?} should be 1-D but has shape {:?}",
                info.shape()
            ),
        ));
    }
    Ok(Some(RopeScaling::FrequencyDivisors {
        divisors: file.tensor_f32(info),
    }))
}

/// The tensors of `file` that are weights: all but [`ROPE_FREQS_TENSOR`],
/// which [`config_from_gguf`] reads as part of the config.
pub fn weight_tensors(file: &GgufFile) -> impl Iterator<Item = &GgufTensorInfo> {
    file.tensors
        .iter()
        .filter(|info| info.name != ROPE_FREQS_TENSOR)
}

/// The Hugging Face name of a weight of the GGUF file at `path`, or the
/// error for a tensor no variant of the Llama family here has. (Whether
/// this model has it is checked against its config afterwards.)
pub fn tensor_hf_name(info: &GgufTensorInfo, path: &Path) -> Result<String, LlmError> {
    hf_name(&info.name).ok_or_else(|| {
        LlmError::format(
            path,
            format!(
                "tensor {:?} is not part of the Llama-family architectures this runtime implements",
                info.name
            ),
        )
    })
}

/// Dequantizes every tensor to f32 under its Hugging Face name and shape,
/// undoing the Q/K permutation. A tensor with no Hugging Face counterpart is
/// an error: ignoring it would change what the model computes.
pub fn weights_from_gguf(file: &GgufFile, config: &LlamaConfig) -> Result<Weights, LlmError> {
    let path = file.path();
    let mut weights = Weights::new();
    for info in weight_tensors(file) {
        let name = tensor_hf_name(info, path)?;
        let shape = info.shape();
        let mut data = file.tensor_f32(info);
        if let Some(heads) = qk_heads(&name, config) {
            let (rows, cols) = match shape.as_slice() {
                [r, c] => (*r, *c),
                [r] => (*r, 1),
                _ => {
                    return Err(LlmError::mismatch(
                        path,
                        format!(
                            "tensor {:?} should be 1-D or 2-D but has shape {shape:?}",
                            info.name
                        ),
                    ));
                }
            };
            data = permute_qk_rows(&data, rows, cols, heads, QkOrder::ToRotateHalf)
                .map_err(|e| LlmError::mismatch(path, format!("tensor {:?}: {e}", info.name)))?;
        }
        weights.insert(name, HostTensor { shape, data });
    }
    Ok(weights)
}

/// The 2-D tensors stored as `Q4_0`, `Q4_1` or `Q8_0`, kept quantized
/// under their Hugging Face names (Q/K rows in rotate-half order), for the
/// decoder's quantized decode path (see
/// [`LlamaDecoder::with_quantized`](crate::llm::LlamaDecoder::with_quantized)).
/// Tensors in other types are left out; call after [`weights_from_gguf`],
/// which validates names and shapes.
pub fn quantized_from_gguf(
    file: &GgufFile,
    config: &LlamaConfig,
) -> Result<QuantWeights, LlmError> {
    let path = file.path();
    let mut out = QuantWeights::new();
    for info in weight_tensors(file) {
        let shape = info.shape();
        let (Some(name), &[rows, cols]) = (hf_name(&info.name), shape.as_slice()) else {
            continue;
        };
        let Some(mut matrix) =
            QuantMatrix::from_ggml(info.ggml_type, file.tensor_bytes(info), rows, cols)
        else {
            continue;
        };
        if let Some(heads) = qk_heads(&name, config) {
            let sources = qk_row_sources(rows, heads, QkOrder::ToRotateHalf)
                .map_err(|e| LlmError::mismatch(path, format!("tensor {:?}: {e}", info.name)))?;
            matrix = matrix.permute_rows(&sources);
        }
        out.insert(name, matrix);
    }
    Ok(out)
}

fn u32_value(key: &str, v: usize, path: &Path) -> Result<GgufValue, LlmError> {
    u32::try_from(v)
        .map(GgufValue::U32)
        .map_err(|_| LlmError::format(path, format!("{key} = {v} does not fit GGUF's uint32")))
}

/// The `general.*` and `llama.*` metadata describing `config` (tokenizer
/// metadata is separate). `path` names the output in errors.
pub fn config_to_gguf(
    config: &LlamaConfig,
    path: &Path,
) -> Result<Vec<(String, GgufValue)>, LlmError> {
    if config.architecture() != Architecture::Llama {
        return Err(LlmError::format(
            path,
            format!(
                "only Llama models are written as GGUF; this is a {:?} model",
                config.model_type,
            ),
        ));
    }
    let mut kv = vec![(
        "general.architecture".to_string(),
        GgufValue::String("llama".into()),
    )];
    let ints = [
        ("llama.context_length", config.max_position_embeddings),
        ("llama.embedding_length", config.hidden_size),
        ("llama.feed_forward_length", config.intermediate_size),
        ("llama.block_count", config.num_hidden_layers),
        ("llama.attention.head_count", config.num_attention_heads),
        ("llama.attention.head_count_kv", config.kv_heads()),
        ("llama.rope.dimension_count", config.head_dim()),
        ("llama.attention.key_length", config.head_dim()),
        ("llama.attention.value_length", config.head_dim()),
        ("llama.vocab_size", config.vocab_size),
    ];
    for (key, v) in ints {
        kv.push((key.to_string(), u32_value(key, v, path)?));
    }
    kv.push((
        "llama.rope.freq_base".into(),
        GgufValue::F32(config.rope_theta as f32),
    ));
    kv.push((
        "llama.attention.layer_norm_rms_epsilon".into(),
        GgufValue::F32(config.rms_norm_eps as f32),
    ));
    if let Some(tokens) = &config.output_tokens {
        kv.push((
            OUTPUT_TOKENS_KEY.into(),
            GgufValue::Array(GgufArray::u32s(tokens.iter().copied())),
        ));
    }
    Ok(kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        let pairs = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            (
                "blk.0.attn_q.weight",
                "model.layers.0.self_attn.q_proj.weight",
            ),
            (
                "blk.12.attn_k.weight",
                "model.layers.12.self_attn.k_proj.weight",
            ),
            (
                "blk.3.attn_v.weight",
                "model.layers.3.self_attn.v_proj.weight",
            ),
            (
                "blk.3.attn_output.weight",
                "model.layers.3.self_attn.o_proj.weight",
            ),
            (
                "blk.3.ffn_gate.weight",
                "model.layers.3.mlp.gate_proj.weight",
            ),
            ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
            (
                "blk.3.ffn_down.weight",
                "model.layers.3.mlp.down_proj.weight",
            ),
            (
                "blk.3.attn_norm.weight",
                "model.layers.3.input_layernorm.weight",
            ),
            (
                "blk.3.ffn_norm.weight",
                "model.layers.3.post_attention_layernorm.weight",
            ),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
            ("blk.1.attn_q.bias", "model.layers.1.self_attn.q_proj.bias"),
            ("blk.1.attn_k.bias", "model.layers.1.self_attn.k_proj.bias"),
            ("blk.1.attn_v.bias", "model.layers.1.self_attn.v_proj.bias"),
            (
                "blk.1.attn_output.bias",
                "model.layers.1.self_attn.o_proj.bias",
            ),
            (
                "blk.1.attn_q_norm.weight",
                "model.layers.1.self_attn.q_norm.weight",
            ),
            (
                "blk.1.attn_k_norm.weight",
                "model.layers.1.self_attn.k_norm.weight",
            ),
        ];
        for (g, h) in pairs {
            assert_eq!(hf_name(g).as_deref(), Some(h));
            assert_eq!(gguf_name(h).as_deref(), Some(g));
        }
        for bad in [
            "blk.x.attn_q.weight",
            "blk..attn_q.weight",
            "rope_freqs.weight",
        ] {
            assert_eq!(hf_name(bad), None, "{bad}");
        }
    }

    /// The forward permutation written as llama.cpp's converter does it
    /// (`w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)`),
    /// computed here index by index, independently of `permute_qk_rows`.
    #[test]
    fn permutation_matches_the_converter_and_inverts() {
        let (heads, head_dim, cols) = (3, 8, 2);
        let rows = heads * head_dim;
        let data: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let fwd = permute_qk_rows(&data, rows, cols, heads, QkOrder::ToInterleaved).unwrap();
        // reshape (h, 2, half, cols) -> swap -> (h, half, 2, cols): new[h][i][j] = old[h][j][i]
        let half = head_dim / 2;
        for h in 0..heads {
            for i in 0..half {
                for j in 0..2 {
                    let new_row = h * head_dim + i * 2 + j;
                    let old_row = h * head_dim + j * half + i;
                    for c in 0..cols {
                        assert_eq!(fwd[new_row * cols + c], data[old_row * cols + c]);
                    }
                }
            }
        }
        assert_ne!(fwd, data);
        let back = permute_qk_rows(&fwd, rows, cols, heads, QkOrder::ToRotateHalf).unwrap();
        assert_eq!(back, data);
        assert!(permute_qk_rows(&data, rows, cols, 5, QkOrder::ToRotateHalf).is_err());
        assert!(permute_qk_rows(&data[1..], rows, cols, heads, QkOrder::ToRotateHalf).is_err());
    }
}
