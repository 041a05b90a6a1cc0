//! The model runtime: a Llama-family decoder in burn, checkpoint loading
//! (Hugging Face safetensors directories and GGUF files), tokenizers and
//! batched generation with a KV cache.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod gguf;
pub mod hf_dir;
pub mod safetensors_io;
pub mod tensor_layout;
pub mod tokenizer;
pub mod weights;

pub use checkpoint::Checkpoint;
pub use config::LlamaConfig;
pub use error::LlmError;
pub use safetensors_io::StorageDtype;
pub use tensor_layout::expected_tensors;
pub use tokenizer::{ChatTemplate, TextTokenizer};
pub use weights::{HostTensor, Weights};
