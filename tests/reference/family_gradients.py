"""Gradient goldens of one model family (as make_gradient_goldens.py does for GPT-2).

* grad.clean.<hook>: d metric / d hook for every TransformerLens hook, metric = sum_b ld[b],
  ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]] over the family's patching pairs
  (clean run). Read with retain_grad (make_gradient_goldens.tl_hook_grads: a hook that fires
  several times, like ln1.hook_* which TL 3.9 calls for q, k and v, gets the SUM over calls),
  checked against TL backward hooks and a float64 run.
* train.grad.<HF name>: every parameter's gradient of the mean next-token cross-entropy of a
  seeded random batch, Hugging Face model, HF names and layouts; checked against float64.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Sequence

import torch

from make_gradient_goldens import max_abs, next_token_loss, rel_err, tl_hook_grads

TRAIN_SEED = 1234
TRAIN_BATCH, TRAIN_SEQ = 2, 12
STORED_ACTS = ("hook_resid_pre", "attn.hook_pattern")


def masked_info(grads, values, n_layers: int) -> Dict[str, Any]:
    """Masked scores (causal or outside the sliding window) are -inf with gradient 0."""
    n_masked = 0
    for l in range(n_layers):
        s = values[f"blocks.{l}.attn.hook_attn_scores"]
        g = grads[f"blocks.{l}.attn.hook_attn_scores"]
        m = torch.isneginf(s)
        assert torch.isfinite(s[~m]).all()
        assert torch.count_nonzero(g[m]) == 0, "masked score gradient is not 0"
        n_masked += int(m.sum())
    return {"masked_score_entries": n_masked, "masked_score_grad": 0.0}


N_GRAD_PAIRS = 3  # the first 3 patching pairs (size)


def hook_gradient_goldens(tl, hooks: Sequence[str], clean, answer, wrong, out: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    names = [h for h in hooks]
    clean, answer, wrong = clean[:N_GRAD_PAIRS], answer[:N_GRAD_PAIRS], wrong[:N_GRAD_PAIRS]
    out["metric.pairs"] = torch.arange(N_GRAD_PAIRS, dtype=torch.int32)
    # tl_hook_grads adds its own retain_grad hooks on every ln*.hook_normalized (for its
    # hook_scale check) and returns their gradients separately: take hook_normalized from there,
    # else the same activation would be kept twice and its gradient doubled.
    base = [n for n in names if not n.endswith("hook_normalized")]
    grads, values, ld, normalized, calls = tl_hook_grads(tl, clean, answer, wrong, base)
    for n in names:
        if n.endswith("hook_normalized"):
            grads[n] = normalized[n]
            calls[n] = calls[n.replace("hook_normalized", "hook_scale")]
    grads_b, _, _, _, _ = tl_hook_grads(tl, clean, answer, wrong, names, with_bwd_hooks=True)
    worst_bwd = max(rel_err(grads_b[n], grads[n]) for n in names)
    assert worst_bwd <= 1e-5, worst_bwd
    tl64 = copy.deepcopy(tl).to(torch.float64)
    tl64.cfg.dtype = torch.float64
    g64, _, ld64, n64, _ = tl_hook_grads(tl64, clean, answer, wrong, base)
    g64.update(n64)
    worst64 = max(rel_err(grads[n], g64[n].float()) for n in names)
    assert worst64 <= 1e-4, worst64
    for n in names:
        out[f"grad.clean.{n}"] = grads[n].float().contiguous()
    for l in range(tl.cfg.n_layers):
        for h in STORED_ACTS:
            out[f"act.clean.blocks.{l}.{h}"] = values[f"blocks.{l}.{h}"].float().contiguous()
    out["metric.clean"] = ld.float().contiguous()
    return {
        "hook_calls_per_forward": {n: c for n, c in calls.items() if c != 1},
        "masked": masked_info(grads, values, tl.cfg.n_layers),
        "hook_checks": {
            "TL retain_grad vs TL backward hooks (rel)": worst_bwd,
            "float32 vs float64 TL (rel, max over hooks)": worst64,
            "metric float32 vs float64 (abs)": max_abs(ld.double(), ld64),
        },
        "grad_max_abs": {n: float(grads[n].abs().max()) for n in names},
    }


def weight_gradient_goldens(hf, vocab_size: int, out: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    g = torch.Generator().manual_seed(TRAIN_SEED)
    tokens = torch.randint(0, vocab_size, (TRAIN_BATCH, TRAIN_SEQ), generator=g)

    def grads_of(model):
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            logits = model(input_ids=tokens).logits
            loss = next_token_loss(logits, tokens)
            loss.backward()
        gr = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        return loss.detach(), gr

    loss, gr = grads_of(hf)
    hf64 = copy.deepcopy(hf).to(torch.float64)
    loss64, gr64 = grads_of(hf64)
    worst = max(rel_err(gr[n], gr64[n].float()) for n in gr)
    assert worst <= 1e-4, worst
    out["train.tokens"] = tokens.to(torch.int32).contiguous()
    out["train.loss"] = loss.float().reshape(1).contiguous()
    for n, v in gr.items():
        out[f"train.grad.{n}"] = v.float().contiguous()
    tied = [n for n, _ in hf.named_parameters(remove_duplicate=False)]
    return {
        "train": {
            "tokens": f"torch.randint(0, {vocab_size}, ({TRAIN_BATCH}, {TRAIN_SEQ}), generator=torch.Generator().manual_seed({TRAIN_SEED}))",
            "loss": "mean next-token cross-entropy, positions 0..T-2 predicting 1..T-1, HF model (eager attention)",
            "parameters": sorted(gr),
            "all_parameter_names_incl_tied": tied,
        },
        "weight_checks": {"float32 vs float64 parameter gradients (rel)": worst, "loss f32 vs f64": abs(float(loss) - float(loss64))},
    }
