# Installs the build tree into a scratch prefix and uses it as a user would,
# from outside the source tree:
#  - the installed qisa-generate and qisa-eval run without LD_LIBRARY_PATH
#    (their RPATH finds the installed libqisa);
#  - a C-only and a C++ CMake project find_package(qisa) and link it shared
#    and static (the README's C and C++ snippets);
#  - the C program built with pkg-config's flags, shared and static;
#  - the installed Python package, found through PYTHONPATH only, finds the
#    installed library by itself (the README's Python snippet).
# Every one of them generates the same text for seed 42 as the installed
# qisa-generate.
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed")
endif()
set(model ${prefix}/share/qisa/models/default.qisa)
foreach(f include/qisa.h include/qisa.hpp share/qisa/models/default.qisa)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install lacks ${f}")
  endif()
endforeach()
# The environment a user's shell has: no library paths of ours.
set(clean_env ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH --unset=QISA_LIBRARY --unset=PYTHONPATH)

function(run_ok out_var)
  execute_process(COMMAND ${clean_env} ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN}\nfailed (${rc}):\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

run_ok(want ${prefix}/bin/qisa-generate -m ${model} -n 100 -s 42 --quiet)
run_ok(eval_help ${prefix}/bin/qisa-eval --help)
string(LENGTH "${want}" n)
if(n LESS 100)
  message(FATAL_ERROR "installed qisa-generate printed: ${want}")
endif()

function(expect_same what got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "${what} generated other text than the installed qisa-generate:\n${got}\n---\n${want}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

foreach(lang c cxx)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/${lang} -B ${WORK}/build-${lang} -G ${GENERATOR}
                  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "downstream ${lang} configure failed:\n${out}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build-${lang} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "downstream ${lang} build failed:\n${out}")
  endif()
endforeach()
foreach(exe build-c/downstream_shared build-c/downstream_static build-cxx/downstream_cxx_shared
        build-cxx/downstream_cxx_static)
  run_ok(got ${WORK}/${exe} ${model})
  expect_same("${exe}" "${got}")
endforeach()

# pkg-config, shared and static.
file(GLOB pcdir LIST_DIRECTORIES true ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
foreach(kind shared static)
  set(args --cflags --libs qisa)
  if(kind STREQUAL static)
    set(args --static ${args})
  endif()
  execute_process(COMMAND pkg-config ${args} OUTPUT_VARIABLE flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config cannot find qisa in ${pcdir}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  if(kind STREQUAL static)  # the archive, not the shared library next to it
    list(TRANSFORM flags REPLACE "^-lqisa$" "-l:libqisa.a")
  endif()
  execute_process(COMMAND cc ${SOURCE_DIR}/c/main.c ${flags} -o ${WORK}/pc_${kind} RESULT_VARIABLE rc
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "compiling with pkg-config ${args} failed:\n${flags}\n${out}")
  endif()
  if(kind STREQUAL shared)  # pkg-config gives no RPATH: the loader needs the path
    file(GLOB libdir LIST_DIRECTORIES true ${prefix}/lib ${prefix}/lib/*-linux-gnu)
    string(REPLACE ";" ":" libpath "${libdir}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libpath} ${WORK}/pc_${kind} ${model}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE got ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "pkg-config shared build failed to run (${rc}):\n${got}\n${err}")
    endif()
  else()
    run_ok(got ${WORK}/pc_${kind} ${model})
  endif()
  expect_same("pkg-config ${kind}" "${got}")
endforeach()

# Python from the installed prefix, the library found next to the package.
find_program(python NAMES python3)
if(python)
  file(GLOB_RECURSE init ${prefix}/__init__.py)
  list(FILTER init INCLUDE REGEX "/qisa/__init__.py$")
  if(NOT init)
    message(FATAL_ERROR "install lacks the Python package")
  endif()
  list(GET init 0 init)
  get_filename_component(pkg ${init} DIRECTORY)
  get_filename_component(site ${pkg} DIRECTORY)
  execute_process(
    COMMAND ${clean_env} PYTHONPATH=${site} PYTHONDONTWRITEBYTECODE=1 ${python} -c
      "import qisa, sys; m = qisa.Model(sys.argv[1]); c = qisa.Context(m); print(qisa.library_path, file=sys.stderr); print('ROMEO:' + ''.join(c.generate('ROMEO:', max_tokens=100, seed=42)))"
      ${model}
    RESULT_VARIABLE rc OUTPUT_VARIABLE got ERROR_VARIABLE where)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installed Python package failed (${rc}):\n${got}\n${where}")
  endif()
  if(NOT where MATCHES "^${prefix}/")
    message(FATAL_ERROR "the installed Python package loaded ${where}, not the installed library")
  endif()
  expect_same("python" "${got}")
endif()
