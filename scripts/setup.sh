#!/usr/bin/env bash
# Fresh machine to first result: installs dependencies, builds, and runs the default job on
# the built-in model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
./build/release/causeway logits --model tests/data/tiny-gpt2 \
  --text "When Mary and John went to the store, John gave a drink to" --top 5 \
  --cache blocks.0.attn.hook_pattern --out build/default-logits.h5 --overwrite
