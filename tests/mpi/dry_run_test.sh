#!/usr/bin/env bash
# Issue 12 (sizing): `causeway run --dry-run` reads no weights and writes nothing; its memory
# estimate is within 20% of the peak RSS the job then has (1 rank, and each rank at tp = 2);
# --ranks/--tp size other layouts
# (the weight shard shrinks with tp) and a tp that does not fit is refused before any work.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
write_config "$WORK/run.toml" ""
mib() { sed -n 's/^memory per rank (estimate): .* = \([0-9.]*\) MiB$/\1/p'; }
weights_mib() { sed -n 's/^memory per rank (estimate): weights \([0-9.]*\) MiB.*/\1/p'; }

for dtype in f32 bf16; do
  sed "s/^threads = 1/threads = 1\ndtype = \"$dtype\"/" "$WORK/run.toml" > "$WORK/$dtype.toml"
  out=$("$CAUSEWAY" run "$WORK/$dtype.toml" --dry-run --out "$WORK/$dtype.h5")
  echo "$out" | grep -q "^ranks: 1 = 1 replica x 1 tensor-parallel shard$" || fail "$out"
  echo "$out" | grep -q "heads_by_pos .*\[layer 2, pos 8, head 4\]" || fail "no grid: $out"
  [ ! -e "$WORK/$dtype.h5" ] || fail "--dry-run wrote $WORK/$dtype.h5"
  estimate=$(echo "$out" | mib)
  [ -n "$estimate" ] || fail "no memory line: $out"
  # Peak RSS of the real job (children's maximum, from the kernel).
  peak=$("$PY" -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)' \
    "$CAUSEWAY" run "$WORK/$dtype.toml" --out "$WORK/$dtype.h5" --quiet)
  "$PY" -c "import sys; e, p = $estimate, $peak; sys.exit(0 if abs(e - p) <= 0.2 * p else 1)" ||
    fail "$dtype: estimate $estimate MiB vs peak RSS $peak MiB"
  echo "$dtype: estimate $estimate MiB, peak RSS $peak MiB"
done

# tp = 2: the per-rank estimate against the largest rank's peak RSS of the real 2-rank job
# (mpiexec's children are reaped by it, so their maximum reaches RUSAGE_CHILDREN).
estimate=$("$CAUSEWAY" run "$WORK/f32.toml" --dry-run --ranks 2 --tp 2 | mib)
peak=$("$PY" -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)' \
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/f32.toml" --tp 2 --out "$WORK/tp2.h5" --quiet)
"$PY" -c "import sys; e, p = $estimate, $peak; sys.exit(0 if abs(e - p) <= 0.2 * p else 1)" ||
  fail "tp 2: estimate $estimate MiB per rank vs peak RSS $peak MiB"
echo "tp 2: estimate $estimate MiB per rank, largest rank's peak RSS $peak MiB"

# Layouts sized without running them: 8 ranks as 4 x 2 hold half the weights per rank.
one=$("$CAUSEWAY" run "$WORK/f32.toml" --dry-run --ranks 8 | weights_mib)
two=$("$CAUSEWAY" run "$WORK/f32.toml" --dry-run --ranks 8 --tp 2)
echo "$two" | grep -q "^ranks: 8 = 4 replicas x 2 tensor-parallel shards$" || fail "$two"
"$PY" -c "import sys; sys.exit(0 if $(echo "$two" | weights_mib) < 0.6 * $one else 1)" ||
  fail "tp 2 weight shard not about half of $one MiB: $two"
out=$("$CAUSEWAY" run "$WORK/f32.toml" --dry-run --ranks 6 --tp 3 2>&1) && fail "tp 3 accepted"
[ "$out" = "causeway: error: $SRC/tests/data/tiny-gpt2/config.json: tp: 3 does not divide the model's 4 attention heads" ] || fail "$out"
out=$("$CAUSEWAY" run "$WORK/f32.toml" --dry-run --ranks 3 --tp 2 2>&1) && fail "3 ranks for tp 2 accepted"
[ "$out" = "causeway: error: --tp: 2 does not divide the 3 ranks of the job" ] || fail "$out"
echo PASS
