#!/usr/bin/env python3
"""Reference outputs from llama.cpp (via the PyPI package llama-cpp-python).

For each prompt in a JSONL file ({"id": ..., "prompt": ...}), runs llama.cpp
greedily and writes one JSON line with the prompt's token ids, the first
`--tokens` generated token ids, and the logits of the first generation step.
`scripts/compare_llamacpp.py` compares these with distill-gate's runtime.

Usage: scripts/llamacpp_reference.py MODEL.gguf PROMPTS.jsonl OUT.jsonl [--tokens 32]
Needs: pip install llama-cpp-python numpy  (builds llama.cpp from source).
"""
import argparse
import json
import sys

import numpy as np
from llama_cpp import Llama


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads,
                logits_all=True, verbose=False)
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
