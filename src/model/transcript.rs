//! Teacher transcripts: JSONL, one recorded completion (or recorded error) a
//! line, keyed by the prompt and the generation settings. A transcript is
//! written by `distill-gate record` and read by the replay backend.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Completion, GenerationRequest, GenerationSettings, ModelIdentity};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::sha256_hex;
use crate::jsonl;

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptEntry {
    /// `request_key(prompt, settings)`: what the replay backend looks up.
    pub key: String,
    /// The model that answered.
    pub model: ModelIdentity,
    /// The request id when recorded (e.g. `suite/task`), for people reading it.
    pub request_id: String,
    /// The prompt exactly as sent.
    pub prompt: String,
    /// The generation settings exactly as sent.
    pub settings: GenerationSettings,
    /// The answer, when the model answered.
    #[serde(default)]
    pub completion: Option<Completion>,
    /// The model's error, when it failed (recorded, never hidden).
    #[serde(default)]
    pub error: Option<String>,
}

/// The key of a request: SHA-256 of the prompt and the settings that change
/// the answer.
pub fn request_key(prompt: &str, settings: &GenerationSettings) -> String {
    // serde_json writes struct fields in declaration order: the key is stable.
    let settings = serde_json::to_string(settings).unwrap_or_default();
    let mut bytes = Vec::with_capacity(prompt.len() + settings.len() + 1);
    bytes.extend_from_slice(settings.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(prompt.as_bytes());
    sha256_hex(&bytes)
}

/// Key of a [`GenerationRequest`].
pub fn key_of(request: &GenerationRequest) -> String {
    request_key(&request.prompt, &request.settings)
}

/// A transcript read into memory, indexed by key.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// The file it came from.
    pub path: PathBuf,
    /// Entries by key; a later line for the same key replaces an earlier one.
    pub entries: HashMap<String, TranscriptEntry>,
    /// The model that produced it (from its first line).
    pub model: Option<ModelIdentity>,
}

/// Reads a transcript. Every malformed line is reported with its line number;
/// a torn final line (a recording killed mid-write) is ignored, since
/// `record` redoes it.
pub fn read(path: &Path) -> Result<Transcript, Problems> {
    let mut transcript = Transcript {
        path: path.to_path_buf(),
        ..Transcript::default()
    };
    jsonl::read(path, false, |line, entry: TranscriptEntry| {
        if let Some(first) = &transcript.model
            && first.fingerprint != entry.model.fingerprint
        {
            return Some(Problem::new(
                path,
                line,
                "model.fingerprint",
                format!(
                    "transcript mixes models: {} here, {} on its first line",
                    entry.model.fingerprint, first.fingerprint
                ),
            ));
        }
        if request_key(&entry.prompt, &entry.settings) != entry.key {
            return Some(Problem::new(
                path,
                line,
                "key",
                "does not match the prompt and settings on this line (edited by hand?)",
            ));
        }
        if transcript.model.is_none() {
            transcript.model = Some(entry.model.clone());
        }
        transcript.entries.insert(entry.key.clone(), entry);
        None
    })?;
    Ok(transcript)
}

/// [`read`], remembered for the rest of the process: a run checks that a
/// replayed model covers the plan, names it in the reports and replays it,
/// and reads its transcript once for all three. The file is read again
/// when its length or modification time changed.
pub fn read_shared(path: &Path) -> Result<Arc<Transcript>, Problems> {
    let stamp = std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.len(), m.modified().ok()?)));
    let cache = CACHE.get_or_init(Cache::default);
    let hit = |entries: &[CacheEntry]| {
        entries
            .iter()
            .find(|(p, s, _)| p == path && stamp.is_some() && *s == stamp)
            .map(|(_, _, t)| Arc::clone(t))
    };
    if let Some(t) = cache.lock().ok().and_then(|c| hit(&c)) {
        return Ok(t);
    }
    let transcript = Arc::new(read(path)?);
    if let Ok(mut c) = cache.lock() {
        c.retain(|(p, _, _)| p != path);
        c.push((path.to_path_buf(), stamp, Arc::clone(&transcript)));
    }
    Ok(transcript)
}

/// A transcript read earlier: its path, (length, modification time) then, and content.
type CacheEntry = (PathBuf, Option<(u64, SystemTime)>, Arc<Transcript>);
type Cache = Mutex<Vec<CacheEntry>>;
/// The transcripts [`read_shared`] remembers.
static CACHE: OnceLock<Cache> = OnceLock::new();

/// Forgets every transcript [`read_shared`] remembers, so each is freed as
/// soon as no model holds it. A run calls this when its models are done:
/// summarising and reporting need the journal, not the transcripts, which
/// were half of a 100,000-item replay run's peak memory.
pub fn release_shared() {
    if let Some(cache) = CACHE.get()
        && let Ok(mut c) = cache.lock()
    {
        c.clear();
    }
}

/// Appends entries to a transcript, one flushed line each.
pub struct TranscriptWriter {
    file: File,
    path: PathBuf,
}

impl TranscriptWriter {
    /// Opens (creating if needed) a transcript for appending. A torn last
    /// line left by a killed recording is cut off first.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        crate::run::journal::truncate_torn_tail(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends one entry and syncs it to disk.
    pub fn append(&mut self, entry: &TranscriptEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
