// The C boundary: runs a body that may throw and turns any exception into a
// status and a message. Nothing propagates across extern "C".
#pragma once

#include <new>
#include <string>

#include "error.h"

namespace qisa {

template <class Body>
qisa_status guarded(std::string& message, Body&& body) noexcept {
  try {
    body();
    return QISA_OK;
  } catch (const Error& e) {
    try {
      message = e.what();
    } catch (...) {
    }
    return e.status();
  } catch (const std::bad_alloc&) {
    try {
      message = "out of memory";
    } catch (...) {
    }
    return QISA_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    try {
      message = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    return QISA_ERR_INTERNAL;
  } catch (...) {
    return QISA_ERR_INTERNAL;
  }
}

}  // namespace qisa
