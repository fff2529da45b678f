#!/usr/bin/env bash
# A 2-rank run killed with SIGKILL part-way through, then `--resume`: the final file equals an
# uninterrupted run, and the resumed run computes exactly the items that were not done.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
total=$(items_done "$WORK/whole.h5")
echo "uninterrupted run: $total work items"

# Each rank kills itself (SIGKILL, no clean-up) after 4 items; mpiexec then ends the job.
set +e
CAUSEWAY_FAULT_KILL_AFTER_ITEMS=4 "${MPIRUN[@]}" -x CAUSEWAY_FAULT_KILL_AFTER_ITEMS -np 2 \
  "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/killed.h5" --log-level debug > "$WORK/killed.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
done_before=$(items_done "$WORK/killed.h5")
echo "killed run: exit $rc, $done_before of $total items done"
[ "$done_before" -gt 0 ] && [ "$done_before" -lt "$total" ] || fail "kill did not land part-way ($done_before of $total)"

# Without --resume or --overwrite the existing file is refused.
set +e
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/killed.h5" > "$WORK/refused.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q -- "--resume" "$WORK/refused.log" || fail "existing output not refused: $(cat "$WORK/refused.log")"

"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/killed.h5" --resume \
  --log-level debug > "$WORK/resumed.log" 2>&1 || fail "resume failed: $(tail -5 "$WORK/resumed.log")"
grep -q "resume: $done_before of $total work items already done" "$WORK/resumed.log" ||
  fail "resume log does not report the done items: $(head -3 "$WORK/resumed.log")"
recomputed=$(grep -c "^\[rank [0-9]*\] item .* done in" "$WORK/resumed.log" || true)
echo "resumed run computed $recomputed items"
[ "$recomputed" -eq $((total - done_before)) ] || fail "resumed run computed $recomputed items, expected $((total - done_before))"
[ "$(items_done "$WORK/killed.h5")" -eq "$total" ] || fail "not every item is done after resume"
same_datasets "$WORK/whole.h5" "$WORK/killed.h5"
h5diff -d 1e-6 "$WORK/whole.h5" "$WORK/killed.h5" /experiments/heads_by_pos/mean /experiments/heads_by_pos/mean > /dev/null ||
  fail "means differ after resume"
echo PASS
