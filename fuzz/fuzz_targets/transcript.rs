#![no_main]
//! Replay transcripts (JSONL, one recorded completion a line).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::transcript(data));
