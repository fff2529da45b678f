#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (ctest: unit, golden and CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
ctest --preset release -j "$(nproc)" "$@"
