#!/usr/bin/env bash
# A full disk (issue 10, A1), on a small tmpfs: filling up (a) while the file is laid out and
# (b) at the end of a run (the disk fills while the job runs; verify/ needs new space), also
# (c) under 2 ranks. Each ends with exit 2 and one line "no space left on device: FILE", no
# summary and no crash; after space is freed a new run (a) or --resume (b, c) finishes the job
# and the file equals an uninterrupted run. Needs root to mount the tmpfs; skips otherwise.
source "$(dirname "$0")/common.sh"
DISK="$WORK/disk"
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=64m tmpfs "$DISK" 2> /dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
  exit 77
fi
trap 'umount "$DISK" 2> /dev/null || true; rm -rf "$WORK"' EXIT
write_config "$WORK/run.toml" ""
cat >> "$WORK/run.toml" <<TOML

[[experiment]]
name = "heads_attribution"
kind = "attribution"
sweep = "attn_head_out"
verify_top = 4
TOML
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
OUT="$DISK/run.h5"

# expect_disk_full LOG: the job failed cleanly, saying why, and printed no summary.
expect_disk_full() {
  local rc=$1 log=$2
  [ "$rc" -eq 2 ] || fail "exit $rc, expected 2: $(cat "$log")"
  grep -qF "causeway: error: no space left on device: $OUT (" "$log" || fail "no disk-full message: $(cat "$log")"
  [ "$(grep -c "causeway: error" "$log")" -eq 1 ] || fail "not one error line: $(cat "$log")"
  ! grep -q "^wrote" "$log" || fail "a success summary after a failed write: $(cat "$log")"
  ! grep -qiE "internal error|segmentation|signal|terminate called|HDF5-DIAG" "$log" || fail "crash or stack: $(cat "$log")"
}

# (a) Layout: a disk half the size of the file.
size_k=$(( $(stat -c %s "$WORK/whole.h5") / 2048 ))
mount -o remount,size=${size_k}k "$DISK"
set +e
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" > "$WORK/a.log" 2>&1
rc=$?
set -e
expect_disk_full "$rc" "$WORK/a.log"
[ -z "$(ls -A "$DISK")" ] || fail "the failed layout left files: $(ls -A "$DISK")"
mount -o remount,size=64m "$DISK"
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --quiet || fail "run after freeing space failed"
same_datasets "$WORK/whole.h5" "$OUT"
echo "  (a) layout: refused cleanly, then a new run finished"

# Starts a job (COMMAND...) that pauses after layout, fills the disk meanwhile, then waits.
fill_during() {
  local log=$1
  shift
  rm -f "$OUT"
  ( set +e; "$@" > "$log" 2>&1; echo "rc=$?" >> "$log" ) &
  local job=$!
  for _ in $(seq 1 600); do [ -f "$OUT" ] && break; sleep 0.05; done
  [ -f "$OUT" ] || fail "the job did not lay out its file: $(cat "$log")"
  dd if=/dev/zero of="$DISK/filler" bs=4k 2> /dev/null || true
  wait "$job" || true
  local rc
  rc=$(sed -n 's/^rc=//p' "$log")
  sed -i '/^rc=/d' "$log"
  expect_disk_full "$rc" "$log"
  rm -f "$DISK/filler"
}

# (b) End of run: items land in space allocated at layout; verify/ needs new space.
fill_during "$WORK/b.log" env CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS=3000 \
  "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT"
grep -q "continue with --resume" "$WORK/b.log" || fail "the message does not say how to continue: $(cat "$WORK/b.log")"
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --resume --quiet > "$WORK/b2.log" 2>&1 ||
  fail "--resume after freeing space failed: $(cat "$WORK/b2.log")"
same_datasets "$WORK/whole.h5" "$OUT"
echo "  (b) end of run: refused cleanly, then --resume finished"

# (c) The same under 2 ranks.
fill_during "$WORK/c.log" env CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS=3000 \
  "${MPIRUN[@]}" -x CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT"
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --resume --quiet > "$WORK/c2.log" 2>&1 ||
  fail "--resume under 2 ranks failed: $(cat "$WORK/c2.log")"
same_datasets "$WORK/whole.h5" "$OUT"
echo "  (c) 2 ranks: refused cleanly, then --resume finished"
echo PASS
