//! Checks against the real SmolLM2-135M-Instruct Q4_1 GGUF
//! (`models/SmolLM2-135M-Instruct.Q4_1.gguf`, 98 MB, downloaded by
//! `scripts/fetch-smollm2`). Ignored by a plain `cargo test`, so a missing
//! model never passes for a check; run them with the model present:
//! `cargo test --release --test smollm2_gguf -- --ignored` (a missing
//! model then fails them, naming the script).

use std::path::PathBuf;
use std::sync::OnceLock;

use distill_gate::llm::gguf::{GgmlType, GgufFile};
use distill_gate::llm::{ChatTemplate, Checkpoint, StorageDtype};

/// The model; a test that needs it fails, naming the script, when absent.
fn model_path() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is absent: run scripts/fetch-smollm2 first",
        p.display()
    );
    p
}

/// Loaded once and shared: dequantizing 135M parameters takes a moment.
fn checkpoint() -> &'static Checkpoint {
    static CKPT: OnceLock<Checkpoint> = OnceLock::new();
    CKPT.get_or_init(|| Checkpoint::load(&model_path()).expect("SmolLM2 loads"))
}

#[test]
#[ignore = "needs models/SmolLM2-135M-Instruct.Q4_1.gguf: scripts/fetch-smollm2, then cargo test --release --test smollm2_gguf -- --ignored"]
fn config_matches_smollm2_135m() {
    let ckpt = checkpoint();
    let c = &ckpt.config;
    assert_eq!(c.num_hidden_layers, 30);
    assert_eq!(c.hidden_size, 576);
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!(c.num_attention_heads, 9);
    assert_eq!(c.kv_heads(), 3);
    assert_eq!(c.head_dim(), 64);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.max_position_embeddings, 8192);
    assert_eq!(c.rope_theta, 100_000.0);
    assert_eq!(c.rms_norm_eps, 1e-5);
    assert!(c.tie_word_embeddings);
    assert_eq!(c.bos_token_id, Some(1));
    assert_eq!(c.eos_ids(), vec![2]);
    assert_eq!(ckpt.weights.len(), 2 + 30 * 9);
    assert_eq!(
        ckpt.fingerprint,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let t = &ckpt.tokenizer;
    assert_eq!(
        (t.bos, t.add_bos, t.eos.as_slice()),
        (Some(1), false, &[2u32][..])
    );
    assert_eq!(
        t.chat,
        Some(ChatTemplate::ChatMl {
            default_system: Some(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
            )
        })
    );
}

/// Reference ids from llama.cpp itself (llama-cpp-python 0.3.36):
/// ```python
/// llm = llama_cpp.Llama(model_path="models/SmolLM2-135M-Instruct.Q4_1.gguf", vocab_only=True)
/// llm.tokenize(s.encode(), add_bos=False, special=True)
/// ```
/// (`llm.tokenize(b"Hi", special=True)` gives `[26843]`: the model adds no BOS.)
#[test]
#[ignore = "needs models/SmolLM2-135M-Instruct.Q4_1.gguf: scripts/fetch-smollm2, then cargo test --release --test smollm2_gguf -- --ignored"]
fn tokenizer_matches_llama_cpp() {
    let ckpt = checkpoint();
    let cases: [(&str, &[u32]); 7] = [
        ("Hello, world!", &[19556, 28, 905, 17]),
        (
            "The price is 1234.56 dollars",
            &[504, 4319, 314, 216, 33, 34, 35, 36, 30, 37, 38, 8358],
        ),
        (
            "  leading spaces\n\nand  newlines\t tab",
            &[216, 2899, 5600, 198, 198, 397, 216, 725, 5110, 197, 10147],
        ),
        (
            "naïve café — 日本語 🚀",
            &[
                3546, 46494, 37366, 1841, 17097, 241, 115, 40993, 179, 120, 248, 15107, 244, 218,
            ],
        ),
        (
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
            &[
                1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198,
            ],
        ),
        (
            "def f(x):\n    return x**2  # square",
            &[
                1604, 275, 24, 104, 727, 472, 1003, 1792, 828, 34, 216, 907, 5222,
            ],
        ),
        (
            "x=10000000 y=-3.5e-7",
            &[
                104, 45, 33, 32, 32, 32, 32, 32, 32, 32, 329, 15196, 35, 30, 37, 85, 29, 39,
            ],
        ),
    ];
    for (text, want) in cases {
        let ids = ckpt.tokenizer.encode(text).unwrap();
        assert_eq!(ids, want, "{text:?}");
        assert_eq!(ckpt.tokenizer.decode(&ids).unwrap(), text);
    }
    assert_eq!(
        ckpt.tokenizer.decode(&[1, 9690, 198]).unwrap(),
        "<|im_start|>system\n"
    );
}

/// Reference values from the `gguf` Python package (0.19.0), which
/// dequantizes independently of this crate:
/// ```python
/// r = gguf.GGUFReader("models/SmolLM2-135M-Instruct.Q4_1.gguf")
/// t = {t.name: t for t in r.tensors}["blk.0.attn_v.weight"]
/// x = gguf.quants.dequantize(t.data, t.tensor_type)      # shape (out, in)
/// # Q/K: undo the converter's permutation with numpy:
/// hf = x.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
/// ```
/// with n_head 9 for attn_q and 3 for attn_k.
#[test]
#[ignore = "needs models/SmolLM2-135M-Instruct.Q4_1.gguf: scripts/fetch-smollm2, then cargo test --release --test smollm2_gguf -- --ignored"]
fn dequantized_values_match_gguf_python() {
    /// (row, column, value) in the Hugging Face shape.
    type Point = (usize, usize, f32);
    let ckpt = checkpoint();
    let cases: [(&str, &[Point]); 5] = [
        (
            "model.embed_tokens.weight", // Q8_0
            &[
                (0, 0, -0.106_544_495),
                (0, 1, 0.032_978_058),
                (1, 31, 1.007_690_4),
                (7, 32, -0.005_996_704),
                (100, 575, 0.128_303_53),
                (49151, 575, -0.041_702_27),
            ],
        ),
        (
            "model.layers.0.self_attn.v_proj.weight", // Q4_1
            &[
                (0, 0, 0.105_476_38),
                (0, 1, 0.079_368_59),
                (5, 17, 0.011_512_756),
                (191, 575, -0.052_337_646),
                (64, 300, -0.077_636_72),
            ],
        ),
        (
            "model.layers.29.mlp.down_proj.weight", // Q4_1, [576, 1536]
            &[
                (0, 0, -0.273_315_43),
                (575, 1535, 0.056_640_625),
                (300, 1000, 0.241_638_18),
            ],
        ),
        (
            "model.layers.0.self_attn.q_proj.weight", // Q4_1, un-permuted
            &[
                (0, 0, -0.096_313_48),
                (1, 0, -0.159_179_69),
                (32, 0, -0.117_309_57),
                (33, 5, -0.062_805_18),
                (95, 100, -0.326_171_88),
                (575, 575, -0.255_859_38),
            ],
        ),
        (
            "model.layers.3.self_attn.k_proj.weight", // Q4_1, un-permuted, 3 heads
            &[
                (0, 0, 0.162_963_87),
                (1, 2, -0.015_930_176),
                (32, 7, -0.097_290_04),
                (191, 575, -0.570_312_5),
            ],
        ),
    ];
    for (name, points) in cases {
        let t = &ckpt.weights[name];
        let cols = t.shape[1];
        for &(r, c, want) in points {
            let got = t.data[r * cols + c];
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{name}[{r}, {c}] = {got}, gguf-py {want}"
            );
        }
    }
    assert_eq!(ckpt.weights["model.norm.weight"].data[10], 1.757_812_5);
}

#[test]
#[ignore = "needs models/SmolLM2-135M-Instruct.Q4_1.gguf: scripts/fetch-smollm2, then cargo test --release --test smollm2_gguf -- --ignored"]
fn storage_types_are_the_published_ones() {
    let path = model_path();
    let file = GgufFile::read(&path).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.tensors.len(), 272);
    let count = |ty| file.tensors.iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!(
        (
            count(GgmlType::Q8_0),
            count(GgmlType::Q4_1),
            count(GgmlType::F32)
        ),
        (1, 210, 61)
    );
    assert_eq!(
        file.tensor_info("token_embd.weight").unwrap().dims,
        vec![576, 49152]
    );
}

#[test]
#[ignore = "needs models/SmolLM2-135M-Instruct.Q4_1.gguf: scripts/fetch-smollm2, then cargo test --release --test smollm2_gguf -- --ignored"]
fn converts_to_a_hugging_face_directory_and_back() {
    let ckpt = checkpoint();
    let dir = tempfile::tempdir().unwrap();
    ckpt.save_hf_dir(dir.path(), StorageDtype::F32).unwrap();
    let back = Checkpoint::load(dir.path()).unwrap();
    assert_eq!(back.weights, ckpt.weights);
    assert_eq!(back.config.num_hidden_layers, 30);
    let text = "<|im_start|>user\nShip 12 kg to Zürich<|im_end|>\n";
    assert_eq!(
        back.tokenizer.encode(text).unwrap(),
        ckpt.tokenizer.encode(text).unwrap()
    );
    assert_eq!(
        (
            back.tokenizer.bos,
            back.tokenizer.add_bos,
            &back.tokenizer.eos,
            &back.tokenizer.chat
        ),
        (
            ckpt.tokenizer.bos,
            ckpt.tokenizer.add_bos,
            &ckpt.tokenizer.eos,
            &ckpt.tokenizer.chat
        )
    );
}
