#![no_main]
//! `suite.toml` of a suite directory (with one small valid split).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::suite_toml(data));
