// The CPU forward pass over a set of rows (sequence, position, token):
// every row's keys and values go into the KV cache, every row attends to its
// own sequence's positions 0..pos, and rows that ask get logits. Rows of
// many sequences share one GEMM per weight.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend.h"
#include "kv_cache.h"
#include "linear_op.h"
#include "matmul_dnnl.h"
#include "model.h"
#include "qisa.h"
#include "quantum_layer.h"
#include "weights.h"

namespace qisa {

class Engine : public Backend {
 public:
  Engine(const Model& model, const EngineOptions& options);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // rows.size() <= max_rows; positions of one sequence must be contiguous
  // with what the cache holds. logits: [slots, vocab].
  void forward(std::span<const Row> rows, KvCache& cache, float* logits) override;

  int64_t max_rows() const override { return max_rows_; }
  qisa_backend kind() const override { return QISA_BACKEND_CPU; }

 private:
  struct HeadPlan {
    qisa_attention_kind kind = QISA_ATTENTION_CSA;
    float scale = 1.0f;
    LinearOp q, k, v;  // linear projections (CSA q/k/v, v3 q/k); quantum ones live in LayerPlan::quantum
  };
  struct LayerPlan {
    const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
    LinearOp proj, up, down;
    std::vector<HeadPlan> heads;
    std::unique_ptr<QuantumLayer> quantum;  // null when no head is quantum-inspired
    std::vector<float*> quantum_dest;       // per projection: its first output column
  };

  void init_linear(LinearOp& l, const TensorView* w, const TensorView* b);
  void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R);
  void linear(LinearOp& l, const float* in, float* out, int64_t rows) { l.run(options_.engine, in, out, rows); }

  const Model& model_;
  EngineOptions options_;
  F32Weights weights_;
  DnnlContextPtr dnnl_;
  LinearScratch scratch_;
  std::vector<LayerPlan> layers_;
  LinearOp lm_head_;
  int64_t max_rows_, d_, hs_, n_ff_;
  // Scratch, sized once for max_rows.
  std::vector<float> x_, u_, q_, k_, v_, att_, hidden_, tmp_, scores_, logit_rows_;
  std::vector<int32_t> slot_scratch_;
};

}  // namespace qisa
