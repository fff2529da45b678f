#!/usr/bin/env bash
# Portable build (issue 10, D): the causeway binary built here must run on compute nodes with
# less than this machine's CPU. qemu-user emulates two older CPUs, Nehalem (SSE4.2, no AVX: the
# kernels' baseline clones run) and Haswell (AVX2 + FMA, no AVX-512: the x86-64-v3 clones), and
# each must give the logits of a run on this machine (on AVX-512, the x86-64-v4 clones).
# A binary built with -march=native on an AVX-512 machine dies here with SIGILL.
#
# Usage: portable_binary_test.sh CAUSEWAY_BINARY SOURCE_DIR
# Exits 77 (ctest: skipped) without qemu-x86_64 (Debian: qemu-user) or on a non-x86-64 machine.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 CAUSEWAY_BINARY SOURCE_DIR" >&2
  exit 2
fi
causeway="$(realpath "$1")"
src="$(realpath "$2")"
model="$src/tests/data/tiny-gpt2"

log() { echo "portable_binary_test: $*"; }
[ "$(uname -m)" = x86_64 ] || { log "SKIPPED: not an x86-64 machine"; exit 77; }
command -v qemu-x86_64 >/dev/null ||
  { log "SKIPPED: qemu-x86_64 is not installed (apt-get install qemu-user)"; exit 77; }
command -v h5diff >/dev/null || { log "SKIPPED: h5diff is not installed"; exit 77; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/causeway-portable.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# 28 tokens: long enough that GELU, softmax and layernorm loops run their vector bodies.
tokens="$(seq -s, 100 10 370)"
"$causeway" logits --model "$model" --tokens "$tokens" --top 3 --threads 1 \
  --out "$tmp/host.h5" >"$tmp/host.out" 2>&1 || { cat "$tmp/host.out"; log "FAIL: host run"; exit 1; }

status=0
for cpu in Nehalem-v1 Haswell-noTSX; do
  rc=0
  qemu-x86_64 -cpu "$cpu" "$causeway" logits --model "$model" --tokens "$tokens" --top 3 \
    --threads 1 --out "$tmp/$cpu.h5" >"$tmp/$cpu.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v "TCG doesn't support" "$tmp/$cpu.out" | tail -n 5
    log "FAIL: as a $cpu CPU the binary exited with status $rc (132 = illegal instruction)"
    status=1
    continue
  fi
  if ! h5diff -d 1e-4 "$tmp/host.h5" "$tmp/$cpu.h5" logits logits >"$tmp/$cpu.diff" 2>&1; then
    head -n 20 "$tmp/$cpu.diff"
    log "FAIL: as a $cpu CPU the logits differ from this machine's by more than 1e-4"
    status=1
    continue
  fi
  log "$cpu: runs, logits equal this machine's within 1e-4"
done
[ "$status" -eq 0 ] && log "PASS"
exit "$status"
