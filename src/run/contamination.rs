//! Contamination: a student distilled from transcripts of the items it is
//! gated on has seen the answers of its test, and its retention says
//! nothing about new traffic.
//!
//! `distill-gate distill` writes `training.json` beside a student's
//! weights, naming every transcript it learned from (path and SHA-256).
//! Before a run, every local student with a `training.json` has those
//! transcripts read: a transcript line whose request is a gated item's
//! (the same request key, i.e. prompt and settings, or the same
//! `suite/task` request id) is an overlap. Overlaps are an error unless
//! `[run] allow_contamination = true`, and are then warned about in every
//! report. A transcript that cannot be found, or whose content changed
//! since training, cannot be checked: that is said too.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ModelSource, ModelSpec};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::sha256_file;
use crate::jsonl;
use crate::model::transcript::key_of;
use crate::run::plan::Plan;

/// The file `distill` writes beside a student's weights.
pub const TRAINING_FILE: &str = "training.json";

/// Where the [`TRAINING_FILE`] of a checkpoint is: in a checkpoint
/// directory, beside a single-file checkpoint (a quantized `.gguf`), or in
/// the training run of a burn record (`.bpk`).
pub fn training_file_of(checkpoint: &Path) -> PathBuf {
    // A burn record's run is the directory of the files read with it
    // (`distill`'s own directory for its `last/model.bpk`).
    if let Some(dir) = crate::llm::burnpack::companion_dir(checkpoint) {
        return dir.join(TRAINING_FILE);
    }
    match checkpoint.parent() {
        Some(dir) if checkpoint.is_file() => dir.join(TRAINING_FILE),
        _ => checkpoint.join(TRAINING_FILE),
    }
}

pub use crate::summary::Contamination;

/// The part of `training.json` this check reads.
#[derive(Deserialize)]
struct Training {
    #[serde(default)]
    transcripts: Vec<TrainingTranscript>,
}

#[derive(Deserialize)]
struct TrainingTranscript {
    path: PathBuf,
    sha256: String,
}

/// The part of a transcript line this check reads.
#[derive(Deserialize)]
struct Line {
    key: String,
    #[serde(default)]
    request_id: String,
}

/// Most example items named per transcript.
const EXAMPLES: usize = 3;

/// Checks every local student of the plan that has a `training.json`.
/// Returns what was found: transcripts holding gated items, and
/// transcripts that could not be checked. A `training.json` that does not
/// parse is a problem at its line.
pub fn check(plan: &Plan) -> Result<Vec<Contamination>, Problems> {
    let mut keys = HashSet::new();
    let mut ids = HashSet::new();
    for suite in &plan.suites {
        for item in &suite.items {
            ids.insert(format!("{}/{}", suite.name(), item.task.id));
            keys.extend(item.requests.iter().map(key_of));
            keys.extend(item.templated.values().flatten().map(key_of));
        }
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (index, spec) in plan.config.students.iter().enumerate() {
        match check_student(spec, index, &plan.config.path, &keys, &ids) {
            Ok(f) => found.extend(f),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(Problems(problems))
    }
}

/// The overlaps of one student's training transcripts with the gated items.
fn check_student(
    spec: &ModelSpec,
    index: usize,
    config_path: &Path,
    keys: &HashSet<String>,
    ids: &HashSet<String>,
) -> Result<Vec<Contamination>, Problem> {
    let ModelSource::Local { path, .. } = &spec.source else {
        return Ok(Vec::new());
    };
    let training_path = training_file_of(path);
    let Ok(text) = std::fs::read_to_string(&training_path) else {
        return Ok(Vec::new());
    };
    let training: Training = serde_json::from_str(&text)
        .map_err(|e| Problem::new(&training_path, e.line(), "transcripts", e.to_string()))?;
    let mut found = Vec::new();
    for t in training.transcripts {
        let mut c = Contamination {
            student: spec.name.clone(),
            index,
            transcript: t.path.display().to_string(),
            overlap: BTreeMap::new(),
            examples: Vec::new(),
            unchecked: None,
        };
        match locate(&t, path, config_path) {
            Err(why) => c.unchecked = Some(why),
            Ok(file) => {
                let read = jsonl::read(&file, true, |_, line: Line| {
                    let id_hit = ids.contains(&line.request_id);
                    if id_hit || keys.contains(&line.key) {
                        let suite = line.request_id.split('/').next().unwrap_or_default();
                        *c.overlap.entry(suite.to_string()).or_default() += 1;
                        if c.examples.len() < EXAMPLES {
                            c.examples.push(line.request_id);
                        }
                    }
                    None
                });
                if let Err(p) = read {
                    c.unchecked = Some(format!("{} does not read: {p}", file.display()));
                }
            }
        }
        if c.unchecked.is_some() || !c.overlap.is_empty() {
            found.push(c);
        }
    }
    Ok(found)
}

/// Finds the transcript a `training.json` names, with the content it had
/// at training time: its path as written (relative paths are tried from
/// the working directory, the config's directory, and the checkpoint's
/// directory and each directory above it, since `distill` records the
/// path it was given).
fn locate(
    t: &TrainingTranscript,
    checkpoint: &Path,
    config_path: &Path,
) -> Result<PathBuf, String> {
    let mut candidates = vec![t.path.clone()];
    if t.path.is_relative() {
        if let Some(dir) = config_path.parent() {
            candidates.push(dir.join(&t.path));
        }
        let absolute = std::path::absolute(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
        candidates.extend(absolute.ancestors().map(|d| d.join(&t.path)));
    }
    let mut changed = None;
    for c in candidates.into_iter().filter(|c| c.is_file()) {
        match sha256_file(&c) {
            Ok(sha) if sha == t.sha256 => return Ok(c),
            Ok(_) => {
                changed.get_or_insert(c);
            }
            Err(_) => {}
        }
    }
    Err(match changed {
        Some(c) => format!(
            "{} changed since the student was trained (its sha256 is not {})",
            c.display(),
            t.sha256
        ),
        None => "not found (looked beside the config and the checkpoint)".to_string(),
    })
}

/// The problems that stop a run when contamination is not allowed: one per
/// transcript holding gated items, at the student's `path` in the config.
pub fn refuse(found: &[Contamination], plan: &Plan) -> Result<(), Problems> {
    let problems: Vec<Problem> = found
        .iter()
        .filter(|c| c.items() > 0)
        .map(|c| {
            plan.config.problem(
                format!("students[{}].path", c.index),
                format!(
                    "{}; the student has seen answers to the items it would be gated on. Gate \
                     it on other items, or set [run] allow_contamination = true to gate it \
                     anyway (every report then warns)",
                    c.describe()
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}
