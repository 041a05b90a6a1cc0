//! Teacher transcripts: JSONL, one recorded completion (or recorded error) a
//! line, keyed by the prompt and the generation settings. A transcript is
//! written by `distill-gate record` and read by the replay backend.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Completion, GenerationRequest, GenerationSettings, ModelIdentity};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::{hex, sha256};
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
/// the answer, in hex.
pub fn request_key(prompt: &str, settings: &GenerationSettings) -> String {
    hex(&request_digest(prompt, settings))
}

/// [`request_key`] as bytes.
fn request_digest(prompt: &str, settings: &GenerationSettings) -> RequestDigest {
    // serde_json writes struct fields in declaration order: the key is stable.
    let settings = serde_json::to_string(settings).unwrap_or_default();
    let mut bytes = Vec::with_capacity(prompt.len() + settings.len() + 1);
    bytes.extend_from_slice(settings.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(prompt.as_bytes());
    sha256(&bytes)
}

/// Key of a [`GenerationRequest`].
pub fn key_of(request: &GenerationRequest) -> String {
    request_key(&request.prompt, &request.settings)
}

/// A request key as bytes (SHA-256).
type RequestDigest = [u8; 32];

/// A transcript indexed by key. It holds where each key's line is, not the
/// line: a replayed model of a 100,000-item suite costs a few megabytes of
/// index, whatever its prompts and answers weigh, and each answer is read
/// from the file when it is asked for.
#[derive(Debug)]
pub struct Transcript {
    /// The file it came from.
    pub path: PathBuf,
    /// The model that produced it (from its first line).
    pub model: Option<ModelIdentity>,
    /// The file, open for reading lines back.
    file: File,
    /// Where each key's line is; a later line for the same key replaces an
    /// earlier one.
    lines: HashMap<RequestDigest, jsonl::LineSpan>,
    /// The keys whose (last) line is a recorded error.
    errored: HashSet<RequestDigest>,
}

impl Transcript {
    /// Number of recorded requests.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether the transcript answers this request.
    pub fn contains(&self, request: &GenerationRequest) -> bool {
        self.lines
            .contains_key(&request_digest(&request.prompt, &request.settings))
    }

    /// Whether the transcript holds a completion for this request (not a
    /// recorded error, which `record` asks again when it resumes).
    pub fn completes(&self, request: &GenerationRequest) -> bool {
        let digest = request_digest(&request.prompt, &request.settings);
        self.lines.contains_key(&digest) && !self.errored.contains(&digest)
    }

    /// The recorded line for this request, read back from the file; `None`
    /// when the request was not recorded. An error names the line when the
    /// file no longer holds what was indexed (it was edited during the run).
    pub fn get(&self, request: &GenerationRequest) -> Result<Option<TranscriptEntry>, Problem> {
        let digest = request_digest(&request.prompt, &request.settings);
        match self.lines.get(&digest) {
            None => Ok(None),
            Some(span) => self.read_line(span, &digest).map(Some),
        }
    }

    /// Every key's line (the latest line of each key), in file order.
    pub fn entries(&self) -> Result<Vec<TranscriptEntry>, Problems> {
        let mut spans: Vec<_> = self.lines.iter().collect();
        spans.sort_by_key(|(_, span)| span.offset);
        spans
            .into_iter()
            .map(|(digest, span)| self.read_line(span, digest))
            .collect::<Result<_, _>>()
            .map_err(Problems::one)
    }

    fn read_line(
        &self,
        span: &jsonl::LineSpan,
        digest: &RequestDigest,
    ) -> Result<TranscriptEntry, Problem> {
        let entry: TranscriptEntry = jsonl::read_line_at(&self.file, &self.path, span)?;
        if request_digest(&entry.prompt, &entry.settings) != *digest {
            return Err(Problem::new(
                &self.path,
                span.number,
                "",
                "changed since it was read (the line now holds another request)",
            ));
        }
        Ok(entry)
    }
}

/// Reads and checks a transcript, indexing where each key's line is. Every
/// malformed line is reported with its line number; a torn final line (a
/// recording killed mid-write) is ignored, since `record` redoes it.
pub fn read(path: &Path) -> Result<Transcript, Problems> {
    let file = File::open(path)
        .map_err(|e| Problems::one(Problem::new(path, 0, "", format!("cannot open: {e}"))))?;
    let mut transcript = Transcript {
        path: path.to_path_buf(),
        model: None,
        file,
        lines: HashMap::new(),
        errored: HashSet::new(),
    };
    jsonl::read_spans(path, false, |span, entry: TranscriptEntry| {
        let line = span.number;
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
        let digest = request_digest(&entry.prompt, &entry.settings);
        if hex(&digest) != entry.key {
            return Some(Problem::new(
                path,
                line,
                "key",
                "does not match the prompt and settings on this line (edited by hand?)",
            ));
        }
        if transcript.model.is_none() {
            transcript.model = Some(entry.model);
        }
        if entry.error.is_some() {
            transcript.errored.insert(digest);
        } else {
            transcript.errored.remove(&digest);
        }
        transcript.lines.insert(digest, span);
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
        crate::jsonl::truncate_torn_tail(path)?;
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
