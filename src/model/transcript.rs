//! Teacher transcripts: JSONL, one recorded completion (or recorded error) a
//! line, keyed by the prompt and the generation settings. A transcript is
//! written by `distill-gate record` and read by the replay backend.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Completion, GenerationRequest, GenerationSettings, ModelIdentity};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::sha256_hex;

/// Longest transcript line accepted (a completion is capped well below this).
pub const MAX_LINE_BYTES: usize = 16 << 20;

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
/// a torn final line (no newline, not valid JSON: a recording that was
/// killed mid-write) is ignored, since `record` redoes it.
pub fn read(path: &Path) -> Result<Transcript, Problems> {
    let file = File::open(path).map_err(|e| {
        Problems::one(Problem::new(
            path,
            0,
            "",
            format!("cannot open transcript: {e}"),
        ))
    })?;
    let mut reader = BufReader::new(file);
    let mut transcript = Transcript {
        path: path.to_path_buf(),
        ..Transcript::default()
    };
    let mut problems = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = read_bounded_line(&mut reader, &mut buf).map_err(|e| {
            Problems::one(Problem::new(
                path,
                line_no + 1,
                "",
                format!("read error: {e}"),
            ))
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > MAX_LINE_BYTES {
            problems.push(Problem::new(
                path,
                line_no,
                "",
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let complete = buf.last() == Some(&b'\n');
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim_end(),
            Err(_) => {
                problems.push(Problem::new(path, line_no, "", "line is not valid UTF-8"));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<TranscriptEntry>(text) {
            Ok(entry) => {
                if let Some(first) = &transcript.model
                    && first.fingerprint != entry.model.fingerprint
                {
                    problems.push(Problem::new(
                        path,
                        line_no,
                        "model.fingerprint",
                        format!(
                            "transcript mixes models: {} here, {} on line 1",
                            entry.model.fingerprint, first.fingerprint
                        ),
                    ));
                    continue;
                }
                if transcript.model.is_none() {
                    transcript.model = Some(entry.model.clone());
                }
                let expected = request_key(&entry.prompt, &entry.settings);
                if expected != entry.key {
                    problems.push(Problem::new(
                        path,
                        line_no,
                        "key",
                        "does not match the prompt and settings on this line (edited by hand?)",
                    ));
                    continue;
                }
                transcript.entries.insert(entry.key.clone(), entry);
            }
            Err(_) if !complete => {} // torn last line of a killed recording
            Err(e) => problems.push(Problem::new(path, line_no, json_field(&e), e.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(transcript)
    } else {
        Err(Problems(problems))
    }
}

/// Reads one line, stopping early (with the partial line) past the cap so a
/// huge line never allocates without bound.
pub fn read_bounded_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(total);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() <= MAX_LINE_BYTES {
            buf.extend_from_slice(&available[..take]);
        }
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// Best-effort name of the field a serde_json error is about.
pub fn json_field(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(start) = msg.find(marker) {
            let rest = &msg[start + marker.len()..];
            if let Some(end) = rest.find('`') {
                return rest[..end].to_string();
            }
        }
    }
    String::new()
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
