#!/usr/bin/env bash
# Issue 11: `causeway run` on the tiny Llama 3 (GQA, llama3 rope scaling), GPT-NeoX (parallel
# residual, partial rotary) and Gemma 2 (soft-caps, sliding window) checkpoints: on 1 rank, on
# 2 ranks and with bf16 weights. The 2-rank file equals the 1-rank file; the means equal
# TransformerLens' patching functions (tests/data/families/F-patching-goldens) within 1e-4;
# the bf16 run is close to fp32 (it rounds the weights) but not identical.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: needs python3-h5py"; exit 77; }
FAM="$SRC/tests/data/families"

for F in llama3 gpt_neox gemma2; do
  echo "== $F"
  "$PY" - "$FAM/$F-patching-goldens.json" "$WORK/$F-pairs.jsonl" <<'PYEOF'
import json, sys
pairs = json.load(open(sys.argv[1]))["pairs"]
with open(sys.argv[2], "w") as f:
    for p in pairs:
        f.write(json.dumps({k: p[k] for k in ("clean", "corrupted", "answer", "wrong")}) + "\n")
PYEOF
  for dtype in f32 bf16; do
    cat > "$WORK/$F-$dtype.toml" <<TOML
[model]
path = "$FAM/$F"
threads = 1
dtype = "$dtype"

[data]
file = "$WORK/$F-pairs.jsonl"

[output]
path = "$WORK/$F-$dtype.h5"

[[experiment]]
name = "resid_pre"
sweep = "resid_pre"
positions = "each"
metric = "normalized"

[[experiment]]
name = "head_out"
sweep = "attn_head_out"
positions = "each"
metric = "normalized"

[[experiment]]
name = "mlp_out_noising"
sweep = "mlp_out"
positions = "each"
direction = "noising"
metric = "normalized"
TOML
  done
  "$CAUSEWAY" run "$WORK/$F-f32.toml" --quiet
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/$F-f32.toml" --out "$WORK/$F-2ranks.h5" --quiet
  same_datasets "$WORK/$F-f32.h5" "$WORK/$F-2ranks.h5"
  "$CAUSEWAY" run "$WORK/$F-bf16.toml" --quiet
  "$PY" - "$FAM/$F-patching-goldens.safetensors" "$WORK/$F-f32.h5" "$WORK/$F-bf16.h5" <<'PYEOF' || fail "$F: results differ from TransformerLens"
import json, struct, sys
import h5py, numpy as np

def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    def get(key):
        t = head[key]
        assert t["dtype"] == "F32", key
        a, b = t["data_offsets"]
        return np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"])
    return get

golden = safetensors(sys.argv[1])
f32, bf16 = h5py.File(sys.argv[2], "r"), h5py.File(sys.argv[3], "r")
checks = {"resid_pre": "get_act_patch_resid_pre.denoising.mean",
          "head_out": "get_act_patch_attn_head_out_by_pos.denoising.mean",
          "mlp_out_noising": "get_act_patch_mlp_out.noising.mean"}
for name, key in checks.items():
    ours = f32[f"experiments/{name}/mean"][()]
    ref = golden(key)
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    err = float(np.max(np.abs(ours - ref)))
    assert err <= 1e-4, (name, err)
    half = bf16[f"experiments/{name}/mean"][()]
    d = float(np.max(np.abs(half - ours)))
    assert 0 < d < 0.1, (name, "bf16 vs f32", d)
    print(f"  {name}: max |causeway - TL| {err:.2e}; bf16 vs f32 {d:.2e}")
PYEOF
done
echo PASS
