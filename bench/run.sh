#!/bin/sh
# Runs the benchmarks on a GPU host, kiln and PyTorch side by side in the
# same session: builds the runtime with CMake alone (no LLVM/MLIR), times
# the models bench/prepare.sh compiled (DIR, default bench/out) with
# kiln-bench, then the same models in PyTorch. Results go to stdout and to
# DIR/results.jsonl. Options after DIR go to kiln-bench (e.g. --tune
# --tune-budget 60 --profile 20).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/bench/out}
[ $# -gt 0 ] && shift
build=${BUILD:-$root/build-bench}
cmake -S "$root/runtime" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target kiln-bench >/dev/null
"$build/bench/kiln-bench" --json "$dir/kiln.jsonl" "$@" "$dir"
python3 "$root/bench/pytorch_steps.py" | tee "$dir/pytorch.jsonl"
cat "$dir/kiln.jsonl" "$dir/pytorch.jsonl" > "$dir/results.jsonl"
