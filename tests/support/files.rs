//! Files the CLI integration tests write or read: a small arithmetic suite
//! written into a temporary directory, its transcripts, the demo's config
//! and the repository's root.

use std::path::{Path, PathBuf};

/// `suite.toml` of the arithmetic suite: numeric answers, two-shot prompts.
pub const ARITH_SUITE_TOML: &str = r#"name = "arith"
version = "1.0"
description = "sums"
[defaults]
prompt = "{examples}Q: {input}\nA:"
example = "Q: {input}\nA: {target}\n"
few_shot = 2
max_tokens = 8
stop = ["\n"]
scorer = { kind = "numeric", abs_tol = 0.0 }
"#;

/// Writes `source` gzip-compressed (as benchmarks ship their files) to `gz`.
pub fn gzip_copy(source: &Path, gz: &Path) {
    use std::io::Write;
    let bytes = std::fs::read(source).expect("read the file to compress");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bytes).expect("gzip");
    std::fs::write(gz, encoder.finish().expect("gzip")).expect("write the gzip file");
}

/// Writes `suites/arith` under `root`: 10 train items and `n` test items
/// `t-i` asking `i + (7i + 3)`, category `even`/`odd` by `i`.
pub fn write_arith_suite(root: &Path, n: usize) {
    let suite = root.join("suites/arith");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(suite.join("suite.toml"), ARITH_SUITE_TOML).unwrap();
    let line = |id: String, a: usize, b: usize| {
        let cat = if a.is_multiple_of(2) { "even" } else { "odd" };
        format!(
            "{{\"id\": \"{id}\", \"category\": \"{cat}\", \"input\": \"{a} + {b}\", \"target\": {}}}\n",
            a + b
        )
    };
    let train: String = (0..10)
        .map(|i| line(format!("train-{i}"), i, 100 + i))
        .collect();
    let test: String = (0..n)
        .map(|i| line(format!("t-{i}"), i, 7 * i + 3))
        .collect();
    std::fs::write(suite.join("train.jsonl"), train).unwrap();
    std::fs::write(suite.join("test.jsonl"), test).unwrap();
}

/// The repository's root (where `fixtures/` and `suites/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo config with absolute paths, `limit` items per suite (and at
/// most `limit` extraction items unless `limit` is the demo's 120) and the
/// reports written under `out`.
pub fn demo_config(limit: usize, out: &Path) -> String {
    let text = std::fs::read_to_string(repo_root().join("fixtures/gate.toml"))
        .expect("fixtures/gate.toml");
    let fixtures = repo_root().join("fixtures");
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "fixtures/gate.toml has no {from:?}");
        text.replace(from, to)
    };
    let text = replace(
        text,
        "\"teacher/",
        &format!("\"{}/teacher/", fixtures.display()),
    );
    let text = replace(
        text,
        "\"students/",
        &format!("\"{}/students/", fixtures.display()),
    );
    let text = replace(
        text,
        "\"../suites/",
        &format!("\"{}/suites/", repo_root().display()),
    );
    let text = replace(
        text,
        "output_dir = \"../reports\"",
        &format!("output_dir = \"{}\"", out.display()),
    );
    // The full demo keeps its 700 extraction items; a smaller one takes
    // the first `limit` of them too.
    let extraction = if limit == 120 { 700 } else { limit };
    let text = replace(
        text,
        "category_limits = { extraction = 700 }",
        &format!("category_limits = {{ extraction = {extraction} }}"),
    );
    replace(text, "limit = 120", &format!("limit = {limit}"))
}

/// Writes `<root>/<model>.jsonl`, a replay transcript for every item of the
/// arithmetic suite's test split (see [`write_arith_suite`]), answering
/// item `i` right when `right(i)`, with a latency of `latency_ms + i`.
pub fn arith_transcript(
    root: &Path,
    model: &str,
    latency_ms: f64,
    right: impl Fn(usize) -> bool,
) -> PathBuf {
    use distill_gate::suite;
    let s = suite::load_suite(root.join("suites/arith")).expect("the arith suite loads");
    let split = s.split("test").expect("a test split");
    let mut out = String::new();
    for (i, t) in split.tasks.iter().enumerate() {
        let target = t.target.as_f64().expect("a numeric target");
        let answer = if right(i) { target } else { target + 1.0 };
        out.push_str(&transcript_line(
            model,
            &t.id,
            suite::build_prompt(&s, t),
            s.generation_settings(t),
            &format!(" {answer}"),
            (latency_ms + i as f64, latency_ms / 2.0),
        ));
    }
    let path = root.join(format!("{model}.jsonl"));
    std::fs::write(&path, out).expect("write the transcript");
    path
}

/// One transcript line (with its newline): `model` answered `text` to
/// `prompt` with `settings`, live, in `(total, first token)` milliseconds.
pub fn transcript_line(
    model: &str,
    request_id: &str,
    prompt: String,
    settings: distill_gate::model::GenerationSettings,
    text: &str,
    (total_ms, first_token_ms): (f64, f64),
) -> String {
    use distill_gate::model::transcript::{TranscriptEntry, request_key};
    use distill_gate::model::{
        Completion, FinishReason, Latency, LatencySource, ModelIdentity, Usage,
    };
    let entry = TranscriptEntry {
        key: request_key(&prompt, &settings),
        model: ModelIdentity {
            backend: "test".into(),
            name: model.into(),
            fingerprint: format!("fp-{model}"),
        },
        request_id: request_id.to_string(),
        prompt,
        settings,
        completion: Some(Completion {
            text: text.to_string(),
            usage: Usage {
                prompt_tokens: 40,
                completion_tokens: 3,
                cached_prompt_tokens: 0,
                estimated: false,
            },
            latency: Some(Latency {
                total_ms,
                first_token_ms: Some(first_token_ms),
                batch_ms: None,
                batch_size: 1,
                source: LatencySource::Live,
            }),
            finish: Some(FinishReason::Stop),
        }),
        error: None,
    };
    serde_json::to_string(&entry).expect("a transcript line") + "\n"
}
