#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (ctest: unit, golden and CLI tests, MPI
# integration tests, the Slurm test and the Python analysis tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
# install-deps.sh installs Chromium, so the report screenshot test must not skip here.
export CAUSEWAY_REQUIRE_CHROMIUM=1
ctest --preset release --output-on-failure -j "$(nproc)" "$@"
