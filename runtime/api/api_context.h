// The C handle behind qisa_context*, shared by the context and generation
// API files.
#pragma once

#include <memory>
#include <string>

#include "api_guard.h"
#include "context.h"

struct qisa_context {
  std::unique_ptr<qisa::Context> impl;
  std::string last_error;

  // Runs body; records its message (or "") as the context's last error.
  template <class Body>
  qisa_status run(Body&& body) noexcept {
    std::string msg;
    const qisa_status st = qisa::guarded(msg, std::forward<Body>(body));
    try {
      last_error = st == QISA_OK ? std::string() : msg;
    } catch (...) {
    }
    return st;
  }
};
