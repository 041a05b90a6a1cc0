//! `kind = "custom"`: a model the program supplies at run time
//! (`pipeline::run_with_models`) is gated like any configured model: its
//! answers are journaled, scored and reported under its entry name, bound
//! to the identity it gives itself, so a resumed run reuses them only while
//! that identity is the same. The command line, which has no such model,
//! refuses the entry at its line with exit code 2.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use distill_gate::model::custom::CustomModels;
use distill_gate::model::{
    Completion, GenerationRequest, Latency, LatencySource, Model, ModelError, ModelIdentity, Usage,
};
use distill_gate::pipeline::{self, PipelineError, RunOptions};
use serde_json::Value;

mod support;
use support::{Workspace, arith, standard_models, text};

/// A model that adds the two numbers of an arithmetic prompt
/// (`... Q: a + b\nA:`), wrong on every item whose `a` is a multiple of
/// `wrong_every`, and counts the requests it is asked.
struct Adder {
    fingerprint: String,
    wrong_every: usize,
    asked: Rc<Cell<usize>>,
}

impl Adder {
    fn new(fingerprint: &str, asked: &Rc<Cell<usize>>) -> Self {
        Self {
            fingerprint: fingerprint.to_string(),
            wrong_every: 4,
            asked: Rc::clone(asked),
        }
    }

    /// The answer to the last question of `prompt`.
    fn answer(&self, prompt: &str) -> Option<String> {
        let question = prompt.rsplit("Q: ").next()?.split('\n').next()?;
        let (a, b) = question.split_once(" + ")?;
        let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        let wrong = usize::from(a.is_multiple_of(self.wrong_every));
        Some(format!(" {}", a + b + wrong))
    }
}

impl Model for Adder {
    fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            backend: "test-adder".into(),
            name: "adder".into(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        self.asked.set(self.asked.get() + requests.len());
        requests
            .iter()
            .map(|r| {
                let text = self
                    .answer(&r.prompt)
                    .ok_or_else(|| ModelError::Failed(format!("{}: no question", r.id)))?;
                Ok(Completion {
                    text,
                    usage: Usage {
                        prompt_tokens: r.prompt.len() as u64,
                        completion_tokens: 2,
                        cached_prompt_tokens: 0,
                        estimated: false,
                    },
                    latency: Some(Latency {
                        total_ms: 1.0,
                        first_token_ms: None,
                        batch_ms: None,
                        batch_size: requests.len(),
                        source: LatencySource::Live,
                    }),
                    finish: None,
                })
            })
            .collect()
    }

    fn preferred_batch_size(&self) -> usize {
        3
    }
}

/// A workspace of 12 arithmetic items, a replayed teacher and the config:
/// the student `mine` is `kind = "custom"`.
fn workspace() -> (Workspace, PathBuf) {
    let ws = arith(12);
    standard_models(&ws);
    let text = "[run]\nname = \"t\"\noutput_dir = \"reports\"\nseed = 7\n\
                [teacher]\nname = \"teacher\"\nkind = \"replay\"\ntranscript = \"teacher.jsonl\"\n\
                price = { input_per_mtok = 1.0, output_per_mtok = 4.0 }\n\
                [[students]]\nname = \"mine\"\nkind = \"custom\"\nprice = { per_hour = 1.0 }\n\
                [[suites]]\npath = \"suites/s\"\n";
    let config = ws.path().join("gate.toml");
    std::fs::write(&config, text).unwrap();
    (ws, config)
}

fn options(config: &Path) -> RunOptions<'_> {
    RunOptions {
        config,
        fresh: false,
        show_progress: false,
        max_cost: None,
        shard: None,
    }
}

/// The journal's lines of `model`, parsed.
fn journal_lines(ws: &Workspace, model: &str) -> Vec<Value> {
    std::fs::read_to_string(ws.run_dir().join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["model"] == model)
        .collect()
}

fn summary(ws: &Workspace) -> Value {
    let text = std::fs::read_to_string(ws.run_dir().join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_supplied_model_is_journaled_scored_and_reported_under_its_entry_name() {
    let (ws, config) = workspace();
    let asked = Rc::new(Cell::new(0));
    let done = pipeline::run_with_models(
        &options(&config),
        CustomModels::new().with("mine", Adder::new("weights-v1", &asked)),
    )
    .expect("the run finishes");
    assert_eq!(asked.get(), 12, "every item asked once");

    // The journal holds its answers, scored.
    let lines = journal_lines(&ws, "mine");
    assert_eq!(lines.len(), 12);
    for l in &lines {
        let task: usize = l["task_id"].as_str().unwrap()[2..].parse().unwrap();
        let right = !task.is_multiple_of(4);
        let sum = task + 3 + usize::from(!right);
        assert_eq!(l["output"], format!(" {sum}"), "{l}");
        assert_eq!(l["score"], if right { 1.0 } else { 0.0 }, "{l}");
        assert_eq!(l["role"], "student");
    }

    // The summary and every report name it by its entry, with the
    // fingerprint it gave.
    let s = summary(&ws);
    let info = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mine")
        .expect("the model is in the summary");
    assert_eq!(info["backend"], "custom (supplied at run time)");
    assert_eq!(info["fingerprint"], "weights-v1");
    let stats = done
        .summary
        .model_stats
        .iter()
        .find(|m| m.model == "mine" && m.suite == "arith" && m.category.is_none())
        .expect("statistics of the supplied model");
    assert!((stats.accuracy - 9.0 / 12.0).abs() < 1e-12, "{stats:?}");
    assert!(done.summary.gates.iter().any(|g| g.student == "mine"));
    for file in ["report.md", "report.html", "junit.xml", "results.csv"] {
        let text = std::fs::read_to_string(ws.run_dir().join(file)).unwrap();
        assert!(text.contains("mine"), "{file} does not name the model");
        assert!(!text.contains("adder"), "{file} labels it by its own name");
    }

    // `report` re-renders the run without the program: the identity comes
    // from the run's summary.
    let o = ws.run(&["report", "reports/t"]);
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mine"));
}

#[test]
fn resume_reuses_answers_only_while_the_identity_is_the_same() {
    let (ws, config) = workspace();
    let asked = Rc::new(Cell::new(0));
    let run = |fingerprint: &str| {
        pipeline::run_with_models(
            &options(&config),
            CustomModels::new().with("mine", Adder::new(fingerprint, &asked)),
        )
        .expect("the run finishes")
    };
    run("weights-v1");
    assert_eq!(asked.get(), 12);
    let first = journal_lines(&ws, "mine");

    // The same identity: nothing asked again.
    run("weights-v1");
    assert_eq!(asked.get(), 12, "a resumed run asked the same model again");

    // Another fingerprint: another model, every item asked again, and the
    // journal's last answers are bound to the new identity.
    run("weights-v2");
    assert_eq!(asked.get(), 24, "answers of another identity were reused");
    let lines = journal_lines(&ws, "mine");
    assert_eq!(lines.len(), 24);
    let old_id = &first[0]["model_id"];
    assert!(lines[12..].iter().all(|l| &l["model_id"] != old_id));
    assert_eq!(summary(&ws)["models"][1]["fingerprint"], "weights-v2");

    // The model's own name or backend is part of its identity too.
    let renamed = |asked: &Rc<Cell<usize>>| Adder {
        wrong_every: 5,
        ..Adder::new("weights-v2", asked)
    };
    struct Renamed(Adder);
    impl Model for Renamed {
        fn identity(&self) -> ModelIdentity {
            ModelIdentity {
                name: "adder-2".into(),
                ..self.0.identity()
            }
        }
        fn complete_batch(
            &mut self,
            requests: &[GenerationRequest],
        ) -> Vec<Result<Completion, ModelError>> {
            self.0.complete_batch(requests)
        }
    }
    pipeline::run_with_models(
        &options(&config),
        CustomModels::new().with("mine", Renamed(renamed(&asked))),
    )
    .expect("the run finishes");
    assert_eq!(asked.get(), 36);
}

/// The problems of a refused run, displayed.
fn refusal(result: Result<pipeline::Evaluated, PipelineError>) -> String {
    match result {
        Ok(_) => panic!("the run was not refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_unknown_or_anonymous_supplied_model_is_refused_at_its_line() {
    let (ws, config) = workspace();
    let asked = Rc::new(Cell::new(0));
    // The library, without the model: the entry's `kind` line (12).
    let message = refusal(pipeline::run_with_models(
        &options(&config),
        CustomModels::new(),
    ));
    assert!(
        message.contains(
            "gate.toml:12: students[0].kind: kind = \"custom\": no model was supplied for \"mine\""
        ),
        "{message}"
    );
    // A model for a name the config has no custom entry for.
    let message = refusal(pipeline::run_with_models(
        &options(&config),
        CustomModels::new()
            .with("mine", Adder::new("f", &asked))
            .with("teacher", Adder::new("f", &asked)),
    ));
    assert!(
        message.contains(
            "a model was supplied for \"teacher\", but no entry of kind = \"custom\" has that name"
        ),
        "{message}"
    );
    // A model that gives no fingerprint.
    let message = refusal(pipeline::run_with_models(
        &options(&config),
        CustomModels::new().with("mine", Adder::new(" ", &asked)),
    ));
    assert!(
        message.contains(
            "students[0].kind: the model supplied for \"mine\" gives an empty fingerprint"
        ),
        "{message}"
    );
    assert_eq!(asked.get(), 0, "a model ran before the run was refused");
    assert!(!ws.run_dir().join("results.jsonl").exists());

    // The command line has none to supply: `validate` and `run` exit 2,
    // naming file, line and field.
    for args in [["validate", "gate.toml"], ["run", "gate.toml"]] {
        let o = ws.run(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("gate.toml:12: students[0].kind: kind = \"custom\": no model was supplied for \"mine\"")
                && stderr.contains("run_with_models"),
            "{}",
            text(&o)
        );
    }

    // A custom entry takes no key of another kind.
    let bad = std::fs::read_to_string(&config)
        .unwrap()
        .replace("kind = \"custom\"\n", "kind = \"custom\"\npath = \"x\"\n");
    std::fs::write(&config, bad).unwrap();
    let o = ws.run(&["validate", "gate.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "gate.toml:13: students[0].path: not a key of kind = \"custom\" (it takes no key of its own"
        ),
        "{}",
        text(&o)
    );
}
