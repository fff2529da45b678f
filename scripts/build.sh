#!/usr/bin/env bash
# Configures and builds one preset (default: release) with every core: all targets, or the
# ones named after the preset (scripts/build.sh cuda causeway_gpu_tests).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
# The cuda preset needs nvcc; the toolkit's default prefix need not be on PATH.
if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake --preset "$preset" >/dev/null
targets=()
[[ $# -gt 0 ]] && targets=(--target "$@")
cmake --build --preset "$preset" -j "$(nproc)" "${targets[@]}"
