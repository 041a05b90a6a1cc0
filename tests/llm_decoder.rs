//! The burn decoder and generation on a tiny random model with a tokenizer
//! built in code (no downloads): batching, KV cache, stop strings, EOS,
//! sampling, log-likelihood, weight round trips, and a naive f64 reference
//! forward written from the Hugging Face Llama formulas.

use distill_gate::llm::decoder::{LlamaDecoder, RAGGED_MIN_TOKENS, random_weights};
use distill_gate::llm::generate::{
    GenerateRequest, Generated, PrefixMemo, generate, generate_with, loglikelihood,
};
use distill_gate::llm::sampling::{SamplingParams, log_softmax};
use distill_gate::llm::{
    Backend, HostTensor, LlamaConfig, LlmError, TextTokenizer, TokenBatch, Weights,
};
use distill_gate::model::{
    FinishReason, GenerationRequest, GenerationSettings, LatencySource, LocalModel, Model,
};
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::{AddedToken, Tokenizer};

const VOCAB: usize = 333;

/// A character-level BPE over printable ASCII plus 234 two-letter merges;
/// ids 0..3 are `<unk>`, `<s>`, `</s>`. Decoding concatenates token strings.
fn tiny_tokenizer() -> TextTokenizer {
    let mut pieces: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    pieces.extend((32u8..=126).map(|b| (b as char).to_string()));
    pieces.push("\n".into());
    let mut merges = Vec::new();
    for a in "etaoinshr".chars() {
        for b in 'a'..='z' {
            merges.push((a.to_string(), b.to_string()));
            pieces.push(format!("{a}{b}"));
        }
    }
    assert_eq!(pieces.len(), VOCAB);
    let vocab: Vocab = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut inner = Tokenizer::new(bpe);
    inner.with_decoder(Some(Fuse::new()));
    inner.add_special_tokens(&[
        AddedToken::from("<s>", true),
        AddedToken::from("</s>", true),
    ]);
    let mut tok = TextTokenizer::new(inner);
    tok.bos = Some(1);
    tok.add_bos = true;
    tok
}

fn tiny_config(tie: bool) -> LlamaConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tie
    }))
    .unwrap()
}

/// Weights with a large enough spread that greedy outputs vary with context.
fn tiny_weights(config: &LlamaConfig, seed: u64) -> Weights {
    random_weights(config, seed, 0.3)
}

fn tiny_model(backend: Backend, tie: bool) -> (LlamaConfig, Weights, LlamaDecoder) {
    let config = tiny_config(tie);
    let weights = tiny_weights(&config, 11);
    let decoder = LlamaDecoder::from_weights(&config, &weights, &backend.device()).unwrap();
    (config, weights, decoder)
}

fn request(prompt: Vec<u32>, max_new_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt,
        max_new_tokens,
        stop: Vec::new(),
        sampling: SamplingParams::greedy(),
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![1, 40, 77, 12, 200, 5, 9, 31, 150],
        vec![1, 66],
        vec![1, 300, 17, 81, 4],
        vec![1],
        vec![1, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 89],
    ]
}

fn host_logits(t: burn::tensor::Tensor<3>) -> (Vec<f32>, [usize; 3]) {
    let dims = t.dims();
    (t.into_data().iter::<f32>().collect(), dims)
}

// ---------------------------------------------------------------------------
// Reference forward: plain f64 loops over the Hugging Face tensors, following
// transformers' modeling_llama (RMSNorm, rotate-half RoPE, repeat_kv GQA,
// SwiGLU). Independent of burn and of the decoder's layout conversions.
// ---------------------------------------------------------------------------

fn matvec(m: &HostTensor, x: &[f64]) -> Vec<f64> {
    let (out, inp) = (m.shape[0], m.shape[1]);
    (0..out)
        .map(|o| {
            (0..inp)
                .map(|i| f64::from(m.data[o * inp + i]) * x[i])
                .sum()
        })
        .collect()
}

fn rms_norm(x: &[f64], gamma: &HostTensor, eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter()
        .zip(&gamma.data)
        .map(|(v, g)| v * r * f64::from(*g))
        .collect()
}

fn rope_heads(v: &mut [f64], heads: usize, dim: usize, pos: usize, theta: f64) {
    let half = dim / 2;
    for h in 0..heads {
        let x = &mut v[h * dim..(h + 1) * dim];
        for i in 0..half {
            let angle = pos as f64 * theta.powf(-(2.0 * i as f64) / dim as f64);
            let (x1, x2) = (x[i], x[i + half]);
            x[i] = x1 * angle.cos() - x2 * angle.sin();
            x[i + half] = x2 * angle.cos() + x1 * angle.sin();
        }
    }
}

fn reference_logits(config: &LlamaConfig, w: &Weights, tokens: &[u32]) -> Vec<Vec<f64>> {
    let hidden = config.hidden_size;
    let (heads, kv_heads, dim) = (
        config.num_attention_heads,
        config.kv_heads(),
        config.head_dim(),
    );
    let eps = config.rms_norm_eps;
    let t = |name: String| &w[&name];
    let embed = &w["model.embed_tokens.weight"];
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&id| {
            let row = id as usize * hidden;
            embed.data[row..row + hidden]
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    for l in 0..config.num_hidden_layers {
        let p = |part: &str| format!("model.layers.{l}.{part}.weight");
        let normed: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| rms_norm(x, t(p("input_layernorm")), eps))
            .collect();
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in normed.iter().enumerate() {
            let mut q = matvec(t(p("self_attn.q_proj")), x);
            let mut k = matvec(t(p("self_attn.k_proj")), x);
            rope_heads(&mut q, heads, dim, pos, config.rope_theta);
            rope_heads(&mut k, kv_heads, dim, pos, config.rope_theta);
            qs.push(q);
            ks.push(k);
            vs.push(matvec(t(p("self_attn.v_proj")), x));
        }
        for pos in 0..xs.len() {
            let mut concat = vec![0.0; heads * dim];
            for h in 0..heads {
                let kv = h / (heads / kv_heads);
                let q = &qs[pos][h * dim..(h + 1) * dim];
                let scores: Vec<f64> = (0..=pos)
                    .map(|s| {
                        let k = &ks[s][kv * dim..(kv + 1) * dim];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for (s, e) in exps.iter().enumerate() {
                    for d in 0..dim {
                        concat[h * dim + d] += e / total * vs[s][kv * dim + d];
                    }
                }
            }
            let out = matvec(t(p("self_attn.o_proj")), &concat);
            for (x, o) in xs[pos].iter_mut().zip(out) {
                *x += o;
            }
        }
        for x in xs.iter_mut() {
            let n = rms_norm(x, t(p("post_attention_layernorm")), eps);
            let gate = matvec(t(p("mlp.gate_proj")), &n);
            let up = matvec(t(p("mlp.up_proj")), &n);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = matvec(t(p("mlp.down_proj")), &act);
            for (v, d) in x.iter_mut().zip(down) {
                *v += d;
            }
        }
    }
    let head = if config.tie_word_embeddings {
        embed
    } else {
        &w["lm_head.weight"]
    };
    xs.iter()
        .map(|x| matvec(head, &rms_norm(x, &w["model.norm.weight"], eps)))
        .collect()
}

#[test]
fn forward_matches_naive_reference_on_both_backends() {
    let tokens = [1u32, 40, 77, 12, 200, 5, 9, 31];
    for tie in [false, true] {
        for backend in Backend::ALL {
            let (config, weights, decoder) = tiny_model(backend, tie);
            let reference = reference_logits(&config, &weights, &tokens);
            let batch = TokenBatch::right_padded(&[tokens.to_vec()], 0).unwrap();
            let (got, dims) = host_logits(decoder.forward(&batch).unwrap());
            assert_eq!(dims, [1, tokens.len(), VOCAB]);
            for (pos, row) in reference.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    let g = f64::from(got[pos * VOCAB + v]);
                    assert!(
                        (g - r).abs() < 1e-3,
                        "{backend} tie={tie} pos {pos} token {v}: {g} vs reference {r}"
                    );
                }
            }
        }
    }
}

/// The packed training forward (real tokens only, each row attending within
/// itself) gives the padded forward's hidden states at every real token,
/// and the same gradients, for left and right padding, rows of one token
/// and the grouped-query heads of the tiny model.
#[test]
fn packed_training_forward_matches_the_padded_one_with_gradients() {
    use burn::tensor::{Int, Tensor, TensorData};
    let seqs = vec![
        vec![1u32, 40, 77, 12, 200, 5, 9],
        vec![1, 66],
        vec![7],
        vec![1, 300, 17, 81],
    ];
    for backend in Backend::ALL {
        let config = tiny_config(true);
        let weights = tiny_weights(&config, 11);
        let device = backend.device().autodiff();
        for left in [true, false] {
            let batch = if left {
                TokenBatch::left_padded(&seqs, 0).unwrap()
            } else {
                TokenBatch::right_padded(&seqs, 0).unwrap()
            };
            // The real cells of the padded grid, in packed order.
            let cells: Vec<i64> = (0..seqs.len())
                .flat_map(|r| {
                    let from = r * batch.cols() + batch.start(r);
                    (from..from + batch.len(r)).map(|c| c as i64)
                })
                .collect();
            let n = cells.len();
            let decoder = LlamaDecoder::from_weights(&config, &weights, &device).unwrap();
            let padded = decoder.forward_hidden(&batch).unwrap();
            let [rows, cols, hidden] = padded.dims();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(cells, [n]), &device);
            let padded = padded.reshape([rows * cols, hidden]).select(0, idx);
            let packed = decoder.forward_packed_hidden(&batch).unwrap();
            assert_eq!(packed.dims(), [n, hidden]);
            let values =
                |t: &Tensor<2>| -> Vec<f32> { t.clone().into_data().iter::<f32>().collect() };
            for (i, (a, b)) in values(&packed).iter().zip(values(&padded)).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{backend} left={left} value {i}: {a} vs {b}"
                );
            }
            // A loss that weighs every hidden value differently.
            let w: Vec<f32> = (0..n * hidden)
                .map(|i| ((i * 7919) % 13) as f32 - 6.0)
                .collect();
            let w = Tensor::<2>::from_data(TensorData::new(w, [n, hidden]), &device);
            let grad = |h: Tensor<2>| {
                let grads = (h * w.clone()).sum().backward();
                let q = &decoder.layers[0].self_attn.q_proj.weight;
                let g: Vec<f32> = q.grad(&grads).unwrap().into_data().iter::<f32>().collect();
                g
            };
            let (gp, gq) = (grad(packed), grad(padded));
            for (i, (a, b)) in gp.iter().zip(&gq).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "{backend} left={left} grad {i}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn padded_training_forward_matches_unpadded_rows() {
    let (_, _, decoder) = tiny_model(Backend::Flex, false);
    let seqs = vec![vec![1u32, 40, 77, 12, 200], vec![1, 66, 5]];
    for left in [true, false] {
        let batch = if left {
            TokenBatch::left_padded(&seqs, 0).unwrap()
        } else {
            TokenBatch::right_padded(&seqs, 0).unwrap()
        };
        let (got, _) = host_logits(decoder.forward(&batch).unwrap());
        for (row, seq) in seqs.iter().enumerate() {
            let alone = TokenBatch::right_padded(std::slice::from_ref(seq), 0).unwrap();
            let (want, _) = host_logits(decoder.forward(&alone).unwrap());
            for i in 0..seq.len() {
                let col = batch.start(row) + i;
                let g = &got[(row * batch.cols() + col) * VOCAB..][..VOCAB];
                let w = &want[i * VOCAB..][..VOCAB];
                for (a, b) in g.iter().zip(w) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "left={left} row {row} pos {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn kv_cache_decoding_matches_full_forward() {
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let seqs = [
            vec![1u32, 40, 77, 12, 200, 5, 9, 31, 150],
            vec![1, 300, 17, 81, 4, 60],
        ];
        // Prefill 6 and 3 tokens (left padded), then feed the rest one column at a time.
        let prefill = [6usize, 3];
        let steps = 3;
        let width = *prefill.iter().max().unwrap();
        let pads: Vec<usize> = prefill.iter().map(|p| width - p).collect();
        let mut cache = decoder.new_cache(pads.clone(), width + 1);
        let mut block = Vec::new();
        for (seq, &p) in seqs.iter().zip(&prefill) {
            block.extend(std::iter::repeat_n(0u32, width - p));
            block.extend_from_slice(&seq[..p]);
        }
        // (row, position in sequence) -> logits
        let mut incremental: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        let hidden = decoder.forward_cached(&block, width, &mut cache).unwrap();
        let (all, _) = host_logits(decoder.logits(hidden));
        for (row, &p) in prefill.iter().enumerate() {
            for i in 0..p {
                let col = width - p + i;
                incremental.push((row, i, all[(row * width + col) * VOCAB..][..VOCAB].to_vec()));
            }
        }
        for step in 0..steps {
            let tokens: Vec<u32> = seqs
                .iter()
                .zip(&prefill)
                .map(|(s, &p)| s[p + step])
                .collect();
            let hidden = decoder.forward_cached(&tokens, 1, &mut cache).unwrap();
            let (logits, _) = host_logits(decoder.logits(hidden));
            for (row, &p) in prefill.iter().enumerate() {
                incremental.push((row, p + step, logits[row * VOCAB..][..VOCAB].to_vec()));
            }
        }
        assert_eq!(cache.len(), width + steps);
        assert!(
            cache.capacity() >= width + steps,
            "the cache grew as needed"
        );
        for (row, seq) in seqs.iter().enumerate() {
            let used = prefill[row] + steps;
            let batch = TokenBatch::right_padded(&[seq[..used].to_vec()], 0).unwrap();
            let (full, _) = host_logits(decoder.forward(&batch).unwrap());
            for (r, pos, got) in incremental.iter().filter(|(r, _, _)| *r == row) {
                let want = &full[pos * VOCAB..][..VOCAB];
                let worst = got
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-4,
                    "{backend} row {r} pos {pos}: max diff {worst}"
                );
            }
        }
    }
}

#[test]
fn batched_greedy_generation_equals_each_prompt_alone() {
    let tok = tiny_tokenizer();
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let requests: Vec<GenerateRequest> = prompts()
            .into_iter()
            .zip([12, 7, 70, 10, 4])
            .map(|(p, n)| request(p, n))
            .collect();
        let batched = generate(&decoder, &tok, &requests).unwrap();
        let mut distinct = std::collections::BTreeSet::new();
        for (req, got) in requests.iter().zip(&batched) {
            let alone = generate(&decoder, &tok, std::slice::from_ref(req)).unwrap();
            assert_eq!(
                got.tokens, alone[0].tokens,
                "{backend} prompt {:?}",
                req.prompt
            );
            assert_eq!(got.text, alone[0].text);
            assert_eq!(got.tokens.len(), req.max_new_tokens);
            assert_eq!(got.finish, FinishReason::Length);
            assert_eq!(got.prompt_tokens, req.prompt.len());
            assert!(got.time_to_first_token.is_some());
            assert!(got.total_time >= got.time_to_first_token.unwrap());
            distinct.insert(got.tokens.clone());
        }
        assert!(distinct.len() >= 4, "outputs should depend on the prompt");
    }
}

/// Prompts that share their first 20 tokens (a few-shot block), then differ
/// in length and content.
fn prompts_with_shared_prefix() -> Vec<Vec<u32>> {
    let prefix: Vec<u32> = (0..20).map(|i| 1 + (i * 37 % 250) as u32).collect();
    [
        vec![40, 77, 12],
        vec![66],
        vec![300, 17, 81, 4, 60, 9],
        vec![99, 98],
    ]
    .into_iter()
    .map(|suffix| prefix.iter().copied().chain(suffix).collect())
    .collect()
}

#[test]
fn forked_cache_after_a_shared_prefix_matches_the_full_forward() {
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let seqs = prompts_with_shared_prefix();
        let shared = 20;
        let width = seqs.iter().map(|s| s.len() - shared).max().unwrap();
        let pads: Vec<usize> = seqs.iter().map(|s| width - (s.len() - shared)).collect();
        let mut cache = decoder.new_cache(vec![0], shared + width + 2);
        decoder
            .forward_cached(&seqs[0][..shared], shared, &mut cache)
            .unwrap();
        cache.fork(pads.clone()).unwrap();
        assert_eq!(cache.rows(), seqs.len());
        assert_eq!(cache.pad_start(), shared);
        let mut block = Vec::new();
        for (seq, &pad) in seqs.iter().zip(&pads) {
            block.extend(std::iter::repeat_n(0u32, pad));
            block.extend_from_slice(&seq[shared..]);
        }
        let hidden = decoder.forward_cached(&block, width, &mut cache).unwrap();
        let (suffix_logits, _) = host_logits(decoder.logits(hidden));
        // One decode step on top: the token 5 after every prompt.
        let hidden = decoder
            .forward_cached(&vec![5; seqs.len()], 1, &mut cache)
            .unwrap();
        let (step_logits, _) = host_logits(decoder.logits(hidden));
        for (row, seq) in seqs.iter().enumerate() {
            let mut full_seq = seq.clone();
            full_seq.push(5);
            let batch = TokenBatch::right_padded(&[full_seq.clone()], 0).unwrap();
            let (full, _) = host_logits(decoder.forward(&batch).unwrap());
            let mut checks = Vec::new();
            for i in shared..seq.len() {
                let col = pads[row] + (i - shared);
                checks.push((i, &suffix_logits[(row * width + col) * VOCAB..][..VOCAB]));
            }
            checks.push((seq.len(), &step_logits[row * VOCAB..][..VOCAB]));
            for (pos, got) in checks {
                let want = &full[pos * VOCAB..][..VOCAB];
                let worst = got
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-4,
                    "{backend} row {row} pos {pos}: max diff {worst}"
                );
            }
        }
        assert!(cache.fork(vec![0, 0]).is_err(), "only one-row caches fork");
    }
}

fn bits(t: burn::tensor::Tensor<3>) -> Vec<u32> {
    t.into_data().iter::<f32>().map(f32::to_bits).collect()
}

/// Suffix lengths of [`long_prompts`]: 280 real tokens in a block of 450.
const LONG_LENS: [u32; 5] = [90, 40, 70, 20, 60];

// The block is large enough for `forward_prompts` to pack it.
const _: () = assert!(
    (LONG_LENS[0] + LONG_LENS[1] + LONG_LENS[2] + LONG_LENS[3] + LONG_LENS[4]) as usize
        >= RAGGED_MIN_TOKENS
);

/// Prompts of [`LONG_LENS`] tokens after `prefix` shared ones.
fn long_prompts(prefix: usize) -> Vec<Vec<u32>> {
    let shared: Vec<u32> = (0..prefix).map(|i| 1 + (i * 37 % 250) as u32).collect();
    LONG_LENS
        .iter()
        .map(|&len| {
            let suffix = (0..len).map(|i| 3 + (i * 71 + len * 13) % 330);
            shared.iter().copied().chain(suffix).collect()
        })
        .collect()
}

/// `forward_prompts` computes only the real tokens of a padded block; its
/// last hidden states, and a decode step on the cache it filled, are bit
/// for bit those of `forward_cached` over the padded block, left-padded
/// or forked after a shared prefix, and (trivially, the padded path both
/// times) for a block too small to pack.
#[test]
fn ragged_prompt_block_is_bit_for_bit_the_padded_block() {
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let cases = [
            (long_prompts(0), 0),
            (long_prompts(20), 20),
            (prompts_with_shared_prefix(), 20),
        ];
        for (seqs, shared) in cases {
            let width = seqs.iter().map(|s| s.len() - shared).max().unwrap();
            let pads: Vec<usize> = seqs.iter().map(|s| width - (s.len() - shared)).collect();
            let fresh = || {
                if shared == 0 {
                    return decoder.new_cache(pads.clone(), width + 2);
                }
                let mut cache = decoder.new_cache(vec![0], shared + width + 2);
                decoder
                    .forward_cached(&seqs[0][..shared], shared, &mut cache)
                    .unwrap();
                cache.fork(pads.clone()).unwrap();
                cache
            };
            let mut block = Vec::new();
            for (seq, &pad) in seqs.iter().zip(&pads) {
                block.extend(std::iter::repeat_n(0u32, pad));
                block.extend_from_slice(&seq[shared..]);
            }
            let mut padded = fresh();
            let hidden = decoder.forward_cached(&block, width, &mut padded).unwrap();
            let [rows, _, channels] = hidden.dims();
            let want = hidden.slice([0..rows, width - 1..width, 0..channels]);
            let mut ragged = fresh();
            let suffixes: Vec<&[u32]> = seqs.iter().map(|s| &s[shared..]).collect();
            let got = decoder.forward_prompts(&suffixes, &mut ragged).unwrap();
            assert_eq!(got.dims(), [seqs.len(), 1, channels]);
            assert_eq!(bits(got), bits(want), "{backend}, prefix {shared}");
            let step = vec![5; seqs.len()];
            let a = decoder.forward_cached(&step, 1, &mut padded).unwrap();
            let b = decoder.forward_cached(&step, 1, &mut ragged).unwrap();
            assert_eq!(bits(a), bits(b), "{backend}, prefix {shared}: decode step");
            let mut wrong = fresh();
            decoder
                .forward_cached(&vec![5; seqs.len()], 1, &mut wrong)
                .unwrap();
            assert!(
                decoder.forward_prompts(&suffixes, &mut wrong).is_err(),
                "a cache whose padding is not the block's is refused"
            );
        }
    }
}

/// [`prompts_with_shared_prefix`], asking for 12, 7, 30 and 10 tokens.
fn shared_prefix_requests() -> Vec<GenerateRequest> {
    prompts_with_shared_prefix()
        .into_iter()
        .zip([12, 7, 30, 10])
        .map(|(p, n)| request(p, n))
        .collect()
}

#[test]
fn batched_generation_with_a_shared_prefix_equals_each_prompt_alone() {
    let tok = tiny_tokenizer();
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let requests = shared_prefix_requests();
        let batched = generate(&decoder, &tok, &requests).unwrap();
        let mut distinct = std::collections::BTreeSet::new();
        for (req, got) in requests.iter().zip(&batched) {
            let alone = generate(&decoder, &tok, std::slice::from_ref(req)).unwrap();
            assert_eq!(
                got.tokens, alone[0].tokens,
                "{backend} prompt {:?}",
                req.prompt
            );
            assert_eq!(got.prompt_tokens, req.prompt.len());
            distinct.insert(got.tokens.clone());
        }
        assert!(distinct.len() >= 3, "outputs should depend on the suffix");
    }
}

#[test]
fn a_prefix_kept_from_the_previous_batch_gives_the_same_tokens() {
    let tok = tiny_tokenizer();
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let requests = shared_prefix_requests();
        let (first, second) = requests.split_at(2);
        let mut memo = PrefixMemo::default();
        generate_with(&decoder, &tok, first, &mut memo).unwrap();
        assert_eq!(
            memo.kept_tokens(),
            20,
            "{backend}: the shared prefix is kept"
        );
        let reused = generate_with(&decoder, &tok, second, &mut memo).unwrap();
        let fresh = generate(&decoder, &tok, second).unwrap();
        for (a, b) in reused.iter().zip(&fresh) {
            assert_eq!(a.tokens, b.tokens, "{backend}");
        }
        // A batch with another prefix replaces the kept one.
        let other: Vec<GenerateRequest> = [vec![7u32; 24], [vec![7u32; 20], vec![8; 3]].concat()]
            .into_iter()
            .map(|p| request(p, 3))
            .collect();
        generate_with(&decoder, &tok, &other, &mut memo).unwrap();
        assert_eq!(memo.kept_tokens(), 20, "{backend}");
        let again = generate_with(&decoder, &tok, second, &mut memo).unwrap();
        for (a, b) in again.iter().zip(&fresh) {
            assert_eq!(a.tokens, b.tokens, "{backend}");
        }
    }
}

#[test]
fn generation_continues_the_greedy_argmax_of_the_full_forward() {
    // Independent of the cache: each generated token is the argmax of a
    // full forward over prompt + tokens so far.
    let tok = tiny_tokenizer();
    let (_, _, decoder) = tiny_model(Backend::Flex, true);
    let prompt = vec![1u32, 40, 77, 12];
    // 90 new tokens: more than the cache preallocates, so it grows mid-run.
    let out = generate(&decoder, &tok, &[request(prompt.clone(), 90)]).unwrap();
    assert_eq!(out[0].tokens.len(), 90);
    let mut seq = prompt;
    for &t in &out[0].tokens {
        let batch = TokenBatch::right_padded(std::slice::from_ref(&seq), 0).unwrap();
        let (logits, _) = host_logits(decoder.forward(&batch).unwrap());
        let last = &logits[(seq.len() - 1) * VOCAB..][..VOCAB];
        assert_eq!(distill_gate::llm::sampling::argmax(last), Some(t));
        seq.push(t);
    }
}

fn greedy_alone(
    decoder: &LlamaDecoder,
    tok: &TextTokenizer,
    prompt: Vec<u32>,
    n: usize,
) -> Generated {
    generate(decoder, tok, &[request(prompt, n)])
        .unwrap()
        .remove(0)
}

#[test]
fn stop_string_spanning_two_tokens_cuts_the_text() {
    let tok = tiny_tokenizer();
    let (_, _, decoder) = tiny_model(Backend::Flex, false);
    let prompt = prompts()[0].clone();
    let free = greedy_alone(&decoder, &tok, prompt.clone(), 24);
    let pieces: Vec<String> = free
        .tokens
        .iter()
        .map(|&t| tok.decode(&[t]).unwrap())
        .collect();
    assert_eq!(
        pieces.concat(),
        free.text,
        "the tokenizer concatenates pieces"
    );
    // A stop string made of the last char of token k and the first of token
    // k + 1, whose first occurrence in the text is exactly that boundary.
    let mut chosen = None;
    let mut offset = 0;
    for k in 0..pieces.len() - 1 {
        offset += pieces[k].len();
        let (a, b) = (&pieces[k], &pieces[k + 1]);
        let (Some(last), Some(first)) = (a.chars().last(), b.chars().next()) else {
            continue;
        };
        let stop = format!("{last}{first}");
        let at = offset - last.len_utf8();
        if k >= 2 && free.text.find(&stop) == Some(at) {
            chosen = Some((k, stop, at));
            break;
        }
    }
    let (k, stop, at) = chosen.expect("some token boundary gives a fresh stop string");
    let mut req = request(prompt, 24);
    req.stop = vec!["never-produced-1234".into(), stop.clone()];
    let out = generate(&decoder, &tok, &[req]).unwrap().remove(0);
    assert_eq!(out.finish, FinishReason::Stop);
    assert_eq!(out.text, free.text[..at]);
    assert!(!out.text.contains(&stop));
    assert_eq!(
        out.tokens,
        free.tokens[..k + 2],
        "stops right after the completing token"
    );
}

#[test]
fn max_tokens_and_zero_tokens() {
    let tok = tiny_tokenizer();
    let (_, _, decoder) = tiny_model(Backend::Flex, false);
    let out = generate(
        &decoder,
        &tok,
        &[request(vec![1, 2, 3], 5), request(vec![1, 7], 0)],
    )
    .unwrap();
    assert_eq!(out[0].tokens.len(), 5);
    assert_eq!(out[0].finish, FinishReason::Length);
    assert!(out[1].tokens.is_empty());
    assert_eq!(out[1].text, "");
    assert_eq!(out[1].finish, FinishReason::Length);
    assert_eq!(out[1].time_to_first_token, None);
}

#[test]
fn context_limit_caps_generation_and_rejects_long_prompts() {
    let tok = tiny_tokenizer();
    let (config, _, decoder) = tiny_model(Backend::Flex, false);
    let max = config.max_position_embeddings;
    let near_full = vec![5u32; max - 3];
    let out = generate(&decoder, &tok, &[request(near_full, 50)]).unwrap();
    assert_eq!(out[0].tokens.len(), 3);
    assert_eq!(out[0].finish, FinishReason::Length);
    let err = generate(&decoder, &tok, &[request(vec![5; max + 1], 1)]).unwrap_err();
    assert!(err.to_string().contains("context"), "{err}");
    let err = generate(&decoder, &tok, &[request(vec![5, VOCAB as u32], 1)]).unwrap_err();
    assert!(err.to_string().contains("vocabulary"), "{err}");
    assert!(generate(&decoder, &tok, &[request(vec![], 1)]).is_err());
}

#[test]
fn eos_ends_a_sequence_and_is_left_out_of_the_text() {
    let mut tok = tiny_tokenizer();
    let (_, _, decoder) = tiny_model(Backend::Flex, false);
    let prompt = prompts()[2].clone();
    let free = greedy_alone(&decoder, &tok, prompt.clone(), 16);
    // The first token that did not occur before it becomes the EOS.
    let k = (1..free.tokens.len())
        .find(|&k| !free.tokens[..k].contains(&free.tokens[k]))
        .expect("a fresh token");
    tok.eos = vec![free.tokens[k]];
    let batch = vec![
        request(prompt.clone(), 16),
        request(prompts()[1].clone(), 16),
    ];
    let out = generate(&decoder, &tok, &batch).unwrap();
    assert_eq!(out[0].finish, FinishReason::Eos);
    assert_eq!(out[0].tokens, free.tokens[..=k]);
    assert_eq!(out[0].text, tok.decode(&free.tokens[..k]).unwrap());
    // The other sequence keeps going after the first one finished.
    let other = greedy_alone(&decoder, &tok, prompts()[1].clone(), 16);
    assert_eq!(out[1].tokens, other.tokens);
}

#[test]
fn seeded_sampling_is_reproducible_and_independent_of_the_batch() {
    let tok = tiny_tokenizer();
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let sampled = |seed, top_p| GenerateRequest {
            prompt: prompts()[0].clone(),
            max_new_tokens: 16,
            stop: Vec::new(),
            sampling: SamplingParams {
                temperature: 1.0,
                top_p,
                seed,
            },
        };
        for top_p in [1.0, 0.9] {
            let alone = generate(&decoder, &tok, &[sampled(42, top_p)])
                .unwrap()
                .remove(0);
            let again = generate(&decoder, &tok, &[sampled(42, top_p)])
                .unwrap()
                .remove(0);
            assert_eq!(alone.tokens, again.tokens);
            let batch = vec![
                request(prompts()[4].clone(), 5),
                sampled(7, top_p),
                sampled(42, top_p),
                request(prompts()[1].clone(), 20),
            ];
            let out = generate(&decoder, &tok, &batch).unwrap();
            assert_eq!(out[2].tokens, alone.tokens, "{backend} top_p {top_p}");
            assert_ne!(out[1].tokens, alone.tokens, "another seed, other tokens");
            let greedy = greedy_alone(&decoder, &tok, prompts()[0].clone(), 16);
            assert_ne!(alone.tokens, greedy.tokens, "sampling is not greedy");
        }
    }
}

#[test]
fn loglikelihood_equals_sum_of_full_forward_log_softmax() {
    for backend in Backend::ALL {
        let (_, _, decoder) = tiny_model(backend, false);
        let prompt = vec![1u32, 40, 77, 12, 200];
        let continuations = vec![
            vec![5u32],
            vec![9, 31, 150],
            vec![],
            vec![66, 67, 68, 69, 70],
        ];
        let got = loglikelihood(&decoder, &prompt, &continuations).unwrap();
        assert_eq!(got.len(), continuations.len());
        for (c, score) in continuations.iter().zip(&got) {
            let mut seq = prompt.clone();
            seq.extend_from_slice(c);
            let batch = TokenBatch::right_padded(&[seq.clone()], 0).unwrap();
            let (logits, _) = host_logits(decoder.forward(&batch).unwrap());
            let want: f64 = (prompt.len()..seq.len())
                .map(|pos| log_softmax(&logits[(pos - 1) * VOCAB..][..VOCAB])[seq[pos] as usize])
                .sum();
            assert!(
                (score - want).abs() < 1e-3,
                "{backend} {c:?}: {score} vs {want}"
            );
            if c.is_empty() {
                assert_eq!(*score, 0.0);
            } else {
                assert!(*score < 0.0);
            }
        }
        assert!(loglikelihood(&decoder, &[], &continuations).is_err());
        assert_eq!(
            loglikelihood(&decoder, &prompt, &[]).unwrap(),
            Vec::<f64>::new()
        );
    }
}

#[test]
fn weights_round_trip_exactly() {
    for tie in [false, true] {
        let config = tiny_config(tie);
        let weights = tiny_weights(&config, 3);
        let decoder =
            LlamaDecoder::from_weights(&config, &weights, &Backend::Flex.device()).unwrap();
        let back = decoder.to_weights().unwrap();
        assert_eq!(back, weights, "tie={tie}");
        assert_eq!(back.contains_key("lm_head.weight"), !tie);
        let owned =
            LlamaDecoder::from_weights_owned(&config, weights.clone(), &Backend::NdArray.device())
                .unwrap();
        assert_eq!(owned.to_weights().unwrap(), weights, "owned, tie={tie}");
    }
    // init_random is reproducible from its seed and exports HF shapes.
    let config = tiny_config(false);
    let a = LlamaDecoder::init_random(&config, &Backend::Flex.device(), 5).unwrap();
    let b = LlamaDecoder::init_random(&config, &Backend::NdArray.device(), 5).unwrap();
    let (wa, wb) = (a.to_weights().unwrap(), b.to_weights().unwrap());
    assert_eq!(wa, wb);
    assert_eq!(
        wa["model.layers.1.self_attn.k_proj.weight"].shape,
        vec![16, 32]
    );
    assert_eq!(
        wa["model.layers.0.mlp.down_proj.weight"].shape,
        vec![32, 64]
    );
}

fn error_message(result: Result<LlamaDecoder, LlmError>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn missing_or_misshapen_tensors_are_errors_naming_them() {
    let config = tiny_config(false);
    let device = Backend::Flex.device();
    let mut weights = tiny_weights(&config, 1);
    weights.remove("model.layers.1.mlp.up_proj.weight");
    let msg = error_message(LlamaDecoder::from_weights(&config, &weights, &device));
    assert!(
        msg.contains("missing tensor model.layers.1.mlp.up_proj.weight"),
        "{msg}"
    );
    assert!(msg.contains("[64, 32]"), "{msg}");

    let mut weights = tiny_weights(&config, 1);
    weights.insert(
        "model.layers.0.self_attn.k_proj.weight".into(),
        HostTensor {
            shape: vec![32, 32],
            data: vec![0.0; 32 * 32],
        },
    );
    let msg = error_message(LlamaDecoder::from_weights(&config, &weights, &device));
    assert!(
        msg.contains("model.layers.0.self_attn.k_proj.weight"),
        "{msg}"
    );
    assert!(
        msg.contains("[32, 32]") && msg.contains("[16, 32]"),
        "{msg}"
    );

    let mut weights = tiny_weights(&config, 1);
    weights.get_mut("model.norm.weight").unwrap().data.pop();
    let msg = error_message(LlamaDecoder::from_weights(&config, &weights, &device));
    assert!(
        msg.contains("model.norm.weight: shape [32] does not match its 31 values"),
        "{msg}"
    );

    let mut weights = tiny_weights(&config, 1);
    weights.remove("lm_head.weight");
    let msg = error_message(LlamaDecoder::from_weights(&config, &weights, &device));
    assert!(msg.contains("lm_head.weight"), "{msg}");

    let mut weights = tiny_weights(&config, 1);
    weights.insert(
        "model.layers.0.self_attn.q_proj.bias".into(),
        HostTensor {
            shape: vec![32],
            data: vec![0.0; 32],
        },
    );
    let msg = error_message(LlamaDecoder::from_weights(&config, &weights, &device));
    assert!(msg.contains("q_proj.bias"), "{msg}");

    let mut bad = tiny_config(false);
    bad.num_key_value_heads = Some(3);
    let msg = error_message(LlamaDecoder::init_random(&bad, &device, 0));
    assert!(msg.contains("num_key_value_heads"), "{msg}");
}

#[test]
fn training_forward_is_differentiable() {
    use burn::module::Module;
    let config = tiny_config(false);
    let weights = tiny_weights(&config, 2);
    let device = Backend::Flex.device().autodiff();
    let decoder = LlamaDecoder::from_weights(&config, &weights, &device).unwrap();
    let batch = TokenBatch::right_padded(&[vec![1, 40, 77], vec![1, 5]], 0).unwrap();
    let logits = decoder.forward(&batch).unwrap();
    assert_eq!(logits.dims(), [2, 3, VOCAB]);
    let loss = logits.sum();
    let grads = loss.backward();
    let grad = decoder.layers[0]
        .self_attn
        .k_proj
        .weight
        .val()
        .grad(&grads)
        .expect("k_proj has a gradient");
    assert_eq!(grad.dims(), [16, 32]);
    let norm: f32 = grad.abs().sum().into_data().iter::<f32>().sum();
    assert!(norm > 0.0 && norm.is_finite());
    assert!(decoder.num_params() > 0);
}

#[test]
fn local_model_answers_requests_through_the_model_trait() {
    let tok = tiny_tokenizer();
    let config = tiny_config(false);
    let weights = tiny_weights(&config, 11);
    let reference = LlamaDecoder::from_weights(&config, &weights, &Backend::Flex.device()).unwrap();
    let mut model = LocalModel::new(
        "tiny",
        "sha256:abc",
        config,
        weights,
        tok.clone(),
        Backend::Flex,
    )
    .unwrap()
    .with_batch_size(2);
    // Handed four batches' worth at once, batched by length inside.
    assert_eq!(model.preferred_batch_size(), 8);
    let identity = model.identity();
    assert_eq!(identity.backend, "local");
    assert_eq!(identity.name, "tiny");
    assert_eq!(identity.fingerprint, "sha256:abc");

    let settings = |max_tokens, temperature| GenerationSettings {
        max_tokens,
        temperature,
        ..GenerationSettings::default()
    };
    let requests = vec![
        GenerationRequest {
            id: "a".into(),
            prompt: "the cat sat on the mat".into(),
            settings: settings(6, 0.0),
        },
        GenerationRequest {
            id: "b".into(),
            prompt: "hi".into(),
            settings: settings(4, 0.0),
        },
        GenerationRequest {
            id: "bad".into(),
            prompt: "x".into(),
            settings: settings(4, -1.0),
        },
        GenerationRequest {
            id: "c".into(),
            prompt: "route 66 to chicago".into(),
            settings: settings(5, 0.0),
        },
    ];
    let results = model.complete_batch(&requests);
    assert_eq!(results.len(), 4);
    match &results[2] {
        Err(e) => assert!(e.to_string().contains("bad") && e.to_string().contains("temperature")),
        Ok(c) => panic!("invalid settings answered: {c:?}"),
    }
    for (req, result) in requests.iter().zip(&results) {
        if req.id == "bad" {
            continue;
        }
        let completion = result.as_ref().unwrap();
        let prompt = tok.encode(&req.prompt).unwrap();
        let want = greedy_alone(&reference, &tok, prompt.clone(), req.settings.max_tokens);
        assert_eq!(completion.text, want.text, "request {}", req.id);
        assert_eq!(completion.usage.prompt_tokens, prompt.len() as u64);
        assert_eq!(
            completion.usage.completion_tokens,
            req.settings.max_tokens as u64
        );
        assert_eq!(completion.finish, Some(FinishReason::Length));
        let latency = completion.latency.expect("a measured latency");
        assert_eq!(latency.source, LatencySource::Live);
        assert!(latency.batch_size >= 1 && latency.batch_size <= 2);
        assert!(latency.total_ms > 0.0);
        assert!(latency.first_token_ms.unwrap() <= latency.total_ms);
        assert!(latency.batch_ms.unwrap() >= latency.total_ms);
    }

    // Chat formatting goes through the tokenizer's template.
    let mut chat_tok = tok.clone();
    chat_tok.chat = Some(distill_gate::llm::ChatTemplate::ChatMl {
        default_system: None,
    });
    let config = tiny_config(false);
    let weights = tiny_weights(&config, 11);
    let mut chat_model = LocalModel::new(
        "tiny",
        "sha256:abc",
        config,
        weights,
        chat_tok.clone(),
        Backend::Flex,
    )
    .unwrap();
    let mut chat_settings = settings(3, 0.0);
    chat_settings.chat = true;
    let out = chat_model.complete_batch(&[GenerationRequest {
        id: "chat".into(),
        prompt: "hi".into(),
        settings: chat_settings,
    }]);
    let completion = out[0].as_ref().unwrap();
    let formatted = chat_tok.encode(&chat_tok.chat_prompt("hi")).unwrap();
    assert_eq!(completion.usage.prompt_tokens, formatted.len() as u64);
    let want = greedy_alone(&reference, &tok, formatted, 3);
    assert_eq!(completion.text, want.text);

    // Multiple-choice scoring tokenizes prompt + choice jointly.
    let choices = vec![" the mat".to_string(), " a hat".to_string(), "".to_string()];
    let scores = model
        .score_choices("the cat sat on", &choices, false)
        .unwrap();
    let prompt_ids = tok.encode("the cat sat on").unwrap();
    let conts: Vec<Vec<u32>> = choices
        .iter()
        .map(|c| tok.encode(&format!("the cat sat on{c}")).unwrap()[prompt_ids.len()..].to_vec())
        .collect();
    assert_eq!(conts[2], Vec::<u32>::new());
    let want = loglikelihood(&reference, &prompt_ids, &conts).unwrap();
    for (a, b) in scores.iter().zip(&want) {
        assert!((a - b).abs() < 1e-9, "{scores:?} vs {want:?}");
    }
    assert_eq!(scores[2], 0.0);
    assert!(scores[0] < 0.0 && scores[1] < 0.0 && scores[0] != scores[1]);
}
