#!/usr/bin/env python3
"""Reference outputs from llama.cpp (via the PyPI package llama-cpp-python).

For each prompt in a JSONL file ({"id": ..., "prompt": ...}), runs llama.cpp
greedily and writes one JSON line with the prompt's token ids, the first
`--tokens` generated token ids, and the logits of the first generation step.
`scripts/compare_llamacpp.py` compares these with distill-gate's runtime.

Usage: scripts/llamacpp_reference.py MODEL.gguf PROMPTS.jsonl OUT.jsonl [--tokens 32] [--kv-type f16|f32]
(--kv-type is the type of llama.cpp's KV cache; f16 is llama.cpp's default.)
Needs: pip install llama-cpp-python numpy  (builds llama.cpp from source).
"""
import argparse
import json
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-type", choices=["f16", "f32"], default="f16")
    args = ap.parse_args()

    kv_type = {"f16": llama_cpp.GGML_TYPE_F16, "f32": llama_cpp.GGML_TYPE_F32}[args.kv_type]
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads,
                logits_all=True, verbose=False, type_k=kv_type, type_v=kv_type)
    with open(args.prompts) as f, open(args.out, "w") as out:
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            # Special tokens in the text (e.g. <|im_start|>) become their ids,
            # as distill-gate's tokenizer does; no BOS (add_bos is false).
            ids = llm.tokenize(item["prompt"].encode("utf-8"), add_bos=False, special=True)
            llm.reset()
            llm.eval(ids)
            first_logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            generated = []
            for _ in range(args.tokens):
                logits = np.array(llm.scores[llm.n_tokens - 1])
                tok = int(np.argmax(logits))
                generated.append(tok)
                if tok == llm.token_eos():
                    break
                llm.eval([tok])
            out.write(json.dumps({
                "id": item["id"],
                "prompt_ids": ids,
                "generated_ids": generated,
                "text": llm.detokenize(generated).decode("utf-8", errors="replace"),
                "first_logits": [round(float(x), 5) for x in first_logits],
            }) + "\n")
            print(item["id"], repr(llm.detokenize(generated).decode("utf-8", errors="replace")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
