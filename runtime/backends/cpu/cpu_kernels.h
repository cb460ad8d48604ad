// Inner loops of the fast CPU engine that oneDNN does not cover: products
// with few rows straight from f32, f16, bf16, Q8_0 or Q4_0 weights (no f32
// copy of the weight; activations stay f32 except for Q8_0 and Q4_0, whose
// products round them to 8 bits per block of 32 the same way for any row
// count, so a result does not depend on how many rows shared the call), the
// Pauli products and sums, the circuits, and attention over the cache. A
// portable set (cpu_kernels_generic.cpp) and AVX2/FMA/F16C
// (cpu_kernels_avx2.cpp), with AVX-512, VNNI and AMX entries over it where
// the CPU has them, chosen once by CPU feature; every set is tested against
// reference computations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dtype_blocks.h"

namespace qisa {

// y[r * ldy + o] = (bias ? bias[o] : 0) + x[r * ldx + :in] . W[o], for
// r < rows, o < out; row o of W starts at w + o * w_stride bytes.
using LinearKernel = void (*)(float* y, int64_t ldy, const float* x, int64_t ldx, const uint8_t* w, size_t w_stride,
                              const float* bias, int64_t rows, int64_t in, int64_t out);
// p[j] = Re(conj(phi[j ^ x]) phi[j]) (or Im when `imaginary`), phi = re + i im,
// for j < D (D a power of two).
using PauliProductKernel = void (*)(float* p, const float* re, const float* im, uint64_t x, bool imaginary, int64_t D);
// Sum of a[i] * b[i].
using DotKernel = float (*)(const float* a, const float* b, int64_t n);
// One projection's Pauli strings prepared for PauliSumsKernel
// (pauli_plan.h builds it), grouped by X mask and by the part (Re or Im)
// of the sum that i^ny asks for.
//   Halving: for x != 0 the terms at j and j ^ x are equal (Re strings
// have an even number of Y, so both the product and the sign agree; Im
// strings an odd one, so both flip), so a group whose highest X bit b is
// >= 3 sums over the states with bit b clear only (whole blocks of 8) and
// doubles: index t is j with bit b removed, its Z mask compressed alike.
struct PauliPlanGroup {
  uint64_t x = 0;
  int32_t first = 0, count = 0;  // the group's strings in the plan's arrays
  int32_t bit = -1;              // halved over this bit; -1: every state
  bool imaginary = false;
  bool walsh = false;  // the signed sums from one Walsh-Hadamard transform
  int64_t coef = -1;   // not walsh, D <= kPauliRowStates: its block of PauliPlan::coef
};
struct PauliPlan {
  int64_t D = 0;
  const PauliPlanGroup* groups = nullptr;
  int64_t n_groups = 0;
  const uint64_t* z = nullptr;   // per string: Z mask (compressed when the group is halved)
  const float* scale = nullptr;  // per string: +-1 for i^ny, times 2 when halved
  const int32_t* out = nullptr;  // per string: its output column
  int64_t strings = 0;           // out[k] for k < strings
  // D <= kPauliRowStates: per group that is not walsh, [n][count] (n its
  // states, halved or not) the factor of state t's product in each
  // string's sum: the sign of popcount(t & z) times the scale.
  const float* coef = nullptr;
  // Small states (D <= kPauliLaneStates): the strings in order, one per
  // vector lane, every state's product gathered by lane permutes; no
  // groups, no horizontal sums. 0 where the plan has no lane layout.
  int64_t lane_count = 0;               // strings rounded up to kPauliLanes
  const int32_t* lane_x = nullptr;      // [lane_count] X mask (0 past the strings)
  const uint32_t* lane_imag = nullptr;  // [lane_count] all ones where the string takes Im S
  const float* lane_scale = nullptr;    // [lane_count] +-1 for i^ny (0 past the strings)
  const uint32_t* lane_sign = nullptr;  // [D][lane_count] sign bit where popcount(j & z) is odd
  // Small states, the states in lanes instead. The groups once more, in
  // four runs of state_runs[] groups: X mask below 8 and Re part, below 8
  // and Im, from 8 (D = 16) and Re, from 8 and Im; each group's lane
  // permutation [8] j ^ (x & 7) at state_perm. Per output column k <
  // lane_count, [kPauliLaneStates] its string's phase (+-1 for i^ny) times
  // (-1)^popcount(j & z) at state j < D (0 past D and past the strings; a
  // string with x >= 8 sums the states below 8 only, with twice the
  // factor); and its group's index in the runs (0 past the strings).
  // nullptr where the lane layout is absent.
  const float* state_coef = nullptr;
  const int32_t* state_group = nullptr;
  const int32_t* state_perm = nullptr;
  int64_t state_runs[4] = {};
};
constexpr int64_t kPauliLaneStates = 16;
constexpr int64_t kPauliLanes = 16;
constexpr int64_t kPauliRowStates = 256;
constexpr int32_t kPauliDirectStrings = 8;  // with coef: groups of more strings are walsh
// out[plan.out[k]] = Re(i^ny sum_j conj(phi[j ^ x]) (-1)^popcount(j & z)
// phi[j]) for every string k, phi = re + i im; scratch [D].
using PauliSumsKernel = void (*)(const PauliPlan& plan, const float* re, const float* im, float* out, float* scratch);
// The same for `rows` <= kPauliRows rows at once (a plan with coef): row i's
// phi at phi + i ld (re, then im), its sums at out + i stride; scratch
// [pauli_rows_scratch(plan)].
constexpr int64_t kPauliRows = 16;
using PauliRowsKernel = void (*)(const PauliPlan& plan, const float* phi, int64_t ld, int64_t rows, float* out,
                                 int64_t stride, float* scratch);
inline int64_t pauli_rows_scratch(const PauliPlan& plan) {
  return (5 * plan.D + (plan.strings + kPauliRows - 1) / kPauliRows * kPauliRows) * kPauliRows;
}
// A circuit U = L3 P L1 prepared for gate-by-gate application
// (circuit_gates.h builds it from a projection's angles).
struct CircuitPlan {
  int64_t n = 0, low = 0, D = 0, K = 0;  // K = 2^low: the last `low` qubits act as one K x K matrix
  // Per qubit j < n (on bit n - 1 - j of a state's index; loops that use
  // the K x K matrices below take only j < n - low): L1 RY(b) RX(a) as
  // re00 im00 re01 im01 re10 im10 re11 im11, L3 cos, sin of c_j / 2.
  const float* l1 = nullptr;
  const float* l3 = nullptr;
  const float* l1_low_re = nullptr;  // K x K, [column][row]
  const float* l1_low_im = nullptr;
  const float* l3_low = nullptr;       // K x K real, [column][row]
  const uint32_t* inv_perm = nullptr;  // (P x)[s] = x[inv_perm[s]]
  // P by blocks of 8 (D >= 8; null when some block draws from more than two
  // source blocks): output block s0 / 8 takes lane l from the source block
  // starting at perm_blocks[2 b + 1] where perm_second[8 b + l] is -1, else
  // from perm_blocks[2 b], at lane perm_lanes[8 b + l].
  const int32_t* perm_blocks = nullptr;
  const int32_t* perm_lanes = nullptr;
  const int32_t* perm_second = nullptr;
};
// re, im [D] = U psi for a real psi [d] (zero past d <= D); scratch [2 D].
using CircuitKernel = void (*)(const CircuitPlan& plan, const float* psi, int64_t d, float* re, float* im,
                               float* scratch);
// PauliRowsKernel's sums of phi = U psi for `rows` <= kPauliRows inputs x
// (row i's d <= D values at x + i ld): psi = x / max(|x|, 1e-12) when
// normalized, else x, zero past d (the encoding is part of the kernel);
// the circuit's and the plan's D agree; scratch [pauli_rows_scratch(pauli)].
using CircuitPauliRowsKernel = void (*)(const CircuitPlan& circuit, const PauliPlan& pauli, const float* x, int64_t ld,
                                        int64_t d, int64_t rows, bool normalized, float* out, int64_t stride,
                                        float* scratch);
// CircuitPauliRowsKernel with a small state's dense U (D <= kPauliLaneStates;
// u_cols as SmallValueKernel's) in place of the circuit.
using UnitaryPauliRowsKernel = void (*)(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ld,
                                        int64_t d, int64_t rows, bool normalized, float* out, int64_t stride,
                                        float* scratch);
// Rows of small states (D <= kPauliLaneStates, a plan with lanes), the
// whole value projection per row: psi = x (x / max(|x|, 1e-12) when
// normalized; d <= D values at x + i ldx, zero past d), phi = U psi with U
// as columns (u_cols [d][2 kPauliLaneStates]: Re then Im of column c, zero
// past D), then pauli_lanes' sums at out + i stride. One call for what is
// otherwise an encoding pass, a product call and a sums call per row.
using SmallValueKernel = void (*)(const PauliPlan& plan, const float* u_cols, const float* x, int64_t ldx, int64_t d,
                                  int64_t rows, bool normalized, float* out, int64_t stride);
// Attention of one query row over cached positions, in two steps (the
// contract of ref::attention_row, with the choice of positions between
// them). Scores: s[j] = the selection score of key j < n: -|q - k_j|^2 when
// `gaussian` (|k_j|^2 at key_norms[j * norm_stride]), else q.k_j * scale.
using ScoresKernel = void (*)(float* s, const float* q, const float* keys, const float* key_norms, int64_t n, int64_t h,
                              int64_t k_stride, int64_t norm_stride, bool gaussian, float scale);
// Attend: softmax over i < m of s[i] (of exp(s[i]) when `gaussian`), and
// out[:h] = the weighted sum of the values of positions pos[i] (i itself
// when pos is null). Overwrites s.
using AttendKernel = void (*)(float* out, float* s, const uint32_t* pos, int64_t m, const float* values,
                              int64_t v_stride, int64_t h, bool gaussian);

// LayerNorm of R rows of d values (x and out rows d apart): out = (x -
// mean) / sqrt(var + eps) * w + b, the variance that of the centred row.
using LayerNormKernel = void (*)(float* out, const float* x, const float* w, const float* b, int64_t R, int64_t d,
                                 float eps);

// out[:n] = the first n values of a stored row, as f32 (the values of
// dequantize_row()): the expansion before a many-row product.
using WidenKernel = void (*)(const uint8_t* row, int64_t n, float* out);

// out[:n] = the activations x[:n] as a type's few-row products use them
// (Q4_0: rounded to 8 bits per block of 32), for many-row products to
// multiply by the widened weight.
using ActivationsKernel = void (*)(const float* x, int64_t n, float* out);

// Many-row products on a stored weight whose type rounds the activations
// (cpu_kernels_amx.cpp, cpu_kernels_vnni.cpp, cpu_batch_avx2.cpp), in two steps so threads can split the outputs:
// pack() rounds and lays out the rows once, product() multiplies them by
// any range of outputs (w, bias and y at the range's first output).
struct BatchKernel {
  size_t (*bytes)(int64_t rows, int64_t in) = nullptr;  // of pack()'s output
  void (*pack)(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed) = nullptr;
  void (*product)(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w,
                  size_t w_stride, const float* bias, int64_t out, uint8_t* work) = nullptr;
  size_t (*work_bytes)(int64_t in) = nullptr;  // product()'s `work`, per concurrent call
  // Calls of fewer rows take the few-row kernels (linear[]), measured per set.
  int64_t min_rows = 16;
};
// The longest input a BatchKernel takes (its per-block scales live on the stack).
inline constexpr int64_t kBatchMaxIn = 16384;

// One kernel set. The per-type kernels are indexed by qisa_dtype: a new
// stored type is one more entry in each of the generic set's tables; the
// AVX2 set may leave it empty (nullptr), cpu_kernels() then uses the
// generic kernel for it.
struct CpuKernels {
  const char* name;
  LinearKernel linear[kDtypeCount];
  WidenKernel widen[kDtypeCount];  // f32: a copy
  PauliProductKernel pauli_products;
  DotKernel dot;
  PauliSumsKernel pauli_sums;
  ScoresKernel scores;
  AttendKernel attend;
  CircuitKernel circuit;
  // By qisa_dtype; nullptr: the products use the f32 activations as given.
  ActivationsKernel activations[kDtypeCount];
  // By qisa_dtype: products that keep f32 activations where linear[] rounds
  // them (the quantum layers' stored unitaries); nullptr elsewhere.
  LinearKernel linear_f32_activations[kDtypeCount];
  // By qisa_dtype; empty: many rows are rounded, the weight widened, oneDNN.
  BatchKernel batch[kDtypeCount];
  // pauli_sums of small states (D <= kPauliLaneStates) on a plan's lane
  // layouts (AVX-512: lane_*, the strings in lanes; AVX2: state_coef, the
  // states in lanes); nullptr: none (the generic set, whose groups are as
  // fast without vector permutes).
  PauliSumsKernel pauli_lanes;
  // pauli_sums for many rows, one row per vector lane (products and sums
  // lane-wise, no permutes or horizontal sums); nullptr: none.
  PauliRowsKernel pauli_rows;
  // The circuit and then pauli_rows, rows in lanes (phi never leaves the
  // scratch); nullptr: none.
  CircuitPauliRowsKernel circuit_pauli_rows;
  // The value projection of small states row by row (SmallValueKernel);
  // nullptr: none.
  SmallValueKernel small_value_rows;
  // LayerNorm; a set that leaves it empty gets the generic one.
  LayerNormKernel layernorm;
  // The value projection of many rows of small states, rows in lanes
  // (UnitaryPauliRowsKernel); nullptr: none.
  UnitaryPauliRowsKernel unitary_pauli_rows;
  // From this many states small_value_rows also takes many rows (from
  // kPauliRowsMinRows), row by row; 0: only fewer rows. Each set's choice
  // is measured with its own kernels (quantum_layer.cpp).
  int64_t small_value_rows_from_states;
};

// The best implementation this CPU runs, completed with generic kernels
// where it has none (QISA_CPU_KERNELS=generic in the environment forces
// the portable one, =avx2 the AVX2 set without AVX-512 VNNI and AMX).
const CpuKernels& cpu_kernels();
const CpuKernels& generic_cpu_kernels();
// nullptr when the CPU lacks AVX2, FMA or F16C.
const CpuKernels* avx2_cpu_kernels();
// Only pauli_lanes, pauli_rows, circuit_pauli_rows and small_value_rows, with AVX-512
// F/DQ/BW/VL; nullptr when the CPU lacks them. cpu_kernels() puts them over
// the AVX2 set's unless QISA_CPU_KERNELS asks for less, with this set's
// small-state choices (no unitary_pauli_rows, small_value_rows_from_states
// 0: many rows take circuit_pauli_rows, as measured with these kernels).
const CpuKernels* avx512_kernels();
// Only linear[], activations[] and batch[] for Q8_0 and Q4_0, with AVX-512
// VNNI; nullptr when the CPU lacks it. cpu_kernels() puts them over the
// AVX2 set's (AMX's batch kernels over these) unless QISA_CPU_KERNELS=avx2
// (or generic) asks for less.
const CpuKernels* vnni_kernels();
// By qisa_dtype; nullptr when the CPU lacks AMX-INT8 or AVX-512 (or the OS
// refuses the tile data). cpu_kernels() adds them to the AVX2 set unless
// QISA_CPU_KERNELS=avx2 (or generic) asks for less.
const BatchKernel* amx_batch_kernels();

}  // namespace qisa
