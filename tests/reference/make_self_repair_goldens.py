"""Goldens for issue 24: direct logit attribution, the logit lens and self-repair (total,
direct and LayerNorm-share effects of zero and mean ablation) from TransformerLens 3.9 on the
committed tiny models (tests/data/tiny-gpt2 and tests/data/families/*).

    PYTHONPATH=/opt/tl39 /opt/refvenv/bin/python tests/reference/make_self_repair_goldens.py

Writes tests/data/self-repair/F-self-repair-goldens.safetensors (float32, computed in float64)
and F-self-repair-goldens.json (pairs, keys, shapes, labels, checks, versions) for F in gpt2 and
every family. Definitions (the answer direction du = W_U[:, answer] - W_U[:, wrong], read at
the last position; every value is before Gemma 2's final soft-cap):

- dla.*: TransformerLens' stacks with apply_ln=True (centre over d_model for LayerNorm, divide
  by the cached ln_final.hook_scale) projected on ln_final.w * du. heads: stack_head_results;
  neurons: stack_neuron_results; mlp: blocks.L.hook_mlp_out; components: decompose_resid
  (embed, pos_embed, L_attn_out, L_mlp_out) and then the bias ln_final.b . du. With Gemma 2's
  post-norms a head's z_h @ W_O[h] (a neuron's post * W_out row) passes the block's
  ln1_post (ln2_post) with its cached scale frozen first, as causeway defines it; TL's stacks
  have no such step.
- lens*: accumulated_resid(apply_ln=True) (TL recomputes ln_final on each residual) @ du;
  lens.top_tokens / lens.top_logits: its 5 highest-logit tokens (@ W_U, ids as float32).
- repair.{zero,mean}.{heads,mlp}.*: hook_z of one head / hook_mlp_out of one layer, at every
  position, set to 0 or to the mean over the pairs' clean runs per position. total = patched
  logit difference - clean one (run_with_hooks); direct = the change of the component's output
  at the read position, through the frozen final norm, on ln_final.w * du; ln_share = y . v /
  s(y) - y . v / s with y = the clean final residual at the read position plus that change
  (its residual term), s(y) ln_final's scale recomputed for y, s the clean run's and v the
  (centred) direction: direct + ln_share is the change when only the component's direct path
  to the logits is patched and the final norm recomputed (path patching, everything else
  frozen).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import family_models as fm  # noqa: E402
from make_circuit_goldens import load_family, load_gpt2  # noqa: E402
from make_family_goldens import write_json  # noqa: E402
from make_goldens import versions  # noqa: E402

N_PAIRS = 4
TOP_K = 5
OUT = os.path.join(REPO, "tests", "data", "self-repair")


def ld(logits: torch.Tensor, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    last = logits[:, -1, :]
    return last.gather(1, a[:, None])[:, 0] - last.gather(1, w[:, None])[:, 0]


def goldens(model, pairs: List[Dict]) -> (Dict[str, torch.Tensor], Dict):
    model.to(torch.float64, print_details=False)
    cfg = model.cfg
    L, H, M = cfg.n_layers, cfg.n_heads, cfg.d_mlp
    post = bool(getattr(cfg, "use_normalization_before_and_after", False))
    layer_norm = cfg.normalization_type in ("LN", "LNPre")
    clean = torch.tensor([p["clean"] for p in pairs])
    a = torch.tensor([p["answer"] for p in pairs])
    w = torch.tensor([p["wrong"] for p in pairs])
    P, T = clean.shape
    out: Dict[str, torch.Tensor] = {}
    with torch.no_grad():
        logits, cache = model.run_with_cache(clean)
        du = model.W_U[:, a] - model.W_U[:, w]  # [d, P]
        lnw = model.ln_final.w
        lnb = getattr(model.ln_final, "b", None)
        direction = (lnw[:, None] * du).T  # [P, d]
        out["baseline.clean_logit_diff"] = ld(logits, a, w)

        def project(stack: torch.Tensor) -> torch.Tensor:  # [n, P, (T,) d] -> [n, P, (T)]
            if stack.dim() == 4:
                return torch.einsum("nptd,pd->npt", stack, direction)
            return torch.einsum("npd,pd->np", stack, direction)

        # Heads, at the read position and at every position.
        def head_stack(pos_slice):
            if not post:
                return cache.stack_head_results(layer=-1, apply_ln=True, pos_slice=pos_slice)
            rows = []
            for l in range(L):
                r = cache[f"blocks.{l}.attn.hook_result"]  # [P, T, H, d]
                r = r / cache[f"blocks.{l}.ln1_post.hook_scale"][:, :, None, :] * model.blocks[l].ln1_post.w
                r = r[:, -1] if pos_slice == -1 else r
                rows.append(r.movedim(-2, 0))
            stack = torch.cat(rows, 0)
            return cache.apply_ln_to_stack(stack, layer=-1, pos_slice=pos_slice)

        heads = project(head_stack(-1))  # [L*H, P]
        out["dla.heads"] = heads.reshape(L, H, P).permute(2, 0, 1)
        heads_pos = project(head_stack(None))  # [L*H, P, T]
        out["dla.heads_by_pos"] = heads_pos.reshape(L, H, P, T).permute(2, 0, 3, 1)  # [P, L, T, H]

        if not post:
            neurons = cache.stack_neuron_results(layer=-1, apply_ln=True, pos_slice=-1)  # [L*M, P, d]
        else:
            rows = []
            for l in range(L):
                n = cache[f"blocks.{l}.mlp.hook_post"][:, -1, :, None] * model.blocks[l].mlp.W_out  # [P, M, d]
                n = n / cache[f"blocks.{l}.ln2_post.hook_scale"][:, -1, None, :] * model.blocks[l].ln2_post.w
                rows.append(n.movedim(1, 0))
            neurons = cache.apply_ln_to_stack(torch.cat(rows, 0), layer=-1, pos_slice=-1)
        out["dla.neurons"] = project(neurons).reshape(L, M, P).permute(2, 0, 1)
        mlp = torch.stack([cache[f"blocks.{l}.hook_mlp_out"][:, -1] for l in range(L)], 0)
        out["dla.mlp"] = project(cache.apply_ln_to_stack(mlp, layer=-1, pos_slice=-1)).T

        comps, labels = cache.decompose_resid(layer=-1, mode="all", apply_ln=True, pos_slice=-1, return_labels=True)
        comp = project(comps)  # [n, P]
        bias = du.T @ lnb if (lnb is not None and layer_norm) else torch.zeros(P, dtype=comp.dtype)
        out["dla.components"] = torch.cat([comp, bias[None]], 0).T
        labels = list(labels) + ["bias"]

        lens, lens_labels = cache.accumulated_resid(layer=-1, apply_ln=True, return_labels=True)  # [L+1, P, T, d]
        lens_ld = torch.einsum("lptd,dp->lpt", lens, du)
        out["lens"] = lens_ld[:, :, -1].T
        out["lens_by_pos"] = lens_ld.permute(1, 0, 2)
        # top_k = 5 of every lens cell at the read position (ids stored as float32, exact).
        top = torch.topk(lens[:, :, -1] @ model.W_U, TOP_K, dim=-1)  # [L+1, P, k]
        out["lens.top_tokens"] = top.indices.permute(1, 0, 2).double()
        out["lens.top_logits"] = top.values.permute(1, 0, 2)

        # Self-repair of zero and mean ablation, one component at every position.
        scale = cache["ln_final.hook_scale"][:, -1, 0]  # [P]
        v = direction - (direction.mean(-1, keepdim=True) if layer_norm else 0)  # [P, d]
        z_mean = {l: cache[f"blocks.{l}.attn.hook_z"].mean(0) for l in range(L)}
        mlp_mean = {l: cache[f"blocks.{l}.hook_mlp_out"].mean(0) for l in range(L)}
        base = ld(logits, a, w)
        final = f"blocks.{L - 1}.hook_resid_post"
        for how in ("zero", "mean"):
            for comp_kind in ("heads", "mlp"):
                shape = (P, L, H) if comp_kind == "heads" else (P, L)
                total, direct, ln_share = torch.zeros(shape), torch.zeros(shape), torch.zeros(shape)
                cells = [(l, h) for l in range(L) for h in range(H)] if comp_kind == "heads" else [(l, None) for l in range(L)]
                for l, h in cells:
                    def ablate(act, hook, l=l, h=h):
                        if h is None:
                            act[:] = 0.0 if how == "zero" else mlp_mean[l]
                        else:
                            act[:, :, h, :] = 0.0 if how == "zero" else z_mean[l][:, h, :]
                        return act

                    hook = f"blocks.{l}.hook_mlp_out" if h is None else f"blocks.{l}.attn.hook_z"
                    patched = model.run_with_hooks(clean, fwd_hooks=[(hook, ablate)])
                    if h is None:
                        src = torch.zeros_like(mlp_mean[l][-1]) if how == "zero" else mlp_mean[l][-1]
                        delta = src[None] - cache[hook][:, -1]  # [P, d]; after ln2_post (Gemma 2)
                    else:
                        zs = torch.zeros_like(z_mean[l][-1, h]) if how == "zero" else z_mean[l][-1, h]
                        dz = zs[None] - cache[hook][:, -1, h]  # [P, dh]
                        delta = dz @ model.blocks[l].attn.W_O[h]  # [P, d]
                        if post:
                            delta = delta / cache[f"blocks.{l}.ln1_post.hook_scale"][:, -1] * model.blocks[l].ln1_post.w
                    # The final norm's reaction to the component's own change: the clean final
                    # residual plus delta, read at its own scale vs the frozen clean scale.
                    x = cache[final][:, -1] + delta
                    x_c = x - x.mean(-1, keepdim=True) if layer_norm else x
                    s_new = torch.sqrt((x_c * x_c).mean(-1) + cfg.eps)
                    proj = (x * v).sum(-1)
                    idx = (slice(None), l, h) if h is not None else (slice(None), l)
                    total[idx] = (ld(patched, a, w) - base).float()
                    direct[idx] = ((delta * v).sum(-1) / scale).float()
                    ln_share[idx] = (proj / s_new - proj / scale).float()
                for name, t in (("total", total), ("direct", direct), ("ln_share", ln_share)):
                    out[f"repair.{how}.{comp_kind}.{name}"] = t
    info = {
        "components": labels,
        "lens_labels": list(lens_labels),
        "post_norms": post,
        "final_logit_softcap": getattr(cfg, "output_logits_soft_cap", None),
    }
    return {k: v.float().contiguous() for k, v in out.items()}, info


def checks(out: Dict[str, torch.Tensor], model_has_cap: bool, ld_pre_cap: torch.Tensor) -> Dict[str, float]:
    c = {}
    c["components_sum_vs_pre_cap_logit_diff"] = float((out["dla.components"].sum(-1) - ld_pre_cap).abs().max())
    c["lens_final_vs_pre_cap_logit_diff"] = float((out["lens"][:, -1] - ld_pre_cap).abs().max())
    # The total is of soft-capped logits (Gemma 2), direct and ln_share are before the cap.
    c["last_mlp_total_vs_direct_plus_ln"] = 0.0 if model_has_cap else max(
        float((out[f"repair.{h}.mlp.total"][:, -1] - out[f"repair.{h}.mlp.direct"][:, -1] - out[f"repair.{h}.mlp.ln_share"][:, -1]).abs().max())
        for h in ("zero", "mean"))
    c["zero_direct_vs_minus_dla_heads"] = float((out["repair.zero.heads.direct"] + out["dla.heads"]).abs().max())
    return c


def pre_cap_ld(model, pairs) -> torch.Tensor:
    """The logit difference before the final soft-cap, from the normalized final residual."""
    clean = torch.tensor([p["clean"] for p in pairs])
    a = torch.tensor([p["answer"] for p in pairs])
    w = torch.tensor([p["wrong"] for p in pairs])
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)
        x = model.ln_final(cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"])[:, -1]
        return (x @ model.W_U[:, a]).diagonal() - (x @ model.W_U[:, w]).diagonal()


def main(argv=None) -> int:
    from safetensors.torch import save_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gpt2," + ",".join(fm.FAMILIES))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        model, pairs, _, src = load_gpt2() if name == "gpt2" else load_family(name)
        pairs = [{k: p[k] for k in ("clean", "corrupted", "answer", "wrong")} for p in pairs[:N_PAIRS]]
        out, info = goldens(model, pairs)
        ref = pre_cap_ld(model, pairs).float()
        c = checks(out, info["final_logit_softcap"] not in (None, -1.0, 0.0), ref)
        for k, v in c.items():
            assert v < 1e-4, f"{name}: check {k} = {v}"
        path = os.path.join(args.out, f"{name}-self-repair-goldens.safetensors")
        save_file(out, path)
        write_json(os.path.join(args.out, f"{name}-self-repair-goldens.json"), {
            "model": name, **src, "pairs": pairs, "read_position": "last",
            "shapes": {k: list(v.shape) for k, v in sorted(out.items())},
            **info, "checks_max_abs": c, "versions": versions(),
        })
        print(f"{name}: {len(out)} tensors, checks {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
