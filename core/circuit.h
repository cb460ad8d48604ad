// The quantum-inspired circuit of docs/math.md, simulated exactly on a
// 2^n complex state: amplitude encoding, the RX-RY / CNOT ring / RY circuit,
// and Pauli-string expectations in O(D).
//
// Conventions: qubit 0 is the most significant bit of a basis index, so
// qubit j is bit (n-1-j). Angles are laid out a_0..a_{n-1}, b_0.., c_0...
#pragma once

#include <complex>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qisa {

using cplx = std::complex<double>;

struct PauliString {
  uint64_t x_mask = 0;  // X or Y on a qubit
  uint64_t z_mask = 0;  // Z or Y on a qubit
};

// n = ceil(log2 d), at least 2.
uint32_t qubits_for_width(uint64_t d);

// A one-qubit gate [[m00, m01], [m10, m11]], and the rotations of the circuit.
struct Gate2 {
  cplx m00, m01, m10, m11;
};
Gate2 rx(double t);
Gate2 ry(double t);

// The CNOT ring (control j, target j+1 mod n, for j = 0..n-1 in order) as a
// permutation of the 2^n basis states: (P x)[s] = x[inv[s]]. For callers
// that apply it as a gather (the trainer's U, the CPU engine's gates);
// apply_circuit swaps amplitudes gate by gate instead.
std::vector<uint32_t> cnot_ring_inverse_permutation(uint32_t n);

// state <- U(angles) state, gate by gate: O(n * 2^n).
void apply_circuit(uint32_t n, std::span<const float> angles, std::span<cplx> state);

// Column j of U(angles), i.e. U e_j.
void circuit_column(uint32_t n, std::span<const float> angles, uint64_t j, std::span<cplx> column);

// The dense unitary, row-major D x D.
std::vector<cplx> circuit_unitary(uint32_t n, std::span<const float> angles);

// out = P in.
void apply_pauli(PauliString p, std::span<const cplx> in, std::span<cplx> out);

// <phi| P |phi>, real for a Hermitian P.
double pauli_expectation(PauliString p, std::span<const cplx> phi);

// O'_k = U^dag P_k U for each string, from a row-major D x D unitary, as
// [k][row][col] real and imaginary planes. O(count * D^3): small D only
// (export, tests, the runtime's observables path for files without them).
void dense_observables(uint32_t n_qubits, const std::vector<cplx>& u, const std::vector<PauliString>& paulis,
                       std::vector<float>& re, std::vector<float>& im);

// "XIZY"-style text for n qubits (qubit 0 first), and back. parse returns
// false on a bad character or length.
std::string pauli_to_string(uint32_t n, PauliString p);
bool pauli_from_string(const std::string& s, PauliString* out);

}  // namespace qisa
