#!/usr/bin/env python3
"""Gradient goldens for the tiny random GPT-2: PyTorch autograd through TransformerLens and HF.

    PYTHONPATH=/opt/tl39 /opt/refvenv/bin/python tests/reference/make_gradient_goldens.py [--out DIR]

Reads the committed checkpoint tests/data/tiny-gpt2/ and the 6 prompt pairs of
tests/data/tiny-gpt2-patching-pairs.jsonl (both written by the other scripts here; this one
never writes them) and writes:
  tiny-gpt2-gradient-goldens.safetensors  hook gradients (clean and corrupted runs of the 6
                                          pairs), a few clean activations, per-pair metric;
                                          weight gradients of a next-token loss; 3 AdamW steps
  tiny-gpt2-gradient-goldens.json         keys, shapes, conventions, checks, versions

1. Hook gradients (TransformerLens HookedTransformer, no weight processing, no BOS):
   metric = sum_b ld[b], ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]], so batch
   element b holds the gradient of its own pair's logit difference (the batch elements do not
   interact). The gradient at every hook point is read with forward hooks that call
   retain_grad(), and again with TransformerLens backward hooks (must agree exactly), and is
   cross-checked against Hugging Face autograd (module hooks) and a float64 run.
2. Weight gradients (Hugging Face GPT2LMHeadModel): a seeded batch of 4 x 16 random tokens,
   loss = mean next-token cross-entropy; every parameter's gradient (HF names and layout),
   cross-checked against TransformerLens' own parameter gradients. Then 3 torch.optim.AdamW
   steps on the same batch (parameters after step 3, loss before each step), cross-checked
   against a hand-written AdamW.

See README.md beside this file ("Gradient goldens"). Single-threaded, deterministic torch:
reruns are byte-identical on one machine and library versions.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Dict, List, Sequence, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402
from make_goldens import all_hook_names, versions  # noqa: E402
from make_patching_goldens import logit_diff, sort_header_metadata  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

RUNS = ("clean", "corrupted")
# Clean-run forward values stored beside the gradients (every layer).
ACT_HOOKS = ("hook_resid_pre", "attn.hook_pattern", "attn.hook_z")

TRAIN_SEED = 1234
TRAIN_BATCH, TRAIN_SEQ = 4, 16
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
ADAMW_STEPS = 3
ADAMW_STORED = ("transformer.h.0.mlp.c_fc.weight", "transformer.wte.weight")

HF_CROSS_CHECK_ATOL = 1e-5


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    return float((a.double() - b.double()).abs().max())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b the reference): the scale-aware error used for tolerances."""
    den = float(b.double().abs().max())
    return max_abs(a, b) / den if den > 0 else max_abs(a, b)


def load_pairs(path: str) -> Dict[str, torch.Tensor]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {
        "clean": torch.tensor([r["clean"] for r in rows], dtype=torch.long),
        "corrupted": torch.tensor([r["corrupted"] for r in rows], dtype=torch.long),
        "answer": torch.tensor([r["answer"] for r in rows], dtype=torch.long),
        "wrong": torch.tensor([r["wrong"] for r in rows], dtype=torch.long),
    }


def load_hf(ckpt: str):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(ckpt, attn_implementation="eager").to(torch.float32).eval()
    assert hf.lm_head.weight is hf.transformer.wte.weight, "lm_head must be tied to wte"
    c = hf.config
    assert c.attn_pdrop == c.resid_pdrop == c.embd_pdrop == 0.0
    return hf


# --------------------------------------------------------------------------------------------
# 1. hook gradients, TransformerLens
# --------------------------------------------------------------------------------------------


def tl_hook_grads(tl, tokens, answer, wrong, names: Sequence[str], with_bwd_hooks: bool = False):
    """Gradient of sum_b ld[b] at every named hook; returns (grads, acts, ld, normalized-grads, calls).

    Forward hooks call retain_grad() on each hook's output (the tensor the model goes on with).
    With with_bwd_hooks the gradients come from TransformerLens backward hooks instead.

    A hook point that fires more than once in one forward is one activation used several times:
    TransformerLens 3.9 calls blocks.L.ln1 three times (on the query, key and value inputs, even
    with use_split_qkv_input=False), so ln1.hook_scale fires 3 times with identical values; the
    gradient of the activation is the SUM over the calls (this is also what a C++ model with one
    ln1 computes). calls[name] = how many times each hook fired.
    Also returns the gradients at ln*.hook_normalized (summed the same way; for the hook_scale
    check only).
    """
    acts: Dict[str, List[torch.Tensor]] = {}
    bwd: Dict[str, List[torch.Tensor]] = {}
    norm_names = [n.replace("hook_scale", "hook_normalized") for n in names if n.endswith("hook_scale")]

    def keep(act, hook):
        act.retain_grad()
        acts.setdefault(hook.name, []).append(act)

    def on_grad(grad, hook):
        bwd.setdefault(hook.name, []).append(grad.detach().clone())

    tl.zero_grad(set_to_none=True)
    if with_bwd_hooks:
        fwd = [(n, keep) for n in norm_names]
        bw = [(n, on_grad) for n in names]
    else:
        fwd = [(n, keep) for n in list(names) + norm_names]
        bw = []
    with torch.enable_grad(), tl.hooks(fwd_hooks=fwd, bwd_hooks=bw):
        logits = tl(tokens, return_type="logits")
        ld = logit_diff(logits, answer, wrong)
        ld.sum().backward()
    got = bwd if with_bwd_hooks else acts
    missing = set(names) - set(got)
    assert not missing, f"hooks without a gradient: {sorted(missing)}"
    calls = {n: len(got[n]) for n in names}
    grads: Dict[str, torch.Tensor] = {}
    for n in names:
        parts = got[n] if with_bwd_hooks else [a.grad for a in got[n]]
        assert all(p is not None for p in parts), n
        grads[n] = parts[0].detach().clone()
        for p in parts[1:]:
            grads[n] = grads[n] + p
    values = {}
    for n, lst in acts.items():
        values[n] = lst[0].detach().clone()
        for a in lst[1:]:  # repeated calls must carry the same value
            assert torch.equal(a, lst[0]), n
    normalized = {}
    for n in norm_names:
        normalized[n] = acts[n][0].grad.detach().clone()
        for a in acts[n][1:]:
            normalized[n] = normalized[n] + a.grad
    tl.zero_grad(set_to_none=True)
    return grads, values, ld.detach().clone(), normalized, calls


def check_masked_scores(grads, values, n_layers: int) -> Dict[str, Any]:
    """Masked (key > query) attention scores: value -inf, gradient exactly 0; hook_pattern's
    gradient there is generally NOT 0 (dz[q] . v[k]); returns what was found."""
    info: Dict[str, Any] = {}
    worst_pattern_masked = 0.0
    for layer in range(n_layers):
        s_name = f"blocks.{layer}.attn.hook_attn_scores"
        p_name = f"blocks.{layer}.attn.hook_pattern"
        s, gs = values[s_name], grads[s_name]
        T = s.shape[-1]
        upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        fills = torch.unique(s[..., upper])
        assert fills.numel() == 1 and fills[0] == float("-inf"), fills
        assert torch.isfinite(s[..., ~upper]).all()
        assert torch.isfinite(gs).all(), "non-finite score gradient"
        assert torch.count_nonzero(gs[..., upper]) == 0, "masked score gradient is not exactly 0"
        # 0.0 or -0.0?
        info.setdefault("score_grad_masked_entries", 0)
        info.setdefault("score_grad_masked_negative_zeros", 0)
        info["score_grad_masked_entries"] += int(gs[..., upper].numel())
        info["score_grad_masked_negative_zeros"] += int(torch.signbit(gs[..., upper]).sum())
        assert torch.count_nonzero(values[p_name][..., upper]) == 0
        worst_pattern_masked = max(worst_pattern_masked, float(grads[p_name][..., upper].abs().max()))
    info["hook_attn_scores_masked_value"] = "-inf"
    info["hook_attn_scores_masked_grad"] = 0.0
    info["hook_pattern_masked_grad_max_abs"] = worst_pattern_masked
    return info


def check_grad_identities(tl, grads, values, normalized, n_layers: int) -> Dict[str, float]:
    """Relations between hook gradients that pin down the conventions (asserted < 1e-5 rel)."""
    res: Dict[str, float] = {}
    worst = 0.0
    for layer in range(n_layers):
        p = f"blocks.{layer}."
        # a + b: both summands get the sum's gradient
        worst = max(worst, max_abs(grads[p + "hook_attn_out"], grads[p + "hook_resid_mid"]))
        worst = max(worst, max_abs(grads[p + "hook_mlp_out"], grads[p + "hook_resid_post"]))
        # attn_out = sum_h result[h] + b_O
        worst = max(worst, max_abs(grads[p + "attn.hook_result"], grads[p + "hook_attn_out"][:, :, None, :].expand_as(grads[p + "attn.hook_result"])))
        if layer + 1 < n_layers:
            worst = max(worst, max_abs(grads[p + "hook_resid_post"], grads[f"blocks.{layer + 1}.hook_resid_pre"]))
    worst = max(worst, max_abs(grads["hook_embed"], grads["blocks.0.hook_resid_pre"]))
    worst = max(worst, max_abs(grads["hook_pos_embed"], grads["blocks.0.hook_resid_pre"]))
    res["grad identities (resid_mid==attn_out, resid_post==mlp_out, result==attn_out per head, "
        "resid_post(L)==resid_pre(L+1), embed==pos_embed==resid_pre(0))"] = worst

    # hook_scale: d/d scale of (xc / scale), xc = centered input held fixed:
    #   g_scale = -sum_i g_norm[i] * xc[i] / scale^2   (g_norm = gradient at ln*.hook_normalized)
    worst = 0.0
    for ln, x_name in [(f"blocks.{l}.ln1", f"blocks.{l}.hook_resid_pre") for l in range(n_layers)] + [
        (f"blocks.{l}.ln2", f"blocks.{l}.hook_resid_mid") for l in range(n_layers)
    ] + [("ln_final", f"blocks.{n_layers - 1}.hook_resid_post")]:
        x = values[x_name].double() if x_name in values else None
        if x is None:
            continue
        xc = x - x.mean(-1, keepdim=True)
        scale = values[ln + ".hook_scale"].double()
        g_norm = normalized[ln + ".hook_normalized"].double()
        expect = -(g_norm * xc).sum(-1, keepdim=True) / scale**2
        worst = max(worst, rel_err(grads[ln + ".hook_scale"], expect))
    res["hook_scale grad == -sum(g_normalized * xc) / scale^2 (rel)"] = worst

    # softmax backward: g_scores = p * (g_pattern - sum_k p g_pattern)
    worst = 0.0
    for layer in range(n_layers):
        a = f"blocks.{layer}.attn."
        pat = values[a + "hook_pattern"].double()
        gp = grads[a + "hook_pattern"].double()
        expect = pat * (gp - (pat * gp).sum(-1, keepdim=True))
        worst = max(worst, rel_err(grads[a + "hook_attn_scores"], expect))
    res["scores grad == p * (g_pattern - sum_k p g_pattern) (rel)"] = worst

    # z = pattern @ v  ->  g_pattern[b,h,q,k] = sum_d g_z[b,q,h,d] v[b,k,h,d] (all k, masked too)
    worst = 0.0
    for layer in range(n_layers):
        a = f"blocks.{layer}.attn."
        expect = torch.einsum("bqhd,bkhd->bhqk", grads[a + "hook_z"].double(), values[a + "hook_v"].double())
        worst = max(worst, rel_err(grads[a + "hook_pattern"], expect))
    res["pattern grad == g_z . v for every (q, k), k > q included (rel)"] = worst
    for k, v in res.items():
        assert v <= 1e-5, (k, v)
    return res


def finite_difference_check(tl64, tokens, answer, wrong, g64, n_layers: int, delta: float = 1e-5) -> float:
    """Central differences in float64 through TransformerLens forward hooks that ADD delta to one
    element of a hook's output (in every call of that hook point, as a patch would): the
    derivative of the metric with respect to patching that element. Checks the conventions that
    autograd alone cannot pin down: the 3-call ln1.hook_scale sum, the partial hook_scale
    derivative, the nonzero pattern gradient at masked entries, the zero masked-score gradient.
    Returns (max |fd - autograd| / max |autograd of that hook|, number of elements checked)."""
    picks: List[Tuple[str, Tuple[int, ...]]] = []
    for layer in range(n_layers):
        p = f"blocks.{layer}."
        for h in ("ln1.hook_scale", "ln2.hook_scale", "hook_resid_pre", "attn.hook_attn_scores", "attn.hook_pattern", "mlp.hook_pre"):
            g = g64[p + h]
            picks.append((p + h, tuple(int(i) for i in torch.unravel_index(g.abs().argmax(), g.shape))))
        g = g64[p + "attn.hook_pattern"]
        T = g.shape[-1]
        upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1).expand_as(g)
        masked = g.abs().masked_fill(~upper, -1.0)
        picks.append((p + "attn.hook_pattern", tuple(int(i) for i in torch.unravel_index(masked.argmax(), g.shape))))
        picks.append((p + "attn.hook_attn_scores", (0, 0, 0, T - 1)))  # masked: -inf + delta = -inf
    g = g64["ln_final.hook_scale"]
    picks.append(("ln_final.hook_scale", tuple(int(i) for i in torch.unravel_index(g.abs().argmax(), g.shape))))

    worst = 0.0
    for name, idx in picks:
        vals = []
        for sign in (1.0, -1.0):
            def add(act, hook, idx=idx, sign=sign):
                act = act.clone()
                act[idx] += sign * delta
                return act

            with torch.no_grad():
                logits = tl64.run_with_hooks(tokens, fwd_hooks=[(name, add)])
            vals.append(logit_diff(logits, answer, wrong).sum())
        fd = float((vals[0] - vals[1]) / (2 * delta))
        scale = float(g64[name].abs().max())
        err = abs(fd - float(g64[name][idx])) / scale
        assert err <= 1e-6, (name, idx, fd, float(g64[name][idx]))
        worst = max(worst, err)
    return worst, len(picks)


# --------------------------------------------------------------------------------------------
# 1b. the same gradients from Hugging Face autograd (module hooks)
# --------------------------------------------------------------------------------------------


def hf_hook_grads(hf, tokens, answer, wrong) -> Dict[str, torch.Tensor]:
    """Gradients of sum_b ld[b] at the HF tensors that equal TransformerLens hooks, in TL shapes."""
    c = hf.config
    H, dh, d = c.n_head, c.n_embd // c.n_head, c.n_embd
    kept: Dict[str, torch.Tensor] = {}
    handles = []

    def keep(name, t):
        t.retain_grad()
        kept[name] = t

    for layer, block in enumerate(hf.transformer.h):
        p = f"blocks.{layer}."

        def block_pre(m, args, kwargs, p=p):
            keep(p + "hook_resid_pre", args[0] if args else kwargs["hidden_states"])

        def block_out(m, args, kwargs, out, p=p):
            keep(p + "hook_resid_post", out[0] if isinstance(out, tuple) else out)

        def c_attn_out(m, args, out, p=p):
            keep(p + "qkv", out)

        def c_proj_in(m, args, p=p):
            keep(p + "z_merged", args[0])

        def attn_out(m, args, kwargs, out, p=p):
            keep(p + "hook_attn_out", out[0])
            keep(p + "attn.hook_pattern", out[1])

        def fc_out(m, args, out, p=p):
            keep(p + "mlp.hook_pre", out)

        def act_out(m, args, out, p=p):
            keep(p + "mlp.hook_post", out)

        def mlp_out(m, args, out, p=p):
            keep(p + "hook_mlp_out", out)

        handles += [
            block.register_forward_pre_hook(block_pre, with_kwargs=True),
            block.register_forward_hook(block_out, with_kwargs=True),
            block.attn.c_attn.register_forward_hook(c_attn_out),
            block.attn.c_proj.register_forward_pre_hook(c_proj_in),
            block.attn.register_forward_hook(attn_out, with_kwargs=True),
            block.mlp.c_fc.register_forward_hook(fc_out),
            block.mlp.act.register_forward_hook(act_out),
            block.mlp.register_forward_hook(mlp_out),
        ]
    try:
        hf.zero_grad(set_to_none=True)
        with torch.enable_grad():
            emb = hf.transformer.wte(tokens).detach().requires_grad_(True)  # hook_embed as a leaf
            out = hf(inputs_embeds=emb, attention_mask=torch.ones_like(tokens), output_attentions=True, use_cache=False)
            logit_diff(out.logits, answer, wrong).sum().backward()
    finally:
        for h in handles:
            h.remove()
        hf.zero_grad(set_to_none=True)

    g: Dict[str, torch.Tensor] = {"hook_embed": emb.grad.detach().clone()}
    B, T = tokens.shape
    for layer in range(c.n_layer):
        p = f"blocks.{layer}."
        for n in ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "attn.hook_pattern", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out"):
            g[p + n] = kept[p + n].grad.detach().clone()
        gq, gk, gv = kept[p + "qkv"].grad.split(d, dim=-1)  # head-major columns
        g[p + "attn.hook_q"] = gq.reshape(B, T, H, dh).clone()
        g[p + "attn.hook_k"] = gk.reshape(B, T, H, dh).clone()
        g[p + "attn.hook_v"] = gv.reshape(B, T, H, dh).clone()
        g[p + "attn.hook_z"] = kept[p + "z_merged"].grad.reshape(B, T, H, dh).clone()
    return g


# --------------------------------------------------------------------------------------------
# 2. weight gradients and AdamW (Hugging Face)
# --------------------------------------------------------------------------------------------


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """mean over b and t = 0..T-2 of -log softmax(logits[b, t])[tokens[b, t+1]]."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def hf_weight_grads(hf, tokens) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], float]:
    hf.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = hf(input_ids=tokens, attention_mask=torch.ones_like(tokens), use_cache=False)
        loss = next_token_loss(out.logits, tokens)
        loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in hf.named_parameters()}
    hf.zero_grad(set_to_none=True)
    # HF's own labels= loss is the same quantity.
    with torch.no_grad():
        hf_loss = hf(input_ids=tokens, labels=tokens, use_cache=False).loss
    loss = loss.detach().clone()
    return loss, grads, abs(float(hf_loss) - float(loss))


def tl_weight_grads_as_hf(tl, tokens) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """TransformerLens' parameter gradients of the same loss, mapped to HF names and layout.

    TL holds W_U as a separate copy of wte^T, so wte's gradient = W_E.grad + W_U.grad^T.
    """
    import einops

    tl.zero_grad(set_to_none=True)
    with torch.enable_grad():
        loss = tl(tokens, return_type="loss")
        loss.backward()
    G = {n: p.grad.detach().clone() for n, p in tl.named_parameters() if p.grad is not None}
    tl.zero_grad(set_to_none=True)
    out = {
        "transformer.wte.weight": G["embed.W_E"] + G["unembed.W_U"].T,
        "transformer.wpe.weight": G["pos_embed.W_pos"],
        "transformer.ln_f.weight": G["ln_final.w"],
        "transformer.ln_f.bias": G["ln_final.b"],
    }
    n_layers = tl.cfg.n_layers
    for l in range(n_layers):
        b, h = f"blocks.{l}.", f"transformer.h.{l}."
        qkv = [einops.rearrange(G[b + f"attn.W_{x}"], "i m h -> m (i h)") for x in "QKV"]
        out[h + "attn.c_attn.weight"] = torch.cat(qkv, dim=1)
        out[h + "attn.c_attn.bias"] = torch.cat([G[b + f"attn.b_{x}"].reshape(-1) for x in "QKV"])
        out[h + "attn.c_proj.weight"] = einops.rearrange(G[b + "attn.W_O"], "i h m -> (i h) m")
        out[h + "attn.c_proj.bias"] = G[b + "attn.b_O"]
        out[h + "ln_1.weight"], out[h + "ln_1.bias"] = G[b + "ln1.w"], G[b + "ln1.b"]
        out[h + "ln_2.weight"], out[h + "ln_2.bias"] = G[b + "ln2.w"], G[b + "ln2.b"]
        out[h + "mlp.c_fc.weight"], out[h + "mlp.c_fc.bias"] = G[b + "mlp.W_in"], G[b + "mlp.b_in"]
        out[h + "mlp.c_proj.weight"], out[h + "mlp.c_proj.bias"] = G[b + "mlp.W_out"], G[b + "mlp.b_out"]
    return loss.detach().clone(), out


def wte_grad_parts(hf, tokens) -> Dict[str, float]:
    """Size of the embedding and unembedding contributions to wte's gradient (for the JSON)."""
    wte = hf.transformer.wte.weight
    with torch.enable_grad():
        emb = hf.transformer.wte(tokens).detach().requires_grad_(True)
        pos = torch.arange(tokens.shape[1])[None]
        h = hf.transformer(inputs_embeds=emb, position_ids=pos, use_cache=False).last_hidden_state
        h_leaf = h.detach().requires_grad_(True)
        W = wte.detach().clone().requires_grad_(True)
        loss = next_token_loss(h_leaf @ W.T, tokens)
        loss.backward()
        g_unembed = W.grad.clone()
        h.backward(h_leaf.grad)
    g_embed = torch.zeros_like(wte).index_add_(0, tokens.reshape(-1), emb.grad.reshape(-1, emb.shape[-1]))
    hf.zero_grad(set_to_none=True)
    return {"embedding": g_embed, "unembedding": g_unembed}


def adamw_torch(hf, tokens, steps: int) -> Tuple[List[float], Dict[str, torch.Tensor]]:
    opt = torch.optim.AdamW(hf.parameters(), **ADAMW)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = next_token_loss(hf(input_ids=tokens, use_cache=False).logits, tokens)
            loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    return losses, {n: p.detach().clone() for n, p in hf.named_parameters()}


def adamw_by_hand(hf, tokens, steps: int) -> Tuple[List[float], Dict[str, torch.Tensor]]:
    """The formula documented in the JSON, written out (same float dtype as the model)."""
    lr, (b1, b2), eps, wd = ADAMW["lr"], ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"]
    params = dict(hf.named_parameters())
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    losses = []
    for t in range(1, steps + 1):
        hf.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = next_token_loss(hf(input_ids=tokens, use_cache=False).logits, tokens)
            loss.backward()
        losses.append(float(loss.detach()))
        with torch.no_grad():
            for n, p in params.items():
                g = p.grad
                p.mul_(1 - lr * wd)
                m[n] = b1 * m[n] + (1 - b1) * g
                v[n] = b2 * v[n] + (1 - b2) * g * g
                mhat = m[n] / (1 - b1**t)
                denom = (v[n] / (1 - b2**t)).sqrt() + eps
                p.sub_(lr * mhat / denom)
    hf.zero_grad(set_to_none=True)
    return losses, {n: p.detach().clone() for n, p in params.items()}


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.path.join(REPO, "tests", "data")
    ap.add_argument("--out", default=data, help="output folder (default: tests/data)")
    ap.add_argument("--data", default=data, help="folder holding tiny-gpt2/ and the pairs (default: tests/data)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions, byte-identical reruns
    torch.use_deterministic_algorithms(True)
    from safetensors.torch import save_file

    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.data, "tiny-gpt2")
    hf = load_hf(ckpt)
    tl = rm.to_hooked_transformer(hf)
    tl.set_use_attn_result(True)  # already set by to_hooked_transformer; explicit here
    cfg = tl.cfg
    L = cfg.n_layers
    hooks = all_hook_names(L)
    pairs = load_pairs(os.path.join(args.data, "tiny-gpt2-patching-pairs.jsonl"))
    answer, wrong = pairs["answer"], pairs["wrong"]
    P, T = pairs["clean"].shape

    out: Dict[str, torch.Tensor] = {}
    checks: Dict[str, Any] = {}
    grad_max: Dict[str, float] = {}

    # ---- 1. hook gradients ----
    tl64 = copy.deepcopy(tl).to(torch.float64)
    assert tl64.W_E.dtype == torch.float64
    masked_info: Dict[str, Any] = {}
    for run in RUNS:
        toks = pairs[run]
        grads, values, ld, normalized, calls = tl_hook_grads(tl, toks, answer, wrong, hooks)
        c: Dict[str, Any] = {}
        multi = {h: k for h, k in calls.items() if k != 1}
        assert multi == {f"blocks.{l}.ln1.hook_scale": 3 for l in range(L)}, multi
        checks["hook points firing more than once per forward"] = multi
        # TransformerLens backward hooks give the same tensors
        grads_bwd, _, ld_b, _, calls_b = tl_hook_grads(tl, toks, answer, wrong, hooks, with_bwd_hooks=True)
        # (bit-identical except the 3-call ln1.hook_scale sums, added in another order)
        c["TL retain_grad vs TL backward hooks (max rel)"] = max(rel_err(grads_bwd[h], grads[h]) for h in hooks if grads[h].abs().max() > 0)
        assert calls_b == calls, (calls_b, calls)
        assert c["TL retain_grad vs TL backward hooks (max rel)"] <= 1e-6
        assert torch.equal(ld, ld_b)
        # per-pair separability: pair b alone gives batch row b
        worst = 0.0
        for b in range(P):
            gb, _, ldb, _, _ = tl_hook_grads(tl, toks[b : b + 1], answer[b : b + 1], wrong[b : b + 1], hooks)
            worst = max(worst, max(rel_err(grads[h][b : b + 1], gb[h]) for h in hooks if grads[h].abs().max() > 0))
            worst = max(worst, max_abs(ld[b : b + 1], ldb))
        c["batch row b vs pair b alone (max rel)"] = worst
        assert worst <= 1e-5, worst
        # Hugging Face autograd
        g_hf = hf_hook_grads(hf, toks, answer, wrong)
        d_hf = {h: max_abs(grads[h], g) for h, g in g_hf.items()}
        c["TL vs HF autograd (max abs over hooks)"] = max(d_hf.values())
        c["TL vs HF autograd hooks compared"] = sorted(g_hf)
        for h, v in d_hf.items():
            assert v < HF_CROSS_CHECK_ATOL, f"{run} {h}: TL vs HF gradient differ by {v}"
        # float64 TransformerLens
        g64, v64, ld64, _, _ = tl_hook_grads(tl64, toks, answer, wrong, hooks)
        rel64 = {h: rel_err(grads[h], g64[h]) for h in hooks}
        c["float32 vs float64 TL (max over hooks of max|d| / max|g64|)"] = max(rel64.values())
        c["float32 vs float64 TL, worst hook"] = max(rel64, key=rel64.get)
        c["float32 vs float64 TL ld (max abs)"] = max_abs(ld, ld64)
        assert max(rel64.values()) <= 1e-5, rel64
        fd_worst, fd_n = finite_difference_check(tl64, toks, answer, wrong, g64, L)
        c[f"float64 central differences (delta 1e-5) vs float64 autograd (max rel, {fd_n} elements)"] = fd_worst
        c.update(check_grad_identities(tl, grads, values, normalized, L))
        masked_info[run] = check_masked_scores(grads, values, L)
        checks[run] = c

        out[f"metric.{run}"] = ld.float()
        for h in hooks:
            g = grads[h].float().contiguous()
            assert g.shape[0] == P and torch.isfinite(g).all(), h
            out[f"grad.{run}.{h}"] = g
            grad_max[f"grad.{run}.{h}"] = float(g.abs().max())
        if run == "clean":
            for layer in range(L):
                for a in ACT_HOOKS:
                    n = f"blocks.{layer}.{a}"
                    out[f"act.clean.{n}"] = values[n].float().contiguous()

    # metric agrees with the patching goldens' baselines (same batched runs)
    from safetensors.torch import load_file

    pg = load_file(os.path.join(args.data, "tiny-gpt2-patching-goldens.safetensors"))
    checks["metric vs patching goldens baseline (max abs)"] = max(
        max_abs(out["metric.clean"], pg["baseline.clean_logit_diff"]),
        max_abs(out["metric.corrupted"], pg["baseline.corrupted_logit_diff"]),
    )
    assert checks["metric vs patching goldens baseline (max abs)"] <= 1e-5

    # ---- 2. weight gradients ----
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    train_tokens = torch.randint(0, cfg.d_vocab, (TRAIN_BATCH, TRAIN_SEQ), generator=gen)
    hf_t = load_hf(ckpt)
    loss, wgrads, hf_labels_diff = hf_weight_grads(hf_t, train_tokens)
    tc: Dict[str, Any] = {"HF labels= loss vs next_token_loss (abs)": hf_labels_diff}
    assert hf_labels_diff <= 1e-6
    from safetensors import safe_open

    with safe_open(os.path.join(ckpt, "model.safetensors"), framework="pt") as f:
        ckpt_keys = sorted(f.keys())
    assert sorted(wgrads) == ckpt_keys, (sorted(wgrads), ckpt_keys)

    tl_loss, tl_wgrads = tl_weight_grads_as_hf(rm.to_hooked_transformer(load_hf(ckpt)), train_tokens)
    tc["TL loss vs HF loss (abs)"] = abs(float(tl_loss) - float(loss))
    d_tl = {n: rel_err(tl_wgrads[n], wgrads[n]) for n in wgrads}
    tc["TL vs HF parameter gradients (max over params of max|d| / max|g|)"] = max(d_tl.values())
    assert max(d_tl.values()) <= 1e-5 and tc["TL loss vs HF loss (abs)"] <= 1e-5, d_tl

    hf64 = load_hf(ckpt).to(torch.float64)
    loss64, wgrads64, _ = hf_weight_grads(hf64, train_tokens)
    d64 = {n: rel_err(wgrads[n], wgrads64[n]) for n in wgrads}
    tc["float32 vs float64 parameter gradients (max over params of max|d| / max|g64|)"] = max(d64.values())
    tc["float32 vs float64 loss (abs)"] = abs(float(loss) - float(loss64))
    assert max(d64.values()) <= 1e-5, d64

    parts = wte_grad_parts(load_hf(ckpt), train_tokens)
    tc["wte grad == embedding part + unembedding part (max abs)"] = max_abs(
        parts["embedding"] + parts["unembedding"], wgrads["transformer.wte.weight"]
    )
    assert tc["wte grad == embedding part + unembedding part (max abs)"] <= 1e-6
    wte_parts_info = {
        "embedding part max abs": float(parts["embedding"].abs().max()),
        "unembedding part max abs": float(parts["unembedding"].abs().max()),
        "rows with a nonzero embedding part": int((parts["embedding"].abs().sum(1) > 0).sum()),
    }

    # position T-1 is read only by its own prediction, which the loss does not use
    assert torch.count_nonzero(wgrads["transformer.wpe.weight"][TRAIN_SEQ - 1 :]) == 0
    assert torch.count_nonzero(wgrads["transformer.wpe.weight"][: TRAIN_SEQ - 1].abs().sum(1) == 0) == 0
    out["train.tokens"] = train_tokens.to(torch.int32)
    out["train.loss"] = loss.float().reshape(1)
    for n, g in wgrads.items():
        out[f"train.grad.{n}"] = g.float().contiguous()
        grad_max[f"train.grad.{n}"] = float(g.abs().max())

    # ---- 2b. AdamW ----
    losses, after = adamw_torch(load_hf(ckpt), train_tokens, ADAMW_STEPS)
    losses_h, after_h = adamw_by_hand(load_hf(ckpt), train_tokens, ADAMW_STEPS)
    losses64, after64 = adamw_torch(load_hf(ckpt).to(torch.float64), train_tokens, ADAMW_STEPS)
    init = dict(load_hf(ckpt).named_parameters())
    # The key slice of c_attn.bias has a gradient that is 0 in exact arithmetic (q . b_K is the same
    # for every key of a query row, and softmax ignores a per-row shift): float32 leaves rounding
    # noise ~1e-10 there, which Adam scales up to steps of ~lr in an arbitrary direction. Those 64
    # elements per layer are left out of the hand-vs-torch comparison (they do not change the loss).
    d = cfg.d_model
    kbias = {f"transformer.h.{l}.attn.c_attn.bias": slice(d, 2 * d) for l in range(L)}

    def adam_diff(x, y):
        worst = 0.0
        for n in x:
            a, b = x[n], y[n]
            if n in kbias:
                keep = torch.ones_like(a, dtype=torch.bool)
                keep[kbias[n]] = False
                a, b = a[keep], b[keep]
            worst = max(worst, max_abs(a, b))
        return worst

    tc["c_attn.bias key slice [d:2d]: max |grad| (0 in exact arithmetic)"] = {
        "float32": max(float(wgrads[n][sl].abs().max()) for n, sl in kbias.items()),
        "float64": max(float(wgrads64[n][sl].abs().max()) for n, sl in kbias.items()),
    }
    tc["adamw torch vs hand-written formula (max abs over params, key-bias slices left out)"] = adam_diff(after, after_h)
    tc["adamw torch vs hand-written formula (key-bias slices, max abs)"] = max(
        max_abs(after[n][sl], after_h[n][sl]) for n, sl in kbias.items()
    )
    tc["adamw torch vs hand-written formula losses (max abs)"] = max(abs(a - b) for a, b in zip(losses, losses_h))
    assert tc["adamw torch vs hand-written formula (max abs over params, key-bias slices left out)"] <= 1e-6
    assert tc["adamw torch vs hand-written formula losses (max abs)"] <= 1e-6
    assert losses[0] == float(loss), (losses[0], float(loss))
    tc["adamw float32 vs float64 after 3 steps (max abs, stored params)"] = {
        n: max_abs(after[n], after64[n]) for n in ADAMW_STORED
    }
    tc["adamw float32 vs float64 losses (max abs)"] = max(abs(a - b) for a, b in zip(losses, losses64))
    tc["adamw total change after 3 steps (max abs, stored params)"] = {
        n: max_abs(after[n], init[n].detach()) for n in ADAMW_STORED
    }
    small = {n: int((wgrads[n].abs() < 1e-6).sum()) for n in ADAMW_STORED}
    tc["elements with |grad| < 1e-6 at step 1 (stored params)"] = small
    checks["train"] = tc
    out["train.adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
    for n in ADAMW_STORED:
        out[f"train.adamw3.{n}"] = after[n].float().contiguous()

    # ---- write ----
    out = dict(sorted(out.items()))
    for k, v in out.items():
        assert v.dtype in (torch.float32, torch.int32) and v.is_contiguous(), k
        assert torch.isfinite(v.float()).all(), k
    gpath = os.path.join(args.out, "tiny-gpt2-gradient-goldens.safetensors")
    ver = versions()
    save_file(
        out,
        gpath,
        metadata={
            "producer": "tests/reference/make_gradient_goldens.py (see tiny-gpt2-gradient-goldens.json)",
            "transformer_lens_version": ver["transformer_lens"],
            "torch_version": ver["torch"],
        },
    )
    sort_header_metadata(gpath)
    os.chmod(gpath, 0o644)  # safetensors writes 0600

    meta = build_json(out, hooks, cfg, masked_info, checks, grad_max, wte_parts_info, ver)
    jpath = os.path.join(args.out, "tiny-gpt2-gradient-goldens.json")
    with open(jpath, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")

    print(f"wrote {gpath} ({os.path.getsize(gpath):,d} B, {len(out)} tensors) and {jpath} ({os.path.getsize(jpath):,d} B)")
    print("masked scores:", json.dumps(masked_info))
    print("checks:", json.dumps(checks, indent=1))
    for k, v in out.items():
        print(f"  {k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}")
    return 0


def zero_before_last(out, hooks) -> List[str]:
    """Hooks whose gradient is exactly 0 at every position < T-1 (query position for scores and
    pattern), in both runs."""
    res = []
    for h in hooks:
        axis = 2 if h.endswith(("hook_attn_scores", "hook_pattern")) else 1
        if all(
            torch.count_nonzero(out[f"grad.{run}.{h}"].narrow(axis, 0, out[f"grad.{run}.{h}"].shape[axis] - 1)) == 0
            for run in RUNS
        ):
            res.append(h)
    return res


def build_json(out, hooks, cfg, masked_info, checks, grad_max, wte_parts_info, ver) -> Dict[str, Any]:
    zero_rows = zero_before_last(out, hooks)
    lr, (b1, b2), eps, wd = ADAMW["lr"], ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"]
    return {
        "producer": "tests/reference/make_gradient_goldens.py (see tests/reference/README.md, 'Gradient goldens')",
        "command": "PYTHONPATH=/opt/tl39 /opt/refvenv/bin/python tests/reference/make_gradient_goldens.py",
        "model": "tests/data/tiny-gpt2 (2 layers, d_model 64, 4 heads, d_head 16, d_mlp 256, vocab 1000)",
        "inputs": {
            "pairs": "tests/data/tiny-gpt2-patching-pairs.jsonl (6 pairs, 8 tokens each, no BOS); "
            "batch axis b = pair index (JSONL line order)",
            "train.tokens": f"torch.randint(0, 1000, (4, 16), generator=torch.Generator().manual_seed({TRAIN_SEED}))",
        },
        "transformer_lens_settings": {
            "builder": "reference_models.to_hooked_transformer(hf): TransformerLens' convert_gpt2_weights, "
            "load_and_process_state_dict(fold_ln=False, center_writing_weights=False, center_unembed=False, "
            "fold_value_biases=False, refactor_factored_attn_matrices=False)",
            "config": "normalization_type LN, act_fn gelu_new, default_prepend_bos False, use_attn_result True "
            "(also set_use_attn_result(True)), use_split_qkv_input False, attention_dir causal, dtype float32, "
            "eval mode; unembed.b_U = 0",
        },
        "hook_gradients": {
            "metric": "metric = sum_b ld[b], ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]] (last "
            "position, raw logits, no normalization). Batch elements do not interact, so row b of every "
            "grad tensor is the gradient of pair b's own logit difference (checked: equals pair b run alone).",
            "how": "TransformerLens forward hooks calling retain_grad() on each hook's output, one backward of "
            "metric; identical (bit for bit) to TransformerLens backward hooks (bwd_hooks). The gradient is "
            "that of the hook's OUTPUT tensor as the rest of the forward uses it (what a TL backward hook sees).",
            "runs": {"clean": "pairs' clean tokens", "corrupted": "pairs' corrupted tokens; same answer/wrong ids"},
            "hooks": hooks,
            "shapes": {h: list(out[f"grad.clean.{h}"].shape) for h in hooks},
            "axes": "TransformerLens: [batch, pos, d_model] residual-like; q/k/v/z [batch, pos, head, d_head]; "
            "attn_scores/pattern [batch, head, query_pos, key_pos]; result [batch, pos, head, d_model]; "
            "hook_scale [batch, pos, 1]; mlp pre/post [batch, pos, d_mlp]",
        },
        "conventions": {
            "masked_attention_scores": "hook_attn_scores holds -inf where key > query (TL IGNORE = -inf, "
            "applied with torch.where before hook_attn_scores). Its gradient there is exactly 0 in value (the "
            "softmax backward p * (g - sum p g) with p = 0), but some of those zeros are -0.0 (a quarter "
            "here, see score_grad_masked_negative_zeros below): compare by value, not by bits. Stored as autograd gives it, so every stored "
            "value is finite (no -inf in this file; act.clean holds no scores). "
            f"Found: {json.dumps(masked_info.get('clean', {}))}",
            "masked_pattern_gradient": "grad.*.attn.hook_pattern is NOT zero where key > query: TL computes "
            "z = pattern @ v over all keys, so d metric / d pattern[q, k] = sum_d g_z[q, h, d] v[k, h, d] for "
            "every k, masked or not (the pattern VALUE there is 0). Stored as autograd gives it (max abs at "
            f"masked entries: clean {masked_info.get('clean', {}).get('hook_pattern_masked_grad_max_abs')}, "
            f"corrupted {masked_info.get('corrupted', {}).get('hook_pattern_masked_grad_max_abs')}). A causal "
            "implementation that never reads pattern[q, k > q] has derivative 0 there: either compare key <= "
            "query only, or compute g_z . v for all keys. (For attribution patching it does not matter: "
            "clean - corrupted pattern is 0 there.)",
            "ln1_called_three_times": "TransformerLens 3.9's TransformerBlock applies ln1 separately to the "
            "query, key and value inputs (three calls on the same resid_pre, even with use_split_qkv_input="
            "False), so blocks.L.ln1.hook_scale fires 3 times per forward with identical values. "
            "grad.*.blocks.L.ln1.hook_scale is the SUM of the three calls' gradients (the gradient of the one "
            "shared activation, as a model with a single ln1 computes it). A single TL retain_grad/backward "
            "hook sees only one call (the value path for a forward hook's last call; backward hooks fire 3 "
            "times). Every other hook fires exactly once (checked).",
            "hook_scale": "TL LayerNorm: xc = x - mean(x); scale = hook_scale(sqrt(mean(xc^2) + eps)); "
            "normalized = xc / scale; out = normalized * w + b. grad at hook_scale is the PARTIAL derivative "
            "through xc / scale only, with xc held fixed: g_scale = -sum_i g_normalized[i] * xc[i] / scale^2 "
            "(checked). The derivative of scale with respect to x (scale depends on x) is not in it; it is "
            "part of the gradient at the hook that feeds the LayerNorm (resid_pre / resid_mid / last "
            "resid_post), which is the full total derivative.",
            "residual_identities": "grad resid_mid == grad attn_out; grad resid_post == grad mlp_out; "
            "grad result[:, :, h] == grad attn_out for every head h; grad resid_post(L) == grad "
            "resid_pre(L+1); grad hook_embed == grad hook_pos_embed == grad blocks.0.hook_resid_pre (all "
            "checked; stored anyway, one tensor per hook).",
            "zeros_by_causality": "only the last position feeds the metric, so some hooks' gradients are "
            "exactly 0 at every (query) position < T-1; found (both runs): " + json.dumps(zero_rows),
            "attn_scores": "q.k / sqrt(d_head), q and k with biases (see tiny-gpt2-goldens.json)",
        },
        "weight_gradients": {
            "model": "Hugging Face GPT2LMHeadModel.from_pretrained(tests/data/tiny-gpt2, attn_implementation="
            "'eager'), float32, eval mode (all dropout probabilities are 0 in config.json anyway)",
            "loss": "mean over b in 0..3, t in 0..14 of cross_entropy(logits[b, t], tokens[b, t+1]) (60 terms, "
            "natural log); equals HF's own labels=tokens loss",
            "names_and_layout": "HF parameter names as in model.safetensors (transformer. prefix); Conv1D "
            "weights [in, out] (c_attn [d, 3d] with columns q | k | v, each head-major; c_proj [d, d]; c_fc "
            "[d, 4d]; mlp c_proj [4d, d]); biases and LayerNorm [n]",
            "tied_wte": "transformer.wte.weight is tied to lm_head.weight (one parameter): "
            "train.grad.transformer.wte.weight = embedding-lookup gradient (rows of the 64 input tokens, "
            "scatter-added) + unembedding gradient (d loss / d W_U^T, every row). No lm_head key. "
            f"Sizes: {json.dumps(wte_parts_info)}",
            "wpe": "rows 15..127 of train.grad.transformer.wpe.weight are exactly 0 (checked): positions >= 16 "
            "are not in the batch, and position 15 is read only by its own prediction (causal attention), "
            "which the loss does not use; rows 0..14 are nonzero",
            "cross_check": "TransformerLens' own parameter gradients of the same loss (its W_U is an untied "
            "copy: wte grad = W_E.grad + W_U.grad^T), float64 HF",
        },
        "adamw": {
            "optimizer": f"torch.optim.AdamW(model.parameters(), lr={lr}, betas=({b1}, {b2}), eps={eps}, "
            f"weight_decay={wd}); amsgrad False, maximize False, foreach/fused default (CPU: single-tensor "
            "loop). One parameter group: weight decay applies to EVERY parameter (biases, LayerNorm, wte, "
            "wpe included); the tied wte/lm_head is one parameter, updated once per step.",
            "procedure": "fresh model from the checkpoint; for step t = 1..3: zero_grad; loss on train.tokens "
            "(same batch every step) -> train.adamw_losses[t-1]; backward; opt.step(). "
            "train.adamw_losses[0] == train.loss. train.adamw3.<name> = parameter after the 3rd step.",
            "update": "p <- p * (1 - lr * wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; "
            "p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)  (eps outside the sqrt, "
            "added after bias correction; m = v = 0 at start); checked against a hand-written loop",
            "stored": list(ADAMW_STORED),
            "tolerance_note": "Adam normalizes each element's gradient, so an element whose |g| is tiny (near "
            "rounding noise) can move by up to ~lr in a direction set by noise; torch float32 vs float64 "
            "after 3 steps differ by up to ~1e-5 on the stored tensors (checks.train), so compare "
            "train.adamw3.* with atol ~5e-5 (total change over 3 steps is ~3e-3). Worst case: the key "
            "slice [d:2d] of every attn.c_attn.bias has a gradient that is 0 in exact arithmetic (softmax "
            "is invariant to q . b_K, the same for every key), float32 noise ~1e-10 there; AdamW turns "
            "it into ~lr steps. Not stored, but do not compare it after AdamW (train.grad of it: compare "
            "with atol). For an exact optimizer unit test, step 1 follows from the stored train.grad.* "
            "alone: m/(1-b1) = g, v/(1-b2) = g^2, so p1 = p0 * (1 - lr*wd) - lr * g / (|g| + eps).",
        },
        "keys": {
            "grad.<run>.<hook>": "float32, TL shape with batch axis [6, ...]; run in clean, corrupted",
            "metric.<run>": "float32 [6], ld per pair (equals baseline.*_logit_diff of the patching goldens)",
            "act.clean.blocks.<L>.<hook>": f"float32 forward values of the clean batched run, hooks {list(ACT_HOOKS)}",
            "train.tokens": "int32 [4, 16]",
            "train.loss": "float32 [1]",
            "train.grad.<HF parameter name>": "float32, parameter shape",
            "train.adamw_losses": "float32 [3]",
            "train.adamw3.<HF parameter name>": "float32, parameter shape",
        },
        "shapes": {k: list(v.shape) for k, v in out.items()},
        "grad_max_abs": grad_max,
        "tolerance_advice": "compare with a scale-aware error: max|cpp - golden| / max|golden| per tensor "
        "(float32 vs float64 autograd gives the values in checks); elementwise relative error is "
        "meaningless where gradients are ~0 (e.g. masked scores, last-layer rows < T-1). "
        "train.grad.transformer.wpe.weight rows >= 15 are exactly 0.",
        "checks": checks,
        "versions": ver,
    }


if __name__ == "__main__":
    sys.exit(main())
