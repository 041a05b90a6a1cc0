//! The tensors a Llama-family checkpoint must contain (Hugging Face names
//! and shapes) and the checks that a configuration and a set of weights
//! agree.
//!
//! Policy on unexpected tensors: they are an **error**. A tensor this runtime
//! does not expect for the configuration (a bias the config does not
//! declare, a norm of another architecture, RoPE scaling factors) belongs
//! to a variant it does not implement, and ignoring it would silently
//! compute a different model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::config::{Architecture, LlamaConfig, RopeScaling};
use super::error::LlmError;
use super::weights::Weights;

/// How many problems one error message lists before summarising the rest.
const MAX_LISTED: usize = 8;

/// Every tensor a checkpoint for `config` holds, with its shape (Hugging
/// Face names; Linear weights are `[out, in]`), in model order. `lm_head.weight`
/// is absent when the embeddings are tied, and has one row per output token
/// when the output layer is restricted to a task vocabulary.
pub fn expected_tensors(config: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let q = config.num_attention_heads * config.head_dim();
    let kv = config.kv_heads() * config.head_dim();
    let ff = config.intermediate_size;
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![config.vocab_size, h],
    )];
    let d = config.head_dim();
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        out.extend([
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
        ]);
        if config.qkv_bias() {
            out.extend([
                (format!("{p}.self_attn.q_proj.bias"), vec![q]),
                (format!("{p}.self_attn.k_proj.bias"), vec![kv]),
                (format!("{p}.self_attn.v_proj.bias"), vec![kv]),
            ]);
        }
        if config.o_bias() {
            out.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
        }
        if config.qk_norm() {
            out.extend([
                (format!("{p}.self_attn.q_norm.weight"), vec![d]),
                (format!("{p}.self_attn.k_norm.weight"), vec![d]),
            ]);
        }
        out.extend([
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
            (format!("{p}.mlp.gate_proj.weight"), vec![ff, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![ff, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, ff]),
        ]);
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !config.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![config.output_rows(), h]));
    }
    out
}

/// Checks that the hyper-parameters describe a buildable model (sizes
/// positive, query heads a multiple of key/value heads, even head width for
/// RoPE, finite positive epsilon and theta).
pub fn validate_config(config: &LlamaConfig, path: &Path) -> Result<(), LlmError> {
    let bad = |m: String| Err(LlmError::format(path, format!("invalid config: {m}")));
    let sizes = [
        ("vocab_size", config.vocab_size),
        ("hidden_size", config.hidden_size),
        ("intermediate_size", config.intermediate_size),
        ("num_hidden_layers", config.num_hidden_layers),
        ("num_attention_heads", config.num_attention_heads),
        ("num_key_value_heads", config.kv_heads()),
        ("max_position_embeddings", config.max_position_embeddings),
    ];
    for (name, v) in sizes {
        if v == 0 {
            return bad(format!("{name} is 0"));
        }
    }
    if Architecture::from_model_type(&config.model_type).is_none() {
        return bad(format!(
            "model_type is {:?}; supported: {}",
            config.model_type,
            Architecture::MODEL_TYPES.join(", ")
        ));
    }
    if config.hidden_act != "silu" {
        return bad(format!(
            "hidden_act is {:?}; only \"silu\" is supported",
            config.hidden_act
        ));
    }
    if config.mlp_bias {
        return bad("mlp_bias = true is not supported".into());
    }
    if config.sliding_window == Some(0) {
        return bad("sliding_window is 0".into());
    }
    if !config.num_attention_heads.is_multiple_of(config.kv_heads()) {
        return bad(format!(
            "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
            config.num_attention_heads,
            config.kv_heads()
        ));
    }
    if config.head_dim.is_none()
        && !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return bad(format!(
            "hidden_size ({}) is not a multiple of num_attention_heads ({})",
            config.hidden_size, config.num_attention_heads
        ));
    }
    let hd = config.head_dim();
    if hd == 0 || !hd.is_multiple_of(2) {
        return bad(format!(
            "head_dim is {hd}; rotary embeddings need a positive even width"
        ));
    }
    if let Some(scaling) = &config.rope_scaling {
        validate_rope_scaling(scaling, hd).or_else(|m| bad(format!("rope_scaling: {m}")))?;
    }
    if !(config.rms_norm_eps.is_finite() && config.rms_norm_eps > 0.0) {
        return bad(format!("rms_norm_eps is {}", config.rms_norm_eps));
    }
    if !(config.rope_theta.is_finite() && config.rope_theta > 0.0) {
        return bad(format!("rope_theta is {}", config.rope_theta));
    }
    if let Some(tokens) = &config.output_tokens {
        validate_output_tokens(config, tokens).or_else(|m| bad(format!("output_tokens: {m}")))?;
    }
    Ok(())
}

/// Llama 3 scaling needs finite positive factors with `high_freq_factor >
/// low_freq_factor` (the interpolation divides by their difference) and a
/// positive original context; divisors one finite positive value per
/// rotary frequency.
fn validate_rope_scaling(scaling: &RopeScaling, head_dim: usize) -> Result<(), String> {
    match scaling {
        &RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            for (name, v) in [
                ("factor", factor),
                ("low_freq_factor", low_freq_factor),
                ("high_freq_factor", high_freq_factor),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(format!("{name} is {v}"));
                }
            }
            if high_freq_factor <= low_freq_factor {
                return Err(format!(
                    "high_freq_factor ({high_freq_factor}) is not above low_freq_factor ({low_freq_factor})"
                ));
            }
            if original_max_position_embeddings == 0 {
                return Err("original_max_position_embeddings is 0".into());
            }
        }
        RopeScaling::FrequencyDivisors { divisors } => {
            if divisors.len() != head_dim / 2 {
                return Err(format!(
                    "{} frequency divisors for heads {head_dim} wide (one per pair: {})",
                    divisors.len(),
                    head_dim / 2
                ));
            }
            if let Some((i, d)) = divisors
                .iter()
                .enumerate()
                .find(|(_, d)| !(d.is_finite() && **d > 0.0))
            {
                return Err(format!("frequency divisor {i} is {d}"));
            }
        }
    }
    Ok(())
}

/// A restricted output vocabulary needs its own output layer and ids that
/// are distinct, in the vocabulary, and sorted (so a token's row is found
/// by binary search).
fn validate_output_tokens(config: &LlamaConfig, tokens: &[u32]) -> Result<(), String> {
    if config.tie_word_embeddings {
        return Err("a restricted output layer cannot be tied to the embeddings".into());
    }
    if tokens.is_empty() {
        return Err("the list is empty".into());
    }
    if let Some(&id) = tokens.iter().find(|&&id| id as usize >= config.vocab_size) {
        return Err(format!(
            "token {id} is outside the {}-token vocabulary",
            config.vocab_size
        ));
    }
    if let Some(pair) = tokens.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "ids must be strictly increasing, but {} comes before {}",
            pair[0], pair[1]
        ));
    }
    Ok(())
}

/// The decoder layer a tensor name belongs to, if any.
fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("model.layers.")?;
    rest.split_once('.')?.0.parse().ok()
}

/// Checks `weights` against `config`: a valid config, every tensor's data
/// length matching its shape, the number of layers, and then every expected
/// tensor present with the expected shape and nothing else. The message
/// names each tensor with expected and actual shapes; `path` is the
/// checkpoint.
pub fn validate_weights(
    config: &LlamaConfig,
    weights: &Weights,
    path: &Path,
) -> Result<(), LlmError> {
    validate_config(config, path)?;
    for (name, t) in weights {
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.data.len()) {
            return Err(LlmError::format(
                path,
                format!(
                    "tensor {name}: shape {:?} does not match its {} values",
                    t.shape,
                    t.data.len()
                ),
            ));
        }
    }
    let shapes: BTreeMap<&str, &[usize]> = weights
        .iter()
        .map(|(name, t)| (name.as_str(), t.shape.as_slice()))
        .collect();
    validate_shapes(config, &shapes, path)
}

/// Checks a checkpoint's tensor names and shapes (by Hugging Face name)
/// against `config`: the number of layers, then every expected tensor
/// present with the expected shape and nothing else. The message names each
/// tensor with expected and actual shapes; `path` is the checkpoint.
pub fn validate_shapes(
    config: &LlamaConfig,
    shapes: &BTreeMap<&str, &[usize]>,
    path: &Path,
) -> Result<(), LlmError> {
    let layers: BTreeSet<usize> = shapes.keys().filter_map(|k| layer_of(k)).collect();
    let n = config.num_hidden_layers;
    if let Some(&max) = layers.last()
        && max >= n
    {
        return Err(LlmError::mismatch(
            path,
            format!("the weights have layer {max} but the config says num_hidden_layers = {n}"),
        ));
    }
    if layers.len() < n {
        let have = match (layers.first(), layers.last()) {
            (Some(a), Some(b)) => format!("{} layers ({a}..={b})", layers.len()),
            _ => "no layers".to_string(),
        };
        return Err(LlmError::mismatch(
            path,
            format!("the config says num_hidden_layers = {n} but the weights have {have}"),
        ));
    }

    let expected = expected_tensors(config);
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match shapes.get(name.as_str()) {
            None => problems.push(format!("missing tensor {name} (expected shape {shape:?})")),
            Some(got) if *got != shape.as_slice() => problems.push(format!(
                "tensor {name} has shape {got:?}, expected {shape:?}"
            )),
            Some(_) => {}
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for (&name, shape) in shapes {
        if known.contains(name) {
            continue;
        }
        let why = if name == "lm_head.weight" && config.tie_word_embeddings {
            " (the config ties the output projection to model.embed_tokens.weight)"
        } else {
            ""
        };
        problems.push(format!(
            "unexpected tensor {name} with shape {shape:?}{why}"
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let total = problems.len();
    let mut message = problems
        .into_iter()
        .take(MAX_LISTED)
        .collect::<Vec<_>>()
        .join("; ");
    if total > MAX_LISTED {
        message.push_str(&format!("; and {} more problems", total - MAX_LISTED));
    }
    Err(LlmError::mismatch(path, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::weights::HostTensor;

    fn config() -> LlamaConfig {
        serde_json::from_str(
            r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
                "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                "tie_word_embeddings": true}"#,
        )
        .unwrap()
    }

    fn weights(c: &LlamaConfig) -> Weights {
        expected_tensors(c)
            .into_iter()
            .map(|(n, s)| {
                let len = s.iter().product();
                (
                    n,
                    HostTensor {
                        shape: s,
                        data: vec![0.0; len],
                    },
                )
            })
            .collect()
    }

    #[test]
    fn expected_shapes_follow_the_config() {
        let c = config();
        let e = expected_tensors(&c);
        assert_eq!(e.len(), 1 + 2 * 9 + 1);
        let get = |n: &str| e.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("model.embed_tokens.weight"), vec![10, 8]);
        assert_eq!(get("model.layers.1.self_attn.q_proj.weight"), vec![8, 8]);
        assert_eq!(get("model.layers.1.self_attn.k_proj.weight"), vec![4, 8]);
        assert_eq!(get("model.layers.0.mlp.down_proj.weight"), vec![8, 12]);
        let mut untied = c.clone();
        untied.tie_word_embeddings = false;
        assert_eq!(
            expected_tensors(&untied).last().unwrap(),
            &("lm_head.weight".to_string(), vec![10, 8])
        );
        validate_weights(&c, &weights(&c), Path::new("ok")).unwrap();
    }

    #[test]
    fn problems_are_named() {
        let c = config();
        let p = Path::new("ckpt");
        let mut w = weights(&c);
        w.remove("model.layers.1.mlp.up_proj.weight");
        w.get_mut("model.norm.weight").unwrap().shape = vec![2, 4];
        w.insert(
            "lm_head.weight".into(),
            HostTensor {
                shape: vec![10, 8],
                data: vec![0.0; 80],
            },
        );
        let msg = validate_weights(&c, &w, p).unwrap_err().to_string();
        assert!(msg.starts_with("ckpt: "), "{msg}");
        assert!(
            msg.contains(
                "missing tensor model.layers.1.mlp.up_proj.weight (expected shape [12, 8])"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("tensor model.norm.weight has shape [2, 4], expected [8]"),
            "{msg}"
        );
        assert!(
            msg.contains("unexpected tensor lm_head.weight with shape [10, 8] (the config ties"),
            "{msg}"
        );

        let mut more = c.clone();
        more.num_hidden_layers = 4;
        let msg = validate_weights(&more, &weights(&c), p)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("num_hidden_layers = 4 but the weights have 2 layers (0..=1)"),
            "{msg}"
        );
        let mut fewer = c.clone();
        fewer.num_hidden_layers = 1;
        let msg = validate_weights(&fewer, &weights(&c), p)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("the weights have layer 1 but the config says num_hidden_layers = 1"),
            "{msg}"
        );

        let mut w = weights(&c);
        w.get_mut("model.norm.weight").unwrap().data.pop();
        let msg = validate_weights(&c, &w, p).unwrap_err().to_string();
        assert!(
            msg.contains("tensor model.norm.weight: shape [8] does not match its 7 values"),
            "{msg}"
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let p = Path::new("c");
        let mut c = config();
        c.num_key_value_heads = Some(3);
        assert!(
            validate_config(&c, p)
                .unwrap_err()
                .to_string()
                .contains("not a multiple of num_key_value_heads (3)")
        );
        let mut c = config();
        c.head_dim = Some(3);
        assert!(
            validate_config(&c, p)
                .unwrap_err()
                .to_string()
                .contains("head_dim is 3")
        );
        let mut c = config();
        c.hidden_size = 0;
        assert!(
            validate_config(&c, p)
                .unwrap_err()
                .to_string()
                .contains("hidden_size is 0")
        );
        let mut c = config();
        c.rope_theta = f64::NAN;
        assert!(
            validate_config(&c, p)
                .unwrap_err()
                .to_string()
                .contains("rope_theta is NaN")
        );
    }
}
