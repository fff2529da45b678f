#!/usr/bin/env bash
# Issue 10 (A10, C): prompts of different lengths on 1 and 2 ranks. Clean and corrupted of
# different lengths once corrupted the heap ("malloc(): corrupted top size") and hung; a
# per-position sweep over prompts of different lengths averaged different tokens. Both must be
# refused at once, with one error line naming the line / the key, exit 2 and no result file.
source "$(dirname "$0")/common.sh"

cat > "$WORK/unequal.jsonl" <<'JSONL'
{"clean": [763, 890, 970, 680, 446, 444, 548, 898], "corrupted": [828, 890, 970, 680, 446, 444, 548, 898], "answer": 657, "wrong": 355}
{"clean": [308, 984, 715, 601, 950], "corrupted": [308, 984, 715, 356, 950, 974, 329, 643, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], "answer": 766, "wrong": 677}
{"clean": [872, 332, 613, 870, 583, 694, 539, 337], "corrupted": [682, 332, 613, 870, 583, 694, 539, 337], "answer": 577, "wrong": 957}
JSONL
cat > "$WORK/ragged.jsonl" <<'JSONL'
{"clean": [763, 890, 970, 680, 446], "corrupted": [828, 890, 970, 680, 446], "answer": 657, "wrong": 355}
{"clean": [308, 984, 715, 601, 950, 972, 329, 643], "corrupted": [308, 984, 715, 356, 950, 974, 329, 643], "answer": 766, "wrong": 677}
{"clean": [872, 332, 613, 870, 583, 694], "corrupted": [682, 332, 613, 870, 583, 694], "answer": 577, "wrong": 957}
JSONL

config() {  # config FILE PAIRS POSITIONS
  cat > "$1" <<TOML
[model]
path = "$SRC/tests/data/tiny-gpt2"
threads = 1
[data]
file = "$2"
[output]
path = "$1.h5"
[parallel]
pairs_per_item = 1
[[experiment]]
name = "resid"
sweep = "resid_pre"
positions = "$3"
TOML
}

expect_refused() {  # expect_refused NAME MUST_MENTION CONFIG RANKS
  local name=$1 mention=$2 cfg=$3 ranks=$4 rc
  set +e
  timeout 60 "${MPIRUN[@]}" -np "$ranks" "$CAUSEWAY" run "$cfg" > "$WORK/$name.log" 2>&1
  rc=$?
  set -e
  [ "$rc" -ne 124 ] || fail "$name: still running after 60 s (hang)"
  [ "$rc" -eq 2 ] || fail "$name: exit $rc, expected 2: $(cat "$WORK/$name.log")"
  [ "$(grep -c "causeway: error" "$WORK/$name.log")" -eq 1 ] || fail "$name: not one error line: $(cat "$WORK/$name.log")"
  grep -qF -- "$mention" "$WORK/$name.log" || fail "$name: error does not mention '$mention': $(cat "$WORK/$name.log")"
  ! grep -qE "malloc\(\)|free\(\)|corrupted top|Signal:|exited on signal" "$WORK/$name.log" || fail "$name: crashed: $(cat "$WORK/$name.log")"
  [ ! -e "$cfg.h5" ] || fail "$name: left a result file"
  echo "  $name: $(grep "causeway: error" "$WORK/$name.log")"
}

config "$WORK/unequal.toml" "$WORK/unequal.jsonl" all
config "$WORK/ragged.toml" "$WORK/ragged.jsonl" each
for ranks in 1 2; do
  expect_refused "unequal_${ranks}" "unequal.jsonl: line 2: clean has 5 tokens but corrupted has 18" "$WORK/unequal.toml" "$ranks"
  expect_refused "ragged_${ranks}" 'experiment[0].positions: resid_pre patches position by position' "$WORK/ragged.toml" "$ranks"
done

# Aligned by name, the ragged data runs on 2 ranks.
sed 's/{"clean": \[763[^}]*/&, "positions": {"S": 1, "END": -1}/; s/{"clean": \[308[^}]*/&, "positions": {"S": 3, "END": -1}/; s/{"clean": \[872[^}]*/&, "positions": {"S": 0, "END": -1}/' \
  "$WORK/ragged.jsonl" > "$WORK/named.jsonl"
config "$WORK/named.toml" "$WORK/named.jsonl" named
timeout 60 "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/named.toml" --quiet || fail "named run failed"
h5dump -d /experiments/resid/axes/pos "$WORK/named.toml.h5" | grep -q '"END"' || fail "named axis not labelled"
echo PASS
