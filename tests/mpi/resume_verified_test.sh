#!/usr/bin/env bash
# --resume of a finished run whose attribution has verify_top (issue 10, A4): the run finishes
# again, replacing verify/ (it used to fail recreating it), and the file equals the first one.
source "$(dirname "$0")/common.sh"
cat > "$WORK/run.toml" <<TOML
[model]
path = "$SRC/tests/data/tiny-gpt2"
threads = 1

[data]
file = "$SRC/tests/data/tiny-gpt2-patching-pairs.jsonl"

[output]
path = "$WORK/run.h5"

[[experiment]]
name = "heads_attribution"
kind = "attribution"
sweep = "attn_head_out"
verify_top = 4
TOML
"$CAUSEWAY" run "$WORK/run.toml" --quiet
cp "$WORK/run.h5" "$WORK/first.h5"
"$CAUSEWAY" run "$WORK/run.toml" --resume > "$WORK/resumed.log" 2>&1 ||
  fail "resume of a finished verified run failed: $(cat "$WORK/resumed.log")"
grep -q "verified the top 4 cells" "$WORK/resumed.log" || fail "no verification summary: $(cat "$WORK/resumed.log")"
for d in cell estimate actual mean_estimate mean_actual; do
  h5diff -d 1e-6 "$WORK/first.h5" "$WORK/run.h5" "/experiments/heads_attribution/verify/$d" \
    "/experiments/heads_attribution/verify/$d" > /dev/null || fail "verify/$d differs after resume"
done
h5diff -d 1e-6 "$WORK/first.h5" "$WORK/run.h5" /experiments/heads_attribution/mean \
  /experiments/heads_attribution/mean > /dev/null || fail "mean differs after resume"
echo PASS
