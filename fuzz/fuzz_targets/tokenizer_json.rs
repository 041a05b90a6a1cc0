#![no_main]
//! `tokenizer.json` (the tokenizers crate's format), then encoding and
//! decoding a fixed text with whatever it describes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::tokenizer_json(data));
