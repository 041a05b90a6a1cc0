//! The model runtime: a Llama-family decoder in burn, checkpoint loading
//! (Hugging Face safetensors directories and GGUF files), tokenizers and
//! batched generation with a KV cache.

pub mod config;
pub mod error;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use error::LlmError;
pub use tokenizer::{ChatTemplate, TextTokenizer};
pub use weights::{HostTensor, Weights};
