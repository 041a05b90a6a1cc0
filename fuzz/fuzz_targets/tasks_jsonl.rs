#![no_main]
//! Task JSONL files of a suite (with a fixed valid `suite.toml`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::tasks_jsonl(data));
