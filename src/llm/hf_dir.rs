//! The JSON side of a Hugging Face checkpoint directory: `config.json`,
//! `tokenizer.json`, `tokenizer_config.json`, `generation_config.json` and
//! `chat_template.jinja`, read into `LlamaConfig` and `TextTokenizer` and
//! written back so that transformers can load what this crate saves.

use std::path::Path;

use serde_json::{Value, json};

use super::config::{EosTokens, LlamaConfig};
use super::error::LlmError;
use super::safetensors_io::StorageDtype;
use super::tokenizer::{ChatTemplate, TextTokenizer};

/// `config.json`.
pub const CONFIG_FILE: &str = "config.json";
/// `model.safetensors`.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// `tokenizer.json`.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// `tokenizer_config.json`.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// `generation_config.json`.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";
/// `chat_template.jinja` (newer transformers store the template here).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

fn read_json(path: &Path) -> Result<Value, LlmError> {
    let text = std::fs::read_to_string(path).map_err(|e| LlmError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| LlmError::format(path, format!("invalid JSON: {e}")))
}

fn read_optional_json(path: &Path) -> Result<Option<Value>, LlmError> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

fn write_json(path: &Path, value: &Value) -> Result<(), LlmError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| LlmError::format(path, format!("cannot serialize: {e}")))?;
    std::fs::write(path, text + "\n").map_err(|e| LlmError::io(path, e))
}

/// Reads `config.json` of a Llama, Mistral, Qwen2 or Qwen3 checkpoint
/// (see [`normalize_config`] for the fields that differ between
/// transformers versions and families).
pub fn read_config(dir: &Path) -> Result<LlamaConfig, LlmError> {
    let path = dir.join(CONFIG_FILE);
    let mut value = read_json(&path)?;
    normalize_config(&mut value).map_err(|m| LlmError::format(&path, m))?;
    serde_json::from_value(value)
        .map_err(|e| LlmError::format(&path, format!("not a Llama-family config: {e}")))
}

/// Brings a `config.json` to the fields [`LlamaConfig`] reads:
///
/// - transformers 5 writes the rotary settings as `rope_parameters`
///   (`rope_type`, `rope_theta` and the scaling's own keys), earlier
///   versions as `rope_theta` and `rope_scaling` (whose type key is
///   `rope_type` or, older, `type`). Plain RoPE and `"llama3"` are
///   implemented, and `"frequency_divisors"` (`divisors`: one per rotary
///   frequency), distill-gate's own spelling of the GGUF form of Llama 3's
///   rescaling, which it writes for a model read from GGUF; any other type
///   is refused by name.
/// - Qwen2 configs carry a `sliding_window` that applies only when
///   `use_sliding_window` is true; otherwise it is dropped.
fn normalize_config(value: &mut Value) -> Result<(), String> {
    let Some(obj) = value.as_object_mut() else {
        return Err("config.json is not a JSON object".into());
    };
    let mut rope = match obj.remove("rope_parameters") {
        Some(Value::Object(params)) => params,
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(other) => return Err(format!("rope_parameters = {other} is not an object")),
    };
    if let Some(theta) = rope.remove("rope_theta") {
        obj.insert("rope_theta".into(), theta);
    }
    match obj.remove("rope_scaling") {
        Some(Value::Object(scaling)) => rope.extend(scaling),
        None | Some(Value::Null) => {}
        Some(other) => return Err(format!("rope_scaling = {other} is not an object")),
    }
    let kind = rope
        .get("rope_type")
        .or_else(|| rope.get("type"))
        .cloned()
        .unwrap_or(Value::Null);
    match kind.as_str() {
        None if kind.is_null() && rope.is_empty() => {}
        Some("default") => {}
        Some("llama3") => {
            let mut scaling = json!({"rope_type": "llama3"});
            for key in [
                "factor",
                "low_freq_factor",
                "high_freq_factor",
                "original_max_position_embeddings",
            ] {
                let v = rope
                    .get(key)
                    .ok_or_else(|| format!("llama3 rope scaling without {key}"))?;
                scaling[key] = v.clone();
            }
            obj.insert("rope_scaling".into(), scaling);
        }
        Some("frequency_divisors") => {
            let divisors = rope
                .get("divisors")
                .ok_or("frequency_divisors rope scaling without divisors")?;
            let scaling = json!({"rope_type": "frequency_divisors", "divisors": divisors});
            obj.insert("rope_scaling".into(), scaling);
        }
        _ => {
            return Err(format!(
                "rope type {kind} is not supported (plain RoPE, \"llama3\" and \"frequency_divisors\" are)"
            ));
        }
    }
    if obj.get("use_sliding_window") == Some(&Value::Bool(false)) {
        obj.remove("sliding_window");
    }
    Ok(())
}

/// The id of a special token named in `tokenizer_config.json`, given as a
/// string or as an `AddedToken` object (`{"content": ...}`); `None` for null.
fn special_token_id(
    tok: &TextTokenizer,
    value: Option<&Value>,
    key: &str,
    path: &Path,
) -> Result<Option<u32>, LlmError> {
    let content = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(v) => v["content"].as_str().ok_or_else(|| {
            LlmError::format(
                path,
                format!("{key} = {v} is neither a string nor a token object"),
            )
        })?,
    };
    tok.token_id(content).map(Some).ok_or_else(|| {
        LlmError::format(
            path,
            format!("{key} {content:?} is not in the tokenizer's vocabulary"),
        )
    })
}

/// Token ids from a JSON number or list of numbers (HF `eos_token_id`).
fn ids(value: Option<&Value>, key: &str, path: &Path) -> Result<Vec<u32>, LlmError> {
    let bad = |v: &Value| {
        LlmError::format(
            path,
            format!("{key} = {v} is not a token id or a list of them"),
        )
    };
    let one = |v: &Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(v))
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => one(v).map(|id| vec![id]),
    }
}

/// Whether a `tokenizer.json` post-processor prepends `bos` to a single
/// sequence (Llama 3 style tokenizers say so only there).
fn post_processor_adds(post: &Value, bos: &str) -> bool {
    match post["type"].as_str() {
        Some("TemplateProcessing") => post["single"][0]["SpecialToken"]["id"] == bos,
        Some("Sequence") => post["processors"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| post_processor_adds(p, bos))),
        _ => false,
    }
}

/// Reads `tokenizer.json` and sets BOS, `add_bos`, EOS and the chat template
/// from `tokenizer_config.json`, `generation_config.json`,
/// `chat_template.jinja` and `config`.
///
/// BOS: `config.json`, else `generation_config.json`, else
/// `tokenizer_config.json`'s `bos_token`. EOS: the union, in that order, of
/// `generation_config.json`, `config.json` and `tokenizer_config.json`'s
/// `eos_token`. `add_bos`: `tokenizer_config.json`'s `add_bos_token`, else
/// whether `tokenizer.json`'s post-processor prepends BOS, else false.
pub fn read_tokenizer(dir: &Path, config: &LlamaConfig) -> Result<TextTokenizer, LlmError> {
    let tok_path = dir.join(TOKENIZER_FILE);
    let mut tok = TextTokenizer::from_file(&tok_path)?;
    let tc_path = dir.join(TOKENIZER_CONFIG_FILE);
    let tc = read_optional_json(&tc_path)?.unwrap_or(Value::Null);
    let gc_path = dir.join(GENERATION_CONFIG_FILE);
    let gc = read_optional_json(&gc_path)?.unwrap_or(Value::Null);

    let gen_bos = ids(gc.get("bos_token_id"), "bos_token_id", &gc_path)?;
    let tc_bos = special_token_id(&tok, tc.get("bos_token"), "bos_token", &tc_path)?;
    tok.bos = config.bos_token_id.or(gen_bos.first().copied()).or(tc_bos);

    let mut eos = ids(gc.get("eos_token_id"), "eos_token_id", &gc_path)?;
    eos.extend(config.eos_ids());
    eos.extend(special_token_id(
        &tok,
        tc.get("eos_token"),
        "eos_token",
        &tc_path,
    )?);
    for id in eos {
        if !tok.eos.contains(&id) {
            tok.eos.push(id);
        }
    }

    tok.add_bos = match tc.get("add_bos_token") {
        Some(Value::Bool(b)) => *b,
        Some(v) if !v.is_null() => {
            return Err(LlmError::format(
                &tc_path,
                format!("add_bos_token = {v} is not a bool"),
            ));
        }
        _ => match tok.bos.and_then(|b| tok.inner().id_to_token(b)) {
            Some(bos) => {
                let json = read_json(&tok_path)?;
                post_processor_adds(&json["post_processor"], &bos)
            }
            None => false,
        },
    };

    let jinja_path = dir.join(CHAT_TEMPLATE_FILE);
    let template = if jinja_path.exists() {
        Some(std::fs::read_to_string(&jinja_path).map_err(|e| LlmError::io(&jinja_path, e))?)
    } else {
        match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // Several named templates: [{"name": "default", "template": "..."}, ...]
            Some(Value::Array(named)) => named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string),
            _ => None,
        }
    };
    tok.chat = template.as_deref().and_then(ChatTemplate::from_jinja);
    Ok(tok)
}

/// Writes `config.json`, `tokenizer.json` and `tokenizer_config.json` into
/// `dir` (the weights are written separately). BOS/EOS in `config.json`
/// come from the tokenizer, `torch_dtype` from `dtype`.
pub fn write_json_files(
    dir: &Path,
    config: &LlamaConfig,
    tokenizer: &TextTokenizer,
    dtype: StorageDtype,
) -> Result<(), LlmError> {
    let mut config = config.clone();
    config.torch_dtype = Some(dtype.torch_name().to_string());
    config.bos_token_id = tokenizer.bos.or(config.bos_token_id);
    config.eos_token_id = match tokenizer.eos.as_slice() {
        [] => config.eos_token_id,
        [one] => Some(EosTokens::One(*one)),
        many => Some(EosTokens::Many(many.to_vec())),
    };
    if config.architectures.is_empty() {
        config.architectures = vec![config.architecture().class_name().to_string()];
    }
    let config_path = dir.join(CONFIG_FILE);
    let config_json = serde_json::to_value(&config)
        .map_err(|e| LlmError::format(&config_path, format!("cannot serialize: {e}")))?;
    write_json(&config_path, &config_json)?;

    let tok_path = dir.join(TOKENIZER_FILE);
    tokenizer
        .inner()
        .save(&tok_path, true)
        .map_err(|e| LlmError::format(&tok_path, format!("cannot write tokenizer: {e}")))?;

    let name = |id: Option<u32>| id.and_then(|i| tokenizer.inner().id_to_token(i));
    let mut tc = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": tokenizer.add_bos,
        "add_eos_token": false,
        "bos_token": name(tokenizer.bos),
        "eos_token": name(tokenizer.eos.first().copied()),
        "model_max_length": config.max_position_embeddings,
        "clean_up_tokenization_spaces": false,
    });
    if let Some(chat) = &tokenizer.chat {
        tc["chat_template"] = Value::String(chat.to_jinja());
    }
    write_json(&dir.join(TOKENIZER_CONFIG_FILE), &tc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(v: Value) -> Result<Value, String> {
        let mut v = v;
        normalize_config(&mut v).map(|()| v)
    }

    #[test]
    fn rope_settings_of_both_transformers_generations() {
        let scaling = json!({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192});
        let mut v5 = json!({"rope_type": "llama3", "rope_theta": 500000.0});
        let mut v4 = json!({"rope_type": "llama3"});
        for (k, x) in scaling.as_object().unwrap() {
            v5[k] = x.clone();
            v4[k] = x.clone();
        }
        let a = normalized(json!({"rope_parameters": v5})).unwrap();
        let b = normalized(json!({"rope_theta": 500000.0, "rope_scaling": v4})).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["rope_theta"], 500000.0);
        assert_eq!(a["rope_scaling"]["original_max_position_embeddings"], 8192);
        let plain = normalized(json!({"rope_parameters":
            {"rope_type": "default", "rope_theta": 1e6}}))
        .unwrap();
        assert_eq!(plain, json!({"rope_theta": 1e6}));
        let err = normalized(json!({"rope_scaling": {"type": "yarn", "factor": 4.0}})).unwrap_err();
        assert!(err.contains("rope type \"yarn\" is not supported"), "{err}");
        let err = normalized(json!({"rope_parameters": {"rope_type": "llama3"}})).unwrap_err();
        assert!(err.contains("without factor"), "{err}");
    }

    /// A model read from GGUF keeps Llama 3's rescaling as divisors; its
    /// `config.json` says so and reads back the same.
    #[test]
    fn frequency_divisors_round_trip_through_config_json() {
        let config: LlamaConfig = serde_json::from_value(json!({
            "vocab_size": 8, "hidden_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 1,
            "rope_scaling": {"rope_type": "frequency_divisors", "divisors": [1.0, 2.5, 8.0, 8.0]}
        }))
        .unwrap();
        let written = serde_json::to_value(&config).unwrap();
        assert_eq!(written["rope_scaling"]["rope_type"], "frequency_divisors");
        let back: LlamaConfig = serde_json::from_value(normalized(written).unwrap()).unwrap();
        assert_eq!(back, config);
        let err =
            normalized(json!({"rope_scaling": {"rope_type": "frequency_divisors"}})).unwrap_err();
        assert!(err.contains("without divisors"), "{err}");
    }

    #[test]
    fn qwen2_window_applies_only_when_used() {
        let off = normalized(json!({"sliding_window": 4096, "use_sliding_window": false}));
        assert_eq!(off.unwrap().get("sliding_window"), None);
        let on = normalized(json!({"sliding_window": 4096, "use_sliding_window": true}));
        assert_eq!(on.unwrap()["sliding_window"], 4096);
        let mistral = normalized(json!({"sliding_window": 4096}));
        assert_eq!(mistral.unwrap()["sliding_window"], 4096);
    }

    #[test]
    fn post_processor_detection() {
        let llama3 = json!({"type": "Sequence", "processors": [
            {"type": "ByteLevel"},
            {"type": "TemplateProcessing", "single": [
                {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}}]}]});
        assert!(post_processor_adds(&llama3, "<|begin_of_text|>"));
        assert!(!post_processor_adds(&llama3, "<s>"));
        assert!(!post_processor_adds(&json!({"type": "ByteLevel"}), "<s>"));
        assert!(!post_processor_adds(&Value::Null, "<s>"));
    }

    #[test]
    fn id_lists() {
        let p = Path::new("g.json");
        assert_eq!(ids(Some(&json!(2)), "e", p).unwrap(), vec![2]);
        assert_eq!(ids(Some(&json!([2, 7])), "e", p).unwrap(), vec![2, 7]);
        assert_eq!(ids(None, "e", p).unwrap(), Vec::<u32>::new());
        let err = ids(Some(&json!("x")), "eos_token_id", p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eos_token_id = \"x\" is not a token id"),
            "{err}"
        );
    }
}
