// Portable kernels: plain loops with independent partial sums so the
// compiler can vectorize them for the baseline ISA.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "circuit_loops.h"
#include "cpu_kernels.h"
#include "dtype.h"
#include "rounded_linear.h"

namespace qisa {

namespace {

float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The readable LayerNorm: the mean, the centred row's squared sum, then
// the scaled row.
void layernorm(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d, float eps) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 partial sums, as dot_f32
    int64_t i = 0;
    for (; i + 8 <= d; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += xr[i + k];
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < d; ++i) sum += xr[i];
    const float mean = sum / static_cast<float>(d);
    for (i = 0; i < d; ++i) o[i] = xr[i] - mean;
    const float var = dot_f32(o, o, d) / static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (i = 0; i < d; ++i) o[i] = o[i] * inv * w[i] + b[i];
  }
}

// One weight row converted to f32 in a stack block at a time.
template <float (*Load)(const uint8_t*, size_t)>
float dot_converted(const float* x, const uint8_t* w, int64_t n) {
  float block[64];
  float s = 0.0f;
  for (int64_t i0 = 0; i0 < n; i0 += 64) {
    const int64_t m = std::min<int64_t>(64, n - i0);
    for (int64_t i = 0; i < m; ++i) block[i] = Load(w, static_cast<size_t>(i0 + i));
    s += dot_f32(x + i0, block, m);
  }
  return s;
}

float load_f16(const uint8_t* w, size_t i) {
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  return f16_to_f32(h);
}
float load_bf16(const uint8_t* w, size_t i) {
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  return bf16_to_f32(h);
}

template <float (*Dot)(const float*, const uint8_t*, int64_t)>
void linear_rows(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                 const float* bias, int64_t rows, int64_t in, int64_t out) {
  for (int64_t o = 0; o < out; ++o) {  // weight row outermost: read once for all rows
    const uint8_t* wo = w + static_cast<size_t>(o) * w_stride;
    for (int64_t r = 0; r < rows; ++r) y[r * ldy + o] = (bias ? bias[o] : 0.0f) + Dot(x + r * ldx, wo, in);
  }
}

float dot_f32_bytes(const float* x, const uint8_t* w, int64_t n) {
  return dot_f32(x, reinterpret_cast<const float*>(w), n);
}

float scale_of(const uint8_t* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  return f16_to_f32(h);
}

// Q8_0 rows: per 32-block, scale * (x . q).
float dot_q8(const float* x, const uint8_t* w, int64_t n) {
  float s = 0.0f;
  for (int64_t b0 = 0; b0 < n; b0 += static_cast<int64_t>(kQ8Block), w += kQ8BlockBytes) {
    const int64_t m = std::min<int64_t>(static_cast<int64_t>(kQ8Block), n - b0);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < m; ++i) acc[i & 7] += x[b0 + i] * static_cast<float>(static_cast<int8_t>(w[2 + i]));
    s += scale_of(w) * (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
  }
  return s;
}

// Activations for Q4_0 products: per block of 32, dx = max|x| / 127 and
// q = round(x / dx) (zero past n).
void quantize_q8_blocks(const float* x, int64_t n, int8_t* q, float* d, float* offset) {
  const auto block = static_cast<int64_t>(kQ4Block);
  for (int64_t b0 = 0, b = 0; b0 < n; b0 += block, ++b) {
    const int64_t m = std::min(block, n - b0);
    float amax = 0.0f;
    for (int64_t i = 0; i < m; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
    const float dx = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < block; ++i) {
      const auto v = static_cast<int8_t>(i < m ? std::nearbyint(x[b0 + i] * inv) : 0.0f);
      q[b0 + i] = v;
      sum += v;
    }
    d[b] = dx;
    offset[b] = 8.0f * dx * static_cast<float>(sum);
  }
}

// sum over the blocks of dw * (dx * sum_i w_i q_i - offset), w_i the raw nibbles.
float dot_q4(const Q8Activations& a, int64_t nb, int64_t, const uint8_t* w) {
  float s = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ4BlockBytes) {
    const int8_t* qb = a.q + b * static_cast<int64_t>(kQ4Block);
    int32_t t = 0;
    for (size_t j = 0; j < kQ4Block / 2; ++j) {
      t += (w[2 + j] & 0xf) * qb[j] + (w[2 + j] >> 4) * qb[j + kQ4Block / 2];
    }
    s += scale_of(w) * (a.d[b] * static_cast<float>(t) - a.offset[b]);
  }
  return s;
}

void activations_rounded(const float* x, int64_t n, float* out) {
  round_rows<quantize_q8_blocks>(x, n, out);
}

// Four dots of one rounded row, one weight row at a time.
template <class A, float (*Dot)(A, int64_t, int64_t, const uint8_t*)>
void dot4_rows(A a, int64_t nb, int64_t n, const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, const uint8_t* w3,
               float* s) {
  s[0] = Dot(a, nb, n, w0);
  s[1] = Dot(a, nb, n, w1);
  s[2] = Dot(a, nb, n, w2);
  s[3] = Dot(a, nb, n, w3);
}

void linear_q4(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
               int64_t rows, int64_t in, int64_t out) {
  Int8Rows<quantize_q8_blocks> buf;
  rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ4BlockBytes, buf,
                 dot4_rows<const Q8Activations&, dot_q4>, dot_q4);
}

float dot_q8_rounded(const float* x, int64_t, int64_t n, const uint8_t* w) {
  return dot_q8(x, w, n);
}

void linear_q8(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride, const float* bias,
               int64_t rows, int64_t in, int64_t out) {
  F32Rows<activations_rounded> buf;
  rounded_linear(y, ldy, x, ldx, w, w_stride, bias, rows, in, out, kQ8BlockBytes, buf,
                 dot4_rows<const float*, dot_q8_rounded>, dot_q8_rounded);
}

void pauli_products(float* p, const float* re, const float* im, uint64_t x, bool imaginary, int64_t D) {
  const auto xm = static_cast<int64_t>(x);
  if (imaginary) {
    for (int64_t j = 0; j < D; ++j) p[j] = re[j ^ xm] * im[j] - im[j ^ xm] * re[j];
  } else {
    for (int64_t j = 0; j < D; ++j) p[j] = re[j ^ xm] * re[j] + im[j ^ xm] * im[j];
  }
}

void circuit(const CircuitPlan& plan, const float* psi, int64_t d, float* re, float* im, float* scratch) {
  circuit_apply(plan, psi, d, re, im, scratch);
}

void walsh_hadamard(float* p, int64_t D) {
  for (int64_t h = 1; h < D; h *= 2) {  // butterflies of stride h: (a, b) -> (a + b, a - b)
    for (int64_t j0 = 0; j0 < D; j0 += 2 * h) {
      for (int64_t j = j0; j < j0 + h; ++j) {
        const float a = p[j], b = p[j + h];
        p[j] = a + b;
        p[j + h] = a - b;
      }
    }
  }
}

// Per group: the products over its states (all, or those with the halving
// bit clear, at index t = j without that bit), then each string's signed
// sum, or one transform for all of them.
void pauli_sums(const PauliPlan& plan, const float* re, const float* im, float* out, float* p) {
  for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
    const PauliPlanGroup& g = plan.groups[gi];
    const int64_t n = g.bit < 0 ? plan.D : plan.D / 2;
    const auto xm = static_cast<int64_t>(g.x);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = g.bit < 0 ? t : ((t >> g.bit) << (g.bit + 1)) | (t & ((int64_t{1} << g.bit) - 1));
      p[t] = g.imaginary ? re[j ^ xm] * im[j] - im[j ^ xm] * re[j] : re[j ^ xm] * re[j] + im[j ^ xm] * im[j];
    }
    if (g.walsh) walsh_hadamard(p, n);
    for (int32_t c = g.first; c < g.first + g.count; ++c) {
      const uint64_t z = plan.z[c];
      float sum = 0.0f;
      if (g.walsh) {
        sum = p[z];
      } else {
        float acc[2] = {0.0f, 0.0f};  // by sign, so each is a plain sum
        for (int64_t t = 0; t < n; ++t) acc[std::popcount(static_cast<uint64_t>(t) & z) & 1] += p[t];
        sum = acc[0] - acc[1];
      }
      out[plan.out[c]] = plan.scale[c] * sum;
    }
  }
}

void scores(float* s, const float* q, const float* keys, const float* key_norms, int64_t n, int64_t h, int64_t k_stride,
            int64_t norm_stride, bool gaussian, float scale) {
  const float qn = gaussian ? dot_f32(q, q, h) : 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float qk = dot_f32(q, keys + j * k_stride, h);
    // -|q-k|^2 with |q-k|^2 = |q|^2 + |k|^2 - 2 q.k
    s[j] = gaussian ? -(qn + key_norms[j * norm_stride] - 2.0f * qk) : scale * qk;
  }
}

void attend(float* out, float* s, const uint32_t* pos, int64_t m, const float* values, int64_t v_stride, int64_t h,
            bool gaussian) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < m; ++j) {
    if (gaussian) s[j] = std::exp(s[j]);  // the Gaussian kernel exp(-|q-k|^2)
    mx = std::max(mx, s[j]);
  }
  float total = 0.0f;
  for (int64_t j = 0; j < m; ++j) total += (s[j] = std::exp(s[j] - mx));
  const float inv = 1.0f / total;
  std::fill(out, out + h, 0.0f);
  for (int64_t j = 0; j < m; ++j) {  // out += a_j v_j: no reduction, vectorizes
    const float a = s[j] * inv;
    const float* v = values + (pos ? pos[j] : j) * v_stride;
    for (int64_t i = 0; i < h; ++i) out[i] += a * v[i];
  }
}

template <qisa_dtype T>
void widen(const uint8_t* row, int64_t n, float* out) {
  dequantize_row(T, row, static_cast<size_t>(n), out);
}

// Entries by qisa_dtype: f32, f16, bf16, q8_0, q4_0.
constexpr CpuKernels kGeneric{"generic",
                              {linear_rows<dot_f32_bytes>, linear_rows<dot_converted<load_f16>>,
                               linear_rows<dot_converted<load_bf16>>, linear_q8, linear_q4},
                              {widen<QISA_DTYPE_F32>, widen<QISA_DTYPE_F16>, widen<QISA_DTYPE_BF16>,
                               widen<QISA_DTYPE_Q8_0>, widen<QISA_DTYPE_Q4_0>},
                              pauli_products,
                              dot_f32,
                              pauli_sums,
                              scores,
                              attend,
                              circuit,
                              {nullptr, nullptr, nullptr, activations_rounded, activations_rounded},
                              {nullptr, nullptr, nullptr, linear_rows<dot_q8>, nullptr},
                              {},
                              nullptr,
                              nullptr,
                              nullptr,
                              nullptr,
                              layernorm,
                              nullptr,
                              0};

}  // namespace

#ifdef QISA_NO_AVX2_KERNELS
const CpuKernels* avx2_cpu_kernels() {
  return nullptr;
}
#endif
#ifdef QISA_NO_AMX_KERNELS
const BatchKernel* amx_batch_kernels() {
  return nullptr;
}
const CpuKernels* vnni_kernels() {
  return nullptr;
}
const CpuKernels* avx512_kernels() {
  return nullptr;
}
#endif

const CpuKernels& generic_cpu_kernels() {
  return kGeneric;
}

namespace {

// A set with the generic kernels in the per-type entries it leaves empty
// (a new stored type needs only its generic kernels to run everywhere).
CpuKernels completed(const CpuKernels& k) {
  CpuKernels out = k;
  for (int t = 0; t < kDtypeCount; ++t) {
    if (!out.linear[t]) {  // the activations go with the products that round them
      out.linear[t] = kGeneric.linear[t];
      out.activations[t] = kGeneric.activations[t];
    }
    if (!out.linear_f32_activations[t]) out.linear_f32_activations[t] = kGeneric.linear_f32_activations[t];
    if (!out.widen[t]) out.widen[t] = kGeneric.widen[t];
  }
  if (!out.scores) out.scores = kGeneric.scores;
  if (!out.layernorm) out.layernorm = kGeneric.layernorm;
  if (!out.attend) out.attend = kGeneric.attend;
  return out;
}

}  // namespace

const CpuKernels& cpu_kernels() {
  static const CpuKernels chosen = [] {
    const char* force = std::getenv("QISA_CPU_KERNELS");
    if (force && std::string_view(force) == "generic") return kGeneric;
    const CpuKernels* fast = avx2_cpu_kernels();
    if (!fast) return kGeneric;
    CpuKernels k = completed(*fast);
    if (force && std::string_view(force) == "avx2") return k;
    if (const CpuKernels* vnni = vnni_kernels()) {
      for (int t = 0; t < kDtypeCount; ++t) {
        if (!vnni->linear[t]) continue;
        k.linear[t] = vnni->linear[t];  // with the rounding of the same file
        k.activations[t] = vnni->activations[t];
        k.batch[t] = vnni->batch[t];
      }
    }
    if (const CpuKernels* avx512 = avx512_kernels()) {
      k.pauli_lanes = avx512->pauli_lanes;
      k.pauli_sums = avx512->pauli_sums;
      k.pauli_rows = avx512->pauli_rows;
      k.circuit_pauli_rows = avx512->circuit_pauli_rows;
      k.small_value_rows = avx512->small_value_rows;
      // With the AVX-512 kernels, many rows of small states take the gates
      // in 16 row lanes (circuit_pauli_rows), as measured with them (Zen 4,
      // docs/benchmarks.md): the AVX2 set's row-by-row and dense-U-in-lanes
      // choices were measured against its own 8-lane kernels only.
      k.unitary_pauli_rows = avx512->unitary_pauli_rows;
      k.small_value_rows_from_states = avx512->small_value_rows_from_states;
    }
    if (const BatchKernel* amx = amx_batch_kernels())  // over VNNI's where both exist
      for (int t = 0; t < kDtypeCount; ++t)
        if (amx[t].product) k.batch[t] = amx[t];
    return k;
  }();
  return chosen;
}

}  // namespace qisa
