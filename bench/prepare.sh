#!/bin/sh
# Compiles the benchmark models with kiln on the build machine (which has
# LLVM/MLIR) into DIR (default bench/out): for each, MODEL.program (the
# launches, with the candidate schedules --tune times), MODEL.cu (CUDA C),
# MODEL.cpp (C++), and the candidates' kernels MODEL.candidates.cu and
# MODEL.candidates.cpp, which bench/run.sh and kiln-step-check use on the
# GPU host (and kiln-bench --device cpu here).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$root/build/bin/kiln}
out=${1:-$root/bench/out}
mkdir -p "$out"
compile() { # NAME MODEL BATCH-OPTION
  for emit in program cuda cpp cuda-candidates cpp-candidates; do
    case $emit in
      cuda) ext=cu ;;
      cuda-candidates) ext=candidates.cu ;;
      cpp-candidates) ext=candidates.cpp ;;
      *) ext=$emit ;;
    esac
    "$kiln" compile "$root/examples/$2.kiln" --emit=$emit $3 \
      --tune-candidates 7 -o "$out/$1.$ext"
  done
}
compile mlp-128 mlp "--bind batch=128"
compile mlp-4096 mlp "--bind batch=4096"
compile cnn-256 cnn "--bind batch=256"
compile gpt-64 gpt "--bind batch=64"
# The same steps with a run-time batch (as compiled trainers run them),
# timed at their largest batch.
compile mlp-128-rt mlp "--max-batch 128"
compile mlp-4096-rt mlp "--max-batch 4096"
compile cnn-256-rt cnn "--max-batch 256"
echo "wrote $out"
