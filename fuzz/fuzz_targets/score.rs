#![no_main]
//! Scoring a completion against the shipped suites' tasks: extraction
//! (numbers, JSON, code blocks, choice letters) and every verifier except
//! `code` (which runs Python and is attacked in tests/sandbox.rs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(completion) = std::str::from_utf8(rest) else {
        return;
    };
    let suites = distill_gate_fuzz::shipped_suites();
    for suite in suites {
        let tasks: Vec<_> = suite
            .splits
            .iter()
            .flat_map(|s| &s.tasks)
            .filter(|t| suite.scorer_for(t).is_some_and(|s| s.kind() != "code"))
            .collect();
        if tasks.is_empty() {
            continue;
        }
        // One task per kind of verifier is picked by the first byte.
        let task = tasks[pick as usize % tasks.len()];
        let score = suite.score(task, completion);
        assert!((0.0..=1.0).contains(&score.value), "{score:?}");
    }
});
