//! `distill-gate generate`: prompts answered by one model, as one batch run.

use std::time::Instant;

use super::{Completion, GenerationRequest, GenerationSettings, Model, ModelError};

/// The answers to a list of prompts, and how long they took.
#[derive(Debug, Clone)]
pub struct Generation {
    /// One answer (or error) per prompt, in order.
    pub answers: Vec<Result<Completion, ModelError>>,
    /// Seconds the whole batch run took.
    pub wall_secs: f64,
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
