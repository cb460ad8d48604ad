#include "backends/quantum_stack.h"

#include <algorithm>

#include "circuit.h"
#include "dtype.h"

namespace qisa {

namespace {

// rows x cols f32 values, ready to fill.
StackedMatrix f32_matrix(int64_t rows, int64_t cols) {
  StackedMatrix s;
  s.row_bytes = static_cast<size_t>(cols) * sizeof(float);
  s.rows = rows;
  s.cols = cols;
  s.bytes.resize(static_cast<size_t>(rows) * s.row_bytes);
  return s;
}

float* f32_data(StackedMatrix& s) {
  return reinterpret_cast<float*>(s.bytes.data());
}

}  // namespace

StackedMatrix stack_unitaries(const std::vector<const QuantumProjection*>& projections, int64_t cols,
                              bool keep_stored) {
  const int64_t D = int64_t{1} << projections.at(0)->n_qubits;
  const auto rows = 2 * static_cast<int64_t>(projections.size()) * D;
  const qisa_dtype dt = projections[0]->unitary_re->dtype;
  bool same = keep_stored;
  for (const auto* q : projections) same = same && q->unitary_re->dtype == dt && q->unitary_im->dtype == dt;
  if (!same) {
    StackedMatrix s = f32_matrix(rows, cols);
    float* dst = f32_data(s);
    for (const auto* q : projections) {
      for (const TensorView* plane : {q->unitary_re, q->unitary_im}) {
        for (int64_t r = 0; r < D; ++r, dst += cols)
          dequantize_row(plane->dtype, plane->row(static_cast<uint64_t>(r)), static_cast<size_t>(cols), dst);
      }
    }
    return s;
  }
  StackedMatrix s;
  s.dtype = dt;
  s.row_bytes = *row_bytes(dt, static_cast<uint64_t>(cols));  // a prefix of each stored row
  s.rows = rows;
  s.cols = cols;
  s.bytes.resize(static_cast<size_t>(rows) * s.row_bytes);
  uint8_t* dst = s.bytes.data();
  for (const auto* q : projections) {
    for (const TensorView* plane : {q->unitary_re, q->unitary_im}) {
      for (int64_t r = 0; r < D; ++r, dst += s.row_bytes)
        std::copy_n(plane->row(static_cast<uint64_t>(r)), s.row_bytes, dst);
    }
  }
  return s;
}

StackedMatrix stack_observables(const std::vector<const QuantumProjection*>& projections, int64_t h) {
  const int64_t D = int64_t{1} << projections.at(0)->n_qubits;
  StackedMatrix s = f32_matrix(static_cast<int64_t>(projections.size()) * h * D, D);
  float* dst = f32_data(s);
  for (const auto* q : projections) {
    if (q->observables_re) {
      for (int64_t r = 0; r < h * D; ++r)
        dequantize_row(q->observables_re->dtype, q->observables_re->row(static_cast<uint64_t>(r)),
                       static_cast<size_t>(D), dst + r * D);
    } else {
      std::vector<float> re(static_cast<size_t>(D)), im(static_cast<size_t>(D));
      std::vector<cplx> u(static_cast<size_t>(D * D));
      for (int64_t r = 0; r < D; ++r) {
        dequantize_row(q->unitary_re->dtype, q->unitary_re->row(static_cast<uint64_t>(r)), static_cast<size_t>(D),
                       re.data());
        dequantize_row(q->unitary_im->dtype, q->unitary_im->row(static_cast<uint64_t>(r)), static_cast<size_t>(D),
                       im.data());
        for (int64_t c = 0; c < D; ++c) u[static_cast<size_t>(r * D + c)] = cplx(re[c], im[c]);
      }
      std::vector<float> obs_re, obs_im;
      dense_observables(q->n_qubits, u, q->paulis, obs_re, obs_im);
      std::copy(obs_re.begin(), obs_re.end(), dst);
    }
    dst += h * D * D;
  }
  return s;
}

}  // namespace qisa
