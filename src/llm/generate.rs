//! Batched generation with a KV cache, and log-likelihood scoring.
//!
//! A batch of prompts of different lengths is left-padded into one block
//! and prefilled in a single forward, which computes only the real tokens
//! once the block has enough of them ([`LlamaDecoder::forward_prompts`]);
//! then every active sequence advances one token per step, reusing the
//! cache. Each sequence's positions start at 0 on its first real token and
//! padding is masked, so a prompt gets the same tokens alone or in any
//! batch (up to float rounding of the batched matmuls). Finished sequences
//! are dropped from the cache, so they stop costing compute.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use burn::tensor::activation::log_softmax as log_softmax_tensor;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::batch::common_prefix_len;
use super::config::LlamaConfig;
use super::decoder::{LlamaDecoder, PAD_ID};
use super::error::LlmError;
use super::kv_cache::KvCache;
use super::sampling::{Sampler, SamplingParams, log_softmax};
use super::tokenizer::TextTokenizer;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop sequence was produced (and cut from the text).
    Stop,
    /// The model emitted its end-of-sequence token.
    Eos,
    /// `max_tokens` was reached.
    Length,
}

/// Generated-token columns preallocated in the KV cache before it has to grow.
const INITIAL_NEW_COLUMNS: usize = 64;

/// One prompt to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// Prompt token ids (BOS included if the model wants one).
    pub prompt: Vec<u32>,
    /// Upper bound on generated tokens (an EOS token counts as one).
    pub max_new_tokens: usize,
    /// Generation stops at the first occurrence of any of these strings in
    /// the generated text, which is cut before it.
    pub stop: Vec<String>,
    /// Greedy or seeded sampling.
    pub sampling: SamplingParams,
}

/// What one request produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    /// Every generated token id, including a final EOS and the tokens that
    /// completed a stop string.
    pub tokens: Vec<u32>,
    /// Decoded text of the generated tokens, without a final EOS and cut
    /// before the first stop string.
    pub text: String,
    /// Why generation ended.
    pub finish: FinishReason,
    /// Number of prompt tokens.
    pub prompt_tokens: usize,
    /// From the start of the batch to this request's first token (`None`
    /// when no token was generated).
    pub time_to_first_token: Option<Duration>,
    /// From the start of the batch to this request's last token.
    pub total_time: Duration,
}

/// New tokens a request may generate: `max_new_tokens`, capped so prompt
/// plus completion fits the model's position table.
fn token_limit(config: &LlamaConfig, request: &GenerateRequest) -> usize {
    request
        .max_new_tokens
        .min(config.context_length().saturating_sub(request.prompt.len()))
}

/// Checks a request against the model: a non-empty prompt of in-vocabulary
/// ids that fits the context, non-empty stop strings, valid sampling.
pub fn check_request(config: &LlamaConfig, request: &GenerateRequest) -> Result<(), LlmError> {
    if request.prompt.is_empty() {
        return Err(LlmError::Generation(
            "the prompt has no tokens (and the tokenizer adds no BOS)".into(),
        ));
    }
    if request.prompt.len() > config.context_length() {
        return Err(LlmError::Generation(format!(
            "the prompt has {} tokens, more than the model's context of {}",
            request.prompt.len(),
            config.context_length()
        )));
    }
    if let Some(&bad) = request
        .prompt
        .iter()
        .find(|&&id| id as usize >= config.vocab_size)
    {
        return Err(LlmError::Generation(format!(
            "prompt token id {bad} is outside the model's vocabulary of {}",
            config.vocab_size
        )));
    }
    if request.stop.iter().any(String::is_empty) {
        return Err(LlmError::Generation("a stop string is empty".into()));
    }
    request.sampling.validate()
}

/// One sequence being generated.
struct Sequence {
    request: usize,
    sampler: Sampler,
    limit: usize,
    tokens: Vec<u32>,
    finish: Option<FinishReason>,
    stopped_text: Option<String>,
    first: Option<Duration>,
    total: Duration,
}

/// Generates a continuation for every request, batched. Fails as a whole
/// only for an invalid request (see [`check_request`], the error names the
/// request) or a backend failure.
pub fn generate(
    decoder: &LlamaDecoder,
    tokenizer: &TextTokenizer,
    requests: &[GenerateRequest],
) -> Result<Vec<Generated>, LlmError> {
    generate_with(decoder, tokenizer, requests, &mut PrefixMemo::default())
}

/// The prefilled one-row KV cache of the last batch's shared prompt prefix,
/// kept for the next batch: the batches of one prefix group (a category's
/// instructions and few-shot examples) then prefill it once between them.
/// A batch whose shared prefix differs in any token prefills its own and
/// replaces it. The values are those a fresh prefill computes, bit for bit.
#[derive(Debug, Default)]
pub struct PrefixMemo {
    tokens: Vec<u32>,
    cache: Option<KvCache>,
}

impl PrefixMemo {
    /// Tokens of the kept prefix (0 when none is kept).
    pub fn kept_tokens(&self) -> usize {
        self.cache.as_ref().map_or(0, |_| self.tokens.len())
    }

    /// The kept cache when it holds exactly `prefix`.
    fn get(&self, prefix: &[u32]) -> Option<KvCache> {
        self.cache
            .as_ref()
            .filter(|_| self.tokens == prefix)
            .cloned()
    }

    fn keep(&mut self, prefix: &[u32], cache: KvCache) {
        self.tokens = prefix.to_vec();
        self.cache = Some(cache);
    }
}

/// [`generate`], reusing `memo`'s prefilled prefix when this batch shares
/// the same one (a local model keeps one memo across its batches).
pub fn generate_with(
    decoder: &LlamaDecoder,
    tokenizer: &TextTokenizer,
    requests: &[GenerateRequest],
    memo: &mut PrefixMemo,
) -> Result<Vec<Generated>, LlmError> {
    let start = Instant::now();
    let config = decoder.config();
    for (i, request) in requests.iter().enumerate() {
        check_request(config, request)
            .map_err(|e| LlmError::Generation(format!("request {i}: {e}")))?;
    }
    let mut eos: Vec<u32> = tokenizer.eos.clone();
    eos.extend(config.eos_ids());
    let mut seqs = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Sequence {
                request: i,
                sampler: Sampler::new(r.sampling)?,
                limit: token_limit(config, r),
                tokens: Vec::new(),
                finish: None,
                stopped_text: None,
                first: None,
                total: Duration::ZERO,
            })
        })
        .collect::<Result<Vec<_>, LlmError>>()?;
    for seq in seqs.iter_mut().filter(|s| s.limit == 0) {
        seq.finish = Some(FinishReason::Length);
    }
    let mut active: Vec<usize> = (0..seqs.len()).filter(|&i| seqs[i].limit > 0).collect();
    if !active.is_empty() {
        on_compute_pool(|| {
            let job = Job {
                decoder,
                tokenizer,
                requests,
                eos: &eos,
                start,
            };
            run_batch(&job, &mut seqs, &mut active, memo)
        })?;
    }
    seqs.into_iter()
        .map(|seq| finish_output(tokenizer, &requests[seq.request], &eos, seq))
        .collect()
}

/// Runs `f` on a worker thread of the compute pool (rayon, one thread per
/// core). The parallel kernels `f` starts (burn's and the quantized
/// products) then share the work with the calling thread; started from an
/// outside thread, every one of them (about 200 per decoded token) would be
/// handed to the pool and waited on, waking threads each time.
fn on_compute_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    match POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().build().ok()) {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// What a batch is generated with.
struct Job<'a> {
    decoder: &'a LlamaDecoder,
    tokenizer: &'a TextTokenizer,
    requests: &'a [GenerateRequest],
    eos: &'a [u32],
    /// When generation started (the latencies count from here).
    start: Instant,
}

/// Prefills the active sequences and decodes until all are finished.
fn run_batch(
    job: &Job<'_>,
    seqs: &mut [Sequence],
    active: &mut Vec<usize>,
    memo: &mut PrefixMemo,
) -> Result<(), LlmError> {
    let &Job {
        decoder,
        tokenizer,
        requests,
        eos,
        start,
    } = job;
    let prompts: Vec<&[u32]> = active
        .iter()
        .map(|&i| requests[seqs[i].request].prompt.as_slice())
        .collect();
    let shared = shared_prefix(&prompts);
    let width = prompts.iter().map(|p| p.len() - shared).max().unwrap_or(0);
    let most_new = active.iter().map(|&i| seqs[i].limit).max().unwrap_or(0);
    let pads: Vec<usize> = prompts.iter().map(|p| width - (p.len() - shared)).collect();
    let suffixes: Vec<&[u32]> = prompts.iter().map(|p| &p[shared..]).collect();
    // Room for the first tokens; the cache doubles if a sequence runs longer
    // (most stop well before max_new_tokens, so this saves memory and memset).
    let capacity = shared + width + most_new.min(INITIAL_NEW_COLUMNS);
    let mut cache = match prompts.first() {
        // The prefix every prompt shares (a category's instructions and
        // few-shot examples) is prefilled once (or taken from the previous
        // batch of its group) and its keys and values copied to every row;
        // each row then prefills only its own suffix.
        Some(first) if shared > 0 => {
            let prefix = &first[..shared];
            let mut cache = match memo.get(prefix) {
                Some(cache) => cache,
                None => {
                    let mut cache = decoder.new_cache(vec![0], capacity);
                    decoder.forward_cached(prefix, shared, &mut cache)?;
                    memo.keep(prefix, cache.clone());
                    cache
                }
            };
            cache.grow_to(capacity)?;
            cache.fork(pads)?;
            cache
        }
        _ => decoder.new_cache(pads, capacity),
    };
    let hidden = decoder.forward_prompts(&suffixes, &mut cache)?;
    let mut logits = last_logits(decoder, hidden)?;
    let config = decoder.config();
    let width = config.output_rows();
    loop {
        let now = start.elapsed();
        for (row, &i) in active.iter().enumerate() {
            let row_logits = logits
                .get(row * width..(row + 1) * width)
                .ok_or_else(|| LlmError::Generation(format!("logits for row {row} are missing")))?;
            let seq = &mut seqs[i];
            let token = config.output_token(seq.sampler.sample(row_logits)? as usize);
            seq.first.get_or_insert(now);
            seq.tokens.push(token);
            advance(tokenizer, &requests[seq.request].stop, eos, seq)?;
            if seq.finish.is_some() {
                seq.total = start.elapsed();
            }
        }
        let keep: Vec<usize> = (0..active.len())
            .filter(|&row| seqs[active[row]].finish.is_none())
            .collect();
        if keep.is_empty() {
            return Ok(());
        }
        if keep.len() < active.len() {
            cache.select_rows(&keep)?;
            *active = keep.iter().map(|&row| active[row]).collect();
        }
        let step: Vec<u32> = active
            .iter()
            .map(|&i| seqs[i].tokens.last().copied().unwrap_or(PAD_ID))
            .collect();
        let hidden = decoder.forward_cached(&step, 1, &mut cache)?;
        logits = last_logits(decoder, hidden)?;
    }
}

/// Fewest shared leading tokens worth a prefill of their own: below this
/// the second forward costs more than the tokens it saves.
pub const MIN_SHARED_PREFIX: usize = 16;

/// Leading tokens every prompt of a batch of two or more shares, when at
/// least [`MIN_SHARED_PREFIX`]; at most the shortest prompt's length minus
/// one, so every row keeps a token of its own to predict from. 0 otherwise.
fn shared_prefix(prompts: &[&[u32]]) -> usize {
    let [first, rest @ ..] = prompts else {
        return 0;
    };
    if rest.is_empty() {
        return 0;
    }
    let common = rest
        .iter()
        .fold(first.len(), |n, p| common_prefix_len(&first[..n], p));
    let shortest = prompts.iter().map(|p| p.len()).min().unwrap_or(0);
    let shared = common.min(shortest.saturating_sub(1));
    if shared >= MIN_SHARED_PREFIX {
        shared
    } else {
        0
    }
}

/// Updates a sequence after its newest token: EOS, stop strings, length.
fn advance(
    tokenizer: &TextTokenizer,
    stop: &[String],
    eos: &[u32],
    seq: &mut Sequence,
) -> Result<(), LlmError> {
    let Some(&last) = seq.tokens.last() else {
        return Ok(());
    };
    if eos.contains(&last) {
        seq.finish = Some(FinishReason::Eos);
        return Ok(());
    }
    if !stop.is_empty() {
        let text = tokenizer.decode(&seq.tokens)?;
        if let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            seq.stopped_text = Some(text[..cut].to_string());
            seq.finish = Some(FinishReason::Stop);
            return Ok(());
        }
    }
    if seq.tokens.len() >= seq.limit {
        seq.finish = Some(FinishReason::Length);
    }
    Ok(())
}

fn finish_output(
    tokenizer: &TextTokenizer,
    request: &GenerateRequest,
    eos: &[u32],
    seq: Sequence,
) -> Result<Generated, LlmError> {
    let finish = seq.finish.unwrap_or(FinishReason::Length);
    let text = match seq.stopped_text {
        Some(text) => text,
        None => {
            let body = match seq.tokens.split_last() {
                Some((last, body)) if eos.contains(last) => body,
                _ => &seq.tokens[..],
            };
            tokenizer.decode(body)?
        }
    };
    Ok(Generated {
        tokens: seq.tokens,
        text,
        finish,
        prompt_tokens: request.prompt.len(),
        time_to_first_token: seq.first,
        total_time: seq.total,
    })
}

/// Logits of the last column of `hidden` (`[rows, cols, hidden]`), on the
/// host, row-major `[rows, vocab]`.
fn last_logits(decoder: &LlamaDecoder, hidden: Tensor<3>) -> Result<Vec<f32>, LlmError> {
    let [rows, cols, width] = hidden.dims();
    let last = hidden
        .slice([0..rows, cols - 1..cols, 0..width])
        .reshape([rows, width]);
    to_host(decoder.logits(last))
}

fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, LlmError> {
    t.try_into_data()
        .map_err(|e| LlmError::Generation(format!("reading logits: {e:?}")))?
        .try_into_vec_as::<f32>()
        .map_err(|e| LlmError::Generation(format!("reading logits: {e:?}")))
}

/// Sum of the log-probabilities of each continuation's tokens given the
/// prompt (multiple-choice scoring). The prompt is run once; its cache is
/// then shared by all continuations, which are scored in one batch. An
/// empty continuation scores 0.
pub fn loglikelihood(
    decoder: &LlamaDecoder,
    prompt: &[u32],
    continuations: &[Vec<u32>],
) -> Result<Vec<f64>, LlmError> {
    if continuations.is_empty() {
        return Ok(Vec::new());
    }
    let config = decoder.config();
    let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
    let probe = GenerateRequest {
        prompt: prompt.to_vec(),
        max_new_tokens: 0,
        stop: Vec::new(),
        sampling: SamplingParams::greedy(),
    };
    check_request(config, &probe)?;
    if prompt.len() + longest > config.context_length() {
        return Err(LlmError::Generation(format!(
            "prompt ({}) plus continuation ({longest}) tokens exceed the model's context of {}",
            prompt.len(),
            config.context_length()
        )));
    }
    let vocab = config.vocab_size;
    if let Some(&bad) = continuations
        .iter()
        .flatten()
        .find(|&&t| t as usize >= vocab)
    {
        return Err(LlmError::Generation(format!(
            "continuation token id {bad} is outside the model's vocabulary of {vocab}"
        )));
    }
    let mut cache = decoder.new_cache(vec![0], prompt.len() + longest);
    let hidden = decoder.forward_cached(prompt, prompt.len(), &mut cache)?;
    // A token the output layer has no row for (a model restricted to a
    // task vocabulary) has probability 0.
    let logp_of =
        |logp: &[f64], t: u32| config.output_row(t).map_or(f64::NEG_INFINITY, |r| logp[r]);
    let first = log_softmax(&last_logits(decoder, hidden)?);
    let mut scores: Vec<f64> = continuations
        .iter()
        .map(|c| c.first().map_or(0.0, |&t| logp_of(&first, t)))
        .collect();
    // Tokens after the first are predicted from the continuation itself.
    let rows: Vec<usize> = (0..continuations.len())
        .filter(|&i| continuations[i].len() >= 2)
        .collect();
    if rows.is_empty() {
        return Ok(scores);
    }
    let width = longest - 1;
    let mut inputs = Vec::with_capacity(rows.len() * width);
    let mut targets = Vec::with_capacity(rows.len() * width);
    for &i in &rows {
        let c = &continuations[i];
        for k in 0..width {
            inputs.push(c.get(k).copied().unwrap_or(PAD_ID));
            let target = c.get(k + 1).copied().unwrap_or(PAD_ID);
            targets.push(config.output_row(target).unwrap_or(0) as i64);
        }
    }
    cache.select_rows(&vec![0; rows.len()])?;
    let hidden = decoder.forward_cached(&inputs, width, &mut cache)?;
    let logp = log_softmax_tensor(decoder.logits(hidden), 2);
    let index = Tensor::<3, Int>::from_data(
        TensorData::new(targets, [rows.len(), width, 1]),
        &decoder.device(),
    );
    let picked = to_host(logp.gather(2, index))?;
    for (r, &i) in rows.iter().enumerate() {
        let n = continuations[i].len() - 1;
        let row = picked.get(r * width..r * width + n).ok_or_else(|| {
            LlmError::Generation("log-probabilities of a continuation are missing".into())
        })?;
        scores[i] += row
            .iter()
            .zip(&continuations[i][1..])
            .map(|(&v, &t)| match config.output_row(t) {
                Some(_) => f64::from(v),
                None => f64::NEG_INFINITY,
            })
            .sum::<f64>();
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefix_needs_two_prompts_and_leaves_each_a_token() {
        let long: Vec<u32> = (0..40).collect();
        let mut other = long.clone();
        other[30] = 999;
        assert_eq!(shared_prefix(&[&long, &other]), 30);
        assert_eq!(shared_prefix(&[&long]), 0, "one prompt shares nothing");
        assert_eq!(
            shared_prefix(&[&long, &long]),
            39,
            "identical prompts keep a token"
        );
        assert_eq!(shared_prefix(&[&long[..10], &long]), 0, "below the minimum");
        assert_eq!(shared_prefix(&[&long, &other, &[7, 8][..]]), 0);
    }
}
