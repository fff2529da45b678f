#!/usr/bin/env python3
"""Produce causeway's golden files from Hugging Face transformers and TransformerLens.

    python tests/reference/make_goldens.py [--out tests/data] [--gpt2-small DIR]

Writes (under --out, default tests/data next to this folder):
  tiny-gpt2/                     config.json, model.safetensors, vocab.json, merges.txt
  tiny-gpt2-goldens.safetensors  tokens, logits and every hook, per prompt, batched, patched
  tiny-gpt2-goldens.json         prompts, hook names, conventions, checks, library versions

With --gpt2-small DIR also writes a random model at GPT-2 small's real shape with the real
GPT-2 tokenizer to DIR (about 500 MB, not committed) plus DIR/goldens.safetensors.

No model hub is contacted: all weights are random and seeded. The outputs are deterministic
on one machine (same library versions), see README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED_TOKENIZER = os.path.join(os.path.dirname(REPO), "shared", "data", "gpt2-tokenizer")
if not os.path.isdir(SHARED_TOKENIZER):
    SHARED_TOKENIZER = "/work/shared/data/gpt2-tokenizer"

TINY_CONFIG: Dict[str, Any] = dict(
    n_layer=2,
    n_embd=64,
    n_head=4,
    n_positions=128,
    vocab_size=1000,
    layer_norm_epsilon=1e-5,
    activation_function="gelu_new",
)
GPT2_SMALL_CONFIG: Dict[str, Any] = dict(
    n_layer=12,
    n_embd=768,
    n_head=12,
    n_positions=1024,
    vocab_size=50257,
    layer_norm_epsilon=1e-5,
    activation_function="gelu_new",
)
SEED = 0

PROMPTS: Tuple[str, ...] = (
    "When Mary and John went to the store, John gave a drink to",
    "The quick brown fox",
    "Hello, world! 12345",
    "Activation patching copies one activation from a clean run into a corrupted run of "
    "the same model and measures the change.",
)
GPT2_SMALL_PROMPTS: Tuple[str, ...] = (
    "When Mary and John went to the store, John gave a drink to",
    "The quick brown fox jumps over the lazy dog.",
)

PAD_TOKEN_ID = 0

# Per-layer hooks, in forward order (TransformerLens names, without the "blocks.L." prefix).
LAYER_HOOKS: Tuple[str, ...] = (
    "hook_resid_pre",
    "ln1.hook_scale",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_z",
    "attn.hook_result",
    "hook_attn_out",
    "hook_resid_mid",
    "ln2.hook_scale",
    "mlp.hook_pre",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
)

BATCH_HOOKS: Tuple[str, ...] = (
    "blocks.1.attn.hook_z",
    "blocks.0.hook_resid_post",
    "blocks.1.attn.hook_pattern",
)
GPT2_SMALL_HOOKS: Tuple[str, ...] = (
    "blocks.0.hook_resid_post",
    "blocks.11.attn.hook_z",
    "ln_final.hook_scale",
)


def all_hook_names(n_layers: int) -> List[str]:
    names = ["hook_embed", "hook_pos_embed"]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.{h}" for h in LAYER_HOOKS]
    names.append("ln_final.hook_scale")
    return names


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    a, b = a.double(), b.double()
    finite = torch.isfinite(a) & torch.isfinite(b)
    # Non-finite entries (masked scores) must agree exactly.
    assert torch.equal(a[~finite], b[~finite]), "non-finite entries differ"
    return float((a[finite] - b[finite]).abs().max()) if finite.any() else 0.0


def run_cache(tl, tokens: torch.Tensor, names: Sequence[str]) -> Dict[str, torch.Tensor]:
    """TransformerLens run_with_cache of the named hooks; returns hook -> tensor (batch kept)
    plus "logits"."""
    name_set = set(names)
    with torch.no_grad():
        logits, cache = tl.run_with_cache(tokens.long(), names_filter=lambda n: n in name_set)
    missing = name_set - set(cache.keys())
    assert not missing, f"hooks not produced by TransformerLens: {sorted(missing)}"
    out = {n: cache[n].detach().float().clone() for n in names}
    out["logits"] = logits.detach().float()
    return out


def hf_run(hf, tokens: torch.Tensor, pre_hooks: Sequence[Tuple[torch.nn.Module, Callable]] = ()):
    """HF forward (attention mask of ones) with hidden states and attention weights; optional
    forward pre-hooks (module, fn(args, kwargs) -> (args, kwargs))."""
    handles = [m.register_forward_pre_hook(fn, with_kwargs=True) for m, fn in pre_hooks]
    try:
        with torch.no_grad():
            out = hf(
                input_ids=tokens.long(),
                attention_mask=torch.ones_like(tokens, dtype=torch.long),
                output_hidden_states=True,
                output_attentions=True,
            )
    finally:
        for h in handles:
            h.remove()
    return out


def cross_check_hf(hf, tl_out: Dict[str, torch.Tensor], hf_out, n_layers: int) -> Dict[str, float]:
    """Compare TransformerLens hooks with what HF exposes independently."""
    checks = {"logits": maxdiff(tl_out["logits"], hf_out.logits.float())}
    hs = hf_out.hidden_states  # [embeddings, after block 0, ..., after ln_f]
    checks["blocks.0.hook_resid_pre"] = maxdiff(tl_out["blocks.0.hook_resid_pre"], hs[0])
    for layer in range(n_layers - 1):  # the last hidden state has ln_f applied
        checks[f"blocks.{layer}.hook_resid_post"] = maxdiff(
            tl_out[f"blocks.{layer}.hook_resid_post"], hs[layer + 1]
        )
    for layer in range(n_layers):
        checks[f"blocks.{layer}.attn.hook_pattern"] = maxdiff(
            tl_out[f"blocks.{layer}.attn.hook_pattern"], hf_out.attentions[layer]
        )
    return checks


def check_hook_definitions(out: Dict[str, torch.Tensor], tl) -> Dict[str, float]:
    """Recompute a few hooks from others, to pin down their definitions."""
    cfg = tl.cfg
    eps = cfg.eps
    res: Dict[str, float] = {}

    def scale_of(x: torch.Tensor) -> torch.Tensor:  # sqrt(biased var + eps), in float64
        x = x.double()
        return (x.var(-1, unbiased=False, keepdim=True) + eps).sqrt()

    worst = 0.0
    for layer in range(cfg.n_layers):
        worst = max(worst, maxdiff(out[f"blocks.{layer}.ln1.hook_scale"], scale_of(out[f"blocks.{layer}.hook_resid_pre"])))
        worst = max(worst, maxdiff(out[f"blocks.{layer}.ln2.hook_scale"], scale_of(out[f"blocks.{layer}.hook_resid_mid"])))
    last = f"blocks.{cfg.n_layers - 1}.hook_resid_post"
    worst = max(worst, maxdiff(out["ln_final.hook_scale"], scale_of(out[last])))
    res["hook_scale == sqrt(var_biased(x) + eps)"] = worst

    worst = 0.0
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        worst = max(worst, maxdiff(out[p + "hook_resid_mid"], out[p + "hook_resid_pre"] + out[p + "hook_attn_out"]))
        worst = max(worst, maxdiff(out[p + "hook_resid_post"], out[p + "hook_resid_mid"] + out[p + "hook_mlp_out"]))
    res["resid_mid == resid_pre + attn_out; resid_post == resid_mid + mlp_out"] = worst

    worst = 0.0
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        b_O = tl.blocks[layer].attn.b_O.detach()
        worst = max(worst, maxdiff(out[p + "hook_attn_out"], out[p + "attn.hook_result"].sum(-2) + b_O))
    res["hook_attn_out == sum_h hook_result + b_O"] = worst
    w_scores = w_pattern = w_z = w_gelu = 0.0
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}.attn."
        q, k, v = (out[p + n].double() for n in ("hook_q", "hook_k", "hook_v"))  # [b,p,h,dh]
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(cfg.d_head)
        T = scores.shape[-1]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        scores = scores.masked_fill(~causal, float("-inf"))
        w_scores = max(w_scores, maxdiff(out[p + "hook_attn_scores"], scores))
        w_pattern = max(w_pattern, maxdiff(out[p + "hook_pattern"], torch.softmax(out[p + "hook_attn_scores"].double(), -1)))
        w_z = max(w_z, maxdiff(out[p + "hook_z"], torch.einsum("bhqk,bkhd->bqhd", out[p + "hook_pattern"].double(), v)))
        x = out[f"blocks.{layer}.mlp.hook_pre"].double()
        gelu_new = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))
        w_gelu = max(w_gelu, maxdiff(out[f"blocks.{layer}.mlp.hook_post"], gelu_new))
    res["hook_attn_scores == q.k / sqrt(d_head), -inf where key > query"] = w_scores
    res["hook_pattern == softmax(hook_attn_scores)"] = w_pattern
    res["hook_z == hook_pattern @ hook_v"] = w_z
    res["mlp.hook_post == gelu_new(mlp.hook_pre) (tanh form)"] = w_gelu

    worst = maxdiff(out["blocks.0.hook_resid_pre"], out["hook_embed"] + out["hook_pos_embed"])
    res["blocks.0.hook_resid_pre == hook_embed + hook_pos_embed"] = worst
    return res


# --------------------------------------------------------------------------------------------
# Tiny model
# --------------------------------------------------------------------------------------------


def make_tiny(out_dir: str) -> None:
    from safetensors.torch import save_file

    model_dir = os.path.join(out_dir, "tiny-gpt2")
    os.makedirs(model_dir, exist_ok=True)
    rm.make_tiny_tokenizer(model_dir, SHARED_TOKENIZER, vocab_size=TINY_CONFIG["vocab_size"])
    tok = rm.load_tokenizer(model_dir)

    hf = rm.make_random_gpt2(TINY_CONFIG, SEED)
    st_keys = rm.save_checkpoint(hf, model_dir)
    tl = rm.to_hooked_transformer(hf)
    cfg = tl.cfg
    hooks = all_hook_names(cfg.n_layers)

    goldens: Dict[str, torch.Tensor] = {}
    prompts_meta = []
    checks: Dict[str, Any] = {"single": [], "batch": {}, "overwrite": {}}
    singles: List[Dict[str, torch.Tensor]] = []
    masked_fill = None

    # ---- one prompt at a time ----
    for i, text in enumerate(PROMPTS):
        ids = tok.encode(text)
        assert ids == rm.reference_bpe_encode(text, model_dir)
        assert all(0 <= t < cfg.d_vocab for t in ids)
        tokens = torch.tensor([ids], dtype=torch.int32)
        hf_out = hf_run(hf, tokens)
        out = run_cache(tl, tokens, hooks)
        singles.append(out)

        goldens[f"single.{i}.tokens"] = tokens[0].clone()
        goldens[f"single.{i}.logits"] = hf_out.logits[0].float().clone()
        for h in hooks:
            goldens[f"single.{i}.{h}"] = out[h][0].contiguous()

        c = cross_check_hf(hf, out, hf_out, cfg.n_layers)
        c.update(check_hook_definitions(out, tl))
        checks["single"].append(c)
        prompts_meta.append({"index": i, "text": text, "ids": ids, "length": len(ids)})

        # masked (k > q) attention scores
        s = out["blocks.0.attn.hook_attn_scores"][0]
        T = s.shape[-1]
        upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        if T > 1:
            vals = torch.unique(s[:, upper])
            assert vals.numel() == 1, vals
            fill = float(vals[0])
            assert masked_fill is None or fill == masked_fill
            masked_fill = fill
        assert torch.isfinite(s[:, ~upper]).all()

    # ---- batch: right-padded with PAD_TOKEN_ID, no padding mask ----
    lengths = [p["length"] for p in prompts_meta]
    B, Tmax = len(PROMPTS), max(lengths)
    batch_tokens = torch.full((B, Tmax), PAD_TOKEN_ID, dtype=torch.int32)
    for b, p in enumerate(prompts_meta):
        batch_tokens[b, : p["length"]] = torch.tensor(p["ids"], dtype=torch.int32)
    hf_b = hf_run(hf, batch_tokens)
    tl_b = run_cache(tl, batch_tokens, list(BATCH_HOOKS))
    goldens["batch.tokens"] = batch_tokens
    goldens["batch.lengths"] = torch.tensor(lengths, dtype=torch.int32)
    goldens["batch.logits"] = hf_b.logits.float().clone()
    for h in BATCH_HOOKS:
        goldens[f"batch.{h}"] = tl_b[h].contiguous()
    worst_valid = {"logits(HF)": 0.0, "logits(TL)": 0.0, **{h: 0.0 for h in BATCH_HOOKS}}
    for b, T in enumerate(lengths):
        worst_valid["logits(HF)"] = max(worst_valid["logits(HF)"], maxdiff(hf_b.logits[b, :T], goldens[f"single.{b}.logits"]))
        worst_valid["logits(TL)"] = max(worst_valid["logits(TL)"], maxdiff(tl_b["logits"][b, :T], singles[b]["logits"][0]))
        for h in BATCH_HOOKS:
            v = tl_b[h][b]
            if h.endswith("hook_pattern"):
                v = v[:, :T, :T]
                # padded keys get exactly zero weight from valid queries
                assert torch.count_nonzero(tl_b[h][b, :, :T, T:]) == 0
            else:
                v = v[:T]
            worst_valid[h] = max(worst_valid[h], maxdiff(v, goldens[f"single.{b}.{h}"]))
    for k, v in worst_valid.items():
        assert v <= 1e-5, f"batch valid positions differ from single runs: {k} {v}"
    checks["batch"]["valid positions vs single runs (max abs)"] = worst_valid
    checks["batch"]["TL vs HF logits (all positions)"] = maxdiff(tl_b["logits"], hf_b.logits)

    # ---- hook overwrites on prompt 0 ----
    tokens0 = goldens["single.0.tokens"][None]
    dh = cfg.d_head

    def zero_head1(z, hook):
        z = z.clone()
        z[:, :, 1, :] = 0.0
        return z

    # Adding one constant to every element of a residual vector would be erased by the mean
    # subtraction of every LayerNorm that reads it (the logits would not change beyond 1e-6), so
    # 1.0 is added to the even-indexed elements only.
    def add_pos2(x, hook):
        x = x.clone()
        x[:, 2, 0::2] += 1.0
        return x

    def hf_zero_head1(module, args, kwargs):  # input of attn.c_proj is [b,p,h*dh], head-major
        x = args[0].clone()
        x[..., 1 * dh : 2 * dh] = 0.0
        return (x,) + tuple(args[1:]), kwargs

    def hf_add_pos2(module, args, kwargs):  # input hidden_states of block 1
        if args:
            x = args[0].clone()
            x[:, 2, 0::2] += 1.0
            return (x,) + tuple(args[1:]), kwargs
        x = kwargs["hidden_states"].clone()
        x[:, 2, 0::2] += 1.0
        kwargs = dict(kwargs, hidden_states=x)
        return args, kwargs

    overwrites = {
        "zero_z_L0H1": (
            "blocks.0.attn.hook_z",
            zero_head1,
            (hf.transformer.h[0].attn.c_proj, hf_zero_head1),
            "prompt 0; blocks.0.attn.hook_z[:, :, 1, :] = 0 (head 1, every position)",
        ),
        "add_resid_pre_L1P2": (
            "blocks.1.hook_resid_pre",
            add_pos2,
            (hf.transformer.h[1], hf_add_pos2),
            "prompt 0; blocks.1.hook_resid_pre[:, 2, 0::2] += 1.0 (position 2, even-indexed "
            "elements d = 0, 2, 4, ...; a constant added to all elements would be erased by "
            "LayerNorm)",
        ),
    }
    overwrite_meta = {}
    for name, (hook, fn, hf_hook, desc) in overwrites.items():
        with torch.no_grad():
            logits = tl.run_with_hooks(tokens0.long(), fwd_hooks=[(hook, fn)]).float()
        goldens[f"overwrite.{name}.logits"] = logits[0].clone()
        hf_logits = hf_run(hf, tokens0, [hf_hook]).logits.float()
        base = singles[0]["logits"]
        checks["overwrite"][name] = {
            "TL vs HF (same overwrite via torch hooks)": maxdiff(logits, hf_logits),
            "max abs change from unpatched": maxdiff(logits, base),
        }
        assert checks["overwrite"][name]["TL vs HF (same overwrite via torch hooks)"] <= 1e-4
        overwrite_meta[f"overwrite.{name}.logits"] = {"hook": hook, "how": desc, "source": "TransformerLens run_with_hooks"}
    # Positions before the patch are unchanged by add_resid_pre_L1P2 (causality).
    d_before = maxdiff(goldens["overwrite.add_resid_pre_L1P2.logits"][:2], singles[0]["logits"][0, :2])
    checks["overwrite"]["add_resid_pre_L1P2"]["change at positions < 2 (vs unpatched TL)"] = d_before
    assert d_before == 0.0, d_before
    for name in overwrites:
        assert checks["overwrite"][name]["max abs change from unpatched"] > 1e-2, name

    # ---- write ----
    goldens = {k: v.contiguous() for k, v in goldens.items()}
    for k, v in goldens.items():
        assert v.dtype in (torch.float32, torch.int32), (k, v.dtype)
    gpath = os.path.join(out_dir, "tiny-gpt2-goldens.safetensors")
    save_file(goldens, gpath, metadata={"producer": "tests/reference/make_goldens.py"})

    tl_logit_diff = max(c["logits"] for c in checks["single"])
    meta = {
        "producer": "tests/reference/make_goldens.py (see tests/reference/README.md)",
        "model": {
            "dir": "tiny-gpt2",
            "hf_config": {k: TINY_CONFIG[k] for k in TINY_CONFIG},
            "seed": SEED,
            "init": rm.INIT_SCHEME,
            "model_safetensors_keys": st_keys,
            "lm_head": "tied to transformer.wte.weight; lm_head.weight is not stored",
            "d_head": cfg.d_head,
            "d_mlp": cfg.d_mlp,
        },
        "tokenizer": {
            "dir": "tiny-gpt2",
            "vocab_size": TINY_CONFIG["vocab_size"],
            "construction": "256 GPT-2 byte tokens (ids 0..255, GPT-2 order), then the first "
            "743 GPT-2 merges in rank order (ids 256..998), <|endoftext|> = 999. Equal to "
            "GPT-2's vocabulary truncated to ids < 999.",
            "endoftext_id": TINY_CONFIG["vocab_size"] - 1,
            "encoded_with": "transformers.GPT2Tokenizer.from_pretrained(tiny-gpt2), cross-checked "
            "with an independent Python BPE (reference_models.reference_bpe_encode)",
        },
        "prompts": prompts_meta,
        "pad_token_id": PAD_TOKEN_ID,
        "keys": {
            "single.{i}.tokens": "int32 [T]",
            "single.{i}.logits": "float32 [T, V], Hugging Face GPT2LMHeadModel",
            "single.{i}.{hook}": "float32, TransformerLens run_with_cache, batch axis dropped",
            "batch.tokens": f"int32 [B, Tmax], right-padded with token {PAD_TOKEN_ID}",
            "batch.lengths": "int32 [B]",
            "batch.logits": "float32 [B, Tmax, V], Hugging Face, attention mask of ones (no padding mask)",
            "batch.{hook}": "float32, TransformerLens, batch axis kept, no padding mask",
            **overwrite_meta,
        },
        "hooks": hooks,
        "hook_shapes_single": {h: list(goldens[f"single.0.{h}"].shape) for h in hooks},
        "batch_hooks": list(BATCH_HOOKS),
        "conventions": {
            "hook_attn_scores_masked_fill": "-inf" if masked_fill == float("-inf") else masked_fill,
            "hook_attn_scores": "q.k / sqrt(d_head), masked (key > query) entries = fill value",
            "hook_scale": "sqrt(mean((x - mean(x))^2) + eps): biased variance, eps inside the sqrt",
            "padding": "right padding, no padding mask: valid positions equal single-prompt runs; "
            "padded positions hold whatever the model computes for token 0",
            "hook_result": "per-head output z_h @ W_O[h] (no b_O); hook_attn_out = sum_h hook_result + b_O",
        },
        "checks_max_abs_diff": {
            "tl_vs_hf_logits_max": tl_logit_diff,
            **checks,
        },
        "versions": versions(),
    }
    with open(os.path.join(out_dir, "tiny-gpt2-goldens.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")

    summarize(out_dir, model_dir, gpath, checks, masked_fill, tl_logit_diff)


def versions() -> Dict[str, str]:
    import safetensors
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "transformer_lens": rm.transformer_lens_version(),
        "safetensors": safetensors.__version__,
    }


def summarize(out_dir, model_dir, gpath, checks, masked_fill, tl_logit_diff) -> None:
    print(f"wrote {model_dir}/ and {gpath}")
    for root in (model_dir, out_dir):
        for name in sorted(os.listdir(root)):
            p = os.path.join(root, name)
            if os.path.isfile(p) and (root == model_dir or name.startswith("tiny-gpt2-goldens")):
                print(f"  {os.path.relpath(p, out_dir):40s} {os.path.getsize(p):>10,d} bytes")
    print(f"masked hook_attn_scores fill: {masked_fill}")
    print(f"TL vs HF max |logit diff| (single prompts): {tl_logit_diff:.3g}")
    worst: Dict[str, float] = {}
    for c in checks["single"]:
        for k, v in c.items():
            worst[k] = max(worst.get(k, 0.0), v)
    for k, v in worst.items():
        print(f"  single {k}: {v:.3g}")
    print(f"  batch: {json.dumps(checks['batch'])}")
    print(f"  overwrite: {json.dumps(checks['overwrite'])}")


# --------------------------------------------------------------------------------------------
# GPT-2 small shape
# --------------------------------------------------------------------------------------------


def make_gpt2_small(out_dir: str) -> None:
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    rm.copy_gpt2_tokenizer(SHARED_TOKENIZER, out_dir)
    tok = rm.load_tokenizer(out_dir)
    hf = rm.make_random_gpt2(GPT2_SMALL_CONFIG, SEED)
    st_keys = rm.save_checkpoint(hf, out_dir)
    tl = rm.to_hooked_transformer(hf)

    goldens: Dict[str, torch.Tensor] = {}
    prompts_meta = []
    diffs = []
    for i, text in enumerate(GPT2_SMALL_PROMPTS):
        ids = tok.encode(text)
        assert ids == rm.reference_bpe_encode(text, out_dir)
        tokens = torch.tensor([ids], dtype=torch.int32)
        hf_out = hf_run(hf, tokens)
        out = run_cache(tl, tokens, list(GPT2_SMALL_HOOKS))
        diffs.append(maxdiff(out["logits"], hf_out.logits))
        goldens[f"single.{i}.tokens"] = tokens[0].clone()
        goldens[f"single.{i}.logits"] = hf_out.logits[0].float().clone()
        for h in GPT2_SMALL_HOOKS:
            goldens[f"single.{i}.{h}"] = out[h][0].contiguous()
        prompts_meta.append({"index": i, "text": text, "ids": ids, "length": len(ids)})
    save_file(goldens, os.path.join(out_dir, "goldens.safetensors"))
    meta = {
        "producer": "tests/reference/make_goldens.py --gpt2-small",
        "hf_config": GPT2_SMALL_CONFIG,
        "seed": SEED,
        "init": rm.INIT_SCHEME,
        "model_safetensors_keys": st_keys,
        "prompts": prompts_meta,
        "hooks": list(GPT2_SMALL_HOOKS),
        "tl_vs_hf_logits_max_abs_diff": max(diffs),
        "versions": versions(),
    }
    with open(os.path.join(out_dir, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out_dir}: " + ", ".join(
        f"{n} {os.path.getsize(os.path.join(out_dir, n)):,d} B" for n in sorted(os.listdir(out_dir))))
    print(f"gpt2-small TL vs HF max |logit diff|: {max(diffs):.3g}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data"), help="output folder (default: tests/data)")
    ap.add_argument("--gpt2-small", metavar="DIR", help="also write a random GPT-2-small-shape model + goldens to DIR")
    ap.add_argument("--skip-tiny", action="store_true", help="do not (re)write the tiny goldens")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions, byte-identical reruns
    torch.use_deterministic_algorithms(True)
    if not args.skip_tiny:
        make_tiny(args.out)
    if args.gpt2_small:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        make_gpt2_small(args.gpt2_small)
    return 0


if __name__ == "__main__":
    sys.exit(main())
