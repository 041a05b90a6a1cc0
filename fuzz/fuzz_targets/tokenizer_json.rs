#![no_main]
//! `tokenizer.json` (the tokenizers crate's format), then encoding and
//! decoding a fixed text with whatever it describes.

use distill_gate::llm::tokenizer::TextTokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = distill_gate_fuzz::write("tokenizer.json", data);
    if let Ok(tok) = TextTokenizer::from_file(&path) {
        if let Ok(ids) = tok.encode("def f(x):\n    return 2 * x  # ünïcödé") {
            let _ = tok.decode(&ids);
        }
        let _ = tok.chat_prompt("hello");
    }
});
