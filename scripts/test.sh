#!/usr/bin/env bash
# The whole test suite: install, build kiln and an AddressSanitizer build of
# the kiln driver (the malformed-input corpus runs through both), then ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -G Ninja -S . -B build-asan -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir \
  -DKILN_ENABLE_ASAN=ON -DKILN_ENABLE_FUZZER=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG" "${launcher[@]}" >/dev/null
ninja -C build-asan kiln

KILN_CMAKE_ARGS="-DKILN_ASAN_TOOLS_DIR=$PWD/build-asan/bin" scripts/build.sh
ctest --test-dir build --output-on-failure
