# The GPU training check (ctest "gpu-train", label gpu), a CMake script so it
# runs wherever the runtime builds (no Python, no LLVM):
#
#   cmake -DPROBE=<kiln-kernel-check> -DSOURCE=<trainer source directory>
#         -DRUNTIME=<kiln's runtime/> -DWORK=<scratch directory>
#         [-DDATA=<Fashion-MNIST directory>] [-DMIN_ACCURACY=0.88]
#         [-DDEVICE=cuda] [-DARGS=<more trainer flags, ;-separated>]
#         -P TrainCheck.cmake
#
# SOURCE is what `kiln compile examples/mlp.kiln --emit=trainer-source
# --schedule cosine --total-steps 2340` writes (the main job's trainer). The
# script builds it with CMake against RUNTIME, trains five epochs on the GPU
# twice with the same seed, and fails unless the test accuracy after epoch 5
# is at least MIN_ACCURACY and both runs log the same losses and accuracies,
# bit for bit (everything but the times). Without a GPU it prints
# "gpu-train: skipped" (the test's SKIP_REGULAR_EXPRESSION).

foreach(var PROBE SOURCE RUNTIME WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "gpu-train: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED MIN_ACCURACY)
  set(MIN_ACCURACY 0.88)
endif()
if(NOT DEFINED DEVICE)
  set(DEVICE cuda)
endif()

execute_process(COMMAND "${PROBE}" --probe RESULT_VARIABLE probe
                OUTPUT_QUIET ERROR_QUIET)
if(probe EQUAL 77)
  message("gpu-train: skipped, no GPU")
  return()
endif()

# Build the trainer.
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${SOURCE}" -B "${WORK}/build"
          -DKILN_RUNTIME_DIR=${RUNTIME} -DCMAKE_BUILD_TYPE=Release
  RESULT_VARIABLE rc OUTPUT_FILE "${WORK}/configure.log"
  ERROR_FILE "${WORK}/configure.log")
if(NOT rc EQUAL 0)
  file(READ "${WORK}/configure.log" log)
  message(FATAL_ERROR "gpu-train: configuring ${SOURCE} failed:\n${log}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --build "${WORK}/build" --parallel
  RESULT_VARIABLE rc OUTPUT_FILE "${WORK}/build.log"
  ERROR_FILE "${WORK}/build.log")
if(NOT rc EQUAL 0)
  file(READ "${WORK}/build.log" log)
  message(FATAL_ERROR "gpu-train: building ${SOURCE} failed:\n${log}")
endif()
file(GLOB trainer "${WORK}/build/*-train")
list(LENGTH trainer count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "gpu-train: expected one *-train in ${WORK}/build, "
                      "found '${trainer}'")
endif()

# Two runs with the same (default) seed.
set(data_args)
if(DATA)
  set(data_args --data "${DATA}")
endif()
foreach(run a b)
  execute_process(
    COMMAND "${trainer}" --device ${DEVICE} --epochs 5 --save none
            --log "${WORK}/${run}.jsonl" ${data_args} ${ARGS}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
    TIMEOUT 600)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gpu-train: run ${run} exited with ${rc}")
  endif()
  # The log without its times: one line per epoch.
  file(STRINGS "${WORK}/${run}.jsonl" lines)
  set(figures_${run})
  foreach(line IN LISTS lines)
    string(JSON epoch ERROR_VARIABLE missing GET "${line}" epoch)
    string(JSON step ERROR_VARIABLE not_step GET "${line}" step)
    if(missing OR NOT not_step)
      continue() # a per-step line
    endif()
    string(JSON line ERROR_VARIABLE ignored REMOVE "${line}" seconds)
    string(JSON line ERROR_VARIABLE ignored REMOVE "${line}"
           samples_per_second)
    list(APPEND figures_${run} "${line}")
    set(last_${run} "${line}")
  endforeach()
endforeach()

string(JSON epoch ERROR_VARIABLE missing GET "${last_a}" epoch)
string(JSON accuracy ERROR_VARIABLE missing_accuracy GET "${last_a}"
       test_accuracy)
if(missing OR missing_accuracy OR NOT epoch EQUAL 5)
  message(FATAL_ERROR "gpu-train: the log's last epoch is not epoch 5 with "
                      "a test accuracy: ${last_a}")
endif()
if(accuracy LESS MIN_ACCURACY)
  message(FATAL_ERROR "gpu-train: test accuracy ${accuracy} after 5 epochs, "
                      "below ${MIN_ACCURACY}")
endif()
if(NOT figures_a STREQUAL figures_b)
  message(FATAL_ERROR "gpu-train: two runs with the same seed differ:\n"
                      "${figures_a}\n${figures_b}")
endif()
message("gpu-train: test accuracy ${accuracy} after 5 epochs (at least "
        "${MIN_ACCURACY}); two runs identical")
