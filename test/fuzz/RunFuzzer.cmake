# Runs the parser fuzzer for a bounded time on a fresh copy of the seeds;
# fails on any crash, leak or sanitizer report.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
foreach(dir ${SEEDS})
  file(GLOB_RECURSE seeds ${dir}/*.kiln)
  file(COPY ${seeds} DESTINATION ${WORK})
endforeach()
execute_process(
  COMMAND ${FUZZER} ${WORK} -max_total_time=30 -timeout=10 -rss_limit_mb=2048
          -max_len=4096 -print_final_stats=1
  RESULT_VARIABLE result
)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the parser fuzzer found a problem (exit ${result})")
endif()
