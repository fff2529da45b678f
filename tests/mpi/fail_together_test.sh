#!/usr/bin/env bash
# Ranks fail together (issue 10, A9): one rank throws at each stage of `causeway run` while the
# others compute or wait; the whole job must end within seconds (no hang holding the
# allocation), exit non-zero, and print the failure once.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""

# run_fault STAGE RANK NP [SCHEDULE]
run_fault() {
  local stage=$1 rank=$2 np=$3 schedule=${4:-static} rc t0 t1 elapsed n
  rm -f "$WORK/out.h5"
  t0=$(date +%s%N)
  set +e
  CAUSEWAY_FAULT_THROW_AT=$stage CAUSEWAY_FAULT_THROW_ON_RANK=$rank CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=50 \
    timeout 60 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_THROW_AT -x CAUSEWAY_FAULT_THROW_ON_RANK \
    -x CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS -np "$np" \
    "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/out.h5" --schedule "$schedule" > "$WORK/fault.log" 2>&1
  rc=$?
  set -e
  t1=$(date +%s%N)
  elapsed=$(( (t1 - t0) / 1000000 ))
  echo "  $stage on rank $rank of $np ($schedule): exit $rc after ${elapsed} ms"
  [ "$rc" -ne 124 ] || fail "$stage on rank $rank of $np: the job hung (killed by timeout 60)"
  [ "$rc" -ne 0 ] || fail "$stage on rank $rank of $np: exit 0 after a failure"
  [ "$elapsed" -lt 20000 ] || fail "$stage on rank $rank of $np: took ${elapsed} ms to end"
  n=$(grep -c "fault injected at $stage on rank $rank" "$WORK/fault.log" || true)
  [ "$n" -eq 1 ] || fail "$stage on rank $rank of $np: message printed $n times: $(cat "$WORK/fault.log")"
  grep -q "^causeway: error.*: internal error: fault injected at $stage on rank $rank" "$WORK/fault.log" ||
    fail "$stage: no one-line error: $(cat "$WORK/fault.log")"
  ! grep -q "^wrote " "$WORK/fault.log" || fail "$stage: a success summary after a failure"
  ! grep -q "MPI_ABORT" "$WORK/fault.log" || fail "$stage: ended by MPI_Abort, not together"
}

for np in 2 4; do
  last=$((np - 1))
  run_fault set_up "$last" "$np"
  run_fault prepare_file 0 "$np"
  run_fault item "$last" "$np"
  run_fault item 0 "$np"
  run_fault after_work "$last" "$np"
  run_fault finish_file 0 "$np"
done
run_fault item 1 4 dynamic
run_fault after_work 2 4 dynamic

# A rank that never reaches the agreement (stuck) cannot hold the job: the failed rank prints
# its message and ends the job by MPI_Abort after its grace period (10 s).
t0=$(date +%s%N)
set +e
CAUSEWAY_FAULT_THROW_AT=set_up CAUSEWAY_FAULT_THROW_ON_RANK=1 CAUSEWAY_FAULT_STALL_AT=set_up \
  CAUSEWAY_FAULT_STALL_ON_RANK=0 timeout 60 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_THROW_AT \
  -x CAUSEWAY_FAULT_THROW_ON_RANK -x CAUSEWAY_FAULT_STALL_AT -x CAUSEWAY_FAULT_STALL_ON_RANK -np 2 \
  "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/out.h5" > "$WORK/stall.log" 2>&1
rc=$?
set -e
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "  set_up on rank 1 of 2 with rank 0 stuck: exit $rc after ${elapsed} ms"
[ "$rc" -ne 124 ] || fail "a stuck rank held the job until timeout 60"
[ "$rc" -ne 0 ] || fail "exit 0 with a stuck rank"
[ "$elapsed" -lt 20000 ] || fail "a stuck rank held the job ${elapsed} ms"
n=$(grep -c "^causeway: error (rank 1): internal error: fault injected at set_up on rank 1" "$WORK/stall.log" || true)
[ "$n" -eq 1 ] || fail "stuck rank: message printed $n times: $(cat "$WORK/stall.log")"

# A job stopped by one rank's failure leaves a file that --resume finishes, equal to a whole run.
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
run_fault item 1 2
[ -f "$WORK/out.h5" ] || fail "no file left after a failed item"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/out.h5" --resume --quiet ||
  fail "resume after a failed item did not finish"
same_datasets "$WORK/whole.h5" "$WORK/out.h5"
echo PASS
