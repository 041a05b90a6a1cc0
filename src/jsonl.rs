//! Reading JSONL files written append-only (transcripts, journals): one
//! value a line, bounded line length, every bad line reported with its
//! number, and a torn last line (a writer killed mid-line) skipped. And
//! reading a whole JSON file (`run.json`, `summary.json`, `training.json`),
//! its failures said in the caller's words. And cutting a torn last line
//! before such a file is appended to again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::diagnostics::{Problem, Problems};

/// Longest line accepted (a completion is capped well below this).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Where a value's line is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    /// 1-based line number.
    pub number: usize,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Length of the line in bytes, its newline included.
    pub len: usize,
}

/// A whole JSON file that could not be read, or does not parse; each says
/// what that means in the words [`read_json`] was given.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    /// The file could not be read.
    #[error("{message}")]
    Unreadable {
        /// What that means, e.g. `reports/x/run.json: not a run directory`.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse as what was expected.
    #[error("{message}")]
    Malformed {
        /// What that means, e.g. `reports/x/run.json: malformed`.
        message: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the JSON file at `path` as a `T`; a failure says `unreadable` or
/// `malformed` (then its cause).
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    unreadable: String,
    malformed: String,
) -> Result<T, JsonFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| JsonFileError::Unreadable {
        message: unreadable,
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| JsonFileError::Malformed {
        message: malformed,
        source,
    })
}

/// Reads every line of `path` as a `T`, calling `on_value(line, value)`,
/// which may report a problem with that value. A missing file is an empty
/// one when `missing_ok`. All problems are returned together.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    missing_ok: bool,
    mut on_value: impl FnMut(usize, T) -> Option<Problem>,
) -> Result<(), Problems> {
    read_spans(path, missing_ok, |span, value| on_value(span.number, value))
}

/// [`read`], telling `on_value` where each value's line is, so a reader can
/// keep the span instead of the value and read the line again later.
pub fn read_spans<T: DeserializeOwned>(
    path: &Path,
    missing_ok: bool,
    mut on_value: impl FnMut(LineSpan, T) -> Option<Problem>,
) -> Result<(), Problems> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Problems::one(Problem::new(
                path,
                0,
                "",
                format!("cannot open: {e}"),
            )));
        }
    };
    let mut reader = BufReader::new(file);
    let mut problems = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut offset = 0u64;
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
        let span = LineSpan {
            number: line_no,
            offset,
            len: n,
        };
        offset += n as u64;
        if n > MAX_LINE_BYTES {
            problems.push(Problem::new(
                path,
                line_no,
                "",
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let complete = buf.last() == Some(&b'\n');
        let Ok(text) = std::str::from_utf8(&buf) else {
            problems.push(Problem::new(path, line_no, "", "line is not valid UTF-8"));
            continue;
        };
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(text) {
            Ok(value) => problems.extend(on_value(span, value)),
            Err(_) if !complete => {} // torn last line: its writer was killed mid-line
            Err(e) => problems.push(Problem::new(path, line_no, json_field(&e), line_error(&e))),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// Reads the line at `span` of `file` (the file at `path`) back as a `T`;
/// an error names the line (the file changed since it was read, or cannot
/// be read).
pub fn read_line_at<T: DeserializeOwned>(
    file: &File,
    path: &Path,
    span: &LineSpan,
) -> Result<T, Problem> {
    use std::os::unix::fs::FileExt;
    let problem = |what: String| Problem::new(path, span.number, "", what);
    let mut line = vec![0; span.len];
    file.read_exact_at(&mut line, span.offset)
        .map_err(|e| problem(format!("cannot read the line back: {e}")))?;
    serde_json::from_slice(&line).map_err(|e| {
        problem(format!(
            "changed since it was read (the line no longer parses: {})",
            line_error(&e)
        ))
    })
}

/// Reads one line, keeping at most [`MAX_LINE_BYTES`] + 1 bytes of it so a
/// huge line never allocates without bound; returns the line's full length.
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

/// What a serde_json error says about one line of a JSONL file, located by
/// its column in that line: serde_json's own "at line 1 column N" is left
/// out, since the text it parsed was that one line (whose number the
/// caller reports). Syntax errors read "malformed JSON: ...".
pub fn line_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let located = format!(" at line {} column {}", e.line(), e.column());
    let (message, column) = match message.strip_suffix(&located) {
        Some(m) if e.line() > 0 => (m, format!(" (column {})", e.column())),
        _ => (message.as_str(), String::new()),
    };
    if e.is_syntax() || e.is_eof() {
        format!("malformed JSON: {message}{column}")
    } else {
        format!("{message}{column}")
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
/// Cuts a torn last line (one without a trailing newline) from a JSONL file
/// that is about to be appended to. Returns whether anything was cut.
pub fn truncate_torn_tail(path: &Path) -> std::io::Result<bool> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    // Scan back from the end to the last newline.
    let mut pos = len;
    let mut buf = [0u8; 4096];
    loop {
        let start = pos.saturating_sub(buf.len() as u64);
        let n = (pos - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep == len {
                return Ok(false);
            }
            file.set_len(keep)?;
            file.sync_all()?;
            return Ok(true);
        }
        if start == 0 {
            file.set_len(0)?;
            file.sync_all()?;
            return Ok(true);
        }
        pos = start;
    }
}
