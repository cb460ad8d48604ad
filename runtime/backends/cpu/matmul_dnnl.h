// y = x W^T + b with a oneDNN matmul primitive created once per weight
// (the row count is a runtime dimension), weights used in place.
#pragma once

#include <cstdint>
#include <memory>

namespace qisa {

class DnnlContext;  // engine + stream, one per qisa_context
struct DnnlContextDeleter {
  void operator()(DnnlContext* c) const;
};
using DnnlContextPtr = std::unique_ptr<DnnlContext, DnnlContextDeleter>;

DnnlContextPtr make_dnnl_context();

// An activation applied to the product's output inside the primitive (a
// oneDNN post-op: no second pass over the output).
enum class PostOp { None, Relu, GeluErf };

class DnnlLinear {
 public:
  // w [out, in] row-major with rows ld floats apart (0: in; nullptr: given
  // to every run()), bias [out] or nullptr.
  DnnlLinear(DnnlContext& ctx, const float* w, const float* bias, int64_t in, int64_t out, int64_t ld = 0,
             PostOp post = PostOp::None);
  ~DnnlLinear();
  DnnlLinear(const DnnlLinear&) = delete;
  DnnlLinear& operator=(const DnnlLinear&) = delete;

  // x [rows, in] -> y [rows, out], with weights w when not nullptr.
  // Throws qisa::Error(QISA_ERR_BACKEND).
  void run(const float* x, float* y, int64_t rows, const float* w = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qisa
