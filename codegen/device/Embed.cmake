# Writes OUTPUT, a C++ header with each of FILES (codegen/device/*) as a
# string constant kDevice<Name><Ext> (reduction.cuh: kDeviceReductionCuh),
# the text a generated translation unit includes: each file's own lines
# `#include "..."` (its dependencies, which the code generator puts
# before it) are dropped. Run as `cmake -DOUTPUT=... -DFILES=a;b -P`.
set(text "// Generated from codegen/device by Embed.cmake: do not edit.\n#pragma once\n\nnamespace kiln::codegen::device {\n")
foreach(file IN LISTS FILES)
  get_filename_component(name "${file}" NAME)
  string(REGEX REPLACE "[.]" "_" id "${name}")
  string(REGEX MATCHALL "[^_]+" parts "${id}")
  set(symbol "kDevice")
  foreach(part IN LISTS parts)
    string(SUBSTRING "${part}" 0 1 head)
    string(SUBSTRING "${part}" 1 -1 tail)
    string(TOUPPER "${head}" head)
    string(APPEND symbol "${head}${tail}")
  endforeach()
  file(STRINGS "${file}" lines)
  file(READ "${file}" body)
  # Drop the file's own includes, and the blank line after them.
  string(REGEX REPLACE "#include \"[^\"]*\"\n" "" body "${body}")
  string(REGEX REPLACE "^\n" "" body "${body}")
  string(FIND "${body}" ")kiln\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains )kiln\" and cannot be embedded")
  endif()
  string(APPEND text "\n// ${name}\ninline constexpr const char ${symbol}[] = R\"kiln(${body})kiln\";\n")
endforeach()
string(APPEND text "\n} // namespace kiln::codegen::device\n")
file(WRITE "${OUTPUT}.tmp" "${text}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
