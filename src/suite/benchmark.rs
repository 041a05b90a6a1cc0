//! What importing a published coding benchmark as a suite takes, whatever
//! its format ([`super::humaneval`], [`super::mbpp`]): reading its JSONL
//! file (plain, or gzip-compressed as benchmarks ship it, recognised by its
//! first bytes) with every bad line named by line and field; writing the
//! suite (`suite.toml` and a `test` split, never over an existing suite);
//! and running every reference solution in the sandbox, as if a model had
//! answered it, so a broken file or sandbox is found at import, by task id
//! and line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::bufread::MultiGzDecoder;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{SuiteError, Task};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::sha256_file;
use crate::jsonl::{MAX_LINE_BYTES, read_bounded_line};

/// A field of a problem line that is wrong, and what is wrong with it.
pub type LineError = (String, String);

/// Reads a benchmark's JSONL file, one problem a line, with `parse` (which
/// names the field a bad line gets wrong); `id` gives a problem's task id,
/// named `id_field` in the file. Blank lines are skipped; every bad line,
/// every repeated task id and an empty file are reported, and nothing is
/// returned unless every line is good. Each problem comes with its line.
pub fn read_problems<P>(
    path: &Path,
    id_field: &str,
    id: impl Fn(&P) -> &str,
    parse: impl Fn(&str) -> Result<P, LineError>,
) -> Result<Vec<(P, usize)>, Problems> {
    let mut reader = open_text(path)?;
    let mut problems = Vec::new();
    let mut found: Vec<(P, usize)> = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = read_bounded_line(&mut reader, &mut buf).map_err(|e| {
            Problems::one(Problem::new(path, line + 1, "", format!("read error: {e}")))
        })?;
        if n == 0 {
            break;
        }
        line += 1;
        if n > MAX_LINE_BYTES {
            problems.push(Problem::new(
                path,
                line,
                "",
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            problems.push(Problem::new(
                path,
                line,
                "",
                "line is not valid UTF-8 (JSONL text or its gzip file expected)",
            ));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match parse(text) {
            Ok(problem) => {
                let task_id = id(&problem).to_string();
                if let Some(at) = first_line.get(&task_id) {
                    problems.push(Problem::new(
                        path,
                        line,
                        id_field,
                        format!("duplicate {id_field} {task_id:?} (first at line {at})"),
                    ));
                } else {
                    first_line.insert(task_id, line);
                    found.push((problem, line));
                }
            }
            Err((field, message)) => problems.push(Problem::new(path, line, field, message)),
        }
    }
    if found.is_empty() && problems.is_empty() {
        problems.push(Problem::new(path, 0, "", "no problems in the file"));
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(Problems(problems))
    }
}

/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file's bytes, decompressed when it is gzip (OpenAI ships HumanEval
/// as `HumanEval.jsonl.gz`): recognised by its first two bytes, whatever
/// the file is called.
fn open_text(path: &Path) -> Result<Box<dyn BufRead>, Problems> {
    let fail =
        |e: std::io::Error| Problems::one(Problem::new(path, 0, "", format!("cannot open: {e}")));
    let mut reader = BufReader::new(File::open(path).map_err(fail)?);
    let gzip = reader.fill_buf().map_err(fail)?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

/// A JSON object's field as a string: `Err` names it when it is missing or
/// not a string. The field is taken out of `map` (what is left over is kept
/// in the task's `meta`).
pub fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<String, LineError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err((field.to_string(), format!("expected a string, got {other}"))),
        None => Err((field.to_string(), "missing required field".to_string())),
    }
}

/// A problem line as a JSON object.
pub fn object(text: &str) -> Result<Map<String, Value>, LineError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err((String::new(), "expected a JSON object".to_string())),
        Err(e) => Err((String::new(), crate::jsonl::line_error(&e))),
    }
}

/// Whether `s` is a Python identifier (ASCII or not).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// What an import wrote, and where each task came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The suite directory.
    pub dir: PathBuf,
    /// Number of problems.
    pub tasks: usize,
    /// The benchmark file imported.
    pub source: PathBuf,
    /// SHA-256 of the source file (its first 12 hex digits are the suite version).
    pub source_sha256: String,
    /// Each task id's line in the source file.
    pub lines: HashMap<String, usize>,
}

/// One line of the written `test.jsonl`.
#[derive(Serialize)]
struct TaskLine<'a> {
    id: &'a str,
    category: &'a str,
    input: &'a str,
    target: &'a Value,
    #[serde(skip_serializing_if = "Map::is_empty")]
    meta: &'a Map<String, Value>,
}

/// A benchmark format: how its file reads and the suite it makes.
pub trait Format {
    /// One problem of the format.
    type Problem;
    /// What the suites it makes say in their `suite.toml`.
    const MANIFEST: Manifest;
    /// Every problem of the file at `path`, with its line; every bad line
    /// is reported (file, line, field) and nothing is returned unless all
    /// lines are good.
    fn read_lines(path: &Path) -> Result<Vec<(Self::Problem, usize)>, Problems>;
    /// Every problem of the file at `path`, without their lines.
    fn read(path: &Path) -> Result<Vec<Self::Problem>, Problems> {
        Ok(Self::read_lines(path)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }
    /// The suite task for one problem.
    fn to_task(problem: &Self::Problem) -> Task;
}

/// Writes the suite of the benchmark file `source` of format `F` into `out`
/// (created if needed; an existing `suite.toml` or `test.jsonl` there is
/// refused rather than overwritten). `name` is the suite name; `max_tokens`
/// the completion budget.
pub fn import<F: Format>(
    source: &Path,
    out: &Path,
    name: &str,
    max_tokens: u32,
) -> Result<Imported, Problems> {
    let tasks: Vec<(Task, usize)> = F::read_lines(source)?
        .iter()
        .map(|(p, line)| (F::to_task(p), *line))
        .collect();
    let settings = SuiteSettings { name, max_tokens };
    write_suite(source, out, &tasks, &F::MANIFEST, &settings)
}

/// What a format's `suite.toml` says besides the source file and its hash.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    /// The subcommand that imports the format (`import-humaneval`).
    pub command: &'static str,
    /// The benchmark's name (`HumanEval`).
    pub benchmark: &'static str,
    /// How a task is scored, in one line.
    pub rule: &'static str,
    /// The prompt template.
    pub prompt: &'static str,
    /// Where generation stops.
    pub stop: &'static [&'static str],
    /// The category of every task.
    pub category: &'static str,
}

/// What the user chose for an imported suite.
struct SuiteSettings<'a> {
    /// The suite's name.
    name: &'a str,
    /// The completion budget per problem, in tokens.
    max_tokens: u32,
}

impl Manifest {
    /// The `suite.toml` of a suite imported from `source` (SHA-256 `sha`,
    /// `count` problems).
    fn render(&self, source: &Path, sha: &str, count: usize, settings: &SuiteSettings) -> String {
        let stop: Vec<String> = self.stop.iter().map(|s| toml_basic_string(s)).collect();
        format!(
            "# Imported by `distill-gate suites {command}` from {source}\n\
             # (sha256 {sha}); {count} problems. Scored as {benchmark} defines:\n\
             # {rule}\n\
             name = {name}\n\
             version = {version}\n\
             description = {description}\n\
             \n\
             [defaults]\n\
             chat = false\n\
             prompt = {prompt}\n\
             max_tokens = {max_tokens}\n\
             stop = [{stop}]\n\
             scorer = {{ kind = \"code\" }}\n\
             \n\
             [categories.{category}]\n",
            command = self.command,
            source = source.display(),
            benchmark = self.benchmark,
            rule = self.rule,
            name = toml_basic_string(settings.name),
            version = toml_basic_string(sha.get(..12).unwrap_or(sha)),
            description = toml_basic_string(&format!(
                "{}-format problems imported from {}",
                self.benchmark,
                file_name(source)
            )),
            prompt = toml_basic_string(self.prompt),
            max_tokens = settings.max_tokens,
            stop = stop.join(", "),
            category = self.category,
        )
    }
}

/// Writes the suite of `tasks` (each with its line in `source`) into `out`
/// (created if needed; an existing `suite.toml` or `test.jsonl` there is
/// refused rather than overwritten), its `suite.toml` as `manifest` says.
fn write_suite(
    source: &Path,
    out: &Path,
    tasks: &[(Task, usize)],
    manifest: &Manifest,
    settings: &SuiteSettings,
) -> Result<Imported, Problems> {
    let sha = sha256_file(source)
        .map_err(|e| Problems::one(Problem::new(source, 0, "", format!("cannot read: {e}"))))?;
    let io =
        |path: &Path, e: std::io::Error| Problems::one(Problem::new(path, 0, "", e.to_string()));
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let toml_path = out.join("suite.toml");
    let test_path = out.join("test.jsonl");
    for path in [&toml_path, &test_path] {
        if path.exists() {
            return Err(Problems::one(Problem::new(
                path,
                0,
                "",
                "already exists; import into an empty directory",
            )));
        }
    }
    let mut lines = String::new();
    for (task, _) in tasks {
        let line = TaskLine {
            id: &task.id,
            category: &task.category,
            input: &task.input,
            target: &task.target,
            meta: &task.meta,
        };
        let text =
            serde_json::to_string(&line).map_err(|e| io(&test_path, std::io::Error::other(e)))?;
        lines.push_str(&text);
        lines.push('\n');
    }
    std::fs::write(&test_path, lines).map_err(|e| io(&test_path, e))?;
    let toml = manifest.render(source, &sha, tasks.len(), settings);
    std::fs::write(&toml_path, toml).map_err(|e| io(&toml_path, e))?;
    Ok(Imported {
        dir: out.to_path_buf(),
        tasks: tasks.len(),
        source: source.to_path_buf(),
        source_sha256: sha,
        lines: tasks
            .iter()
            .map(|(task, line)| (task.id.clone(), *line))
            .collect(),
    })
}

/// The file name of `source`, for a suite's description.
fn file_name(source: &Path) -> String {
    source.file_name().map_or_else(
        || source.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_basic_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A reference solution that does not pass its own tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The task id.
    pub task_id: String,
    /// Its line in the source file (0 if unknown).
    pub line: usize,
    /// The scorer's detail.
    pub detail: String,
}

/// What running an imported suite's reference solutions found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The benchmark file the suite was imported from.
    pub source: PathBuf,
    /// Problems checked.
    pub tasks: usize,
    /// Every reference solution that does not pass, in task order.
    pub failures: Vec<Failure>,
    /// Seconds the check took.
    pub secs: f64,
}

impl Verification {
    /// Whether every reference solution passes.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A line per failing solution (`file:line: task id: ...`); a sandbox
    /// that cannot run anything fails every problem the same way, which is
    /// said once.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut said: Option<&str> = None;
        let mut repeats = 0;
        for f in &self.failures {
            if f.detail.starts_with("sandbox error:") && said == Some(f.detail.as_str()) {
                repeats += 1;
                continue;
            }
            lines.push(format!(
                "{}:{}: {}: canonical solution fails: {}",
                self.source.display(),
                f.line,
                f.task_id,
                f.detail
            ));
            said = Some(&f.detail);
        }
        if repeats > 0 {
            lines.push(format!(
                "({repeats} more canonical solution(s) failed with the same sandbox error)"
            ));
        }
        lines
    }

    /// How many pass, of how many, and how long it took.
    pub fn summary(&self) -> String {
        format!(
            "verified {}/{} canonical solutions pass in the sandbox ({:.1} s)",
            self.tasks - self.failures.len(),
            self.tasks,
            self.secs
        )
    }
}

/// Scores every reference solution (the target's `solution`) of the suite
/// `imported` wrote, as if a model had answered it, on one thread per core;
/// one that fails means the file or the sandbox is broken.
pub fn verify(imported: &Imported) -> Result<Verification, SuiteError> {
    let loaded = super::load_suite(&imported.dir)?;
    let tasks = loaded
        .split("test")
        .map(|s| s.tasks.as_slice())
        .unwrap_or_default();
    let started = Instant::now();
    let failures = crate::parallel::map_in_order(tasks.iter().collect(), |task| {
        let solution = task.target["solution"].as_str().unwrap_or_default();
        let score = loaded.score(task, solution);
        (score.value < 1.0).then(|| Failure {
            task_id: task.id.clone(),
            line: imported.lines.get(&task.id).copied().unwrap_or(0),
            detail: score.detail,
        })
    })
    .into_iter()
    .flatten()
    .collect();
    Ok(Verification {
        source: imported.source.clone(),
        tasks: tasks.len(),
        failures,
        secs: started.elapsed().as_secs_f64(),
    })
}
