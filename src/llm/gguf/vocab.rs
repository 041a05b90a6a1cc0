//! The GGUF tokenizer (`tokenizer.ggml.*` metadata) <-> a byte-level BPE
//! `tokenizers::Tokenizer`.
//!
//! Only llama.cpp's `gpt2` tokenizer model (byte-level BPE) is handled, with
//! the pre-tokenizers `smollm` (each digit split off, then the GPT-2 regex,
//! no prefix space) and `gpt-2` (the GPT-2 regex alone). Control tokens
//! (token type 3) become special added tokens, user-defined tokens (type 4)
//! plain added tokens, so both are matched in raw text as llama.cpp does.

use serde_json::Value;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::reader::GgufFile;
use super::value::{GgufArray, GgufValue};
use crate::llm::error::LlmError;
use crate::llm::tokenizer::{ChatTemplate, TextTokenizer};
use std::path::Path;

/// llama.cpp token types (`llama_token_type`).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// The byte-level pre-tokenizer: GPT-2 regex, no prefix space.
fn byte_level() -> ByteLevel {
    ByteLevel::new(false, true, true)
}

/// Builds the tokenizer described by a GGUF file's metadata, with BOS/EOS,
/// `add_bos` and the chat template set from it.
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<TextTokenizer, LlmError> {
    let path = file.path();
    let err = |m: String| LlmError::format(path, m);
    let model = file.req_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(err(format!(
            "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") tokenizers are supported"
        )));
    }
    let pre = file.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        "smollm" => Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level()),
        ])
        .into(),
        "gpt-2" => byte_level().into(),
        other => {
            return Err(err(format!(
                "tokenizer.ggml.pre is {other:?}; supported pre-tokenizers are \"smollm\" and \"gpt-2\""
            )));
        }
    };
    let tokens = file
        .opt_str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| err("metadata \"tokenizer.ggml.tokens\" is missing".into()))?;
    let types = match file.opt_int_array("tokenizer.ggml.token_type")? {
        None => vec![i128::from(TOKEN_NORMAL); tokens.len()],
        Some(t) if t.len() == tokens.len() => t,
        Some(t) => {
            return Err(err(format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                t.len(),
                tokens.len()
            )));
        }
    };
    let merges = file
        .opt_str_array("tokenizer.ggml.merges")?
        .ok_or_else(|| err("metadata \"tokenizer.ggml.merges\" is missing".into()))?;

    let mut vocab = Vocab::default();
    for (id, tok) in tokens.iter().enumerate() {
        let id = u32::try_from(id).map_err(|_| err("more than 2^32 tokens".into()))?;
        if let Some(first) = vocab.insert(tok.to_string(), id) {
            return Err(err(format!(
                "token {tok:?} appears twice, as ids {first} and {id}"
            )));
        }
    }
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    err(format!(
                        "tokenizer.ggml.merges[{i}] = {m:?} is not two tokens separated by a space"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| err(format!("cannot build the BPE tokenizer: {e}")))?;

    let mut inner = Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    inner.with_decoder(Some(byte_level()));
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter_map(|(tok, &ty)| match ty {
            t if t == i128::from(TOKEN_CONTROL) => Some(AddedToken::from(tok.to_string(), true)),
            t if t == i128::from(TOKEN_USER_DEFINED) => {
                Some(AddedToken::from(tok.to_string(), false).normalized(false))
            }
            _ => None,
        })
        .collect();
    inner.add_special_tokens(&added);

    let vocab_size = tokens.len();
    let id = |key: &str| -> Result<Option<u32>, LlmError> {
        match file.opt_usize(key)? {
            Some(v) if v < vocab_size => Ok(Some(v as u32)),
            Some(v) => Err(err(format!(
                "{key} = {v} is outside the {vocab_size}-token vocabulary"
            ))),
            None => Ok(None),
        }
    };
    let mut tok = TextTokenizer::new(inner);
    tok.bos = id("tokenizer.ggml.bos_token_id")?;
    tok.add_bos = file
        .opt_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
        if let Some(e) = id(key)?
            && !tok.eos.contains(&e)
        {
            tok.eos.push(e);
        }
    }
    tok.chat = file
        .opt_str("tokenizer.chat_template")?
        .and_then(ChatTemplate::from_jinja);
    Ok(tok)
}

/// Recognises the pre-tokenizer of a serialized `tokenizer.json` as one of
/// llama.cpp's pre-tokenizer names.
fn pre_tokenizer_name(pre: &Value) -> Option<&'static str> {
    let is_byte_level = |v: &Value| {
        v["type"] == "ByteLevel" && v["add_prefix_space"] == false && v["use_regex"] != false
    };
    if is_byte_level(pre) {
        return Some("gpt-2");
    }
    if pre["type"] == "Sequence"
        && let Some([digits, bl]) = pre["pretokenizers"].as_array().map(Vec::as_slice)
        && digits["type"] == "Digits"
        && digits["individual_digits"] == true
        && is_byte_level(bl)
    {
        return Some("smollm");
    }
    None
}

/// The `tokenizer.*` metadata describing a byte-level BPE tokenizer, for the
/// GGUF writer. llama.cpp needs one token per embedding row, so the token
/// list is padded to `vocab_size` with unused `[PAD{id}]` tokens, as
/// llama.cpp's converter does. Fails for tokenizers llama.cpp's `gpt2`
/// model cannot express (other models, normalizers, pre-tokenizers), for
/// more tokens than `vocab_size`, and for more than two EOS ids (GGUF has
/// `eos_token_id` and `eot_token_id`). `path` names the output in errors.
pub fn tokenizer_to_gguf(
    tok: &TextTokenizer,
    vocab_size: usize,
    path: &Path,
) -> Result<Vec<(String, GgufValue)>, LlmError> {
    let err =
        |m: String| LlmError::format(path, format!("cannot export the tokenizer to GGUF: {m}"));
    let json = tok
        .inner()
        .to_string(false)
        .map_err(|e| err(format!("cannot serialize it: {e}")))?;
    let v: Value = serde_json::from_str(&json).map_err(|e| err(e.to_string()))?;
    let model = &v["model"];
    if model["type"] != "BPE" {
        return Err(err(format!("the model is {}, not BPE", model["type"])));
    }
    if !v["normalizer"].is_null() {
        return Err(err(
            "it has a normalizer, which llama.cpp's gpt2 tokenizer lacks".into(),
        ));
    }
    let pre = pre_tokenizer_name(&v["pre_tokenizer"]).ok_or_else(|| {
        err(format!(
            "the pre-tokenizer {} has no llama.cpp equivalent",
            v["pre_tokenizer"]
        ))
    })?;

    let (tokens, types) = tokens_and_types(&v, vocab_size, &err)?;
    if !model["merges"].is_array() {
        return Err(err("the BPE model has no merges".into()));
    }
    let merges = merges_of(model).ok_or_else(|| err("malformed merges".into()))?;

    let mut kv = vec![
        (
            "tokenizer.ggml.model".to_string(),
            GgufValue::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".to_string(),
            GgufValue::String(pre.into()),
        ),
        (
            "tokenizer.ggml.tokens".to_string(),
            GgufValue::Array(GgufArray::strings(tokens)),
        ),
        (
            "tokenizer.ggml.token_type".to_string(),
            GgufValue::Array(GgufArray::i32s(types)),
        ),
        (
            "tokenizer.ggml.merges".to_string(),
            GgufValue::Array(GgufArray::strings(merges)),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            GgufValue::Bool(tok.add_bos),
        ),
    ];
    if let Some(bos) = tok.bos {
        kv.push(("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(bos)));
    }
    match tok.eos.as_slice() {
        [] => {}
        [eos] => kv.push(("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(*eos))),
        [eos, eot] => {
            kv.push(("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(*eos)));
            kv.push(("tokenizer.ggml.eot_token_id".into(), GgufValue::U32(*eot)));
        }
        more => {
            return Err(err(format!(
                "{} EOS ids {more:?}; GGUF holds at most two",
                more.len()
            )));
        }
    }
    if let Some(chat) = &tok.chat {
        kv.push((
            "tokenizer.chat_template".into(),
            GgufValue::String(chat.to_jinja()),
        ));
    }
    Ok(kv)
}

/// Every token by id, with its GGUF type, padded to `vocab_size` with
/// unused placeholders: the BPE vocabulary, then the added tokens.
fn tokens_and_types(
    v: &Value,
    vocab_size: usize,
    err: &dyn Fn(String) -> LlmError,
) -> Result<(Vec<String>, Vec<i32>), LlmError> {
    let mut by_id: Vec<Option<(String, i32)>> = Vec::new();
    let mut put = |id: u64, tok: &str, ty: i32| -> Result<(), LlmError> {
        let id = usize::try_from(id).map_err(|_| err(format!("token id {id} is too large")))?;
        if id >= by_id.len() {
            by_id.resize(id + 1, None);
        }
        by_id[id] = Some((tok.to_string(), ty));
        Ok(())
    };
    let vocab = v["model"]["vocab"]
        .as_object()
        .ok_or_else(|| err("the BPE model has no vocab".into()))?;
    for (tok, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| err(format!("token {tok:?} has id {id}")))?;
        put(id, tok, TOKEN_NORMAL)?;
    }
    for added in v["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) else {
            return Err(err(format!("malformed added token {added}")));
        };
        let ty = if added["special"] == true {
            TOKEN_CONTROL
        } else {
            TOKEN_USER_DEFINED
        };
        put(id, content, ty)?;
    }
    if by_id.len() > vocab_size {
        return Err(err(format!(
            "the tokenizer has {} tokens but the embedding only {vocab_size} rows",
            by_id.len()
        )));
    }
    by_id.resize(vocab_size, None);
    let mut tokens = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for (id, entry) in by_id.into_iter().enumerate() {
        let (t, ty) = entry.unwrap_or_else(|| (format!("[PAD{id}]"), TOKEN_UNUSED));
        tokens.push(t);
        types.push(ty);
    }
    Ok((tokens, types))
}

/// The BPE merges as GGUF stores them (`"a b"`), from either of the
/// tokenizer.json spellings; `None` when malformed.
fn merges_of(model: &Value) -> Option<Vec<String>> {
    model["merges"]
        .as_array()?
        .iter()
        .map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(p) => match p.as_slice() {
                [Value::String(a), Value::String(b)] => Some(format!("{a} {b}")),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
