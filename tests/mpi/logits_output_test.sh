#!/usr/bin/env bash
# Issue 19 (B9, C): `causeway logits` under mpirun prints an error once (rank 0), every rank
# still exiting non-zero; and a logits run that fails while writing (a full disk) leaves an
# older file at --out as it was, with no temporary file beside it. The full disk needs a tmpfs
# (root); without one that part is skipped.
source "$(dirname "$0")/common.sh"
MODEL="$SRC/tests/data/tiny-gpt2"

# expect_one_error EXPECTED_LINE ARGS...: logits on 2 ranks fails, printing the line once and
# no other error line.
expect_one_error() {
  local expected=$1
  shift
  set +e
  "${MPIRUN[@]}" -np 2 "$CAUSEWAY" logits --model "$MODEL" "$@" > "$WORK/log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "exit 0 for $*: $(cat "$WORK/log")"
  [ "$(grep -c "causeway: error" "$WORK/log")" -eq 1 ] || fail "not one error line for $*: $(cat "$WORK/log")"
  grep -qF "$expected" "$WORK/log" || fail "expected '$expected' for $*: $(cat "$WORK/log")"
}
expect_one_error "causeway: error: --tokens: " --tokens 1,1000
expect_one_error "causeway: error: --tp: 4 does not divide the 2 ranks of the job" --tokens 1 --tp 4
touch "$WORK/exists.h5"
expect_one_error "causeway: error: $WORK/exists.h5: output file exists; pass --overwrite to replace it" \
  --tokens 1 --tp 2 --out "$WORK/exists.h5"
# A bad command line, which every rank sees alike, is reported by rank 0 alone as well.
set +e
"${MPIRUN[@]}" -np 2 "$CAUSEWAY" logits --model "$MODEL" --tokens 1 --tp 0 > "$WORK/log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "--tp 0 exited 0: $(cat "$WORK/log")"
[ "$(grep -c "^--tp: must be a positive integer, got 0$" "$WORK/log")" -eq 1 ] ||
  fail "--tp 0 not reported once: $(cat "$WORK/log")"
echo "errors under mpirun: one line each"

DISK="$WORK/disk"
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=256k tmpfs "$DISK" 2> /dev/null; then
  echo "SKIP (full disk part): cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
  echo PASS
  exit 0
fi
trap 'umount "$DISK" 2> /dev/null || true; rm -rf "$WORK"' EXIT
"$CAUSEWAY" logits --model "$MODEL" --tokens 1,2 --out "$DISK/l.h5" > /dev/null
cp "$DISK/l.h5" "$WORK/before.h5"
ids=$(seq -s, 1 100)
set +e
"$CAUSEWAY" logits --model "$MODEL" --tokens "$ids" --cache all --overwrite --out "$DISK/l.h5" > "$WORK/log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a write to a full disk exited 0: $(cat "$WORK/log")"
grep -q "no space left on device" "$WORK/log" || fail "no disk-full message: $(cat "$WORK/log")"
cmp -s "$DISK/l.h5" "$WORK/before.h5" || fail "the failed write changed the older file"
[ "$(ls "$DISK")" = "l.h5" ] || fail "left behind: $(ls "$DISK")"
echo "full disk: the older file is kept"
echo PASS
