//! The run journal: `reports/<run>/results.jsonl`, one line per (model,
//! task), appended and synced as each result arrives. A run killed at any
//! point resumes from it; a torn last line is detected and redone.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diagnostics::{Problem, Problems};
use crate::jsonl;
use crate::model::{FinishReason, Latency, LatencySource, Usage};

pub use crate::summary::Role;

/// One (model, task) result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Model name from the config.
    pub model: String,
    /// Teacher or student.
    pub role: Role,
    /// Suite name.
    pub suite: String,
    /// Task id within the suite.
    pub task_id: String,
    /// Task category.
    pub category: String,
    /// Which of the item's samples this is (0 when one answer per item is drawn).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample: u32,
    /// The model's raw output (absent when the call errored).
    #[serde(default)]
    pub output: Option<String>,
    /// Score in [0, 1] (0 when the call errored; see `error`).
    pub score: f64,
    /// The verifier's short explanation.
    pub detail: String,
    /// The answer the extraction step took from the output.
    #[serde(default)]
    pub extracted: Option<String>,
    /// Token counts.
    #[serde(default)]
    pub usage: Usage,
    /// Timing.
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Why generation stopped.
    #[serde(default)]
    pub finish: Option<FinishReason>,
    /// Cost of this item in dollars.
    #[serde(default)]
    pub cost: f64,
    /// The model call's error, if it failed. An errored item counts as an
    /// error in the statistics, never as a silent zero.
    #[serde(default)]
    pub error: Option<String>,
    /// The identity of the model that gave this answer
    /// ([`crate::run::identity::ModelId`]: its checkpoint's or transcript's
    /// content, backend and settings). A line is reused only while it
    /// matches the model the config names; absent in journals written
    /// before answers were bound to models, whose lines are asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The key of the request answered (prompt and generation settings,
    /// [`crate::model::transcript::request_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Earlier attempts at this unit of work by the same model identity
    /// for the same request that errored (journaled above this line and
    /// asked again on resume). An item counts in the error rate when its
    /// last line is an error or any earlier attempt was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_errors: u32,
    /// Not part of the line: where it is in its journal, when it was read
    /// by [`read_for_reports`], which leaves `output` and `extracted` in
    /// the file for [`AnswerTexts`] to read back.
    #[serde(skip)]
    pub texts_at: Option<jsonl::LineSpan>,
}

impl JournalEntry {
    /// A line of `model` (in `role`) for task `task_id` (of `category`) of
    /// `suite`, sample 0, holding no answer yet: score 0 and every other
    /// field empty. Callers set what they know with struct update syntax.
    pub fn new(
        model: impl Into<String>,
        role: Role,
        suite: impl Into<String>,
        task_id: impl Into<String>,
        category: impl Into<String>,
    ) -> Self {
        Self {
            model: model.into(),
            role,
            suite: suite.into(),
            task_id: task_id.into(),
            category: category.into(),
            sample: 0,
            output: None,
            score: 0.0,
            detail: String::new(),
            extracted: None,
            usage: Usage::default(),
            latency: None,
            finish: None,
            cost: 0.0,
            error: None,
            model_id: None,
            request: None,
            prior_errors: 0,
            texts_at: None,
        }
    }

    /// Whether this unit of work ever errored: this line or an earlier
    /// attempt of the same model at the same request (the error rate's
    /// count).
    pub fn ever_errored(&self) -> bool {
        self.error.is_some() || self.prior_errors > 0
    }

    /// The identity of the unit of work this line finishes.
    pub fn work_key(&self) -> WorkKey {
        WorkKey {
            model: self.model.clone(),
            suite: self.suite.clone(),
            task_id: self.task_id.clone(),
            sample: self.sample,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One unit of work: a model answering a task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkKey {
    /// Model name.
    pub model: String,
    /// Suite name.
    pub suite: String,
    /// Task id.
    pub task_id: String,
    /// Sample index.
    pub sample: u32,
}

impl WorkKey {
    /// What the journal remembers of a done unit of work: 16 bytes of
    /// SHA-256 over its fields, whatever their length. Two of a run's
    /// keys collide with odds of about n²/2¹²⁹ (below 10⁻²⁶ at a million
    /// lines).
    fn digest(&self) -> KeyDigest {
        let mut hasher = Sha256::new();
        for field in [&self.model, &self.suite, &self.task_id] {
            // Length-prefixed, so no two field splits hash alike.
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(self.sample.to_le_bytes());
        let mut digest = [0; 16];
        digest.copy_from_slice(&hasher.finalize()[..16]);
        digest
    }
}

/// See [`WorkKey::digest`].
type KeyDigest = [u8; 16];

/// What the journal remembers of who answered a done unit of work and to
/// what: 16 bytes of SHA-256 over the line's model identity and request
/// key (see [`binding_digest`]).
type BindingDigest = [u8; 16];

/// [`BindingDigest`] of a line's `model_id` and `request`; `None` for a
/// line that carries neither (it can never be shown current).
fn binding_digest(model_id: Option<&str>, request: Option<&str>) -> Option<BindingDigest> {
    let (model_id, request) = (model_id?, request?);
    let mut hasher = Sha256::new();
    for field in [model_id, request] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    let mut digest = [0; 16];
    digest.copy_from_slice(&hasher.finalize()[..16]);
    Some(digest)
}

/// Whether a unit of work is in the journal, and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkStatus {
    /// Not journaled.
    Missing,
    /// Journaled as the answer of this model to this request.
    Done,
    /// Journaled as an error of this model at this request: an error is
    /// not an answer, so it is asked again, and the new line carries the
    /// count of errored attempts (`prior_errors`) for the error rate.
    Errored {
        /// Errored attempts so far, this last one included.
        attempts: u32,
    },
    /// Journaled, but by another model identity or for another request:
    /// it must be asked again.
    Stale,
}

/// What the journal remembers of a unit of work's last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastLine {
    /// Who answered, and to what.
    binding: Option<BindingDigest>,
    /// Errored attempts of that binding up to and including this line.
    errored_attempts: u32,
    /// Whether the line itself is an error.
    errored: bool,
}

impl LastLine {
    fn of(e: &JournalEntry) -> Self {
        Self {
            binding: binding_digest(e.model_id.as_deref(), e.request.as_deref()),
            errored_attempts: e.prior_errors + u32::from(e.error.is_some()),
            errored: e.error.is_some(),
        }
    }
}

/// Reads every complete line of a journal. A torn last line is skipped (it
/// will be redone); a malformed complete line is an error naming the line.
pub fn read(path: &Path) -> Result<Vec<JournalEntry>, Problems> {
    let mut entries = Latest::default();
    for_each(path, |e| entries.push(e))?;
    Ok(entries.into_vec())
}

/// The lines of a journal as its readers see them: for each unit of work
/// the last line journaled (a model asked again after it changed appends
/// a new line for the same work), in the order the works first appear.
#[derive(Default)]
struct Latest {
    entries: Vec<JournalEntry>,
    at: HashMap<KeyDigest, usize>,
}

impl Latest {
    fn push(&mut self, entry: JournalEntry) {
        match self.at.entry(entry.work_key().digest()) {
            std::collections::hash_map::Entry::Occupied(o) => self.entries[*o.get()] = entry,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    fn into_vec(self) -> Vec<JournalEntry> {
        self.entries
    }
}

/// Reads a journal for reporting: every complete line, with its answer
/// texts (`output` and `extracted`) left in the file and `texts_at` saying
/// where, so the reports of a run hold its numbers, not its answers, and
/// read each answer back with [`AnswerTexts`] as they write it.
pub fn read_for_reports(path: &Path) -> Result<Vec<JournalEntry>, Problems> {
    let mut entries = Latest::default();
    jsonl::read_spans(path, true, |span, mut e: JournalEntry| {
        e.output = None;
        e.extracted = None;
        e.texts_at = Some(span);
        entries.push(e);
        None
    })?;
    Ok(entries.into_vec())
}

/// Reads answer texts back from a journal, for the lines
/// [`read_for_reports`] left them out of.
#[derive(Debug)]
pub struct AnswerTexts {
    path: PathBuf,
    file: File,
}

impl AnswerTexts {
    /// Opens the journal at `path` for reading texts back.
    pub fn open(path: &Path) -> Result<Self, Problems> {
        let file = File::open(path)
            .map_err(|e| Problems::one(Problem::new(path, 0, "", format!("cannot open: {e}"))))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// `entry` with its answer texts: itself when it was read whole, else
    /// its line read back. An error names the line when the journal no
    /// longer holds it (the file changed since it was read).
    pub fn full<'e>(&self, entry: &'e JournalEntry) -> Result<Cow<'e, JournalEntry>, Problem> {
        let Some(span) = entry.texts_at else {
            return Ok(Cow::Borrowed(entry));
        };
        let full: JournalEntry = jsonl::read_line_at(&self.file, &self.path, &span)?;
        let same = |a: &JournalEntry, b: &JournalEntry| {
            (&a.model, &a.suite, &a.task_id, a.sample) == (&b.model, &b.suite, &b.task_id, b.sample)
        };
        if !same(&full, entry) {
            return Err(Problem::new(
                &self.path,
                span.number,
                "",
                "changed since it was read (the line now holds another result)",
            ));
        }
        Ok(Cow::Owned(full))
    }
}

/// Streams every complete line of a journal to `on_entry`, one at a time,
/// in file order, superseded lines included (a missing journal has none).
pub fn for_each(path: &Path, mut on_entry: impl FnMut(JournalEntry)) -> Result<(), Problems> {
    jsonl::read(path, true, |_, e: JournalEntry| {
        on_entry(e);
        None
    })
}

/// The journal of a run being executed: appends results and knows what is
/// done. It holds no line in memory, only a digest of each line's key, so
/// a run's memory does not grow with the text of its answers; the reports
/// read the file back when the run is over.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Who answered each done unit of work, and to what (its last line).
    done: HashMap<KeyDigest, LastLine>,
    /// Dollars of the answers given live, by model, in the lines there
    /// when the journal was opened (see [`Journal::live_cost`]).
    live_cost: HashMap<String, f64>,
    /// Lines appended by this process.
    appended: usize,
    /// Test hook ([`TEAR_AT_ENV`]): tear the line with this index.
    tear_at: Option<usize>,
    /// When the file was last synced to disk.
    last_sync: std::time::Instant,
}

/// Longest time an appended line may stay unsynced. A killed process loses
/// nothing written (the kernel holds it); only a power loss can cost the
/// lines of this last interval, which a resumed run then redoes. Syncing
/// every line instead made a 100,000-item replay run take minutes.
const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Crash-safety test hook: when this environment variable holds `n`, the
/// `n`-th line (0-based) this process appends is written only half, synced,
/// [`TORN_NOTICE`] is printed on stderr, and the process then sleeps for ten
/// minutes and aborts, so a test can SIGKILL it with a torn last line on
/// disk (tests/crash_safety.rs).
pub const TEAR_AT_ENV: &str = "DISTILL_GATE_TEST_TEAR_JOURNAL_AT";

/// The stderr line of the [`TEAR_AT_ENV`] hook once the torn line is on
/// disk. A test waits for it rather than for the file to end without a
/// newline: a reader can also see that while a whole batch is being
/// written, or while a torn line left by an earlier kill is still there.
pub const TORN_NOTICE: &str = "distill-gate test hook: journal line torn";

impl Journal {
    /// Opens the journal at `path`, reading what earlier attempts finished
    /// and cutting a torn last line.
    pub fn open(path: &Path) -> Result<Self, Problems> {
        let io = |e: std::io::Error| Problems::one(Problem::new(path, 0, "", e.to_string()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        jsonl::truncate_torn_tail(path).map_err(io)?;
        let mut done = HashMap::new();
        let mut live_cost: HashMap<String, f64> = HashMap::new();
        for_each(path, |e| {
            done.insert(e.work_key().digest(), LastLine::of(&e));
            if e.latency.is_some_and(|l| l.source == LatencySource::Live) {
                *live_cost.entry(e.model).or_default() += e.cost;
            }
        })?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            done,
            live_cost,
            appended: 0,
            tear_at: std::env::var(TEAR_AT_ENV).ok().and_then(|v| v.parse().ok()),
            last_sync: std::time::Instant::now(),
        })
    }

    /// Whether this unit of work is journaled as the answer of the model
    /// with identity `model_id` to the request keyed `request`.
    pub fn status(&self, key: &WorkKey, model_id: &str, request: &str) -> WorkStatus {
        match self.done.get(&key.digest()) {
            None => WorkStatus::Missing,
            Some(last) if last.binding != binding_digest(Some(model_id), Some(request)) => {
                WorkStatus::Stale
            }
            Some(last) if last.errored => WorkStatus::Errored {
                attempts: last.errored_attempts,
            },
            Some(_) => WorkStatus::Done,
        }
    }

    /// Dollars spent on answers `model` gave live (not replayed or cached),
    /// as journaled before this process opened the journal.
    pub fn live_cost(&self, model: &str) -> f64 {
        self.live_cost.get(model).copied().unwrap_or(0.0)
    }

    /// Appends results in order with one write (a batch's lines reach the
    /// kernel together; after a kill mid-write the torn last line is redone
    /// on resume). Syncs to disk when [`SYNC_INTERVAL`] has passed since the
    /// last sync (and when the journal is dropped).
    pub fn append_all(&mut self, entries: Vec<JournalEntry>) -> std::io::Result<()> {
        let mut lines = Vec::new();
        for entry in &entries {
            let start = lines.len();
            serde_json::to_writer(&mut lines, entry).map_err(std::io::Error::other)?;
            lines.push(b'\n');
            if self.tear_at == Some(self.appended) {
                let torn = start + (lines.len() - start) / 2;
                self.file.write_all(&lines[..torn])?;
                self.file.sync_data()?;
                eprintln!("{TORN_NOTICE}");
                std::thread::sleep(std::time::Duration::from_secs(600));
                std::process::abort();
            }
            self.appended += 1;
        }
        self.file.write_all(&lines)?;
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.file.sync_data()?;
            self.last_sync = std::time::Instant::now();
        }
        for entry in &entries {
            self.done
                .insert(entry.work_key().digest(), LastLine::of(entry));
        }
        Ok(())
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Best effort: an error here has no one left to report to, and the
        // lines are already in the kernel's hands.
        let _ = self.file.sync_data();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(task: &str) -> JournalEntry {
        JournalEntry {
            output: Some("42".into()),
            score: 1.0,
            detail: "ok".into(),
            model_id: Some("id".into()),
            request: Some("req".into()),
            ..JournalEntry::new("m", Role::Student, "s", task, "c")
        }
    }

    #[test]
    fn reports_read_answer_texts_back_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut long = entry("b");
        long.output = Some("x".repeat(100_000));
        long.extracted = Some("42".into());
        {
            let mut j = Journal::open(&path).unwrap();
            j.append_all(vec![entry("a"), long.clone()]).unwrap();
        }
        let light = read_for_reports(&path).unwrap();
        assert_eq!(light.len(), 2);
        assert!(
            light
                .iter()
                .all(|e| e.output.is_none() && e.extracted.is_none())
        );
        let texts = AnswerTexts::open(&path).unwrap();
        assert_eq!(texts.full(&light[1]).unwrap().into_owned(), long);
        assert_eq!(texts.full(&long).unwrap(), Cow::Borrowed(&long));

        // A journal rewritten under the report is named, not misread.
        std::fs::write(&path, serde_json::to_string(&entry("c")).unwrap() + "\n").unwrap();
        let err = texts.full(&light[0]).unwrap_err().to_string();
        assert!(
            err.contains("results.jsonl:1") && err.contains("changed"),
            "{err}"
        );
    }

    #[test]
    fn torn_last_line_is_cut_and_redone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        {
            let mut j = Journal::open(&path).unwrap();
            j.append_all(vec![entry("a"), entry("b")]).unwrap();
        }
        // Simulate a kill mid-write: half of a third line.
        let full = serde_json::to_string(&entry("c")).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let j = Journal::open(&path).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        let status = |task: &str| j.status(&entry(task).work_key(), "id", "req");
        assert_eq!(status("a"), WorkStatus::Done);
        assert_eq!(status("b"), WorkStatus::Done);
        assert_eq!(status("c"), WorkStatus::Missing);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn malformed_complete_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good = serde_json::to_string(&entry("a")).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"model\": 3}}\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("results.jsonl:2"), "{err}");
    }

    #[test]
    fn a_line_of_another_model_or_request_is_stale_and_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut old = entry("a");
        old.output = Some("old answer".into());
        let mut unbound = entry("b");
        unbound.model_id = None;
        unbound.request = None;
        {
            let mut j = Journal::open(&path).unwrap();
            j.append_all(vec![old, unbound]).unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let key = entry("a").work_key();
        assert_eq!(j.status(&key, "id", "req"), WorkStatus::Done);
        assert_eq!(j.status(&key, "other id", "req"), WorkStatus::Stale);
        assert_eq!(j.status(&key, "id", "other req"), WorkStatus::Stale);
        // A line written before answers were bound to models is never current.
        assert_eq!(
            j.status(&entry("b").work_key(), "id", "req"),
            WorkStatus::Stale
        );
        drop(j);

        // Asked again: the new line supersedes the old one for every reader.
        let mut new = entry("a");
        new.model_id = Some("other id".into());
        new.output = Some("new answer".into());
        {
            let mut j = Journal::open(&path).unwrap();
            j.append_all(vec![new.clone()]).unwrap();
            assert_eq!(j.status(&key, "other id", "req"), WorkStatus::Done);
        }
        let all = read(&path).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], new);
        let light = read_for_reports(&path).unwrap();
        assert_eq!(light.len(), 2);
        assert_eq!(light[0].model_id.as_deref(), Some("other id"));
        assert_eq!(light[0].texts_at.map(|s| s.number), Some(3));
    }

    #[test]
    fn errored_work_is_asked_again_and_its_errors_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let key = entry("a").work_key();
        let failed = |prior: u32| {
            let mut e = entry("a");
            e.output = None;
            e.score = 0.0;
            e.error = Some("HTTP 500".into());
            e.prior_errors = prior;
            e
        };
        {
            let mut j = Journal::open(&path).unwrap();
            j.append_all(vec![failed(0)]).unwrap();
            assert_eq!(
                j.status(&key, "id", "req"),
                WorkStatus::Errored { attempts: 1 }
            );
            // Another model's error is stale, not this model's history.
            assert_eq!(j.status(&key, "other id", "req"), WorkStatus::Stale);
        }
        // Read back on resume, and again after a second failure.
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(
            j.status(&key, "id", "req"),
            WorkStatus::Errored { attempts: 1 }
        );
        j.append_all(vec![failed(1)]).unwrap();
        assert_eq!(
            j.status(&key, "id", "req"),
            WorkStatus::Errored { attempts: 2 }
        );
        let mut answered = entry("a");
        answered.prior_errors = 2;
        j.append_all(vec![answered.clone()]).unwrap();
        assert_eq!(j.status(&key, "id", "req"), WorkStatus::Done);
        drop(j);
        let all = read(&path).unwrap();
        assert_eq!(all, vec![answered]);
        assert!(all[0].ever_errored() && all[0].error.is_none());
    }
}
