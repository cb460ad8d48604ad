# Fails when a C/C++ source differs from what clang-format makes of it.
file(GLOB_RECURSE sources
  ${ROOT}/include/*.h ${ROOT}/include/*.hpp ${ROOT}/runtime/*.cpp ${ROOT}/runtime/*.h
  ${ROOT}/core/*.cpp ${ROOT}/core/*.h ${ROOT}/format/*.cpp ${ROOT}/format/*.h ${ROOT}/tools/*.cpp
  ${ROOT}/trainer/*.cpp ${ROOT}/trainer/*.h
  ${ROOT}/examples/*.cpp ${ROOT}/examples/*.c ${ROOT}/tests/*.cpp ${ROOT}/tests/*.h ${ROOT}/tests/*.c
  ${ROOT}/runtime/*.cu ${ROOT}/runtime/*.cuh ${ROOT}/bench/*.cpp ${ROOT}/bench/*.h)
execute_process(COMMAND ${CLANG_FORMAT} --dry-run -Werror --style=file ${sources}
                WORKING_DIRECTORY ${ROOT} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format differences (run clang-format -i on these files):\n${err}")
endif()
list(LENGTH sources n)
message(STATUS "${n} files are clang-format clean")
