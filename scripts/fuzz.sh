#!/usr/bin/env bash
# Builds the libFuzzer targets (`cmake --preset fuzz`: clang, ASan, build/fuzz) and runs each
# build/fuzz/fuzz_* for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [extra libFuzzer flags...]
# Corpora grow in build/fuzz/corpus/<target>/; crash inputs land in build/fuzz/crashes/<target>/.
# Exits non-zero if any target finds a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [libFuzzer flags...]" >&2
  exit 2
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

shopt -s nullglob
targets=(build/fuzz/fuzz_*)
status=0
ran=0
for bin in "${targets[@]}"; do
  [[ -f "$bin" && -x "$bin" ]] || continue
  name="$(basename "$bin")"
  corpus="build/fuzz/corpus/$name"
  crashes="build/fuzz/crashes/$name"
  mkdir -p "$corpus" "$crashes"
  echo "== $name: ${seconds} s"
  if ! "$bin" "$corpus" -max_total_time="$seconds" -artifact_prefix="$crashes/" \
      -print_final_stats=1 "$@"; then
    echo "== $name: FAILED, reproducer in $crashes/" >&2
    status=1
  fi
  ran=$((ran + 1))
done
if [[ $ran -eq 0 ]]; then
  echo "no fuzz_* targets found under build/fuzz" >&2
  exit 1
fi
exit $status
