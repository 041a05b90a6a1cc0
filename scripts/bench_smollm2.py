#!/usr/bin/env python3
"""Prefill and decode tokens/s of SmolLM2-135M in distill-gate's burn runtime
(flex and ndarray, batch 1 and 16) next to llama.cpp (llama-cpp-python,
batch 1), in one run on the same machine.

Usage: scripts/bench_smollm2.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
Needs: cargo build --release; pip install llama-cpp-python.
Prompts: 16 plain prompts of about 64 tokens; 32 greedy new tokens each
(no stop sequence; a sequence that emits EOS earlier decodes fewer).
Ours: prefill = prompt tokens / time to first token of the batch;
decode = completion tokens after the first / (total - first token time).
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time

BIN = "target/release/distill-gate"
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
            "--max-tokens", "32"]
    args += ["--prompts", path] if batch > 1 else ["--prompt", ps[0]]
    err = subprocess.run(args, capture_output=True, text=True, check=True).stderr
    rows = re.findall(r"prompt (\d+) tokens, completion (\d+) tokens, first token ([\d.]+) ms, total ([\d.]+) ms", err)
    prompt_tok = sum(int(r[0]) for r in rows)
    comp_tok = sum(int(r[1]) for r in rows)
    ttft = max(float(r[2]) for r in rows) / 1000
    total = max(float(r[3]) for r in rows) / 1000
    return prompt_tok / ttft, (comp_tok - len(rows)) / max(total - ttft, 1e-9)


def llamacpp(model):
    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=512, n_threads=2, verbose=False)
    ids = llm.tokenize(prompts(1)[0].encode(), add_bos=False, special=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    n = 0
    for tok in llm.generate(ids, top_k=1, reset=False):
        n += 1
        if n == 32:
            break
    t2 = time.perf_counter()
    return len(ids) / (t1 - t0), n / (t2 - t1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    a = ap.parse_args()
    print("| runtime | backend | batch | prefill tok/s | decode tok/s |")
    print("|---|---|---|---|---|")
    p, d = llamacpp(a.model)
    print(f"| llama.cpp (llama-cpp-python, 2 threads) | Q4_1 | 1 | {p:.0f} | {d:.0f} |")
    for backend in ["flex", "ndarray"]:
        for batch in [1, 16]:
            p, d = ours(a.model, backend, batch)
            print(f"| distill-gate burn | {backend} | {batch} | {p:.0f} | {d:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
