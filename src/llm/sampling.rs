//! Choosing the next token from a row of logits: greedy, or seeded
//! temperature / nucleus (top-p) sampling.
//!
//! Every request owns its random stream (ChaCha8 seeded with the request's
//! seed) and draws exactly one number per sampled token, so a request's
//! tokens do not depend on which other requests share its batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::LlmError;

/// How to pick tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; `0.0` means greedy (argmax).
    pub temperature: f32,
    /// Nucleus mass in `(0, 1]`; `1.0` samples from the whole distribution.
    pub top_p: f32,
    /// Seed of this request's random stream (unused when greedy).
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }

    /// Whether these settings pick the argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Rejects a negative or non-finite temperature and a `top_p` outside `(0, 1]`.
    pub fn validate(&self) -> Result<(), LlmError> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(LlmError::Generation(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LlmError::Generation(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Tokens sorted first when looking for the nucleus (widened as needed).
const NUCLEUS_CANDIDATES: usize = 64;

/// Index of the largest logit; NaN entries are skipped and ties go to the
/// lowest index. `None` when there is no comparable entry.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.and_then(|(i, _)| u32::try_from(i).ok())
}

/// `log_softmax` of a logit row, computed in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    let max = f64::from(max);
    let sum: f64 = logits.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&v| f64::from(v) - lse).collect()
}

/// Picks tokens for one request.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
    weights: Vec<f64>,
    order: Vec<u32>,
}

impl Sampler {
    /// A sampler with its own random stream seeded from `params.seed`.
    pub fn new(params: SamplingParams) -> Result<Self, LlmError> {
        params.validate()?;
        Ok(Self {
            params,
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            weights: Vec::new(),
            order: Vec::new(),
        })
    }

    /// The settings in use.
    pub fn params(&self) -> SamplingParams {
        self.params
    }

    /// The next token for a row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, LlmError> {
        let no_token = || LlmError::Generation("logits have no finite entry to sample".into());
        let best = argmax(logits).ok_or_else(no_token)?;
        if self.params.is_greedy() {
            return Ok(best);
        }
        let max = f64::from(logits[best as usize]);
        if !max.is_finite() {
            return Err(no_token());
        }
        let inv_t = 1.0 / f64::from(self.params.temperature);
        self.weights.clear();
        self.weights.extend(logits.iter().map(|&v| {
            let w = ((f64::from(v) - max) * inv_t).exp();
            if w.is_nan() { 0.0 } else { w }
        }));
        let total: f64 = self.weights.iter().sum();
        // One draw per token, whatever the branch, keeps streams aligned.
        let u: f64 = self.rng.random::<f64>();
        if self.params.top_p >= 1.0 {
            let mut target = u * total;
            for (i, &w) in self.weights.iter().enumerate() {
                if target < w {
                    return Ok(i as u32);
                }
                target -= w;
            }
            return Ok(best);
        }
        // Nucleus: the most likely tokens, in order, until their mass reaches
        // top_p. Only the head of the distribution is sorted: the top
        // `candidates` tokens are selected in linear time and the set widens
        // until it holds the nucleus (the result equals a full sort's).
        let weights = &self.weights;
        let threshold = f64::from(self.params.top_p) * total;
        let by_weight = |a: &u32, b: &u32| {
            weights[*b as usize]
                .total_cmp(&weights[*a as usize])
                .then(a.cmp(b))
        };
        let positive = weights.iter().filter(|&&w| w > 0.0).count();
        let mut candidates = NUCLEUS_CANDIDATES.min(positive);
        let (kept, kept_mass) = loop {
            self.order.clear();
            self.order
                .extend((0..weights.len() as u32).filter(|&i| weights[i as usize] > 0.0));
            if candidates < self.order.len() && candidates > 0 {
                self.order.select_nth_unstable_by(candidates - 1, by_weight);
                self.order.truncate(candidates);
            }
            self.order.sort_unstable_by(by_weight);
            let mut mass = 0.0;
            let mut count = 0;
            for &i in &self.order {
                mass += weights[i as usize];
                count += 1;
                if mass >= threshold {
                    break;
                }
            }
            if mass >= threshold || candidates >= positive {
                break (count, mass);
            }
            candidates = (candidates * 8).min(positive);
        };
        let mut target = u * kept_mass;
        for &i in &self.order[..kept] {
            let w = weights[i as usize];
            if target < w {
                return Ok(i);
            }
            target -= w;
        }
        Ok(self.order.first().copied().unwrap_or(best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            seed,
        }
    }

    #[test]
    fn argmax_skips_nan_and_prefers_first_tie() {
        assert_eq!(argmax(&[0.5, f32::NAN, 2.0, 2.0]), Some(2));
        assert_eq!(argmax(&[f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -1.0]), Some(1));
    }

    #[test]
    fn log_softmax_matches_closed_form() {
        // log_softmax([0, ln 3]) = [ln(1/4), ln(3/4)].
        let out = log_softmax(&[0.0, 3.0f32.ln()]);
        assert!((out[0] - 0.25f64.ln()).abs() < 1e-7);
        assert!((out[1] - 0.75f64.ln()).abs() < 1e-7);
    }

    #[test]
    fn greedy_ignores_the_seed() {
        let logits = [0.1, 0.7, 0.3];
        for seed in 0..5 {
            let mut s = Sampler::new(params(0.0, 1.0, seed)).unwrap();
            assert_eq!(s.sample(&logits).unwrap(), 1);
        }
    }

    #[test]
    fn same_seed_same_tokens_and_frequencies_follow_softmax() {
        let logits = [0.0f32, 1.0, 2.0];
        let draw = |seed| {
            let mut s = Sampler::new(params(1.0, 1.0, seed)).unwrap();
            (0..20_000)
                .map(|_| s.sample(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        // softmax([0,1,2]) = [0.0900, 0.2447, 0.6652] (exp(k)/(1+e+e^2)).
        let expected = [0.090_030_57, 0.244_728_47, 0.665_240_96];
        for (k, p) in expected.iter().enumerate() {
            let freq = a.iter().filter(|&&t| t == k as u32).count() as f64 / a.len() as f64;
            // 20,000 draws: standard error <= 0.0034; allow 5 of them.
            assert!((freq - p).abs() < 0.017, "token {k}: {freq} vs {p}");
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // Probabilities 0.6652, 0.2447, 0.0900: top_p 0.5 keeps only the top token,
        // top_p 0.8 keeps the top two.
        let logits = [0.0f32, 1.0, 2.0];
        let mut s = Sampler::new(params(1.0, 0.5, 3)).unwrap();
        assert!((0..500).all(|_| s.sample(&logits).unwrap() == 2));
        let mut s = Sampler::new(params(1.0, 0.8, 3)).unwrap();
        let draws: Vec<u32> = (0..2000).map(|_| s.sample(&logits).unwrap()).collect();
        assert!(draws.iter().all(|&t| t != 0));
        assert!(draws.contains(&1) && draws.contains(&2));
    }

    /// Straightforward nucleus sampling (full sort) on the same random stream.
    fn reference_nucleus(logits: &[f32], t: f64, top_p: f64, rng: &mut ChaCha8Rng) -> u32 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let w: Vec<f64> = logits
            .iter()
            .map(|&v| ((v as f64 - max) / t).exp())
            .collect();
        let total: f64 = w.iter().sum();
        let u: f64 = rng.random::<f64>();
        let mut order: Vec<usize> = (0..w.len()).collect();
        order.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
        let (mut mass, mut kept) = (0.0, 0);
        for &i in &order {
            mass += w[i];
            kept += 1;
            if mass >= top_p * total {
                break;
            }
        }
        let mut target = u * mass;
        for &i in &order[..kept] {
            if target < w[i] {
                return i as u32;
            }
            target -= w[i];
        }
        order[0] as u32
    }

    #[test]
    fn partial_nucleus_selection_equals_full_sort() {
        // A flat-ish distribution over 5000 tokens: the 0.95 nucleus holds
        // thousands of tokens, so the candidate set has to widen.
        let mut noise = ChaCha8Rng::seed_from_u64(1);
        let logits: Vec<f32> = (0..5000).map(|_| noise.random::<f32>() * 3.0).collect();
        for (t, top_p) in [(1.0f32, 0.95f32), (0.7, 0.5), (1.3, 0.99), (0.2, 0.9)] {
            let mut s = Sampler::new(params(t, top_p, 9)).unwrap();
            let mut reference_rng = ChaCha8Rng::seed_from_u64(9);
            for _ in 0..200 {
                let want = reference_nucleus(&logits, t as f64, top_p as f64, &mut reference_rng);
                assert_eq!(s.sample(&logits).unwrap(), want, "t {t} top_p {top_p}");
            }
        }
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(Sampler::new(params(-1.0, 1.0, 0)).is_err());
        assert!(Sampler::new(params(f32::NAN, 1.0, 0)).is_err());
        assert!(Sampler::new(params(1.0, 0.0, 0)).is_err());
        assert!(Sampler::new(params(1.0, 1.5, 0)).is_err());
        let mut s = Sampler::new(params(1.0, 1.0, 0)).unwrap();
        assert!(s.sample(&[f32::NAN, f32::NAN]).is_err());
    }
}
