//! End-to-end tests of `distill`: a tiny student memorises a few synthetic
//! teacher answers, resume reproduces an uninterrupted run, broken
//! transcripts are reported precisely.

use std::path::{Path, PathBuf};

use distill_gate::distill::train::TrainLength;
use distill_gate::distill::{DistillError, DistillOptions, StudentShape, distill};
use distill_gate::llm::{Backend, StorageDtype};
use distill_gate::model::transcript::{TranscriptEntry, TranscriptWriter, request_key};
use distill_gate::model::{
    Completion, FinishReason, GenerationRequest, GenerationSettings, Latency, LatencySource, Model,
    ModelIdentity, Usage,
};

const CITIES: [&str; 10] = [
    "Rotterdam",
    "Hamburg",
    "Antwerp",
    "Lisbon",
    "Genoa",
    "Gdansk",
    "Valencia",
    "Oslo",
    "Riga",
    "Porto",
];

fn settings() -> GenerationSettings {
    GenerationSettings {
        max_tokens: 12,
        stop: vec!["\n".into()],
        ..GenerationSettings::default()
    }
}

fn entry(prompt: &str, completion: Option<&str>) -> TranscriptEntry {
    let settings = settings();
    TranscriptEntry {
        key: request_key(prompt, &settings),
        model: ModelIdentity {
            backend: "local".into(),
            name: "teacher".into(),
            fingerprint: "f".repeat(64),
        },
        request_id: format!("synthetic/{}", prompt.len()),
        prompt: prompt.into(),
        settings,
        completion: completion.map(|text| Completion {
            text: text.into(),
            usage: Usage::default(),
            latency: Some(Latency {
                total_ms: 1.0,
                first_token_ms: None,
                batch_ms: None,
                batch_size: 1,
                source: LatencySource::Live,
            }),
            finish: Some(FinishReason::Stop),
        }),
        error: completion
            .is_none()
            .then(|| "teacher timed out".to_string()),
    }
}

fn prompt(i: usize) -> String {
    format!("Order {i}{i} ships to:")
}

/// Ten synthetic pairs "Order NN ships to:" -> " City", plus one recorded
/// teacher error (not trained on).
fn write_transcript(dir: &Path) -> PathBuf {
    let path = dir.join("teacher.jsonl");
    let mut w = TranscriptWriter::open(&path).unwrap();
    for (i, city) in CITIES.iter().enumerate() {
        w.append(&entry(&prompt(i), Some(&format!(" {city}"))))
            .unwrap();
    }
    w.append(&entry("Order 123 ships to:", None)).unwrap();
    path
}

fn options(transcript: &Path, out: &Path, steps: usize) -> DistillOptions {
    DistillOptions {
        transcripts: vec![transcript.to_path_buf()],
        out: out.to_path_buf(),
        shape: StudentShape {
            layers: 1,
            hidden: 32,
            heads: 2,
            kv_heads: 1,
            intermediate: 64,
        },
        vocab_size: Some(300),
        teacher: None,
        max_seq_len: 64,
        length: TrainLength::Steps(steps),
        batch_size: 5,
        lr: 1e-2,
        min_lr: 1e-3,
        warmup_steps: Some(3),
        clip: 1.0,
        weight_decay: 0.0,
        val_fraction: 0.0,
        eval_every: 0,
        seed: 3,
        backend: Backend::Flex,
        dtype: StorageDtype::F32,
        init: Default::default(),
        tasks: None,
        resume: false,
        stop_after: None,
    }
}

#[test]
fn tiny_student_memorises_the_teacher_and_loads_for_generation() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let out = dir.path().join("student");
    let mut losses = Vec::new();
    let mut o = options(&transcript, &out, 120);
    o.batch_size = 10;
    o.eval_every = 20;
    let summary = distill(&o, &mut |e| {
        if let distill_gate::distill::TrainEvent::Step { loss, .. } = e {
            losses.push(loss);
        }
    })
    .unwrap();
    assert_eq!(summary.pairs, 10, "the errored line is not a pair");
    assert_eq!(summary.steps_done, 120);
    assert_eq!(losses.len(), 120);
    let first = losses[0];
    let last = *losses.last().unwrap();
    assert!(last < first * 0.05, "loss {first} -> {last}");
    // Every eval is logged.
    assert_eq!(summary.evals.len(), 6);
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(log["steps_done"], 120);
    assert_eq!(
        log["transcripts"][0]["sha256"],
        distill_gate::fingerprint::sha256_file(&transcript).unwrap()
    );
    assert_eq!(log["transcripts"][0]["errors"], 1);

    // The saved student loads like any local checkpoint and answers greedily.
    let mut model = distill_gate::model::open::open_local(
        "student",
        &out,
        distill_gate::llm::Backend::Flex,
        16,
    )
    .unwrap();
    let requests: Vec<GenerationRequest> = (0..CITIES.len())
        .map(|i| GenerationRequest {
            id: i.to_string(),
            prompt: prompt(i),
            settings: settings(),
        })
        .collect();
    let answers = model.complete_batch(&requests);
    let mut right = 0;
    for (answer, city) in answers.iter().zip(CITIES) {
        let c = answer.as_ref().unwrap();
        if c.text == format!(" {city}") {
            right += 1;
            assert_eq!(c.finish, Some(FinishReason::Eos), "it learned to stop");
        }
    }
    assert!(right >= 9, "{right}/10 memorised answers");
}

#[test]
fn the_last_record_loads_as_a_checkpoint_with_the_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let out = dir.path().join("student");
    let mut o = options(&transcript, &out, 40);
    o.eval_every = 20;
    let summary = distill(&o, &mut |_| {}).unwrap();
    // distill's last/model.bpk, read with the run's config.json and
    // tokenizer (last/ holds none of its own config).
    let last = out.join("last/model.bpk");
    assert!(!out.join("last/config.json").exists());
    let record = distill_gate::llm::Checkpoint::load(&last).unwrap();
    let best = distill_gate::llm::Checkpoint::load(&out).unwrap();
    assert_eq!(record.config, best.config);
    assert_eq!(
        record.fingerprint,
        distill_gate::fingerprint::sha256_file(&last).unwrap()
    );
    // The last evaluation was the best: the record holds the weights of the
    // best checkpoint (saved in f32), exactly.
    assert!(summary.evals.last().unwrap().best, "{:?}", summary.evals);
    for (name, t) in &best.weights {
        assert_eq!(t.data, record.weights[name].data, "{name}");
    }
}

#[test]
fn resume_reproduces_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let straight = dir.path().join("straight");
    let mut o = options(&transcript, &straight, 8);
    o.eval_every = 8;
    distill(&o, &mut |_| {}).unwrap();

    let split = dir.path().join("split");
    let mut first = options(&transcript, &split, 8);
    first.eval_every = 8;
    first.stop_after = Some(5);
    let s = distill(&first, &mut |_| {}).unwrap();
    assert_eq!(s.steps_done, 5);
    assert!(!split.join("model.safetensors").exists(), "no eval yet");
    // Without --resume an existing run is not overwritten.
    let err = distill(&first, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    // Resuming with other options is refused.
    let mut other = first.clone();
    other.resume = true;
    other.lr = 5e-3;
    let err = distill(&other, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("lr"), "{err}");

    let mut rest = first.clone();
    rest.resume = true;
    rest.stop_after = None;
    let s = distill(&rest, &mut |_| {}).unwrap();
    assert_eq!(s.steps_done, 8);
    let a = std::fs::read(straight.join("model.safetensors")).unwrap();
    let b = std::fs::read(split.join("model.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from the uninterrupted run");
}

#[test]
fn broken_transcript_lines_are_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let mut text = std::fs::read_to_string(&transcript).unwrap();
    // Line 12: a field the format does not have.
    let mut bad: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    bad["colour"] = "red".into();
    text.push_str(&format!("{bad}\n"));
    // Line 13: a prompt edited by hand (its key no longer matches).
    let mut edited: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    edited["prompt"] = "Order 77 ships to:".into();
    text.push_str(&format!("{edited}\n"));
    std::fs::write(&transcript, text).unwrap();
    let err = distill(&options(&transcript, &dir.path().join("s"), 2), &mut |_| {}).unwrap_err();
    assert!(matches!(err, DistillError::Transcript(_)), "{err}");
    let msg = err.to_string();
    let name = transcript.display().to_string();
    assert!(msg.contains(&format!("{name}:12: colour:")), "{msg}");
    assert!(msg.contains(&format!("{name}:13: key:")), "{msg}");
}

#[test]
fn bad_options_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let mut o = options(&transcript, &dir.path().join("s"), 2);
    o.shape.kv_heads = 3;
    assert!(distill(&o, &mut |_| {}).is_err());
    let mut o = options(&transcript, &dir.path().join("s"), 2);
    o.max_seq_len = 3;
    let err = distill(&o, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("skipped"), "{err}");
}

#[test]
fn padding_and_prompt_targets_do_not_change_an_examples_loss() {
    use distill_gate::distill::examples::Example;
    use distill_gate::distill::loss::{LossBatch, completion_logits, nll_sum};
    use distill_gate::llm::{LlamaConfig, LlamaDecoder};
    let config: LlamaConfig = serde_json::from_value(serde_json::json!({
        "vocab_size": 40, "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "tie_word_embeddings": true
    }))
    .unwrap();
    let device = Backend::Flex.device();
    let model = LlamaDecoder::init_random(&config, &device, 5).unwrap();
    let loss = |examples: &[&Example]| -> f32 {
        let lb = LossBatch::new(examples, 0).unwrap();
        let logits = completion_logits(&model, &lb).unwrap();
        nll_sum(logits, &lb.targets)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .next()
            .unwrap()
    };
    let a = Example {
        ids: vec![3, 4, 5, 6, 7],
        prompt_len: 3,
    };
    let long = Example {
        ids: (1..30).collect(),
        prompt_len: 29,
    };
    // `long` has no completion target (prompt_len = len): it only pads `a`.
    let alone = loss(&[&a]);
    let padded = loss(&[&a, &long]);
    assert!((alone - padded).abs() < 1e-5, "{alone} vs {padded}");
    // Learned targets matter.
    let other = Example {
        ids: vec![3, 4, 5, 6, 9],
        prompt_len: 3,
    };
    assert!((loss(&[&other]) - alone).abs() > 1e-6);
}
