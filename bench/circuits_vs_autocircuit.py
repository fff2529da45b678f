#!/usr/bin/env python3
"""causeway's edge attribution (EAP, EAP-IG) vs the auto-circuit package on the same weights and pairs.

    /opt/refvenv/bin/python bench/circuits_vs_autocircuit.py \
        [--model-dir /tmp/bench/gpt2-small-random --pairs /tmp/bench/ioi32.jsonl \
         --build build/main --threads 2 --steps 5 --repeats 3 --ac-repeats N --ac-ig-runs N --reuse DIR]

On the shared 2-core VM one auto-circuit EAP-IG run (k = 5) is ~10 minutes, so the figures in
BENCHMARKS.md used --repeats 2 --ac-repeats 1 --ac-ig-runs 1.

auto-circuit 1.0.1 (PyPI) goes into the reference venv without touching torch / transformers /
transformer_lens: `pip install --no-deps auto-circuit==1.0.1 && pip install plotly ordered-set
blobfile attrs` (the modules its imports reach; tracr, word2word, kaleido are never imported).
It was written for TransformerLens 1.x/2.x: under 3.9 two names it imports moved
(HookedTransformerKeyValueCache is TransformerLensKeyValueCache, the module
transformer_lens.past_key_value_caching is gone), so this script aliases both before importing
it; key/value caches are unused here.

The model: a random checkpoint at GPT-2 small's shape (tests/reference/make_goldens.py
--gpt2-small DIR) loaded into a HookedTransformer without weight processing, wrapped by
auto-circuit's patchable_model at head granularity (factorized graph, separate Q/K/V receivers,
seq_len None: every position patched at once), which is the graph causeway uses (README, "Edges
and circuits"; the edge names are the same). Pairs: JSONL with clean_ids, corrupted_ids, answer,
wrong, all of one length (one batch).

auto-circuit's EAP is mask_gradient_prune_scores(grad_function="logit", answer_function="avg_diff",
mask_val=0): the gradient of loss = -mean over the batch of the logit difference with respect to
each edge's mask, at the clean run, where the mask adds mask x (corrupt - current sender output).
So its score is -(batch mean of causeway's noising EAP): the sign flips and the batch is averaged
(one batch; more batches would sum their means). Its EAP-IG (integrated_grad_samples=k)
interpolates every edge's mask at once over alpha = 0, 1/k, ..., 1 (k + 1 points, summed, not
averaged), while causeway's eap_ig_inputs interpolates the input embeddings at the left Riemann
points alpha = 0 .. (k-1)/k and averages, so those scores differ by definition; they are compared
after scaling auto-circuit's by -1/(k+1), to show how close the two paths are.

causeway's side: `causeway run` (build/NAME/causeway) of one config with an `eap` and an
`eap_ig_inputs` experiment, all pairs in one work item, run once as a warm-up and --repeats times;
each experiment's time is its best `compute_seconds` (the work item end to end: engine set-up,
forwards and backwards, writing the [pair, sender, receiver] grid to HDF5), and the file gives the
sender / receiver names and the mean score per edge. bench/edges_bench.cpp times the same methods
but always also EAP-IG's activation variant (2 + k (n_layer + 1) passes), over ten minutes per
repetition on the shared 2-core VM, so it is not used here. auto-circuit is timed the same way:
best of --repeats calls after a warm-up call, torch.set_num_threads(--threads).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reference"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformer_lens  # noqa: E402

import reference_models  # noqa: E402


def import_auto_circuit():
    """auto-circuit's modules, after aliasing the two names TransformerLens 3.x renamed."""
    kv_cache = transformer_lens.TransformerLensKeyValueCache
    transformer_lens.HookedTransformerKeyValueCache = kv_cache
    legacy = types.ModuleType("transformer_lens.past_key_value_caching")
    legacy.HookedTransformerKeyValueCache = kv_cache
    sys.modules[legacy.__name__] = legacy
    from auto_circuit.data import PromptDataLoader, PromptDataset
    from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
    from auto_circuit.types import AblationType
    from auto_circuit.utils.graph_utils import patchable_model
    return PromptDataLoader, PromptDataset, mask_gradient_prune_scores, AblationType, patchable_model


def best_of(fn, repeats, warm_up=True):
    """Best wall time of `repeats` calls after one warm-up call (if warm_up), and the last result."""
    result = fn() if warm_up else None
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run_causeway(args, work):
    """`causeway run` of EAP and EAP-IG (inputs) on every pair: warm-up + --repeats runs, one file each."""
    cfg = ["[model]", f'path = "{args.model_dir}"', f"threads = {args.threads}", "[data]",
           f'file = "{args.pairs}"', "[output]", f'path = "{work / "run0.h5"}"', "[parallel]", "pairs_per_item = 1000000", "[[experiment]]",
           'name = "eap"', 'kind = "edges"', 'method = "eap"', "[[experiment]]", 'name = "eap_ig"',
           'kind = "edges"', 'method = "eap_ig_inputs"', f"steps = {args.steps}"]
    (work / "edges.toml").write_text("\n".join(cfg) + "\n")
    for run in range(args.repeats + 1):
        subprocess.run([str(pathlib.Path(args.build) / "causeway"), "run", str(work / "edges.toml"),
                        "--out", str(work / f"run{run}.h5"), "--quiet", "--overwrite"], check=True)


def read_causeway(work, repeats):
    """Best compute_seconds of the timed runs (run 0 is the warm-up), scores and names of the last."""
    seconds = {"eap": [], "eap_ig": []}
    for run in range(1, repeats + 1):
        with h5py.File(work / f"run{run}.h5", "r") as f:
            for name in seconds:
                seconds[name].append(float(f[f"experiments/{name}"].attrs["compute_seconds"]))
    with h5py.File(work / f"run{repeats}.h5", "r") as f:
        g = f["experiments/eap"]
        names = lambda d: [x.decode() if isinstance(x, bytes) else str(x) for x in d[...]]
        senders, receivers = names(g["axes/sender"]), names(g["axes/receiver"])
        eap = g["mean"][...].astype(np.float64)
        ig = f["experiments/eap_ig/mean"][...].astype(np.float64)
        mask = g["edge_mask"][...].astype(bool)
    return dict(eap_s=min(seconds["eap"]), ig_s=min(seconds["eap_ig"]), seconds=seconds,
                senders=senders, receivers=receivers, eap=eap, ig=ig, mask=mask)


def auto_circuit_scores(args, rows):
    """auto-circuit's EAP and EAP-IG scores per edge name, and their best times."""
    PromptDataLoader, PromptDataset, mask_gradient_prune_scores, AblationType, patchable_model = \
        import_auto_circuit()
    from transformers import GPT2LMHeadModel
    hf = GPT2LMHeadModel.from_pretrained(args.model_dir).eval()
    tl = reference_models.to_hooked_transformer(hf)
    del hf
    # auto-circuit's own recipe (experiment_utils.load_tl_model): split receiver inputs, frozen weights.
    tl.set_use_attn_result(True)
    tl.set_use_split_qkv_input(True)
    tl.set_use_hook_mlp_in(True)
    tl.eval()
    for p in tl.parameters():
        p.requires_grad = False
    model = patchable_model(tl, factorized=True, slice_output="last_seq", seq_len=None,
                            separate_qkv=True, device=torch.device("cpu"))

    clean = torch.tensor([r["clean_ids"] for r in rows])
    corrupt = torch.tensor([r["corrupted_ids"] for r in rows])
    answers = [torch.tensor([r["answer"]]) for r in rows]
    wrong = [torch.tensor([r["wrong"]]) for r in rows]
    loader = PromptDataLoader(PromptDataset(clean, corrupt, answers, wrong), seq_len=None, diverge_idx=0,
                              batch_size=len(rows), shuffle=False)

    def scores(**kw):
        ps = mask_gradient_prune_scores(model, loader, None, grad_function="logit", answer_function="avg_diff",
                                        ablation_type=AblationType.RESAMPLE, clean_corrupt="corrupt", **kw)
        return {e.name: float(ps[e.dest.module_name][e.patch_idx]) for e in model.edges}

    eap_s, eap = best_of(lambda: scores(mask_val=0.0), args.ac_repeats)
    if args.ac_ig_runs:  # the EAP calls above already warmed up this model
        ig_s, ig = best_of(lambda: scores(integrated_grad_samples=args.steps), args.ac_ig_runs, warm_up=False)
    else:
        ig_s, ig = best_of(lambda: scores(integrated_grad_samples=args.steps), args.ac_repeats)
    return dict(eap_s=eap_s, ig_s=ig_s, eap=eap, ig=ig, n_edges=len(model.edges))


def compare(ours, theirs_by_name, senders, receivers, mask, scale):
    """Correlation and differences of causeway's [S, R] scores and auto-circuit's, scaled, per edge."""
    s_index = {s: i for i, s in enumerate(senders)}
    r_index = {r: i for i, r in enumerate(receivers)}
    a, b = [], []
    for name, v in theirs_by_name.items():
        s, r = name.split("->")
        if not mask[s_index[s], r_index[r]]:
            sys.exit(f"auto-circuit's edge {name} is not an edge of causeway's graph")
        a.append(ours[s_index[s], r_index[r]])
        b.append(scale * v)
    a, b = np.array(a), np.array(b)
    diff = np.abs(a - b)
    big = np.abs(a) >= 1e-3 * np.abs(a).max()  # per-edge relative difference where it means something
    return dict(n=len(a), corr=float(np.corrcoef(a, b)[0, 1]), max_abs=float(diff.max()),
                max_abs_over_max=float(diff.max() / np.abs(a).max()),
                max_rel_big=float((diff[big] / np.abs(a[big])).max()), n_big=int(big.sum()),
                max_score=float(np.abs(a).max()), covered=a.size)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model-dir", default="/tmp/bench/gpt2-small-random")
    ap.add_argument("--pairs", default="/tmp/bench/ioi32.jsonl")
    ap.add_argument("--build", default=str(ROOT / "build" / "main"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="EAP-IG steps (auto-circuit's integrated_grad_samples)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs after a warm-up")
    ap.add_argument("--ac-repeats", type=int, help="auto-circuit's EAP: best of this many (default --repeats)")
    ap.add_argument("--ac-ig-runs", type=int, default=0,
                    help="auto-circuit's EAP-IG: best of this many runs, no warm-up of its own (default: warm-up "
                         "+ --ac-repeats); one run is minutes on 2 cores")
    ap.add_argument("--reuse", metavar="DIR", help="a previous run's folder: reuse causeway's times and scores")
    args = ap.parse_args()
    args.ac_repeats = args.repeats if args.ac_repeats is None else args.ac_repeats
    torch.set_num_threads(args.threads)
    rows = [json.loads(l) for l in pathlib.Path(args.pairs).read_text().splitlines() if l.strip()]
    if len({len(r["clean_ids"]) for r in rows} | {len(r["corrupted_ids"]) for r in rows}) != 1:
        sys.exit(f"{args.pairs}: auto-circuit needs one token length for every prompt (one batch)")

    work = pathlib.Path(args.reuse or tempfile.mkdtemp(prefix="causeway-circuits-"))
    if not args.reuse:
        run_causeway(args, work)
    ours = read_causeway(work, args.repeats)
    theirs = auto_circuit_scores(args, rows)

    S, R = len(ours["senders"]), len(ours["receivers"])
    n_ours = int(ours["mask"].sum())
    if n_ours != theirs["n_edges"]:
        sys.exit(f"causeway's graph has {n_ours} edges, auto-circuit's {theirs['n_edges']}")
    print(f"{len(rows)} pairs of {len(rows[0]['clean_ids'])} tokens, {args.model_dir}, {args.threads} threads, "
          f"causeway best of {args.repeats} runs after a warm-up, auto-circuit EAP best of "
          f"{args.ac_repeats} after a warm-up, EAP-IG {args.ac_ig_runs or args.ac_repeats} runs; graph {S} senders x {R} receivers, "
          f"causeway {n_ours} edges, auto-circuit {theirs['n_edges']}")
    eap = compare(ours["eap"], theirs["eap"], ours["senders"], ours["receivers"], ours["mask"], -1.0)
    ig = compare(ours["ig"], theirs["ig"], ours["senders"], ours["receivers"], ours["mask"], -1.0 / (args.steps + 1))
    print(f"{'method':<16} {'auto-circuit s':>15} {'causeway s':>11} {'ratio':>7}   scores vs causeway")
    for name, ac_s, cw_s, c, how in [
            ("EAP", theirs["eap_s"], ours["eap_s"], eap, "auto-circuit x -1"),
            (f"EAP-IG k={args.steps}", theirs["ig_s"], ours["ig_s"], ig, f"auto-circuit x -1/{args.steps + 1}")]:
        print(f"{name:<16} {ac_s:>15.3f} {cw_s:>11.3f} {ac_s / cw_s:>6.1f}x   ({how}) corr {c['corr']:.7f}, "
              f"max |diff| {c['max_abs']:.2e} = {c['max_abs_over_max']:.2e} of max |score| {c['max_score']:.3g}, "
              f"max rel diff {c['max_rel_big']:.2e} over the {c['n_big']} edges >= 1e-3 max")
    print(f"causeway files in {work} (--reuse {work})")


if __name__ == "__main__":
    main()
