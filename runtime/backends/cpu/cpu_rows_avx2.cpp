// Rows in vector lanes with AVX2: the Pauli sums of up to kPauliRows rows
// (PauliRowsKernel) and the circuit before them (CircuitPauliRowsKernel),
// rows_in_lanes.h instantiated with 8 lanes (cpu_kernels_avx512.cpp
// instantiates it with 16). AVX2 has 16 registers of 8 lanes, so each
// lane-wise pass runs on rows 0-7, then 8-15 (16 lanes at once would keep
// twice the registers live and spill). Built with AVX2 and entered only
// after the CPU check of the AVX2 set (cpu_kernels_avx2.cpp), whose table
// holds these entries.
#include <immintrin.h>

#include "avx2_rows.h"
#include "cpu_kernels.h"
#include "rows_in_lanes.h"

namespace qisa::avx2_rows {

namespace {

using rows_in_lanes::kRows;

// The 8-lane vector for rows_in_lanes.h.
struct Lanes8 {
  using T = __m256;
  static constexpr int64_t kLanes = 8;
  // Two sums per string where the registers allow (C <= 4), one beyond.
  static constexpr int accumulators(int c) { return c <= 4 ? 2 : 1; }
  static T loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float f) { return _mm256_set1_ps(f); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fmsub(T a, T b, T c) { return _mm256_fmsub_ps(a, b, c); }
  static T fnmadd(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static T sqrt(T a) { return _mm256_sqrt_ps(a); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
};

// The transposes for rows_in_lanes.h, element by element (a small part
// of the work next to the circuit and the sums).
struct Transposes {
  static void to_lanes(const float* src, int64_t ld, int64_t rows, int64_t cols, float* T) {
    for (int64_t c = 0; c < cols; ++c) {
      float* t = T + c * kRows;
      for (int64_t i = 0; i < kRows; ++i) t[i] = i < rows ? src[i * ld + c] : 0.0f;
    }
  }
  static void to_rows(const float* O, int64_t strings, int64_t rows, float* out, int64_t stride) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < strings; ++k) out[i * stride + k] = O[k * kRows + i];
  }
};

}  // namespace

void pauli_rows(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out, int64_t stride,
                float* scratch) {
  rows_in_lanes::pauli_rows<Lanes8, Transposes>(plan, phi, ld, rows, out, stride, scratch);
}

void circuit_pauli_rows(const CircuitPlan& c, const PauliPlan& plan, const float* x, int64_t ld, int64_t d,
                        int64_t rows, bool normalized, float* out, int64_t stride, float* scratch) {
  rows_in_lanes::circuit_pauli_rows<Lanes8, Transposes>(c, plan, x, ld, d, rows, normalized, out, stride, scratch);
}

void unitary_pauli_rows(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ld, int64_t d, int64_t rows,
                        bool normalized, float* out, int64_t stride, float* scratch) {
  rows_in_lanes::unitary_pauli_rows<Lanes8, Transposes>(plan, u_cols, x, ld, d, rows, normalized, out, stride, scratch);
}

}  // namespace qisa::avx2_rows
