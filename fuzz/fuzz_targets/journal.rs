#![no_main]
//! Run journals (`results.jsonl`): reading, and opening one to resume.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::journal(data));
