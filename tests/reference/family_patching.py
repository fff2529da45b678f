"""Patching goldens of one model family, with make_patching_goldens.py's code (every
transformer_lens.patching function, both directions, batch-normalized and per pair; the
hook-based ablations; the resid_pre invariant). See PATCHING.md for the keys.

Difference from GPT-2: under grouped-query attention TransformerLens' k/v head functions
return [.., n_key_value_heads] grids, and the *_every helpers zero-pad those to n_heads
before stacking (patching.get_act_patch_attn_head_all_pos_every / _by_pos_every).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch

import make_patching_goldens as mp


def candidate_ids(tok, fam) -> List[int]:
    """Regular (non-special, non-byte-fallback) tokens of two or more characters that decode
    to printable ASCII: readable prompts, deterministic."""
    specials = set(fam.specials)
    out = []
    for i in range(tok.get_vocab_size()):
        t = tok.id_to_token(i)
        if t in specials or (t.startswith("<0x") and t.endswith(">")):
            continue
        s = tok.decode([i])
        if len(t) >= 2 and s.isascii() and s.isprintable() and s.strip() != "":
            out.append(i)
    return out


def patching_goldens(fam, tok, tl, out: Dict[str, torch.Tensor], only: Sequence[str] | None = None) -> Dict[str, Any]:
    bos = tok.token_to_id(fam.special_map["bos_token"]) if fam.add_bos else None
    pairs = mp.make_pairs(tl, tok, tok.get_vocab_size(), candidates=candidate_ids(tok, fam), bos_id=bos)
    clean = torch.tensor([p["clean"] for p in pairs], dtype=torch.long)
    corrupted = torch.tensor([p["corrupted"] for p in pairs], dtype=torch.long)
    answer = torch.tensor([p["answer"] for p in pairs], dtype=torch.long)
    wrong = torch.tensor([p["wrong"] for p in pairs], dtype=torch.long)

    patching = mp._load_patching()
    fn_names = mp.patching_functions(patching)
    if only is not None:  # development runs (make_family_goldens.py --quick)
        fn_names = [n for n in fn_names if n in only]
    not_applicable = {}
    if tl.cfg.parallel_attn_mlp:
        # TL 3.9 get_act_patch_resid_mid reads clean_cache["blocks.L.hook_resid_mid"], which a
        # parallel attention + MLP block (GPT-NeoX) does not have: KeyError. Not a golden.
        not_applicable["get_act_patch_resid_mid"] = "KeyError 'blocks.0.hook_resid_mid': parallel_attn_mlp blocks have no hook_resid_mid"
        fn_names = [n for n in fn_names if n not in not_applicable]
    _, clean_cache, ld_clean, ld_corr = mp.run_all(tl, patching, fn_names, clean, corrupted, answer, wrong, out)
    out["baseline.clean_logit_diff"] = ld_clean.float().contiguous()
    out["baseline.corrupted_logit_diff"] = ld_corr.float().contiguous()
    out["pairs.clean"] = clean.to(torch.int32).contiguous()
    out["pairs.corrupted"] = corrupted.to(torch.int32).contiguous()
    out["pairs.answer"] = answer.to(torch.int32).contiguous()
    out["pairs.wrong"] = wrong.to(torch.int32).contiguous()
    inv = mp.invariant_resid_pre_layer0(tl, clean, corrupted, answer, wrong, ld_clean, ld_corr)
    out["invariant.denoise_resid_pre_layer0_all_pos"] = torch.tensor([inv], dtype=torch.float32)
    assert abs(inv - 1.0) < 1e-5, inv
    mp.ablations(tl, clean, answer, wrong, clean_cache, out)

    # batch-normalized grid == normalized mean of the per-pair grids (pairs do not interact)
    mc, mx = ld_clean.mean(), ld_corr.mean()
    n_heads = tl.cfg.n_heads
    n_kv = tl.cfg.n_key_value_heads or n_heads
    worst = 0.0
    for name in fn_names:
        for d in mp.DIRECTIONS:
            per = out[f"{name}.{d}.per_pair"]
            diff = ((per.mean(0) - mx) / (mc - mx) - out[f"{name}.{d}.mean"]).abs()
            if name.startswith("get_act_patch_attn_head_") and name.endswith("_every") and n_kv < n_heads:
                # k and v (entries 2, 3) are zero-padded from n_kv to n_heads heads by TL: the
                # padding is a literal 0 in both, not a metric value
                assert torch.count_nonzero(out[f"{name}.{d}.mean"][2:4, ..., n_kv:]) == 0
                assert torch.count_nonzero(per[:, 2:4, ..., n_kv:]) == 0
                worst = max(worst, float(diff[2:4, ..., :n_kv].max()))
                diff = torch.cat([diff[:2], diff[4:]], 0)
            worst = max(worst, float(diff.max()))
    assert worst < 1e-4, worst
    # unchanged positions: denoising resid_pre at layer 0 gives 0, noising gives 1
    first = 1 if bos is not None else 0
    same = [p for p in range(mp.SEQ_LEN) if all(pr["clean"][p] == pr["corrupted"][p] for pr in pairs)]
    for p in same:
        assert abs(float(out["get_act_patch_resid_pre.denoising.mean"][0, p])) < 1e-5
        assert abs(float(out["get_act_patch_resid_pre.noising.mean"][0, p]) - 1.0) < 1e-5
    shapes = {k: list(v.shape) for k, v in sorted(out.items())}
    return {
        "pairs": [{k: p[k] for k in ("clean", "corrupted", "answer", "wrong", "_changed_positions")} for p in pairs],
        "bos_at_position_0": bos,
        "functions": fn_names,
        "functions_not_applicable": not_applicable,
        "shapes": shapes,
        "checks": {
            "mean_vs_normalized_mean_of_per_pair": worst,
            "invariant_minus_1": abs(inv - 1.0),
            "positions_unchanged_in_every_pair": same,
        },
        "metric": mp.METRIC_DOC,
    }
