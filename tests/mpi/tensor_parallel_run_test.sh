#!/usr/bin/env bash
# Issue 12: `causeway run` on a tensor-parallel replica. On tiny GPT-2, Llama 3 (grouped-query
# attention: tp = 4 replicates its 2 key/value heads) and GPT-NeoX, tp = 2 and tp = 4 give the
# result file of tp = 1 within 1e-5: activation patching of heads (z, k, pattern), the residual
# stream and MLP neurons, attn_head_every, zero / mean / resample ablation, causal tracing
# (noise), logit-difference and full-vocabulary metrics (kl, prob, logprob, rank, accuracy,
# reduced over the ranks' vocabulary blocks), and the cached
# sharded hooks in /activations (gathered whole), attribution patching (AtP of heads and
# neurons, AtP* with the q/k fix and GradDrop on attn_head_every). dp = 2 x tp = 2 on 4 ranks
# equals 1 rank; a tp = 2 job killed by SIGKILL, or one of its ranks sent SIGTERM, then
# --resume'd equals an uninterrupted run;
# attribution's verify_top and a tp that does not fit are refused before any work.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: needs python3-h5py"; exit 77; }
FAM="$SRC/tests/data/families"

# tp_config FILE MODEL PAIRS NEURON_POS
tp_config() {
  cat > "$1" <<TOML
[model]
path = "$2"
threads = 1

[data]
file = "$3"

[output]
path = "$WORK/unused.h5"
cache = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_k", "blocks.1.attn.hook_pattern",
         "blocks.0.mlp.hook_post", "blocks.1.hook_resid_pre"]

[parallel]
pairs_per_item = 2

[[experiment]]
name = "heads_by_pos"
sweep = "attn_head_out"
positions = "each"

[[experiment]]
name = "k_heads_kl"
sweep = "attn_head_k"
metric = "kl"

[[experiment]]
name = "pattern_prob"
sweep = "attn_head_pattern"
direction = "noising"
metric = "prob"

[[experiment]]
name = "resid_noising_rank"
sweep = "resid_pre"
positions = "each"
direction = "noising"
metric = "rank"

[[experiment]]
name = "neurons"
sweep = "mlp_neuron"
positions = $4
metric = "normalized"

[[experiment]]
name = "head_every"
sweep = "attn_head_every"

[[experiment]]
name = "zero_heads"
kind = "ablation"
ablation = "zero"
sweep = "attn_head_out"
metric = "accuracy"

[[experiment]]
name = "mean_neurons"
kind = "ablation"
ablation = "mean"
sweep = "mlp_neuron"
positions = $4
metric = "logprob"

[[experiment]]
name = "resample_q"
kind = "ablation"
ablation = "resample"
samples = 2
sweep = "attn_head_q"

[[experiment]]
name = "trace_heads"
kind = "noise"
sweep = "attn_head_out"
noise_samples = 2

[[experiment]]
name = "trace_mlp"
kind = "noise"
sweep = "mlp_out"
positions = "each"
noise_samples = 2
window = 2

[[experiment]]
name = "atp_heads"
kind = "attribution"
sweep = "attn_head_out"
positions = "each"

[[experiment]]
name = "atp_star_every"
kind = "attribution"
sweep = "attn_head_every"
direction = "noising"
qk_fix = true
grad_drop = true

[[experiment]]
name = "atp_neurons"
kind = "attribution"
sweep = "mlp_neuron"
positions = $4
TOML
}

# Every dataset under /experiments and /activations of A equals B's within 1e-5 (NaN where A
# has NaN), and B has no other datasets.
same_files() {
  "$PY" - "$1" "$2" <<'PYEOF' || fail "$2 differs from $1"
import sys
import h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def datasets(f):
    out = {}
    for top in ("experiments", "activations"):
        if top in f:
            f[top].visititems(lambda n, o: out.__setitem__(f"{top}/{n}", o) if isinstance(o, h5py.Dataset) and "/axes/" not in f"/{n}" else None)
    return out
da, db = datasets(a), datasets(b)
assert sorted(da) == sorted(db), (sorted(set(da) ^ set(db)))
worst = 0.0
for name, x in da.items():
    x, y = x[()], db[name][()]
    assert x.shape == y.shape, (name, x.shape, y.shape)
    if x.dtype.kind == "f":
        assert np.array_equal(np.isnan(x), np.isnan(y)), (name, "NaN in other places")
        d = float(np.nanmax(np.abs(x - y))) if x.size and not np.all(np.isnan(x)) else 0.0
        assert d <= 1e-5, (name, d)
        worst = max(worst, d)
    else:
        assert np.array_equal(x, y), name
assert len(da) >= 40, len(da)
print(f"  {len(da)} datasets equal, max |difference| {worst:.1e}")
PYEOF
}

run_np() {  # run_np NP CONFIG OUT [ARGS...]
  local np=$1 cfg=$2 out=$3
  shift 3
  "${MPIRUN[@]}" -np "$np" "$CAUSEWAY" run "$cfg" --out "$out" --overwrite --quiet "$@" > "$WORK/log.txt" 2>&1 ||
    fail "$cfg on $np ranks $*: $(tail -3 "$WORK/log.txt")"
}

for F in tiny-gpt2 families/llama3 families/gpt_neox; do
  M="$SRC/tests/data/$F"
  name=$(basename "$F")
  if [ "$F" = tiny-gpt2 ]; then
    pairs="$SRC/tests/data/tiny-gpt2-patching-pairs.jsonl"
  else
    pairs="$WORK/$name-pairs.jsonl"
    "$PY" - "$FAM/$name-patching-goldens.json" "$pairs" <<'PYEOF'
import json, sys
pairs = json.load(open(sys.argv[1]))["pairs"]
with open(sys.argv[2], "w") as f:
    for p in pairs:
        f.write(json.dumps({k: p[k] for k in ("clean", "corrupted", "answer", "wrong")}) + "\n")
PYEOF
  fi
  tp_config "$WORK/$name.toml" "$M" "$pairs" 5
  echo "== $F"
  "$CAUSEWAY" run "$WORK/$name.toml" --out "$WORK/$name-tp1.h5" --quiet
  for tp in 2 4; do
    run_np "$tp" "$WORK/$name.toml" "$WORK/$name-tp$tp.h5" --tp "$tp" --tp-within-node
    echo " tp $tp:"
    same_files "$WORK/$name-tp1.h5" "$WORK/$name-tp$tp.h5"
  done
done

echo "== llama3: 2 replicas x 2 shards, dynamic schedule"
run_np 4 "$WORK/llama3.toml" "$WORK/llama3-dp2tp2.h5" --tp 2 --schedule dynamic
same_files "$WORK/llama3-tp1.h5" "$WORK/llama3-dp2tp2.h5"
h5dump -a /meta/rank_layout "$WORK/llama3-dp2tp2.h5" | grep -q "4 ranks = 2 data-parallel x 2 tensor-parallel" ||
  fail "rank layout not recorded"

echo "== llama3: tp 2 killed by SIGKILL after 3 items, then --resume"
total=$(items_done "$WORK/llama3-tp1.h5")
set +e
CAUSEWAY_FAULT_KILL_AFTER_ITEMS=3 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_KILL_AFTER_ITEMS -np 2 \
  "$CAUSEWAY" run "$WORK/llama3.toml" --tp 2 --out "$WORK/killed.h5" --quiet > "$WORK/killed.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
done_before=$(items_done "$WORK/killed.h5")
[ "$done_before" -gt 0 ] && [ "$done_before" -lt "$total" ] || fail "kill did not land part-way ($done_before of $total)"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/llama3.toml" --tp 2 --out "$WORK/killed.h5" --resume \
  --log-level debug > "$WORK/resumed.log" 2>&1 || fail "resume failed: $(tail -5 "$WORK/resumed.log")"
recomputed=$(grep -c "^\[rank [0-9]*\] item .* done in" "$WORK/resumed.log" || true)
echo "  killed with $done_before of $total items done; the resumed run computed $recomputed"
[ "$recomputed" -eq $((total - done_before)) ] || fail "resumed run computed $recomputed items, expected $((total - done_before)) (counted once per replica)"
same_files "$WORK/llama3-tp1.h5" "$WORK/killed.h5"

echo "== llama3: SIGTERM to one rank of a tp 2 replica; both stop at an agreed point, then --resume"
rm -f "$WORK/term.h5"
CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=100 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS -np 2 \
  "$CAUSEWAY" run "$WORK/llama3.toml" --tp 2 --out "$WORK/term.h5" > "$WORK/term.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  [ -f "$WORK/term.h5" ] && [ "$(items_done "$WORK/term.h5" 2>/dev/null || echo 0)" -ge 4 ] && break
  sleep 0.1
done
one_rank=$(pgrep -P "$pid" | tail -1)
[ -n "$one_rank" ] || fail "no rank processes under mpiexec $pid"
kill -TERM "$one_rank"
set +e
timeout 60 tail --pid="$pid" -f /dev/null
wait "$pid"
rc=$?
set -e
[ "$rc" -eq 143 ] || fail "SIGTERM to one rank: exit $rc, expected 143: $(tail -5 "$WORK/term.log")"
grep -q "^causeway: interrupted by SIGTERM; [0-9]* of $total items done" "$WORK/term.log" ||
  fail "no interrupted line: $(tail -5 "$WORK/term.log")"
stopped=$(items_done "$WORK/term.h5")
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/llama3.toml" --tp 2 --out "$WORK/term.h5" --resume --quiet ||
  fail "resume after SIGTERM failed"
echo "  stopped with $stopped of $total items done, exit 143; resumed:"
same_files "$WORK/llama3-tp1.h5" "$WORK/term.h5"

echo "== refused before any work"
cat > "$WORK/atp.toml" <<TOML
[model]
path = "$FAM/llama3"
threads = 1

[data]
file = "$WORK/llama3-pairs.jsonl"

[output]
path = "$WORK/atp.h5"

[[experiment]]
name = "atp"
kind = "attribution"
sweep = "attn_head_out"
verify_top = 3
TOML
out=$("${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/atp.toml" --tp 2 2>&1) && fail "verify_top under tp 2 accepted"
grep -q "verifies attribution with verify_top" <<< "$out" || fail "verify_top under tp: $out"
[ "$(grep -c "error" <<< "$out")" -eq 1 ] || fail "more than one error line: $out"
out=$("${MPIRUN[@]}" -np 3 "$CAUSEWAY" run "$WORK/llama3.toml" --tp 3 --out "$WORK/no.h5" 2>&1) && fail "tp 3 accepted"
grep -q "tp: 3 does not divide the model's 4 attention heads" <<< "$out" || fail "tp 3: $out"
out=$("${MPIRUN[@]}" -np 3 "$CAUSEWAY" run "$WORK/llama3.toml" --tp 2 --out "$WORK/no.h5" 2>&1) && fail "3 ranks for tp 2 accepted"
grep -q "does not divide the 3 ranks" <<< "$out" || fail "3 ranks: $out"
[ ! -e "$WORK/no.h5" ] && [ ! -e "$WORK/atp.h5" ] || fail "a refused job wrote its output"
echo PASS
