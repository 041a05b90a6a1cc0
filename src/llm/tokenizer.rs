//! Text <-> token ids, special tokens and the chat template.

use std::path::Path;

use super::error::LlmError;

/// How an instruct model expects a conversation to be formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// ChatML (`<|im_start|>role\n...<|im_end|>\n`), as used by SmolLM2.
    ChatMl {
        /// System prompt inserted when the caller gives none (llama.cpp does this too).
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    /// Recognises a Jinja chat template string (from GGUF metadata or
    /// `tokenizer_config.json`). Returns `None` for templates we do not know.
    pub fn from_jinja(template: &str) -> Option<Self> {
        if !template.contains("<|im_start|>") {
            return None;
        }
        // SmolLM2's template inlines its default system prompt:
        // `...'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'...`
        // The newline is a Jinja escape (`\n`) in tokenizer_config.json but
        // a real newline character in SmolLM2's GGUF metadata.
        let default_system = ["<|im_start|>system\\n", "<|im_start|>system\n"]
            .iter()
            .find_map(|marker| Some((template.find(marker)?, marker.len())))
            .and_then(|(start, len)| {
                let rest = &template[start + len..];
                let end = rest.find("<|im_end|>")?;
                let text = &rest[..end];
                // Only a literal string, not a Jinja expression.
                (!text.contains("{{") && !text.contains('\'')).then(|| text.to_string())
            });
        Some(Self::ChatMl { default_system })
    }

    /// Formats one user turn, ready for the assistant's reply.
    pub fn format_user_turn(&self, user: &str) -> String {
        match self {
            Self::ChatMl { default_system } => {
                let mut s = String::new();
                if let Some(system) = default_system {
                    s.push_str("<|im_start|>system\n");
                    s.push_str(system);
                    s.push_str("<|im_end|>\n");
                }
                s.push_str("<|im_start|>user\n");
                s.push_str(user);
                s.push_str("<|im_end|>\n<|im_start|>assistant\n");
                s
            }
        }
    }

    /// The Jinja source written to `tokenizer_config.json` when saving.
    pub fn to_jinja(&self) -> String {
        match self {
            Self::ChatMl { default_system } => {
                // Without a default system prompt, no system turn is inserted
                // (writing an empty one would read back as `Some("")`).
                let system = match default_system {
                    Some(system) => format!(
                        "{{% if loop.first and messages[0]['role'] != 'system' %}}{{{{ '<|im_start|>system\\n{system}<|im_end|>\\n' }}}}{{% endif %}}"
                    ),
                    None => String::new(),
                };
                format!(
                    "{{% for message in messages %}}{system}{{{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}}}{{% endfor %}}{{% if add_generation_prompt %}}{{{{ '<|im_start|>assistant\\n' }}}}{{% endif %}}"
                )
            }
        }
    }
}

/// A loaded tokenizer with the model's special tokens.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// Token prepended to every prompt, if the model wants one.
    pub bos: Option<u32>,
    /// Whether `bos` is added to prompts.
    pub add_bos: bool,
    /// Tokens that end generation.
    pub eos: Vec<u32>,
    /// Chat template for instruct models.
    pub chat: Option<ChatTemplate>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("chat", &self.chat)
            .finish()
    }
}

impl TextTokenizer {
    /// Wraps a `tokenizers` tokenizer.
    pub fn new(inner: tokenizers::Tokenizer) -> Self {
        Self {
            inner,
            bos: None,
            add_bos: false,
            eos: Vec::new(),
            chat: None,
        }
    }

    /// Loads a `tokenizer.json`.
    ///
    /// The text is parsed as JSON first and the tokenizer built from the
    /// parsed value: `tokenizers` reading the file itself panics (instead
    /// of failing) on a syntax error inside the `decoder` object, which
    /// libFuzzer found with a cut-off file.
    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LlmError::format(path, format!("cannot read tokenizer: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| LlmError::format(path, format!("cannot load tokenizer: {e}")))?;
        let inner: tokenizers::Tokenizer = serde_json::from_value(value)
            .map_err(|e| LlmError::format(path, format!("cannot load tokenizer: {e}")))?;
        Ok(Self::new(inner))
    }

    /// The wrapped tokenizer (for saving or training).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string, if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes text (special-token strings such as `<|im_start|>` become their
    /// ids); prepends BOS when the model wants it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos
            && let Some(bos) = self.bos
        {
            ids.push(bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Decodes ids to text, keeping special tokens as text.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| LlmError::Tokenizer(e.to_string()))
    }

    /// Formats a prompt as a single user turn of the chat template; the prompt
    /// is returned unchanged when the model has no template.
    pub fn chat_prompt(&self, user: &str) -> String {
        match &self.chat {
            Some(t) => t.format_user_turn(user),
            None => user.to_string(),
        }
    }
}
