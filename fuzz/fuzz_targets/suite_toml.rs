#![no_main]
//! `suite.toml` of a suite directory (with one small valid split).

use libfuzzer_sys::fuzz_target;

const TEST: &str = "{\"id\": \"a\", \"category\": \"c\", \"input\": \"1 + 1\", \"target\": 2}\n";

fuzz_target!(|data: &[u8]| {
    let dir = distill_gate_fuzz::scratch().join("suite_toml");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("suite.toml"), data).expect("write");
    std::fs::write(dir.join("test.jsonl"), TEST).expect("write");
    let _ = distill_gate::suite::load_suite(&dir);
});
