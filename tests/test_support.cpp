#include "test_support.h"

#include <unistd.h>

#include <cstdio>

namespace qisa::test {

Loaded load_bytes(const std::vector<uint8_t>& bytes, const qisa_model_params* params) {
  Loaded r;
  qisa_model* m = nullptr;
  char err[1024] = "sentinel";
  r.status = qisa_model_load_buffer(bytes.empty() ? "" : static_cast<const void*>(bytes.data()), bytes.size(), params,
                                    &m, err, sizeof err);
  r.message = err;
  r.model.reset(m);
  return r;
}

Loaded load_desc(const writer::ModelDesc& desc, const qisa_model_params* params) {
  return load_bytes(writer::serialize(desc), params);
}

TempFile::TempFile(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  path_ = std::string(dir ? dir : "/tmp") + "/qisa_test_" + std::to_string(::getpid()) + "_" + name;
}

TempFile::~TempFile() {
  std::remove(path_.c_str());
}

}  // namespace qisa::test
