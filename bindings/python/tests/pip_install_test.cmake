# pip install ./bindings/python, offline (--no-index), into a scratch
# folder; the installed package loads libqisa and reports the version its
# distribution metadata carries. Skipped (exit 0 with a note) without pip.
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${PYTHON} -m pip --version RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(STATUS "SKIPPED: no pip for ${PYTHON}")
  return()
endif()
execute_process(COMMAND ${PYTHON} -m pip install --no-index --no-cache-dir --disable-pip-version-check
                        --target ${WORK}/site ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pip install failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${WORK}/site QISA_LIBRARY=${LIBRARY}
                        ${PYTHON} -c "import qisa, importlib.metadata as m; print(qisa.__file__, qisa.version(), m.version('qisa'))"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the pip-installed package failed:\n${out}\n${err}")
endif()
separate_arguments(parts UNIX_COMMAND "${out}")
list(GET parts 0 file)
list(GET parts 1 lib_version)
list(GET parts 2 dist_version)
if(NOT file MATCHES "^${WORK}/site/" OR NOT lib_version STREQUAL dist_version)
  message(FATAL_ERROR "pip-installed package: ${out} (package path, library and distribution versions)")
endif()
message(STATUS "pip install: ${out}")
