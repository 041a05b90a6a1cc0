//! Training examples: the prompt's tokens (as the student will see them at
//! generation) followed by the teacher's completion tokens and, when the
//! teacher ended its answer, EOS. Only the completion (and EOS) is learned.

use serde::{Deserialize, Serialize};

use super::data::Pair;
use super::error::DistillError;
use crate::llm::{LlmError, TextTokenizer};

/// One token sequence and where its prompt ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt tokens, then completion tokens (then EOS).
    pub ids: Vec<u32>,
    /// How many leading ids are prompt (never 0: the first completion token
    /// is predicted from the last prompt token).
    pub prompt_len: usize,
}

impl Example {
    /// Number of tokens the loss is taken over.
    pub fn target_len(&self) -> usize {
        self.ids.len() - self.prompt_len
    }
}

/// What encoding did with the pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeStats {
    /// Pairs turned into examples.
    pub kept: usize,
    /// Examples whose prompt lost leading tokens to fit `max_seq_len`.
    pub truncated: usize,
    /// Pairs skipped because the completion alone does not fit.
    pub skipped_too_long: usize,
    /// Pairs skipped for an empty prompt or nothing to learn (an empty
    /// completion cut at `max_tokens`).
    pub skipped_empty: usize,
}

/// The prompt text exactly as the student's generation path builds it.
pub fn prompt_text(tokenizer: &TextTokenizer, pair: &Pair) -> String {
    if pair.chat {
        tokenizer.chat_prompt(&pair.prompt)
    } else {
        pair.prompt.clone()
    }
}

/// Encodes one pair; `Ok(None)` when it is skipped (counted in `stats`).
///
/// Prompt ids come from [`TextTokenizer::encode`] (BOS included when the
/// tokenizer adds one), the completion's from the raw tokenizer (as
/// generation produces them after the prompt). When prompt + completion is
/// longer than `max_seq_len`, the prompt loses tokens from its left.
pub fn encode_pair(
    tokenizer: &TextTokenizer,
    pair: &Pair,
    max_seq_len: usize,
    stats: &mut EncodeStats,
) -> Result<Option<Example>, DistillError> {
    let mut prompt = tokenizer.encode(&prompt_text(tokenizer, pair))?;
    let mut completion: Vec<u32> = tokenizer
        .inner()
        .encode(pair.completion.as_str(), false)
        .map_err(|e| LlmError::Tokenizer(format!("{}: {e}", pair.request_id)))?
        .get_ids()
        .to_vec();
    if pair.ends {
        let eos = tokenizer.eos.first().copied().ok_or_else(|| {
            DistillError::Tokenizer("the student tokenizer has no EOS token".into())
        })?;
        completion.push(eos);
    }
    if prompt.is_empty() || completion.is_empty() {
        stats.skipped_empty += 1;
        return Ok(None);
    }
    if completion.len() + 1 > max_seq_len {
        stats.skipped_too_long += 1;
        return Ok(None);
    }
    let room = max_seq_len - completion.len();
    if prompt.len() > room {
        prompt.drain(..prompt.len() - room);
        stats.truncated += 1;
    }
    let prompt_len = prompt.len();
    prompt.extend(completion);
    stats.kept += 1;
    Ok(Some(Example {
        ids: prompt,
        prompt_len,
    }))
}

/// Encodes every pair (see [`encode_pair`]).
pub fn encode_pairs(
    tokenizer: &TextTokenizer,
    pairs: &[Pair],
    max_seq_len: usize,
) -> Result<(Vec<Example>, EncodeStats), DistillError> {
    let mut stats = EncodeStats::default();
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        out.extend(encode_pair(tokenizer, pair, max_seq_len, &mut stats)?);
    }
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::bpe::{student_tokenizer, train_bpe};

    fn pair(prompt: &str, completion: &str, ends: bool) -> Pair {
        Pair {
            key: prompt.into(),
            request_id: "t".into(),
            prompt: prompt.into(),
            chat: false,
            completion: completion.into(),
            ends,
        }
    }

    #[test]
    fn layout_truncation_and_skips() {
        let tok =
            student_tokenizer(train_bpe(["abc def", "ghi"].into_iter(), 300).unwrap()).unwrap();
        let eos = tok.eos[0];
        let mut stats = EncodeStats::default();
        // "abcdef" is 6 byte symbols at least; digits split one per token.
        let p = pair("12345", "678", true);
        let ex = encode_pair(&tok, &p, 64, &mut stats).unwrap().unwrap();
        assert_eq!(ex.prompt_len, 5);
        assert_eq!(ex.ids.len(), 5 + 3 + 1);
        assert_eq!(ex.ids.last(), Some(&eos));
        assert_eq!(ex.target_len(), 4);
        // Cut at max_tokens: no EOS.
        let ex = encode_pair(&tok, &pair("12345", "678", false), 64, &mut stats)
            .unwrap()
            .unwrap();
        assert_eq!(ex.ids.len(), 8);
        // Left truncation keeps the prompt's end.
        let ex = encode_pair(&tok, &p, 6, &mut stats).unwrap().unwrap();
        assert_eq!(ex.prompt_len, 2);
        assert_eq!(tok.decode(&ex.ids[..2]).unwrap(), "45");
        assert_eq!(stats.truncated, 1);
        // Completion + EOS = 4 tokens need 5 columns.
        assert!(encode_pair(&tok, &p, 4, &mut stats).unwrap().is_none());
        assert_eq!(stats.skipped_too_long, 1);
        assert!(
            encode_pair(&tok, &pair("1", "", false), 8, &mut stats)
                .unwrap()
                .is_none()
        );
        assert_eq!(stats.skipped_empty, 1);
        assert_eq!(stats.kept, 3);
    }
}
