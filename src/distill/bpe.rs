//! A small byte-level BPE tokenizer trained on the distillation text.
//!
//! Same family as SmolLM2's tokenizer (which the runtime already loads):
//! digits split one by one, then the GPT-2 byte-level regex without a
//! prefix space, byte-level decoding. Every byte is in the base alphabet, so
//! any text round-trips, however little of it the trainer saw.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::data::Pair;
use super::error::DistillError;
use crate::llm::{ChatTemplate, TextTokenizer};

/// End of text: the student's EOS (and the padding id during training).
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// ChatML turn start.
pub const IM_START: &str = "<|im_start|>";
/// ChatML turn end.
pub const IM_END: &str = "<|im_end|>";
/// The special tokens, in id order (ids 0, 1, 2).
pub const SPECIAL_TOKENS: [&str; 3] = [END_OF_TEXT, IM_START, IM_END];

/// Number of byte-level base symbols (every byte value).
const BYTE_ALPHABET: usize = 256;

/// Smallest vocabulary worth asking for: the specials and all 256 bytes.
pub const MIN_VOCAB_SIZE: usize = SPECIAL_TOKENS.len() + BYTE_ALPHABET;

/// Trains a byte-level BPE tokenizer with `vocab_size` tokens (specials and
/// the 256 byte symbols included; fewer when the text has too few distinct
/// pairs to merge) on `texts`. Deterministic for the same texts in the same
/// order.
pub fn train_bpe<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    vocab_size: usize,
) -> Result<Tokenizer, DistillError> {
    if vocab_size < MIN_VOCAB_SIZE {
        return Err(DistillError::option(
            "--vocab-size",
            format!("{vocab_size} is below {MIN_VOCAB_SIZE} (3 special tokens + 256 byte symbols)"),
        ));
    }
    let specials: Vec<AddedToken> = SPECIAL_TOKENS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    let mut tokenizer = Tokenizer::new(ModelWrapper::BPE(BPE::default()));
    let pre: PreTokenizerWrapper = Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])
    .into();
    tokenizer.with_pre_tokenizer(Some(pre));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer
        .train(&mut trainer, texts)
        .map_err(|e| DistillError::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

/// Wraps a trained tokenizer as the student's: EOS `<|endoftext|>`, no BOS,
/// a ChatML template without a default system prompt.
pub fn student_tokenizer(inner: Tokenizer) -> Result<TextTokenizer, DistillError> {
    let mut tok = TextTokenizer::new(inner);
    for special in SPECIAL_TOKENS {
        if tok.token_id(special).is_none() {
            return Err(DistillError::Tokenizer(format!(
                "the tokenizer has no {special} token"
            )));
        }
    }
    tok.eos = tok.token_id(END_OF_TEXT).into_iter().collect();
    tok.chat = Some(student_template());
    Ok(tok)
}

/// The student's chat template: ChatML without a default system prompt.
pub fn student_template() -> ChatTemplate {
    ChatTemplate::ChatMl {
        default_system: None,
    }
}

/// The text a tokenizer should be trained on: each prompt as the student
/// will see it (through [`student_template`] when the request used the chat
/// template) and each completion.
pub fn training_text(pairs: &[Pair]) -> Vec<String> {
    let template = student_template();
    pairs
        .iter()
        .flat_map(|p| {
            let prompt = if p.chat {
                template.format_user_turn(&p.prompt)
            } else {
                p.prompt.clone()
            };
            [prompt, p.completion.clone()]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: [&str; 4] = [
        "Price = billable kg x rate per kg, plus fuel %.\nPrice: 33.64",
        "Break 20 kg. Z3 2.80/2.16, Z5 3.96/3.25. Fuel 18%.",
        "Destination: Rotterdam. Carrier B arrives Tuesday.",
        "def f(x):\n    return x + 1  # ünïcödé ✓",
    ];

    #[test]
    fn trained_tokenizer_round_trips_text_and_has_specials() {
        let tok = train_bpe(TEXT.iter().copied(), 300).unwrap();
        assert!(tok.get_vocab_size(true) <= 300);
        assert!(
            tok.get_vocab_size(true) > MIN_VOCAB_SIZE,
            "learned some merges"
        );
        let student = student_tokenizer(tok).unwrap();
        assert_eq!(student.token_id(END_OF_TEXT), Some(0));
        assert_eq!(student.eos, vec![0]);
        for text in TEXT.iter().chain(&["never seen: Ωmega 🚚 42.5kg\t\n"]) {
            let ids = student.encode(text).unwrap();
            assert_eq!(&student.decode(&ids).unwrap(), text);
        }
        // Digits are split one by one.
        let ids = student.encode("2024").unwrap();
        assert_eq!(ids.len(), 4);
        // Special-token strings become their single ids.
        let ids = student.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
        assert_eq!(ids.first(), student.token_id(IM_START).as_ref());
        assert_eq!(ids.last(), student.token_id(IM_END).as_ref());
    }

    #[test]
    fn training_is_deterministic_and_vocab_floor_is_checked() {
        let a = train_bpe(TEXT.iter().copied(), 300).unwrap();
        let b = train_bpe(TEXT.iter().copied(), 300).unwrap();
        assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap());
        let err = train_bpe(TEXT.iter().copied(), 100).unwrap_err();
        assert!(err.to_string().contains("--vocab-size"), "{err}");
    }
}
