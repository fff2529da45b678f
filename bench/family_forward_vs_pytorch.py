#!/usr/bin/env python3
"""causeway vs PyTorch on a Llama-3.2-1B-shaped random checkpoint: one forward of B x T tokens,
fp32 and bf16 weights, same threads; tokens/s, peak RSS and the ratio causeway/PyTorch.

Run with the reference venv (torch + transformers 5; see tests/reference/README.md):
    /opt/refvenv/bin/python bench/family_forward_vs_pytorch.py                # PyTorch only
    /opt/refvenv/bin/python bench/family_forward_vs_pytorch.py --causeway build/release/causeway
        [--dtypes fp32 bf16] [--threads 1 2] [--batch 1 --seq 128] [--repeats 3]

It makes once (about 5 GB fp32 + 2.5 GB bf16, under --cache-dir) a LlamaForCausalLM with
Llama-3.2-1B's shape (16 layers, hidden 2048, 32 heads / 8 kv heads of 64, MLP 8192, vocabulary
128256, llama3 rope scaling, tied embeddings) and seeded N(0, 0.02) weights, config.json written
the way the hub has it (rope_theta / rope_scaling / torch_dtype). Each measurement runs in its
own process so peak RSS figures do not mix: PyTorch's is VmHWM of its worker, causeway's is
/usr/bin/time -v's "Maximum resident set size".

causeway is timed by bench/causeway_bench_forward (next to the CLI, in bench/) when it accepts
the checkpoint; otherwise by `causeway logits` (one sequence): wall time of a T-token run minus
that of a 1-token run, so loading the weights is not counted. A configuration causeway cannot
run is reported as "causeway: not available: <first line of its error>". Before timing, causeway's
logits on a 16-token prompt are compared with PyTorch fp32 on the same stored weights (--no-check
skips it).

bf16 means different things on the two sides: PyTorch computes in bf16; causeway keeps the
weight matrices in bf16 (--dtype bf16, passed when `causeway logits --help` lists it, or
--causeway-dtype-flag) and computes in fp32, unless --causeway-dtype-flag '--dtype bf16
--compute bf16' asks for the CPU's bf16 dot products (CAUSEWAY_CPU_BF16=0 in the environment
turns them off again, for the widened figure).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve()
ROOT = HERE.parents[1]

# Llama-3.2-1B's config.json, as the hub has it.
LLAMA_1B = dict(
    architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=128256, hidden_size=2048,
    intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
    head_dim=64, hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-5,
    rope_theta=500000.0,
    rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                      original_max_position_embeddings=8192),
    tie_word_embeddings=True, attention_bias=False, attention_dropout=0.0, mlp_bias=False,
    initializer_range=0.02, bos_token_id=128000, eos_token_id=128001, pretraining_tp=1,
    use_cache=False)
N_PARAMS = 1_235_814_400  # tied: embeddings counted once
DTYPES = {"fp32": ("float32", 4), "bf16": ("bfloat16", 2)}


def checkpoint_dir(cache: pathlib.Path, dtype: str) -> pathlib.Path:
    return cache / dtype


def checkpoint_ready(path: pathlib.Path) -> bool:
    return (path / "config.json").exists() and (path / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------
# Workers (each in its own process)
# ------------------------------------------------------------------------------------------


def hub_style_config(path: pathlib.Path, torch_dtype: str):
    """transformers 5 writes rope_parameters and dtype; released checkpoints (what causeway
    reads) have rope_theta, rope_scaling and torch_dtype."""
    c = json.loads(path.read_text())
    for key in ("rope_parameters", "dtype"):
        c.pop(key, None)
    c.update({k: LLAMA_1B[k] for k in ("rope_theta", "rope_scaling")}, torch_dtype=torch_dtype)
    path.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")


def worker_make(cache: pathlib.Path, seed: int):
    import torch
    import transformers

    kw = {k: v for k, v in LLAMA_1B.items() if k not in ("architectures", "model_type",
                                                        "rope_theta", "rope_scaling")}
    kw["rope_parameters"] = dict(LLAMA_1B["rope_scaling"], rope_theta=LLAMA_1B["rope_theta"])
    config = transformers.LlamaConfig(**kw)
    torch.manual_seed(seed)  # the model's own init: normal(0, initializer_range), norms 1
    t0 = time.perf_counter()
    model = transformers.LlamaForCausalLM(config).to(torch.float32).eval()
    n = sum(p.numel() for p in model.parameters())
    if n != N_PARAMS:
        sys.exit(f"made {n} parameters, expected {N_PARAMS} (Llama-3.2-1B's shape)")
    print(f"  initialised {n / 1e9:.3f} B parameters in {time.perf_counter() - t0:.0f} s", flush=True)
    for dtype in ("fp32", "bf16"):
        final = checkpoint_dir(cache, dtype)
        if checkpoint_ready(final):
            continue
        torch_dtype, _ = DTYPES[dtype]
        model = model.to(getattr(torch, torch_dtype))
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp), safe_serialization=True, max_shard_size="20GB")
        (tmp / "generation_config.json").unlink(missing_ok=True)
        hub_style_config(tmp / "config.json", torch_dtype)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        size = (final / "model.safetensors").stat().st_size
        print(f"  wrote {final} ({size / 2**30:.2f} GiB)", flush=True)


def vm_hwm_kib() -> int:
    """Peak RSS of this process image (VmHWM; ru_maxrss can carry over exec from a parent)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status: no VmHWM line")


def token_ids(batch: int, seq: int, vocab: int, seed: int = 0):
    import random
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(seq)] for _ in range(batch)]


def worker_pytorch(model_dir: pathlib.Path, dtype: str, threads: int, batch: int, seq: int,
                   repeats: int):
    import torch
    import transformers

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = transformers.LlamaForCausalLM.from_pretrained(
        str(model_dir), dtype=getattr(torch, DTYPES[dtype][0])).eval()
    load_s = time.perf_counter() - t0
    ids = torch.tensor(token_ids(batch, seq, model.config.vocab_size))
    times, cpu_times = [], []
    with torch.inference_mode():
        model(input_ids=ids)  # warm-up: allocator, oneDNN kernels, page faults
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            logits = model(input_ids=ids).logits
            cpu_times.append(time.process_time() - c0)
            times.append(time.perf_counter() - t0)
    if not torch.isfinite(logits).all():
        sys.exit(f"PyTorch {dtype}: non-finite logits")
    median = statistics.median(times)
    print(json.dumps(dict(load_s=load_s, median_s=median, times_s=times,
                          cpu_median_s=statistics.median(cpu_times),
                          tokens_per_s=batch * seq / median, peak_rss_kib=vm_hwm_kib(),
                          attn=model.config._attn_implementation, torch=torch.__version__)))


def worker_check(model_dir: pathlib.Path, causeway_cmd, threads: int):
    """Max |logit| difference of causeway against PyTorch in fp32 from the same stored weights
    (bf16 ones widened), on a 16-token prompt; both runs in this worker, not the timed ones."""
    import tempfile

    import h5py
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(threads)
    ids = token_ids(1, 16, json.loads((model_dir / "config.json").read_text())["vocab_size"], seed=1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "logits.h5"
        run = subprocess.run(causeway_cmd + ["--tokens", ",".join(map(str, ids)), "--out", str(out)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(first_line(run.stderr))
        with h5py.File(out, "r") as f:
            got = f["logits"][...]
    model = transformers.LlamaForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    print(json.dumps(dict(max_abs_diff=float(np.abs(got - ref).max()),
                          max_abs_logit=float(np.abs(ref).max()))))


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


class NotAvailable(Exception):
    pass


def first_line(text: str) -> str:
    """The error's message: the first line naming an error (an uncaught exception's what()
    follows a "terminate called" line), else the first line."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    named = [l for l in lines if re.search(r"error|what\(\)", l, re.I)]
    return (named or lines or ["(no message)"])[0]


def thread_env(threads: int):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def ensure_checkpoints(cache: pathlib.Path, dtypes, seed: int):
    missing = [d for d in dtypes if not checkpoint_ready(checkpoint_dir(cache, d))]
    if not missing:
        return
    cache.mkdir(parents=True, exist_ok=True)
    need = sum(N_PARAMS * DTYPES[d][1] for d in ("fp32", "bf16")
               if not checkpoint_ready(checkpoint_dir(cache, d)))
    free = shutil.disk_usage(cache).free
    if free < need * 1.1:
        sys.exit(f"{cache}: {free / 2**30:.1f} GiB free, the checkpoints need {need / 2**30:.1f} GiB")
    print(f"making the Llama-3.2-1B-shaped random checkpoints in {cache} (seed {seed}) ...",
          flush=True)
    subprocess.run([sys.executable, str(HERE), "--worker", "make", "--cache-dir", str(cache),
                    "--seed", str(seed)], check=True)


def run_pytorch(args, dtype, threads):
    cmd = [sys.executable, str(HERE), "--worker", "pytorch", "--dtypes", dtype, "--threads",
           str(threads), "--batch", str(args.batch), "--seq", str(args.seq), "--repeats",
           str(args.repeats), "--cache-dir", str(args.cache_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads))
    if out.returncode != 0:
        lines = [l for l in out.stderr.splitlines() if l.strip()]
        raise NotAvailable(lines[-1] if lines else f"exit status {out.returncode}")  # the exception
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(tokens_per_s=r["tokens_per_s"], peak_rss_gib=r["peak_rss_kib"] / 2**20,
                cpu_s=r["cpu_median_s"], note=f"load {r['load_s']:.1f} s, forwards {', '.join(f'{t:.2f}' for t in r['times_s'])} s")


def timed(cmd, env):
    """(wall seconds, peak RSS KiB, stdout, CPU seconds) of cmd under /usr/bin/time -v."""
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        err = out.stderr.split("\tCommand being timed:")[0]
        raise NotAvailable(first_line(err) if err.strip() else f"exit status {out.returncode}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", out.stderr))
    return wall, int(m.group(1)) if m else 0, out.stdout, cpu


def dtype_flag(args, binary, dtype):
    """Extra causeway arguments for a bf16 run: --causeway-dtype-flag, or --dtype if the
    command's --help offers it; none otherwise (the bf16 checkpoint's own dtype decides)."""
    if dtype == "fp32":
        return []
    if args.causeway_dtype_flag is not None:
        return args.causeway_dtype_flag.split()
    help_text = subprocess.run([str(binary), "logits", "--help"], capture_output=True, text=True).stdout
    return ["--dtype", dtype] if re.search(r"--dtype\b", help_text) else []


def run_causeway_bench(args, bench, model_dir, threads, extra):
    cmd = [str(bench), "--model", str(model_dir), "--batch", str(args.batch), "--seq",
           str(args.seq), "--threads", str(threads), "--repeats", str(args.repeats)] + extra
    _, rss_kib, stdout, _ = timed(cmd, thread_env(threads))
    r = json.loads(stdout.strip().splitlines()[-1])
    return dict(tokens_per_s=r["tokens_per_s"], peak_rss_gib=rss_kib / 2**20,
                cpu_s=r.get("cpu_median_s", float("nan")),
                note=f"causeway_bench_forward: load {r['load_s']:.1f} s, median {r['median_s']:.2f} s")


def run_causeway_logits(args, binary, model_dir, threads, extra):
    if args.batch != 1:
        raise NotAvailable("`causeway logits` runs one sequence; use --batch 1 or causeway_bench_forward")
    vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    ids = token_ids(1, args.seq, vocab)[0]
    env = thread_env(threads)

    def cmd(tokens):
        return [str(binary), "logits", "--model", str(model_dir), "--tokens",
                ",".join(map(str, tokens)), "--threads", str(threads), "--top", "1"] + extra

    timed(cmd(ids), env)  # warm-up: the checkpoint into the page cache
    full, full_cpu, one, rss = [], [], [], 0
    for _ in range(args.repeats):  # alternated, so a change in the machine's load hits both
        wall, peak, _, cpu = timed(cmd(ids), env)
        full.append(wall)
        full_cpu.append(cpu)
        rss = max(rss, peak)
        one.append(timed(cmd(ids[:1]), env))
    one_wall = statistics.median(r[0] for r in one)
    forward = statistics.median(full) - one_wall
    forward_cpu = statistics.median(full_cpu) - statistics.median(r[3] for r in one)
    if forward <= 0:
        raise NotAvailable(f"a {args.seq}-token run took no longer than a 1-token run "
                           f"({statistics.median(full):.2f} s vs {one_wall:.2f} s)")
    return dict(tokens_per_s=args.seq / forward, peak_rss_gib=rss / 2**20, cpu_s=forward_cpu,
                note=f"causeway logits: {statistics.median(full):.2f} s - 1-token run {one_wall:.2f} s")


def check_causeway(args, dtype):
    """One line: causeway's logits against PyTorch fp32 on the same weights, or why not."""
    model_dir = checkpoint_dir(args.cache_dir, dtype)
    binary = pathlib.Path(args.causeway)
    cmd = [str(binary.resolve()), "logits", "--model", str(model_dir), "--threads", "2", "--top", "1"]
    cmd += dtype_flag(args, binary, dtype)
    out = subprocess.run([sys.executable, str(HERE), "--worker", "check", "--dtypes", dtype,
                          "--cache-dir", str(args.cache_dir), "--causeway-cmd", json.dumps(cmd)],
                         capture_output=True, text=True, env=thread_env(2))
    if out.returncode != 0:
        lines = [l for l in out.stderr.splitlines() if l.strip()]
        return f"check {dtype}: not available: {lines[-1] if lines else out.returncode}"
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return (f"check {dtype}: max |logit| difference causeway vs PyTorch fp32 on the same weights "
            f"{r['max_abs_diff']:.2e} (largest |logit| {r['max_abs_logit']:.2f})")


def run_causeway(args, dtype, threads):
    binary = pathlib.Path(args.causeway)
    model_dir = checkpoint_dir(args.cache_dir, dtype)
    extra = dtype_flag(args, binary, dtype)
    bench = pathlib.Path(args.causeway_bench) if args.causeway_bench else \
        binary.parent / "bench" / "causeway_bench_forward"
    bench_error = None
    if bench.exists():
        try:
            return run_causeway_bench(args, bench, model_dir, threads, extra)
        except NotAvailable as e:
            bench_error = str(e)
    try:
        return run_causeway_logits(args, binary, model_dir, threads, extra)
    except NotAvailable as e:
        raise NotAvailable(f"{e}" + (f" (causeway_bench_forward: {bench_error})" if bench_error else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="timed forwards after one warm-up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=pathlib.Path, default=pathlib.Path("/tmp/causeway-bench/llama-1b-shape"))
    ap.add_argument("--causeway", help="causeway CLI binary (e.g. build/release/causeway); "
                                       "omitted: PyTorch only")
    ap.add_argument("--causeway-bench", help="causeway_bench_forward binary (default: bench/ "
                                             "next to --causeway, if it exists)")
    ap.add_argument("--causeway-dtype-flag", help="extra causeway arguments for bf16, e.g. "
                                                  "'--dtype bf16' (default: --dtype bf16 if "
                                                  "`causeway logits --help` lists --dtype)")
    ap.add_argument("--skip-pytorch", action="store_true")
    ap.add_argument("--no-check", action="store_true",
                    help="skip comparing causeway's logits with PyTorch's before timing")
    ap.add_argument("--causeway-cmd", help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=["make", "pytorch", "check"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker == "make":
        return worker_make(args.cache_dir, args.seed)
    if args.worker == "check":
        return worker_check(checkpoint_dir(args.cache_dir, args.dtypes[0]),
                            json.loads(args.causeway_cmd), 2)
    if args.worker == "pytorch":
        return worker_pytorch(checkpoint_dir(args.cache_dir, args.dtypes[0]), args.dtypes[0],
                              args.threads[0], args.batch, args.seq, args.repeats)

    ensure_checkpoints(args.cache_dir, args.dtypes, args.seed)
    if args.causeway and not args.no_check:
        for dtype in args.dtypes:
            print(check_causeway(args, dtype), flush=True)
    print(f"batch {args.batch} x {args.seq} tokens, {args.repeats} timed forwards after 1 warm-up; "
          f"machine load average {os.getloadavg()[0]:.1f}", flush=True)
    # CPU s per forward (all threads) is the fairer figure when other jobs share the machine.
    header = (f"{'side':<9} {'dtype':<5} {'threads':>7} {'tokens/s':>9} {'CPU s/fwd':>9} "
              f"{'peak RSS GiB':>12} {'causeway/pytorch':>16}")
    rows = []
    for dtype in args.dtypes:
        for t in args.threads:
            torch_r = None
            for side in ("pytorch", "causeway"):
                if side == "pytorch" and args.skip_pytorch or side == "causeway" and not args.causeway:
                    continue
                try:
                    r = (run_pytorch if side == "pytorch" else run_causeway)(args, dtype, t)
                except NotAvailable as e:
                    line = f"{side:<9} {dtype:<5} {t:>7}   {side}: not available: {e}"
                    print(line, flush=True)
                    rows.append(line)
                    continue
                if side == "pytorch":
                    torch_r = r
                ratio = f"{r['tokens_per_s'] / torch_r['tokens_per_s']:.2f}" if side == "causeway" and torch_r else ""
                line = (f"{side:<9} {dtype:<5} {t:>7} {r['tokens_per_s']:>9.1f} {r['cpu_s']:>9.2f} "
                        f"{r['peak_rss_gib']:>12.2f} {ratio:>16}")
                print(f"{line}   ({r['note']})", flush=True)
                rows.append(line)
    print("\n" + header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
