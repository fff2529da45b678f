#!/usr/bin/env bash
# Fresh machine to first result: installs dependencies, builds, and runs the built-in default:
# the IOI pipeline on the toy IOI model causeway trained (models/ioi-toy): IOI prompt pairs,
# residual and head patching in both directions, attribution patching checked by activation
# patching, one result file, a summary table, and an HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
mkdir -p results
./build/release/causeway run configs/ioi-toy.toml --overwrite
/usr/bin/python3 -m analysis report results/ioi-toy.h5 --out results/ioi-toy-report
echo "report: results/ioi-toy-report/index.html"
