#![no_main]
//! The answer-extraction steps on arbitrary text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::extract(data));
