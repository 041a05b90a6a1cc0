//! GGUF, llama.cpp's checkpoint format: parsing (versions 2 and 3),
//! dequantization, the Llama family's names (llama, qwen2, qwen3) and Q/K layout, the
//! tokenizer stored in metadata, and a writer for exporting checkpoints.

pub mod llama;
pub mod quant;
pub mod reader;
pub mod value;
pub mod vocab;
pub mod writer;

pub use llama::{
    QkOrder, config_from_gguf, gguf_name, hf_name, permute_qk_rows, qk_row_sources,
    quantized_from_gguf, weights_from_gguf,
};
pub use quant::GgmlType;
pub use reader::{GgufFile, GgufTensorInfo};
pub use value::{GgufArray, GgufValue, GgufValueType};
pub use vocab::tokenizer_from_gguf;
pub use writer::{GgufWriter, export_gguf};
