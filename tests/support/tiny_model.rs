//! A tiny Llama-family model for tests that build checkpoints: its
//! configuration (264 embedding rows for the 262 tokens of
//! `tokenizer.rs`'s tokenizer) and seeded random weights.

use distill_gate::llm::{HostTensor, LlamaConfig, Weights, expected_tensors};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The tiny model's configuration, with tied embeddings or not.
pub fn tiny_config(tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 264, // two padding rows beyond the 262 tokens
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        max_position_embeddings: 128,
        rms_norm_eps: 1e-5,
        rope_theta: 100_000.0,
        hidden_act: "silu".into(),
        rope_scaling: None,
        attention_bias: false,
        mlp_bias: false,
        sliding_window: None,
        tie_word_embeddings: tied,
        bos_token_id: Some(1),
        eos_token_id: None,
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: "llama".into(),
        torch_dtype: None,
        output_tokens: None,
    }
}

/// Seeded random weights of `config`: norms in [0.5, 1.5), matrices in
/// [-0.2, 0.2).
pub fn random_weights(config: &LlamaConfig, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    expected_tensors(config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if shape.len() == 1 {
                (0..n).map(|_| rng.random_range(0.5f32..1.5)).collect()
            } else {
                (0..n).map(|_| rng.random_range(-0.2f32..0.2)).collect()
            };
            (name, HostTensor { shape, data })
        })
        .collect()
}
