#!/usr/bin/env bash
# The main job: install, build, and train the default model (examples/mlp.kiln)
# on Fashion-MNIST on the CPU. Extra arguments go to `kiln train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh kiln kiln-opt
build/bin/kiln train examples/mlp.kiln --epochs 3 \
  --save build/mlp.safetensors --log build/mlp-metrics.jsonl "$@"
