//! A byte-level BPE tokenizer like SmolLM2's, small, for tests that build
//! checkpoints: 3 control tokens, the 256 byte symbols and 3 merges (262
//! tokens), SmolLM2's pre-tokenizer (digits split, byte-level), BOS added,
//! ChatML.

use distill_gate::llm::{ChatTemplate, TextTokenizer};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// The control tokens, ids 0 to 2.
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// The tokenizer, ending generation at `eos`.
pub fn tiny_tokenizer(eos: Vec<u32>) -> TextTokenizer {
    let mut vocab = Vocab::default();
    for s in SPECIALS {
        vocab.insert(s.to_string(), vocab.len() as u32);
    }
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort();
    for c in alphabet {
        vocab.insert(c.to_string(), vocab.len() as u32);
    }
    let merges = vec![("Ġ", "t"), ("h", "e"), ("Ġt", "he")];
    for (a, b) in &merges {
        vocab.insert(format!("{a}{b}"), vocab.len() as u32);
    }
    let merges = merges
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .expect("a valid BPE");
    let mut inner = Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])));
    inner.with_decoder(Some(ByteLevel::new(false, true, true)));
    inner.add_special_tokens(&SPECIALS.map(|s| AddedToken::from(s, true)));
    let mut tok = TextTokenizer::new(inner);
    tok.bos = Some(1);
    tok.add_bos = true;
    tok.eos = eos;
    tok.chat = Some(ChatTemplate::ChatMl {
        default_system: Some("You are tiny.".into()),
    });
    tok
}
