//! Training pairs from teacher transcripts and a stable train/validation
//! split.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::DistillError;
use crate::model::transcript;
use crate::model::{FinishReason, ModelIdentity};

/// One thing the teacher said: the prompt exactly as sent and the text it
/// answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// The transcript key (hash of prompt and settings).
    pub key: String,
    /// The request id, for people reading logs.
    pub request_id: String,
    /// The prompt exactly as sent.
    pub prompt: String,
    /// Whether the prompt was wrapped in the chat template.
    pub chat: bool,
    /// The teacher's completion (stop sequence already cut).
    pub completion: String,
    /// Whether the teacher ended the answer itself (stop sequence or EOS),
    /// so the student should learn to stop there; false when the teacher
    /// ran into `max_tokens`.
    pub ends: bool,
}

/// A transcript file that was read, with its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSource {
    /// The file.
    pub path: PathBuf,
    /// sha256 of its bytes (lowercase hex).
    pub sha256: String,
    /// Lines with a completion.
    pub completions: usize,
    /// Lines holding a recorded teacher error (no completion): not trained on.
    pub errors: usize,
    /// The model that wrote it.
    pub teacher: Option<ModelIdentity>,
}

/// Every pair of a set of transcripts, sorted by key (so the order does not
/// depend on file order or hashing).
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// The pairs, one per distinct key.
    pub pairs: Vec<Pair>,
    /// The files read.
    pub sources: Vec<TranscriptSource>,
    /// Lines whose key an earlier transcript already gave (the first kept).
    pub duplicates: usize,
}

/// Reads transcripts into pairs. Malformed lines are errors naming
/// file:line:field (all of a file's problems together).
pub fn load_pairs(paths: &[PathBuf]) -> Result<Pairs, DistillError> {
    let mut by_key: BTreeMap<String, Pair> = BTreeMap::new();
    let mut out = Pairs::default();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| DistillError::io(path, e))?;
        let sha256 = crate::fingerprint::sha256_hex(&bytes);
        let t = transcript::read(path).map_err(DistillError::Transcript)?;
        let mut entries = t.entries().map_err(DistillError::Transcript)?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let (mut completions, mut errors) = (0, 0);
        for e in entries {
            let Some(c) = e.completion else {
                errors += 1;
                continue;
            };
            completions += 1;
            if by_key.contains_key(&e.key) {
                out.duplicates += 1;
                continue;
            }
            by_key.insert(
                e.key.clone(),
                Pair {
                    key: e.key,
                    request_id: e.request_id,
                    prompt: e.prompt,
                    chat: e.settings.chat,
                    completion: c.text,
                    ends: c.finish != Some(FinishReason::Length),
                },
            );
        }
        out.sources.push(TranscriptSource {
            path: path.clone(),
            sha256,
            completions,
            errors,
            teacher: t.model,
        });
    }
    out.pairs = by_key.into_values().collect();
    Ok(out)
}

/// Whether the pair with `key` belongs to the validation slice: the first 8
/// bytes of `sha256(seed as decimal, ":", key)` read as a fraction of 2^64
/// fall below `fraction`. Depends only on the key and the seed, so a pair
/// stays on its side when transcripts grow.
pub fn is_validation(key: &str, seed: u64, fraction: f64) -> bool {
    let digest = Sha256::digest(format!("{seed}:{key}").as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let u = u64::from_be_bytes(head) as f64 / 2f64.powi(64);
    u < fraction
}

/// Splits pairs into (train, validation) with [`is_validation`].
pub fn split(pairs: &[Pair], seed: u64, fraction: f64) -> (Vec<Pair>, Vec<Pair>) {
    pairs
        .iter()
        .cloned()
        .partition(|p| !is_validation(&p.key, seed, fraction))
}

/// sha256 of a file (lowercase hex).
pub fn file_sha256(path: &Path) -> Result<String, DistillError> {
    crate::fingerprint::sha256_file(path).map_err(|e| DistillError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str) -> Pair {
        Pair {
            key: key.into(),
            request_id: key.into(),
            prompt: "p".into(),
            chat: false,
            completion: "c".into(),
            ends: true,
        }
    }

    #[test]
    fn split_is_stable_when_data_grows_and_near_the_fraction() {
        let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        let small: Vec<Pair> = keys[..1000].iter().map(|k| pair(k)).collect();
        let large: Vec<Pair> = keys.iter().map(|k| pair(k)).collect();
        let (_, val_small) = split(&small, 7, 0.1);
        let (_, val_large) = split(&large, 7, 0.1);
        // Every validation pair of the small set is still one in the large set.
        for p in &val_small {
            assert!(val_large.contains(p));
        }
        // About 10% held out: 2000 draws, sd = sqrt(2000 * 0.09) ~ 13.4.
        assert!(
            (140..=260).contains(&val_large.len()),
            "{}",
            val_large.len()
        );
        // Another seed picks another slice.
        let (_, other) = split(&large, 8, 0.1);
        assert_ne!(other, val_large);
        assert!(split(&large, 7, 0.0).1.is_empty());
        assert!(split(&large, 7, 1.0).0.is_empty());
    }
}
