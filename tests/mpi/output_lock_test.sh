#!/usr/bin/env bash
# Two jobs, one output (issue 10, A2): while a job runs, a second `run` on its output (plain,
# --overwrite or --resume) and `logits --out` are refused at once naming the holder; after the
# first job is SIGKILLed its stale lock file is taken over and --resume finishes the file.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
[ ! -e "$WORK/whole.h5.lock" ] || fail "a finished job left its lock file"

OUT="$WORK/run.h5"
CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS=120000 "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --quiet \
  > "$WORK/first.log" 2>&1 &
first=$!
trap 'kill -9 $first 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do [ -f "$OUT" ] && break; sleep 0.1; done
[ -f "$OUT" ] || fail "the first job did not lay out its file: $(cat "$WORK/first.log")"
grep -q "^$first@$(hostname)$" "$OUT.lock" || fail "lock file does not name pid $first: $(cat "$OUT.lock")"

expected="causeway: error: $OUT is in use by another causeway job (pid $first on $(hostname))"
for flags in "" "--overwrite" "--resume"; do
  set +e
  start=$SECONDS
  "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --quiet $flags > "$WORK/second.log" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "second job ($flags) exited $rc: $(cat "$WORK/second.log")"
  grep -qF "$expected" "$WORK/second.log" || fail "second job ($flags) said: $(cat "$WORK/second.log")"
  [ $((SECONDS - start)) -lt 30 ] || fail "second job ($flags) was not refused at once"
  echo "  refused: run $flags"
done
set +e
"$CAUSEWAY" logits --model "$SRC/tests/data/tiny-gpt2" --tokens 1,2,3 --out "$OUT" --overwrite \
  > "$WORK/logits.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -qF "$expected" "$WORK/logits.log" || fail "logits --out not refused ($rc): $(cat "$WORK/logits.log")"
echo "  refused: logits --out"
kill -0 "$first" || fail "the first job died: $(cat "$WORK/first.log")"

# SIGKILL leaves a stale lock file; its flock went with the process, so --resume takes it over.
kill -9 "$first"
wait "$first" 2>/dev/null || true
[ -f "$OUT.lock" ] || fail "SIGKILL removed the lock file (the test wants a stale one)"
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --resume --quiet > "$WORK/resumed.log" 2>&1 ||
  fail "resume after a stale lock failed: $(cat "$WORK/resumed.log")"
[ ! -e "$OUT.lock" ] || fail "the resumed job left its lock file"
same_datasets "$WORK/whole.h5" "$OUT"
echo PASS
