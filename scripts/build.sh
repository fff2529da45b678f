#!/usr/bin/env bash
# Configures and builds one preset (default: release) with every core.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
# The release preset builds the CUDA backend wherever nvcc works (CAUSEWAY_CUDA=AUTO); the
# toolkit's default prefix need not be on PATH.
if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
