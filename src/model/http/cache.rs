//! A response cache for HTTP models: one JSON file per answer, keyed by
//! everything that changes the answer.
//!
//! The key holds the provider, base URL, model, system prompt, full prompt
//! and generation settings (never the API key). A file is written to a
//! temporary name and renamed, so a killed run leaves no half-written entry;
//! an unreadable or mismatching file is treated as a miss and overwritten.
//! A hit keeps the latency measured when it was first answered and is
//! marked [`LatencySource::Cached`]; it costs nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ApiRequest as CacheKey;
use crate::model::{Completion, LatencySource};

#[derive(Serialize, Deserialize)]
struct Entry {
    key: CacheKey,
    completion: Completion,
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct ResponseCache {
    dir: PathBuf,
}

impl ResponseCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, digest: &str) -> PathBuf {
        self.dir
            .join(digest.get(..2).unwrap_or("00"))
            .join(format!("{digest}.json"))
    }

    /// The cached answer for `key`, marked as cached.
    pub fn get(&self, key: &CacheKey) -> Option<Completion> {
        let text = std::fs::read(self.file(&key.digest())).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        if entry.key != *key {
            return None;
        }
        let mut c = entry.completion;
        if let Some(l) = &mut c.latency {
            l.source = LatencySource::Cached;
        }
        Some(c)
    }

    /// Stores a live answer.
    pub fn put(&self, key: &CacheKey, completion: &Completion) -> std::io::Result<()> {
        let path = self.file(&key.digest());
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        let json = serde_json::to_vec(&Entry {
            key: key.clone(),
            completion: completion.clone(),
        })
        .map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        std::io::Write::write_all(&mut tmp, &json)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FinishReason, Latency, Usage};

    fn key(prompt: &str) -> CacheKey {
        CacheKey {
            provider: "openai".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            system: None,
            prompt: prompt.into(),
            max_tokens: 8,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec![],
            seed: 0,
            extra_body: Default::default(),
        }
    }

    #[test]
    fn extra_fields_change_the_key_and_none_keep_older_keys() {
        let plain = key("p");
        // Without extra fields the key is what it was before they existed.
        assert!(
            !serde_json::to_string(&plain)
                .unwrap()
                .contains("extra_body")
        );
        let mut pinned = key("p");
        pinned
            .extra_body
            .insert("repeat_penalty".into(), serde_json::json!(1.0));
        assert_ne!(plain.digest(), pinned.digest());
    }

    #[test]
    fn round_trip_marks_cached_and_keeps_latency() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::new(dir.path());
        let c = Completion {
            text: "42".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 1,
                cached_prompt_tokens: 0,
                estimated: false,
            },
            latency: Some(Latency {
                total_ms: 123.5,
                first_token_ms: None,
                batch_ms: None,
                batch_size: 1,
                source: LatencySource::Live,
            }),
            finish: Some(FinishReason::Stop),
        };
        assert!(cache.get(&key("a")).is_none());
        cache.put(&key("a"), &c).unwrap();
        let hit = cache.get(&key("a")).unwrap();
        let latency = hit.latency.unwrap();
        assert_eq!(latency.source, LatencySource::Cached);
        assert_eq!(latency.total_ms, 123.5);
        assert_eq!(hit.text, "42");
        assert!(cache.get(&key("b")).is_none());
        let mut other = key("a");
        other.temperature = 0.5;
        assert!(cache.get(&other).is_none(), "settings are part of the key");
        // A corrupt file is a miss, not an error.
        std::fs::write(cache.file(&key("a").digest()), b"{not json").unwrap();
        assert!(cache.get(&key("a")).is_none());
    }
}
