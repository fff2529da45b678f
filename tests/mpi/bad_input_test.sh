#!/usr/bin/env bash
# Bad input to a batch job: one clear line, exit 2, from every rank count.
source "$(dirname "$0")/common.sh"

expect_error() {  # expect_error NAME MUST_MENTION COMMAND...
  local name=$1 mention=$2
  shift 2
  set +e
  "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "$name: exit $rc, expected 2: $(cat "$WORK/$name.log")"
  grep -q "causeway: error" "$WORK/$name.log" || fail "$name: no error line: $(cat "$WORK/$name.log")"
  grep -q -- "$mention" "$WORK/$name.log" || fail "$name: error does not mention '$mention': $(cat "$WORK/$name.log")"
  [ "$(grep -c "causeway: error" "$WORK/$name.log")" -eq 1 ] || fail "$name: more than one error line: $(cat "$WORK/$name.log")"
  echo "  $name: $(grep "causeway: error" "$WORK/$name.log")"
}

write_config "$WORK/run.toml" ""
touch "$WORK/a-file"
expect_error unwritable_output "a-file/out.h5" \
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/a-file/out.h5"

"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/first.h5" --quiet
sed 's/name = "heads_by_pos"/name = "heads_by_pos"\nmetric = "prob"/; s/direction = "noising"/direction = "denoising"/' \
  "$WORK/run.toml" > "$WORK/changed.toml"
expect_error mismatched_resume "experiment\[1\].direction: 'noising' in the file, 'denoising' now" \
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/changed.toml" --out "$WORK/first.h5" --resume

cat > "$WORK/small.toml" <<TOML
[model]
path = "$SRC/tests/data/tiny-gpt2"
[data]
file = "$SRC/tests/data/tiny-gpt2-patching-pairs.jsonl"
[output]
path = "$WORK/small.h5"
[[experiment]]
name = "layers"
sweep = "resid_pre"
positions = "all"
TOML
expect_error too_many_ranks "only 2 work items" "${MPIRUN[@]}" -np 4 "$CAUSEWAY" run "$WORK/small.toml"

# Values only the model refutes are refused on every rank before the file is laid out.
sed 's/positions = "all"/positions = "all"\nwindow = 7/' "$WORK/small.toml" > "$WORK/window.toml"
expect_error window_past_n_layer "experiment\[0\].window: must be between 1 and n_layer (2), got 7" \
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/window.toml" --out "$WORK/window.h5"
[ ! -e "$WORK/window.h5" ] || fail "window_past_n_layer: the result file was laid out"

# A resume whose work items would be cut differently is refused, even when their count agrees.
sed 's/pairs_per_item = 1/pairs_per_item = 4/' "$WORK/run.toml" > "$WORK/ppi4.toml"
sed 's/pairs_per_item = 1/pairs_per_item = 5/' "$WORK/run.toml" > "$WORK/ppi5.toml"
"$CAUSEWAY" run "$WORK/ppi4.toml" --out "$WORK/ppi.h5" --quiet
expect_error changed_pairs_per_item "pairs_per_item is 5, the file was laid out with 4" \
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/ppi5.toml" --out "$WORK/ppi.h5" --resume
echo PASS
