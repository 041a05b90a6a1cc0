#!/usr/bin/env python3
"""Compare distill-gate's runtime with llama.cpp, prompt by prompt.

Both sides are JSON-lines files with one record per prompt:
  {"id", "prompt_ids", "generated_ids", "text", "first_logits"}
distill-gate's side is written by `examples/first_logits.rs`, llama.cpp's by
`scripts/llamacpp_reference.py` (llama-cpp-python). A side given as a model
(.gguf file or checkpoint directory) instead of a .jsonl is run first, its
output cached under --workdir.

For each reference and each prompt it reports: whether the prompt token ids
agree, the length of the common prefix of the greedy completions (in tokens,
out of the longer completion), and for the first-step logits the max and
mean absolute difference, the Pearson correlation, whether the top-1 token
agrees and how many of the top-5 tokens are shared.

Usage (from the repository root):

  # distill-gate on the Q4_1 file; also export its dequantized weights as f32 GGUF
  cargo run --release --example first_logits -- \
      --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --prompts scripts/compare_prompts.jsonl --tokens 32 \
      --export-f32 models/SmolLM2-135M-Instruct.dequant-f32.gguf > models/ours_q4_1.jsonl
  # llama.cpp on the Q4_1 file and on the f32 export
  scripts/llamacpp_reference.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
      scripts/compare_prompts.jsonl models/llamacpp_q4_1.jsonl
  scripts/llamacpp_reference.py models/SmolLM2-135M-Instruct.dequant-f32.gguf \
      scripts/compare_prompts.jsonl models/llamacpp_f32.jsonl
  # the comparison (Markdown tables on stdout)
  scripts/compare_llamacpp.py --ours distill-gate=models/ours_q4_1.jsonl \
      --ref llama.cpp-Q4_1=models/llamacpp_q4_1.jsonl \
      --ref llama.cpp-F32=models/llamacpp_f32.jsonl

  # or let the script run both sides itself (slow: llama.cpp keeps all logits)
  scripts/compare_llamacpp.py --ours distill-gate=models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --ref llama.cpp-Q4_1=models/SmolLM2-135M-Instruct.Q4_1.gguf

--ours may be any side, e.g. llama.cpp with an f32 KV cache
(`llamacpp_reference.py --kv-type f32`) to compare llama.cpp with itself, or
the NumPy forward of `scripts/numpy_llama.py` (an independent third
implementation, optionally emulating llama.cpp's quantized arithmetic). Exit status: 0 when, for every reference, at least --min-share of
the prompts share their first --min-prefix tokens; 1 otherwise.

Needs: numpy (and llama-cpp-python to run the llama.cpp side).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def parse_side(spec: str) -> tuple[str, Path]:
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {spec!r}")
    label, path = spec.split("=", 1)
    return label, Path(path)


def materialize(label: str, path: Path, runner: str, args) -> Path:
    """Returns a .jsonl for the side, running the model first if needed."""
    if path.suffix == ".jsonl":
        return path
    args.workdir.mkdir(parents=True, exist_ok=True)
    out = args.workdir / f"{label}.jsonl"
    if runner == "ours":
        cmd = ["cargo", "run", "--release", "--quiet", "--example", "first_logits", "--",
               "--model", str(path), "--prompts", str(args.prompts), "--tokens", str(args.tokens)]
        print(f"running {label}: {' '.join(cmd)}", file=sys.stderr)
        with open(out, "w") as f:
            subprocess.run(cmd, check=True, stdout=f, cwd=ROOT)
    else:
        cmd = [sys.executable, str(ROOT / "scripts" / "llamacpp_reference.py"), str(path),
               str(args.prompts), str(out), "--tokens", str(args.tokens)]
        print(f"running {label}: {' '.join(cmd)}", file=sys.stderr)
        subprocess.run(cmd, check=True)
    return out


def load(path: Path) -> dict:
    records = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                for key in ("id", "prompt_ids", "generated_ids", "first_logits"):
                    if key not in rec:
                        sys.exit(f"{path}:{n}: missing field {key!r}")
                records[rec["id"]] = rec
    return records


def common_prefix(a: list, b: list) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def top_k(logits: np.ndarray, k: int) -> list:
    """Indices of the k largest logits, largest first (ties: lower id first)."""
    return list(np.lexsort((np.arange(len(logits)), -logits))[:k])


def compare(ours: dict, ref: dict) -> dict:
    a = np.asarray(ours["first_logits"], dtype=np.float64)
    b = np.asarray(ref["first_logits"], dtype=np.float64)
    if a.shape != b.shape:
        sys.exit(f"{ours['id']}: logits have {a.size} vs {b.size} entries")
    diff = np.abs(a - b)
    ga, gb = ours["generated_ids"], ref["generated_ids"]
    t5a, t5b = top_k(a, 5), top_k(b, 5)
    prefix = common_prefix(ga, gb)
    return {
        "id": ours["id"],
        "prompt_ok": ours["prompt_ids"] == ref["prompt_ids"],
        "prompt_len": len(ours["prompt_ids"]),
        "prefix": prefix,
        "length": max(len(ga), len(gb)),
        "identical": ga == gb,
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "corr": float(np.corrcoef(a, b)[0, 1]),
        "top1": t5a[0] == t5b[0],
        "top5": len(set(t5a) & set(t5b)),
        "top5_order": t5a == t5b,
        "logit_range": float(b.max() - b.min()),
    }


def passes(rows: list, min_prefix: int, min_share: float) -> bool:
    """At least `min_share` of the prompts share their first `min_prefix`
    tokens (or the whole completion, when one side stopped earlier)."""
    good = sum(r["prefix"] >= min(min_prefix, r["length"]) for r in rows)
    return good >= min_share * len(rows)


def report(ours_label: str, ref_label: str, rows: list, min_prefix: int, min_share: float) -> str:
    lines = [f"### {ours_label} vs {ref_label}", "",
             "| prompt | prompt ids | matching prefix | max abs diff | mean abs diff | correlation | top-1 | top-5 shared |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        prefix = f"{r['prefix']}/{r['length']}" + (" (identical)" if r["identical"] else "")
        lines.append(
            f"| {r['id']} | {'same' if r['prompt_ok'] else 'DIFFERENT'} ({r['prompt_len']}) | {prefix} "
            f"| {r['max_abs']:.2e} | {r['mean_abs']:.2e} | {r['corr']:.8f} "
            f"| {'yes' if r['top1'] else 'NO'} | {r['top5']}/5{'' if r['top5_order'] else ' (order differs)'} |")
    n = len(rows)
    early = [r for r in rows if r["prefix"] < min(min_prefix, r["length"])]
    lines += ["",
              f"- prompts: {n}; prompt token ids identical: {sum(r['prompt_ok'] for r in rows)}/{n}",
              f"- completions identical over all generated tokens: {sum(r['identical'] for r in rows)}/{n}",
              f"- matching at least the first {min_prefix} tokens (or the whole completion): {n - len(early)}/{n}"
              + (f"; earlier divergence in: {', '.join(r['id'] + ' @' + str(r['prefix']) for r in early)}" if early else ""),
              f"- first-step logits: max abs diff max {max(r['max_abs'] for r in rows):.2e}, "
              f"median {float(np.median([r['max_abs'] for r in rows])):.2e}; "
              f"correlation min {min(r['corr'] for r in rows):.8f}; "
              f"top-1 agreement {sum(r['top1'] for r in rows)}/{n}; "
              f"top-5 sets identical {sum(r['top5'] == 5 for r in rows)}/{n}",
              f"- criterion (first {min_prefix} tokens agree in at least {min_share:.0%} of the prompts): "
              + ("met" if passes(rows, min_prefix, min_share) else "NOT met"),
              ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", type=parse_side, required=True, metavar="LABEL=PATH")
    ap.add_argument("--ref", type=parse_side, action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--prompts", type=Path, default=ROOT / "scripts" / "compare_prompts.jsonl")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--workdir", type=Path, default=ROOT / "models" / "compare")
    ap.add_argument("--min-prefix", type=int, default=16)
    ap.add_argument("--min-share", type=float, default=0.8)
    args = ap.parse_args()

    ours_label, ours_path = args.ours
    ours = load(materialize(ours_label, ours_path, "ours", args))
    ok = True
    for ref_label, ref_path in args.ref:
        ref = load(materialize(ref_label, ref_path, "llama.cpp", args))
        missing = sorted(set(ours) ^ set(ref))
        if missing:
            sys.exit(f"prompt ids present on one side only: {missing}")
        rows = [compare(ours[k], ref[k]) for k in ours]
        print(report(ours_label, ref_label, rows, args.min_prefix, args.min_share))
        ok &= passes(rows, args.min_prefix, args.min_share)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
