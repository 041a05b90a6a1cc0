#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the project's real fixtures.

Run from anywhere: python3 scripts/fuzz-seed.py. Existing corpus files are
kept (libFuzzer adds what it finds next to the seeds); seeds are named by
content hash, so running this twice changes nothing.
"""
import glob
import hashlib
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def lines(path, n, chunk):
    """Up to n chunks of `chunk` consecutive lines of a JSONL file."""
    all_lines = read(path).splitlines(keepends=True)
    out = []
    for i in range(0, min(len(all_lines), n * chunk), chunk):
        out.append(b"".join(all_lines[i : i + chunk]))
    return out


def files(pattern):
    return sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True))


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, payload):
    return gguf_string(key) + struct.pack("<I", vtype) + payload


def tiny_gguf(with_tensors=True):
    """A small GGUF v3 file: a 2-layer Llama with an 8-token vocabulary."""
    U32, F32, STR, ARR = 4, 6, 8, 9
    tokens = ["<s>", "</s>", "a", "b", "c", "Ġ", "ab", "Ġa"]
    kvs = [
        gguf_kv("general.architecture", STR, gguf_string("llama")),
        gguf_kv("general.alignment", U32, struct.pack("<I", 32)),
        gguf_kv("llama.context_length", U32, struct.pack("<I", 64)),
        gguf_kv("llama.embedding_length", U32, struct.pack("<I", 4)),
        gguf_kv("llama.block_count", U32, struct.pack("<I", 1)),
        gguf_kv("llama.feed_forward_length", U32, struct.pack("<I", 8)),
        gguf_kv("llama.attention.head_count", U32, struct.pack("<I", 2)),
        gguf_kv("llama.attention.head_count_kv", U32, struct.pack("<I", 1)),
        gguf_kv("llama.rope.freq_base", F32, struct.pack("<f", 10000.0)),
        gguf_kv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
        gguf_kv("tokenizer.ggml.model", STR, gguf_string("gpt2")),
        gguf_kv(
            "tokenizer.ggml.tokens",
            ARR,
            struct.pack("<IQ", STR, len(tokens)) + b"".join(gguf_string(t) for t in tokens),
        ),
        gguf_kv(
            "tokenizer.ggml.merges",
            ARR,
            struct.pack("<IQ", STR, 2) + gguf_string("a b") + gguf_string("Ġ a"),
        ),
        gguf_kv("tokenizer.ggml.bos_token_id", U32, struct.pack("<I", 0)),
        gguf_kv("tokenizer.ggml.eos_token_id", U32, struct.pack("<I", 1)),
    ]
    d, ff, v = 4, 8, len(tokens)
    shapes = []
    if with_tensors:
        shapes = [
            ("token_embd.weight", [d, v]),
            ("output_norm.weight", [d]),
            ("blk.0.attn_norm.weight", [d]),
            ("blk.0.attn_q.weight", [d, d]),
            ("blk.0.attn_k.weight", [d, d // 2]),
            ("blk.0.attn_v.weight", [d, d // 2]),
            ("blk.0.attn_output.weight", [d, d]),
            ("blk.0.ffn_norm.weight", [d]),
            ("blk.0.ffn_gate.weight", [d, ff]),
            ("blk.0.ffn_up.weight", [d, ff]),
            ("blk.0.ffn_down.weight", [ff, d]),
        ]
    infos, data, offset = b"", b"", 0
    for name, dims in shapes:
        n = 1
        for x in dims:
            n *= x
        infos += gguf_string(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", x) for x in dims)
        infos += struct.pack("<IQ", 0, offset)  # F32
        blob = struct.pack("<%df" % n, *[((i * 7) % 11 - 5) / 10 for i in range(n)])
        blob += b"\0" * ((-len(blob)) % 32)
        data += blob
        offset += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(kvs)) + b"".join(kvs) + infos
    head += b"\0" * ((-len(head)) % 32)
    return head + data


def tiny_safetensors():
    out = []
    for dtype, size in [("F32", 4), ("F16", 2), ("BF16", 2)]:
        header = {
            "__metadata__": {"format": "pt"},
            "model.norm.weight": {"dtype": dtype, "shape": [4], "data_offsets": [0, 4 * size]},
            "lm_head.weight": {"dtype": dtype, "shape": [2, 4], "data_offsets": [4 * size, 12 * size]},
        }
        h = json.dumps(header).encode()
        h += b" " * ((-len(h)) % 8)
        out.append(struct.pack("<Q", len(h)) + h + bytes(range(12 * size)))
    return out


def main():
    for p in files("**/*.toml"):
        if "/fuzz/" in p or "/target" in p:
            continue
        text = read(p)
        if os.path.basename(p) == "suite.toml":
            add("suite_toml", text)
        elif b"[teacher]" in text or b"[run]" in text:
            add("gate_toml", text)
    for p in files("suites/*/test.jsonl") + files("tests/data/suites/*/*.jsonl"):
        for c in lines(os.path.relpath(p, ROOT), 20, 3):
            add("tasks_jsonl", c)
    for c in lines("fixtures/teacher/smollm2-135m-test.jsonl", 20, 2):
        add("transcript", c)
    journal = lines("reports/example/results.jsonl", 40, 3)
    for c in journal:
        add("journal", c)
        add("journal", c[: len(c) * 2 // 3])  # torn last line
    for p in files("fixtures/students/*/config.json"):
        add("hf_config", read(os.path.relpath(p, ROOT)))
    add("tokenizer_json", read("fixtures/students/s05m/tokenizer.json"))
    for s in tiny_safetensors():
        add("safetensors", s)
    add("gguf", tiny_gguf(True))
    add("gguf", tiny_gguf(False))
    # Model outputs from the example run, for the scorers and extraction.
    for line in read("reports/example/results.jsonl").splitlines()[:400:4]:
        entry = json.loads(line)
        out = (entry.get("output") or "").encode()
        add("extract", out)
        add("score", bytes([len(out) % 256]) + out)


if __name__ == "__main__":
    main()
