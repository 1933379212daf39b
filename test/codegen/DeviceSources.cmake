# Each file of codegen/device compiles on its own: the C++ ones with the
# host compiler, the CUDA ones with nvcc (skipped when there is none), the
# files both targets share after each target's header. Run as
# `cmake -DDIR=<codegen/device> -DCXX=<c++> -DNVCC=<nvcc> -P`.
function(check what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} does not compile on its own:\n${ARGN}\n${out}")
  endif()
  message(STATUS "${what}: compiles")
endfunction()

check(cpu.h ${CXX} -fsyntax-only -Wall -Werror -x c++ ${DIR}/cpu.h)
foreach(shared reduction.h window.h)
  check("${shared} (C++)" ${CXX} -fsyntax-only -Wall -Werror -x c++
        -include ${DIR}/cpu.h ${DIR}/${shared})
endforeach()
# The GEMM micro-kernel for the portable target and, on x86-64, for each
# vector instruction set it has a path for.
set(isas portable)
execute_process(COMMAND uname -m OUTPUT_VARIABLE machine
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(machine STREQUAL "x86_64")
  list(APPEND isas x86-64-v3 x86-64-v4)
endif()
foreach(isa IN LISTS isas)
  set(march "")
  if(NOT isa STREQUAL "portable")
    set(march -march=${isa})
  endif()
  check("cpu_gemm.h (${isa})" ${CXX} -fsyntax-only -Wall -Werror -x c++
        ${march} -include ${DIR}/cpu.h ${DIR}/cpu_gemm.h)
endforeach()
if(NOT NVCC OR NOT EXISTS "${NVCC}")
  message(STATUS "no nvcc: the CUDA files are not compiled")
  return()
endif()
set(cuda ${NVCC} -arch=sm_90 -x cu -c -o /dev/null)
foreach(shared reduction.h window.h)
  check("${shared} (CUDA)" ${cuda} -include ${DIR}/cuda.cuh ${DIR}/${shared})
endforeach()
foreach(file cuda.cuh reduction.cuh opaque.cuh attention.cuh)
  check(${file} ${cuda} -I${DIR} ${DIR}/${file})
endforeach()
