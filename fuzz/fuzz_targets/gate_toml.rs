#![no_main]
//! `gate.toml`: TOML parsing and config validation.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::gate_toml(data));
