#!/usr/bin/env bash
# Installs what kiln needs to build and test on Debian 12, if it is missing.
# Idempotent: installed packages are left alone.
set -euo pipefail

packages=(
  cmake ninja-build g++ python3 ccache
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
  libfmt-dev zlib1g-dev libgtest-dev
  clang libclang-rt-14-dev # libFuzzer for the parser fuzz target
  dataset-fashion-mnist    # the data set of kiln train and its tests
  openmpi-bin              # mpirun and libmpi.so.40: data-parallel trainers
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
