#!/usr/bin/env bash
# The main job: install, build, compile the default model (examples/mlp.kiln)
# into a training executable, and train it on Fashion-MNIST: on the GPU when
# there is one, else on the CPU. Extra arguments go to the trainer (e.g.
# --epochs 1, --device cpu; build/mlp-train --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh kiln kiln-opt
# SGD with momentum (the model file's optimizer) with a cosine learning-rate
# schedule over the five epochs: 5 x 468 steps at batch 128.
build/bin/kiln compile examples/mlp.kiln --emit=trainer \
  --schedule cosine --total-steps 2340 -o build/mlp-train
build/mlp-train --epochs 5 --save build/mlp.safetensors \
  --log build/mlp-metrics.jsonl "$@"
