#!/usr/bin/env python3
"""An independent NumPy Llama forward over a GGUF file, optionally emulating
llama.cpp's quantized CPU arithmetic; a third opinion for
`scripts/compare_llamacpp.py`.

Weights are read and dequantized with the `gguf` package (gguf-py, from
llama.cpp), not with distill-gate's reader, and the forward uses llama.cpp's
tensor layout (interleaved RoPE pairs), so it shares no code with the Rust
runtime. Prompt token ids are taken from another side's JSONL (`prompt_ids`),
so no tokenizer is involved.

Emulation switches (each mirrors what ggml's CPU backend does):
  --act-quant  quantize the input of every matmul whose weight is quantized,
               as ggml does before its integer dot products: to Q8_1 (blocks
               of 32, scale amax/127 and block sum stored as f16) for Q4_1
               weights, to Q8_0 for Q8_0 weights; the dot products are then
               computed from the integer blocks (d4*d8*sum(q4*q8) + m4*s8).
  --f16-kv     store K and V as f16 (llama.cpp's default KV cache type) and
               round Q and the attention probabilities to f16, as ggml's
               mul_mat does when its first operand is f16.
Without switches it is plain f32 arithmetic on the dequantized weights.

Usage:
  scripts/numpy_llama.py MODEL.gguf PROMPT_IDS.jsonl OUT.jsonl [--tokens 32] [--act-quant] [--f16-kv]
Output records: {"id", "prompt_ids", "generated_ids", "text": "", "first_logits"}.
Needs: numpy, gguf (pip install gguf).
"""
import argparse
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.quants import dequantize

QK = 32  # elements per block for Q4_1, Q8_0 and Q8_1


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def quantize_q8(x: np.ndarray):
    """ggml's quantize_row_q8_1 / q8_0 (AVX2 path): per 32-block, d = amax/127
    (stored as f16), q = round-half-even(x * 127/amax), s = f16(d * sum(q)).
    x: [T, n] -> q [T, nb, 32], d [T, nb], s [T, nb]."""
    t, n = x.shape
    xb = x.reshape(t, n // QK, QK).astype(np.float32)
    amax = np.abs(xb).max(axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(xb * inv[:, :, None]).astype(np.float32)
    s = f16(d * q.sum(axis=2))
    return q, f16(d), s


class Matrix:
    """A [out, in] weight with its f32 dequantization and, for Q4_1 / Q8_0,
    the integer blocks needed to emulate ggml's quantized dot products."""

    def __init__(self, tensor):
        self.kind = tensor.tensor_type
        raw = np.asarray(tensor.data)
        self.w = dequantize(raw, self.kind).astype(np.float32)  # [out, in]
        out, n = self.w.shape
        nb = n // QK
        if self.kind == QT.Q4_1:
            blocks = raw.reshape(out, nb, 20)
            self.d = blocks[:, :, 0:2].copy().view(np.float16)[:, :, 0].astype(np.float32)
            self.m = blocks[:, :, 2:4].copy().view(np.float16)[:, :, 0].astype(np.float32)
            qs = blocks[:, :, 4:20]
            q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.float32)  # [out, nb, 32]
            self.q = np.ascontiguousarray(q.transpose(1, 2, 0))  # [nb, 32, out]
        elif self.kind == QT.Q8_0:
            blocks = raw.reshape(out, nb, 34)
            self.d = blocks[:, :, 0:2].copy().view(np.float16)[:, :, 0].astype(np.float32)
            self.q = blocks[:, :, 2:34].copy().view(np.int8)  # [out, nb, 32]
        else:
            self.q = None

    def rows(self, ids):
        return self.w[ids]

    def matmul(self, x: np.ndarray, act_quant: bool) -> np.ndarray:
        """x [T, in] -> [T, out]."""
        if not act_quant or self.q is None:
            return x @ self.w.T
        q8, d8, s8 = quantize_q8(x)
        if self.kind == QT.Q4_1:
            isum = np.matmul(q8.transpose(1, 0, 2), self.q)  # [nb, T, out], exact integers
            scale = d8.T[:, :, None] * self.d.T[:, None, :]  # [nb, T, out]
            return (isum * scale).sum(axis=0) + s8 @ self.m.T
        # Q8_0 x Q8_0 (the tied output / embedding matrix).
        out = np.empty((x.shape[0], self.q.shape[0]), dtype=np.float32)
        for t in range(x.shape[0]):
            isum = np.einsum("obi,bi->ob", self.q, q8[t].astype(np.int8), dtype=np.int32)
            out[t] = (isum.astype(np.float32) * self.d * d8[t]).sum(axis=1)
        return out


class Llama:
    def __init__(self, path: str, act_quant: bool, f16_kv: bool):
        r = GGUFReader(path)
        meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
        if meta["general.architecture"] != "llama":
            sys.exit("only llama models")
        self.n_layer = int(meta["llama.block_count"])
        self.n_head = int(meta["llama.attention.head_count"])
        self.n_kv = int(meta["llama.attention.head_count_kv"])
        self.n_embd = int(meta["llama.embedding_length"])
        self.hd = self.n_embd // self.n_head
        self.eps = np.float32(meta["llama.attention.layer_norm_rms_epsilon"])
        base = float(meta.get("llama.rope.freq_base", 10000.0))
        self.inv_freq = (base ** (-np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        self.eos = int(r.fields["tokenizer.ggml.eos_token_id"].contents())
        self.act_quant, self.f16_kv = act_quant, f16_kv
        t = {x.name: x for x in r.tensors}
        vec = lambda name: np.asarray(t[name].data, dtype=np.float32)  # noqa: E731
        self.embd = Matrix(t["token_embd.weight"])
        self.output = Matrix(t["output.weight"]) if "output.weight" in t else self.embd
        self.norm = vec("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.layers.append({
                "attn_norm": vec(p + "attn_norm.weight"), "ffn_norm": vec(p + "ffn_norm.weight"),
                **{k: Matrix(t[p + k + ".weight"]) for k in
                   ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")},
            })

    def rmsnorm(self, x, w):
        return (x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)) * w

    def rope(self, x, pos):
        """x [T, heads, hd], llama.cpp 'norm' mode: pairs (2i, 2i+1)."""
        ang = (np.asarray(pos, dtype=np.float64)[:, None] * self.inv_freq[None, :])
        cos, sin = np.cos(ang).astype(np.float32)[:, None, :], np.sin(ang).astype(np.float32)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def forward(self, ids, cache):
        """Runs new tokens `ids` after the cache; returns the last position's logits."""
        past = cache[0][0].shape[0] if cache else 0
        pos = np.arange(past, past + len(ids))
        x = self.embd.rows(np.asarray(ids))
        mm = lambda m, v: m.matmul(v, self.act_quant)  # noqa: E731
        T = len(ids)
        group = self.n_head // self.n_kv
        for li, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["attn_norm"])
            q = self.rope(mm(L["attn_q"], h).reshape(T, self.n_head, self.hd), pos)
            k = self.rope(mm(L["attn_k"], h).reshape(T, self.n_kv, self.hd), pos)
            v = mm(L["attn_v"], h).reshape(T, self.n_kv, self.hd)
            if self.f16_kv:
                k, v, q = f16(k), f16(v), f16(q)
            if len(cache) <= li:
                cache.append((k, v))
            else:
                cache[li] = (np.concatenate([cache[li][0], k]), np.concatenate([cache[li][1], v]))
            K, V = cache[li]
            S = K.shape[0]
            kh = np.repeat(K.transpose(1, 0, 2), group, axis=0)  # [heads, S, hd]
            vh = np.repeat(V.transpose(1, 0, 2), group, axis=0)
            scores = np.matmul(q.transpose(1, 0, 2), kh.transpose(0, 2, 1)) / np.float32(np.sqrt(self.hd))
            mask = np.arange(S)[None, :] > (past + np.arange(T))[:, None]
            scores = np.where(mask[None], -np.inf, scores)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
            if self.f16_kv:
                probs = f16(probs)
            att = np.matmul(probs, vh).transpose(1, 0, 2).reshape(T, self.n_embd)
            x = x + mm(L["attn_output"], att)
            h = self.rmsnorm(x, L["ffn_norm"])
            g = mm(L["ffn_gate"], h)
            x = x + mm(L["ffn_down"], (g / (1 + np.exp(-g))) * mm(L["ffn_up"], h))
        last = self.rmsnorm(x[-1:], self.norm)
        return mm(self.output, last)[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompt_ids", help="a JSONL with id and prompt_ids per line (any side's output)")
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--act-quant", action="store_true")
    ap.add_argument("--f16-kv", action="store_true")
    args = ap.parse_args()
    model = Llama(args.model, args.act_quant, args.f16_kv)
    with open(args.prompt_ids) as f, open(args.out, "w") as out:
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            cache = []
            logits = model.forward(item["prompt_ids"], cache)
            first = logits
            generated = []
            for _ in range(args.tokens):
                tok = int(np.argmax(logits))
                generated.append(tok)
                if tok == model.eos or len(generated) == args.tokens:
                    break
                logits = model.forward([tok], cache)
            out.write(json.dumps({
                "id": item["id"], "prompt_ids": item["prompt_ids"], "generated_ids": generated,
                "text": "", "first_logits": [round(float(v), 5) for v in first],
            }) + "\n")
            out.flush()
            print(item["id"], generated[:8], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
