#!/usr/bin/env python3
"""causeway vs TransformerLens' `patching` module on the same sweeps, weights and pairs.

    PYTHONPATH=/opt/tl39 /opt/refvenv/bin/python bench/patching_vs_transformerlens.py \
        [--pairs 32 --threads 2 --model-dir /tmp/gpt2-small-random]

Uses a random checkpoint at GPT-2 small's shape with the real GPT-2 tokenizer (made by
tests/reference/make_goldens.py --gpt2-small DIR if missing) and 32 IOI pairs of one token
length from `causeway data ioi`. Runs get_act_patch_attn_head_out_all_pos,
get_act_patch_resid_pre and get_act_patch_attn_head_out_by_pos in TransformerLens and the same
sweeps in causeway, checks the normalized results agree, and prints both times and the ratio.
TransformerLens 3.x is needed (4.x removed HookedTransformer); see tests/reference/README.md.
"""
import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reference"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import reference_models  # noqa: E402

SWEEPS = [  # (TransformerLens function, causeway sweep, positions)
    ("get_act_patch_attn_head_out_all_pos", "attn_head_out", "all"),
    ("get_act_patch_resid_pre", "resid_pre", "each"),
    ("get_act_patch_attn_head_out_by_pos", "attn_head_out", "each"),
]


def ensure_model(model_dir: pathlib.Path):
    if not (model_dir / "model.safetensors").exists():
        subprocess.run([sys.executable, str(ROOT / "tests/reference/make_goldens.py"), "--out",
                        tempfile.mkdtemp(), "--gpt2-small", str(model_dir)], check=True)


def ioi_pairs(causeway, model_dir, n, tmp):
    """n IOI pairs of one token length (TransformerLens needs a rectangular batch)."""
    path = tmp / "ioi.jsonl"
    subprocess.run([str(causeway), "data", "ioi", "--n", str(8 * n), "--seed", "0", "--tokenizer",
                    str(model_dir), "--out", str(path)], check=True, capture_output=True)
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    by_len = collections.defaultdict(list)
    for r in rows:
        by_len[len(r["clean_ids"])].append(r)
    best = max(by_len.values(), key=len)
    if len(best) < n:
        sys.exit(f"only {len(best)} IOI pairs share one length; ask for fewer --pairs")
    chosen = best[:n]
    out = tmp / "pairs.jsonl"
    for r in chosen:  # `causeway data ioi` writes one answer token as a number
        r["answer_ids"] = r["answer"] if isinstance(r["answer"], list) else [r["answer"]]
        r["wrong_ids"] = r["wrong"] if isinstance(r["wrong"], list) else [r["wrong"]]
    out.write_text("".join(json.dumps({"clean": r["clean_ids"], "corrupted": r["corrupted_ids"],
                                       "answer": r["answer_ids"], "wrong": r["wrong_ids"]}) + "\n"
                           for r in chosen))
    return chosen, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", default="/tmp/gpt2-small-random")
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--reuse", metavar="DIR",
                    help="a previous run's folder (printed at the end): reuse its pairs and causeway result")
    ap.add_argument("--tl-cells", type=int, default=24,
                    help="time TransformerLens on at most this many cells per sweep, then scale")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = pathlib.Path(args.model_dir)
    ensure_model(model_dir)
    causeway = pathlib.Path(args.build) / "causeway"
    tmp = pathlib.Path(args.reuse or tempfile.mkdtemp(prefix="causeway-bench-"))
    if args.reuse:
        chosen = [json.loads(l) for l in (tmp / "pairs.jsonl").read_text().splitlines()]
        for r in chosen:
            r["clean_ids"], r["corrupted_ids"] = r["clean"], r["corrupted"]
            r["answer_ids"], r["wrong_ids"] = r["answer"], r["wrong"]
        pairs_file = tmp / "pairs.jsonl"
    else:
        chosen, pairs_file = ioi_pairs(causeway, model_dir, args.pairs, tmp)

    from transformers import GPT2LMHeadModel
    import transformer_lens.patching as patching
    hf = GPT2LMHeadModel.from_pretrained(str(model_dir)).eval()
    tl = reference_models.to_hooked_transformer(hf)
    clean = torch.tensor([r["clean_ids"] for r in chosen])
    corrupted = torch.tensor([r["corrupted_ids"] for r in chosen])
    ans = torch.tensor([r["answer_ids"][0] for r in chosen])
    wrong = torch.tensor([r["wrong_ids"][0] for r in chosen])

    def ld(logits):
        last = logits[:, -1, :]
        return (last.gather(1, ans[:, None]) - last.gather(1, wrong[:, None])).mean()

    with torch.no_grad():
        clean_logits, clean_cache = tl.run_with_cache(clean)
        clean_ld, corrupted_ld = ld(clean_logits).item(), ld(tl(corrupted)).item()

    def metric(logits):
        return (ld(logits) - corrupted_ld) / (clean_ld - corrupted_ld)

    cfg = ["[model]", f'path = "{model_dir}"', f"threads = {args.threads}", "[data]",
           f'file = "{pairs_file}"', "[output]", f'path = "{tmp / "out.h5"}"']
    for fn, sweep, pos in SWEEPS:
        cfg += ["[[experiment]]", f'name = "{fn}"', f'sweep = "{sweep}"', f'positions = "{pos}"',
                'metric = "normalized"', "batch_rows = 256"]
    (tmp / "bench.toml").write_text("\n".join(cfg) + "\n")
    if not args.reuse:
        subprocess.run([str(causeway), "run", str(tmp / "bench.toml"), "--quiet", "--overwrite"], check=True)
    out = h5py.File(tmp / "out.h5", "r")

    print(f"{args.pairs} IOI pairs of {clean.shape[1]} tokens, GPT-2-small-shaped random weights, "
          f"{args.threads} threads, denoising, normalized logit difference")
    print(f"TransformerLens runs one forward of the whole batch per grid cell; sweeps with more than "
          f"{args.tl_cells} cells are timed on {args.tl_cells} random cells (index_df) and scaled.")
    print(f"{'sweep':<40} {'cells':>6} {'TL s':>9} {'causeway s':>11} {'speed-up':>9} {'max |diff|':>11}")
    rng = np.random.default_rng(0)
    for fn, _, _ in SWEEPS:
        ours = out[f"experiments/{fn}/mean"][...]
        ours_s = float(out[f"experiments/{fn}"].attrs["compute_seconds"])
        cells = ours.size
        index = np.array(list(np.ndindex(ours.shape)))
        chosen_cells = index if cells <= args.tl_cells else index[rng.choice(cells, args.tl_cells, replace=False)]
        axis_names = getattr(patching, fn).keywords["index_axis_names"]
        df = pd.DataFrame(chosen_cells, columns=list(axis_names))
        t0 = time.perf_counter()
        with torch.no_grad():
            ref = getattr(patching, fn)(tl, corrupted, clean_cache, metric, index_axis_names=None, index_df=df).numpy().reshape(-1)
        tl_s = (time.perf_counter() - t0) * cells / len(chosen_cells)
        diff = np.abs(ours[tuple(chosen_cells.T)] - ref).max()
        scaled = "" if cells <= args.tl_cells else "*"
        print(f"{fn:<40} {cells:>6} {tl_s:>8.1f}{scaled or ' '} {ours_s:>11.2f} {tl_s / ours_s:>8.1f}x {diff:>11.2e}")
    print(f"* scaled from the sampled cells; files in {tmp} (--reuse {tmp})")


if __name__ == "__main__":
    main()
