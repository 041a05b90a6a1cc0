//! The answers backend: outputs another system already produced (a
//! production log of the teacher's answers, another harness's samples, a
//! vendor's batch API results), gated as they are.
//!
//! An answers file is JSONL, one answer a line:
//!
//! ```json
//! {"id": "coding/t-17", "output": "def f(x): ...", "sample": 0,
//!  "usage": {"prompt_tokens": 120, "completion_tokens": 31}, "latency_ms": 812.5}
//! ```
//!
//! `id` is `<suite name>/<task id>`; `sample` (default 0) is which of the
//! item's answers it is when the suite draws several; `usage` and
//! `latency_ms` are optional. A latency given here was measured by whoever
//! produced the file, not by this run, and is marked recorded; an answer
//! without one has no latency (none is made up). The file's content hash is
//! the model's identity: a journaled answer is reused only while the file
//! is byte for byte the one that gave it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Completion, GenerationRequest, Latency, LatencySource, Model, ModelError, ModelIdentity, Usage,
    sample_request_id,
};
use crate::diagnostics::{Problem, Problems};
use crate::fingerprint::sha256_hex;

/// One line of an answers file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerLine {
    /// `<suite name>/<task id>`.
    pub id: String,
    /// The model's output, as the scorers read any model's.
    pub output: String,
    /// Which of the item's answers (0 unless the suite draws several).
    #[serde(default)]
    pub sample: u32,
    /// Token counts, when the producing system reported them.
    #[serde(default)]
    pub usage: Option<AnswerUsage>,
    /// Wall time of the request in milliseconds, as the producing system
    /// measured it.
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

/// The token counts of an answers line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerUsage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Generated (output) tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache.
    #[serde(default)]
    pub cached_prompt_tokens: u64,
}

/// One answer as read, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Its line in the file (1-based).
    pub line: usize,
    /// The line itself.
    pub value: AnswerLine,
}

/// An answers file read and checked line by line (each line well formed,
/// no `(id, sample)` twice), with the SHA-256 of exactly the bytes read.
#[derive(Debug, Clone)]
pub struct AnswersFile {
    /// The file.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of its content: the model's identity.
    pub sha256: String,
    /// Its answers in file order.
    pub answers: Vec<Answer>,
}

/// Reads an answers file; every malformed line, negative or non-finite
/// latency and repeated `(id, sample)` is a problem at its line.
pub fn read(path: &Path) -> Result<AnswersFile, Problems> {
    let bytes = std::fs::read(path)
        .map_err(|e| Problems::one(Problem::file(path, format!("cannot read: {e}"))))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Problems::one(Problem::file(path, format!("not UTF-8 text: {e}"))))?;
    let mut problems = Vec::new();
    let mut answers = Vec::new();
    let mut first_line: HashMap<(String, u32), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: AnswerLine = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                problems.push(Problem::new(
                    path,
                    line,
                    crate::jsonl::json_field(&e),
                    crate::jsonl::line_error(&e),
                ));
                continue;
            }
        };
        if !value.id.contains('/') {
            problems.push(Problem::new(
                path,
                line,
                "id",
                format!("{:?} is not <suite>/<task id>", value.id),
            ));
            continue;
        }
        if let Some(ms) = value.latency_ms
            && !(ms.is_finite() && ms >= 0.0)
        {
            problems.push(Problem::new(
                path,
                line,
                "latency_ms",
                format!("{ms} is not a duration in milliseconds (finite, at least 0)"),
            ));
            continue;
        }
        let key = (value.id.clone(), value.sample);
        if let Some(first) = first_line.get(&key) {
            problems.push(Problem::new(
                path,
                line,
                "id",
                format!(
                    "duplicate answer to {:?}{}: line {first} answers it already",
                    value.id,
                    sample_words(value.sample)
                ),
            ));
            continue;
        }
        first_line.insert(key, line);
        answers.push(Answer { line, value });
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    Ok(AnswersFile {
        path: path.to_path_buf(),
        sha256: sha256_hex(&bytes),
        answers,
    })
}

/// " (sample N)" for a sample after the first, "" for sample 0.
pub(crate) fn sample_words(sample: u32) -> String {
    if sample == 0 {
        String::new()
    } else {
        format!(" (sample {sample})")
    }
}

/// Answers requests from an answers file, by request id (`suite/task`,
/// `suite/task#s` for sample `s`); a request it has no answer for is a
/// [`ModelError::Missing`] (a run checks coverage before it starts).
#[derive(Debug)]
pub struct AnswersModel {
    name: String,
    path: PathBuf,
    sha256: String,
    by_request: HashMap<String, Completion>,
}

impl AnswersModel {
    /// Reads the answers file at `path`; `name` is the model's name in the
    /// config.
    pub fn open(name: &str, path: &Path) -> Result<Self, Problems> {
        let file = read(path)?;
        let by_request = file
            .answers
            .into_iter()
            .map(|a| {
                let id = sample_request_id(&a.value.id, a.value.sample);
                (id, completion(a.value))
            })
            .collect();
        Ok(Self {
            name: name.to_string(),
            path: file.path,
            sha256: file.sha256,
            by_request,
        })
    }

    /// SHA-256 of the file's content as read.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// The completion an answers line gives: its output, its usage (zero when
/// not given), its latency marked recorded (none when not given), and no
/// finish reason (the file does not say one).
fn completion(line: AnswerLine) -> Completion {
    Completion {
        text: line.output,
        usage: line.usage.map_or_else(Usage::default, |u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_prompt_tokens: u.cached_prompt_tokens,
            estimated: false,
        }),
        latency: line.latency_ms.map(|total_ms| Latency {
            total_ms,
            first_token_ms: None,
            batch_ms: None,
            batch_size: 1,
            source: LatencySource::Recorded,
        }),
        finish: None,
    }
}

impl Model for AnswersModel {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            backend: "answers".into(),
            name: self.name.clone(),
            fingerprint: self.sha256.clone(),
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        requests
            .iter()
            .map(|r| {
                self.by_request.get(&r.id).cloned().ok_or_else(|| {
                    ModelError::Missing(format!(
                        "{} (no answer with this id in {})",
                        r.id,
                        self.path.display()
                    ))
                })
            })
            .collect()
    }

    fn preferred_batch_size(&self) -> usize {
        256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_answers_and_makes_up_no_latency() {
        let (_dir, path) = file(concat!(
            "{\"id\": \"s/a\", \"output\": \"1\", \"latency_ms\": 12.5, \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 1}}\n",
            "\n",
            "{\"id\": \"s/b/c\", \"output\": \"2\", \"sample\": 1}\n",
        ));
        let mut model = AnswersModel::open("m", &path).unwrap();
        assert_eq!(model.sha256(), sha256_hex(&std::fs::read(&path).unwrap()));
        let ask = |id: &str| GenerationRequest {
            id: id.into(),
            prompt: "ignored".into(),
            settings: Default::default(),
        };
        let out = model.complete_batch(&[ask("s/a"), ask("s/b/c#1"), ask("s/b/c")]);
        let a = out[0].as_ref().unwrap();
        assert_eq!(a.text, "1");
        assert_eq!(a.usage.prompt_tokens, 3);
        let latency = a.latency.unwrap();
        assert_eq!(latency.total_ms, 12.5);
        assert_eq!(latency.source, LatencySource::Recorded);
        let b = out[1].as_ref().unwrap();
        assert_eq!(b.text, "2");
        assert_eq!(b.latency, None, "no latency is made up");
        assert_eq!(b.finish, None);
        assert_eq!(b.usage, Usage::default());
        assert!(matches!(&out[2], Err(ModelError::Missing(m)) if m.contains("s/b/c")));
    }

    #[test]
    fn bad_lines_are_named_by_line_and_field() {
        let (_dir, path) = file(concat!(
            "{\"id\": \"s/a\", \"output\": \"1\"}\n",
            "{\"id\": \"s/a\", \"output\": \"2\"}\n",
            "{\"id\": \"nosuite\", \"output\": \"3\"}\n",
            "{\"id\": \"s/b\", \"output\": \"4\", \"latency_ms\": -1}\n",
            "{\"id\": \"s/c\", \"output\": \"5\", \"extra\": 1}\n",
            "{\"id\": \"s/d\"}\n",
        ));
        let problems: Vec<String> = read(&path)
            .unwrap_err()
            .0
            .iter()
            .map(|p| p.to_string())
            .collect();
        let p = path.display();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert_eq!(
            problems[0],
            format!("{p}:2: id: duplicate answer to \"s/a\": line 1 answers it already")
        );
        assert_eq!(
            problems[1],
            format!("{p}:3: id: \"nosuite\" is not <suite>/<task id>")
        );
        assert!(problems[2].starts_with(&format!("{p}:4: latency_ms: -1 ")));
        assert!(
            problems[3].starts_with(&format!("{p}:5: ")),
            "{}",
            problems[3]
        );
        assert!(problems[3].contains("extra"), "{}", problems[3]);
        assert!(
            problems[4].starts_with(&format!("{p}:6: ")),
            "{}",
            problems[4]
        );
        assert!(problems[4].contains("output"), "{}", problems[4]);
    }
}
