#include "matmul_dnnl.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <future>
#include <unordered_map>

#include "error.h"
#include "omp_threads.h"

namespace qisa {

class DnnlContext {
 public:
  DnnlContext() : engine(dnnl::engine::kind::cpu, 0), stream(engine) {}
  dnnl::engine engine;
  dnnl::stream stream;
};

void DnnlContextDeleter::operator()(DnnlContext* c) const {
  std::default_delete<DnnlContext>()(c);
}

namespace {

// oneDNN's out-of-memory is the library's; anything else is the backend's.
[[noreturn]] void fail_dnnl(const dnnl::error& e, const char* what) {
  fail(e.status == dnnl_out_of_memory ? QISA_ERR_OUT_OF_MEMORY : QISA_ERR_BACKEND, "oneDNN: %s: %s", what, e.what());
}

}  // namespace

DnnlContextPtr make_dnnl_context() {
  try {
    return DnnlContextPtr(std::make_unique<DnnlContext>().release());
  } catch (const dnnl::error& e) {
    fail_dnnl(e, "cannot create a CPU engine");
  }
}

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

struct DnnlLinear::Impl {
  DnnlContext& ctx;
  int64_t in, out;
  int threads;  // the calling thread's OpenMP count at creation: the count it runs under
  dnnl::matmul prim;
  dnnl::memory weights, bias;
  bool has_bias;
  // Execution arguments per row count, made once and re-pointed per call,
  // so a warm decode step allocates nothing.
  std::unordered_map<int64_t, std::unordered_map<int, dnnl::memory>> io;

  Impl(DnnlContext& c, const float* w, const float* b, int64_t in_, int64_t out_, int64_t ld, PostOp post)
      : ctx(c), in(in_), out(out_), threads(omp_get_max_threads()), has_bias(b != nullptr) {
    const dnnl::memory::desc src_md(dims{DNNL_RUNTIME_DIM_VAL, in}, dt::f32, dims{in, 1});
    const dnnl::memory::desc wei_md(dims{in, out}, dt::f32, dims{1, ld});  // W^T of a row-major [out, in]
    const dnnl::memory::desc bias_md(dims{1, out}, dt::f32, dims{out, 1});
    const dnnl::memory::desc dst_md(dims{DNNL_RUNTIME_DIM_VAL, out}, dt::f32, dims{out, 1});
    const auto desc =
        has_bias ? dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md) : dnnl::matmul::desc(src_md, wei_md, dst_md);
    dnnl::primitive_attr attr;
    if (post != PostOp::None) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, post == PostOp::Relu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_gelu_erf,
                         0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, ctx.engine));
    weights = w ? dnnl::memory(wei_md, ctx.engine, const_cast<float*>(w))  // read only
                : dnnl::memory(wei_md, ctx.engine, DNNL_MEMORY_NONE);
    if (has_bias) bias = dnnl::memory(bias_md, ctx.engine, const_cast<float*>(b));
  }
};

DnnlLinear::DnnlLinear(DnnlContext& ctx, const float* w, const float* bias, int64_t in, int64_t out, int64_t ld,
                       PostOp post) {
  try {
    impl_ = std::make_unique<Impl>(ctx, w, bias, in, out, ld > 0 ? ld : in, post);
  } catch (const dnnl::error& e) {
    fail_dnnl(e, "cannot create a matmul");
  } catch (const std::future_error& e) {
    // oneDNN 2.6's primitive cache keeps the entry of a creation that ran
    // out of memory as a broken promise, and fails every later creation of
    // that shape with it (resizing the cache to flush it can hang).
    fail(QISA_ERR_BACKEND,
         "oneDNN: cannot create a %lldx%lld matmul: its primitive cache holds a failed creation of this shape "
         "(after running out of memory): %s; DNNL_PRIMITIVE_CACHE_CAPACITY=0 avoids the cache",
         static_cast<long long>(in), static_cast<long long>(out), e.what());
  }
}

DnnlLinear::~DnnlLinear() = default;

void DnnlLinear::run(const float* x, float* y, int64_t rows, const float* w) {
  Impl& m = *impl_;
  // oneDNN's OpenMP runtime also reads the count when it runs a primitive:
  // a one-thread twin called from a 2-thread context started a team of 2.
  const OmpThreadsScope scope(m.threads);
  try {
    if (w) m.weights.set_data_handle(const_cast<float*>(w));
    auto it = m.io.find(rows);
    if (it == m.io.end()) {
      const dnnl::memory::desc src_md(dims{rows, m.in}, dt::f32, dims{m.in, 1});
      const dnnl::memory::desc dst_md(dims{rows, m.out}, dt::f32, dims{m.out, 1});
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(src_md, m.ctx.engine, DNNL_MEMORY_NONE)},
                                                 {DNNL_ARG_WEIGHTS, m.weights},
                                                 {DNNL_ARG_DST, dnnl::memory(dst_md, m.ctx.engine, DNNL_MEMORY_NONE)}};
      if (m.has_bias) args.emplace(DNNL_ARG_BIAS, m.bias);
      it = m.io.emplace(rows, std::move(args)).first;
    }
    auto& args = it->second;
    args.at(DNNL_ARG_SRC).set_data_handle(const_cast<float*>(x));
    args.at(DNNL_ARG_DST).set_data_handle(y);
    m.prim.execute(m.ctx.stream, args);
    m.ctx.stream.wait();
  } catch (const dnnl::error& e) {
    fail_dnnl(e, "matmul failed");
  }
}

}  // namespace qisa
