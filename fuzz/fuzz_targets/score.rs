#![no_main]
//! Scoring a completion against the shipped suites' tasks: extraction
//! (numbers, JSON, code blocks, choice letters) and every verifier except
//! `code` (which runs Python and is attacked in tests/sandbox.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| distill_gate_fuzz::score(data));
