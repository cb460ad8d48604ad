// Internal error type. Thrown inside the library, caught at the C boundary
// (api_*.cpp) and turned into a qisa_status plus a message.
#pragma once

#include <cstdarg>
#include <cstring>
#include <exception>
#include <string>

#include "qisa.h"

namespace qisa {

class Error : public std::exception {
 public:
  Error(qisa_status status, std::string message) : status_(status), message_(std::move(message)) {}
  qisa_status status() const noexcept { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  qisa_status status_;
  std::string message_;
};

// The int a C caller stored in an enum-typed field or argument: C allows any
// int there, while reading a C++ enum outside its range is undefined, so the
// bits are copied instead of loaded as the enum.
template <class Enum>
int enum_bits(const Enum& e) noexcept {
  static_assert(sizeof(Enum) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// printf-style formatting into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void fail(qisa_status status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Copies `message` into a caller's buffer, truncating; tolerates NULL/0.
void copy_message(const std::string& message, char* buf, size_t size) noexcept;

}  // namespace qisa
