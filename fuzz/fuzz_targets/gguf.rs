#![no_main]
//! GGUF files: header, metadata, tensor table, then the Llama config, the
//! tokenizer and the weights built from them.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::gguf(data));
