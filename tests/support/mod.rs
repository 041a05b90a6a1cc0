//! What the integration tests share: a throw-away workspace for CLI tests
//! (one suite, replay transcripts written from an answer function, a
//! `gate.toml`, and the binary), the files of `files` (an arithmetic suite,
//! its transcripts, the demo's config, the repository's root), and a
//! readable dump of a command's output. `demo.rs`, `tokenizer.rs` and
//! `tiny_model.rs` are included on their own by the tests that need them.
#![allow(dead_code)] // each test crate uses part of it

mod files;
#[allow(unused_imports)] // as above: not every test crate writes these files
pub use files::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill_gate::model::transcript::{TranscriptEntry, request_key};
use distill_gate::model::{
    Completion, FinishReason, GenerationRequest, Latency, LatencySource, ModelIdentity, Usage,
};
use distill_gate::suite::{self, Task};

/// A temporary directory holding `suites/s/` and the files a run needs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A workspace whose suite has this `suite.toml` and `test.jsonl`.
    pub fn new(suite_toml: &str, test_jsonl: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let suite = dir.path().join("suites/s");
        std::fs::create_dir_all(&suite).expect("suite dir");
        std::fs::write(suite.join("suite.toml"), suite_toml).expect("suite.toml");
        std::fs::write(suite.join("test.jsonl"), test_jsonl).expect("test.jsonl");
        Self { dir }
    }

    /// The workspace directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The run directory of the config written by [`Workspace::config`].
    pub fn run_dir(&self) -> PathBuf {
        self.path().join("reports/t")
    }

    /// Writes `<model>.jsonl`, a transcript answering test item `i` (task
    /// `t`) with `answer(i, t)`, recorded with a latency of `10 + i` ms.
    pub fn transcript(&self, model: &str, answer: impl Fn(usize, &Task) -> String) -> PathBuf {
        self.transcript_with(model, None, |_| true, answer)
    }

    /// [`Workspace::transcript`] for a model asked only the tasks `asked`
    /// takes, with a template of `few_shot` examples (`None`: the suite's).
    pub fn transcript_with(
        &self,
        model: &str,
        few_shot: Option<usize>,
        asked: impl Fn(&Task) -> bool,
        answer: impl Fn(usize, &Task) -> String,
    ) -> PathBuf {
        let s = suite::load_suite(self.path().join("suites/s")).expect("suite loads");
        let split = s.split("test").expect("test split");
        let mut out = String::new();
        for (i, t) in split.tasks.iter().enumerate().filter(|(_, t)| asked(t)) {
            let request = GenerationRequest {
                id: t.id.clone(),
                prompt: suite::build_prompt_with(&s, t, few_shot),
                settings: s.generation_settings(t),
            };
            let text = answer(i, t);
            let entry = TranscriptEntry {
                key: request_key(&request.prompt, &request.settings),
                model: ModelIdentity {
                    backend: "test".into(),
                    name: model.into(),
                    fingerprint: format!("fp-{model}"),
                },
                request_id: t.id.clone(),
                prompt: request.prompt,
                settings: request.settings,
                completion: Some(Completion {
                    usage: Usage {
                        prompt_tokens: 40,
                        completion_tokens: (text.len() / 4) as u64 + 1,
                        cached_prompt_tokens: 0,
                        estimated: false,
                    },
                    text,
                    latency: Some(Latency {
                        total_ms: 10.0 + i as f64,
                        first_token_ms: Some(5.0),
                        batch_ms: None,
                        batch_size: 1,
                        source: LatencySource::Live,
                    }),
                    finish: Some(FinishReason::Stop),
                }),
                error: None,
            };
            out.push_str(&serde_json::to_string(&entry).expect("serialize"));
            out.push('\n');
        }
        let path = self.path().join(format!("{model}.jsonl"));
        std::fs::write(&path, out).expect("transcript");
        path
    }

    /// Writes `gate.toml`: the first model is the teacher, the others
    /// students, all replayed from `<name>.jsonl`; `extra` is appended.
    pub fn config(&self, models: &[&str], extra: &str) -> PathBuf {
        let mut text = String::from("[run]\nname = \"t\"\noutput_dir = \"reports\"\nseed = 7\n");
        for (i, m) in models.iter().enumerate() {
            let (table, price) = if i == 0 {
                (
                    "[teacher]",
                    "{ input_per_mtok = 1.0, output_per_mtok = 4.0 }",
                )
            } else {
                ("[[students]]", "{ per_hour = 1.0 }")
            };
            text.push_str(&format!(
                "{table}\nname = \"{m}\"\nkind = \"replay\"\ntranscript = \"{m}.jsonl\"\nprice = {price}\n"
            ));
        }
        text.push_str("[[suites]]\npath = \"suites/s\"\n");
        text.push_str(extra);
        let path = self.path().join("gate.toml");
        std::fs::write(&path, text).expect("gate.toml");
        path
    }

    /// `distill-gate <args>` in the workspace, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_distill-gate"));
        c.args(args).current_dir(self.path());
        c
    }

    /// Runs `distill-gate <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn distill-gate")
    }
}

/// Exit status and both streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An arithmetic suite: `n` items "a + b", numeric scorer.
pub fn arith(n: usize) -> Workspace {
    const SUITE: &str = "name = \"arith\"\nversion = \"1.0\"\ndescription = \"sums\"\n[defaults]\nprompt = \"Q: {input}\\nA:\"\nmax_tokens = 8\nstop = [\"\\n\"]\nscorer = { kind = \"numeric\", abs_tol = 0.0 }\n";
    let tasks: String = (0..n)
        .map(|i| {
            let cat = ["even", "odd", "big"][i % 3];
            format!(
                "{{\"id\": \"t-{i}\", \"category\": \"{cat}\", \"input\": \"{i} + 3\", \"target\": {}}}\n",
                i + 3
            )
        })
        .collect();
    Workspace::new(SUITE, &tasks)
}

/// Transcripts for a teacher right on 90% of items, a student as good and
/// one right on about half of those.
pub fn standard_models(ws: &Workspace) -> [&'static str; 3] {
    let answer = |right: bool, t: &Task| {
        let target = t.target.as_f64().unwrap_or(0.0);
        format!(" {}", if right { target } else { target + 1.0 })
    };
    ws.transcript("teacher", |i, t| answer(i % 10 != 0, t));
    ws.transcript("good", |i, t| answer(i % 10 != 0, t));
    ws.transcript("bad", |i, t| answer(i % 10 != 0 && i % 2 == 0, t));
    ["teacher", "good", "bad"]
}
