#!/usr/bin/env bash
# Issue 13: edge experiments and circuits through `causeway run` on the tiny GPT-2. EAP and
# edge patching in the file equal the TransformerLens reference (tests/data/circuits), and
# freeze-all path patching equals edge patching; 1 rank, 3 ranks and a
# SIGKILLed 2-rank run finished with --resume give the same file, circuits included; every
# circuit's faithfulness curve runs from the fully ablated run (0) to the clean run (1); bad
# edge configs stop before any work with one line and exit 2.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: needs python3-h5py"; exit 77; }

cat > "$WORK/edges.toml" <<TOML
[model]
path = "$SRC/tests/data/tiny-gpt2"
threads = 1

[data]
file = "$SRC/tests/data/tiny-gpt2-patching-pairs.jsonl"

[output]
path = "$WORK/unused.h5"

[parallel]
pairs_per_item = 2

[[experiment]]
name = "eap"
kind = "edges"
method = "eap"

[[experiment]]
name = "eap_ig"
kind = "edges"
method = "eap_ig_activations"
steps = 2

[[experiment]]
name = "exact"
kind = "edges"
method = "edge_patching"
direction = "denoising"

[[experiment]]
name = "direct_paths"
kind = "edges"
method = "path_patching"
freeze = "all"
direction = "denoising"

[[experiment]]
name = "into_last_queries"
kind = "path_patching"
receivers = ["A1.0.Q", "A1.1.Q", "A1.2.Q", "A1.3.Q"]

[[circuit]]
name = "acdc"
method = "acdc"
threshold = 0.02

[[circuit]]
name = "eap_top"
method = "top"
experiment = "eap"
size = 12
ablation = "mean"
TOML

"$CAUSEWAY" run "$WORK/edges.toml" --out "$WORK/one.h5" > "$WORK/one.log" 2>&1 || fail "1 rank: $(tail -5 "$WORK/one.log")"
grep -q "circuit acdc: .* edges kept" "$WORK/one.log" || fail "no circuit summary: $(tail -5 "$WORK/one.log")"
grep -q "A[0-9.]*->" "$WORK/one.log" || fail "top edges are not printed by name"
"${MPIRUN[@]}" -np 3 "$CAUSEWAY" run "$WORK/edges.toml" --out "$WORK/three.h5" --quiet ||
  fail "3 ranks failed"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/edges.toml" --out "$WORK/two.h5" --quiet ||
  fail "2 ranks failed"
# Issue 21: ACDC's rows are split over the ranks and reduced exactly, so its circuit (edges,
# scores, faithfulness curve, attributes) is bit for bit the same on 1, 2 and 3 ranks.
for f in two three; do
  h5diff "$WORK/one.h5" "$WORK/$f.h5" /circuits/acdc /circuits/acdc > /dev/null ||
    fail "ACDC on $f ranks differs from 1 rank: $(h5diff "$WORK/one.h5" "$WORK/$f.h5" /circuits/acdc /circuits/acdc | head -5)"
done

# SIGKILL after 2 items on each of 2 ranks, then --resume.
set +e
CAUSEWAY_FAULT_KILL_AFTER_ITEMS=2 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_KILL_AFTER_ITEMS -np 2 \
  "$CAUSEWAY" run "$WORK/edges.toml" --out "$WORK/killed.h5" > "$WORK/killed.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
done_before=$(items_done "$WORK/killed.h5")
total=$(items_done "$WORK/one.h5")
[ "$done_before" -gt 0 ] && [ "$done_before" -lt "$total" ] || fail "kill did not land part-way ($done_before of $total items)"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/edges.toml" --out "$WORK/killed.h5" --resume --quiet ||
  fail "resume failed"

for f in three killed; do
  same_datasets "$WORK/one.h5" "$WORK/$f.h5"
  for d in $(h5ls -r "$WORK/one.h5" | awk '$2 == "Dataset" {print $1}' | grep '^/circuits/'); do
    h5diff -d 1e-6 "$WORK/one.h5" "$WORK/$f.h5" "$d" "$d" > /dev/null || fail "$d differs in $f.h5"
  done
done

"$PY" - "$WORK/one.h5" "$SRC/tests/data/circuits/gpt2-circuit-goldens.safetensors" <<'PYEOF'
import json, struct, sys
import h5py, numpy as np

def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I32": np.int32}[v["dtype"]]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).reshape(v["shape"])
    return out

f = h5py.File(sys.argv[1], "r")
g = safetensors(sys.argv[2])
eap = f["experiments/eap"]
assert eap["effect"].dims[1].label == "sender" and eap["effect"].dims[2].label == "receiver"
senders = [s.decode() if isinstance(s, bytes) else s for s in eap["axes/sender"][:]]
assert senders[0] == "Resid Start" and senders[1] == "A0.0", senders
# The first 4 pairs are the reference's; EAP holds the estimated change of the metric.
err = np.abs(eap["effect"][:4] - g["eap/noising"]).max()
assert err < 1e-4, f"EAP differs from TransformerLens by {err}"
assert (eap["edge_mask"][:] == g["graph/edge_mask"]).all()
# Exact denoising edge patching: the golden holds the patched metric, the file the change.
ex = f["experiments/exact"]
changed = ex["effect"][:4] + ex["baselines/corrupted_logit_diff"][:4][:, None, None] * g["graph/edge_mask"]
err = np.abs(changed - g["edge_patch/denoising"]).max()
assert err < 1e-4, f"edge patching differs from TransformerLens by {err}"
# Path patching with everything frozen leaves each edge's direct path: edge patching.
err = np.abs(f["experiments/direct_paths/effect"][:] - ex["effect"][:]).max()
assert err < 1e-5, f"freeze-all path patching differs from edge patching by {err}"
for name in ("acdc", "eap_top"):
    c = f["circuits/" + name]
    rec = c["faithfulness/recovered"][:]
    n = c["faithfulness/edges"][:]
    assert n[0] == 0 and n[-1] == c.attrs["graph_edges"] == 110, n
    assert abs(rec[0]) < 1e-6 and abs(rec[-1] - 1) < 1e-4, rec
    assert len(c["edges"]) > 0 and len(c["edges"]) == len(c["scores"])
assert len(f["circuits/eap_top/edges"]) == 12
print(f"  EAP and edge patching equal TransformerLens (max err {err:.1e}); circuits: acdc keeps "
      f"{len(f['circuits/acdc/edges'])} edges, recovering {f['circuits/acdc'].attrs['recovered']:.2f}")
PYEOF

# Bad configs stop before any work, one line, exit 2.
expect_refusal() {  # NAME SED-EXPRESSION PATTERN [EXTRA ARGS]
  sed -e "$2" "$WORK/edges.toml" > "$WORK/$1.toml"
  set +e
  "$CAUSEWAY" run "$WORK/$1.toml" --out "$WORK/$1.h5" "${@:4}" > "$WORK/$1.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "$1: exit $rc, expected 2: $(cat "$WORK/$1.log")"
  grep -q "$3" "$WORK/$1.log" || fail "$1: message lacks '$3': $(cat "$WORK/$1.log")"
  [ "$(wc -l < "$WORK/$1.log")" -eq 1 ] || fail "$1: more than one line: $(cat "$WORK/$1.log")"
  [ ! -e "$WORK/$1.h5" ] || fail "$1: wrote a file"
}
expect_refusal bad_receiver 's/"A1.3.Q"/"A1.9.Q"/' "'A1.9.Q' is not a receiver of this model"
expect_refusal bad_method 's/method = "eap"$/method = "eap_magic"/' "unknown edge method 'eap_magic'"
expect_refusal bad_ranking 's/experiment = "eap"/experiment = "into_last_queries"/' "is not an experiment of kind = \"edges\""
expect_refusal under_tp 's/pairs_per_item = 2/pairs_per_item = 2\ntp = 2/' "edge experiments and circuits run with tp = 1"
echo PASS
