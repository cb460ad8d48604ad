#include "cublas_loader.h"

#include <dlfcn.h>

namespace qisa {

namespace {

struct Loaded {
  Cublas api;
  std::string error;
};

Loaded load() {
  Loaded l;
  void* lib = nullptr;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  }
  if (!lib) {
    const char* e = dlerror();
    l.error = std::string("cannot load cuBLAS (libcublas.so.13): ") + (e ? e : "not found");
    return l;
  }
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    if (!p && l.error.empty()) l.error = std::string("cuBLAS lacks ") + name;
    return p;
  };
  l.api.create = reinterpret_cast<decltype(l.api.create)>(sym("cublasCreate_v2"));
  l.api.destroy = reinterpret_cast<decltype(l.api.destroy)>(sym("cublasDestroy_v2"));
  l.api.set_stream = reinterpret_cast<decltype(l.api.set_stream)>(sym("cublasSetStream_v2"));
  l.api.sgemm = reinterpret_cast<decltype(l.api.sgemm)>(sym("cublasSgemm_v2"));
  l.api.set_workspace = reinterpret_cast<decltype(l.api.set_workspace)>(sym("cublasSetWorkspace_v2"));
  return l;
}

}  // namespace

const Cublas* cublas(std::string* why) {
  static const Loaded loaded = load();  // thread-safe, once; immutable afterwards
  if (!loaded.error.empty()) {
    if (why) *why = loaded.error;
    return nullptr;
  }
  return &loaded.api;
}

}  // namespace qisa
