// The fast CPU kernels (generic and AVX2) against plain double-precision
// sums on the dequantized weights; quantized products do not depend on how
// many rows share a call; the fast engine keeps quantized matrices as
// stored.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <tuple>

#include "api_model.h"
#include "backends/cpu/circuit_gates.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/fast_ops.h"
#include "backends/cpu/linear_op.h"
#include "backends/cpu/matmul_dnnl.h"
#include "backends/cpu/omp_threads.h"
#include "backends/cpu/pauli_plan.h"
#include "backends/cpu/quantum_layer.h"
#include "backends/weights.h"
#include "circuit.h"
#include "dtype.h"
#include "model.h"
#include "synthetic_model.h"
#include "test_support.h"

namespace qisa {
namespace {

using test::random_values;

struct Stored {
  std::vector<uint8_t> bytes;
  size_t row_bytes;
  std::vector<float> dequantized;  // what the stored rows mean
};

Stored store(qisa_dtype t, const std::vector<float>& w, int64_t in, int64_t out) {
  Stored s;
  s.row_bytes = *row_bytes(t, static_cast<uint64_t>(in));
  s.bytes.resize(s.row_bytes * static_cast<size_t>(out));
  s.dequantized.resize(w.size());
  for (int64_t o = 0; o < out; ++o) {
    quantize_row(t, w.data() + o * in, static_cast<size_t>(in), s.bytes.data() + o * s.row_bytes);
    dequantize_row(t, s.bytes.data() + o * s.row_bytes, static_cast<size_t>(in), s.dequantized.data() + o * in);
  }
  return s;
}

// The activations as products with a type that rounds them use them
// (docs/format.md): per block of 32, dx = max|x| / 127, x -> dx * round(x / dx).
std::vector<float> rounded_activations(qisa_dtype t, const float* x, int64_t n) {
  std::vector<float> r(x, x + n);
  if (!dtype_traits(t).rounds_activations) return r;
  for (int64_t b0 = 0; b0 < n; b0 += 32) {
    const int64_t m = std::min<int64_t>(32, n - b0);
    float amax = 0.0f;
    for (int64_t i = 0; i < m; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
    for (int64_t i = 0; i < m; ++i)
      r[b0 + i] = amax > 0.0f ? (amax / 127.0f) * std::nearbyint(x[b0 + i] * (127.0f / amax)) : 0.0f;
  }
  return r;
}

// Every stored type of the table (f32 too, or not).
std::vector<qisa_dtype> types(bool with_f32) {
  std::vector<qisa_dtype> v;
  for (const DtypeTraits& d : dtypes())
    if (with_f32 || d.type != QISA_DTYPE_F32) v.push_back(d.type);
  return v;
}

std::vector<const CpuKernels*> kernel_sets() {
  std::vector<const CpuKernels*> v{&generic_cpu_kernels()};
  if (avx2_cpu_kernels()) v.push_back(avx2_cpu_kernels());
  return v;
}

// The sets with product kernels: also the AVX-512 VNNI one (Q8_0, Q4_0
// entries only) where the CPU has it.
std::vector<const CpuKernels*> linear_sets() {
  auto v = kernel_sets();
  if (vnni_kernels()) v.push_back(vnni_kernels());
  return v;
}

// The set whose product kernel for type t cpu_kernels() uses.
const CpuKernels& set_used_for(qisa_dtype t) {
  for (const CpuKernels* k : linear_sets())
    if (k->linear[t] == cpu_kernels().linear[t]) return *k;
  return generic_cpu_kernels();
}

// Dense attention through a kernel set: scores, then attend to every position.
void attention(const CpuKernels* k, float* out, const float* q, const float* keys, const float* norms,
               const float* values, int64_t n, int64_t h, int64_t k_stride, int64_t v_stride, int64_t norm_stride,
               bool gaussian, float scale, float* scratch) {
  k->scores(scratch, q, keys, norms, n, h, k_stride, norm_stride, gaussian, scale);
  k->attend(out, scratch, nullptr, n, values, v_stride, h, gaussian);
}

TEST(CpuKernels, Avx2IsUsedWhereTheCpuHasIt) {
  const char* force = std::getenv("QISA_CPU_KERNELS");
  if (force && std::string(force) == "generic") {
    EXPECT_STREQ(cpu_kernels().name, "generic");
    GTEST_SKIP() << "QISA_CPU_KERNELS=generic forces the portable kernels";
  }
  if (!avx2_cpu_kernels()) {
    EXPECT_STREQ(cpu_kernels().name, "generic");
    GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C: only the generic kernels are tested";
  }
  EXPECT_STREQ(cpu_kernels().name, "avx2") << "the backend should run the AVX2 kernels on this CPU";
  // Every per-type entry the AVX2 set has is the one used (the AVX-512
  // VNNI entries over it where the CPU has them); the others fall back to
  // the generic kernels.
  const CpuKernels* vnni = force && std::string(force) == "avx2" ? nullptr : vnni_kernels();
  for (int t = 0; t < kDtypeCount; ++t) {
    const auto& avx2 = *avx2_cpu_kernels();
    const LinearKernel want = vnni && vnni->linear[t] ? vnni->linear[t]
                              : avx2.linear[t]        ? avx2.linear[t]
                                                      : generic_cpu_kernels().linear[t];
    EXPECT_EQ(cpu_kernels().linear[t], want) << t;
    EXPECT_EQ(cpu_kernels().widen[t], avx2.widen[t] ? avx2.widen[t] : generic_cpu_kernels().widen[t]) << t;
  }
  std::printf("AVX-512 VNNI products: %s\n", vnni ? "used" : "not on this CPU (or forced off)");
}

// A set rounds the activations for exactly the types whose traits say so,
// and the rounding goes with the products of the same set.
TEST(CpuKernels, ActivationRoundingFollowsTheTypeTable) {
  for (const CpuKernels* k : linear_sets())
    for (const DtypeTraits& d : dtypes())
      if (k->linear[d.type]) {
        EXPECT_EQ(k->activations[d.type] != nullptr, d.rounds_activations) << k->name << d.name;
      }
  for (const DtypeTraits& d : dtypes())
    EXPECT_EQ(cpu_kernels().activations[d.type], set_used_for(d.type).activations[d.type]) << d.name;
}

TEST(CpuKernels, LinearOfEveryDtypeMatchesADoubleSum) {
  for (const CpuKernels* k : linear_sets()) {
    for (qisa_dtype t : types(true)) {
      const LinearKernel fn = k->linear[t];
      if (!fn) continue;  // a type this set leaves to the generic kernels
      // 72: a pair of blocks and an odd one (Q4_0 pairs); the last: two stack chunks
      for (int64_t in : {1, 5, 8, 31, 32, 40, 72, 100, 128, 8192 + 40}) {
        // out 9: two groups of four outputs (or one of eight) and one alone; 3 and no bias: no
        // group; 21: eight, eight, four and one.
        for (auto [rows, out, with_bias] :
             {std::tuple{1, 9, true}, {3, 9, true}, {1, 3, false}, {2, 8, false}, {2, 21, true}}) {
          const auto w = random_values(static_cast<size_t>(in * out), static_cast<uint32_t>(in));
          const auto x = random_values(static_cast<size_t>(rows * in), 7);
          const auto bias = random_values(static_cast<size_t>(out), 8);
          const Stored s = store(t, w, in, out);
          std::vector<float> y(static_cast<size_t>(rows * out), NAN);
          fn(y.data(), out, x.data(), in, s.bytes.data(), s.row_bytes, with_bias ? bias.data() : nullptr, rows, in,
             out);
          for (int64_t r = 0; r < rows; ++r) {
            const auto xr = rounded_activations(t, x.data() + r * in, in);
            if (k->activations[t]) {  // the rounding a many-row product uses: the same values
              std::vector<float> got(static_cast<size_t>(in), NAN);
              k->activations[t](x.data() + r * in, in, got.data());
              for (int64_t i = 0; i < in; ++i) ASSERT_EQ(got[i], xr[i]) << k->name << " in " << in << " i " << i;
            }
            for (int64_t o = 0; o < out; ++o) {
              double want = with_bias ? bias[o] : 0.0, mag = 0.0;
              for (int64_t i = 0; i < in; ++i) {
                want += double(xr[i]) * s.dequantized[o * in + i];
                mag += std::abs(double(xr[i]) * s.dequantized[o * in + i]);
              }
              EXPECT_NEAR(y[r * out + o], want, 1e-6 * (1.0 + mag))
                  << k->name << " " << dtype_name(t) << " in " << in << " row " << r << " col " << o;
            }
          }
        }
      }
    }
  }
}

// Q8_0 weights at the ends of int8, -128 included (the format's quantizer
// writes -127..127, a file may hold any byte): the integer products, few-row
// and many-row, take |w| as unsigned, which -128 must survive. Against the
// dequantized rows.
TEST(CpuKernels, Q8WeightsAtTheEndsOfInt8MatchADoubleSum) {
  const int64_t in = 96, out = 9, rows = 19;
  const qisa_dtype t = QISA_DTYPE_Q8_0;
  const size_t rb = *row_bytes(t, in);
  std::vector<uint8_t> w(rb * out);
  std::mt19937 rng(5);
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t at = i % rb % kQ8BlockBytes;
    if (at == 0)
      w[i] = 0x1f;  // scale 0x2c1f (about 0.065), little-endian
    else if (at == 1)
      w[i] = 0x2c;
    else
      w[i] = static_cast<uint8_t>(i % 3 == 0 ? 0x80 : i % 3 == 1 ? 0x7f : rng() & 0xff);
  }
  std::vector<float> dq(static_cast<size_t>(in * out));
  for (int64_t o = 0; o < out; ++o) dequantize_row(t, w.data() + o * rb, static_cast<size_t>(in), dq.data() + o * in);
  ASSERT_FLOAT_EQ(dq[1] * 127.0f, -128.0f * dq[2]);  // bytes 0x80 and 0x7f: -128 and 127 times the scale
  const auto x = random_values(static_cast<size_t>(rows * in), 3);
  // The few-row kernels of every set, then the many-row kernels of every
  // set that has them (the AVX2 one multiplies |w| by x with w's sign).
  std::vector<std::pair<std::string, std::function<void(float*)>>> runs;
  for (const CpuKernels* k : linear_sets())
    runs.emplace_back(k->name,
                      [&, k](float* y) { k->linear[t](y, out, x.data(), in, w.data(), rb, nullptr, rows, in, out); });
  std::vector<std::pair<std::string, const BatchKernel*>> batch_sets;
  if (avx2_cpu_kernels()) batch_sets.emplace_back("avx2 batch", &avx2_cpu_kernels()->batch[t]);
  if (vnni_kernels()) batch_sets.emplace_back("vnni batch", &vnni_kernels()->batch[t]);
  if (amx_batch_kernels()) batch_sets.emplace_back("amx batch", &amx_batch_kernels()[t]);
  for (const auto& [name, bk] : batch_sets) {
    runs.emplace_back(name, [&, bk = bk](float* y) {
      std::vector<uint8_t> packed(bk->bytes(rows, in)), work(bk->work_bytes(in));
      bk->pack(x.data(), in, rows, in, packed.data());
      bk->product(y, out, packed.data(), rows, in, w.data(), rb, nullptr, out, work.data());
    });
  }
  for (const auto& [name, run] : runs) {
    std::vector<float> y(static_cast<size_t>(rows * out), NAN);
    run(y.data());
    for (int64_t r = 0; r < rows; ++r) {
      const auto xr = rounded_activations(t, x.data() + r * in, in);
      for (int64_t o = 0; o < out; ++o) {
        double want = 0.0, mag = 0.0;
        for (int64_t i = 0; i < in; ++i) {
          want += double(xr[i]) * dq[o * in + i];
          mag += std::abs(double(xr[i]) * dq[o * in + i]);
        }
        EXPECT_NEAR(y[r * out + o], want, 1e-6 * (1.0 + mag)) << name << " row " << r << " col " << o;
      }
    }
  }
}

// A weight matrix of 1 MiB or more, which the few-row kernels read one row
// after another instead of four rows interleaved (kSequentialRowsBytes,
// rounded_linear.h): the same double sums, for one and two rows and a row
// count that leaves outputs after the last group of four.
TEST(CpuKernels, LinearOfAMatrixReadRowByRowMatchesADoubleSum) {
  // Whole 8-block steps, then a tail of 2 blocks (the last one partial), of
  // one block, or a group of four blocks and a partial one.
  for (const int64_t in : {1024 + 40, 800, 1176})
    for (const CpuKernels* k : linear_sets()) {
      for (qisa_dtype t : types(true)) {
        const LinearKernel fn = k->linear[t];
        if (!fn) continue;
        const size_t rb = *row_bytes(t, static_cast<uint64_t>(in));
        const auto out = static_cast<int64_t>(((size_t{1} << 20) + rb - 1) / rb / 4 * 4 + 3);
        const auto w = random_values(static_cast<size_t>(in * out), 11);
        const auto x = random_values(static_cast<size_t>(2 * in), 12);
        const auto bias = random_values(static_cast<size_t>(out), 13);
        const Stored s = store(t, w, in, out);
        ASSERT_GE(s.bytes.size(), size_t{1} << 20);
        for (int64_t rows : {1, 2}) {
          std::vector<float> y(static_cast<size_t>(rows * out), NAN);
          fn(y.data(), out, x.data(), in, s.bytes.data(), s.row_bytes, bias.data(), rows, in, out);
          for (int64_t r = 0; r < rows; ++r) {
            const auto xr = rounded_activations(t, x.data() + r * in, in);
            for (int64_t o = 0; o < out; ++o) {
              double want = bias[o], mag = 0.0;
              for (int64_t i = 0; i < in; ++i) {
                want += double(xr[i]) * s.dequantized[o * in + i];
                mag += std::abs(double(xr[i]) * s.dequantized[o * in + i]);
              }
              ASSERT_NEAR(y[r * out + o], want, 1e-6 * (1.0 + mag)) << k->name << " " << dtype_name(t) << " in " << in
                                                                    << " rows " << rows << " row " << r << " col " << o;
            }
          }
        }
      }
    }
}

// Many-row kernels on the stored weight (AMX, AVX-512 VNNI): the double
// sum over the rounded activations, for ragged row tiles, output tiles and
// blocks, strided rows and a bias or none; each set skipped (visibly) on
// CPUs without it.
void check_batch_kernels(const BatchKernel* set, const char* name) {
  int tested = 0;
  for (const DtypeTraits& d : dtypes()) {
    const BatchKernel& bk = set[d.type];
    if (!bk.product) continue;
    EXPECT_TRUE(d.rounds_activations) << d.name;
    ++tested;
    for (int64_t in : {1, 31, 40, 100, 512}) {
      for (auto [rows, out, with_bias] : {std::tuple{1, 5, true}, {17, 16, false}, {33, 40, true}, {16, 33, true}}) {
        const int64_t ldx = in + 3, ldy = out + 5;
        const auto w = random_values(static_cast<size_t>(in * out), static_cast<uint32_t>(in + out));
        const auto x = random_values(static_cast<size_t>(rows * ldx), 7);
        const auto bias = random_values(static_cast<size_t>(out), 8);
        const Stored s = store(d.type, w, in, out);
        std::vector<uint8_t> packed(bk.bytes(rows, in));
        bk.pack(x.data(), ldx, rows, in, packed.data());
        std::vector<float> y(static_cast<size_t>(rows * ldy), NAN);
        std::vector<uint8_t> work(bk.work_bytes(in));
        bk.product(y.data(), ldy, packed.data(), rows, in, s.bytes.data(), s.row_bytes,
                   with_bias ? bias.data() : nullptr, out, work.data());
        for (int64_t r = 0; r < rows; ++r) {
          const auto xr = rounded_activations(d.type, x.data() + r * ldx, in);
          for (int64_t o = 0; o < ldy; ++o) {
            const float got = y[static_cast<size_t>(r * ldy + o)];
            if (o >= out) {
              ASSERT_TRUE(std::isnan(got)) << "wrote past the outputs";
              continue;
            }
            double want = with_bias ? bias[o] : 0.0, mag = 0.0;
            for (int64_t i = 0; i < in; ++i) {
              want += double(xr[i]) * s.dequantized[o * in + i];
              mag += std::abs(double(xr[i]) * s.dequantized[o * in + i]);
            }
            ASSERT_NEAR(got, want, 1e-6 * (1.0 + mag)) << name << " " << d.name << " in " << in << " rows " << rows
                                                       << " out " << out << " r " << r << " o " << o;
          }
        }
      }
    }
  }
  EXPECT_EQ(tested, 2) << name;  // q8_0 and q4_0
}

TEST(CpuKernels, AmxBatchKernelsMatchADoubleSumOfTheRoundedRows) {
  const BatchKernel* amx = amx_batch_kernels();
  if (!amx) GTEST_SKIP() << "this CPU (or build) has no AMX-INT8 + AVX-512: no AMX batch kernels";
  if (!std::getenv("QISA_CPU_KERNELS")) {
    for (int t = 0; t < kDtypeCount; ++t) EXPECT_EQ(cpu_kernels().batch[t].product, amx[t].product) << t;
  }
  check_batch_kernels(amx, "amx");
}

TEST(CpuKernels, VnniBatchKernelsMatchADoubleSumOfTheRoundedRows) {
  const CpuKernels* vnni = vnni_kernels();
  if (!vnni) GTEST_SKIP() << "this CPU (or build) has no AVX-512 VNNI: no VNNI batch kernels";
  if (!std::getenv("QISA_CPU_KERNELS") && !amx_batch_kernels()) {
    for (int t = 0; t < kDtypeCount; ++t) EXPECT_EQ(cpu_kernels().batch[t].product, vnni->batch[t].product) << t;
  }
  check_batch_kernels(vnni->batch, "vnni");
}

TEST(CpuKernels, Avx2BatchKernelsMatchADoubleSumOfTheRoundedRows) {
  const CpuKernels* avx2 = avx2_cpu_kernels();
  if (!avx2) GTEST_SKIP() << "this CPU (or build) has no AVX2: no AVX2 batch kernels";
  if (!std::getenv("QISA_CPU_KERNELS") && !vnni_kernels() && !amx_batch_kernels()) {
    for (int t = 0; t < kDtypeCount; ++t) EXPECT_EQ(cpu_kernels().batch[t].product, avx2->batch[t].product) << t;
  }
  check_batch_kernels(avx2->batch, "avx2");
}

// LayerNorm of every set against the formula in double: widths below,
// at and past a vector (masked tails), rows of a common offset and spread
// (the variance of the centred row, not E[x^2] - mean^2, which loses it),
// and in place.
TEST(CpuKernels, LayerNormMatchesTheFormulaInDouble) {
  for (const CpuKernels* k : kernel_sets()) {
    ASSERT_NE(k->layernorm, nullptr) << k->name;
    for (int64_t d : {1, 5, 8, 13, 16, 24, 33, 128, 771}) {
      const int64_t R = 3;
      auto x = random_values(static_cast<size_t>(R * d), static_cast<uint32_t>(d));
      for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(d + i)] += 1000.0f;  // row 1: far from 0
      const auto w = random_values(static_cast<size_t>(d), 11), b = random_values(static_cast<size_t>(d), 12);
      const float eps = 1e-5f;
      for (bool in_place : {false, true}) {
        std::vector<float> out(static_cast<size_t>(R * d + 1), NAN);
        if (in_place) std::copy(x.begin(), x.end(), out.begin());
        k->layernorm(out.data(), in_place ? out.data() : x.data(), w.data(), b.data(), R, d, eps);
        for (int64_t r = 0; r < R; ++r) {
          double mean = 0.0, var = 0.0;
          for (int64_t i = 0; i < d; ++i) mean += x[static_cast<size_t>(r * d + i)];
          mean /= static_cast<double>(d);
          for (int64_t i = 0; i < d; ++i) var += std::pow(x[static_cast<size_t>(r * d + i)] - mean, 2);
          var /= static_cast<double>(d);
          for (int64_t i = 0; i < d; ++i) {
            const double want = (x[static_cast<size_t>(r * d + i)] - mean) / std::sqrt(var + eps) * w[i] + b[i];
            // Row 1's offset costs f32 its low bits: 1000 is 2^10 times the spread.
            const double tol = r == 1 ? 5e-4 : 2e-5;
            ASSERT_NEAR(out[static_cast<size_t>(r * d + i)], want, tol * (1.0 + std::abs(want)))
                << k->name << " d " << d << " row " << r << " i " << i << " in place " << in_place;
          }
        }
        EXPECT_TRUE(std::isnan(out[static_cast<size_t>(R * d)])) << k->name << ": wrote past the rows";
      }
    }
  }
}

// The expansion before many-row products gives exactly the stored values
// (load_element: one element at a time), whole blocks and ragged tails.
TEST(CpuKernels, WidenGivesTheStoredValues) {
  for (const CpuKernels* k : kernel_sets()) {
    for (qisa_dtype t : types(false)) {
      const WidenKernel widen = k->widen[t];
      if (!widen) continue;
      for (int64_t n : {1, 7, 8, 9, 31, 32, 33, 64, 100}) {
        const Stored s = store(t, random_values(static_cast<size_t>(n), static_cast<uint32_t>(n)), n, 1);
        std::vector<float> got(static_cast<size_t>(n), NAN);
        widen(s.bytes.data(), n, got.data());
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(got[static_cast<size_t>(i)], load_element(t, s.bytes.data(), static_cast<size_t>(i)))
              << k->name << " " << dtype_name(t) << " n " << n << " i " << i;
        }
      }
    }
  }
}

TEST(CpuKernels, PauliProductsMatchTheFormula) {
  for (const CpuKernels* k : kernel_sets()) {
    for (int64_t D : {2, 4, 8, 16, 64}) {
      const auto re = random_values(static_cast<size_t>(D), 1), im = random_values(static_cast<size_t>(D), 2);
      std::vector<float> p(static_cast<size_t>(D));
      for (uint64_t x = 0; x < static_cast<uint64_t>(D); ++x) {
        for (bool imaginary : {false, true}) {
          k->pauli_products(p.data(), re.data(), im.data(), x, imaginary, D);
          for (int64_t j = 0; j < D; ++j) {
            const auto jx = static_cast<int64_t>(static_cast<uint64_t>(j) ^ x);
            // conj(a) b with a = phi[j ^ x], b = phi[j]
            const double want = imaginary ? double(re[jx]) * im[j] - double(im[jx]) * re[j]
                                          : double(re[jx]) * re[j] + double(im[jx]) * im[j];
            EXPECT_NEAR(p[j], want, 1e-6) << k->name << " D " << D << " x " << x;
          }
        }
      }
    }
  }
}

// Every string's value Re(i^ny sum_j conj(phi[j ^ x]) (-1)^popcount(j & z)
// phi[j]) in double, against each kernel set's pauli_sums on the plan:
// strings alone in their group, small groups (signed sums) and large ones
// (transform), halved (highest X bit >= 3) and not, Re and Im parts; and
// the strings-in-lanes kernel (pauli_lanes) for states up to 16 and the
// rows-in-lanes one (pauli_rows) up to 256.
TEST(CpuKernels, PauliSumsMatchTheDefinition) {
  for (int64_t D : {4, 8, 16, 32, 64, 128, 256, 512}) {
    const auto re = random_values(static_cast<size_t>(D), 6), im = random_values(static_cast<size_t>(D), 7);
    std::vector<PauliString> strings;
    const auto Du = static_cast<uint64_t>(D);
    if (D <= 16) {  // every (x, z): groups of D / 2 strings
      for (uint64_t x = 0; x < Du; ++x)
        for (uint64_t z = 0; z < Du; ++z) strings.push_back({x, z});
      strings.resize(strings.size() - 3);  // the lane layout's last pass part full
    } else {
      for (uint64_t x = 0; x < Du; x += 3) strings.push_back({x, (x * 2654435761u) % Du});  // mostly alone
      for (uint64_t x : {Du / 2 + 1, Du - 1, uint64_t{5}})                                  // two strings each
        for (uint64_t z : {uint64_t{1}, Du / 4 + 3}) strings.push_back({x, z});
      for (uint64_t z = 0; z < Du; z += 2) strings.push_back({Du / 4 + 2, z});  // a transform
      for (uint64_t z = 1; z <= 10; ++z) strings.push_back({0, z * 7 % Du});    // one of Z strings
    }
    const PauliPlanData data(strings, D);
    const PauliPlan plan = data.view();
    int halved = 0, walsh = 0, alone = 0;
    for (int64_t g = 0; g < plan.n_groups; ++g) {
      halved += plan.groups[g].bit >= 0;
      walsh += plan.groups[g].walsh;
      alone += plan.groups[g].count == 1;
    }
    EXPECT_EQ(halved > 0, D >= 16) << D;
    EXPECT_GT(walsh, 0) << D;
    if (D > 16) {
      EXPECT_GT(alone, 0) << D;
    }
    // The values in double and the sum of the terms' magnitudes (for the tolerance).
    auto definition = [&](const std::vector<float>& re_, const std::vector<float>& im_) {
      std::pair<std::vector<double>, std::vector<double>> v{std::vector<double>(strings.size()),
                                                            std::vector<double>(strings.size())};
      for (size_t k = 0; k < strings.size(); ++k) {
        const auto [x, z] = strings[k];
        std::complex<double> sum = 0.0;
        for (int64_t j = 0; j < D; ++j) {
          const auto jx = static_cast<size_t>(static_cast<uint64_t>(j) ^ x);
          const auto ju = static_cast<size_t>(j);
          const std::complex<double> term =
              std::conj(std::complex<double>(re_[jx], im_[jx])) * std::complex<double>(re_[ju], im_[ju]);
          sum += (std::popcount(static_cast<uint64_t>(j) & z) & 1) ? -term : term;
          v.second[k] += std::abs(term);
        }
        const int ny = std::popcount(x & z);
        v.first[k] = (std::pow(std::complex<double>(0.0, 1.0), ny) * sum).real();
      }
      return v;
    };
    const auto [want, magnitude] = definition(re, im);
    EXPECT_EQ(plan.lane_count > 0, D <= kPauliLaneStates) << D;
    // Each set's pauli_sums, and its pauli_lanes where it has one and the plan a lane layout.
    std::vector<std::pair<const char*, PauliSumsKernel>> kernels;
    auto sets = kernel_sets();
    if (avx512_kernels()) sets.push_back(avx512_kernels());
    for (const CpuKernels* k : sets) {
      if (k->pauli_sums) kernels.emplace_back(k->name, k->pauli_sums);
      if (k->pauli_lanes && plan.lane_count > 0) kernels.emplace_back(k->name, k->pauli_lanes);
    }
    if (avx512_kernels() && D <= kPauliLaneStates) {
      EXPECT_EQ(kernels.back().second, avx512_kernels()->pauli_lanes);
    }
    for (const auto& [name, kernel] : kernels) {
      std::vector<float> out(strings.size() + 1, NAN), scratch(static_cast<size_t>(D));
      kernel(plan, re.data(), im.data(), out.data(), scratch.data());
      for (size_t i = 0; i < strings.size(); ++i)
        ASSERT_NEAR(out[i], want[i], 2e-6 * (1.0 + magnitude[i]))
            << name << " D " << D << " x " << strings[i].x_mask << " z " << strings[i].z_mask;
      EXPECT_TRUE(std::isnan(out[strings.size()])) << name << ": wrote past the strings";
    }
    // small_value_rows: the encoding, U psi and the sums, for inputs of d
    // = D and d < D (zero padding), normalized and raw, rows apart by more
    // than d and outputs by more than the strings; against the encoding
    // and the product in double, then the definition.
    // unitary_pauli_rows (rows in lanes) the same for 19 rows, called as
    // QuantumLayer does: a block of kPauliRows rows and one of three.
    std::vector<std::tuple<std::string, SmallValueKernel, UnitaryPauliRowsKernel, int64_t>> small;
    for (const CpuKernels* k : sets) {
      if (k->small_value_rows)
        small.emplace_back(std::string(k->name) + " small_value_rows", k->small_value_rows, nullptr, 3);
      if (k->unitary_pauli_rows)
        small.emplace_back(std::string(k->name) + " unitary_pauli_rows", nullptr, k->unitary_pauli_rows, 19);
    }
    for (const auto& [small_name, small_kernel, unitary_rows, R] : small) {
      if (plan.lane_count == 0) continue;
      const auto u = random_values(static_cast<size_t>(2 * D * D), 31);  // Re U [D][D], then Im U
      for (int64_t d : {D, D - 1}) {
        for (bool normalized : {true, false}) {
          const int64_t ldx = d + 2, stride = static_cast<int64_t>(strings.size()) + 2;
          std::vector<float> cols(static_cast<size_t>(d * 2 * kPauliLaneStates), 0.0f);
          for (int64_t c = 0; c < d; ++c)
            for (int64_t j = 0; j < D; ++j) {
              cols[static_cast<size_t>(c * 32 + j)] = u[static_cast<size_t>(j * D + c)];
              cols[static_cast<size_t>(c * 32 + 16 + j)] = u[static_cast<size_t>(D * D + j * D + c)];
            }
          const auto x = random_values(static_cast<size_t>(R * ldx), 40 + static_cast<int>(d));
          std::vector<float> out(static_cast<size_t>(R * stride), NAN);
          if (small_kernel) {
            small_kernel(plan, cols.data(), x.data(), ldx, d, R, normalized, out.data(), stride);
          } else {
            std::vector<float> scratch(static_cast<size_t>(pauli_rows_scratch(plan)), NAN);
            for (int64_t r0 = 0; r0 < R; r0 += kPauliRows)
              unitary_rows(plan, cols.data(), x.data() + r0 * ldx, ldx, d, std::min(kPauliRows, R - r0), normalized,
                           out.data() + r0 * stride, stride, scratch.data());
          }
          for (int64_t r = 0; r < R; ++r) {
            double norm = 0.0;
            for (int64_t c = 0; c < d; ++c)
              norm += double(x[static_cast<size_t>(r * ldx + c)]) * x[static_cast<size_t>(r * ldx + c)];
            const double inv = normalized ? 1.0 / std::sqrt(norm) : 1.0;
            std::vector<float> pr(static_cast<size_t>(D)), pi(static_cast<size_t>(D));
            for (int64_t j = 0; j < D; ++j) {
              double a = 0.0, b = 0.0;
              for (int64_t c = 0; c < d; ++c) {
                const double psi = x[static_cast<size_t>(r * ldx + c)] * inv;
                a += u[static_cast<size_t>(j * D + c)] * psi;
                b += u[static_cast<size_t>(D * D + j * D + c)] * psi;
              }
              pr[static_cast<size_t>(j)] = static_cast<float>(a);
              pi[static_cast<size_t>(j)] = static_cast<float>(b);
            }
            const auto [w, mag] = definition(pr, pi);
            for (size_t i = 0; i < strings.size(); ++i)
              ASSERT_NEAR(out[static_cast<size_t>(r * stride) + i], w[i], 1e-5 * (1.0 + mag[i]))
                  << small_name << " D " << D << " d " << d << " normalized " << normalized << " row " << r;
            for (int64_t gap = static_cast<int64_t>(strings.size()); gap < stride; ++gap)
              EXPECT_TRUE(std::isnan(out[static_cast<size_t>(r * stride + gap)])) << "wrote past the strings";
          }
        }
      }
    }
    // pauli_rows (rows in lanes): a partial block and a full one, rows
    // apart by more than 2 D, outputs apart by more than the strings.
    for (const CpuKernels* rows_set : sets) {
      if (!rows_set->pauli_rows || D > kPauliRowStates) continue;
      const int64_t ld = 2 * D + 3, stride = static_cast<int64_t>(strings.size()) + 2;
      for (int64_t R : {5, 12, 16}) {
        std::vector<float> phi(static_cast<size_t>(R * ld), NAN), out(static_cast<size_t>(R * stride), NAN);
        std::vector<float> scratch(static_cast<size_t>(pauli_rows_scratch(plan)), NAN);
        std::vector<std::pair<std::vector<double>, std::vector<double>>> wants;
        for (int64_t r = 0; r < R; ++r) {
          const auto re_r = random_values(static_cast<size_t>(D), 100 + static_cast<int>(r));
          const auto im_r = random_values(static_cast<size_t>(D), 200 + static_cast<int>(r));
          std::copy(re_r.begin(), re_r.end(), phi.begin() + r * ld);
          std::copy(im_r.begin(), im_r.end(), phi.begin() + r * ld + D);
          wants.push_back(definition(re_r, im_r));
        }
        rows_set->pauli_rows(plan, phi.data(), ld, R, out.data(), stride, scratch.data());
        for (int64_t r = 0; r < R; ++r) {
          const auto& [w, mag] = wants[static_cast<size_t>(r)];
          for (size_t i = 0; i < strings.size(); ++i)
            ASSERT_NEAR(out[static_cast<size_t>(r * stride) + i], w[i], 2e-6 * (1.0 + mag[i]))
                << rows_set->name << " pauli_rows D " << D << " rows " << R << " row " << r << " x "
                << strings[i].x_mask << " z " << strings[i].z_mask;
          for (int64_t gap = static_cast<int64_t>(strings.size()); gap < stride; ++gap)
            EXPECT_TRUE(std::isnan(out[static_cast<size_t>(r * stride + gap)])) << "pauli_rows wrote past the strings";
        }
      }
    }
  }
}

// U psi gate by gate in f32 against the double-precision circuit simulation
// (core/circuit.h), for every width the format allows up to 2^10 states and
// inputs shorter than D (zero padding).
TEST(CircuitGates, MatchTheDoubleCircuitSimulation) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> angle(-3.2f, 3.2f);
  for (uint32_t n = 2; n <= 10; ++n) {
    const int64_t D = int64_t{1} << n;
    for (int64_t d : {D, D - 1, D / 2 + 1}) {
      QuantumProjection q;
      q.n_qubits = n;
      for (uint32_t i = 0; i < 3 * n; ++i) q.angles.push_back(angle(rng));
      const CircuitGates gates(q);
      ASSERT_EQ(gates.states(), D);
      const auto psi = random_values(static_cast<size_t>(d), 100 + n);
      std::vector<cplx> want(static_cast<size_t>(D), 0.0);
      for (int64_t j = 0; j < d; ++j) want[static_cast<size_t>(j)] = psi[static_cast<size_t>(j)];
      apply_circuit(n, q.angles, want);
      for (const CpuKernels* k : kernel_sets()) {
        std::vector<float> re(static_cast<size_t>(D), 7.0f), im(re), scratch(static_cast<size_t>(2 * D), 5.0f);
        k->circuit(gates.plan(), psi.data(), d, re.data(), im.data(), scratch.data());
        double worst = 0.0, scale = 0.0;
        for (int64_t j = 0; j < D; ++j) {
          const auto w = want[static_cast<size_t>(j)];
          worst = std::max({worst, std::fabs(re[static_cast<size_t>(j)] - w.real()),
                            std::fabs(im[static_cast<size_t>(j)] - w.imag())});
          scale = std::max(scale, std::abs(w));
        }
        EXPECT_LT(worst, 2e-6 * std::sqrt(static_cast<double>(D)) * scale) << k->name << " n " << n << " d " << d;
        EXPECT_GT(scale, 0.0);
      }
    }
  }
}

// The value projections of a layer through the gates path give the dense
// unitary path's values; the gates are taken wherever the circuit has
// angles (f32 unitaries are the angles', quantized ones stand for them:
// docs/format.md), and auto takes them where measured faster.
TEST(QuantumLayer, GatesPathMatchesTheDenseUnitaryAndIsTakenOnlyWhereValid) {
  // 24 wide: 5 qubits (the fused kernel's last qubit alone), 64: 6; 16: 4,
  // where the dense path runs the small-state kernel row by row with the
  // AVX2 set (19 rows: a block of 16 and one of 3) and the gates go with
  // the rows in lanes.
  for (auto [t, d] : {std::pair{QISA_DTYPE_F32, int64_t{24}},
                      {QISA_DTYPE_Q8_0, int64_t{24}},
                      {QISA_DTYPE_F32, int64_t{64}},
                      {QISA_DTYPE_F32, int64_t{16}}}) {
    writer::SyntheticSpec spec;
    spec.kind = QISA_ATTENTION_QISA_V1;  // quantum q, k and v: three projections per head
    spec.n_embd = static_cast<uint32_t>(d);
    spec.n_head = 2;
    spec.n_layer = 1;
    spec.n_ctx = 8;
    spec.unitary_dtype = t;
    const auto loaded = test::load_desc(writer::make_synthetic_model(spec));
    ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
    const Model& m = model_of(loaded.model.get());
    std::vector<const QuantumProjection*> qp;
    for (const Head& h : m.layers[0].heads)
      for (Role r : kAllRoles)
        if (h.qp(r)) qp.push_back(&*h.qp(r));
    ASSERT_EQ(qp.size(), 6u);
    auto dnnl = make_dnnl_context();
    const int64_t h = d / 2, R = 19;
    LinearScratch s1, s2, s3;
    QuantumLayer dense(qp, d, h, QISA_VALUE_PATH_UNITARY, 1, dnnl.get(), R, &s1);
    QuantumLayer gates(qp, d, h, QISA_VALUE_PATH_GATES, 2, dnnl.get(), R, &s2);
    QuantumLayer automatic(qp, d, h, QISA_VALUE_PATH_AUTO, 1, dnnl.get(), R, &s3);
    EXPECT_FALSE(dense.uses_gates(1));
    EXPECT_TRUE(gates.uses_gates(R));
    EXPECT_FALSE(automatic.uses_gates(1));  // 16, 32 or 64 states: the dense U is faster
    const auto u = random_values(static_cast<size_t>(R * d), 4);
    std::vector<float> a(static_cast<size_t>(R * 6 * h)), b(a.size(), 9.0f);
    std::vector<float*> da, db;
    for (int64_t p = 0; p < 6; ++p) {
      da.push_back(a.data() + p * h);
      db.push_back(b.data() + p * h);
    }
    dense.run(u.data(), R, da.data(), 6 * h);
    gates.run(u.data(), R, db.data(), 6 * h);
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], 2e-5f) << dtype_name(t) << " d " << d << " [" << i << "]";
  }
  // Auto (quantum_layer.cpp): 128 states take the gates for up to 8 rows,
  // 256 and more always; from 16 rows with the sums in row lanes where the
  // kernel set has circuit_pauli_rows (states up to 256). Up to 16 states
  // the dense U where the kernel set has small_value_rows: row by row below
  // 16 rows and from the set's small_value_rows_from_states states, else
  // in row lanes where it has unitary_pauli_rows; the gates otherwise.
  const CpuKernels& k = cpu_kernels();
  const bool fused = k.circuit_pauli_rows != nullptr, small = k.small_value_rows != nullptr;
  auto by_row = [&](int64_t states) {  // 64 rows
    return small && k.small_value_rows_from_states > 0 && states >= k.small_value_rows_from_states;
  };
  auto dense_many = [&](int64_t states) { return by_row(states) || (small && k.unitary_pauli_rows != nullptr); };
  for (auto [width, rows, want] : {std::tuple{128, 1, true},
                                   {128, 8, true},
                                   {128, 9, false},
                                   {128, 16, fused},
                                   {256, 1, true},
                                   {256, 16, true},
                                   {16, 1, false},
                                   {16, 64, !dense_many(16) && fused},
                                   {4, 64, !dense_many(4) && fused}}) {
    writer::SyntheticSpec spec;
    spec.kind = QISA_ATTENTION_QISA_V3;
    spec.n_embd = static_cast<uint32_t>(width);
    spec.n_head = 1;
    spec.n_layer = 1;
    spec.n_ctx = 4;
    const auto loaded = test::load_desc(writer::make_synthetic_model(spec));
    ASSERT_EQ(loaded.status, QISA_OK) << loaded.message;
    const Head& head = model_of(loaded.model.get()).layers[0].heads[0];
    auto dnnl = make_dnnl_context();
    LinearScratch scratch;
    QuantumLayer automatic({&*head.qp(Role::V)}, width, width, QISA_VALUE_PATH_AUTO, 1, dnnl.get(), 16, &scratch);
    EXPECT_EQ(automatic.uses_gates(rows), want) << width << " states, " << rows << " rows";
    EXPECT_EQ(automatic.fused_rows(rows), fused && rows >= 16 && (width > 16 || !dense_many(width)))
        << width << " states, " << rows << " rows";
    if (width <= 16 && rows >= 16) {
      EXPECT_EQ(automatic.small_rows(rows), by_row(width)) << width << " states, " << rows << " rows";
      EXPECT_EQ(automatic.unitary_rows(rows), dense_many(width) && !by_row(width))
          << width << " states, " << rows << " rows";
    }
  }
}

TEST(CpuKernels, DotMatchesADoubleSum) {
  for (const CpuKernels* k : kernel_sets()) {
    for (int64_t n : {0, 1, 7, 8, 33, 1000}) {
      const auto a = random_values(static_cast<size_t>(n), 3), b = random_values(static_cast<size_t>(n), 4);
      double want = 0.0;
      for (int64_t i = 0; i < n; ++i) want += double(a[i]) * b[i];
      EXPECT_NEAR(k->dot(a.data(), b.data(), n), want, 1e-5) << k->name << " n " << n;
    }
  }
}

// Attention of one query over n cached positions, against the same
// formula summed in double precision: both scores, every length around the
// kernels' 4-key and 8-lane steps, head sizes around their 8- and 64-column
// blocks, keys of interleaved heads (strides), and scores far apart (the
// softmax's small weights underflow the same way), one head or the middle
// one of three (the key norms' stride).
TEST(CpuKernels, AttentionMatchesADoubleComputation) {
  for (const CpuKernels* k : kernel_sets()) {
    for (bool gaussian : {false, true}) {
      for (int64_t h : {1, 4, 8, 12, 16, 24, 40, 56, 64, 72, 100, 128}) {
        for (int64_t n : {1, 3, 4, 5, 8, 9, 16, 33, 130}) {
          for (float spread : {0.3f, 4.0f}) {
            const int64_t heads = spread < 1.0f ? 3 : 1, head = heads / 2, stride = heads * h;
            auto q = random_values(static_cast<size_t>(h), 21);
            auto keys = random_values(static_cast<size_t>(n * stride), 22);
            const auto values = random_values(static_cast<size_t>(n * stride), 23);
            for (auto& x : q) x *= spread;
            for (auto& x : keys) x *= spread;
            const float* kh = keys.data() + head * h;
            const float* vh = values.data() + head * h;
            std::vector<float> norms(static_cast<size_t>(n * heads));
            for (int64_t j = 0; j < n; ++j) {
              double nn = 0.0;
              for (int64_t i = 0; i < h; ++i) nn += double(kh[j * stride + i]) * kh[j * stride + i];
              norms[static_cast<size_t>(j * heads + head)] = static_cast<float>(nn);
            }
            const float scale = 1.0f / std::sqrt(static_cast<float>(h));
            std::vector<double> sc(static_cast<size_t>(n));
            double mx = -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
              double qk = 0.0, d2 = 0.0;
              for (int64_t i = 0; i < h; ++i) {
                qk += double(q[i]) * kh[j * stride + i];
                d2 += (double(q[i]) - kh[j * stride + i]) * (double(q[i]) - kh[j * stride + i]);
              }
              sc[j] = gaussian ? std::exp(-d2) : scale * qk;
              mx = std::max(mx, sc[j]);
            }
            double total = 0.0;
            for (auto& x : sc) total += (x = std::exp(x - mx));
            std::vector<float> out(static_cast<size_t>(h)), scratch(static_cast<size_t>(n));
            attention(k, out.data(), q.data(), kh, norms.data() + head, vh, n, h, stride, stride, heads, gaussian,
                      scale, scratch.data());
            for (int64_t i = 0; i < h; ++i) {
              double want = 0.0;
              for (int64_t j = 0; j < n; ++j) want += sc[j] / total * vh[j * stride + i];
              ASSERT_NEAR(out[i], want, 2e-5 + 2e-5 * std::abs(want))
                  << k->name << (gaussian ? " gaussian" : " dot") << " h " << h << " n " << n << " spread " << spread
                  << " heads " << heads << " column " << i;
            }
          }
        }
      }
    }
  }
}

TEST(CpuKernels, AttentionPassesANaNThrough) {
  for (const CpuKernels* k : kernel_sets()) {
    for (bool gaussian : {false, true}) {
      const int64_t h = 16, n = 12;
      auto q = random_values(static_cast<size_t>(h), 31);
      const auto keys = random_values(static_cast<size_t>(n * h), 32),
                 values = random_values(static_cast<size_t>(n * h), 33);
      const std::vector<float> norms(static_cast<size_t>(n), 1.0f);
      q[3] = NAN;
      std::vector<float> out(static_cast<size_t>(h)), scratch(static_cast<size_t>(n));
      attention(k, out.data(), q.data(), keys.data(), norms.data(), values.data(), n, h, h, h, 1, gaussian, 0.25f,
                scratch.data());
      for (float x : out) EXPECT_TRUE(std::isnan(x)) << k->name << (gaussian ? " gaussian" : " dot");
    }
  }
}

// Independently of selection_key: a outranks b when its score is larger
// (NaN below everything, -0 == +0), or equal and a is the later position.
bool outranks(const std::vector<float>& s, int64_t a, int64_t b) {
  const float x = s[static_cast<size_t>(a)], y = s[static_cast<size_t>(b)];
  if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) || (std::isnan(y) && a > b);
  return x > y || (x == y && a > b);
}

// The positions a query at n-1 keeps: those fewer than top_k positions
// outrank, and the window most recent ones.
std::vector<uint8_t> kept_by_rank(const std::vector<float>& s, Sparsity sp) {
  const auto n = static_cast<int64_t>(s.size());
  std::vector<uint8_t> keep(s.size());
  for (int64_t j = 0; j < n; ++j) {
    int64_t above = 0;
    for (int64_t i = 0; i < n; ++i) above += i != j && outranks(s, i, j);
    keep[static_cast<size_t>(j)] = above < static_cast<int64_t>(sp.top_k) || j >= n - static_cast<int64_t>(sp.window);
  }
  return keep;
}

// Scores to choose from: distinct, a few values with many exact ties, NaN
// and infinities among them, signed zeros, all equal.
std::vector<float> selection_scores(int pattern, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> s(static_cast<size_t>(n));
  for (auto& x : s) {
    const uint32_t r = rng() % 8;
    switch (pattern) {
      case 0: x = normal(rng); break;
      case 1: x = static_cast<float>(r % 3) - 1.0f; break;
      case 2: x = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : normal(rng); break;
      case 3: x = r < 4 ? 0.0f : -0.0f; break;
      default: x = -2.5f; break;
    }
  }
  return s;
}

TEST(SparseSelection, ReferenceAndFastKeepTheTopKAndTheWindow) {
  for (int64_t n : {2, 3, 9, 33, 200}) {
    for (int pattern = 0; pattern < 5; ++pattern) {
      const auto s = selection_scores(pattern, n, static_cast<uint32_t>(n * 10 + pattern));
      for (uint32_t k : {1u, 2u, 3u, 8u, static_cast<uint32_t>(n - 1)}) {
        for (uint32_t w : {0u, 1u, 4u, static_cast<uint32_t>(n)}) {
          if (static_cast<int64_t>(k) >= n) continue;  // n <= top_k keeps everything, tested below
          const Sparsity sp{k, w};
          const auto want = kept_by_rank(s, sp);
          std::vector<uint8_t> ref(s.size());
          select_positions_reference(s.data(), n, sp, ref.data());
          EXPECT_EQ(ref, want) << "reference n " << n << " pattern " << pattern << " k " << k << " w " << w;
          auto compact = s;
          std::vector<uint32_t> pos(s.size());
          const int64_t m = fast::select_positions(compact.data(), n, sp, pos.data());
          std::vector<uint8_t> fast(s.size(), 0);
          for (int64_t i = 0; i < m; ++i) {
            ASSERT_LT(pos[i], static_cast<uint32_t>(n));
            if (i > 0) {
              EXPECT_LT(pos[i - 1], pos[i]) << "ascending";
            }
            fast[pos[i]] = 1;
            const float orig = s[pos[i]];
            EXPECT_TRUE(std::isnan(orig) ? std::isnan(compact[i]) : compact[i] == orig) << "scores move with positions";
          }
          EXPECT_EQ(fast, want) << "fast n " << n << " pattern " << pattern << " k " << k << " w " << w;
          EXPECT_LE(m, static_cast<int64_t>(k + w));
        }
      }
      std::vector<uint8_t> all(s.size());
      select_positions_reference(s.data(), n, Sparsity{static_cast<uint32_t>(n), 0}, all.data());
      EXPECT_EQ(std::count(all.begin(), all.end(), 1), n) << "top_k >= n keeps every position";
    }
  }
}

// Sparse attention (QSAT) of one query through the fast path: the softmax
// of exp(-|q-k|^2) over the kept positions only, against a double
// computation; positions outside the choice never matter (their values are
// NaN here).
TEST(CpuKernels, SparseAttentionReadsOnlyTheKeptPositions) {
  for (int64_t h : {4, 16, 72}) {
    for (int64_t n : {5, 17, 130}) {
      const Sparsity sp{3, 2};
      auto q = random_values(static_cast<size_t>(h), 41);
      const auto keys = random_values(static_cast<size_t>(n * h), 42);
      auto values = random_values(static_cast<size_t>(n * h), 43);
      std::vector<float> norms(static_cast<size_t>(n));
      std::vector<double> d2(static_cast<size_t>(n));
      std::vector<float> sel(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        double nn = 0.0, dd = 0.0;
        for (int64_t i = 0; i < h; ++i) {
          nn += double(keys[j * h + i]) * keys[j * h + i];
          dd += (double(q[i]) - keys[j * h + i]) * (double(q[i]) - keys[j * h + i]);
        }
        norms[j] = static_cast<float>(nn);
        d2[j] = dd;
        sel[j] = static_cast<float>(-dd);
      }
      const auto keep = kept_by_rank(sel, sp);
      for (int64_t j = 0; j < n; ++j)
        if (!keep[j])
          for (int64_t i = 0; i < h; ++i) values[j * h + i] = NAN;
      double total = 0.0;
      for (int64_t j = 0; j < n; ++j) total += keep[j] ? std::exp(std::exp(-d2[j])) : 0.0;
      std::vector<float> out(static_cast<size_t>(h)), scores(static_cast<size_t>(n));
      std::vector<uint32_t> pos(static_cast<size_t>(n));
      fast::attention_row(out.data(), q.data(), keys.data(), norms.data(), values.data(), n, h, h, h, 1,
                          ScoreRule{true, 1.0f, sp}, scores.data(), pos.data());
      for (int64_t i = 0; i < h; ++i) {
        double want = 0.0;
        for (int64_t j = 0; j < n; ++j)
          if (keep[j]) want += std::exp(std::exp(-d2[j])) / total * values[j * h + i];
        ASSERT_NEAR(out[i], want, 2e-5 + 2e-5 * std::abs(want)) << "h " << h << " n " << n << " column " << i;
      }
    }
  }
}

// Few rows run the kernels on the stored weight, many rows expand it into
// the scratch for oneDNN: both give the same numbers, so a token's logits
// do not depend on what else was in its batch.
TEST(LinearOp, QuantizedResultDoesNotDependOnTheRowCount) {
  auto dnnl = make_dnnl_context();
  for (qisa_dtype t : types(false)) {
    const int64_t in = 96, out = 40, rows = 32;
    const Stored s = store(t, random_values(static_cast<size_t>(in * out), 11), in, out);
    const auto bias = random_values(static_cast<size_t>(out), 12);
    const auto x = random_values(static_cast<size_t>(rows * in), 13);
    LinearScratch scratch;
    LinearOp op;
    op.init(MatrixRef{t, s.bytes.data(), s.row_bytes}, bias.data(), in, out, 1, dnnl.get(), &scratch);
    // A batch kernel (AMX) reads the weight as stored: no widened copy.
    EXPECT_EQ(scratch.weights.size(), op.batch ? 0u : static_cast<size_t>(in * out)) << dtype_name(t);
    std::vector<float> all(static_cast<size_t>(rows * out)), one(static_cast<size_t>(out));
    op.run(x.data(), all.data(), rows);
    for (int64_t r = 0; r < rows; ++r) {
      op.run(x.data() + r * in, one.data(), 1);
      for (int64_t o = 0; o < out; ++o)
        EXPECT_NEAR(one[o], all[r * out + o], 1e-5f) << dtype_name(t) << " row " << r << " col " << o;
    }
  }
}

// A context's thread policy: one thread never splits; more threads split
// from the site's threshold times the measured scale (1..64), and the
// timing leaves the caller's OpenMP count as it was.
TEST(ThreadPolicy, SplitsFromTheScaledThreshold) {
  const ThreadPolicy one = measure_thread_policy(1);
  EXPECT_EQ(one.count, 1);
  EXPECT_FALSE(one.split(int64_t{1} << 40, 1));
  const int before = omp_get_max_threads();
  const ThreadPolicy two = measure_thread_policy(2);
  EXPECT_EQ(omp_get_max_threads(), before);
  EXPECT_EQ(two.count, 2);
  EXPECT_GE(two.scale, 1);
  EXPECT_LE(two.scale, 64);
  EXPECT_FALSE(two.split(1000 * two.scale - 1, 1000));
  EXPECT_TRUE(two.split(1000 * two.scale, 1000));
  const ThreadPolicy fixed(2, 3);
  EXPECT_FALSE(fixed.split(2999, 1000));
  EXPECT_TRUE(fixed.split(3000, 1000));
  EXPECT_EQ(ThreadPolicy(0, 0).count, 1);
  EXPECT_EQ(ThreadPolicy(0, 0).scale, 1);
}

TEST(F32Weights, TheFastEngineKeepsQuantizedMatricesAsStored) {
  writer::SyntheticSpec spec;
  spec.kind = QISA_ATTENTION_QISA_V3;
  spec.n_embd = 32;
  spec.weight_dtype = QISA_DTYPE_Q8_0;
  spec.unitary_dtype = QISA_DTYPE_Q8_0;
  auto r = test::load_desc(writer::make_synthetic_model(spec));
  ASSERT_EQ(r.status, QISA_OK) << r.message;
  const Model& m = model_of(r.model.get());
  const F32Weights fast(m, false), reference(m, true);
  size_t vectors = 0, matrices = 0;
  for (const TensorView& t : m.tensors) {
    if (t.shape.size() > 1) {
      ++matrices;
      EXPECT_EQ(fast(&t), nullptr) << t.name;
      EXPECT_NE(reference(&t), nullptr) << t.name;
    } else {
      vectors += t.elements * sizeof(float) * (t.dtype != QISA_DTYPE_F32);
    }
  }
  EXPECT_GT(matrices, 0u);
  EXPECT_EQ(fast.owned_bytes(), vectors);
  EXPECT_GT(reference.owned_bytes(), 4 * fast.owned_bytes());
}

}  // namespace
}  // namespace qisa
