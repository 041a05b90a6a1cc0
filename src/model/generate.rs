//! `distill-gate generate`: prompts answered by one model, as one batch run.

use std::path::Path;
use std::time::Instant;

use super::{Completion, GenerationRequest, GenerationSettings, Model, ModelError};
use crate::diagnostics::{Problem, Problems};

/// The answers to a list of prompts, and how long they took.
#[derive(Debug, Clone)]
pub struct Generation {
    /// One answer (or error) per prompt, in order.
    pub answers: Vec<Result<Completion, ModelError>>,
    /// Seconds the whole batch run took.
    pub wall_secs: f64,
}

/// The prompts of a JSONL file of `{"prompt": ...}` lines, in order (blank
/// lines skipped, other fields such as an `id` ignored); every bad line is
/// a problem at its line.
pub fn read_prompts(path: &Path) -> Result<Vec<String>, Problems> {
    /// One line of a prompts file.
    #[derive(serde::Deserialize)]
    struct Line {
        prompt: String,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems::one(Problem::new(path, 0, "", format!("cannot read: {e}"))))?;
    let (mut prompts, mut problems) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(l) => prompts.push(l.prompt),
            Err(e) => problems.push(Problem::new(
                path,
                i + 1,
                crate::jsonl::json_field(&e),
                crate::jsonl::line_error(&e),
            )),
        }
    }
    if problems.is_empty() {
        Ok(prompts)
    } else {
        Err(Problems(problems))
    }
}

/// Asks `model` every prompt with `settings` (request ids are the prompts'
/// 0-based positions).
pub fn generate(
    model: &mut dyn Model,
    prompts: &[String],
    settings: &GenerationSettings,
) -> Generation {
    let requests: Vec<GenerationRequest> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| GenerationRequest {
            id: i.to_string(),
            prompt: p.clone(),
            settings: settings.clone(),
        })
        .collect();
    let started = Instant::now();
    let answers = model.complete_batch(&requests);
    Generation {
        answers,
        wall_secs: started.elapsed().as_secs_f64(),
    }
}

impl Generation {
    /// Whether any prompt got no answer.
    pub fn failed(&self) -> bool {
        self.answers.iter().any(Result::is_err)
    }

    /// What answer `i` cost: its tokens, latencies and why it stopped; or
    /// its error.
    pub fn answer_line(&self, i: usize) -> String {
        match &self.answers[i] {
            Ok(c) => format!(
                "[{i}] prompt {} tokens, completion {} tokens, first token {:.0} ms, total {:.0} ms, finish {}",
                c.usage.prompt_tokens,
                c.usage.completion_tokens,
                c.latency.and_then(|l| l.first_token_ms).unwrap_or(f64::NAN),
                c.latency.map_or(f64::NAN, |l| l.total_ms),
                c.finish.map_or("unknown".to_string(), |f| format!("{f:?}"))
            ),
            Err(e) => format!("[{i}] error: {e}"),
        }
    }

    /// The whole run: requests, time, tokens and completion tokens per second.
    pub fn summary(&self) -> String {
        let answered = self.answers.iter().flatten();
        let prompt_tokens: u64 = answered.clone().map(|c| c.usage.prompt_tokens).sum();
        let completion_tokens: u64 = answered.map(|c| c.usage.completion_tokens).sum();
        format!(
            "{} request(s) in {:.2}s: {prompt_tokens} prompt + {completion_tokens} completion tokens, {:.1} completion tokens/s",
            self.answers.len(),
            self.wall_secs,
            completion_tokens as f64 / self.wall_secs.max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prompts in order, blank lines and other fields skipped; every bad
    /// line named with its number and field.
    #[test]
    fn prompts_file_reads_in_order_and_names_each_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\": \"a\", \"id\": 7}\n\n{\"prompt\": \"b\"}",
        )
        .unwrap();
        assert_eq!(read_prompts(&path).unwrap(), ["a", "b"]);
        std::fs::write(
            &path,
            "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n{\"prompt\": \n",
        )
        .unwrap();
        let problems: Vec<String> = read_prompts(&path)
            .unwrap_err()
            .0
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains(":2: prompt: missing field"),
            "{problems:?}"
        );
        assert!(problems[1].contains(":3: malformed JSON"), "{problems:?}");
    }
}
