#![no_main]
//! `config.json` of a Hugging Face checkpoint directory.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = distill_gate_fuzz::scratch().join("hf_config");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.json"), data).expect("write");
    if let Ok(config) = distill_gate::llm::hf_dir::read_config(&dir) {
        let _ = config.head_dim();
        let _ = config.kv_heads();
        let _ = config.eos_ids();
    }
});
