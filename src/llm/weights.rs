//! Backend-neutral weights: every tensor of a checkpoint as f32 under its
//! Hugging Face name and shape. Checkpoint readers (safetensors, GGUF) produce
//! this; the burn decoder is built from it and exports to it.

use std::collections::BTreeMap;

/// One dense f32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape, outermost first (Hugging Face / PyTorch order: Linear is `[out, in]`).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// All tensors of a checkpoint, keyed by Hugging Face name
/// (`model.layers.0.self_attn.q_proj.weight`, ...). Q/K projections are in
/// the Hugging Face (rotate-half) row order.
pub type Weights = BTreeMap<String, HostTensor>;
