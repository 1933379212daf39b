#!/bin/sh
# Writes what the GPU checks need into OUT, on a machine with the compiler
# (kiln and kiln-kernel-bundle built in build/), for a GPU host without
# LLVM/MLIR, whose runtime-only build runs them as `ctest -L gpu`
# (cmake -S runtime -DKILN_GPU_FILES=OUT; README, "GPU checks"):
#   OUT/bundle/   kernel bundles of every example (kiln-kernel-check)
#   OUT/steps/    every example's steps at batch 32, MODEL.program, .cu and
#                 .cpp (kiln-step-check: the GPU against the CPU backend)
#   OUT/mlp-src/  the main job's trainer source (test/gpu/TrainCheck.cmake)
# usage: scripts/gpu-files.sh [--only bundle|steps|trainer] OUT
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$root/build/bin/kiln}
bundler=${KILN_KERNEL_BUNDLE:-$root/build/test/gpu/kiln-kernel-bundle}
only=
if [ "${1:-}" = --only ]; then
  only=$2
  shift 2
fi
[ $# -eq 1 ] || { echo "usage: $0 [--only bundle|steps|trainer] OUT" >&2; exit 2; }
out=$1
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if want bundle; then
  rm -rf "$out/bundle"
  "$bundler" "$out/bundle" --batch 2 --dynamic-batch 3
fi
if want steps; then
  mkdir -p "$out/steps"
  for model in mlp logreg mlp_dropout cnn avgpool; do
    for emit in program cuda cpp; do
      ext=$emit; [ "$emit" = cuda ] && ext=cu
      "$kiln" compile "$root/examples/$model.kiln" --emit=$emit \
        --bind batch=32 -o "$out/steps/$model.$ext"
    done
  done
fi
if want trainer; then
  # As scripts/run.sh compiles it: a cosine schedule over 5 x 468 steps.
  rm -rf "$out/mlp-src"
  "$kiln" compile "$root/examples/mlp.kiln" --emit=trainer-source \
    --schedule cosine --total-steps 2340 -o "$out/mlp-src"
fi
echo "wrote $out"
