#![no_main]
//! safetensors files: header JSON, dtypes, shapes and offsets.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::safetensors(data));
