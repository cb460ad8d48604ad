# QISA_SANITIZE="address;undefined" or "thread": applied to every target.
if(QISA_SANITIZE)
  if("thread" IN_LIST QISA_SANITIZE AND "address" IN_LIST QISA_SANITIZE)
    message(FATAL_ERROR "QISA_SANITIZE: thread cannot be combined with address")
  endif()
  string(REPLACE ";" "," _qisa_san "${QISA_SANITIZE}")
  # Host code only: nvcc does not take these flags.
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=${_qisa_san};-fno-omit-frame-pointer;-fno-sanitize-recover=all>")
  add_link_options(-fsanitize=${_qisa_san})
  # clang links C programs (simple.c, the C header test) without the C++
  # parts of the sanitizer runtimes that libqisa's C++ code needs.
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    add_link_options("$<$<LINK_LANGUAGE:C>:-fsanitize-link-c++-runtime;-lstdc++>")
  endif()
endif()
