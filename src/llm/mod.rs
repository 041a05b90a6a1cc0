//! The model runtime: a Llama-family decoder in burn, checkpoint loading
//! (Hugging Face safetensors directories and GGUF files), tokenizers and
//! batched generation with a KV cache.

pub mod attention;
pub mod batch;
pub mod burnpack;
pub mod checkpoint;
pub mod config;
pub mod decoder;
pub mod device;
pub mod error;
pub mod fused;
mod gemm;
pub mod generate;
pub mod gguf;
pub mod hf_dir;
pub mod kv_cache;
pub mod linear;
pub mod packed_attention;
pub mod quant_matrix;
mod ragged;
pub mod rope;
pub mod safetensors_io;
pub mod sampling;
mod simd;
pub mod tensor_layout;
pub mod tokenizer;
pub mod weights;

pub use batch::TokenBatch;
pub use checkpoint::Checkpoint;
pub use config::LlamaConfig;
pub use decoder::LlamaDecoder;
pub use device::Backend;
pub use error::LlmError;
pub use generate::{GenerateRequest, Generated, generate, loglikelihood};
pub use kv_cache::KvCache;
pub use quant_matrix::{QuantMatrix, QuantWeights};
pub use safetensors_io::StorageDtype;
pub use sampling::SamplingParams;
pub use tensor_layout::expected_tensors;
pub use tokenizer::{ChatTemplate, TextTokenizer};
pub use weights::{HostTensor, Weights};
