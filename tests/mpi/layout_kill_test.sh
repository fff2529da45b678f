#!/usr/bin/env bash
# A job killed while laying out its file (issue 10, A6) leaves no file at the output path (a
# new run then starts without --overwrite), and with --overwrite the old file stays intact.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/whole.h5" --quiet
total=$(items_done "$WORK/whole.h5")

OUT="$WORK/run.h5"
set +e
CAUSEWAY_FAULT_KILL_DURING_LAYOUT=1 "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" > "$WORK/killed.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed layout exited 0"
[ ! -e "$OUT" ] || fail "a job killed during layout left a file at $OUT"
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --quiet > "$WORK/new.log" 2>&1 ||
  fail "a new run after the killed layout failed: $(cat "$WORK/new.log")"
[ ! -e "$OUT.partial" ] || fail "the temporary layout file was left behind"
same_datasets "$WORK/whole.h5" "$OUT"

set +e
CAUSEWAY_FAULT_KILL_DURING_LAYOUT=1 "$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --overwrite > "$WORK/killed2.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed --overwrite layout exited 0"
[ "$(items_done "$OUT")" -eq "$total" ] || fail "--overwrite killed during layout damaged the old file"
same_datasets "$WORK/whole.h5" "$OUT"

# An output that is a symbolic link: --overwrite replaces the file it names, the link stays.
mkdir "$WORK/elsewhere"
mv "$OUT" "$WORK/elsewhere/run.h5"
ln -s "$WORK/elsewhere/run.h5" "$OUT"
"$CAUSEWAY" run "$WORK/run.toml" --out "$OUT" --overwrite --quiet > "$WORK/link.log" 2>&1 ||
  fail "--overwrite through a link failed: $(cat "$WORK/link.log")"
[ -L "$OUT" ] || fail "--overwrite replaced the symbolic link $OUT by a file"
same_datasets "$WORK/whole.h5" "$WORK/elsewhere/run.h5"
echo PASS
