#!/usr/bin/env bash
# Issue 19 (B1, B13): the circuit step stops on a signal as the experiments do. SIGTERM or
# SIGINT during ACDC (to both ranks, or to one) ends the 2-rank job with 128 + signal and one
# line before ACDC is through; --resume then finishes the same circuits as an uninterrupted run,
# continuing ACDC at the receiver it stopped on (issue 21).
# A job SIGKILLed as it begins its second circuit keeps the first (marked complete), marks the
# second not complete, `analysis top` names it, and --resume keeps the first and adds the second.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: needs python3-h5py"; exit 77; }

cat > "$WORK/circuits.toml" <<TOML
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

[[circuit]]
name = "acdc"
method = "acdc"
threshold = 0.02

[[circuit]]
name = "eap_top"
method = "top"
experiment = "eap"
size = 12
TOML

"$CAUSEWAY" run "$WORK/circuits.toml" --out "$WORK/whole.h5" --quiet || fail "uninterrupted run failed"

complete_of() {  # FILE CIRCUIT: its `complete` attribute
  h5dump -a "/circuits/$2/complete" "$1" | sed -n 's/.*(0): \([0-9]*\).*/\1/p'
}
same_circuits() {  # every dataset and attribute under /circuits equal within 1e-6
  h5diff -d 1e-6 "$WORK/whole.h5" "$1" /circuits /circuits > /dev/null ||
    fail "$1: circuits differ from the uninterrupted run: $(h5diff -d 1e-6 "$WORK/whole.h5" "$1" /circuits /circuits | head -5)"
}
[ "$(complete_of "$WORK/whole.h5" acdc)" = 1 ] && [ "$(complete_of "$WORK/whole.h5" eap_top)" = 1 ] ||
  fail "the uninterrupted run does not mark its circuits complete"

# signal_during_acdc SIG WHO FILE [DONE]: WHO "both" signals both ranks, "one" the last rank
# listed, once ACDC reports DONE (default 0) of its 27 receivers done. Every round of
# edge-patched batches takes 200 ms longer, so ACDC runs for several seconds.
signal_during_acdc() {
  local sig=$1 who=$2 file=$3 at="circuit acdc (ACDC): ${4:-0} of 27 receivers" pid ranks
  rm -f "$file" "$WORK/signal.log"
  CAUSEWAY_FAULT_SLEEP_PER_CIRCUIT_BATCH_MS=200 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_SLEEP_PER_CIRCUIT_BATCH_MS \
    -np 2 "$CAUSEWAY" run "$WORK/circuits.toml" --out "$file" > "$WORK/signal.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "$at" "$WORK/signal.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "$at" "$WORK/signal.log" || fail "ACDC never reached '$at': $(cat "$WORK/signal.log")"
  ranks=$(pgrep -P "$pid" || true)
  [ -n "$ranks" ] || fail "no rank processes under mpiexec $pid"
  [ "$who" = both ] || ranks=$(echo "$ranks" | tail -1)
  kill -"$sig" $ranks
  set +e
  timeout 60 tail --pid="$pid" -f /dev/null
  wait "$pid"
  rc=$?
  set -e
}

for case in "TERM both" "INT both" "TERM one"; do
  set -- $case
  sig=$1 who=$2 file="$WORK/sig$1$2.h5"
  signal_during_acdc "$sig" "$who" "$file"
  expect=$((128 + $(kill -l "$sig")))
  echo "SIG$sig to $who rank(s) during ACDC: exit $rc"
  [ "$rc" -eq "$expect" ] || fail "SIG$sig ($who): exit $rc, expected $expect: $(cat "$WORK/signal.log")"
  line="^causeway: interrupted by SIG$sig during the circuit step (circuit acdc); every work item is done and 0 of 2 circuits are in the file, continue with --resume$"
  n=$(grep -c "$line" "$WORK/signal.log" || true)
  [ "$n" -eq 1 ] || fail "SIG$sig ($who): the interrupted line appears $n times: $(cat "$WORK/signal.log")"
  ! grep -q "circuit acdc (ACDC): 27 of 27 receivers" "$WORK/signal.log" || fail "SIG$sig ($who): ACDC ran to the end"
  ! grep -q "^wrote " "$WORK/signal.log" || fail "SIG$sig ($who): a success summary after an interrupt"
  [ "$(complete_of "$file" acdc)" = 0 ] || fail "SIG$sig ($who): the interrupted circuit is marked complete"
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/circuits.toml" --out "$file" --resume --quiet ||
    fail "SIG$sig ($who): resume failed"
  same_circuits "$file"
done

# Issue 21: stopped after 16 receivers, ACDC leaves its state in the file (the receiver it was
# on, the edges removed so far), and --resume continues there, not from the start, to exactly
# the uninterrupted (1-rank) circuit.
signal_during_acdc TERM both "$WORK/late.h5" 16
[ "$rc" -eq 143 ] || fail "SIGTERM after 16 receivers: exit $rc: $(cat "$WORK/signal.log")"
next=$(h5dump -d /circuits/acdc/acdc_state/position "$WORK/late.h5" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')
[ -n "$next" ] && [ "$next" -le 10 ] || fail "no ACDC state past receiver 16 in the file (next receiver '$next')"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/circuits.toml" --out "$WORK/late.h5" --resume > "$WORK/late.log" 2>&1 ||
  fail "resume after 16 receivers failed: $(tail -5 "$WORK/late.log")"
grep -q "circuit acdc (ACDC): continuing after $((26 - next)) of 27 receivers" "$WORK/late.log" ||
  fail "resume did not continue at receiver $next: $(grep ACDC "$WORK/late.log")"
h5diff "$WORK/whole.h5" "$WORK/late.h5" /circuits/acdc /circuits/acdc > /dev/null ||
  fail "resumed ACDC differs from the uninterrupted run: $(h5diff "$WORK/whole.h5" "$WORK/late.h5" /circuits/acdc /circuits/acdc | head -5)"
h5ls -r "$WORK/late.h5" | grep -q acdc_state && fail "the finished circuit still holds its stopped state"

# SIGKILL as the second circuit begins (a node lost, or Slurm's kill after the grace period).
set +e
CAUSEWAY_FAULT_KILL_AT_CIRCUIT=eap_top "$CAUSEWAY" run "$WORK/circuits.toml" --out "$WORK/killed.h5" \
  > "$WORK/killed.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "the killed run exited $rc, expected 137: $(cat "$WORK/killed.log")"
[ "$(complete_of "$WORK/killed.h5" acdc)" = 1 ] || fail "the circuit finished before the kill is not kept"
[ "$(complete_of "$WORK/killed.h5" eap_top)" = 0 ] || fail "the circuit being computed is not marked incomplete"
h5diff -d 1e-6 "$WORK/whole.h5" "$WORK/killed.h5" /circuits/acdc /circuits/acdc > /dev/null ||
  fail "the kept circuit differs from the uninterrupted run's"
(cd "$SRC" && "$PY" -m analysis top "$WORK/killed.h5") > "$WORK/top.txt" || fail "analysis top failed on the killed file"
banner=$(head -1 "$WORK/top.txt")
[[ "$banner" == "incomplete: circuits not computed: eap_top"* ]] || fail "analysis top does not name the missing circuit: $banner"
"$CAUSEWAY" run "$WORK/circuits.toml" --out "$WORK/killed.h5" --resume > "$WORK/resumed.log" 2>&1 ||
  fail "resume after the kill failed: $(tail -5 "$WORK/resumed.log")"
grep -q "^circuit acdc: complete in the file, kept$" "$WORK/resumed.log" || fail "resume redid the finished circuit: $(cat "$WORK/resumed.log")"
grep -q "^circuit eap_top: 12 of 110 edges kept" "$WORK/resumed.log" || fail "resume did not finish eap_top: $(cat "$WORK/resumed.log")"
same_circuits "$WORK/killed.h5"
echo PASS
