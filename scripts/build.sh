#!/usr/bin/env bash
# Configures and builds kiln in build/ (extra arguments go to ninja).
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -G Ninja -S . -B build -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir \
  "${launcher[@]}" ${KILN_CMAKE_ARGS:-} >/dev/null
ninja -C build "$@"
