#!/usr/bin/env bash
# The main job: install, build, compile the default model and print its IR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh kiln kiln-opt
build/bin/kiln compile examples/mlp.kiln --emit=ir
