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

bool circuit_has_angles(const QuantumProjection& q) {
  return q.circuit == CircuitKind::RxRyCnotRy && q.angles.size() == 3 * size_t{q.n_qubits};
}

bool unitary_from_angles(const QuantumProjection& q) {
  return circuit_has_angles(q) && (q.unitary_re->dtype != QISA_DTYPE_F32 || q.unitary_im->dtype != QISA_DTYPE_F32);
}

void unitary_planes(const QuantumProjection& q, int64_t cols, std::vector<float>& re, std::vector<float>& im) {
  const int64_t D = int64_t{1} << q.n_qubits;
  re.resize(static_cast<size_t>(D * cols));
  im.resize(static_cast<size_t>(D * cols));
  if (!unitary_from_angles(q)) {
    for (int64_t r = 0; r < D; ++r) {
      dequantize_row(q.unitary_re->dtype, q.unitary_re->row(static_cast<uint64_t>(r)), static_cast<size_t>(cols),
                     re.data() + r * cols);
      dequantize_row(q.unitary_im->dtype, q.unitary_im->row(static_cast<uint64_t>(r)), static_cast<size_t>(cols),
                     im.data() + r * cols);
    }
    return;
  }
  // Column by column: only the `cols` columns wanted, O(D) scratch.
  std::vector<cplx> column(static_cast<size_t>(D));
  for (int64_t c = 0; c < cols; ++c) {
    circuit_column(q.n_qubits, q.angles, static_cast<uint64_t>(c), column);
    for (int64_t r = 0; r < D; ++r) {
      re[static_cast<size_t>(r * cols + c)] = static_cast<float>(column[static_cast<size_t>(r)].real());
      im[static_cast<size_t>(r * cols + c)] = static_cast<float>(column[static_cast<size_t>(r)].imag());
    }
  }
}

StackedMatrix stack_unitaries(const std::vector<const QuantumProjection*>& projections, int64_t cols,
                              bool keep_stored) {
  const int64_t D = int64_t{1} << projections.at(0)->n_qubits;
  const auto rows = 2 * static_cast<int64_t>(projections.size()) * D;
  const qisa_dtype dt = projections[0]->unitary_re->dtype;
  bool same = keep_stored;
  for (const auto* q : projections)
    same = same && q->unitary_re->dtype == dt && q->unitary_im->dtype == dt && !unitary_from_angles(*q);
  if (!same) {
    StackedMatrix s = f32_matrix(rows, cols);
    float* dst = f32_data(s);
    std::vector<float> re, im;
    for (const auto* q : projections) {
      unitary_planes(*q, cols, re, im);
      dst = std::copy(re.begin(), re.end(), dst);
      dst = std::copy(im.begin(), im.end(), dst);
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
      std::vector<float> re, im;
      unitary_planes(*q, D, re, im);
      std::vector<cplx> u(static_cast<size_t>(D * D));
      for (size_t i = 0; i < u.size(); ++i) u[i] = cplx(re[i], im[i]);
      std::vector<float> obs_re, obs_im;
      dense_observables(q->n_qubits, u, q->paulis, obs_re, obs_im);
      std::copy(obs_re.begin(), obs_re.end(), dst);
    }
    dst += h * D * D;
  }
  return s;
}

}  // namespace qisa
