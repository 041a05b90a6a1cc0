#![no_main]
//! GGUF files: header, metadata, tensor table, then the Llama config, the
//! tokenizer and the weights built from them.

use distill_gate::llm::gguf::{GgufFile, config_from_gguf, tokenizer_from_gguf, weights_from_gguf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::parse(data.to_vec(), std::path::Path::new("fuzz.gguf")) else {
        return;
    };
    let _ = tokenizer_from_gguf(&file);
    if let Ok(config) = config_from_gguf(&file) {
        let _ = weights_from_gguf(&file, &config);
    }
});
