#!/bin/sh
# Writes the code kiln generates for every example into OUT, so that two
# snapshots show what a compiler change did to the generated code:
#   scripts/codegen-snapshot.sh /tmp/before      # on the old build
#   scripts/codegen-snapshot.sh /tmp/after       # on the new build
#   diff -r /tmp/before /tmp/after               # -wB: whitespace aside
# Per example (examples/*.kiln and test/models/gpt_tiny.kiln): the CUDA C,
# the C++ and the program at batch 1, 5, 128 and 4096 (the GPT: not 4096),
# with a run-time batch (--max-batch 256) also the tuning candidates, and
# the trainer's source; and the hand-written kernels of
# test/codegen/kernel-*.mlir through kiln-translate, as written and
# scheduled by kiln-schedule. A failed compilation leaves its message in
# NAME.err.
# usage: scripts/codegen-snapshot.sh OUT   (KILN_BIN: the tools' folder,
# default build/bin)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KILN_BIN:-$root/build/bin}
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
mkdir -p "$out"
cd "$root"
for file in examples/*.kiln test/models/gpt_tiny.kiln; do
  m=$(basename "$file" .kiln)
  for b in 1 5 128 4096; do
    [ "$m" = gpt ] && [ "$b" = 4096 ] && continue
    for e in cuda cpp program; do
      "$bin/kiln" compile "$file" --emit=$e --bind batch=$b \
        -o "$out/$m-b$b.$e" 2>"$out/$m-b$b.$e.err"
    done
  done
  for e in cuda cpp program cuda-candidates cpp-candidates; do
    "$bin/kiln" compile "$file" --emit=$e --max-batch 256 \
      -o "$out/$m-max.$e" 2>"$out/$m-max.$e.err"
  done
  [ "$m" = gpt ] || "$bin/kiln" compile "$file" --emit=trainer-source \
    -o "$out/$m.trainer" 2>"$out/$m.trainer.err"
done
for file in test/codegen/kernel-*.mlir; do
  m=$(basename "$file" .mlir)
  for t in cuda cpp; do
    "$bin/kiln-translate" "$file" -split-input-file --kernel-to-$t \
      -o "$out/$m.$t" 2>"$out/$m.$t.err"
    "$bin/kiln-opt" --kiln-schedule -split-input-file "$file" 2>/dev/null |
      "$bin/kiln-translate" -split-input-file --kernel-to-$t \
        -o "$out/$m.scheduled.$t" 2>"$out/$m.scheduled.$t.err"
  done
done
find "$out" -name '*.err' -empty -delete
echo "$(ls "$out" | wc -l) files in $out"
