#![no_main]
//! Replay transcripts (JSONL, one recorded completion a line).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = distill_gate_fuzz::write("transcript.jsonl", data);
    let _ = distill_gate::model::transcript::read(&path);
    // Opening for append cuts a torn tail; reading again must still work.
    if distill_gate::model::transcript::TranscriptWriter::open(&path).is_ok() {
        let _ = distill_gate::model::transcript::read(&path);
    }
});
