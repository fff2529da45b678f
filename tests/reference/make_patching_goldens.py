#!/usr/bin/env python3
"""Activation-patching goldens for the tiny random GPT-2, from TransformerLens' `patching` module.

    PYTHONPATH=/opt/tl39 /opt/refvenv/bin/python tests/reference/make_patching_goldens.py [--out tests/data]

Reads the committed checkpoint tests/data/tiny-gpt2/ (written by make_goldens.py; this script
never writes it) and writes:
  tiny-gpt2-patching-pairs.jsonl         6 clean/corrupted pairs (token ids), same length
  tiny-gpt2-patching-goldens.safetensors every transformer_lens.patching function, both
                                         directions, batch-normalized and per pair; baselines;
                                         hook-based ablations; an invariant check

See PATCHING.md beside this file for every key, the axis orders and the metric. No model hub is
contacted. Single-threaded, deterministic torch: reruns are byte-identical on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Dict, List, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

N_PAIRS = 6
SEQ_LEN = 8
PAIR_SEED = 20240611
# A pair is kept only if both of these hold (logit units; the tiny model's logits have std ~0.8).
MIN_CLEAN_LD = 0.5  # clean logit difference answer - wrong
MIN_LD_DROP = 1.0  # clean ld - corrupted ld
# Positions changed per pair (pair i changes N_CHANGED[i] positions).
N_CHANGED = (1, 2, 1, 2, 1, 2)

DIRECTIONS = ("denoising", "noising")

METRIC_DOC = {
    "logit_diff": "ld(logits)[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]] (last position)",
    "mean": "(mean_b ld(patched)[b] - mean_b ld_corrupted[b]) / (mean_b ld_clean[b] - mean_b ld_corrupted[b]); "
    "ld_clean / ld_corrupted = baseline.clean_logit_diff / baseline.corrupted_logit_diff (unpatched "
    "batched runs of all 6 pairs); the same formula for both directions",
    "per_pair": "ld(patched)[0] for a batch of one pair (raw logit difference, not normalized)",
    "denoising": "run the corrupted tokens, patch activations from the clean run's cache "
    "(fn(model, corrupted_tokens, clean_cache, metric)); unpatched value 0, fully restored 1",
    "noising": "run the clean tokens, patch activations from the corrupted run's cache "
    "(fn(model, clean_tokens, corrupted_cache, metric)); unpatched value 1, fully destroyed 0",
}


def _load_patching():
    """transformer_lens.patching with tqdm progress bars turned off."""
    import transformer_lens.patching as patching

    patching.tqdm = lambda it, *a, **k: it  # type: ignore[assignment]
    return patching


def patching_functions(patching) -> List[str]:
    """Every get_act_patch_* function of the installed transformer_lens.patching, sorted."""
    return sorted(n for n in dir(patching) if n.startswith("get_act_patch_") and callable(getattr(patching, n)))


def logit_diff(logits: torch.Tensor, answer: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """[B] logit difference at the last position."""
    last = logits[:, -1, :]
    b = torch.arange(last.shape[0])
    return last[b, answer] - last[b, wrong]


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def candidate_token_ids(tok, vocab_size: int) -> List[int]:
    """Merged tokens (ids 256..vocab-2) that decode to printable ASCII (readable prompts)."""
    out = []
    for i in range(256, vocab_size - 1):
        s = tok.decode([i])
        if s.isascii() and s.isprintable() and s.strip() != "":
            out.append(i)
    return out


def make_pairs(model, tok, vocab_size: int, candidates: Sequence[int] | None = None, bos_id: int | None = None) -> List[Dict[str, object]]:
    """N_PAIRS clean/corrupted pairs of SEQ_LEN tokens drawn from `candidates` (default:
    candidate_token_ids). With bos_id, position 0 is bos_id in both runs (never changed) and
    SEQ_LEN - 1 tokens are drawn (model families whose tokenizer prepends BOS)."""
    rng = random.Random(PAIR_SEED)
    cands = list(candidates) if candidates is not None else candidate_token_ids(tok, vocab_size)
    first = 0 if bos_id is None else 1
    pairs: List[Dict[str, object]] = []
    tries = 0
    while len(pairs) < N_PAIRS:
        tries += 1
        assert tries < 10000, "could not find enough pairs"
        n_changed = N_CHANGED[len(pairs)]
        clean = ([] if bos_id is None else [bos_id]) + [rng.choice(cands) for _ in range(first, SEQ_LEN)]
        positions = sorted(rng.sample(range(first, SEQ_LEN), n_changed))
        corrupted = list(clean)
        for p in positions:
            new = rng.choice(cands)
            while new == clean[p]:
                new = rng.choice(cands)
            corrupted[p] = new
        with torch.no_grad():
            lc = model(torch.tensor([clean]), return_type="logits")[0, -1]
            lx = model(torch.tensor([corrupted]), return_type="logits")[0, -1]
        top_c = torch.topk(lc, 2).indices.tolist()
        answer = top_c[0]
        x_top = int(lx.argmax())
        wrong = x_top if x_top != answer else top_c[1]
        ld_c = float(lc[answer] - lc[wrong])
        ld_x = float(lx[answer] - lx[wrong])
        if ld_c < MIN_CLEAN_LD or ld_c - ld_x < MIN_LD_DROP:
            continue
        pairs.append(
            {
                "clean": clean,
                "corrupted": corrupted,
                "answer": answer,
                "wrong": wrong,
                "_changed_positions": positions,
                "_tries": tries,
            }
        )
    return pairs


# --------------------------------------------------------------------------------------------
# Patching
# --------------------------------------------------------------------------------------------


def run_all(model, patching, fn_names, clean, corrupted, answer, wrong, out: Dict[str, torch.Tensor]):
    """Every patching function, both directions: batch-normalized (.mean) and per pair."""
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean)
        corr_logits, corr_cache = model.run_with_cache(corrupted)
    ld_clean = logit_diff(clean_logits, answer, wrong)
    ld_corr = logit_diff(corr_logits, answer, wrong)
    mean_clean = ld_clean.mean()
    mean_corr = ld_corr.mean()

    def batch_metric(logits):
        return (logit_diff(logits, answer, wrong).mean() - mean_corr) / (mean_clean - mean_corr)

    # Per pair: single-pair runs and caches.
    single = []
    for i in range(clean.shape[0]):
        with torch.no_grad():
            _, cc = model.run_with_cache(clean[i : i + 1])
            _, xc = model.run_with_cache(corrupted[i : i + 1])
        a, w = answer[i : i + 1], wrong[i : i + 1]
        single.append((clean[i : i + 1], corrupted[i : i + 1], cc, xc, (lambda lg, a=a, w=w: logit_diff(lg, a, w)[0])))

    for name in fn_names:
        fn = getattr(patching, name)
        for direction in DIRECTIONS:
            with torch.no_grad():
                if direction == "denoising":
                    res = fn(model, corrupted, clean_cache, batch_metric)
                else:
                    res = fn(model, clean, corr_cache, batch_metric)
            out[f"{name}.{direction}.mean"] = res.detach().float().contiguous()
            per = []
            for tc, tx, cc, xc, m in single:
                with torch.no_grad():
                    if direction == "denoising":
                        per.append(fn(model, tx, cc, m))
                    else:
                        per.append(fn(model, tc, xc, m))
            out[f"{name}.{direction}.per_pair"] = torch.stack(per, 0).detach().float().contiguous()
            print(f"  {name}.{direction}: {tuple(res.shape)}", flush=True)
    return clean_logits, clean_cache, ld_clean, ld_corr


# --------------------------------------------------------------------------------------------
# Hook-based goldens (no TL patching function)
# --------------------------------------------------------------------------------------------


def invariant_resid_pre_layer0(model, clean, corrupted, answer, wrong, ld_clean, ld_corr) -> float:
    """Normalized denoising metric with ALL of clean blocks.0.hook_resid_pre patched in."""
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)
    src = clean_cache["blocks.0.hook_resid_pre"]

    def hook(act, hook):
        act[...] = src
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(corrupted, fwd_hooks=[("blocks.0.hook_resid_pre", hook)])
    ld = logit_diff(logits, answer, wrong)
    return float((ld.mean() - ld_corr.mean()) / (ld_clean.mean() - ld_corr.mean()))


def single_ld(model, tokens_1, a, w, hook_name, hook_fn) -> float:
    with torch.no_grad():
        logits = model.run_with_hooks(tokens_1, fwd_hooks=[(hook_name, hook_fn)])
    return float(logit_diff(logits, a, w)[0])


def ablations(model, clean, answer, wrong, clean_cache, out: Dict[str, torch.Tensor]) -> None:
    n_pairs, T = clean.shape
    L, H = model.cfg.n_layers, model.cfg.n_heads
    # Mean over the 6 clean runs (the batched clean cache), per position: [layer, pos, head, d_head].
    z_mean = torch.stack([clean_cache[f"blocks.{l}.attn.hook_z"].mean(0) for l in range(L)], 0)
    zero_head = torch.zeros(n_pairs, L, H)
    mean_head = torch.zeros(n_pairs, L, H)
    zero_mlp = torch.zeros(n_pairs, L, T)
    for i in range(n_pairs):
        t, a, w = clean[i : i + 1], answer[i : i + 1], wrong[i : i + 1]
        for l in range(L):
            for h in range(H):

                def zero_z(act, hook, h=h):
                    act[:, :, h, :] = 0.0
                    return act

                def mean_z(act, hook, h=h, l=l):
                    act[:, :, h, :] = z_mean[l, :, h, :]
                    return act

                zero_head[i, l, h] = single_ld(model, t, a, w, f"blocks.{l}.attn.hook_z", zero_z)
                mean_head[i, l, h] = single_ld(model, t, a, w, f"blocks.{l}.attn.hook_z", mean_z)
            for p in range(T):

                def zero_mlp_out(act, hook, p=p):
                    act[:, p, :] = 0.0
                    return act

                zero_mlp[i, l, p] = single_ld(model, t, a, w, f"blocks.{l}.hook_mlp_out", zero_mlp_out)
    out["ablation.zero.head_all_pos.per_pair"] = zero_head.contiguous()
    out["ablation.mean.head_all_pos.per_pair"] = mean_head.contiguous()
    out["ablation.mean.hook_z_mean"] = z_mean.float().contiguous()
    out["ablation.zero.mlp_out_by_pos.per_pair"] = zero_mlp.contiguous()


# --------------------------------------------------------------------------------------------
# Self-checks
# --------------------------------------------------------------------------------------------


def check(out: Dict[str, torch.Tensor], fn_names: Sequence[str], pairs, ld_clean, ld_corr) -> Dict[str, float]:
    checks: Dict[str, float] = {}
    mc, mx = ld_clean.mean(), ld_corr.mean()
    # 1. Patch setters touch every batch element at the same index and batch elements do not
    #    interact, so the batch-normalized grid equals the normalized mean of the per-pair grids.
    worst = 0.0
    for name in fn_names:
        for d in DIRECTIONS:
            per = out[f"{name}.{d}.per_pair"]
            from_pairs = (per.mean(0) - mx) / (mc - mx)
            worst = max(worst, float((from_pairs - out[f"{name}.{d}.mean"]).abs().max()))
    checks["mean_vs_normalized_mean_of_per_pair"] = worst
    assert worst < 1e-4, worst

    # 2. The *_every helpers are stacks of the single functions.
    def stacked(parts):
        return torch.stack(parts, 0)

    for d in DIRECTIONS:
        for kind in ("mean", "per_pair"):
            g = lambda n: out[f"get_act_patch_{n}.{d}.{kind}"]  # noqa: E731
            ax = 0 if kind == "mean" else 1
            block = torch.stack([g("resid_pre"), g("attn_out"), g("mlp_out")], ax)
            assert torch.equal(block, g("block_every")), (d, kind)
            allp = torch.stack(
                [g(f"attn_head_{x}_all_pos") for x in ("out", "q", "k", "v", "pattern")], ax
            )
            assert torch.equal(allp, g("attn_head_all_pos_every")), (d, kind)
            pat = g("attn_head_pattern_by_pos").transpose(-1, -2)  # [.., head, pos] -> [.., pos, head]
            byp = torch.stack([g(f"attn_head_{x}_by_pos") for x in ("out", "q", "k", "v")] + [pat], ax)
            assert torch.equal(byp, g("attn_head_by_pos_every")), (d, kind)

    # 3. Unchanged positions: denoising resid_pre at layer 0 at a position where clean == corrupted
    #    for every pair is exactly the unpatched corrupted run (metric exactly 0 / raw ld_corr).
    same = [p for p in range(SEQ_LEN) if all(pr["clean"][p] == pr["corrupted"][p] for pr in pairs)]
    den = out["get_act_patch_resid_pre.denoising.mean"]
    for p in same:
        assert abs(float(den[0, p])) < 1e-6, (p, float(den[0, p]))
    # Per pair: patching an unchanged position reproduces the single-pair corrupted ld.
    per = out["get_act_patch_resid_pre.denoising.per_pair"]
    worst = 0.0
    for i, pr in enumerate(pairs):
        for p in range(SEQ_LEN):
            if pr["clean"][p] == pr["corrupted"][p]:
                worst = max(worst, abs(float(per[i, 0, p]) - float(ld_corr[i])))
    checks["per_pair_unchanged_pos_vs_corrupted_ld"] = worst
    assert worst < 1e-4, worst
    # Pattern entries above the diagonal are 0 in both runs: patching them changes nothing.
    ds = out["get_act_patch_attn_head_pattern_dest_src_pos.denoising.mean"]
    upper = torch.triu(torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool), diagonal=1)
    checks["dest_src_upper_triangle_max_abs"] = float(ds[:, :, upper].abs().max())
    assert checks["dest_src_upper_triangle_max_abs"] < 1e-6

    # 4. Patching all of clean resid_pre at layer 0 into the corrupted run restores it exactly.
    inv = float(out["invariant.denoise_resid_pre_layer0_all_pos"][0])
    checks["invariant_minus_1"] = abs(inv - 1.0)
    assert abs(inv - 1.0) < 1e-5, inv

    # 5. Noising of resid_pre at layer 0 at unchanged positions is exactly 1.
    no = out["get_act_patch_resid_pre.noising.mean"]
    for p in same:
        assert abs(float(no[0, p]) - 1.0) < 1e-6, (p, float(no[0, p]))
    return checks


def hand_patch_checks(model, clean, corrupted, answer, wrong, ld_clean, ld_corr, out) -> float:
    """Recompute a few cells with plain hooks, to pin down what TL's functions patch."""
    with torch.no_grad():
        _, cc = model.run_with_cache(clean)
    mc, mx = ld_clean.mean(), ld_corr.mean()

    def metric_with(hook_name, fn):
        with torch.no_grad():
            lg = model.run_with_hooks(corrupted, fwd_hooks=[(hook_name, fn)])
        return float((logit_diff(lg, answer, wrong).mean() - mx) / (mc - mx))

    worst = 0.0
    cells = [
        ("get_act_patch_resid_pre", "blocks.1.hook_resid_pre", (1, 3), lambda a, s, i: a.__setitem__((slice(None), i[1]), s[:, i[1]])),
        ("get_act_patch_attn_head_q_by_pos", "blocks.1.attn.hook_q", (1, 7, 2), lambda a, s, i: a.__setitem__((slice(None), i[1], i[2]), s[:, i[1], i[2]])),
        ("get_act_patch_attn_head_k_by_pos", "blocks.0.attn.hook_k", (0, 2, 1), lambda a, s, i: a.__setitem__((slice(None), i[1], i[2]), s[:, i[1], i[2]])),
        ("get_act_patch_attn_head_pattern_by_pos", "blocks.1.attn.hook_pattern", (1, 3, 7), lambda a, s, i: a.__setitem__((slice(None), i[1], i[2]), s[:, i[1], i[2]])),
        ("get_act_patch_attn_head_pattern_dest_src_pos", "blocks.0.attn.hook_pattern", (0, 0, 7, 2), lambda a, s, i: a.__setitem__((slice(None), i[1], i[2], i[3]), s[:, i[1], i[2], i[3]])),
        ("get_act_patch_attn_head_out_all_pos", "blocks.1.attn.hook_z", (1, 3), lambda a, s, i: a.__setitem__((slice(None), slice(None), i[1]), s[:, :, i[1]])),
    ]
    for fn_name, hook_name, idx, setter in cells:
        src = cc[hook_name]

        def hook(act, hook, setter=setter, src=src, idx=idx):
            setter(act, src, idx)
            return act

        v = metric_with(hook_name, hook)
        ref = float(out[f"{fn_name}.denoising.mean"][idx])
        worst = max(worst, abs(v - ref))
    assert worst < 1e-5, worst
    return worst


# --------------------------------------------------------------------------------------------


def sort_header_metadata(path: str) -> None:
    """Rewrite the safetensors header with __metadata__ keys sorted, in place.

    safetensors keeps metadata in a hash map, so its key order (and the file's bytes) changes
    from run to run. The header is re-serialized (same JSON content, sorted metadata keys) and
    space-padded to its original length, so the data offsets do not move.
    """
    import struct
    from collections import OrderedDict

    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    header["__metadata__"] = OrderedDict(sorted(header["__metadata__"].items()))
    header.move_to_end("__metadata__", last=False)
    new = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    assert len(new) <= n, (len(new), n)
    new = new + b" " * (n - len(new))
    with open(path, "wb") as f:
        f.write(blob[:8] + new + blob[8 + n :])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data"), help="output folder (default: tests/data)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions, byte-identical reruns
    torch.use_deterministic_algorithms(True)

    from safetensors.torch import save_file
    from transformers import GPT2LMHeadModel

    ckpt = os.path.join(args.out, "tiny-gpt2")
    hf = GPT2LMHeadModel.from_pretrained(ckpt, attn_implementation="eager").to(torch.float32).eval()
    model = rm.to_hooked_transformer(hf)
    tok = rm.load_tokenizer(ckpt)
    patching = _load_patching()
    fn_names = patching_functions(patching)
    print(f"transformer_lens {rm.transformer_lens_version()}: {len(fn_names)} patching functions", flush=True)

    pairs = make_pairs(model, tok, hf.config.vocab_size)
    clean = torch.tensor([p["clean"] for p in pairs], dtype=torch.long)
    corrupted = torch.tensor([p["corrupted"] for p in pairs], dtype=torch.long)
    answer = torch.tensor([p["answer"] for p in pairs], dtype=torch.long)
    wrong = torch.tensor([p["wrong"] for p in pairs], dtype=torch.long)

    out: Dict[str, torch.Tensor] = {}
    clean_logits, clean_cache, ld_clean, ld_corr = run_all(
        model, patching, fn_names, clean, corrupted, answer, wrong, out
    )
    out["baseline.clean_logit_diff"] = ld_clean.float().contiguous()
    out["baseline.corrupted_logit_diff"] = ld_corr.float().contiguous()
    out["pairs.clean"] = clean.to(torch.int32).contiguous()
    out["pairs.corrupted"] = corrupted.to(torch.int32).contiguous()
    out["pairs.answer"] = answer.to(torch.int32).contiguous()
    out["pairs.wrong"] = wrong.to(torch.int32).contiguous()
    inv = invariant_resid_pre_layer0(model, clean, corrupted, answer, wrong, ld_clean, ld_corr)
    out["invariant.denoise_resid_pre_layer0_all_pos"] = torch.tensor([inv], dtype=torch.float32)
    ablations(model, clean, answer, wrong, clean_cache, out)

    checks = check(out, fn_names, pairs, ld_clean, ld_corr)
    checks["hand_hook_patch_vs_tl"] = hand_patch_checks(model, clean, corrupted, answer, wrong, ld_clean, ld_corr, out)

    for k, v in out.items():
        assert v.dtype in (torch.float32, torch.int32) and v.is_contiguous(), k

    import safetensors
    import transformers

    meta = {
        "producer": "tests/reference/make_patching_goldens.py",
        "transformer_lens_version": rm.transformer_lens_version(),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "safetensors_version": safetensors.__version__,
        "model": "tests/data/tiny-gpt2 (TransformerLens HookedTransformer, no weight processing)",
        "n_pairs": str(N_PAIRS),
        "seq_len": str(SEQ_LEN),
        "answer_pos": "-1 (last token)",
        "metric": json.dumps(METRIC_DOC),
        "functions": json.dumps(fn_names),
        "shapes": json.dumps({k: list(v.shape) for k, v in sorted(out.items())}),
        "checks_max_abs": json.dumps(checks),
    }
    gpath = os.path.join(args.out, "tiny-gpt2-patching-goldens.safetensors")
    save_file(dict(sorted(out.items())), gpath, metadata=meta)
    sort_header_metadata(gpath)
    os.chmod(gpath, 0o644)  # safetensors writes 0600
    ppath = os.path.join(args.out, "tiny-gpt2-patching-pairs.jsonl")
    with open(ppath, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({k: p[k] for k in ("clean", "corrupted", "answer", "wrong")}) + "\n")

    print(f"wrote {gpath} ({os.path.getsize(gpath):,d} B, {len(out)} tensors) and {ppath}")
    for i, p in enumerate(pairs):
        print(
            f"pair {i}: changed {p['_changed_positions']} ld_clean {float(ld_clean[i]):+.4f} "
            f"ld_corr {float(ld_corr[i]):+.4f} answer {p['answer']!r}={tok.decode([p['answer']])!r} "
            f"wrong {p['wrong']!r}={tok.decode([p['wrong']])!r} clean={tok.decode(p['clean'])!r} "
            f"corrupted={tok.decode(p['corrupted'])!r}"
        )
    print("checks:", json.dumps(checks))
    for k, v in sorted(out.items()):
        print(f"  {k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
