#!/bin/sh
# The CPU benchmark, kiln beside PyTorch on the same CPU in one run:
#
#   bench/cpu.sh [DIR] [--threads N] [--seconds S] [--smoke]
#
# 1. Compiles the models with kiln (build/bin/kiln) into DIR/models
#    (default DIR: bench/out-cpu): examples/mlp.kiln at batch 128 and 1024,
#    examples/cnn.kiln at batch 128 and test/models/gpt_tiny.kiln (the
#    small twin of examples/gpt.kiln: context 16, width 32, 2 blocks) at
#    batch 64, each as MODEL.program and MODEL.cpp (`kiln compile
#    --emit=program|cpp --bind batch=N`); and the GEMMs of bench/gemm.mlir,
#    scheduled by `kiln-opt --kiln-schedule`, as DIR/gemm.cpp
#    (`kiln-translate --kernel-to-cpp --preamble`).
# 2. Times kiln's training steps with kiln-bench --device cpu (the CPU
#    backend, as trainers run it) and the GEMMs alone with kiln-gemm-bench.
# 3. Times the same steps in PyTorch (bench/pytorch_steps.py --device cpu:
#    eager, fp32, the same batch and optimizer) and the same GEMMs through
#    torch.matmul (OpenBLAS), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
#    unset for PyTorch's process (they hold OpenBLAS to other kernels than
#    the CPU's own) and OMP_WAIT_POLICY=PASSIVE unless set (libgomp's
#    default, spinning while it waits for work, slows PyTorch's steps down
#    where its OpenMP threads and OpenBLAS's share few cores, as on a
#    2-core virtual machine, and many times so when other work runs).
# 4. Prints one table of steps (ms/step and samples/s on each side, and
#    kiln's speed over PyTorch's) and one of GEMMs (GFLOP/s, and kiln's
#    over OpenBLAS's), and writes every measurement as a JSON line to
#    DIR/results.jsonl.
#
# Both sides run on N threads (default: nproc): the CPU backend's thread
# pool, torch.set_num_threads and OPENBLAS_NUM_THREADS. Each step is timed
# for about S seconds (default 5) after a warm-up, each GEMM as the best
# of 5 runs of about 0.2 s. PyTorch runs under /usr/bin/python3 (Debian's
# python3-torch; $PYTHON to choose another) and needs OpenBLAS for a fair
# comparison (apt-get install python3-torch python3-numpy
# libopenblas0-pthread).
#
# --smoke checks that everything runs (one step, one GEMM call, no
# timings worth reading; ctest's bench-cpu-smoke) and skips the PyTorch
# side when torch is missing. Tools come from $BUILD (default build/);
# missing ones are built there.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
dir=
threads=$(nproc)
seconds=5
smoke=0
usage() {
  echo "usage: bench/cpu.sh [DIR] [--threads N] [--seconds S] [--smoke]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1 ;;
    --threads) [ $# -gt 1 ] || usage; threads=$2; shift ;;
    --seconds) [ $# -gt 1 ] || usage; seconds=$2; shift ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$dir" ] || usage; dir=$1 ;;
  esac
  shift
done
dir=${dir:-$root/bench/out-cpu}
case $threads in ''|*[!0-9]*|0) echo "cpu.sh: --threads takes a count >= 1" >&2; exit 2 ;; esac

# The tools, built if missing.
kiln=$build/bin/kiln
opt=$build/bin/kiln-opt
translate=$build/bin/kiln-translate
step_bench=$build/bench/kiln-bench
gemm_bench=$build/bench/kiln-gemm-bench
for tool in "$kiln" "$opt" "$translate" "$step_bench" "$gemm_bench"; do
  [ -x "$tool" ] && continue
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "cpu.sh: $tool is missing and $build is no CMake build (BUILD=DIR" \
      "names one; README.md says how to build kiln)" >&2
    exit 1
  fi
  echo "building the benchmark's tools in $build"
  cmake --build "$build" --target kiln kiln-opt kiln-translate kiln-bench \
    kiln-gemm-bench
  break
done

if [ $smoke = 1 ]; then
  step_options="--steps 1 --warm-up 1"
  gemm_options="--runs 1 --seconds 0"
  torch_options="--steps 1 --gpt-steps 1 --warm-steps 1 --gemm-runs 1
    --gemm-seconds 0"
else
  step_options="--steps 3 --seconds $seconds --warm-up 3"
  gemm_options="--runs 5 --seconds 0.2"
  torch_options="--steps 3 --gpt-steps 3 --seconds $seconds --warm-steps 3
    --gemm-runs 5 --gemm-seconds 0.2"
fi

# Other work on the machine slows both sides unevenly (threads that wait
# for each other are descheduled): say so.
load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")

# 1. The models and the GEMMs, compiled.
rm -rf "$dir/models"
mkdir -p "$dir/models"
rm -f "$dir"/*.jsonl
compile() { # NAME MODEL-FILE BATCH
  for emit in program cpp; do
    "$kiln" compile "$root/$2" --emit=$emit --bind batch="$3" \
      -o "$dir/models/$1.$emit"
  done
}
compile mlp-128 examples/mlp.kiln 128
compile mlp-1024 examples/mlp.kiln 1024
compile cnn-128 examples/cnn.kiln 128
compile gpt-tiny-64 test/models/gpt_tiny.kiln 64
"$opt" --kiln-schedule "$root/bench/gemm.mlir" |
  "$translate" --kernel-to-cpp --preamble -o "$dir/gemm.cpp"
# The GEMMs as PyTorch times them: MxNxK:LAYOUT from the kernels' names.
gemms=$(sed -n 's/.*kiln\.kernel "gemm_\([0-9x]*\)_\([nt][nt]\)".*/\1:\2/p' \
  "$root/bench/gemm.mlir" | paste -sd, -)

# 2. kiln.
echo "kiln: training steps and GEMMs on $threads threads"
# shellcheck disable=SC2086 # the options are words
"$step_bench" --device cpu --threads "$threads" $step_options \
  --json "$dir/kiln.jsonl" "$dir/models"
# shellcheck disable=SC2086
"$gemm_bench" --threads "$threads" $gemm_options --json "$dir/kiln-gemm.jsonl" \
  "$dir/gemm.cpp"

# 3. PyTorch, where it is installed.
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3
missing=
"$python" -c 'import torch' 2>/dev/null || missing=" torch"
"$python" -c 'import numpy' 2>/dev/null || missing="$missing numpy"
if [ -n "$missing" ]; then
  echo "PyTorch side skipped: $python cannot import$missing" \
    "(apt-get install python3-torch python3-numpy libopenblas0-pthread)"
  if [ $smoke = 0 ]; then
    echo "cpu.sh: the benchmark needs PyTorch; --smoke runs without it" >&2
    exit 1
  fi
else
  blas=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" -B -c \
    "import sys; sys.path.insert(0, '$root/bench'); import pytorch_steps
print(pytorch_steps.blas_library())")
  case $blas in
    *openblas*) ;;
    *) echo "warning: PyTorch's BLAS is $blas, not OpenBLAS: PyTorch is" \
         "several times slower so (apt-get install libopenblas0-pthread)" ;;
  esac
  echo "PyTorch: the same steps and GEMMs on $threads threads ($blas)"
  # shellcheck disable=SC2086
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$threads" \
    OMP_NUM_THREADS="$threads" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" \
    "$python" -B "$root/bench/pytorch_steps.py" \
    --device cpu --threads "$threads" $torch_options \
    --models mlp:128,mlp:1024,cnn:128,gpt-tiny:64 --gemm "$gemms" \
    > "$dir/pytorch.jsonl"
fi

# 4. The tables.
cat "$dir/kiln.jsonl" "$dir/kiln-gemm.jsonl" > "$dir/results.jsonl"
if [ -f "$dir/pytorch.jsonl" ]; then
  cat "$dir/pytorch.jsonl" >> "$dir/results.jsonl"
fi
"$python" -B "$root/bench/cpu_report.py" "$dir/results.jsonl"
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
echo "load average before $load_before, after $load_after ($(nproc) CPUs;" \
  "an idle machine gives timings worth comparing)"
echo "wrote $dir/results.jsonl"
