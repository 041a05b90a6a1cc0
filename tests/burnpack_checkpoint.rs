//! burn's own record files (`.bpk`) of the shipped decoder as student
//! checkpoints: read with the `config.json` and tokenizer beside them (or,
//! for `distill`'s `last/model.bpk`, its run's), they give the same weights,
//! logits and gated answers as the same model saved as safetensors; a
//! record without its architecture is refused, naming the missing file.

use std::path::{Path, PathBuf};

use burn::module::Module;
use distill_gate::llm::{Backend, Checkpoint, LlamaDecoder, StorageDtype, TokenBatch};
use serde_json::Value;

mod support;
use support::{arith, text};

#[path = "support/tokenizer.rs"]
mod tokenizer;
use tokenizer::tiny_tokenizer;

#[path = "support/tiny_model.rs"]
mod tiny_model;
use tiny_model::{random_weights, tiny_config};

/// The tiny model saved twice under `root`: as a Hugging Face directory
/// `hf/`, and as burn's record `bpk/model.bpk` (saved with burn's recorder
/// from the decoder built from the same weights) with the directory's JSON
/// files beside it. Returns both paths.
fn save_both(root: &Path) -> (PathBuf, PathBuf) {
    let config = tiny_config(false);
    let weights = random_weights(&config, 11);
    let hf = root.join("hf");
    let ckpt = Checkpoint {
        weights: weights.clone(),
        quantized: Default::default(),
        config: config.clone(),
        tokenizer: tiny_tokenizer(vec![2, 0]),
        fingerprint: String::new(),
        source: hf.clone(),
    };
    ckpt.save_hf_dir(&hf, StorageDtype::F32).unwrap();
    let bpk_dir = root.join("bpk");
    std::fs::create_dir_all(&bpk_dir).unwrap();
    let bpk = bpk_dir.join("model.bpk");
    LlamaDecoder::from_weights(&config, &weights, &Backend::Flex.device())
        .unwrap()
        .save_file(&bpk)
        .unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(hf.join(f), bpk_dir.join(f)).unwrap();
    }
    (hf, bpk)
}

/// Logits of the model at `path` for two prompts, on the host.
fn logits(path: &Path) -> Vec<f32> {
    let ckpt = Checkpoint::load(path).unwrap();
    let decoder =
        LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &Backend::Flex.device()).unwrap();
    let batch = TokenBatch::left_padded(&[vec![1, 70, 80, 90, 100], vec![1, 5, 6]], 0).unwrap();
    decoder
        .forward(&batch)
        .unwrap()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn a_record_loads_the_same_weights_and_logits_as_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, bpk) = save_both(dir.path());
    let a = Checkpoint::load(&hf).unwrap();
    let b = Checkpoint::load(&bpk).unwrap();
    assert_eq!(a.config, b.config);
    assert_eq!(a.weights.len(), b.weights.len());
    for (name, t) in &a.weights {
        let u = &b.weights[name];
        assert_eq!((&t.shape, &t.data), (&u.shape, &u.data), "{name}");
    }
    assert_eq!(
        b.fingerprint,
        distill_gate::fingerprint::sha256_file(&bpk).unwrap(),
        "the fingerprint is the record file's hash"
    );
    assert_eq!(logits(&hf), logits(&bpk));
    assert_eq!(Checkpoint::inspect(&bpk).unwrap(), a.config);
}

#[test]
fn a_record_in_gate_toml_answers_as_the_safetensors_checkpoint() {
    let ws = arith(6);
    let (hf, bpk) = save_both(ws.path());
    let config = format!(
        "[run]\nname = \"t\"\noutput_dir = \"reports\"\nseed = 7\n\
         [teacher]\nname = \"hf\"\nkind = \"local\"\npath = \"{}\"\nbatch_size = 1\n\
         price = {{ per_hour = 1.0 }}\n\
         [[students]]\nname = \"bpk\"\nkind = \"local\"\npath = \"{}\"\nbatch_size = 1\n\
         price = {{ per_hour = 1.0 }}\n\
         [[suites]]\npath = \"suites/s\"\n",
        hf.display(),
        bpk.display()
    );
    std::fs::write(ws.path().join("gate.toml"), config).unwrap();
    let o = ws.run(&["validate", "gate.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
    let journal = std::fs::read_to_string(ws.run_dir().join("results.jsonl")).unwrap();
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outputs = |model: &str| -> Vec<(String, Value)> {
        let mut v: Vec<_> = lines
            .iter()
            .filter(|l| l["model"] == model)
            .map(|l| {
                (
                    l["task_id"].as_str().unwrap().to_string(),
                    l["output"].clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(outputs("hf").len(), 6);
    assert_eq!(
        outputs("hf"),
        outputs("bpk"),
        "the record answers differently"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.run_dir().join("summary.json")).unwrap())
            .unwrap();
    let bpk_info = &summary["models"][1];
    assert_eq!(
        bpk_info["fingerprint"],
        distill_gate::fingerprint::sha256_file(&bpk).unwrap()
    );

    // The record's identity covers the architecture read with it: another
    // config.json beside it is another model, asked again.
    let before = bpk_info["model_id"].clone();
    let cfg = bpk.with_file_name("config.json");
    let mut edited: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    edited["rms_norm_eps"] = 2e-5.into();
    std::fs::write(&cfg, edited.to_string()).unwrap();
    let o = ws.run(&["run", "gate.toml", "--quiet"]);
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("bpk: 6 journaled answer(s) were given by another model"),
        "{}",
        text(&o)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.run_dir().join("summary.json")).unwrap())
            .unwrap();
    assert_ne!(summary["models"][1]["model_id"], before);
}

#[test]
fn distills_last_record_is_read_with_its_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, bpk) = save_both(dir.path());
    // distill's layout: the best checkpoint and training.json in the run's
    // directory, last/ holding model.bpk, tokenizer.json and state.json.
    let run = hf.clone();
    std::fs::write(run.join("training.json"), "{}").unwrap();
    let last = run.join("last");
    std::fs::create_dir_all(&last).unwrap();
    std::fs::copy(&bpk, last.join("model.bpk")).unwrap();
    std::fs::copy(run.join("tokenizer.json"), last.join("tokenizer.json")).unwrap();
    std::fs::write(last.join("state.json"), "{}").unwrap();
    let loaded = Checkpoint::load(&last.join("model.bpk")).unwrap();
    assert_eq!(loaded.config, Checkpoint::load(&hf).unwrap().config);
    assert_eq!(logits(&last.join("model.bpk")), logits(&hf));

    // A tokenizer beside the record other than the run's: refused.
    let other = std::fs::read_to_string(last.join("tokenizer.json"))
        .unwrap()
        .replacen("\"Ġt\"", "\"Ġx\"", 1);
    std::fs::write(last.join("tokenizer.json"), other).unwrap();
    let e = Checkpoint::load(&last.join("model.bpk"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("differs from"), "{e}");
}

#[test]
fn a_record_without_its_architecture_or_of_another_is_refused() {
    let ws = arith(3);
    let (_, bpk) = save_both(ws.path());
    std::fs::remove_file(bpk.with_file_name("config.json")).unwrap();
    let e = Checkpoint::load(&bpk).unwrap_err().to_string();
    assert!(
        e.contains("config.json is missing") && e.contains("a burn record holds weights only"),
        "{e}"
    );
    // In a config: `validate` names the entry's `path` line, exit code 2.
    let config = format!(
        "[teacher]\nname = \"t\"\nkind = \"local\"\npath = \"{}\"\n\
         [[students]]\nname = \"s\"\nkind = \"local\"\npath = \"{}\"\n\
         [[suites]]\npath = \"suites/s\"\n",
        bpk.display(),
        bpk.display()
    );
    std::fs::write(ws.path().join("gate.toml"), config).unwrap();
    let o = ws.run(&["validate", "gate.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("gate.toml:8: students[0].path:")
            && stderr.contains("config.json is missing"),
        "{}",
        text(&o)
    );

    // A config.json of another architecture: the record does not fit it.
    let mut wider = tiny_config(false);
    wider.intermediate_size = 128;
    std::fs::write(
        bpk.with_file_name("config.json"),
        serde_json::to_string(&wider).unwrap(),
    )
    .unwrap();
    let e = Checkpoint::load(&bpk).unwrap_err().to_string();
    assert!(e.contains("not a record of the decoder"), "{e}");
}
