//! A local checkpoint run by the burn decoder, behind the [`Model`] trait.

use std::time::Instant;

use super::batching::length_batches;
use super::{
    Completion, GenerationRequest, Latency, LatencySource, Model, ModelError, ModelIdentity, Usage,
};
use crate::llm::decoder::LlamaDecoder;
use crate::llm::device::Backend;
use crate::llm::generate::{
    GenerateRequest, MIN_SHARED_PREFIX, PrefixMemo, check_request, generate_with, loglikelihood,
};
use crate::llm::sampling::SamplingParams;
use crate::llm::{LlamaConfig, LlmError, TextTokenizer, Weights};

/// Default number of requests decoded together.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// Batches a local model is handed at once (see `preferred_batch_size`).
const REQUEST_WINDOW: usize = 4;

/// A Llama-family checkpoint answering requests locally.
#[derive(Debug)]
pub struct LocalModel {
    name: String,
    fingerprint: String,
    decoder: LlamaDecoder,
    tokenizer: TextTokenizer,
    backend: Backend,
    batch_size: usize,
    /// The last batch's prefilled prompt prefix, for the next batch of its group.
    prefix: PrefixMemo,
}

impl LocalModel {
    /// Builds the decoder from `weights` on `backend`. `fingerprint` (a
    /// content hash of the checkpoint, computed by the caller) goes into the
    /// model identity unchanged.
    pub fn new(
        name: impl Into<String>,
        fingerprint: impl Into<String>,
        config: LlamaConfig,
        weights: Weights,
        tokenizer: TextTokenizer,
        backend: Backend,
    ) -> Result<Self, LlmError> {
        let decoder = LlamaDecoder::from_weights_owned(&config, weights, &backend.device())?;
        Ok(Self::from_decoder(
            name,
            fingerprint,
            decoder,
            tokenizer,
            backend,
        ))
    }

    /// Wraps an already built decoder (e.g. a student fresh from training)
    /// that lives on `backend`'s device.
    pub fn from_decoder(
        name: impl Into<String>,
        fingerprint: impl Into<String>,
        decoder: LlamaDecoder,
        tokenizer: TextTokenizer,
        backend: Backend,
    ) -> Self {
        Self {
            name: name.into(),
            fingerprint: fingerprint.into(),
            decoder,
            tokenizer,
            backend,
            batch_size: DEFAULT_BATCH_SIZE,
            prefix: PrefixMemo::default(),
        }
    }

    /// Sets how many requests are decoded together (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The decoder.
    pub fn decoder(&self) -> &LlamaDecoder {
        &self.decoder
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The backend the decoder runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Log-likelihood of each choice as a continuation of `prompt` (wrapped
    /// in the chat template when `chat`), for multiple-choice scoring.
    ///
    /// A choice's tokens are the ones the tokenizer gives `prompt + choice`
    /// after the prompt's own tokens, so a merge across the boundary is
    /// scored the way the model would read it; when the prompt's tokens are
    /// not a prefix of that joint encoding, the choice is encoded alone.
    pub fn score_choices(
        &self,
        prompt: &str,
        choices: &[String],
        chat: bool,
    ) -> Result<Vec<f64>, LlmError> {
        let text = if chat {
            self.tokenizer.chat_prompt(prompt)
        } else {
            prompt.to_string()
        };
        let prompt_ids = self.tokenizer.encode(&text)?;
        let mut continuations = Vec::with_capacity(choices.len());
        for choice in choices {
            let joint = self.tokenizer.encode(&format!("{text}{choice}"))?;
            let ids = match joint.strip_prefix(prompt_ids.as_slice()) {
                Some(rest) => rest.to_vec(),
                None => {
                    let mut alone = self.tokenizer.encode(choice)?;
                    if self.tokenizer.add_bos
                        && self.tokenizer.bos.is_some()
                        && alone.first() == self.tokenizer.bos.as_ref()
                    {
                        alone.remove(0);
                    }
                    alone
                }
            };
            continuations.push(ids);
        }
        loglikelihood(&self.decoder, &prompt_ids, &continuations)
    }

    /// Tokenizes one request (through the chat template when asked).
    fn prepare(&self, request: &GenerationRequest) -> Result<GenerateRequest, LlmError> {
        let settings = &request.settings;
        let text = if settings.chat {
            self.tokenizer.chat_prompt(&request.prompt)
        } else {
            request.prompt.clone()
        };
        let prepared = GenerateRequest {
            prompt: self.tokenizer.encode(&text)?,
            max_new_tokens: settings.max_tokens,
            stop: settings.stop.clone(),
            sampling: SamplingParams {
                temperature: settings.temperature,
                top_p: settings.top_p,
                seed: settings.seed,
            },
        };
        check_request(self.decoder.config(), &prepared)?;
        Ok(prepared)
    }
}

impl Model for LocalModel {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            backend: "local".to_string(),
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        let mut results: Vec<Result<Completion, ModelError>> = requests
            .iter()
            .map(|r| Err(ModelError::Failed(format!("request {} was not run", r.id))))
            .collect();
        let mut ready: Vec<(usize, GenerateRequest)> = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            match self.prepare(request) {
                Ok(prepared) => ready.push((i, prepared)),
                Err(e) => results[i] = Err(ModelError::Failed(format!("{}: {e}", request.id))),
            }
        }
        // Prompts sharing a prefix (a category's instructions and few-shot
        // examples) batched together, each batch by similar length.
        let prompts: Vec<&[u32]> = ready.iter().map(|(_, r)| r.prompt.as_slice()).collect();
        for batch_rows in length_batches(&prompts, self.batch_size, MIN_SHARED_PREFIX) {
            let chunk: Vec<&(usize, GenerateRequest)> =
                batch_rows.iter().map(|&row| &ready[row]).collect();
            let batch: Vec<GenerateRequest> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let started = Instant::now();
            let outcome = generate_with(&self.decoder, &self.tokenizer, &batch, &mut self.prefix);
            let batch_ms = started.elapsed().as_secs_f64() * 1e3;
            match outcome {
                Ok(outputs) => {
                    for ((i, _), out) in chunk.iter().zip(outputs) {
                        results[*i] = Ok(Completion {
                            text: out.text,
                            usage: Usage {
                                prompt_tokens: out.prompt_tokens as u64,
                                completion_tokens: out.tokens.len() as u64,
                                cached_prompt_tokens: 0,
                                estimated: false,
                            },
                            latency: Some(Latency {
                                total_ms: out.total_time.as_secs_f64() * 1e3,
                                first_token_ms: out
                                    .time_to_first_token
                                    .map(|d| d.as_secs_f64() * 1e3),
                                batch_ms: Some(batch_ms),
                                batch_size: chunk.len(),
                                source: LatencySource::Live,
                            }),
                            finish: Some(out.finish),
                        });
                    }
                }
                Err(e) => {
                    for (i, _) in chunk {
                        let id = &requests[*i].id;
                        results[*i] = Err(ModelError::Failed(format!("{id}: {e}")));
                    }
                }
            }
        }
        results
    }

    /// Several batches' worth, so that the requests of a prefix group
    /// arrive together and can be batched by length within it.
    fn preferred_batch_size(&self) -> usize {
        self.batch_size.saturating_mul(REQUEST_WINDOW)
    }
}
