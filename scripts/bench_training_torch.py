#!/usr/bin/env python3
"""The training loop of `distill-gate distill` in PyTorch (transformers
`LlamaForCausalLM`), on the batches `distill-gate` itself takes (written by
`cargo run --release --example training_batches`), for
scripts/bench-training. Prints one JSON object: steps, real input tokens,
seconds, tokens/s, the mean loss.

Same model (Llama decoder, RMSNorm eps 1e-5, RoPE theta 10000, tied
embedding, SDPA attention), same batches (right-padded to the longest row,
padding masked), same loss (cross-entropy on completion tokens only, hidden
states gathered at those cells before the LM head, as distill-gate does),
same optimizer (AdamW betas 0.9/0.95, eps 1e-8, weight decay, global
gradient-norm clipping at 1.0, warmup then cosine learning rate). With
--teacher-* the token-level distillation loss
(1 - alpha) CE + alpha T^2 KL(teacher || student) with the teacher run
under torch.inference_mode on the same padded batch.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM


def llama(vocab, layers, hidden, heads, kv_heads, intermediate, theta, tie):
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=theta,
        tie_word_embeddings=tie,
        attention_bias=False,
        mlp_bias=False,
    )
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config)


def tensors(batch, pad):
    """Right-padded inputs (each example without its last token), the
    attention mask, the flat indices of the learned cells and their targets."""
    inputs = [ids[:-1] for ids in batch["ids"]]
    cols = max(len(x) for x in inputs)
    ids = torch.full((len(inputs), cols), pad, dtype=torch.long)
    mask = torch.zeros((len(inputs), cols), dtype=torch.long)
    cells, targets = [], []
    for r, (full, plen) in enumerate(zip(batch["ids"], batch["prompt_lens"])):
        ids[r, : len(full) - 1] = torch.tensor(full[:-1])
        mask[r, : len(full) - 1] = 1
        for c in range(max(plen, 1), len(full)):
            cells.append(r * cols + c - 1)
            targets.append(full[c])
    real = int(mask.sum())
    return ids, mask, torch.tensor(cells), torch.tensor(targets), real


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("batches")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--intermediate", type=int, required=True)
    ap.add_argument("--vocab-rows", type=int, help="output rows (default: the tokenizer's size)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kd-weight", type=float, default=0.0)
    ap.add_argument("--kd-temperature", type=float, default=2.0)
    ap.add_argument("--teacher-layers", type=int, default=30)
    ap.add_argument("--teacher-hidden", type=int, default=576)
    ap.add_argument("--teacher-heads", type=int, default=9)
    ap.add_argument("--teacher-kv-heads", type=int, default=3)
    ap.add_argument("--teacher-intermediate", type=int, default=1536)
    ap.add_argument("--teacher-theta", type=float, default=100000.0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    with open(a.batches) as f:
        data = json.load(f)
    vocab = a.vocab_rows or data["vocab_size"]
    model = llama(vocab, a.layers, a.hidden, a.heads, a.kv_heads, a.intermediate, 10000.0, True)
    for p in model.parameters():
        if p.dim() > 1:
            torch.nn.init.normal_(p, 0.0, 0.02)
    model.train()
    teacher = None
    if a.kd_weight > 0:
        # The teacher's weights do not change its speed: SmolLM2-135M's
        # architecture with random weights, in f32 as distill-gate runs it
        # for batches of this size.
        teacher = llama(vocab, a.teacher_layers, a.teacher_hidden, a.teacher_heads,
                        a.teacher_kv_heads, a.teacher_intermediate, a.teacher_theta, True)
        teacher.eval()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=a.weight_decay)
    steps = len(data["batches"])
    warmup = min(steps // 20, 100)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        t = (step - warmup) / max(steps - warmup, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    total_tokens, total_secs, losses = 0, 0.0, []
    for batch in data["batches"]:
        ids, mask, cells, targets, real = tensors(batch, data["pad"])
        start = time.perf_counter()
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, cells)
        logits = model.lm_head(picked)
        loss = F.cross_entropy(logits, targets, reduction="sum")
        if teacher is not None:
            with torch.inference_mode():
                th = teacher.model(input_ids=ids, attention_mask=mask).last_hidden_state
                tl = teacher.lm_head(th.reshape(-1, th.shape[-1]).index_select(0, cells))
            t = a.kd_temperature
            log_t = F.log_softmax(tl.clone() / t, dim=-1)
            log_s = F.log_softmax(logits / t, dim=-1)
            kl = (log_t.exp() * (log_t - log_s)).sum()
            loss = (1 - a.kd_weight) * loss + a.kd_weight * t * t * kl
        loss = loss / len(targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        total_secs += time.perf_counter() - start
        total_tokens += real
    json.dump({
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "steps": steps,
        "tokens": total_tokens,
        "seconds": total_secs,
        "tokens_per_s": total_tokens / total_secs,
        "mean_loss": sum(losses) / len(losses),
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
