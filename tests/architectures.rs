//! The Llama-family variants besides plain Llama (Llama 3.x rope scaling,
//! Llama's attention biases, Qwen2's q/k/v biases, Qwen3's per-head Q/K norms, Mistral's sliding
//! window) against their reference implementation: tiny random checkpoints
//! saved by Hugging Face transformers, with the reference's logits and
//! greedy tokens (tests/data/architectures, made by
//! `scripts/make-architecture-fixtures`; provenance in its PROVENANCE.md).
//! Each is loaded as a user's checkpoint directory is, on both backends,
//! and again as the `model.gguf` llama.cpp's own converter made of that
//! directory (pinned version in PROVENANCE.md), which must give the same
//! logits and tokens.

use std::path::{Path, PathBuf};

use distill_gate::llm::config::{Architecture, RopeScaling};
use distill_gate::llm::gguf::{GgmlType, GgufFile};
use distill_gate::llm::rope::frequency_divisors;
use distill_gate::llm::{
    Backend, Checkpoint, GenerateRequest, LlamaDecoder, SamplingParams, TokenBatch, generate,
};
use serde_json::Value;

/// Largest absolute logit difference accepted (the bound).
const LOGIT_TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/architectures")
        .join(name)
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// Loads the fixture directory, checks its logits and greedy tokens on
/// every backend against the reference's, and returns the checkpoint.
fn matches_the_reference(name: &str, architecture: Architecture) -> Checkpoint {
    let ckpt = Checkpoint::load(&fixture(name)).unwrap();
    assert_eq!(ckpt.config.architecture(), architecture, "{name}");
    let reference = expected(name);
    assert_eq!(
        reference["architecture"],
        architecture.class_name(),
        "{name}"
    );
    check_outputs(name, &ckpt, &reference);
    ckpt
}

/// Loads the fixture's `model.gguf` (llama.cpp's conversion of the
/// directory) as a user's checkpoint, checks it against the same
/// reference outputs on every backend, and returns it.
fn gguf_matches_the_reference(name: &str, architecture: Architecture) -> Checkpoint {
    let path = fixture(name).join("model.gguf");
    let ckpt = Checkpoint::load(&path).unwrap();
    assert_eq!(ckpt.config.architecture(), architecture, "{name}.gguf");
    assert_eq!(
        Checkpoint::inspect(&path).unwrap(),
        ckpt.config,
        "{name}.gguf"
    );
    check_outputs(&format!("{name}.gguf"), &ckpt, &expected(name));
    ckpt
}

/// Checks a checkpoint's logits (within [`LOGIT_TOLERANCE`]) and greedy
/// tokens on every backend against the reference's.
fn check_outputs(name: &str, ckpt: &Checkpoint, reference: &Value) {
    let cases = reference["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    // The reference generated a fixed number of tokens, EOS included.
    let mut tokenizer = ckpt.tokenizer.clone();
    tokenizer.eos.clear();
    let mut config = ckpt.config.clone();
    config.eos_token_id = None;
    for backend in Backend::ALL {
        let decoder =
            LlamaDecoder::from_weights(&config, &ckpt.weights, &backend.device()).unwrap();
        for case in cases {
            let prompt = ids(&case["ids"]);
            let batch = TokenBatch::right_padded(std::slice::from_ref(&prompt), 0).unwrap();
            let logits: Vec<f32> = decoder
                .forward(&batch)
                .unwrap()
                .into_data()
                .iter::<f32>()
                .collect();
            let want: Vec<f32> = case["logits"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter())
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(logits.len(), want.len(), "{name}");
            let worst = logits
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= LOGIT_TOLERANCE,
                "{name} on {backend}, {:?}: logits differ by up to {worst}",
                case["prompt"]
            );
            let greedy = ids(&case["greedy"]);
            let request = GenerateRequest {
                prompt,
                max_new_tokens: greedy.len(),
                stop: Vec::new(),
                sampling: SamplingParams::greedy(),
            };
            let out = generate(&decoder, &tokenizer, &[request]).unwrap();
            assert_eq!(
                out[0].tokens, greedy,
                "{name} on {backend}, {:?}: greedy tokens",
                case["prompt"]
            );
        }
    }
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    let ckpt = matches_the_reference("llama3", Architecture::Llama);
    assert!(ckpt.config.rope_scaling.is_some());
}

#[test]
fn qwen2_attention_biases_match_transformers() {
    let ckpt = matches_the_reference("qwen2", Architecture::Qwen2);
    assert!(
        ckpt.weights
            .contains_key("model.layers.1.self_attn.k_proj.bias")
    );
}

#[test]
fn qwen3_query_key_norms_match_transformers() {
    let ckpt = matches_the_reference("qwen3", Architecture::Qwen3);
    assert!(
        ckpt.weights
            .contains_key("model.layers.0.self_attn.q_norm.weight")
    );
}

#[test]
fn mistral_within_its_window_matches_transformers() {
    let ckpt = matches_the_reference("mistral", Architecture::Mistral);
    // The context is capped at the window (64), inside which sliding-window
    // attention is full causal attention: a longer prompt is refused.
    assert_eq!(ckpt.config.context_length(), 64);
    let decoder =
        LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &Backend::Flex.device()).unwrap();
    let request = GenerateRequest {
        prompt: vec![1; 65],
        max_new_tokens: 1,
        stop: Vec::new(),
        sampling: SamplingParams::greedy(),
    };
    let err = generate(&decoder, &ckpt.tokenizer, &[request])
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the model's context of 64"), "{err}");
}

#[test]
fn qwen2_gguf_matches_transformers() {
    let ckpt = gguf_matches_the_reference("qwen2", Architecture::Qwen2);
    assert!(
        ckpt.weights
            .contains_key("model.layers.1.self_attn.v_proj.bias")
    );
    assert!(!ckpt.config.tie_word_embeddings);
}

#[test]
fn qwen3_gguf_matches_transformers() {
    let ckpt = gguf_matches_the_reference("qwen3", Architecture::Qwen3);
    assert!(
        ckpt.weights
            .contains_key("model.layers.1.self_attn.k_norm.weight")
    );
    assert_eq!(ckpt.config.head_dim(), 16);
}

/// llama.cpp's converter writes `MistralForCausalLM` as a `llama` model
/// without its sliding window (llama.cpp runs it with full causal
/// attention), which is what the reference computes on these prompts,
/// shorter than the window.
#[test]
fn mistral_gguf_is_llama_and_matches_transformers() {
    let ckpt = gguf_matches_the_reference("mistral", Architecture::Llama);
    assert_eq!(ckpt.config.sliding_window, None);
}

/// The converter stores Llama 3's rope scaling as a `rope_freqs.weight`
/// tensor of per-frequency divisors (no rope metadata), which llama.cpp
/// applies by dividing each frequency; read so, the file gives the
/// reference's outputs, and its divisors are the ones distill-gate computes
/// from the directory's Llama 3 settings.
#[test]
fn llama3_gguf_rope_divisors_match_transformers() {
    let ckpt = gguf_matches_the_reference("llama3", Architecture::Llama);
    let Some(RopeScaling::FrequencyDivisors { divisors }) = &ckpt.config.rope_scaling else {
        panic!("{:?}", ckpt.config.rope_scaling);
    };
    let hf = Checkpoint::inspect(&fixture("llama3")).unwrap();
    assert!(matches!(hf.rope_scaling, Some(RopeScaling::Llama3 { .. })));
    assert_close_divisors(&frequency_divisors(&hf).unwrap(), divisors);
    // One frequency kept, one interpolated, two divided by the factor 8.
    assert_eq!(divisors[0], 1.0);
    assert!(divisors[1] > 1.0 && divisors[1] < 8.0, "{divisors:?}");
    assert_eq!(&divisors[2..], &[8.0, 8.0]);
}

/// distill-gate computes Llama 3's divisors in f64 and rounds once; the
/// converter computes them in torch f32 (with its reciprocal-and-multiply
/// division by a tensor), which can differ in the last bit.
fn assert_close_divisors(ours: &[f32], converter: &[f32]) {
    assert_eq!(ours.len(), converter.len());
    for (a, b) in ours.iter().zip(converter) {
        assert!(
            (a - b).abs() <= 2.0 * f32::EPSILON * b.abs(),
            "{ours:?} vs the converter's {converter:?}"
        );
    }
}

#[test]
fn llama_attention_biases_match_transformers() {
    let ckpt = matches_the_reference("llama-bias", Architecture::Llama);
    assert!(ckpt.config.attention_bias);
    assert!(
        ckpt.weights
            .contains_key("model.layers.1.self_attn.o_proj.bias")
    );
}

/// llama.cpp's converter permutes the q/k biases with the rows of their
/// weights; the reader undoes both.
#[test]
fn llama_bias_gguf_matches_transformers() {
    let ckpt = gguf_matches_the_reference("llama-bias", Architecture::Llama);
    assert!(ckpt.config.attention_bias);
}

/// distill-gate's GGUF writer, given the Hugging Face directory, writes
/// the tensors llama.cpp's converter wrote (same names, shapes and f32
/// values: Q/K rows and biases permuted; Llama 3's rope divisors within
/// two ulps), and
/// the written file gives the reference's outputs. (The fixtures'
/// word-level tokenizer has no GGUF form, so the converter's is used.)
#[test]
fn written_gguf_holds_the_converters_tensors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["llama3", "llama-bias"] {
        let converted_path = fixture(name).join("model.gguf");
        let mut ckpt = Checkpoint::load(&fixture(name)).unwrap();
        ckpt.tokenizer = Checkpoint::load(&converted_path).unwrap().tokenizer;
        let written_path = dir.path().join(format!("{name}.gguf"));
        ckpt.save_gguf(&written_path, GgmlType::F32).unwrap();
        let converted = GgufFile::read(&converted_path).unwrap();
        let written = GgufFile::read(&written_path).unwrap();
        let mut names: Vec<&str> = written.tensors.iter().map(|t| t.name.as_str()).collect();
        let mut want: Vec<&str> = converted.tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want, "{name}");
        for info in &converted.tensors {
            let ours = written.tensor_info(&info.name).unwrap();
            assert_eq!(ours.shape(), info.shape(), "{name}: {}", info.name);
            let (ours, theirs) = (written.tensor_f32(ours), converted.tensor_f32(info));
            if info.name == "rope_freqs.weight" {
                assert_close_divisors(&ours, &theirs);
            } else {
                assert_eq!(ours, theirs, "{name}: {}", info.name);
            }
        }
        let reloaded = Checkpoint::load(&written_path).unwrap();
        check_outputs(&format!("{name} (written)"), &reloaded, &expected(name));
    }
}

#[test]
fn variants_round_trip_their_extra_tensors() {
    for name in ["qwen2", "qwen3", "llama3", "llama-bias", "mistral"] {
        let ckpt = Checkpoint::load(&fixture(name)).unwrap();
        let decoder =
            LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &Backend::Flex.device())
                .unwrap();
        let back = decoder.to_weights().unwrap();
        let mut names: Vec<_> = back.keys().collect();
        let mut want: Vec<_> = ckpt.weights.keys().collect();
        names.sort();
        want.sort();
        assert_eq!(names, want, "{name}");
        for (k, t) in &ckpt.weights {
            assert_eq!(back[k].data, t.data, "{name}: {k}");
        }
    }
}

#[test]
fn an_unsupported_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("qwen2")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["model_type"] = "gemma2".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    for err in [
        Checkpoint::inspect(dir.path()).unwrap_err().to_string(),
        Checkpoint::load(dir.path()).unwrap_err().to_string(),
    ] {
        assert!(
            err.contains("model_type is \"gemma2\"; supported: llama, mistral, qwen2, qwen3"),
            "{err}"
        );
        assert!(err.contains("config.json"), "{err}");
    }
    // A bias the config does not declare is an unknown tensor, not ignored.
    config["model_type"] = "llama".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = Checkpoint::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("q_proj.bias"), "{err}");
}
