//! Every input in `tests/data/fuzz/<target>/` (crashes the fuzzers found,
//! and hostile inputs written by hand: GGUF headers claiming 2^60 tensors,
//! metadata entries or elements, safetensors headers claiming 2^60 bytes,
//! torn journals, deeply nested JSON and TOML) is run through the same code
//! as the fuzz target of that name (fuzz/src/lib.rs, included below). Each
//! must return normally and without a huge allocation.

#[allow(dead_code)] // `scratch` is public for the fuzz targets
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::path::Path;

use distill_gate::llm::gguf::GgufFile;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().into_string().ok()?,
                std::fs::read(e.path()).ok()?,
            ))
        })
        .collect();
    files.sort();
    files
}

/// One test for all targets: the scratch directory is per process, so the
/// targets must not run on parallel test threads.
#[test]
fn every_regression_input_is_handled() {
    let mut ran = 0;
    for (target, check) in fuzz_checks::TARGETS {
        for (name, data) in inputs(target) {
            eprintln!("{target}/{name}");
            check(&data);
            ran += 1;
        }
    }
    assert!(ran >= 30, "only {ran} regression inputs found");
}

#[test]
fn gguf_headers_claiming_2p60_of_anything_are_refused_before_allocating() {
    for (name, data) in inputs("gguf") {
        if !name.contains("2p60") {
            continue;
        }
        let err = match GgufFile::parse(data, Path::new("x.gguf")) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("remain") || err.contains("absurd") || err.contains("can hold"),
            "{name}: {err}"
        );
    }
}
