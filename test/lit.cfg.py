# lit configuration of the kiln test suite.
import os
import sys

import lit.formats
from lit.llvm import llvm_config

config.name = "kiln"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".kiln", ".test"]
config.excludes = [
    "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs", "unit", "fuzz",
    "runtime", "numerics", "models",
]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(("%examples", os.path.join(config.kiln_src_root, "examples")))

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])

# Training tests need the Debian package dataset-fashion-mnist.
if os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    config.available_features.add("fashion-mnist")
config.substitutions.append(("%python", sys.executable))
llvm_config.use_default_substitutions()

# kiln's tools first, then FileCheck, not, count from LLVM.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.kiln_tools_dir, append_path=True)
tools = ["kiln", "kiln-opt", "kiln-translate", "FileCheck", "not", "count"]
llvm_config.add_tool_substitutions(tools, [config.kiln_tools_dir, config.llvm_tools_dir])

# An AddressSanitizer build of kiln, when the build has one: the malformed
# input corpus runs through it too.
if config.kiln_asan_tools_dir and os.path.exists(
    os.path.join(config.kiln_asan_tools_dir, "kiln")
):
    config.available_features.add("asan")
    config.substitutions.append(
        ("%kiln_asan", os.path.join(config.kiln_asan_tools_dir, "kiln"))
    )

# Compiled trainers (test/trainer): `cuda-gpu` when this machine has a GPU
# the CUDA driver can use (probed with nvidia-smi, which the driver ships),
# so the tests of the no-GPU error path skip themselves there; `cmake` for
# the trainer built from its source directory with CMake alone.
import shutil
import subprocess


def _has_cuda_gpu():
    if not shutil.which("nvidia-smi"):
        return False
    try:
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and "GPU" in probe.stdout


if _has_cuda_gpu():
    config.available_features.add("cuda-gpu")
if shutil.which("cmake"):
    config.available_features.add("cmake")

# Data-parallel trainers (test/trainer): `mpi` when Open MPI's launcher and
# library (the runtime loads libmpi.so.40) are installed. CI runs as root,
# which mpirun refuses unless told.
import ctypes


def _has_open_mpi():
    if not shutil.which("mpirun"):
        return False
    try:
        ctypes.CDLL("libmpi.so.40")
    except OSError:
        return False
    return True


if _has_open_mpi():
    config.available_features.add("mpi")
    config.environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    config.environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
