//! The fuzz targets' bodies, one function per parser of outside input, so
//! that `cargo fuzz` (fuzz_targets/) and the regression tests
//! (tests/fuzz_regressions.rs, which includes this file) run the same code.
//! Each function must return normally on any input: a panic, a hang or an
//! unbounded allocation is a bug.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use distill_gate::suite::{Suite, load_suite};

/// A scratch directory for this process (one per process so parallel
/// fuzzing jobs and test threads do not collide; on a RAM disk when there
/// is one).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("distill-gate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// Writes `data` to `name` in the scratch directory and returns its path.
fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("scratch write");
    path
}

/// The suites shipped in `suites/` (loaded once).
fn shipped_suites() -> &'static [Suite] {
    static SUITES: OnceLock<Vec<Suite>> = OnceLock::new();
    SUITES.get_or_init(|| {
        // The manifest is the fuzz crate's, or distill-gate's for the
        // regression tests (which include this file).
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = [manifest.join("suites"), manifest.join("../suites")]
            .into_iter()
            .find(|p| p.is_dir())
            .expect("suites/ next to the manifest");
        ["coding", "logistics"]
            .iter()
            .map(|s| load_suite(root.join(s)).expect("shipped suite loads"))
            .collect()
    })
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz_targets/` file and the corpus and
/// `tests/data/fuzz/` directory) and its function.
pub const TARGETS: [(&str, Target); 11] = [
    ("extract", extract),
    ("gate_toml", gate_toml),
    ("gguf", gguf),
    ("hf_config", hf_config),
    ("journal", journal),
    ("safetensors", safetensors),
    ("score", score),
    ("suite_toml", suite_toml),
    ("tasks_jsonl", tasks_jsonl),
    ("tokenizer_json", tokenizer_json),
    ("transcript", transcript),
];

/// The answer-extraction steps on arbitrary text.
pub fn extract(data: &[u8]) {
    use distill_gate::score::extract::{
        Extract, choice_letter, first_code_block, first_json_object, first_line, last_number,
        numbers,
    };
    use distill_gate::score::numeric::parse_number;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = numbers(text);
    if let Some(n) = last_number(text) {
        let _ = parse_number(n);
    }
    let _ = parse_number(text);
    let _ = first_line(text);
    for options in [0, 1, 4, 26, 100] {
        let _ = choice_letter(text, options);
    }
    let _ = first_code_block(text, None);
    let _ = first_code_block(text, Some("python"));
    if let Some(obj) = first_json_object(text) {
        assert!(serde_json::from_str::<serde_json::Value>(obj).is_ok());
    }
    let _ = distill_gate::score::code::extract_code(text);
    for step in [
        Extract::None,
        Extract::LastNumber,
        Extract::ChoiceLetter,
        Extract::FirstCodeBlock { lang: None },
        Extract::FirstJsonObject,
        Extract::FirstLine,
        Extract::Regex {
            pattern: r"answer:\s*(\S+)".into(),
            group: 1,
        },
    ] {
        let _ = step.apply(text);
    }
}

/// `gate.toml`: TOML parsing and config validation.
pub fn gate_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = distill_gate::config::parse(std::path::Path::new("/fuzz/gate.toml"), text);
    }
}

/// GGUF files: header, metadata, tensor table, then the Llama config, the
/// tokenizer and the weights built from them.
pub fn gguf(data: &[u8]) {
    use distill_gate::llm::gguf::{
        GgufFile, config_from_gguf, tokenizer_from_gguf, weights_from_gguf,
    };

    let Ok(file) = GgufFile::parse(data.to_vec(), std::path::Path::new("fuzz.gguf")) else {
        return;
    };
    let _ = tokenizer_from_gguf(&file);
    if let Ok(config) = config_from_gguf(&file) {
        let _ = weights_from_gguf(&file, &config);
    }
}

/// `config.json` of a Hugging Face checkpoint directory.
pub fn hf_config(data: &[u8]) {
    let dir = scratch().join("hf_config");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.json"), data).expect("write");
    if let Ok(config) = distill_gate::llm::hf_dir::read_config(&dir) {
        let _ = config.head_dim();
        let _ = config.kv_heads();
        let _ = config.eos_ids();
    }
}

/// Run journals (`results.jsonl`): reading, and opening one to resume.
pub fn journal(data: &[u8]) {
    use distill_gate::run::journal::{Journal, WorkStatus, read};

    let path = write("results.jsonl", data);
    let before = read(&path);
    if let Ok(journal) = Journal::open(&path) {
        // Resuming keeps exactly the complete lines a reader accepts, and
        // knows each of them is done.
        if let Ok(before) = before {
            let kept = read(&path).expect("a resumed journal reads back");
            assert!(kept.len() <= before.len());
            assert_eq!(kept, &before[..kept.len()]);
            assert!(kept.iter().all(|e| {
                let (id, request) = (e.model_id.as_deref(), e.request.as_deref());
                let status = journal.status(&e.work_key(), id.unwrap_or(""), request.unwrap_or(""));
                let bound = id.is_some() && request.is_some();
                status
                    == if bound {
                        WorkStatus::Done
                    } else {
                        WorkStatus::Stale
                    }
            }));
        }
        let after = std::fs::read(&path).expect("read back");
        assert!(after.is_empty() || after.ends_with(b"\n"));
    }
}

/// safetensors files: header JSON, dtypes, shapes and offsets. The
/// header-only reader `validate` runs accepts every file the full reader
/// reads, with the same shapes.
pub fn safetensors(data: &[u8]) {
    use distill_gate::llm::safetensors_io::{parse_safetensors, read_safetensors_header};
    let parsed = parse_safetensors(data, Path::new("fuzz.safetensors"));
    let header = read_safetensors_header(&write("header.safetensors", data));
    if let Ok(weights) = parsed {
        let header = header.expect("the header reader accepts what the full reader reads");
        let shapes: Vec<_> = header.iter().map(|(n, t)| (n, &t.shape)).collect();
        let full: Vec<_> = weights.iter().map(|(n, t)| (n, &t.shape)).collect();
        assert_eq!(shapes, full);
    }
}

/// Scoring a completion against the shipped suites' tasks: extraction
/// (numbers, JSON, code blocks, choice letters) and every verifier except
/// `code` (which runs Python and is attacked in tests/sandbox.rs).
pub fn score(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(completion) = std::str::from_utf8(rest) else {
        return;
    };
    let suites = shipped_suites();
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
}

/// `suite.toml` of a suite directory (with one small valid split).
pub fn suite_toml(data: &[u8]) {
    const TEST: &str =
        "{\"id\": \"a\", \"category\": \"c\", \"input\": \"1 + 1\", \"target\": 2}\n";

    let dir = scratch().join("suite_toml");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("suite.toml"), data).expect("write");
    std::fs::write(dir.join("test.jsonl"), TEST).expect("write");
    let _ = distill_gate::suite::load_suite(&dir);
}

/// Task JSONL files of a suite (with a fixed valid `suite.toml`).
pub fn tasks_jsonl(data: &[u8]) {
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

    let dir = scratch().join("tasks_jsonl");
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
}

/// `tokenizer.json` (the tokenizers crate's format), then encoding and
/// decoding a fixed text with whatever it describes.
pub fn tokenizer_json(data: &[u8]) {
    use distill_gate::llm::tokenizer::TextTokenizer;

    let path = write("tokenizer.json", data);
    if let Ok(tok) = TextTokenizer::from_file(&path) {
        if let Ok(ids) = tok.encode("def f(x):\n    return 2 * x  # ünïcödé") {
            let _ = tok.decode(&ids);
        }
        let _ = tok.chat_prompt("hello");
    }
}

/// Replay transcripts (JSONL, one recorded completion a line).
pub fn transcript(data: &[u8]) {
    let path = write("transcript.jsonl", data);
    let _ = distill_gate::model::transcript::read(&path);
    // Opening for append cuts a torn tail; reading again must still work.
    if distill_gate::model::transcript::TranscriptWriter::open(&path).is_ok() {
        let _ = distill_gate::model::transcript::read(&path);
    }
}
