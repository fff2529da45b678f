#!/usr/bin/env bash
# The same head sweep with 1 rank x 1 thread and 2 ranks x 1 thread: prints the speed-up and
# the share of wall time the busiest rank spent in HDF5 writes (from causeway's summary).
#   bench/mpi_scaling.sh [MODEL_DIR] [PAIRS]
# MODEL_DIR: a GPT-2 checkpoint with its tokenizer (default: the GPT-2-small-shaped random one
# tests/reference/make_goldens.py --gpt2-small writes to /tmp/gpt2-small-random).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:-/tmp/gpt2-small-random}
PAIRS=${2:-32}
CAUSEWAY=${CAUSEWAY:-$ROOT/build/release/causeway}
WORK=$(mktemp -d /tmp/causeway-mpi-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[ -f "$MODEL/model.safetensors" ] || { echo "no checkpoint in $MODEL (see tests/reference/README.md)" >&2; exit 2; }
MPIRUN=(mpiexec --bind-to core)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

cat > "$WORK/bench.toml" <<TOML
[model]
path = "$MODEL"
threads = 1
[data]
generator = "ioi"
n = $PAIRS
seed = 0
[output]
path = "$WORK/unused.h5"
[parallel]
pairs_per_item = 8
[[experiment]]
name = "heads"
sweep = "attn_head_out"
positions = "all"
TOML

run() {  # run RANKS -> prints "seconds write_seconds"
  local out
  out=$("${MPIRUN[@]}" -np "$1" "$CAUSEWAY" run "$WORK/bench.toml" --out "$WORK/r$1.h5" --overwrite --top 0 2>/dev/null | grep '^wrote')
  echo "$out" | sed -E 's/.* run in ([0-9.]+) s; HDF5 writes ([0-9.]+) s.*/\1 \2/'
}
read -r t1 w1 < <(run 1)
read -r t2 w2 < <(run 2)
h5diff -d 1e-5 "$WORK/r1.h5" "$WORK/r2.h5" /experiments/heads/effect /experiments/heads/effect > /dev/null ||
  echo "warning: 1-rank and 2-rank effects differ beyond 1e-5" >&2
awk -v t1="$t1" -v t2="$t2" -v w1="$w1" -v w2="$w2" -v p="$PAIRS" 'BEGIN {
  printf "head sweep (attn_head_out, all positions), %d IOI pairs, 1 thread per rank\n", p
  printf "  1 rank : %7.2f s, HDF5 writes %.3f s (%.2f%%)\n", t1, w1, 100 * w1 / t1
  printf "  2 ranks: %7.2f s, HDF5 writes %.3f s (%.2f%%)\n", t2, w2, 100 * w2 / t2
  printf "  speed-up 2 ranks vs 1: %.2fx (target >= 1.8x); HDF5 share target < 5%%\n", t1 / t2 }'
