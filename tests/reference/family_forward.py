"""Forward goldens of one model family: token ids, HF logits, every TransformerLens hook.

Used by make_family_goldens.py. Cross-checks TransformerLens against Hugging Face (logits,
hidden states, attention patterns) and batched runs against single runs.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

PROMPTS: Tuple[str, ...] = (
    "Mary and John went to the store, John gave",
    "The quick brown fox",
    "Hello, world! 12345",
)

# Strings whose token ids (from the `tokenizers` library) go into the JSON.
HARD_STRINGS: Tuple[str, ...] = (
    "café naïve résumé",
    "日本語のテキスト",
    "emoji 🙂👍🏽 and ZWJ 👨‍👩‍👧",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tand\t\ttabs",
    "new\nlines\n\n\nand\r\ncrlf",
    "multiple    spaces   inside",
    "digits 1 12 123 1234 12345 3.14159 1,000,000",
    "don't I'LL we've THEY'RE",
    "",
    " ",
    "\u00a0non-breaking\u2009thin\u3000ideographic",
    "<s> </s> <|endoftext|> literal special-looking text",
    "Ünïcödé ÀÉÎÕÜ ß ẞ",
)


def is_flat_qk_norm(h: str) -> bool:
    """TL 3.9 applies Qwen3's q/k RMSNorm to x.reshape(-1, d_head): its hooks have NO batch or
    position axis, shape [batch * pos * heads, d_head] (hook_scale: [.., 1]), rows in
    (batch, pos, head) order."""
    return ".q_norm." in h or ".k_norm." in h


def single_view(h: str, t: torch.Tensor) -> torch.Tensor:
    """Drop the batch axis (B = 1); flat q/k-norm hooks are kept whole ([pos * heads, ..])."""
    return t.contiguous() if is_flat_qk_norm(h) else t[0].contiguous()


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def run_cache(tl, tokens: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Every hook value of one forward (run_with_cache keeps the last call of a repeated hook;
    repeated calls carry identical values, checked by family_gradients)."""
    with torch.no_grad():
        logits, cache = tl.run_with_cache(tokens.long())
    out = {k: v.detach().clone().float() for k, v in cache.items()}
    out["logits"] = logits.detach().clone().float()
    return out


def hf_run(hf, tokens: torch.Tensor):
    with torch.no_grad():
        return hf(
            input_ids=tokens.long(),
            attention_mask=torch.ones_like(tokens, dtype=torch.long),
            output_hidden_states=True,
            output_attentions=True,
        )


def hook_names(tl, tokens) -> List[str]:
    """Hook names that fire in a forward, in TransformerLens' module order."""
    fired = set(run_cache(tl, tokens)) - {"logits"}
    return [n for n in tl.hook_dict if n in fired]


def cross_check(hf_out, out, n_layers: int) -> Dict[str, float]:
    c: Dict[str, float] = {}
    c["TL vs HF logits"] = maxdiff(out["logits"], hf_out.logits.float())
    # hidden_states[l] (l < n_layers) is the input of layer l = TL resid_pre; the last entry is
    # after the final norm in these families.
    c["TL resid_pre vs HF hidden_states"] = max(
        maxdiff(out[f"blocks.{l}.hook_resid_pre"], hf_out.hidden_states[l]) for l in range(n_layers)
    )
    if hf_out.attentions is not None and hf_out.attentions[0] is not None:
        c["TL hook_pattern vs HF output_attentions"] = max(
            maxdiff(out[f"blocks.{l}.attn.hook_pattern"], hf_out.attentions[l]) for l in range(n_layers)
        )
    return c


def forward_goldens(fam, tok, hf, tl, goldens: Dict[str, torch.Tensor], ckpt: str | None = None) -> Dict[str, Any]:
    """Fills goldens (single.{i}.*, batch.*); returns the JSON part."""
    n_layers = tl.cfg.n_layers
    prompts = []
    checks: Dict[str, Any] = {"single": []}
    singles = []
    hooks: List[str] = []
    for i, text in enumerate(PROMPTS):
        ids = tok.encode(text).ids
        tokens = torch.tensor([ids], dtype=torch.int32)
        if not hooks:
            hooks = hook_names(tl, tokens)
        out = run_cache(tl, tokens)
        hf_out = hf_run(hf, tokens)
        singles.append(out)
        goldens[f"single.{i}.tokens"] = tokens[0].clone()
        goldens[f"single.{i}.logits"] = hf_out.logits[0].float().clone()
        for h in hooks:
            goldens[f"single.{i}.{h}"] = single_view(h, out[h])
        c = cross_check(hf_out, out, n_layers)
        assert c["TL vs HF logits"] <= 1e-4, (fam.name, i, c)
        checks["single"].append(c)
        prompts.append({"index": i, "text": text, "ids": ids, "length": len(ids), "tokens": tok.encode(text).tokens})

    # Batch, right-padded with the last prompt's first token... use token id of EOS/pad; no
    # padding mask: valid positions equal single runs under causal attention.
    pad = tok.token_to_id(fam.special_map.get("pad_token") or fam.special_map.get("eos_token"))
    lengths = [p["length"] for p in prompts]
    B, Tm = len(prompts), max(lengths)
    bt = torch.full((B, Tm), pad, dtype=torch.int32)
    for b, p in enumerate(prompts):
        bt[b, : p["length"]] = torch.tensor(p["ids"], dtype=torch.int32)
    bout = run_cache(tl, bt)
    bhf = hf_run(hf, bt)
    batch_hooks = [f"blocks.{n_layers - 1}.attn.hook_z", "blocks.0.hook_resid_post", f"blocks.{n_layers - 1}.attn.hook_pattern"]
    goldens["batch.tokens"] = bt
    goldens["batch.lengths"] = torch.tensor(lengths, dtype=torch.int32)
    goldens["batch.logits"] = bhf.logits.float().clone()
    for h in batch_hooks:
        goldens[f"batch.{h}"] = bout[h].contiguous()
    worst = 0.0
    for b, T in enumerate(lengths):
        worst = max(worst, maxdiff(bhf.logits[b, :T], goldens[f"single.{b}.logits"]))
        worst = max(worst, maxdiff(bout["logits"][b, :T], singles[b]["logits"][0]))
        for h in hooks:
            if is_flat_qk_norm(h):
                hx = tl.cfg.n_heads if ".q_norm." in h else (tl.cfg.n_key_value_heads or tl.cfg.n_heads)
                v = bout[h].reshape(B, Tm, hx, -1)[b]
                s = singles[b][h].reshape(T, hx, -1)
            else:
                v = bout[h][b]
                s = singles[b][h][0]
            if v.dim() >= 3 and h.endswith(("hook_pattern", "hook_attn_scores")):
                v = v[:, :T, :T]
            else:
                v = v[:T]
            if h.endswith("hook_attn_scores"):
                fin = torch.isfinite(s)
                assert torch.equal(fin, torch.isfinite(v)), h
                worst = max(worst, maxdiff(v[fin], s[fin]))
            else:
                worst = max(worst, maxdiff(v, s))
    assert worst <= 1e-5, (fam.name, "batch vs single", worst)
    checks["batch valid positions vs single runs (logits HF+TL, every hook)"] = worst
    checks["batch TL vs HF logits (all positions)"] = maxdiff(bout["logits"], bhf.logits)

    hard = []
    for s in HARD_STRINGS:
        e = tok.encode(s)
        e0 = tok.encode(s, add_special_tokens=False)
        hard.append({"text": s, "ids": e.ids, "ids_no_special": e0.ids, "tokens": e.tokens, "decoded": tok.decode(e.ids)})
    # transformers' own loading of the folder must give the same ids (BOS policy included)
    auto_mismatch = []
    if ckpt is not None:
        from transformers import AutoTokenizer

        at = AutoTokenizer.from_pretrained(ckpt)
        for s in list(HARD_STRINGS) + list(PROMPTS):
            if at(s)["input_ids"] != tok.encode(s).ids:
                auto_mismatch.append(s)
        assert not auto_mismatch, (fam.name, auto_mismatch)
    checks["AutoTokenizer(folder) ids == tokenizers ids (hard strings + prompts)"] = not auto_mismatch
    return {
        "prompts": prompts,
        "pad_token_id": pad,
        "hooks": hooks,
        "hook_shapes_single0": {h: list(goldens[f"single.0.{h}"].shape) for h in hooks},
        "batch_hooks": batch_hooks,
        "hard_strings": hard,
        "checks_max_abs_diff": checks,
    }
