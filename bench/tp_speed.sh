#!/usr/bin/env bash
# Tensor-parallel speed (issue 12): one replica's forward at tp = 1 (1 thread), tp = 2 (two
# ranks of 1 thread each, under mpiexec) and tp = 1 (2 threads), on GPT-2-small-shaped and
# Llama-3.2-1B-shaped random checkpoints (fp32): tokens/s, the share of wall time inside the
# replica's collectives, per-rank peak RSS, and the ratios the issue targets (tp 2 >= 1.6x
# tp 1 on the Llama shape; per-rank RSS <= 0.6x).
#
#   bench/tp_speed.sh BUILD_DIR [CACHE_DIR]     (CACHE_DIR default /tmp/causeway-bench)
#
# The checkpoints are made on first use: GPT-2 small by make_random_checkpoint.py (standard
# library), the Llama shape by family_forward_vs_pytorch.py's maker (needs torch +
# transformers: $PYTHON, default /opt/refvenv/bin/python). Env: BATCH (1), SEQ (128),
# REPEATS (3), ROWS (last: logits of each row's last token, as patching reads them; or all),
# SHAPES ("gpt2-small llama-1b").
set -euo pipefail
BUILD=${1:?usage: tp_speed.sh BUILD_DIR [CACHE_DIR]}
CACHE=${2:-/tmp/causeway-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="$BUILD/bench/causeway_bench_tp_forward"
PYTHON=${PYTHON:-/opt/refvenv/bin/python}
BATCH=${BATCH:-1} SEQ=${SEQ:-128} REPEATS=${REPEATS:-3} ROWS=${ROWS:-last}
SHAPES=${SHAPES:-gpt2-small llama-1b}
# Unbound: mpiexec binds a rank to one core by default, which would put tp 1's two threads on it.
MPIRUN=(mpiexec --allow-run-as-root --oversubscribe --bind-to none)
[ -x "$BENCH" ] || { echo "no $BENCH (cmake --build $BUILD --target causeway_bench_tp_forward)"; exit 1; }

GPT2="$CACHE/gpt2-small" LLAMA="$CACHE/llama-1b-shape/fp32"
[ -f "$GPT2/model.safetensors" ] || python3 "$HERE/make_random_checkpoint.py" "$GPT2"
[ -f "$LLAMA/model.safetensors" ] ||
  "$PYTHON" "$HERE/family_forward_vs_pytorch.py" --worker make --cache-dir "$CACHE/llama-1b-shape"

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "batch $BATCH x $SEQ tokens, logits rows: $ROWS, $REPEATS timed forwards after 1 warm-up"
for shape in $SHAPES; do
  model=$GPT2
  [ "$shape" = llama-1b ] && model=$LLAMA
  args=(--model "$model" --batch "$BATCH" --seq "$SEQ" --repeats "$REPEATS" --rows "$ROWS")
  one=$("${MPIRUN[@]}" -np 1 "$BENCH" "${args[@]}" --threads 1)
  two=$("${MPIRUN[@]}" -np 2 "$BENCH" "${args[@]}" --threads 1)
  threads=$("${MPIRUN[@]}" -np 1 "$BENCH" "${args[@]}" --threads 2)
  python3 - "$shape" "$one" "$two" "$threads" <<'EOF'
import json, sys
shape, runs = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
names = ["tp 1, 1 thread", "tp 2, 1 thread each", "tp 1, 2 threads"]
print(f"\n{shape}")
print(f"  {'':<22} {'tokens/s':>9} {'s/forward':>9} {'in collectives':>15} "
      f"{'compute CPU s/fwd':>18} {'peak RSS GiB per rank':>22}")
for name, r in zip(names, runs):
    share = ", ".join(f"{s:.1%}" for s in r["collective_share"]) if r["tp"] > 1 else "-"
    rss = ", ".join(f"{g:.2f}" for g in r["peak_rss_gib"])
    cpu = ", ".join(f"{c:.3f}" for c in r["compute_cpu_s_per_forward"])
    print(f"  {name:<22} {r['tokens_per_s']:>9.1f} {r['seconds_per_forward']:>9.3f} {share:>15} "
          f"{cpu:>18} {rss:>22}")
base = runs[0]
# CPU seconds outside the collectives: what other jobs' load does not inflate. The tp 2 figure
# takes its slower rank.
cpu_ratio = base["compute_cpu_s_per_forward"][0] / max(runs[1]["compute_cpu_s_per_forward"])
print(f"  tp 2 / tp 1 (1 thread) speed: {runs[1]['tokens_per_s'] / base['tokens_per_s']:.2f}x wall, "
      f"{cpu_ratio:.2f}x by compute CPU per rank; "
      f"tp 1 at 2 threads / 1 thread: {runs[2]['tokens_per_s'] / base['tokens_per_s']:.2f}x wall; "
      f"tp 2 per-rank peak RSS / tp 1: {max(runs[1]['peak_rss_gib']) / base['peak_rss_gib'][0]:.2f}x")
EOF
done
