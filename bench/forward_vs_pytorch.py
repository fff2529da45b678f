#!/usr/bin/env python3
"""causeway vs PyTorch eager fp32: one GPT-2-small-shaped forward, same weights, same threads.

Run with the reference venv (torch + transformers; see tests/reference/README.md):
    /opt/refvenv/bin/python bench/forward_vs_pytorch.py [--batch 8 --seq 128 --threads 1 2]

It makes (once) a random checkpoint at GPT-2 small's shape, checks that causeway's logits
equal PyTorch's on it, then times both at each thread count and prints tokens/s, the ratio,
causeway's GFLOP/s as a fraction of the sgemm peak it measured, and causeway's peak RSS
against the fp32 weights plus the batch's activations.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_models  # noqa: E402

GPT2_SMALL = dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257,
                  layer_norm_epsilon=1e-5, activation_function="gelu_new")


def ensure_checkpoint(path: pathlib.Path):
    if (path / "model.safetensors").exists():
        return
    print(f"making a random GPT-2-small-shaped checkpoint in {path} ...", flush=True)
    model = reference_models.make_random_gpt2(GPT2_SMALL, seed=0)
    reference_models.save_checkpoint(model, path)


def time_pytorch(model, ids, threads, repeats):
    torch.set_num_threads(threads)
    with torch.no_grad():
        model(ids)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(ids)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_causeway(binary, model_dir, batch, seq, threads, repeats, env):
    out = subprocess.run([str(binary), "--model", str(model_dir), "--batch", str(batch), "--seq",
                          str(seq), "--threads", str(threads), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_logits(causeway, model_dir, model, env):
    """causeway's logits on a fixed prompt equal PyTorch's (max abs error printed)."""
    ids = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "l.h5"
        subprocess.run([str(causeway), "logits", "--model", str(model_dir), "--tokens",
                        ",".join(map(str, ids)), "--out", str(out), "--threads", "2"],
                       check=True, capture_output=True, env=env)
        import h5py
        got = h5py.File(out, "r")["logits"][...]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    return float(np.abs(got - ref).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model-dir", default="/tmp/causeway-bench/gpt2-small-random")
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    args = ap.parse_args()

    model_dir = pathlib.Path(args.model_dir)
    ensure_checkpoint(model_dir)
    build = pathlib.Path(args.build)
    bench_bin, causeway_bin = build / "bench" / "causeway_bench_forward", build / "causeway"
    env = dict(os.environ)

    from transformers import GPT2LMHeadModel
    model = GPT2LMHeadModel.from_pretrained(str(model_dir), torch_dtype=torch.float32).eval()
    print(f"max |logit| difference causeway vs PyTorch: {check_logits(causeway_bin, model_dir, model, env):.2e}")
    print(f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', '(unset)')}  torch {torch.__version__}")

    ids = torch.randint(0, GPT2_SMALL["vocab_size"], (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    C, M, V, L = 768, 3072, GPT2_SMALL["vocab_size"], 12
    weights_mb = 124.44e6 * 4 / 2**20
    act_mb = (args.batch * args.seq * (6 * C + 2 * M + V) + 2 * args.batch * 12 * args.seq ** 2) * 4 / 2**20
    print(f"\nbatch {args.batch} x {args.seq} tokens, fp32")
    print(f"{'threads':>7} {'torch tok/s':>12} {'causeway tok/s':>15} {'ratio':>6} {'GFLOP/s':>8} "
          f"{'sgemm peak':>10} {'of peak':>8} {'peak RSS MB':>11} {'RSS bound MB':>12}")
    for t in args.threads:
        torch_s = time_pytorch(model, ids, t, args.repeats)
        r = run_causeway(bench_bin, model_dir, args.batch, args.seq, t, args.repeats, env)
        torch_tps = args.batch * args.seq / torch_s
        bound = 1.3 * weights_mb + act_mb
        print(f"{t:>7} {torch_tps:>12.0f} {r['tokens_per_s']:>15.0f} {r['tokens_per_s'] / torch_tps:>6.2f} "
              f"{r['gflops']:>8.1f} {r['sgemm_peak_gflops']:>10.1f} {r['fraction_of_peak']:>8.0%} "
              f"{r['peak_rss_mb']:>11.0f} {bound:>12.0f}")


if __name__ == "__main__":
    main()
