//! Rotary position embedding in the Hugging Face "rotate-half" layout.
//!
//! A head vector `x` of width `d` is split into halves `x1 = x[..d/2]` and
//! `x2 = x[d/2..]`; frequency `i` rotates the pair `(x1[i], x2[i])` by the
//! angle `position * theta^(-2i/d)`:
//!
//! ```text
//! out[i]       = x1[i] * cos - x2[i] * sin
//! out[i + d/2] = x2[i] * cos + x1[i] * sin
//! ```
//!
//! which is `x * cos + rotate_half(x) * sin` with `rotate_half(x) = [-x2, x1]`.
//! Hugging Face Llama checkpoints store q_proj/k_proj rows for exactly this
//! layout, so no permutation is needed. Angles are computed on the host, per
//! sequence position, so every sequence of a left-padded batch starts at
//! position 0 whatever its padding.

use burn::tensor::{Device, Tensor, TensorData};

use super::config::{LlamaConfig, RopeScaling};
use super::fused;

/// Cosines and signed sines for a block of positions, ready to apply to
/// `[batch, heads, seq, head_dim]` tensors.
#[derive(Debug, Clone)]
pub struct RopeAngles {
    /// `[batch, 1, seq, head_dim]`: `cos` repeated over both halves.
    cos: Tensor<4>,
    /// `[batch, 1, seq, head_dim]`: `-sin` on the first half, `+sin` on the second.
    sin_signed: Tensor<4>,
    half: usize,
}

/// Inverse frequencies `theta^(-2i/d)` for `i < d/2`, computed in f32 the
/// way Hugging Face `LlamaRotaryEmbedding` does, so angles match the
/// reference implementation the checkpoints were trained with.
pub fn inverse_frequencies(head_dim: usize, theta: f64) -> Vec<f32> {
    let base = theta as f32;
    (0..head_dim / 2)
        .map(|i| 1.0f32 / base.powf((2 * i) as f32 / head_dim as f32))
        .collect()
}

/// The inverse frequencies of `config`'s rotary embedding: plain
/// [`inverse_frequencies`], rescaled when the config says so: Llama 3's
/// settings as transformers' `_compute_llama3_parameters` does (step by
/// step in f32), per-frequency divisors as llama.cpp applies them.
pub fn config_frequencies(config: &LlamaConfig) -> Vec<f32> {
    let mut inv_freq = inverse_frequencies(config.head_dim(), config.rope_theta);
    match &config.rope_scaling {
        None => {}
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => llama3_rescale(
            &mut inv_freq,
            *factor as f32,
            (*low_freq_factor as f32, *high_freq_factor as f32),
            *original_max_position_embeddings as f32,
        ),
        Some(RopeScaling::FrequencyDivisors { divisors }) => {
            for (f, d) in inv_freq.iter_mut().zip(divisors) {
                *f /= d;
            }
        }
    }
    inv_freq
}

/// The per-frequency divisors of `config`'s rescaling, as llama.cpp's
/// converter computes them for `rope_freqs.weight` (`1`, `factor`, or
/// `1 / ((1 - smooth) / factor + smooth)` in the interpolated band, from
/// the plain f32 frequencies, in f64); `None` for plain RoPE.
pub fn frequency_divisors(config: &LlamaConfig) -> Option<Vec<f32>> {
    match config.rope_scaling.as_ref()? {
        RopeScaling::FrequencyDivisors { divisors } => Some(divisors.clone()),
        &RopeScaling::Llama3 {
            factor,
            low_freq_factor: low,
            high_freq_factor: high,
            original_max_position_embeddings,
        } => {
            let old_context = original_max_position_embeddings as f64;
            let (low_wavelen, high_wavelen) = (old_context / low, old_context / high);
            let plain = inverse_frequencies(config.head_dim(), config.rope_theta);
            Some(
                plain
                    .iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f64::from(f);
                        let divisor = if wavelen < high_wavelen {
                            1.0
                        } else if wavelen > low_wavelen {
                            factor
                        } else {
                            let smooth = (old_context / wavelen - low) / (high - low);
                            1.0 / ((1.0 - smooth) / factor + smooth)
                        };
                        divisor as f32
                    })
                    .collect(),
            )
        }
    }
}

/// Llama 3's rescaling: wavelengths above `old_context / low` are divided
/// by `factor`, below `old_context / high` kept, and smoothly interpolated
/// in between.
fn llama3_rescale(inv_freq: &mut [f32], factor: f32, (low, high): (f32, f32), old_context: f32) {
    let low_freq_wavelen = old_context / low;
    let high_freq_wavelen = old_context / high;
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    for f in inv_freq.iter_mut() {
        let wavelen = two_pi / *f;
        let scaled = if wavelen > low_freq_wavelen {
            *f / factor
        } else {
            *f
        };
        *f = if wavelen < high_freq_wavelen || wavelen > low_freq_wavelen {
            scaled
        } else {
            let smooth = (old_context / wavelen - low) / (high - low);
            (1.0 - smooth) * scaled / factor + smooth * scaled
        };
    }
}

impl RopeAngles {
    /// Angles for a `[batch, seq]` block whose position ids are given row-major
    /// (`positions.len() == batch * seq`).
    ///
    /// The caller guarantees `head_dim` is even and `positions.len() == batch * seq`
    /// (the decoder validates its configuration once, at construction).
    pub fn new(
        positions: &[usize],
        batch: usize,
        seq: usize,
        inv_freq: &[f32],
        device: &Device,
    ) -> Self {
        let half = inv_freq.len();
        let head_dim = 2 * half;
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        let mut row_cos = vec![0.0f32; half];
        let mut row_sin = vec![0.0f32; half];
        for &pos in positions {
            for (i, &f) in inv_freq.iter().enumerate() {
                // The product is rounded to f32 as in the reference; cos/sin of
                // that f32 angle are then taken exactly.
                let angle = f64::from(pos as f32 * f);
                row_cos[i] = angle.cos() as f32;
                row_sin[i] = angle.sin() as f32;
            }
            cos.extend_from_slice(&row_cos);
            cos.extend_from_slice(&row_cos);
            sin.extend(row_sin.iter().map(|s| -s));
            sin.extend_from_slice(&row_sin);
        }
        let shape = [batch, 1, seq, head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin_signed: Tensor::from_data(TensorData::new(sin, shape), device),
            half,
        }
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]`.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        if fused::fused(&x.device(), x.dtype()) {
            return fused::rope(x, self.cos.clone(), self.sin_signed.clone());
        }
        self.apply_composed(x)
    }

    /// Rotates `x` in the token-major layout of the fused packed forward,
    /// `[tokens, heads, 1, head_dim]`, the angles being those of a `[1,
    /// tokens]` block: read as a batch of `tokens` sequences of one
    /// position each, the fused rotation needs no transposed copy.
    pub(crate) fn apply_token_major(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, seq, d] = self.cos.dims();
        debug_assert_eq!(x.dims()[0], seq);
        let angles = |t: &Tensor<4>| t.clone().reshape([seq, 1, 1, d]);
        fused::rope(x, angles(&self.cos), angles(&self.sin_signed))
    }

    /// [`RopeAngles::apply`] from burn's own operations (slices, `cat`,
    /// products), whatever the device.
    pub(crate) fn apply_composed(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, s, d] = x.dims();
        let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..self.half]);
        let x2 = x.clone().slice([0..b, 0..h, 0..s, self.half..d]);
        let swapped = Tensor::cat(vec![x2, x1], 3);
        x * self.cos.clone() + swapped * self.sin_signed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Backend;

    /// Hand computation for head_dim 4, theta 10000, position 1:
    /// inverse frequencies are 10000^0 = 1 and 10000^(-1/2) = 0.01, so
    /// x = [1, 2, 3, 4] rotates the pairs (1, 3) by 1 rad and (2, 4) by 0.01 rad:
    /// out = [1 cos1 - 3 sin1, 2 cos.01 - 4 sin.01, 3 cos1 + 1 sin1, 4 cos.01 + 2 sin.01]
    ///     = [-1.98411065, 1.95990067, 2.46237790, 4.01979967]
    /// (evaluated with Python's math.cos / math.sin in f64).
    #[test]
    fn matches_hand_computed_rotate_half() {
        for backend in Backend::ALL {
            let device = backend.device();
            let angles = RopeAngles::new(&[1], 1, 1, &inverse_frequencies(4, 10_000.0), &device);
            let x = Tensor::<4>::from_data(
                TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 1, 4]),
                &device,
            );
            let out: Vec<f32> = angles.apply(x).into_data().iter::<f32>().collect();
            let expected = [-1.984_110_6f32, 1.959_900_7, 2.462_378, 4.019_799_7];
            for (o, e) in out.iter().zip(expected) {
                assert!((o - e).abs() < 1e-5, "{backend}: {out:?} vs {expected:?}");
            }
        }
    }

    #[test]
    fn position_zero_is_identity_and_rows_use_their_own_positions() {
        let device = Backend::Flex.device();
        // Two rows, two positions each: row 0 at positions [0, 0], row 1 at [0, 3].
        let angles = RopeAngles::new(
            &[0, 0, 0, 3],
            2,
            2,
            &inverse_frequencies(2, 10_000.0),
            &device,
        );
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5],
                [2, 1, 2, 2],
            ),
            &device,
        );
        let out: Vec<f32> = angles.apply(x).into_data().iter::<f32>().collect();
        // Positions 0 leave the vector unchanged.
        assert_eq!(&out[0..6], &[1.0, 0.5, 1.0, 0.5, 1.0, 0.5]);
        // Position 3, head_dim 2: a plain 2-D rotation of (1, 0.5) by 3 rad.
        let (c, s) = (3.0f64.cos() as f32, 3.0f64.sin() as f32);
        assert!((out[6] - (c - 0.5 * s)).abs() < 1e-6);
        assert!((out[7] - (0.5 * c + s)).abs() < 1e-6);
    }

    #[test]
    fn inverse_frequencies_follow_theta() {
        let f = inverse_frequencies(8, 10_000.0);
        let expected = [1.0f32, 0.1, 0.01, 0.001];
        for (a, b) in f.iter().zip(expected) {
            assert!((a - b).abs() <= 1e-6 * b, "{f:?}");
        }
    }
}
