// The CUDA engine's kernels, compiled as host C++ on the emulation shim
// (cuda_emulation.h: every block on CPU threads, real barriers and warp
// shuffles) and checked against the reference operations (reference_ops.h,
// dtype.h) — their arithmetic, indexing, strides, tails and reductions are
// tested on every machine, GPU or not. What only a device can show (launch
// limits, memory spaces, cuBLAS, graphs) is in tests/gpu.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_kernels.cuh"
#include "backends/ref/reference_ops.h"
#include "circuit.h"
#include "dtype.h"
#include "sampler.h"
#include "test_support.h"

namespace qisa {
namespace {

using cuda::kThreads;
using emu::launch;
using test::max_abs_diff;

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// A matrix [rows, cols] stored in type t, and what its rows mean.
struct Stored {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  cuda::StoredMatrix m;
};

Stored store(qisa_dtype t, int rows, int cols, uint32_t seed) {
  Stored s;
  const auto w = random_values(static_cast<size_t>(rows) * cols, seed);
  const size_t rb = *row_bytes(t, static_cast<uint64_t>(cols));
  s.bytes.resize(rb * rows);
  s.values.resize(w.size());
  for (int r = 0; r < rows; ++r) {
    quantize_row(t, w.data() + r * cols, static_cast<size_t>(cols), s.bytes.data() + r * rb);
    dequantize_row(t, s.bytes.data() + r * rb, static_cast<size_t>(cols), s.values.data() + r * cols);
  }
  s.m = {s.bytes.data(), t, rb, rows, cols};
  return s;
}

TEST(CudaKernels, LayerNormMatchesTheReference) {
  for (int d : {16, 48, 130}) {
    const int R = 3;
    const auto x = random_values(static_cast<size_t>(R) * d, 1, 3.0f), w = random_values(d, 2), b = random_values(d, 3);
    std::vector<float> got(x.size()), want(x.size());
    launch(dim3(R), dim3(kThreads), 0, cuda::layernorm_kernel, got.data(), x.data(), w.data(), b.data(), d, 1e-5f);
    ref::layernorm(want.data(), x.data(), w.data(), b.data(), R, d, 1e-5f);
    EXPECT_LE(max_abs_diff(got, want), 1e-5f) << "d " << d;
  }
}

// Every stored type, 1 to 8 rows, outputs not a multiple of the 4 warps per
// block, inputs with ragged Q8_0 / Q4_0 tails, strided x and y. (The CUDA
// engine multiplies f32 activations for every type.)
TEST(CudaKernels, GemvReadsEveryStoredTypeLikeADoubleSum) {
  for (qisa_dtype t : {QISA_DTYPE_F32, QISA_DTYPE_F16, QISA_DTYPE_BF16, QISA_DTYPE_Q8_0, QISA_DTYPE_Q4_0}) {
    for (int in : {24, 40, 100}) {
      const int out = 13, ldx = in + 3, ldy = out + 2;
      const Stored w = store(t, out, in, static_cast<uint32_t>(in));
      for (int R : {1, 3, 8}) {
        const auto x = random_values(static_cast<size_t>(R) * ldx, 7);
        std::vector<float> y(static_cast<size_t>(R) * ldy, -99.0f);
        auto kernel = t == QISA_DTYPE_F32    ? cuda::gemv_kernel<QISA_DTYPE_F32>
                      : t == QISA_DTYPE_F16  ? cuda::gemv_kernel<QISA_DTYPE_F16>
                      : t == QISA_DTYPE_BF16 ? cuda::gemv_kernel<QISA_DTYPE_BF16>
                      : t == QISA_DTYPE_Q8_0 ? cuda::gemv_kernel<QISA_DTYPE_Q8_0>
                                             : cuda::gemv_kernel<QISA_DTYPE_Q4_0>;
        launch(dim3((out + 3) / 4), dim3(kThreads), 0, kernel, y.data(), ldy, w.m, x.data(), ldx, R);
        for (int r = 0; r < R; ++r) {
          for (int o = 0; o < ldy; ++o) {
            const float got = y[static_cast<size_t>(r) * ldy + o];
            if (o >= out) {
              EXPECT_EQ(got, -99.0f) << "wrote past the outputs";
              continue;
            }
            double want = 0.0;
            for (int i = 0; i < in; ++i) want += double{x[static_cast<size_t>(r) * ldx + i]} * w.values[o * in + i];
            EXPECT_NEAR(got, want, 1e-4) << dtype_name(t) << " in " << in << " R " << R << " r " << r << " o " << o;
          }
        }
      }
    }
  }
}

TEST(CudaKernels, WidenGivesTheStoredValues) {
  for (qisa_dtype t : {QISA_DTYPE_F16, QISA_DTYPE_BF16, QISA_DTYPE_Q8_0, QISA_DTYPE_Q4_0}) {
    const Stored w = store(t, 5, 40, 11);
    std::vector<float> got(w.values.size(), NAN);
    auto kernel = t == QISA_DTYPE_F16    ? cuda::widen_kernel<QISA_DTYPE_F16>
                  : t == QISA_DTYPE_BF16 ? cuda::widen_kernel<QISA_DTYPE_BF16>
                  : t == QISA_DTYPE_Q8_0 ? cuda::widen_kernel<QISA_DTYPE_Q8_0>
                                         : cuda::widen_kernel<QISA_DTYPE_Q4_0>;
    launch(dim3(1), dim3(64), 0, kernel, got.data(), w.m);  // fewer threads than values: the grid-stride loop
    EXPECT_EQ(got, w.values) << dtype_name(t);
  }
}

TEST(CudaKernels, ArgmaxTakesTheLowestIndexOfEqualLargest) {
  const int V = 300;
  std::vector<float> logits = random_values(4 * V, 5);
  logits[7] = logits[250] = 9.0f;                               // row 0: a tie
  std::fill(logits.begin() + V, logits.begin() + 2 * V, 0.5f);  // row 1: all equal
  logits[3 * V - 1] = 9.0f;                                     // row 2: the last index
  std::vector<int32_t> got(4, -1);
  launch(dim3(4), dim3(kThreads), 0, cuda::argmax_kernel, got.data(), logits.data(), V);
  for (int r = 0; r < 4; ++r) EXPECT_EQ(got[static_cast<size_t>(r)], argmax(logits.data() + r * V, V)) << "row " << r;
  EXPECT_EQ(got[0], 7);
  EXPECT_EQ(got[1], 0);
  EXPECT_EQ(got[2], V - 1);
}

// A row with one NaN or infinite logit, wherever it is (each thread's
// stride, the last index), answers -1; the other rows their argmax.
TEST(CudaKernels, ArgmaxAnswersMinusOneForALogitThatIsNotFinite) {
  const int V = 300;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::pair<int, float>> bad = {{0, nan}, {1, inf}, {kThreads + 5, -inf}, {V - 1, nan}, {V - 2, inf}};
  std::vector<float> logits = random_values((bad.size() + 1) * V, 6);
  for (size_t r = 0; r < bad.size(); ++r) logits[r * V + static_cast<size_t>(bad[r].first)] = bad[r].second;
  std::vector<int32_t> got(bad.size() + 1, 7);
  launch(dim3(static_cast<unsigned>(got.size())), dim3(kThreads), 0, cuda::argmax_kernel, got.data(), logits.data(), V);
  for (size_t r = 0; r < bad.size(); ++r) EXPECT_EQ(got[r], -1) << "row " << r;
  EXPECT_EQ(got.back(), argmax(logits.data() + bad.size() * V, V));
}

TEST(CudaKernels, EmbeddingAddsTheStoredTokenAndPositionRows) {
  const int d = 40;
  const Stored tok = store(QISA_DTYPE_Q8_0, 65, d, 1), pos = store(QISA_DTYPE_F16, 16, d, 2);
  const std::vector<Row> rows = {{0, 0, 3, -1}, {1, 15, 64, 0}, {0, 7, 0, -1}};
  std::vector<float> got(rows.size() * d);
  launch(dim3(3), dim3(kThreads), 0, cuda::embed_kernel, got.data(), rows.data(), tok.m, pos.m, d);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int i = 0; i < d; ++i) {
      EXPECT_EQ(got[r * d + i], tok.values[rows[r].token * d + i] + pos.values[rows[r].pos * d + i]);
    }
  }
}

TEST(CudaKernels, BiasAndActivationMatchTheReference) {
  const int R = 3, n = 37, ldy = 40;
  const auto y0 = random_values(static_cast<size_t>(R) * ldy, 4, 3.0f), bias = random_values(n, 5);
  for (int act : {0, 1, 2}) {
    std::vector<float> got = y0, want = y0;
    launch(dim3(R), dim3(kThreads), 0, cuda::bias_act_kernel, got.data(), ldy, bias.data(), n, act);
    for (int r = 0; r < R; ++r) {
      float* w = want.data() + r * ldy;
      for (int i = 0; i < n; ++i) w[i] += bias[i];
      if (act == 1) ref::relu(w, n);
      if (act == 2) ref::gelu(w, n);
    }
    EXPECT_LE(max_abs_diff(got, want), 1e-6f) << "act " << act;  // columns past n untouched too
  }
}

TEST(CudaKernels, AmplitudeEncodingMatchesTheReference) {
  const int R = 2, d = 24, D = 32;
  const auto u = random_values(R * d, 6);
  for (int normalized : {1, 0}) {
    std::vector<float> got(R * D, NAN), want(R * D);
    launch(dim3(R), dim3(kThreads), 0, cuda::encode_kernel, got.data(), u.data(), d, D, normalized);
    ref::encode_amplitudes(want.data(), u.data(), R, d, D, normalized != 0);
    EXPECT_LE(max_abs_diff(got, want), 1e-6f) << "normalized " << normalized;
  }
}

// Pauli expectations of two projections' states phi = out[r, 2pD..] written
// into their destinations (q and k of a head, row stride d).
TEST(CudaKernels, PauliExpectationsMatchTheReference) {
  const int R = 3, D = 32, P = 2, h = 6, d = 20, width = 2 * P * D;
  const auto out = random_values(static_cast<size_t>(R) * width, 8);
  std::mt19937 rng(9);
  std::vector<unsigned long long> xm, zm;
  std::vector<PauliString> strings;
  for (int k = 0; k < P * h; ++k) {
    strings.push_back({rng() % D, rng() % D});
    xm.push_back(strings.back().x_mask);
    zm.push_back(strings.back().z_mask);
  }
  std::vector<float> q(static_cast<size_t>(R) * d, -1.0f), kk(q.size(), -1.0f);
  std::vector<float*> dest = {q.data() + 2, kk.data() + 5};  // a head's columns
  launch(dim3(R, P), dim3(kThreads), 0, cuda::pauli_kernel, dest.data(), d, out.data(), width, D, h, xm.data(),
         zm.data());
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) {
      const float* re = out.data() + static_cast<size_t>(r) * width + 2 * p * D;
      std::vector<float> want(h);
      ref::pauli_values(want.data(), re, re + D, D, strings.data() + p * h, h);
      for (int k = 0; k < h; ++k)
        EXPECT_NEAR(dest[static_cast<size_t>(p)][r * d + k], want[k], 1e-5) << "r " << r << " p " << p << " k " << k;
    }
  }
  EXPECT_EQ(q[0], -1.0f);  // outside the head's columns: untouched
  EXPECT_EQ(kk[4], -1.0f);
}

TEST(CudaKernels, ObservablesQuadraticFormIsPsiDotTheProducts) {
  const int R = 2, D = 16, P = 1, h = 3, d = 8, width = P * h * D;
  const auto out = random_values(static_cast<size_t>(R) * width, 10), psi = random_values(R * D, 11);
  std::vector<float> v(static_cast<size_t>(R) * d, 0.0f);
  std::vector<float*> dest = {v.data()};
  launch(dim3(R, P), dim3(kThreads), 0, cuda::observables_kernel, dest.data(), d, out.data(), width, psi.data(), D, h);
  for (int r = 0; r < R; ++r) {
    for (int k = 0; k < h; ++k) {
      double want = 0.0;
      for (int a = 0; a < D; ++a) want += double{psi[r * D + a]} * out[static_cast<size_t>(r) * width + k * D + a];
      EXPECT_NEAR(v[r * d + k], want, 1e-5);
    }
  }
}

// Keys, values and |k|^2 land at each row's (layer, sequence, position);
// attention over them equals ref::attention_row for both score kinds, dense
// and (QSAT) sparse.
TEST(CudaKernels, CacheWriteAndCausalAttentionMatchTheReference) {
  const int n_seq = 2, n_ctx = 8, d = 12, H = 2, hs = d / H, layers = 2, layer = 1;
  const cuda::CacheLayout c{n_seq, n_ctx, d, H};
  const size_t slots = static_cast<size_t>(layers) * n_seq * n_ctx;
  std::vector<float> K(slots * d, NAN), V(slots * d, NAN), KN(slots * H, NAN);
  // Sequence 1 fills positions 0..5 in one call, sequence 0 positions 0..2.
  std::vector<Row> rows;
  for (int p = 0; p < 6; ++p) rows.push_back({1, p, 0, -1});
  for (int p = 0; p < 3; ++p) rows.push_back({0, p, 0, -1});
  const int R = static_cast<int>(rows.size());
  const auto q = random_values(static_cast<size_t>(R) * d, 12), k = random_values(q.size(), 13),
             v = random_values(q.size(), 14);
  launch(dim3(R), dim3(kThreads), 0, cuda::kv_write_kernel, K.data(), V.data(), KN.data(), c, layer, rows.data(),
         k.data(), v.data(), hs);
  for (int r = 0; r < R; ++r) {
    const size_t at = c.at(layer, rows[r].seq, rows[r].pos);
    for (int i = 0; i < d; ++i) {
      EXPECT_EQ(K[at * d + i], k[r * d + i]);
      EXPECT_EQ(V[at * d + i], v[r * d + i]);
    }
    for (int h = 0; h < H; ++h) {
      double n2 = 0.0;
      for (int i = 0; i < hs; ++i) n2 += double{k[r * d + h * hs + i]} * k[r * d + h * hs + i];
      EXPECT_NEAR(KN[at * H + h], n2, 1e-5);
    }
  }
  // (gaussian, top_k, window): dense dot and Gaussian; sparse with 1 or 2
  // nearest keys and 0 or 1 recent positions (rows at positions 0..5).
  for (auto [gaussian, top_k, window] : {std::tuple{1, 0, 0}, {0, 0, 0}, {1, 2, 1}, {1, 1, 0}, {1, 2, 0}}) {
    std::vector<float> att(static_cast<size_t>(R) * d, NAN);
    for (int h = 0; h < H; ++h) {
      launch(dim3(R), dim3(kThreads), n_ctx * sizeof(float), cuda::attention_kernel, att.data(), q.data(), K.data(),
             V.data(), KN.data(), c, layer, rows.data(), h, hs, gaussian, 0.4f, top_k, window);
    }
    for (int r = 0; r < R; ++r) {
      const size_t first = c.at(layer, rows[r].seq, 0);
      std::vector<float> want(hs), scratch(n_ctx);
      for (int h = 0; h < H; ++h) {
        ref::attention_row(
            want.data(), q.data() + r * d + h * hs, K.data() + first * d + h * hs, KN.data() + first * H + h,
            V.data() + first * d + h * hs, rows[r].pos + 1, hs, d, d, H,
            ScoreRule{gaussian != 0, 0.4f, Sparsity{static_cast<uint32_t>(top_k), static_cast<uint32_t>(window)}},
            scratch.data());
        for (int i = 0; i < hs; ++i)
          EXPECT_NEAR(att[r * d + h * hs + i], want[i], 1e-5)
              << "gaussian " << gaussian << " top_k " << top_k << " window " << window << " row " << r << " head " << h;
      }
    }
  }
}

TEST(CudaKernels, GatherAndAddMoveTheRightRows) {
  const int d = 9;
  const auto src = random_values(5 * d, 15), b = random_values(5 * d, 16);
  const std::vector<int> index = {4, 0, 2};
  std::vector<float> dst(3 * d), sum(5 * d);
  launch(dim3(3), dim3(kThreads), 0, cuda::gather_kernel, dst.data(), src.data(), index.data(), d);
  launch(dim3(1), dim3(32), 0, cuda::add_kernel, sum.data(), src.data(), b.data(), size_t{5} * d);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < d; ++j) EXPECT_EQ(dst[i * d + j], src[index[static_cast<size_t>(i)] * d + j]);
  }
  for (size_t i = 0; i < sum.size(); ++i) EXPECT_EQ(sum[i], src[i] + b[i]);
}

}  // namespace
}  // namespace qisa
