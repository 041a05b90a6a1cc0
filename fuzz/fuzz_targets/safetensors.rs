#![no_main]
//! safetensors files: header JSON, dtypes, shapes and offsets.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = distill_gate::llm::safetensors_io::parse_safetensors(
        data,
        std::path::Path::new("fuzz.safetensors"),
    );
});
