// The public header compiles as C++ too (-pedantic -Werror) and its names
// live in the global namespace with C linkage.
#include <cstring>
#include <iostream>
#include <type_traits>

#include "qisa.h"
#include "qisa.hpp"

static_assert(std::is_same_v<decltype(&qisa_version), const char* (*)()>);
static_assert(QISA_OK == 0);

int main() {
  qisa_model* model = nullptr;
  const qisa_status st = qisa_model_load_buffer(nullptr, 0, nullptr, &model, nullptr, 0);
  if (st != QISA_ERR_INVALID_ARGUMENT || model != nullptr) return 1;
  std::cout << "C++: libqisa " << qisa_version() << "\n";
  return 0;
}
