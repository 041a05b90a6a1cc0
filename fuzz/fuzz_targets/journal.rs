#![no_main]
//! Run journals (`results.jsonl`): reading, and opening one to resume.

use distill_gate::run::journal::{Journal, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = distill_gate_fuzz::write("results.jsonl", data);
    let before = read(&path);
    if let Ok(journal) = Journal::open(&path) {
        // Resuming keeps exactly the complete lines a reader accepts.
        if let Ok(before) = before {
            let kept = journal.entries();
            assert!(kept.len() <= before.len());
            assert_eq!(kept, &before[..kept.len()]);
        }
        let after = std::fs::read(&path).expect("read back");
        assert!(after.is_empty() || after.ends_with(b"\n"));
    }
});
