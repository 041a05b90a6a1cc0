//! Tiny random checkpoints written and read back as Hugging Face directories
//! and GGUF files, and every kind of damaged checkpoint giving a clear error.

use std::path::Path;

use distill_gate::llm::gguf::{self, GgmlType, GgufFile};
use distill_gate::llm::safetensors_io::{read_safetensors, write_safetensors};
use distill_gate::llm::{
    Backend, ChatTemplate, Checkpoint, GenerateRequest, HostTensor, LlamaDecoder, SamplingParams,
    StorageDtype, TextTokenizer, generate, loglikelihood,
};

#[path = "support/tokenizer.rs"]
mod tokenizer;
use tokenizer::tiny_tokenizer;

#[path = "support/tiny_model.rs"]
mod tiny_model;
use tiny_model::{random_weights, tiny_config};

fn tiny_checkpoint(tied: bool) -> Checkpoint {
    let config = tiny_config(tied);
    Checkpoint {
        weights: random_weights(&config, 7),
        quantized: Default::default(),
        config,
        tokenizer: tiny_tokenizer(vec![2, 0]),
        fingerprint: String::new(),
        source: "memory".into(),
    }
}

const SAMPLES: [&str; 5] = [
    "the cat",
    "Price: 1234 kg\nthe end",
    "  two  spaces and\ttab",
    "héllo wörld — ünïcode ✓ 日本",
    "<|im_start|>user\nthe 42<|im_end|>",
];

fn assert_same_tokenizer(a: &TextTokenizer, b: &TextTokenizer) {
    for s in SAMPLES {
        assert_eq!(a.encode(s).unwrap(), b.encode(s).unwrap(), "{s:?}");
        let ids = b.encode(s).unwrap();
        let start = usize::from(b.add_bos);
        assert_eq!(b.decode(&ids[start..]).unwrap(), s);
    }
    assert_eq!(a.bos, b.bos);
    assert_eq!(a.add_bos, b.add_bos);
    assert_eq!(a.eos, b.eos);
    assert_eq!(a.chat, b.chat);
}

/// The error loading the checkpoint at `path` gives, after checking that
/// `Checkpoint::inspect` (which reads no weights, what `validate` runs)
/// refuses it with the same message.
fn load_err(path: &Path) -> String {
    let msg = match Checkpoint::load(path) {
        Ok(_) => panic!("expected an error loading {}", path.display()),
        Err(e) => e.to_string(),
    };
    match Checkpoint::inspect(path) {
        Ok(_) => panic!("inspect accepts what load refuses: {msg}"),
        Err(e) => assert_eq!(e.to_string(), msg, "inspect and load disagree"),
    }
    msg
}

#[test]
fn tiny_tokenizer_behaves_like_smollm() {
    let t = tiny_tokenizer(vec![2, 0]);
    // BOS first, each digit its own token, specials matched in raw text.
    let ids = t.encode("<|im_start|>the 12").unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(ids[1], 1);
    // "the" without a leading space is "t" + "he"; each digit is a token.
    assert_eq!(
        ids[2..5],
        [
            t.token_id("t").unwrap(),
            t.token_id("he").unwrap(),
            t.token_id("Ġ").unwrap()
        ]
    );
    assert_eq!(t.decode(&ids[ids.len() - 2..]).unwrap(), "12");
    assert_eq!(ids[ids.len() - 2], t.token_id("1").unwrap());
    assert_eq!(t.encode(" the").unwrap()[1], t.token_id("Ġthe").unwrap());
}

#[test]
fn hf_dir_round_trip_f32_is_exact() {
    let ckpt = tiny_checkpoint(false);
    let dir = tempfile::tempdir().unwrap();
    let fp = ckpt.save_hf_dir(dir.path(), StorageDtype::F32).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let back = Checkpoint::load(dir.path()).unwrap();
    assert_eq!(back.fingerprint, fp);
    assert_eq!(back.fingerprint.len(), 64);
    assert_eq!(back.weights, ckpt.weights);
    let mut want = ckpt.config.clone();
    want.torch_dtype = Some("float32".into());
    want.eos_token_id = Some(distill_gate::llm::config::EosTokens::Many(vec![2, 0]));
    assert_eq!(back.config, want);
    assert_eq!(Checkpoint::inspect(dir.path()).unwrap(), want);
    assert_same_tokenizer(&ckpt.tokenizer, &back.tokenizer);
    assert_eq!(back.tokenizer.vocab_size(), 262);

    let tc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(tc["bos_token"], "<|im_start|>");
    assert_eq!(tc["eos_token"], "<|im_end|>");
    assert_eq!(tc["add_bos_token"], true);
    assert!(
        tc["chat_template"]
            .as_str()
            .unwrap()
            .contains("You are tiny.")
    );
}

#[test]
fn hf_dir_round_trip_half_precision() {
    let ckpt = tiny_checkpoint(true);
    for (dtype, rel) in [
        (StorageDtype::F16, 1.0 / 2048.0),
        (StorageDtype::BF16, 1.0 / 256.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        ckpt.save_hf_dir(dir.path(), dtype).unwrap();
        let back = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(back.config.torch_dtype.as_deref(), Some(dtype.torch_name()));
        for (name, t) in &ckpt.weights {
            let b = &back.weights[name];
            assert_eq!(b.shape, t.shape);
            for (x, y) in t.data.iter().zip(&b.data) {
                assert!(
                    (x - y).abs() <= x.abs() * rel + 1e-7,
                    "{dtype:?} {name}: {x} {y}"
                );
            }
        }
        let size = std::fs::metadata(dir.path().join("model.safetensors"))
            .unwrap()
            .len();
        let values: usize = ckpt.weights.values().map(|t| t.data.len()).sum();
        assert!(
            size < (values * 2 + 4096) as u64,
            "{size} bytes for {values} values"
        );
    }
}

/// Rows of a Q/K projection after llama.cpp's converter permutation, written
/// directly from its numpy expression
/// `w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)`.
fn converter_permute(t: &HostTensor, n_head: usize) -> Vec<f32> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let half = rows / n_head / 2;
    let mut out = Vec::with_capacity(rows * cols);
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let src = h * 2 * half + j * half + i;
                out.extend_from_slice(&t.data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[test]
fn gguf_round_trip_f32_is_exact_and_permutes_q_k_on_disk() {
    let ckpt = tiny_checkpoint(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let fp = ckpt.save_gguf(&path, GgmlType::F32).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back.fingerprint, fp);
    assert_eq!(
        back.weights, ckpt.weights,
        "F32 GGUF round trip must be exact"
    );
    let mut want = ckpt.config.clone();
    want.eos_token_id = Some(distill_gate::llm::config::EosTokens::One(2));
    assert_eq!(back.config, want);
    assert_same_tokenizer(&ckpt.tokenizer, &back.tokenizer);
    // llama.cpp wants one token per embedding row: two unused pads were added.
    assert_eq!(back.tokenizer.vocab_size(), 264);
    assert_eq!(back.tokenizer.token_id("[PAD263]"), Some(263));

    // On disk, Q/K rows are in llama.cpp's interleaved order, dims innermost first.
    let file = GgufFile::read(&path).unwrap();
    let q = file.tensor_info("blk.1.attn_q.weight").unwrap();
    assert_eq!(q.dims, vec![64, 64]);
    let k = file.tensor_info("blk.1.attn_k.weight").unwrap();
    assert_eq!(k.dims, vec![64, 32]);
    let hf_q = &ckpt.weights["model.layers.1.self_attn.q_proj.weight"];
    let hf_k = &ckpt.weights["model.layers.1.self_attn.k_proj.weight"];
    assert_eq!(file.tensor_f32(q), converter_permute(hf_q, 4));
    assert_eq!(file.tensor_f32(k), converter_permute(hf_k, 2));
    assert_ne!(file.tensor_f32(q), hf_q.data);
    let v = file.tensor_info("blk.1.attn_v.weight").unwrap();
    assert_eq!(
        file.tensor_f32(v),
        ckpt.weights["model.layers.1.self_attn.v_proj.weight"].data
    );
    assert!(
        file.tensor_info("output.weight").is_none(),
        "tied embeddings: no output.weight"
    );
    assert_eq!(
        file.get("tokenizer.ggml.pre").and_then(|v| v.as_str()),
        Some("smollm")
    );
}

#[test]
fn gguf_quantized_round_trips_stay_within_the_block_error() {
    let ckpt = tiny_checkpoint(false);
    let dir = tempfile::tempdir().unwrap();
    for ty in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::F16] {
        let path = dir.path().join(format!("tiny-{}.gguf", ty.name()));
        ckpt.save_gguf(&path, ty).unwrap();
        let file = GgufFile::read(&path).unwrap();
        assert_eq!(
            file.tensor_info("blk.0.ffn_up.weight").unwrap().ggml_type,
            ty
        );
        assert_eq!(
            file.tensor_info("blk.0.ffn_norm.weight").unwrap().ggml_type,
            GgmlType::F32
        );
        let back = Checkpoint::load(&path).unwrap();
        assert!(!back.config.tie_word_embeddings);
        for (name, t) in &ckpt.weights {
            let b = &back.weights[name];
            assert_eq!(b.shape, t.shape, "{name}");
            if t.shape.len() == 1 {
                assert_eq!(b.data, t.data, "norms are stored as F32");
                continue;
            }
            // Q/K were permuted before quantization, so compare each original
            // row block against the value that came back for the same row.
            for (row_a, row_b) in t.data.chunks(32).zip(b.data.chunks(32)) {
                let (lo, hi) = row_a
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                        (l.min(x), h.max(x))
                    });
                let amax = lo.abs().max(hi.abs());
                let tol = match ty {
                    // half a step of amax/127, plus f16 rounding of the scale
                    GgmlType::Q8_0 => 0.5 * amax / 127.0 + amax / 1024.0,
                    // half a step of (max-min)/15, plus f16 rounding of d and m
                    GgmlType::Q4_1 => 0.5 * (hi - lo) / 15.0 + (hi - lo + lo.abs()) / 1024.0,
                    _ => amax / 2048.0,
                };
                for (x, y) in row_a.iter().zip(row_b) {
                    assert!(
                        (x - y).abs() <= tol + 1e-7,
                        "{} {name}: {x} vs {y} (tol {tol})",
                        ty.name()
                    );
                }
            }
        }
    }
}

// ---- damaged checkpoints ----

fn saved_hf(tied: bool) -> (tempfile::TempDir, Checkpoint) {
    let ckpt = tiny_checkpoint(tied);
    let dir = tempfile::tempdir().unwrap();
    ckpt.save_hf_dir(dir.path(), StorageDtype::F32).unwrap();
    (dir, ckpt)
}

fn saved_gguf(ty: GgmlType) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    tiny_checkpoint(true).save_gguf(&path, ty).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes)
}

/// Position just after a tensor's name in the GGUF tensor-info table.
fn after_tensor_name(bytes: &[u8], name: &str) -> usize {
    let mut pat = (name.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .expect("tensor info");
    at + pat.len()
}

#[test]
fn truncated_safetensors_names_file_and_tensor() {
    let (dir, _) = saved_hf(false);
    let p = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("model.safetensors: invalid safetensors file: tensor "),
        "{msg}"
    );
    assert!(
        msg.contains("lie past the end of the data section"),
        "{msg}"
    );
}

#[test]
fn inspect_reads_the_header_not_the_weights() {
    let (dir, ckpt) = saved_hf(false);
    let p = dir.path().join("model.safetensors");
    // Every weight byte overwritten: the header still describes a checkpoint
    // whose tensors are all there, so inspect (which reads no weight) accepts it.
    let mut bytes = std::fs::read(&p).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[header..].fill(0xff);
    std::fs::write(&p, &bytes).unwrap();
    let config = Checkpoint::inspect(dir.path()).unwrap();
    assert_eq!(config.num_hidden_layers, ckpt.config.num_hidden_layers);

    // One byte short of the data the header declares.
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("model.safetensors: invalid safetensors file: tensor "),
        "{msg}"
    );
    assert!(msg.ends_with("truncated file?"), "{msg}");
}

#[test]
fn files_that_are_not_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("teacher.jsonl");
    std::fs::write(&jsonl, "{}\n").unwrap();
    let msg = load_err(&jsonl);
    assert!(
        msg.starts_with(&format!("{}: not a checkpoint", jsonl.display())),
        "{msg}"
    );
    // A directory without config.json.
    let msg = load_err(dir.path());
    assert!(msg.contains("config.json"), "{msg}");
}

#[test]
fn wrong_shape_missing_and_extra_tensors_are_named() {
    let (dir, ckpt) = saved_hf(false);
    let p = dir.path().join("model.safetensors");
    let mut w = ckpt.weights.clone();
    w.insert(
        "model.layers.0.self_attn.k_proj.weight".into(),
        HostTensor {
            shape: vec![64, 64],
            data: vec![0.0; 64 * 64],
        },
    );
    w.remove("model.layers.1.mlp.gate_proj.weight");
    w.insert(
        "model.layers.0.self_attn.q_proj.bias".into(),
        HostTensor {
            shape: vec![64],
            data: vec![0.0; 64],
        },
    );
    write_safetensors(&p, &w, StorageDtype::F32).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains(
            "tensor model.layers.0.self_attn.k_proj.weight has shape [64, 64], expected [32, 64]"
        ),
        "{msg}"
    );
    assert!(
        msg.contains(
            "missing tensor model.layers.1.mlp.gate_proj.weight (expected shape [96, 64])"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected tensor model.layers.0.self_attn.q_proj.bias with shape [64]"),
        "{msg}"
    );
    // Sanity: the file itself is fine, the problem is the checkpoint.
    assert_eq!(read_safetensors(&p).unwrap().len(), w.len());
}

#[test]
fn config_with_more_layers_than_weights_is_refused() {
    let (dir, _) = saved_hf(false);
    let p = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    config["num_hidden_layers"] = 3.into();
    std::fs::write(&p, config.to_string()).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("the config says num_hidden_layers = 3 but the weights have 2 layers (0..=1)"),
        "{msg}"
    );
}

#[test]
fn tokenizer_larger_than_embedding_is_refused() {
    let mut ckpt = tiny_checkpoint(true);
    ckpt.config.vocab_size = 200;
    ckpt.weights = random_weights(&ckpt.config, 3);
    let dir = tempfile::tempdir().unwrap();
    ckpt.save_hf_dir(dir.path(), StorageDtype::F32).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains(
            "the tokenizer has 262 tokens but model.embed_tokens.weight has only 200 rows"
        ),
        "{msg}"
    );
}

#[test]
fn unimplemented_rope_scaling_and_sharded_checkpoints_are_refused() {
    let (dir, _) = saved_hf(true);
    let p = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    config["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0});
    std::fs::write(&p, config.to_string()).unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json: rope type \"linear\" is not supported"),
        "{msg}"
    );

    let (dir, _) = saved_hf(true);
    std::fs::rename(
        dir.path().join("model.safetensors"),
        dir.path().join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    std::fs::write(dir.path().join("model.safetensors.index.json"), "{}").unwrap();
    let msg = load_err(dir.path());
    assert!(msg.contains("sharded checkpoints"), "{msg}");
}

#[test]
fn truncated_gguf_names_the_tensor() {
    let (_dir, path, bytes) = saved_gguf(GgmlType::Q8_0);
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let msg = load_err(&path);
    assert!(msg.contains("m.gguf: tensor \""), "{msg}");
    assert!(msg.contains("lie past the end of the file"), "{msg}");
    // Cut inside the header: the field being read is named.
    std::fs::write(&path, &bytes[..200]).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("truncated file") || msg.contains("remaining bytes"),
        "{msg}"
    );
}

#[test]
fn unknown_and_unsupported_quant_types_name_the_tensor() {
    let (_dir, path, bytes) = saved_gguf(GgmlType::Q8_0);
    // blk.0.ffn_up.weight: n_dims (u32) + 2 dims (u64) precede the type id.
    let at = after_tensor_name(&bytes, "blk.0.ffn_up.weight") + 4 + 16;
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        8,
        "Q8_0 id"
    );
    for (id, want) in [
        (99u32, "unknown quantization type id 99"),
        (13, "Q5_K (type id 13)"),
    ] {
        let mut b = bytes.clone();
        b[at..at + 4].copy_from_slice(&id.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let msg = load_err(&path);
        assert!(
            msg.contains("tensor \"blk.0.ffn_up.weight\" is stored as "),
            "{msg}"
        );
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let (_dir, path, bytes) = saved_gguf(GgmlType::F32);
    // A 2^40 x 2^20 = 2^60-element tensor.
    let at = after_tensor_name(&bytes, "token_embd.weight") + 4;
    let mut b = bytes.clone();
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    b[at + 8..at + 16].copy_from_slice(&(1u64 << 20).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("tensor \"token_embd.weight\" has absurd dimensions [1099511627776, 1048576]"),
        "{msg}"
    );

    // A dimension product that overflows u64.
    let mut b = bytes.clone();
    b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    assert!(load_err(&path).contains("absurd dimensions"));

    // The first metadata key claims 2^62 bytes.
    let mut b = bytes.clone();
    b[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("metadata key #0 claims a length of 4611686018427387904 bytes"),
        "{msg}"
    );

    // The header claims 2^50 tensors.
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(&(1u64 << 50).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    assert!(load_err(&path).contains("1125899906842624 tensors"));
}

#[test]
fn tokens_array_longer_than_the_file_is_refused() {
    let (_dir, path, bytes) = saved_gguf(GgmlType::F32);
    let key = b"tokenizer.ggml.tokens";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // value type (array), element type (string), then the count.
    let count_at = at + 8;
    let mut b = bytes.clone();
    b[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains(
            "metadata \"tokenizer.ggml.tokens\" claims 1099511627776 elements of type string"
        ),
        "{msg}"
    );
}

#[test]
fn other_architectures_and_non_gguf_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    std::fs::write(&path, b"GGML\x03\x00\x00\x00").unwrap();
    assert!(load_err(&path).contains("not a GGUF file"));
    std::fs::write(&path, b"GGUF\x01\x00\x00\x00").unwrap();
    assert!(load_err(&path).contains("GGUF version 1 is not supported"));

    let mut w = gguf::GgufWriter::new();
    w.add_metadata(
        "general.architecture",
        gguf::GgufValue::String("gemma2".into()),
    )
    .unwrap();
    w.write(&path).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("general.architecture is \"gemma2\"; supported: llama, qwen2, qwen3"),
        "{msg}"
    );
}

#[test]
fn unknown_gguf_tensor_is_refused() {
    let ckpt = tiny_checkpoint(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    ckpt.save_gguf(&path, GgmlType::F32).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Rename output_norm.weight to a same-length unknown name.
    let at = after_tensor_name(&bytes, "output_norm.weight") - "output_norm.weight".len();
    let mut b = bytes.clone();
    b[at..at + 18].copy_from_slice(b"rope_freqs.weight!");
    std::fs::write(&path, &b).unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("tensor \"rope_freqs.weight!\" is not part of the Llama-family architectures"),
        "{msg}"
    );
}

#[test]
fn gguf_hf_gguf_conversion_keeps_everything() {
    // GGUF (F32) -> HF dir -> load: same weights, config and tokenizer.
    let ckpt = tiny_checkpoint(true);
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("a.gguf");
    ckpt.save_gguf(&g, GgmlType::F32).unwrap();
    let from_gguf = Checkpoint::load(&g).unwrap();
    assert_eq!(Checkpoint::inspect(&g).unwrap(), from_gguf.config);
    let hf = dir.path().join("hf");
    from_gguf.save_hf_dir(&hf, StorageDtype::F32).unwrap();
    let from_hf = Checkpoint::load(&hf).unwrap();
    assert_eq!(from_hf.weights, ckpt.weights);
    assert_same_tokenizer(&from_gguf.tokenizer, &from_hf.tokenizer);
    assert!(Path::new(&hf.join("tokenizer.json")).exists());
}

#[test]
fn chat_templates_survive_jinja_round_trips() {
    for t in [
        ChatTemplate::ChatMl {
            default_system: None,
        },
        ChatTemplate::ChatMl {
            default_system: Some("Be brief.".into()),
        },
    ] {
        assert_eq!(ChatTemplate::from_jinja(&t.to_jinja()), Some(t));
    }
    // SmolLM2's GGUF stores the template with real newlines inside the Jinja strings.
    let gguf_style = "{{ '<|im_start|>system\nYou are SmolLM<|im_end|>\n' }}{{'<|im_start|>' + message['role'] + '\n'}}";
    assert_eq!(
        ChatTemplate::from_jinja(gguf_style),
        Some(ChatTemplate::ChatMl {
            default_system: Some("You are SmolLM".into())
        })
    );
}

/// Greedy decoding of `prompt` for `steps` tokens with rows 1..=`rows`
/// copies of it: the logits of every step, row 0 (`[steps][vocab]`).
fn decode_logits(
    decoder: &LlamaDecoder,
    prompt: &[u32],
    rows: usize,
    steps: usize,
) -> Vec<Vec<f32>> {
    let mut cache = decoder.new_cache(vec![0; rows], prompt.len() + steps);
    let block: Vec<u32> = (0..rows).flat_map(|_| prompt.iter().copied()).collect();
    let mut hidden = decoder
        .forward_cached(&block, prompt.len(), &mut cache)
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..steps {
        let [r, c, w] = hidden.dims();
        let last = hidden.slice([0..r, c - 1..c, 0..w]);
        let logits: Vec<f32> = decoder.logits(last).into_data().iter::<f32>().collect();
        let vocab = logits.len() / rows;
        let row0 = logits[..vocab].to_vec();
        let next = row0
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap();
        out.push(row0);
        hidden = decoder
            .forward_cached(&vec![next; rows], 1, &mut cache)
            .unwrap();
    }
    out
}

#[test]
fn quantized_gguf_decodes_like_its_dequantized_weights() {
    let dir = tempfile::tempdir().unwrap();
    let device = Backend::Flex.device();
    let prompt = tiny_tokenizer(vec![2, 0])
        .encode("the cat and the 42 dogs")
        .unwrap();
    for tied in [true, false] {
        let ckpt = tiny_checkpoint(tied);
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
            let path = dir.path().join(format!("tiny-{tied}-{}.gguf", ty.name()));
            ckpt.save_gguf(&path, ty).unwrap();
            let back = Checkpoint::load(&path).unwrap();
            // Seven matrices per layer, the embedding and (untied) the LM head.
            let heads = if tied { 1 } else { 2 };
            assert_eq!(back.quantized.len(), 7 * 2 + heads, "{ty:?} tied={tied}");
            let head = if tied {
                "model.embed_tokens.weight"
            } else {
                "lm_head.weight"
            };
            assert!(back.quantized.contains_key(head));
            let plain = LlamaDecoder::from_weights(&back.config, &back.weights, &device).unwrap();
            let quantized = LlamaDecoder::from_weights(&back.config, &back.weights, &device)
                .unwrap()
                .with_quantized(back.quantized.clone())
                .unwrap();
            // Batch 1 and 3 take the quantized path for every decode step.
            for rows in [1, 3] {
                let want = decode_logits(&plain, &prompt, rows, 8);
                let got = decode_logits(&quantized, &prompt, rows, 8);
                for (step, (w, g)) in want.iter().zip(&got).enumerate() {
                    let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let diff = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        diff <= 1e-4 * scale.max(1.0),
                        "{ty:?} tied={tied} rows={rows} step {step}: logits differ by {diff} (scale {scale})"
                    );
                    let argmax = |v: &[f32]| {
                        v.iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .unwrap()
                            .0
                    };
                    assert_eq!(argmax(w), argmax(g), "{ty:?} tied={tied} step {step}");
                }
            }
        }
    }
}

#[test]
fn quantized_matrices_must_fit_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny_checkpoint(false)
        .save_gguf(&path, GgmlType::Q8_0)
        .unwrap();
    let back = Checkpoint::load(&path).unwrap();
    let device = Backend::Flex.device();
    let build = || LlamaDecoder::from_weights(&back.config, &back.weights, &device).unwrap();
    // An untied head handed to a tied decoder.
    let mut tied_config = back.config.clone();
    tied_config.tie_word_embeddings = true;
    let mut weights = back.weights.clone();
    weights.remove("lm_head.weight");
    let tied = LlamaDecoder::from_weights(&tied_config, &weights, &device).unwrap();
    let msg = tied
        .with_quantized(back.quantized.clone())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("lm_head.weight"), "{msg}");
    // A matrix under another layer's name with another shape.
    let mut swapped = back.quantized.clone();
    let up = swapped.remove("model.layers.0.mlp.up_proj.weight").unwrap();
    swapped.insert("model.layers.0.mlp.down_proj.weight".into(), up);
    let msg = build().with_quantized(swapped).unwrap_err().to_string();
    assert!(
        msg.contains("model.layers.0.mlp.down_proj.weight") && msg.contains("[96, 64]"),
        "{msg}"
    );
    // A name the decoder does not have.
    let mut extra = back.quantized.clone();
    let up = extra["model.layers.0.mlp.up_proj.weight"].clone();
    extra.insert("model.layers.9.mlp.up_proj.weight".into(), up);
    let msg = build().with_quantized(extra).unwrap_err().to_string();
    assert!(msg.contains("model.layers.9"), "{msg}");
}

/// Greedy generation of `steps` tokens for each prompt, as the runtime does it.
fn greedy(
    decoder: &LlamaDecoder,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
) -> Vec<Vec<u32>> {
    let requests: Vec<GenerateRequest> = prompts
        .iter()
        .map(|p| GenerateRequest {
            prompt: p.clone(),
            max_new_tokens: 8,
            stop: Vec::new(),
            sampling: SamplingParams::greedy(),
        })
        .collect();
    generate(decoder, tokenizer, &requests)
        .unwrap()
        .into_iter()
        .map(|g| g.tokens)
        .collect()
}

#[test]
fn a_restricted_output_layer_keeps_the_models_choices_among_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let device = Backend::Flex.device();
    let tokenizer = tiny_tokenizer(vec![2, 0]);
    let prompts: Vec<Vec<u32>> = ["the cat and the 42 dogs", "Price: 1234 kg", "the end"]
        .iter()
        .map(|p| tokenizer.encode(p).unwrap())
        .collect();
    for tied in [true, false] {
        let ckpt = tiny_checkpoint(tied);
        let full = LlamaDecoder::from_weights(&ckpt.config, &ckpt.weights, &device).unwrap();
        let want = greedy(&full, &tokenizer, &prompts);
        // Every token the full model chose, a few it did not, and EOS.
        let mut tokens: Vec<u32> = want.iter().flatten().copied().collect();
        tokens.extend([2, 0, 17, 200]);
        let restricted = ckpt.clone().restrict_output(&tokens).unwrap();
        let rows = restricted.config.output_tokens.clone().unwrap();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        assert!(!restricted.config.tie_word_embeddings);
        assert_eq!(restricted.weights["lm_head.weight"].shape, [rows.len(), 64]);

        // Its logits after each prompt are the full model's at those tokens.
        let small =
            LlamaDecoder::from_weights(&restricted.config, &restricted.weights, &device).unwrap();
        for prompt in &prompts {
            let (a, b) = (
                &decode_logits(&full, prompt, 1, 1)[0],
                &decode_logits(&small, prompt, 1, 1)[0],
            );
            assert_eq!(b.len(), rows.len());
            for (r, &t) in rows.iter().enumerate() {
                let d = (a[t as usize] - b[r]).abs();
                assert!(d <= 1e-5 * a[t as usize].abs().max(1.0), "token {t}: {d}");
            }
        }
        // Greedy choices among its tokens are the full model's choices.
        assert_eq!(greedy(&small, &tokenizer, &prompts), want, "tied={tied}");

        // Stored and read back, as HF dir, F32 GGUF and Q8_0 GGUF.
        let hf = dir.path().join(format!("hf-{tied}"));
        restricted.save_hf_dir(&hf, StorageDtype::F32).unwrap();
        let f32_gguf = dir.path().join(format!("r-{tied}.f32.gguf"));
        restricted.save_gguf(&f32_gguf, GgmlType::F32).unwrap();
        let q8 = dir.path().join(format!("r-{tied}.q8_0.gguf"));
        restricted.save_gguf(&q8, GgmlType::Q8_0).unwrap();
        for path in [&hf, &f32_gguf, &q8] {
            let back = Checkpoint::load(path).unwrap();
            assert_eq!(back.config.output_tokens.as_ref(), Some(&rows), "{path:?}");
            assert_eq!(Checkpoint::inspect(path).unwrap(), back.config);
            let decoder = LlamaDecoder::from_weights(&back.config, &back.weights, &device)
                .unwrap()
                .with_quantized(back.quantized.clone())
                .unwrap();
            let got = greedy(&decoder, &tokenizer, &prompts);
            if path != &q8 {
                assert_eq!(got, want, "{path:?}");
            }
            assert!(got.iter().flatten().all(|t| rows.contains(t)), "{path:?}");
        }

        // Without the full model's first choice, it takes the best of the rest.
        let first = want[0][0];
        let others: Vec<u32> = rows.iter().copied().filter(|&t| t != first).collect();
        let without = ckpt.clone().restrict_output(&others).unwrap();
        let decoder =
            LlamaDecoder::from_weights(&without.config, &without.weights, &device).unwrap();
        let logits = &decode_logits(&full, &prompts[0], 1, 1)[0];
        let best = *others
            .iter()
            .max_by(|&&x, &&y| logits[x as usize].total_cmp(&logits[y as usize]))
            .unwrap();
        assert_eq!(greedy(&decoder, &tokenizer, &prompts[..1])[0][0], best);

        // Scoring: a token outside the layer has probability 0; the others
        // are normalised over the layer's tokens.
        let outside = (0..262).find(|t| !rows.contains(t)).unwrap();
        let inside = rows[1];
        let scores = loglikelihood(
            &small,
            &prompts[0],
            &[
                vec![inside],
                vec![outside],
                vec![inside, outside],
                vec![inside, inside],
            ],
        )
        .unwrap();
        assert!(scores[0].is_finite() && scores[0] < 0.0);
        assert_eq!(scores[1], f64::NEG_INFINITY);
        assert_eq!(scores[2], f64::NEG_INFINITY);
        assert!(scores[3].is_finite() && scores[3] < scores[0]);
        let lse = rows
            .iter()
            .map(|&t| f64::from(logits[t as usize]))
            .fold(f64::NEG_INFINITY, f64::max);
        let norm: f64 = lse
            + rows
                .iter()
                .map(|&t| (f64::from(logits[t as usize]) - lse).exp())
                .sum::<f64>()
                .ln();
        let expected = f64::from(logits[inside as usize]) - norm;
        assert!(
            (scores[0] - expected).abs() < 1e-4,
            "{} vs {expected}",
            scores[0]
        );
    }
}

#[test]
fn bad_output_restrictions_are_refused() {
    let ckpt = tiny_checkpoint(true);
    let err = |r: Result<Checkpoint, distill_gate::llm::LlmError>| match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(err(ckpt.clone().restrict_output(&[])).contains("output_tokens: the list is empty"));
    let e = err(ckpt.clone().restrict_output(&[3, 264]));
    assert!(
        e.contains("token 264 is outside the 264-token vocabulary"),
        "{e}"
    );
    let once = ckpt.restrict_output(&[2, 5]).unwrap();
    let e = err(once.clone().restrict_output(&[2]));
    assert!(e.contains("already restricted"), "{e}");
    // A config.json whose list is out of order names the field.
    let dir = tempfile::tempdir().unwrap();
    once.save_hf_dir(dir.path(), StorageDtype::F32).unwrap();
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["output_tokens"] = serde_json::json!([5, 2]);
    std::fs::write(&config, json.to_string()).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("output_tokens: ids must be strictly increasing, but 5 comes before 2"),
        "{e}"
    );
}
