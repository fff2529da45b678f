#!/usr/bin/env bash
# SIGTERM and SIGINT (issue 10, A9): a 2-rank job signalled mid-run (as Slurm signals every
# task before the time limit) prints one line saying how far it got, exits 128 + signal, and
# leaves a file that --resume finishes equal to an uninterrupted run. Signalling mpiexec
# itself (Ctrl-C) leaves a resumable file too.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
total=$(items_done "$WORK/whole.h5")

# signal_job SIG TARGET FILE: TARGET "ranks" signals every rank process, "mpiexec" the launcher.
signal_job() {
  local sig=$1 target=$2 file=$3 pid ranks
  rm -f "$file"
  CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=100 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS -np 2 \
    "$CAUSEWAY" run "$WORK/run.toml" --out "$file" > "$WORK/signal.log" 2>&1 &
  pid=$!
  # Wait until some items are done, so the signal lands mid-run.
  for _ in $(seq 1 200); do
    [ -f "$file" ] && [ "$(items_done "$file" 2>/dev/null || echo 0)" -ge 4 ] && break
    sleep 0.1
  done
  if [ "$target" = ranks ]; then
    ranks=$(pgrep -P "$pid" || true)
    [ -n "$ranks" ] || fail "no rank processes under mpiexec $pid"
    kill -"$sig" $ranks
  else
    kill -"$sig" "$pid"
  fi
  set +e
  timeout 60 tail --pid="$pid" -f /dev/null
  wait "$pid"
  rc=$?
  set -e
}

check_resume() {
  local file=$1 before
  before=$(items_done "$file")
  [ "$before" -gt 0 ] && [ "$before" -lt "$total" ] || fail "the signal did not land mid-run ($before of $total done)"
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$file" --resume --log-level debug \
    > "$WORK/resumed.log" 2>&1 || fail "resume failed: $(tail -5 "$WORK/resumed.log")"
  grep -q "resume: $before of $total work items already done" "$WORK/resumed.log" ||
    fail "resume does not continue from $before items: $(head -3 "$WORK/resumed.log")"
  [ "$(items_done "$file")" -eq "$total" ] || fail "not every item done after resume"
  same_datasets "$WORK/whole.h5" "$file"
}

for sig in TERM INT; do
  signal_job "$sig" ranks "$WORK/sig$sig.h5"
  expect=$((128 + $(kill -l "$sig")))
  echo "SIG$sig to both ranks: exit $rc"
  [ "$rc" -eq "$expect" ] || fail "SIG$sig: exit $rc, expected $expect: $(cat "$WORK/signal.log")"
  n=$(grep -c "^causeway: interrupted by SIG$sig; [0-9]* of $total items done, continue with --resume$" "$WORK/signal.log" || true)
  [ "$n" -eq 1 ] || fail "SIG$sig: the interrupted line appears $n times: $(cat "$WORK/signal.log")"
  said=$(sed -n "s/^causeway: interrupted by SIG$sig; \([0-9]*\) of .*/\1/p" "$WORK/signal.log")
  [ "$said" -eq "$(items_done "$WORK/sig$sig.h5")" ] || fail "SIG$sig: said $said items done, the file has $(items_done "$WORK/sig$sig.h5")"
  ! grep -q "^wrote " "$WORK/signal.log" || fail "SIG$sig: a success summary after an interrupt"
  check_resume "$WORK/sig$sig.h5"
done

# One rank alone signalled (kill of one task): the other stops too.
rm -f "$WORK/one.h5"
CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=100 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS -np 2 \
  "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/one.h5" > "$WORK/one.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -f "$WORK/one.h5" ] && [ "$(items_done "$WORK/one.h5" 2>/dev/null || echo 0)" -ge 4 ] && break
  sleep 0.1
done
kill -TERM "$(pgrep -P "$pid" | tail -1)"
set +e
wait "$pid"
rc=$?
set -e
echo "SIGTERM to one rank: exit $rc"
[ "$rc" -ne 0 ] || fail "one rank signalled: exit 0"
grep -q "^causeway: interrupted by SIGTERM; " "$WORK/one.log" || fail "one rank signalled: no interrupted line: $(cat "$WORK/one.log")"
check_resume "$WORK/one.h5"

# Ctrl-C on mpiexec: it passes SIGTERM on to the ranks and kills them soon after.
signal_job INT mpiexec "$WORK/launcher.h5"
echo "SIGINT to mpiexec: exit $rc"
[ "$rc" -ne 0 ] || fail "SIGINT to mpiexec: exit 0"
check_resume "$WORK/launcher.h5"
echo PASS
