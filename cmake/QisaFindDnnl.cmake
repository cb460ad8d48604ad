# Finds oneDNN as DNNL::dnnl. Debian's dnnl-config.cmake demands OpenCL (its
# GPU runtime) even for CPU use; where the OpenCL development files are
# missing (e.g. the unpacked packages on a GPU machine), build the imported
# target from the library and headers directly.
if(TARGET DNNL::dnnl)
  return()
endif()
find_package(OpenCL QUIET)
if(OpenCL_FOUND)
  find_package(dnnl CONFIG REQUIRED)
else()
  find_path(QISA_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
  find_library(QISA_DNNL_LIBRARY NAMES dnnl REQUIRED)
  add_library(DNNL::dnnl SHARED IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES
    IMPORTED_LOCATION "${QISA_DNNL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${QISA_DNNL_INCLUDE_DIR}")
  message(STATUS "oneDNN: ${QISA_DNNL_LIBRARY} (without its CMake package: OpenCL not found)")
endif()
