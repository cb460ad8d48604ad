# QISA_SANITIZE="address;undefined" or "thread": applied to every target.
if(QISA_SANITIZE)
  if("thread" IN_LIST QISA_SANITIZE AND "address" IN_LIST QISA_SANITIZE)
    message(FATAL_ERROR "QISA_SANITIZE: thread cannot be combined with address")
  endif()
  string(REPLACE ";" "," _qisa_san "${QISA_SANITIZE}")
  # Host code only: nvcc does not take these flags.
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=${_qisa_san};-fno-omit-frame-pointer;-fno-sanitize-recover=all>")
  add_link_options(-fsanitize=${_qisa_san})
endif()
