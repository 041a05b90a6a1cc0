//! Token-level distillation end to end: a tiny random teacher checkpoint
//! answers prompts greedily, a student trained on those transcripts with
//! `alpha = 1` (KL only) moves its next-token distributions towards the
//! teacher's; the teacher's tokenizer is adopted and checked; resume refuses
//! another teacher.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use distill_gate::distill::train::TrainLength;
use distill_gate::distill::{DistillOptions, StudentShape, TeacherOptions, distill};
use distill_gate::llm::{
    Backend, Checkpoint, HostTensor, LlamaConfig, LlamaDecoder, StorageDtype, TokenBatch, Weights,
    expected_tensors,
};
use distill_gate::model::transcript::{TranscriptEntry, TranscriptWriter, request_key};
use distill_gate::model::{GenerationRequest, GenerationSettings, Model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "support/tokenizer.rs"]
mod tokenizer;
use tokenizer::tiny_tokenizer;

/// A random teacher with a padded embedding (264 rows for 262 tokens) and
/// weights large enough that its next-token distributions are far from
/// uniform.
fn write_teacher(dir: &Path, seed: u64) -> PathBuf {
    let config = LlamaConfig {
        vocab_size: 264,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        max_position_embeddings: 256,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        hidden_act: "silu".into(),
        rope_scaling: None,
        attention_bias: false,
        mlp_bias: false,
        sliding_window: None,
        tie_word_embeddings: true,
        bos_token_id: Some(1),
        eos_token_id: None,
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: "llama".into(),
        torch_dtype: None,
        output_tokens: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Weights = expected_tensors(&config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if shape.len() == 1 {
                vec![1.0; n]
            } else {
                (0..n).map(|_| rng.random_range(-0.5f32..0.5)).collect()
            };
            (name, HostTensor { shape, data })
        })
        .collect();
    let ckpt = Checkpoint {
        config,
        weights,
        quantized: Default::default(),
        tokenizer: tiny_tokenizer(vec![2]),
        fingerprint: String::new(),
        source: dir.to_path_buf(),
    };
    ckpt.save_hf_dir(dir, StorageDtype::F32).unwrap();
    dir.to_path_buf()
}

fn settings() -> GenerationSettings {
    GenerationSettings {
        max_tokens: 6,
        ..GenerationSettings::default()
    }
}

fn prompt(i: usize) -> String {
    format!("Order {i} goes to")
}

const PROMPTS: usize = 8;

/// The teacher's own greedy answers to the prompts, as `record` writes them.
fn write_transcript(teacher: &Path, path: &Path) {
    let mut model = distill_gate::model::open::open_local(
        "teacher",
        teacher,
        distill_gate::llm::Backend::Flex,
        PROMPTS,
    )
    .unwrap();
    let requests: Vec<GenerationRequest> = (0..PROMPTS)
        .map(|i| GenerationRequest {
            id: format!("p{i}"),
            prompt: prompt(i),
            settings: settings(),
        })
        .collect();
    let answers = model.complete_batch(&requests);
    let mut w = TranscriptWriter::open(path).unwrap();
    for (req, answer) in requests.iter().zip(answers) {
        let completion = answer.unwrap();
        assert!(!completion.text.is_empty());
        w.append(&TranscriptEntry {
            key: request_key(&req.prompt, &req.settings),
            model: model.identity(),
            request_id: req.id.clone(),
            prompt: req.prompt.clone(),
            settings: req.settings.clone(),
            completion: Some(completion),
            error: None,
        })
        .unwrap();
    }
}

/// A tiny random teacher in `dir/teacher` and its greedy answers in
/// `dir/teacher.jsonl`.
fn teacher_and_transcript(dir: &Path) -> (PathBuf, PathBuf) {
    let teacher_dir = write_teacher(&dir.join("teacher"), 11);
    let transcript = dir.join("teacher.jsonl");
    write_transcript(&teacher_dir, &transcript);
    (teacher_dir, transcript)
}

fn options(transcript: &Path, teacher: &Path, out: &Path, steps: usize) -> DistillOptions {
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
        vocab_size: None,
        max_seq_len: 64,
        length: TrainLength::Steps(steps),
        batch_size: PROMPTS,
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
        teacher: Some(TeacherOptions {
            model: teacher.to_path_buf(),
            kd_weight: 1.0,
            kd_temperature: 2.0,
        }),
        init: Default::default(),
        tasks: None,
        resume: false,
        stop_after: None,
    }
}

/// Next-token distributions (T = 1) at `positions` of `ids`, row-major
/// `[positions, vocab]`.
fn distributions(
    model: &LlamaDecoder,
    ids: &[u32],
    positions: std::ops::Range<usize>,
) -> (Vec<f32>, usize) {
    let batch = TokenBatch::right_padded(&[ids.to_vec()], 0).unwrap();
    let logits = model.forward(&batch).unwrap();
    let [_, cols, vocab] = logits.dims();
    let p = softmax(logits.reshape([cols, vocab]), 1);
    let all: Vec<f32> = p.into_data().iter::<f32>().collect();
    (
        all[positions.start * vocab..positions.end * vocab].to_vec(),
        vocab,
    )
}

/// Mean over positions of KL(teacher || student), natural log.
fn mean_kl(teacher: &(Vec<f32>, usize), student: &(Vec<f32>, usize)) -> f64 {
    assert_eq!(teacher.1, student.1, "vocabularies line up");
    let rows = teacher.0.len() / teacher.1;
    let total: f64 = teacher
        .0
        .iter()
        .zip(&student.0)
        .filter(|(t, _)| **t > 0.0)
        .map(|(&t, &s)| f64::from(t) * (f64::from(t).ln() - f64::from(s.max(1e-30)).ln()))
        .sum();
    total / rows as f64
}

fn decoder(dir: &Path) -> LlamaDecoder {
    let ckpt = Checkpoint::load(dir).unwrap();
    LlamaDecoder::from_weights_owned(&ckpt.config, ckpt.weights, &Backend::Flex.device()).unwrap()
}

#[test]
fn kl_only_student_moves_towards_the_teachers_distributions() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher_dir, transcript) = teacher_and_transcript(dir.path());
    let out = dir.path().join("student");
    let o = options(&transcript, &teacher_dir, &out, 60);
    let mut losses = Vec::new();
    let summary = distill(&o, &mut |e| {
        if let distill_gate::distill::TrainEvent::Step { loss, .. } = e {
            losses.push(loss);
        }
    })
    .unwrap();

    // The student adopted the teacher's tokenizer and output width.
    let teacher_ckpt = Checkpoint::load(&teacher_dir).unwrap();
    assert_eq!(summary.config.vocab_size, 264);
    let student_ckpt = Checkpoint::load(&out).unwrap();
    assert_eq!(student_ckpt.tokenizer.vocab_size(), 262);
    assert_eq!(student_ckpt.tokenizer.bos, Some(1));
    assert_eq!(student_ckpt.tokenizer.eos, vec![2]);
    assert_eq!(student_ckpt.tokenizer.chat, teacher_ckpt.tokenizer.chat);
    // training.json names the teacher and the options.
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert_eq!(
        log["teacher"]["fingerprint"],
        teacher_ckpt.fingerprint.as_str()
    );
    assert_eq!(log["options"]["teacher"]["kd_weight"], 1.0);
    assert_eq!(log["options"]["teacher"]["kd_temperature"], 2.0);
    assert!(log["options"]["vocab_size"].is_null());

    // Next-token distributions at the positions that predict a training
    // answer's tokens (the first one is the distribution right after the
    // prompt), before (the exact initial student: same config and seed) and
    // after training.
    let teacher = decoder(&teacher_dir);
    let tok = &teacher_ckpt.tokenizer;
    let mut ids = tok.encode(&prompt(3)).unwrap();
    let prompt_len = ids.len();
    let text = std::fs::read_to_string(&transcript).unwrap();
    let entry: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["request_id"] == "p3")
        .unwrap();
    let answer = entry["completion"]["text"].as_str().unwrap();
    ids.extend(tok.inner().encode(answer, false).unwrap().get_ids());
    let positions = prompt_len - 1..ids.len() - 1;
    let initial =
        LlamaDecoder::init_random(&summary.config, &Backend::Flex.device(), o.seed).unwrap();
    let trained = decoder(&out);
    let t = distributions(&teacher, &ids, positions.clone());
    let before = mean_kl(&t, &distributions(&initial, &ids, positions.clone()));
    let positions_ce = positions.clone();
    let after = mean_kl(&t, &distributions(&trained, &ids, positions));
    // The same student trained on the same answers with cross-entropy only
    // (alpha = 0: the teacher model gives its tokenizer, not its logits)
    // ends further from the teacher's distributions.
    let mut ce_only = o.clone();
    ce_only.out = dir.path().join("ce-only");
    ce_only.teacher.as_mut().unwrap().kd_weight = 0.0;
    let ce_summary = distill(&ce_only, &mut |_| {}).unwrap();
    assert!(ce_summary.evals.iter().all(|e| e.val_kl.is_none()));
    let ce_after = mean_kl(
        &t,
        &distributions(&decoder(&ce_only.out), &ids, positions_ce),
    );
    eprintln!(
        "KL(teacher || student) per position: before {before:.4}, after {after:.4} \
         (cross-entropy only: {ce_after:.4}); loss {} -> {}",
        losses[0],
        losses[losses.len() - 1]
    );
    assert!(
        before > 0.5,
        "the random teacher is far from the initial student: {before}"
    );
    assert!(after < 0.35 * before, "KL {before} -> {after}");
    assert!(losses[losses.len() - 1] < 0.5 * losses[0], "{losses:?}");
    assert!(
        after < ce_after,
        "KL-trained {after} vs CE-trained {ce_after}"
    );
}

#[test]
fn resume_refuses_another_teacher_or_tokenizer_and_vocab_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher_dir, transcript) = teacher_and_transcript(dir.path());

    let mut o = options(&transcript, &teacher_dir, &dir.path().join("bad"), 4);
    o.vocab_size = Some(300);
    let err = distill(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("--vocab-size"), "{err}");
    let mut o = options(&transcript, &teacher_dir, &dir.path().join("bad"), 4);
    o.teacher.as_mut().unwrap().kd_weight = 2.0;
    let err = distill(&o, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("--kd-weight"), "{err}");

    let out = dir.path().join("student");
    let mut first = options(&transcript, &teacher_dir, &out, 6);
    first.stop_after = Some(3);
    first.teacher.as_mut().unwrap().kd_weight = 0.5;
    let s = distill(&first, &mut |_| {}).unwrap();
    assert_eq!(s.steps_done, 3);
    let mut rest = first.clone();
    rest.resume = true;
    rest.stop_after = Some(1);

    // Same path, other weights: the fingerprint gives it away.
    let original = std::fs::read(teacher_dir.join("model.safetensors")).unwrap();
    write_teacher(&teacher_dir, 12);
    let err = distill(&rest, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("teacher model changed"), "{err}");
    std::fs::write(teacher_dir.join("model.safetensors"), &original).unwrap();

    // Another kd weight is another run.
    let mut other = rest.clone();
    other.teacher.as_mut().unwrap().kd_weight = 0.25;
    let err = distill(&other, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("teacher"), "{err}");
    // Dropping the teacher is refused too.
    let mut plain = rest.clone();
    plain.teacher = None;
    plain.vocab_size = Some(300);
    let err = distill(&plain, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("teacher"), "{err}");

    // The same teacher resumes.
    let s = distill(&rest, &mut |_| {}).unwrap();
    assert_eq!(s.steps_done, 4);

    // A saved tokenizer that is not the teacher's is refused.
    let tok_path = out.join("last").join("tokenizer.json");
    let other_tok = distill_gate::distill::bpe::train_bpe(
        ["Order 1 goes to", "Order 2 goes to"].into_iter(),
        270,
    )
    .unwrap();
    other_tok.save(&tok_path, false).unwrap();
    let err = distill(&rest, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("does not match the teacher"), "{err}");
}

#[test]
fn teacher_logits_at_completion_cells_match_the_full_forward() {
    use distill_gate::distill::examples::Example;
    use distill_gate::distill::loss::{LossBatch, completion_logits};
    let dir = tempfile::tempdir().unwrap();
    let teacher_dir = write_teacher(&dir.path().join("teacher"), 5);
    let model = decoder(&teacher_dir);
    let a = Example {
        ids: vec![1, 40, 41, 42, 43, 2],
        prompt_len: 3,
    };
    let b = Example {
        ids: vec![1, 50, 51],
        prompt_len: 2,
    };
    let lb = LossBatch::new(&[&a, &b], 0).unwrap();
    let picked: Vec<f32> = completion_logits(&model, &lb)
        .unwrap()
        .into_data()
        .iter::<f32>()
        .collect();
    let full = model.forward(&lb.batch).unwrap();
    let [rows, cols, vocab] = full.dims();
    let full: Vec<f32> = full.into_data().iter::<f32>().collect();
    assert_eq!(picked.len(), lb.cells.len() * vocab);
    assert_eq!(rows * cols, 10);
    for (k, &cell) in lb.cells.iter().enumerate() {
        let cell = cell as usize;
        for v in 0..vocab {
            let (x, y) = (picked[k * vocab + v], full[cell * vocab + v]);
            assert!((x - y).abs() < 1e-4, "cell {cell} token {v}: {x} vs {y}");
        }
    }
}

#[test]
fn a_student_started_from_the_teacher_keeps_its_chosen_layers() {
    use distill_gate::distill::train::StudentInit;
    let dir = tempfile::tempdir().unwrap();
    let (teacher_dir, transcript) = teacher_and_transcript(dir.path());
    let teacher = Checkpoint::load(&teacher_dir).unwrap();

    // Before any step: the student is the teacher with only its layer 1.
    let (config, weights) =
        distill_gate::distill::teacher::kept_layers(Checkpoint::load(&teacher_dir).unwrap(), &[1])
            .unwrap();
    assert_eq!(config.num_hidden_layers, 1);
    assert_eq!(config.hidden_size, teacher.config.hidden_size);
    for (name, tensor) in &weights {
        let source = name.replace("model.layers.0.", "model.layers.1.");
        assert_eq!(Some(tensor), teacher.weights.get(&source), "{name}");
    }
    assert_eq!(weights.len(), expected_tensors(&config).len());

    // Trained (answers only: kd_weight 0), it keeps the teacher's shape,
    // tokenizer and every matrix it did not learn away from.
    let out = dir.path().join("student");
    let mut o = options(&transcript, &teacher_dir, &out, 3);
    o.teacher.as_mut().unwrap().kd_weight = 0.0;
    o.lr = 1e-4;
    o.min_lr = 1e-5;
    o.init = StudentInit::Teacher { layers: vec![1] };
    let summary = distill(&o, &mut |_| {}).unwrap();
    assert_eq!(summary.config.num_hidden_layers, 1);
    assert_eq!(summary.config.hidden_size, 32);
    assert_eq!(summary.config.intermediate_size, 64);
    let student = Checkpoint::load(&out).unwrap();
    assert_eq!(
        student.tokenizer.vocab_size(),
        teacher.tokenizer.vocab_size()
    );
    let moved = |name: &str, from: &str| {
        let (a, b) = (&student.weights[name].data, &teacher.weights[from].data);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    // A few small steps move a weight a little, never to another layer's.
    let same = moved(
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    );
    let other = moved(
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
    );
    assert!(same < 0.01 && other > 0.1, "{same} {other}");

    // Nonsense layer choices are refused by name.
    let mut bad = o.clone();
    bad.out = dir.path().join("bad");
    bad.init = StudentInit::Teacher { layers: vec![0, 2] };
    let err = distill(&bad, &mut |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("--keep-layers") && err.contains("layer 2"),
        "{err}"
    );
    bad.init = StudentInit::Teacher { layers: vec![1, 1] };
    let err = distill(&bad, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("listed twice"), "{err}");
}

/// `distill-gate quantize --task-vocab` of `model` to `out` as Q8_0:
/// (exit code, stdout + stderr).
fn quantize_cli(model: &Path, out: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(["quantize", "--type", "q8_0", "--task-vocab", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn quantize_task_vocab_keeps_the_tokens_of_the_answers_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher_dir, transcript) = teacher_and_transcript(dir.path());
    let out = dir.path().join("student");
    let mut o = options(&transcript, &teacher_dir, &out, 1);
    o.teacher.as_mut().unwrap().kd_weight = 0.0;
    distill(&o, &mut |_| {}).unwrap();

    // The answers' tokens, read from the transcript itself, and EOS.
    let teacher = Checkpoint::load(&teacher_dir).unwrap();
    let mut want: Vec<u32> = teacher.tokenizer.eos.clone();
    for line in std::fs::read_to_string(&transcript).unwrap().lines() {
        let entry: TranscriptEntry = serde_json::from_str(line).unwrap();
        let text = entry.completion.unwrap().text;
        let ids = teacher
            .tokenizer
            .inner()
            .encode(text.as_str(), false)
            .unwrap();
        want.extend(ids.get_ids());
    }
    want.sort_unstable();
    want.dedup();
    assert!(want.len() < teacher.config.vocab_size / 2, "{}", want.len());

    let gguf = dir.path().join("deploy").join("student.q8_0.gguf");
    std::fs::create_dir_all(gguf.parent().unwrap()).unwrap();
    let (code, text) = quantize_cli(&out, &gguf);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("output layer: {} of 264 tokens", want.len())),
        "{text}"
    );
    let back = Checkpoint::load(&gguf).unwrap();
    assert_eq!(back.config.output_tokens.as_ref(), Some(&want));
    assert!(back.quantized.contains_key("lm_head.weight"));
    // The rows are the student's own output rows (its tied embedding).
    let student = Checkpoint::load(&out).unwrap();
    let head = &back.weights["lm_head.weight"].data;
    let embed = &student.weights["model.embed_tokens.weight"].data;
    for (r, &t) in want.iter().enumerate() {
        for c in 0..32 {
            let (a, b) = (head[r * 32 + c], embed[t as usize * 32 + c]);
            assert!(
                (a - b).abs() <= 0.01 * b.abs().max(0.05),
                "token {t} col {c}: {a} vs {b}"
            );
        }
    }
    // What it was trained on goes with it.
    assert!(gguf.parent().unwrap().join("training.json").is_file());

    // A restricted model is not a teacher to distil from.
    let mut again = o.clone();
    again.out = dir.path().join("again");
    again.teacher.as_mut().unwrap().model = gguf.clone();
    let err = distill(&again, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("restricted to a task vocabulary"), "{err}");

    // Without training.json, or with a transcript changed since, it refuses by name.
    let bare = dir.path().join("bare.gguf");
    let (code, text) = quantize_cli(&teacher_dir, &bare);
    assert_ne!(code, 0);
    assert!(text.contains("training.json"), "{text}");
    let mut lines = std::fs::read_to_string(&transcript).unwrap();
    lines.push('\n');
    std::fs::write(&transcript, lines).unwrap();
    let (code, text) = quantize_cli(&out, &bare);
    assert_ne!(code, 0);
    assert!(
        text.contains("changed since the student was trained on it"),
        "{text}"
    );
    assert!(!bare.exists());
}
