// Helpers shared by the unit tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api_model.h"
#include "model_storage.h"
#include "qisa.h"
#include "synthetic_model.h"

namespace qisa::test {

struct ModelDeleter {
  void operator()(qisa_model* m) const { qisa_model_free(m); }
};
using ModelPtr = std::unique_ptr<qisa_model, ModelDeleter>;

struct Loaded {
  qisa_status status = QISA_OK;
  std::string message;
  ModelPtr model;
};

// Loads bytes through the public C API (copying them).
Loaded load_bytes(const std::vector<uint8_t>& bytes, const qisa_model_params* params = nullptr);
// Serializes and loads a description.
Loaded load_desc(const writer::ModelDesc& desc, const qisa_model_params* params = nullptr);

// A path under the test's temporary directory; removed by the destructor.
class TempFile {
 public:
  explicit TempFile(const std::string& name);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace qisa::test
