#![no_main]
//! `config.json` of a Hugging Face checkpoint directory.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::hf_config(data));
