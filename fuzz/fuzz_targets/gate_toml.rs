#![no_main]
//! `gate.toml`: TOML parsing and config validation.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = distill_gate::config::parse(std::path::Path::new("/fuzz/gate.toml"), text);
    }
});
