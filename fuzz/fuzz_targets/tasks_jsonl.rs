#![no_main]
//! Task JSONL files of a suite (with a fixed valid `suite.toml`).

use libfuzzer_sys::fuzz_target;

const SUITE: &str = r#"name = "fuzz"
version = "1"
description = "fuzzed tasks"
[defaults]
prompt = "{examples}Q: {input}\nA:"
example = "Q: {input}\nA: {target}\n"
few_shot = 1
max_tokens = 8
scorer = { kind = "numeric", abs_tol = 0.0 }
"#;

fuzz_target!(|data: &[u8]| {
    let dir = distill_gate_fuzz::scratch().join("tasks_jsonl");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("suite.toml"), SUITE).expect("write");
    std::fs::write(dir.join("test.jsonl"), data).expect("write");
    if let Ok(suite) = distill_gate::suite::load_suite(&dir) {
        // Everything a run does with a loaded task that needs no model.
        for split in &suite.splits {
            for task in &split.tasks {
                let _ = distill_gate::suite::build_prompt(&suite, task);
                let _ = suite.generation_settings(task);
                let _ = suite.score(task, "The answer is 2.");
            }
        }
    }
});
