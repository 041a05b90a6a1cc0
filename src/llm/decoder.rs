//! The Llama-family decoder as a burn [`Module`]: token embedding, decoder
//! layers (RMSNorm, grouped-query attention with rotary positions, residual,
//! RMSNorm, SwiGLU MLP, residual), final RMSNorm and the LM head (or the
//! embedding, tied).
//!
//! Built from and exported to [`Weights`] under Hugging Face names and
//! shapes, so checkpoints move between this crate and the wider ecosystem.
//! Three forwards: [`LlamaDecoder::forward`] over a padded [`TokenBatch`]
//! (no cache, differentiable, for training and scoring),
//! [`LlamaDecoder::forward_cached`] (prefill and incremental decoding with a
//! [`KvCache`]) and [`LlamaDecoder::forward_prompts`] (a prefill of prompts
//! of unequal lengths that skips their padding).

use std::path::Path;
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::{Embedding, RmsNorm};
use burn::tensor::activation;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::attention::{Attention, PackedRows, Padding, attention_mask};
use super::batch::TokenBatch;
use super::config::LlamaConfig;
use super::error::LlmError;
use super::fused;
use super::kv_cache::KvCache;
use super::linear::{HfLinear, project, project_quantized};
use super::quant_matrix::{QuantMatrix, QuantWeights};
use super::ragged::Ragged;
use super::rope::{RopeAngles, config_frequencies};
use super::tensor_layout::{expected_tensors, validate_config, validate_weights};
use super::weights::{HostTensor, Weights};

/// Token id written into padding columns and fed where a row has no token
/// (inside every vocabulary; those columns are masked or never read, so its
/// value does not matter).
pub(crate) const PAD_ID: u32 = 0;

/// The fewest real tokens a prompt block needs to run packed
/// ([`LlamaDecoder::forward_prompts`]). Below it the block runs padded: the
/// gemm crate multiplies small products (at most 256 outputs, or both
/// sides at most 64) with kernels that sum in another order, so a packed
/// block that small could round differently from the padded one (with any
/// model's matrices, whatever their sizes), and it saves little anyway.
pub const RAGGED_MIN_TOKENS: usize = 257;

/// Label used as the "path" of errors about in-memory weights; checkpoint
/// readers wrap these errors with the file they read.
const WEIGHTS_LABEL: &str = "<weights>";

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[intermediate, hidden]`.
    pub gate_proj: HfLinear,
    /// `[intermediate, hidden]`.
    pub up_proj: HfLinear,
    /// `[hidden, intermediate]`.
    pub down_proj: HfLinear,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_fused_where(x, fused::fused)
    }

    /// [`Mlp::forward`] in the packed forward of training: the gate fused
    /// wherever [`fused::fused_packed`] allows, also without autodiff (the
    /// teacher's forward in token-level distillation).
    fn forward_packed(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_fused_where(x, fused::fused_packed)
    }

    /// The MLP, its gate `silu(gate) * up` fused where `fuse` says so.
    fn forward_fused_where(&self, x: Tensor<3>, fuse: fn(&Device, DType) -> bool) -> Tensor<3> {
        let gate = self.gate_proj.forward(x.clone());
        let up = self.up_proj.forward(x);
        let gated = if fuse(&gate.device(), gate.dtype()) {
            fused::silu_mul(gate, up)
        } else {
            silu(gate) * up
        };
        self.down_proj.forward(gated)
    }
}

/// SiLU, `x * sigmoid(x)`. On flex, outside autodiff, it runs on every
/// core: flex computes `sigmoid` on one thread, and its `exp` was 6% of a
/// student's forward with the other core idle. The formula is flex's own
/// (`sigmoid_f32` in burn-flex 0.22.1, then one multiply), so the values
/// are bit for bit those of `activation::silu`, which a test checks.
fn silu(x: Tensor<3>) -> Tensor<3> {
    let device = x.device();
    if x.is_require_grad() || device.is_autodiff() || device != Device::flex() {
        return activation::silu(x);
    }
    let shape = x.shape();
    let Ok(mut values) = x.clone().into_data().try_into_vec::<f32>() else {
        return activation::silu(x);
    };
    drop(x);
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            let s = if *v >= 0.0 {
                1.0 / (1.0 + (-*v).exp())
            } else {
                let e = v.exp();
                e / (1.0 + e)
            };
            *v *= s;
        }
    });
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Grouped-query self-attention.
    pub self_attn: Attention,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// SwiGLU feed-forward.
    pub mlp: Mlp,
}

impl DecoderLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        mask: Option<Tensor<4, burn::tensor::Bool>>,
        cache: Option<(&mut KvCache, usize)>,
        ragged: Option<&Ragged>,
    ) -> Result<Tensor<3>, LlmError> {
        let attended = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            rope,
            mask,
            cache,
            ragged,
        )?;
        let h = x + attended;
        Ok(h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h)))
    }
}

impl DecoderLayer {
    /// The layer over a packed batch (see [`Attention::forward_packed`]).
    fn forward_packed(&self, x: Tensor<3>, rope: &RopeAngles, packed: &PackedRows) -> Tensor<3> {
        let normed = fused::rms_norm(&self.input_layernorm, x.clone());
        let h = x + self.self_attn.forward_packed(normed, rope, packed);
        h.clone()
            + self
                .mlp
                .forward_packed(fused::rms_norm(&self.post_attention_layernorm, h))
    }
}

/// A Llama-family causal language model.
#[derive(Module, Debug)]
pub struct LlamaDecoder {
    /// Token embedding `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// The decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output projection `[vocab, hidden]`; `None` when tied to the embedding.
    pub lm_head: Option<HfLinear>,
    /// The tied embedding in a block-quantized format, when the checkpoint
    /// stored it so (the LM head's decode path; see [`HfLinear`]).
    #[module(skip)]
    tied_head: Option<Arc<QuantMatrix>>,
    #[module(skip)]
    config: LlamaConfig,
}

/// Hugging Face tensor names of one layer: `part`'s weight, or the
/// tensor `part` names itself when it ends in `.bias`.
fn layer_name(layer: usize, part: &str) -> String {
    if part.ends_with(".bias") {
        format!("model.layers.{layer}.{part}")
    } else {
        format!("model.layers.{layer}.{part}.weight")
    }
}

/// Random weights in Hugging Face layout: every matrix drawn from
/// `N(0, std^2)` (Box-Muller over a ChaCha8 stream seeded with `seed`),
/// norms set to 1. Deterministic across platforms and backends.
pub fn random_weights(config: &LlamaConfig, seed: u64, std: f32) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Box-Muller gives two independent normals per pair of uniforms.
    let mut spare: Option<f32> = None;
    let mut normal = move || {
        if let Some(z) = spare.take() {
            return z;
        }
        // u1 in (0, 1] so ln(u1) is finite.
        let u1: f32 = 1.0 - rng.random::<f32>();
        let u2: f32 = rng.random::<f32>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (2.0 * std::f32::consts::PI * u2).sin_cos();
        spare = Some(radius * sin);
        radius * cos
    };
    expected_tensors(config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with(".bias") {
                vec![0.0; n]
            } else if shape.len() == 1 {
                vec![1.0; n]
            } else {
                (0..n).map(|_| normal() * std).collect()
            };
            (name, HostTensor { shape, data })
        })
        .collect()
}

/// Error for a tensor that vanished between validation and use.
fn missing(name: &str) -> LlmError {
    LlmError::mismatch(WEIGHTS_LABEL, format!("missing tensor {name}"))
}

/// A bias-free layer from a validated Hugging Face `[out, in]` matrix.
fn linear_from_hf(t: HostTensor, device: &Device) -> HfLinear {
    let (out, inp) = match t.shape[..] {
        [out, inp] => (out, inp),
        _ => (1, t.data.len()),
    };
    HfLinear::from_rows(t.data, out, inp, device)
}

/// An RMSNorm from a validated scale vector.
fn norm_from_hf(t: HostTensor, eps: f64, device: &Device) -> RmsNorm {
    let len = t.data.len();
    RmsNorm {
        gamma: Param::from_tensor(Tensor::from_data(TensorData::new(t.data, [len]), device)),
        epsilon: eps,
    }
}

/// Reads a float tensor back to the host.
fn host<const D: usize>(name: &str, t: Tensor<D>) -> Result<HostTensor, LlmError> {
    let shape = t.dims().to_vec();
    let data = t
        .try_into_data()
        .map_err(|e| LlmError::Generation(format!("reading {name}: {e:?}")))?
        .try_into_vec_as::<f32>()
        .map_err(|e| LlmError::Generation(format!("reading {name}: {e:?}")))?;
    Ok(HostTensor { shape, data })
}

impl LlamaDecoder {
    /// Builds the decoder from Hugging Face-named f32 weights (Linear
    /// matrices `[out, in]`, q/k rows in rotate-half order). Every expected
    /// tensor must be present with the right shape and no other tensor may
    /// be (see [`validate_weights`]); errors name the tensor and both shapes.
    pub fn from_weights(
        config: &LlamaConfig,
        weights: &Weights,
        device: &Device,
    ) -> Result<Self, LlmError> {
        validate_weights(config, weights, Path::new(WEIGHTS_LABEL))?;
        Self::build(config, device, |name| {
            weights.get(name).cloned().ok_or_else(|| missing(name))
        })
    }

    /// Like [`LlamaDecoder::from_weights`] but consumes the map, so each
    /// tensor's values move to the device instead of being copied (half the
    /// peak memory for large checkpoints).
    pub fn from_weights_owned(
        config: &LlamaConfig,
        mut weights: Weights,
        device: &Device,
    ) -> Result<Self, LlmError> {
        validate_weights(config, &weights, Path::new(WEIGHTS_LABEL))?;
        Self::build(config, device, |name| {
            weights.remove(name).ok_or_else(|| missing(name))
        })
    }

    /// Assembles the modules from validated tensors handed out by `fetch`.
    fn build(
        config: &LlamaConfig,
        device: &Device,
        mut fetch: impl FnMut(&str) -> Result<HostTensor, LlmError>,
    ) -> Result<Self, LlmError> {
        let eps = config.rms_norm_eps;
        let lin = |t: HostTensor| linear_from_hf(t, device);
        let norm = |t: HostTensor| norm_from_hf(t, eps, device);
        let embed_tokens = Embedding {
            weight: lin(fetch("model.embed_tokens.weight")?).weight,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let mut part = |name: &str| fetch(&layer_name(l, name));
            let mut proj = |name: &str, with_bias: bool| -> Result<HfLinear, LlmError> {
                let layer = lin(part(name)?);
                Ok(if with_bias {
                    layer.with_bias(part(&format!("{name}.bias"))?.data)
                } else {
                    layer
                })
            };
            let (qkv_bias, o_bias) = (config.qkv_bias(), config.o_bias());
            let q_proj = proj("self_attn.q_proj", qkv_bias)?;
            let k_proj = proj("self_attn.k_proj", qkv_bias)?;
            let v_proj = proj("self_attn.v_proj", qkv_bias)?;
            let o_proj = proj("self_attn.o_proj", o_bias)?;
            let (q_norm, k_norm) = if config.qk_norm() {
                (
                    Some(norm(part("self_attn.q_norm")?)),
                    Some(norm(part("self_attn.k_norm")?)),
                )
            } else {
                (None, None)
            };
            layers.push(DecoderLayer {
                input_layernorm: norm(part("input_layernorm")?),
                self_attn: Attention {
                    q_proj,
                    k_proj,
                    v_proj,
                    o_proj,
                    q_norm,
                    k_norm,
                    heads: config.num_attention_heads,
                    kv_heads: config.kv_heads(),
                    head_dim: config.head_dim(),
                },
                post_attention_layernorm: norm(part("post_attention_layernorm")?),
                mlp: Mlp {
                    gate_proj: lin(part("mlp.gate_proj")?),
                    up_proj: lin(part("mlp.up_proj")?),
                    down_proj: lin(part("mlp.down_proj")?),
                },
            });
        }
        let final_norm = norm(fetch("model.norm.weight")?);
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(lin(fetch("lm_head.weight")?))
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm: final_norm,
            lm_head,
            tied_head: None,
            config: config.clone(),
        })
    }

    /// A freshly initialised decoder (Hugging Face's default: weights
    /// `N(0, 0.02^2)`, norms 1), reproducible from `seed`.
    pub fn init_random(config: &LlamaConfig, device: &Device, seed: u64) -> Result<Self, LlmError> {
        validate_config(config, Path::new(WEIGHTS_LABEL))?;
        Self::from_weights(config, &random_weights(config, seed, 0.02), device)
    }

    /// Exports every parameter under its Hugging Face name and shape
    /// (the inverse of [`LlamaDecoder::from_weights`]).
    pub fn to_weights(&self) -> Result<Weights, LlmError> {
        let mut out = Weights::new();
        let name = "model.embed_tokens.weight";
        out.insert(name.into(), host(name, self.embed_tokens.weight.val())?);
        for (l, layer) in self.layers.iter().enumerate() {
            let attn = &layer.self_attn;
            let linears = [
                ("self_attn.q_proj", &attn.q_proj),
                ("self_attn.k_proj", &attn.k_proj),
                ("self_attn.v_proj", &attn.v_proj),
                ("self_attn.o_proj", &attn.o_proj),
                ("mlp.gate_proj", &layer.mlp.gate_proj),
                ("mlp.up_proj", &layer.mlp.up_proj),
                ("mlp.down_proj", &layer.mlp.down_proj),
            ];
            for (part, lin) in linears {
                let name = layer_name(l, part);
                let t = host(&name, lin.weight.val())?;
                out.insert(name, t);
                if let Some(bias) = &lin.bias {
                    let name = layer_name(l, &format!("{part}.bias"));
                    let t = host(&name, bias.val())?;
                    out.insert(name, t);
                }
            }
            let qk_norms = [
                ("self_attn.q_norm", attn.q_norm.as_ref()),
                ("self_attn.k_norm", attn.k_norm.as_ref()),
            ];
            let norms = [
                ("input_layernorm", Some(&layer.input_layernorm)),
                (
                    "post_attention_layernorm",
                    Some(&layer.post_attention_layernorm),
                ),
            ];
            for (part, norm) in norms
                .into_iter()
                .chain(qk_norms)
                .filter_map(|(part, norm)| Some((part, norm?)))
            {
                let name = layer_name(l, part);
                let t = host(&name, norm.gamma.val())?;
                out.insert(name, t);
            }
        }
        let name = "model.norm.weight";
        out.insert(name.into(), host(name, self.norm.gamma.val())?);
        if let Some(head) = &self.lm_head {
            let name = "lm_head.weight";
            out.insert(name.into(), host(name, head.weight.val())?);
        }
        Ok(out)
    }

    /// The architecture this decoder was built for.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.embed_tokens.weight.val().device()
    }

    /// An empty cache for rows with the given left padding and room for
    /// `capacity` columns.
    pub fn new_cache(&self, pads: Vec<usize>, capacity: usize) -> KvCache {
        KvCache::new(&self.config, pads, capacity, &self.device())
    }

    /// Projects final hidden states (`[..., hidden]`) to vocabulary logits.
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        match (&self.lm_head, &self.tied_head) {
            (Some(head), _) => head.forward(hidden),
            (None, Some(q)) => project_quantized(q, self.embed_tokens.weight.val(), hidden),
            (None, None) => project(self.embed_tokens.weight.val(), hidden),
        }
    }

    /// Hands the checkpoint's quantized matrices (see
    /// [`Checkpoint::quantized`](super::Checkpoint::quantized)) to the
    /// layers they belong to, which then decode with them. Only for
    /// inference: the quantized products have no gradient. Fails when a
    /// matrix's name is not one of this decoder's or its shape differs
    /// from the f32 weight's.
    pub fn with_quantized(mut self, mut quantized: QuantWeights) -> Result<Self, LlmError> {
        let path = Path::new(WEIGHTS_LABEL);
        let attach = |name: &str, q: QuantMatrix, weight: &Tensor<2>| {
            let [rows, cols] = weight.dims();
            if [q.rows(), q.cols()] != [rows, cols] {
                return Err(LlmError::mismatch(
                    path,
                    format!(
                        "quantized {name} is [{}, {}] but the weight is [{rows}, {cols}]",
                        q.rows(),
                        q.cols()
                    ),
                ));
            }
            Ok(Some(Arc::new(q)))
        };
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let attn = &mut layer.self_attn;
            let mlp = &mut layer.mlp;
            for (part, lin) in [
                ("self_attn.q_proj", &mut attn.q_proj),
                ("self_attn.k_proj", &mut attn.k_proj),
                ("self_attn.v_proj", &mut attn.v_proj),
                ("self_attn.o_proj", &mut attn.o_proj),
                ("mlp.gate_proj", &mut mlp.gate_proj),
                ("mlp.up_proj", &mut mlp.up_proj),
                ("mlp.down_proj", &mut mlp.down_proj),
            ] {
                let name = layer_name(l, part);
                if let Some(q) = quantized.remove(&name) {
                    lin.quantized = attach(&name, q, &lin.weight.val())?;
                }
            }
        }
        if let Some(q) = quantized.remove("lm_head.weight") {
            let Some(head) = &mut self.lm_head else {
                return Err(LlmError::mismatch(
                    path,
                    "quantized lm_head.weight given to a decoder with a tied head",
                ));
            };
            head.quantized = attach("lm_head.weight", q, &head.weight.val())?;
        }
        let embed = "model.embed_tokens.weight";
        if let Some(q) = quantized.remove(embed)
            && self.lm_head.is_none()
        {
            self.tied_head = attach(embed, q, &self.embed_tokens.weight.val())?;
        }
        match quantized.keys().next() {
            Some(name) => Err(LlmError::mismatch(
                path,
                format!("quantized {name} is not a matrix of this decoder"),
            )),
            None => Ok(self),
        }
    }

    /// Training/scoring forward over a padded batch without a cache:
    /// logits `[rows, cols, vocab]`. Differentiable when the decoder lives
    /// on an autodiff device. Logits at padding columns are meaningless.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor<3>, LlmError> {
        Ok(self.logits(self.forward_hidden(batch)?))
    }

    /// Like [`LlamaDecoder::forward`] but stops at the final norm: hidden
    /// states `[rows, cols, hidden]`.
    pub fn forward_hidden(&self, batch: &TokenBatch) -> Result<Tensor<3>, LlmError> {
        let (rows, cols) = (batch.rows(), batch.cols());
        let positions: Vec<usize> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| c.saturating_sub(batch.start(r))))
            .collect();
        let x = self.embed(batch.ids(), rows, cols)?;
        let padding = Padding {
            start: 0,
            pads: batch.starts(),
        };
        self.run_layers(x, &positions, padding, 0, None, None)
    }

    /// Training forward of the batch's real tokens only, packed row after
    /// row: hidden states after the final norm, `[tokens, hidden]`, where
    /// row `r`'s column `c` is packed token `offset(r) + c` (the lengths of
    /// the rows before it). The same values as [`LlamaDecoder::forward_hidden`]
    /// at the real tokens, up to rounding, without computing any padding
    /// (see [`Attention::forward_packed`]). Differentiable when the decoder
    /// lives on an autodiff device.
    pub fn forward_packed_hidden(&self, batch: &TokenBatch) -> Result<Tensor<2>, LlmError> {
        let cols = batch.cols();
        let lens: Vec<usize> = (0..batch.rows()).map(|r| batch.len(r)).collect();
        let mut ids = Vec::with_capacity(lens.iter().sum());
        let mut positions = Vec::with_capacity(ids.capacity());
        for (r, &len) in lens.iter().enumerate() {
            let from = r * cols + batch.start(r);
            ids.extend_from_slice(&batch.ids()[from..from + len]);
            positions.extend(0..len);
        }
        let device = self.device();
        let tokens = ids.len();
        let mut x = self.embed(&ids, 1, tokens)?;
        // The fused attention masks by position; the composed one by masks.
        let groups = (!fused::fused_packed(&device, x.dtype()))
            .then(|| self.config.num_attention_heads / self.config.kv_heads());
        let packed = PackedRows::new(&lens, groups, &device);
        let rope = RopeAngles::new(
            &positions,
            1,
            tokens,
            &config_frequencies(&self.config),
            &device,
        );
        for layer in &self.layers {
            x = layer.forward_packed(x, &rope, &packed);
        }
        let [_, _, hidden] = x.dims();
        Ok(fused::rms_norm(&self.norm, x).reshape([tokens, hidden]))
    }

    /// Inference forward of `cols` new tokens per row (`tokens` row-major,
    /// `cache.rows() * cols` ids) after the cache's columns: writes their
    /// keys/values into `cache` and returns hidden states after the final
    /// norm, `[rows, cols, hidden]`. Prefill is one call with the whole
    /// left-padded prompt block (padding given by the cache's padding); decode
    /// is one call per step with `cols = 1`.
    pub fn forward_cached(
        &self,
        tokens: &[u32],
        cols: usize,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, LlmError> {
        let rows = cache.rows();
        if cols == 0 || rows == 0 || tokens.len() != rows * cols {
            return Err(LlmError::Generation(format!(
                "forward_cached got {} tokens for {rows} rows x {cols} columns",
                tokens.len()
            )));
        }
        let x = self.embed(tokens, rows, cols)?;
        self.run_cached(x, cols, cache, None)
    }

    /// Inference forward of a block of prompts of unequal lengths, one per
    /// cache row, after the cache's columns: the block is the prompts
    /// left-padded to the longest, as the cache's padding says (row `r`
    /// has `longest - prompts[r].len()` padding columns starting where the
    /// block does), but only the real tokens are computed (see `Ragged` in
    /// `llm/ragged.rs`) when there are at least [`RAGGED_MIN_TOKENS`]. Writes
    /// the block's keys/values into `cache` (zeros in the padding columns
    /// of a packed block) and returns each row's last hidden state after
    /// the final norm, `[rows, 1, hidden]`: bit for bit the last column of
    /// [`LlamaDecoder::forward_cached`] over the padded block.
    pub fn forward_prompts(
        &self,
        prompts: &[&[u32]],
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, LlmError> {
        let rows = cache.rows();
        let width = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        if prompts.len() != rows || prompts.iter().any(|p| p.is_empty()) {
            return Err(LlmError::Generation(format!(
                "forward_prompts got {} prompts (an empty one is refused) for {rows} cache rows",
                prompts.len()
            )));
        }
        let padded_as_block = cache.len() == cache.pad_start()
            && cache
                .pads()
                .iter()
                .zip(prompts)
                .all(|(&pad, p)| pad == width - p.len());
        if !padded_as_block {
            return Err(LlmError::Generation(format!(
                "the kv cache's padding ({:?} from column {}, {} columns filled) is not the \
                 left padding of prompts of {:?} tokens",
                cache.pads(),
                cache.pad_start(),
                cache.len(),
                prompts.iter().map(|p| p.len()).collect::<Vec<_>>()
            )));
        }
        let real: usize = prompts.iter().map(|p| p.len()).sum();
        if real < RAGGED_MIN_TOKENS || real == rows * width {
            let mut block = Vec::with_capacity(rows * width);
            for prompt in prompts {
                block.extend(std::iter::repeat_n(PAD_ID, width - prompt.len()));
                block.extend_from_slice(prompt);
            }
            let hidden = self.forward_cached(&block, width, cache)?;
            let [_, _, channels] = hidden.dims();
            return Ok(hidden.slice([0..rows, width - 1..width, 0..channels]));
        }
        let lens: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let ragged = Ragged::new(&lens, width, &self.device());
        let x = self.embed(&prompts.concat(), 1, ragged.tokens())?;
        self.run_cached(x, width, cache, Some(&ragged))
    }

    /// The layers over `cols` new columns per cache row (`x` embedded, or
    /// packed when `ragged`), after the cache's columns: writes their
    /// keys/values and advances the cache.
    fn run_cached(
        &self,
        x: Tensor<3>,
        cols: usize,
        cache: &mut KvCache,
        ragged: Option<&Ragged>,
    ) -> Result<Tensor<3>, LlmError> {
        if cache.num_layers() != self.layers.len() {
            return Err(LlmError::Generation(format!(
                "kv cache has {} layers, the decoder {}",
                cache.num_layers(),
                self.layers.len()
            )));
        }
        let past = cache.len();
        let pads = cache.pads().to_vec();
        let positions = cache.next_positions(cols);
        let padding = Padding {
            start: cache.pad_start(),
            pads: &pads,
        };
        cache.reserve(cols)?;
        let hidden = self.run_layers(x, &positions, padding, past, Some(cache), ragged)?;
        cache.advance(cols);
        Ok(hidden)
    }

    fn embed(&self, ids: &[u32], rows: usize, cols: usize) -> Result<Tensor<3>, LlmError> {
        let vocab = self.config.vocab_size;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(LlmError::Generation(format!(
                "token id {bad} is outside the model's vocabulary of {vocab}"
            )));
        }
        let data: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(data, [rows, cols]), &self.device());
        Ok(self.embed_tokens.forward(ids))
    }

    /// The decoder layers and the final norm over `x`, a `[rows, cols]`
    /// block; with a `ragged` layout `x` holds only its real tokens and
    /// only each row's last hidden state is returned (`[rows, 1, hidden]`).
    fn run_layers(
        &self,
        mut x: Tensor<3>,
        positions: &[usize],
        padding: Padding<'_>,
        past: usize,
        mut cache: Option<&mut KvCache>,
        ragged: Option<&Ragged>,
    ) -> Result<Tensor<3>, LlmError> {
        let [rows, cols] = match ragged {
            Some(layout) => layout.block(),
            None => {
                let [rows, cols, _] = x.dims();
                [rows, cols]
            }
        };
        let device = self.device();
        let rope = RopeAngles::new(
            positions,
            rows,
            cols,
            &config_frequencies(&self.config),
            &device,
        );
        let groups = self.config.num_attention_heads / self.config.kv_heads();
        let mask = attention_mask(padding, past, cols, groups, &device);
        for (l, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, l));
            x = layer.forward(x, &rope, mask.clone(), layer_cache, ragged)?;
        }
        if let Some(layout) = ragged {
            x = layout.last_tokens(x);
        }
        Ok(self.norm.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_silu_is_bit_for_bit_flex_silu() {
        let device = Device::flex();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut values: Vec<f32> = (0..3 * 40_000)
            .map(|_| rng.random_range(-30.0f32..30.0))
            .collect();
        values[..8].copy_from_slice(&[
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -1e-30,
            88.7,
            -104.0,
            f32::MAX,
            f32::MIN,
        ]);
        let x = Tensor::<3>::from_data(TensorData::new(values, [3, 200, 200]), &device);
        let ours = silu(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let flex = activation::silu(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(ours.len(), flex.len());
        for (i, (a, b)) in ours.iter().zip(&flex).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "element {i}: {a} vs {b}");
        }
    }
}
