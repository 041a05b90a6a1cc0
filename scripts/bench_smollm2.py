#!/usr/bin/env python3
"""Prefill and decode tokens/s of SmolLM2-135M in distill-gate's burn runtime
(flex and ndarray, batch 1 and 16) next to llama.cpp (llama-cpp-python, batch
1 and 16), in one run on the same machine, all with 2 threads.

Usage: scripts/bench_smollm2.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
                                [--backends flex,ndarray] [--batches 1,16]
Needs: cargo build --release (the binary is looked up under $CARGO_TARGET_DIR,
default target/); pip install llama-cpp-python numpy.
Prompts: 16 plain prompts of 58-59 tokens (no chat template, no BOS: the
model adds none); 32 greedy new tokens each, no stop sequence (a sequence
that emits EOS earlier decodes fewer).
prefill tok/s = prompt tokens / time until the first new token of the batch;
decode tok/s = new tokens after the first / time after the first.
llama.cpp: the high-level `Llama` API at batch 1, and its C API (one
`llama_decode` per step for all sequences, one KV stream per sequence,
greedy argmax) at each batch size. The C API run's greedy tokens are checked
against the high-level run's for the first prompts (printed to stderr).
Ours: `distill-gate generate`, timings from its stderr.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "distill-gate")
NEW_TOKENS = 32
SANITY_PROMPTS = 3
CTX_PER_SEQ = 512
# llama.cpp's own default on CPU ("auto") turns flash attention on.
FLASH_ATTN = True
BASE = ("Shipment {i}: {n} pallets of machine parts leave the Hamburg depot on Monday "
        "for a customer in Lyon; the carrier quotes a transit time of three business "
        "days, a fuel surcharge of twelve percent and a weight of {w} kg per pallet. Summary:")


def prompts(n):
    return [BASE.format(i=i, n=2 + i % 5, w=310 + 17 * i) for i in range(n)]


def ours(model, backend, batch):
    ps = prompts(batch)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for p in ps:
            f.write(json.dumps({"prompt": p}) + "\n")
        path = f.name
    args = [BIN, "generate", "--model", model, "--backend", backend, "--batch-size", str(batch),
            "--max-tokens", str(NEW_TOKENS)]
    args += ["--prompts", path] if batch > 1 else ["--prompt", ps[0]]
    err = subprocess.run(args, capture_output=True, text=True, check=True).stderr
    rows = re.findall(r"prompt (\d+) tokens, completion (\d+) tokens, first token ([\d.]+) ms, total ([\d.]+) ms", err)
    prompt_tok = sum(int(r[0]) for r in rows)
    comp_tok = sum(int(r[1]) for r in rows)
    ttft = max(float(r[2]) for r in rows) / 1000
    total = max(float(r[3]) for r in rows) / 1000
    return prompt_tok / ttft, (comp_tok - len(rows)) / max(total - ttft, 1e-9)


def llamacpp_high_level(model, n_prompts):
    """Batch 1 through the high-level `Llama` API: prefill and decode tok/s of
    prompt 0, and the greedy tokens of the first `n_prompts` prompts."""
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=CTX_PER_SEQ, n_threads=2, n_threads_batch=2,
                flash_attn=FLASH_ATTN, verbose=False)
    outputs = []
    speed = None
    for p in prompts(n_prompts):
        ids = llm.tokenize(p.encode(), add_bos=False, special=True)
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        toks = []
        # The prompt is cached exactly, so generate samples from its logits
        # without evaluating it again; each further token is one decode.
        gen = llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0)
        toks.append(next(gen))
        t1 = time.perf_counter()
        for tok in gen:
            toks.append(tok)
            if tok == llm.token_eos() or len(toks) == NEW_TOKENS:
                break
        t2 = time.perf_counter()
        gen.close()
        outputs.append(toks)
        if speed is None:
            speed = (len(ids) / (t1 - t0), (len(toks) - 1) / (t2 - t1))
    return speed, outputs


def llamacpp_batched(model, batch):
    """`batch` sequences decoded together through llama.cpp's C API: one
    `llama_decode` for all prompts (prefill), then one per step with one
    token per live sequence; greedy argmax over each sequence's logits.
    Returns (prefill tok/s, decode tok/s, greedy tokens per sequence)."""
    import ctypes
    import numpy as np
    import llama_cpp as L
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # llama.cpp's load messages off; errors still print
    L.llama_backend_init()
    mparams = L.llama_model_default_params()
    lmodel = L.llama_model_load_from_file(model.encode(), mparams)
    if not lmodel:
        raise RuntimeError(f"llama.cpp could not load {model}")
    vocab = L.llama_model_get_vocab(lmodel)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    eos = L.llama_vocab_eos(vocab)
    ids = []
    for p in prompts(batch):
        text = p.encode()
        buf = (L.llama_token * (len(text) + 8))()
        n = L.llama_tokenize(vocab, text, len(text), buf, len(buf), False, True)
        if n < 0:
            raise RuntimeError("llama_tokenize: buffer too small")
        ids.append(list(buf[:n]))
    total_prompt = sum(len(x) for x in ids)
    if max(len(x) for x in ids) + NEW_TOKENS > CTX_PER_SEQ:
        raise RuntimeError(f"prompts too long for {CTX_PER_SEQ} context cells")
    cparams = L.llama_context_default_params()
    cparams.n_seq_max = batch
    # One KV stream per sequence (kv_unified off), each of n_ctx / n_seq_max
    # cells: the same as the high-level run's context.
    cparams.n_ctx = batch * CTX_PER_SEQ
    cparams.n_batch = max(total_prompt, 512)
    cparams.n_threads = 2
    cparams.n_threads_batch = 2
    cparams.flash_attn_type = (L.LLAMA_FLASH_ATTN_TYPE_ENABLED if FLASH_ATTN
                               else L.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    ctx = L.llama_init_from_model(lmodel, cparams)
    if not ctx:
        raise RuntimeError("llama.cpp could not create the context")
    b = L.llama_batch_init(max(total_prompt, batch), 0, 1)

    def fill(entries):
        # entries: (token, position, sequence, wants logits)
        for i, (tok, pos, seq, out) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = out
        b.n_tokens = len(entries)

    def argmax(i):
        ptr = L.llama_get_logits_ith(ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))

    def decode():
        rc = L.llama_decode(ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    entries = [(tok, pos, s, int(pos == len(x) - 1))
               for s, x in enumerate(ids) for pos, tok in enumerate(x)]
    fill(entries)
    t0 = time.perf_counter()
    decode()
    last = [i for i, e in enumerate(entries) if e[3]]
    out = [[argmax(i)] for i in last]
    t1 = time.perf_counter()
    live = [s for s in range(batch) if out[s][-1] != eos]
    decoded = 0
    while live:
        fill([(out[s][-1], len(ids[s]) + len(out[s]) - 1, s, 1) for s in live])
        decode()
        for i, s in enumerate(live):
            out[s].append(argmax(i))
        decoded += len(live)
        live = [s for s in live if out[s][-1] != eos and len(out[s]) < NEW_TOKENS]
    t2 = time.perf_counter()
    L.llama_batch_free(b)
    L.llama_free(ctx)
    L.llama_model_free(lmodel)
    return total_prompt / (t1 - t0), decoded / (t2 - t1), out


def ours_eval(model, suite, split, batch, limit):
    """Evaluation as a gate run does it: `distill-gate record` over a suite
    split (the harness's batching, length sorting, greedy settings, stop
    sequences). Returns (prompt tokens, completion tokens, seconds of
    generation, [(prompt, completion tokens)] in the order asked); the
    seconds are the batches' wall times from the transcript (model loading
    excluded, as for llama.cpp)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "t.jsonl")
        subprocess.run([BIN, "record", "--model", model, "--suite", suite, "--split", split,
                        "--out", out, "--batch-size", str(batch), "--limit", str(limit)],
                       check=True, capture_output=True)
        entries = [json.loads(line) for line in open(out)]
    done = [e for e in entries if e.get("completion")]
    prompt_tok = sum(e["completion"]["usage"]["prompt_tokens"] for e in done)
    comp_tok = sum(e["completion"]["usage"]["completion_tokens"] for e in done)
    secs = sum(e["completion"]["latency"]["batch_ms"] / e["completion"]["latency"]["batch_size"]
               for e in done) / 1000
    return prompt_tok, comp_tok, secs, [(e["prompt"], e["completion"]["usage"]["completion_tokens"])
                                        for e in done]


MIN_SHARED_PREFIX = 16  # tokens; the same threshold as src/llm/generate.rs
REQUEST_WINDOW = 4  # batches handed to a local model at once (src/model/local.rs)


def prefix_groups(work, size):
    """Chunks of at most `size` of `work` (sorted by prompt tokens) that
    never mix a group of prompts sharing MIN_SHARED_PREFIX tokens with
    anything else, as our harness batches them: src/model/batching.rs cuts
    groups into windows of REQUEST_WINDOW batches, and src/model/local.rs
    orders each window's group by length before cutting it into batches."""
    n = len(work)
    shares = lambda i: 0 < i < n and common_prefix(work[i - 1][0], work[i][0]) >= MIN_SHARED_PREFIX
    segments, start = [], 0
    for i in range(1, n):
        group = i - start >= 2 and shares(start + 1)
        split = (not shares(i)) if group else (not shares(i) and shares(i + 1))
        if split:
            segments.append((start, i))
            start = i
    if start < n:
        segments.append((start, n))
    window = size * REQUEST_WINDOW
    chunks = []
    for s_, e in segments:
        for w in range(s_, e, window):
            part = sorted(work[w:min(w + window, e)], key=lambda x: (len(x[0]), x[0]))
            chunks.extend(part[b:b + size] for b in range(0, len(part), size))
    return chunks


def llamacpp_eval(model, requests, parallel, shared):
    """The same prompts through llama.cpp's C API, `parallel` sequences at a
    time, each generating exactly as many tokens as ours did (greedy argmax;
    the same work whatever each runtime would have stopped at).
    shared=False: prompts sorted by length, each prefilled whole.
    shared=True: the best llama.cpp can do with what our harness does:
    prompts in token order, chunked as ours, the chunk's common prefix
    decoded once into sequence 0 and shared with the others through
    llama_memory_seq_cp (a unified KV cache, so no copy), then the suffixes.
    As ours (src/llm/generate.rs, PrefixMemo), a chunk whose common prefix
    is the previous chunk's keeps it: only sequence 0's cells past the
    prefix and the other sequences are removed, and the prefix is not
    decoded again.
    Returns (prompt tokens, completion tokens, seconds)."""
    import numpy as np
    import llama_cpp as L
    from llama_cpp._logger import set_verbose

    set_verbose(False)
    L.llama_backend_init()
    lmodel = L.llama_model_load_from_file(model.encode(), L.llama_model_default_params())
    vocab = L.llama_model_get_vocab(lmodel)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    work = []
    for prompt, n_new in requests:
        text = prompt.encode()
        buf = (L.llama_token * (len(text) + 8))()
        n = L.llama_tokenize(vocab, text, len(text), buf, len(buf), False, True)
        work.append((list(buf[:n]), n_new))
    if shared:
        work.sort(key=lambda w: w[0])
        chunks = prefix_groups(work, parallel)
    else:
        work.sort(key=lambda w: len(w[0]))
        chunks = [work[i:i + parallel] for i in range(0, len(work), parallel)]
    longest = max(len(w[0]) + w[1] for w in work)
    cparams = L.llama_context_default_params()
    cparams.n_seq_max = parallel
    cparams.n_ctx = parallel * (longest + 8)
    cparams.n_batch = parallel * (longest + 8)
    cparams.n_threads = 2
    cparams.n_threads_batch = 2
    cparams.kv_unified = shared
    cparams.flash_attn_type = (L.LLAMA_FLASH_ATTN_TYPE_ENABLED if FLASH_ATTN
                               else L.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    ctx = L.llama_init_from_model(lmodel, cparams)
    mem = L.llama_get_memory(ctx)
    b = L.llama_batch_init(cparams.n_batch, 0, 1)

    def run(entries):
        for i, (tok, pos, seq, out) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = out
        b.n_tokens = len(entries)
        if L.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(i):
        return int(np.argmax(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,))))

    prompt_tok = sum(len(w[0]) for w in work)
    comp_tok = sum(w[1] for w in work)
    t0 = time.perf_counter()
    kept = None  # the prefix whose cells sequence 0 still holds
    for chunk in chunks:
        skip = 0
        prefix = None
        if shared and len(chunk) > 1:
            common = min(common_prefix(chunk[0][0], w[0]) for w in chunk[1:])
            common = min(common, min(len(w[0]) for w in chunk) - 1)
            if common >= MIN_SHARED_PREFIX:
                skip = common
                prefix = chunk[0][0][:skip]
        if prefix is not None and prefix == kept:
            L.llama_memory_seq_rm(mem, 0, skip, -1)
            for s_ in range(1, parallel):
                L.llama_memory_seq_rm(mem, s_, -1, -1)
        else:
            L.llama_memory_clear(mem, True)
            if prefix is not None:
                run([(tok, pos, 0, 0) for pos, tok in enumerate(prefix)])
        kept = prefix
        if prefix is not None:
            for s_ in range(1, len(chunk)):
                L.llama_memory_seq_cp(mem, 0, s_, -1, -1)
        entries = [(tok, pos, s_, int(pos == len(ids) - 1))
                   for s_, (ids, _) in enumerate(chunk) for pos, tok in enumerate(ids) if pos >= skip]
        run(entries)
        last = [i for i, e in enumerate(entries) if e[3]]
        out = [[argmax(i)] for i in last]
        live = [s_ for s_, (_, n_new) in enumerate(chunk) if n_new > 1]
        while live:
            run([(out[s_][-1], len(chunk[s_][0]) + len(out[s_]) - 1, s_, 1) for s_ in live])
            for i, s_ in enumerate(live):
                out[s_].append(argmax(i))
            live = [s_ for s_ in live if len(out[s_]) < chunk[s_][1]]
    secs = time.perf_counter() - t0
    L.llama_batch_free(b)
    L.llama_free(ctx)
    L.llama_model_free(lmodel)
    return prompt_tok, comp_tok, secs


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def llama_cpp_version():
    import llama_cpp
    return llama_cpp.__version__


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--backends", default="flex,ndarray", help="comma-separated; empty for none")
    ap.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--eval-suite", default="suites/logistics",
                    help="suite whose split is evaluated end to end (empty: skip)")
    ap.add_argument("--eval-split", default="test")
    ap.add_argument("--eval-limit", type=int, default=120, help="first N items of the split")
    ap.add_argument("--eval-parallel", default="16",
                    help="llama.cpp parallel sequences to try; the best counts")
    ap.add_argument("--json", help="also write every figure to this file (scripts/perf-targets)")
    a = ap.parse_args()
    batches = [int(x) for x in a.batches.split(",") if x]
    backends = [x for x in a.backends.split(",") if x]
    if backends and not os.path.exists(BIN):
        print(f"{BIN} is missing: run cargo build --release (or set CARGO_TARGET_DIR)",
              file=sys.stderr)
        return 2
    if not os.path.exists(a.model):
        print(f"{a.model} is missing: run scripts/fetch-smollm2", file=sys.stderr)
        return 2
    load_start = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    (p, d), reference = llamacpp_high_level(a.model, SANITY_PROMPTS)
    rows = [("llama.cpp high-level API", "Q4_1", 1, p, d)]
    for batch in batches:
        p, d, out = llamacpp_batched(a.model, batch)
        rows.append(("llama.cpp C API", "Q4_1", batch, p, d))
        for i, ref in enumerate(reference[:batch]):
            same = common_prefix(ref, out[i])
            print(f"sanity: llama.cpp batch {batch} prompt {i}: {same} of {len(ref)} greedy "
                  f"tokens equal to the high-level batch-1 run", file=sys.stderr)
    for backend in backends:
        for batch in batches:
            p, d = ours(a.model, backend, batch)
            rows.append(("distill-gate burn", backend, batch, p, d))
            print(f"done: {backend} batch {batch}", file=sys.stderr, flush=True)
    evals = []
    if a.eval_suite:
        p, c, secs, requests = ours_eval(a.model, a.eval_suite, a.eval_split, 16, a.eval_limit)
        evals.append((f"distill-gate record (flex, batch 16)", p, c, secs))
        for par in [int(x) for x in a.eval_parallel.split(",") if x]:
            for shared in (False, True):
                lp, lc, lsecs = llamacpp_eval(a.model, requests, par, shared)
                how = "shared prefix" if shared else "whole prompts"
                evals.append((f"llama.cpp C API ({par} parallel sequences, {how})", lp, lc, lsecs))
        print("done: evaluation throughput", file=sys.stderr, flush=True)
    print(f"{started}, {cpu_model()}, {os.cpu_count()} cores; "
          f"load average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f}; "
          f"llama-cpp-python {llama_cpp_version()}")
    print()
    print("| runtime (2 threads) | backend | batch | prefill tok/s | decode tok/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.0f} | {r[4]:.0f} |")
    best_cpp_decode_1 = max(r[4] for r in rows if r[0].startswith("llama.cpp") and r[2] == 1)
    ours_decode_1 = [r for r in rows if r[0].startswith("distill-gate") and r[2] == 1]
    if ours_decode_1:
        print()
        print("batch-1 decode, ours / best llama.cpp: " + ", ".join(
            f"{r[1]} {r[4] / best_cpp_decode_1:.2f}x" for r in ours_decode_1))
    if evals:
        print()
        print(f"Evaluation of {a.eval_suite} ({a.eval_split} split, first {a.eval_limit} items), "
              "prompt + completion tokens:")
        print()
        print("| runtime (2 threads) | prompt tokens | completion tokens | seconds | tokens/s |")
        print("|---|---|---|---|---|")
        for name, p, c, secs in evals:
            print(f"| {name} | {p} | {c} | {secs:.2f} | {(p + c) / secs:.0f} |")
        ours_tps = (evals[0][1] + evals[0][2]) / evals[0][3]
        best_cpp = max((p + c) / secs for _, p, c, secs in evals[1:]) if len(evals) > 1 else None
        if best_cpp:
            print()
            print(f"evaluation throughput, ours / best llama.cpp: {ours_tps / best_cpp:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({
                "started": started, "cpu": cpu_model(), "cores": os.cpu_count(),
                "load_start": load_start, "load_end": os.getloadavg()[0],
                "llama_cpp_python": llama_cpp_version(),
                "speed": [dict(zip(("runtime", "backend", "batch", "prefill_tok_s", "decode_tok_s"), r))
                          for r in rows],
                "eval": {"suite": a.eval_suite, "split": a.eval_split, "limit": a.eval_limit,
                         "runs": [dict(zip(("runtime", "prompt_tokens", "completion_tokens",
                                            "seconds"), e)) for e in evals]},
            }, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
