#!/usr/bin/env bash
# Issue 12 (first part): `causeway logits --tp N` under mpiexec shards one replica over N ranks
# (heads, kv heads split or replicated, MLP units, vocabulary rows); its logits equal one
# rank's within 1e-5 for GPT-2, Llama 3 (GQA), GPT-NeoX (fused qkv, parallel residual), Gemma 2
# (soft-caps, window) and Qwen2 (q/k/v biases), fp32 and bf16; --cache all writes every hook
# whole, equal to tp 1's; tp that does not fit is refused.
source "$(dirname "$0")/common.sh"
TOKENS=1,5,9,33,2,7,100,200,3,4,5,6,7,8
logits() {  # logits MODEL NP TP DTYPE OUT
  "${MPIRUN[@]}" -np "$2" "$CAUSEWAY" logits --model "$1" --tokens "$TOKENS" --tp "$3" \
    --dtype "$4" --threads 1 --out "$5" --overwrite > "$WORK/log.txt" 2>&1 || fail "$1 tp $3: $(tail -2 "$WORK/log.txt")"
}
for F in tiny-gpt2 families/llama3 families/gpt_neox families/gemma2 families/qwen2; do
  M="$SRC/tests/data/$F"
  for dtype in f32 bf16; do
    logits "$M" 1 1 "$dtype" "$WORK/tp1.h5"
    for tp in 2 4; do
      logits "$M" "$tp" "$tp" "$dtype" "$WORK/tp$tp.h5"
      h5diff -d 1e-5 "$WORK/tp1.h5" "$WORK/tp$tp.h5" logits logits > /dev/null ||
        fail "$F $dtype: tp $tp logits differ from tp 1: $(h5diff -d 1e-5 "$WORK/tp1.h5" "$WORK/tp$tp.h5" logits logits | tail -1)"
    done
    echo "$F $dtype: tp 2 and tp 4 equal tp 1"
  done
done
# --cache all: hooks of sharded heads and MLP units gathered into the whole tensor, equal to
# tp 1's (every hook, residual stream included).
for F in tiny-gpt2 families/llama3 families/gpt_neox; do
  M="$SRC/tests/data/$F"
  for tp in 1 2 4; do
    "${MPIRUN[@]}" -np "$tp" "$CAUSEWAY" logits --model "$M" --tokens "$TOKENS" --tp "$tp" \
      --threads 1 --cache all --out "$WORK/cache$tp.h5" --overwrite > "$WORK/log.txt" 2>&1 ||
      fail "$F tp $tp --cache all: $(tail -2 "$WORK/log.txt")"
  done
  for tp in 2 4; do
    h5diff -d 1e-5 "$WORK/cache1.h5" "$WORK/cache$tp.h5" > "$WORK/diff.txt" 2>&1 ||
      fail "$F: tp $tp cached hooks differ from tp 1: $(grep -v '^$' "$WORK/diff.txt" | tail -3)"
  done
  n=$(h5ls "$WORK/cache2.h5" | grep -c "hook_")
  [ "$n" -gt 20 ] || fail "$F: only $n hooks written"
  echo "$F: tp 2 and tp 4 --cache all ($n hooks) equal tp 1"
done
# Two replicas of two shards: the same logits.
logits "$SRC/tests/data/families/llama3" 4 2 f32 "$WORK/dp2tp2.h5"
logits "$SRC/tests/data/families/llama3" 1 1 f32 "$WORK/tp1.h5"
h5diff -d 1e-5 "$WORK/tp1.h5" "$WORK/dp2tp2.h5" logits logits > /dev/null || fail "2 x 2 differs"
# Refused before any work, with one line: 3 does not divide 4 heads; 3 ranks for tp 2.
out=$("${MPIRUN[@]}" -np 3 "$CAUSEWAY" logits --model "$SRC/tests/data/families/llama3" --tokens 1,2 --tp 3 2>&1) && fail "tp 3 accepted"
grep -q "tp: 3 does not divide the model's 4 attention heads" <<< "$out" || fail "tp 3: $out"
out=$("${MPIRUN[@]}" -np 3 "$CAUSEWAY" logits --model "$SRC/tests/data/families/llama3" --tokens 1,2 --tp 2 2>&1) && fail "3 ranks for tp 2 accepted"
grep -q "does not divide the 3 ranks" <<< "$out" || fail "3 ranks: $out"
echo PASS
