// Element types of model tensors (f32, f16, bf16, Q8_0 and Q4_0 blocks), one row of
// traits each: the loader, the writer, the tools, the tests and every
// backend's kernel tables read them here.
// Q8_0 splits each row (last dimension) into blocks of 32 values stored as
// an f16 scale d followed by 32 int8 q; value = d * q. A row whose length is
// not a multiple of 32 is padded with zeros in its last block. Q4_0 is the
// same with 4-bit values (dtype_blocks.h has the layout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dtype_blocks.h"
#include "qisa.h"

namespace qisa {

struct DtypeTraits {
  qisa_dtype type;
  const char* name;   // as files, tools and messages print it
  const char* alias;  // another spelling the tools accept, or nullptr
  uint32_t block;     // values per block (1: no blocks)
  uint32_t block_bytes;
  // Largest relative error of one stored value against its f32 source
  // (round to nearest; Q8_0: half a step of the block's largest value).
  double rel_error;
  // Max |logit - f32 model's logit| / max |f32 logit| a model stored in
  // this type may show against the same model in f32 (measured on the
  // synthetic test models; tests/test_quantized.cpp).
  double logit_tolerance;
  // What the loader allows a stored unitary: max |element error|, and the
  // error of a column's squared norm or a column pair's inner product.
  double unitary_element_error, unitary_norm_error;
  void (*quantize)(const float* src, size_t cols, uint8_t* dst);
  void (*dequantize)(const uint8_t* src, size_t cols, float* dst);
  float (*load)(const uint8_t* row, size_t col);
  // Whether unitaries and Pauli observables may be stored in this type (the
  // loader refuses them otherwise).
  bool holds_unitaries;
  // Whether the fast CPU engine's products with this type round the
  // activations to 8 bits per block of 32 (an integer dot per block, like
  // llama.cpp's vec_dot_type); otherwise they multiply f32 activations.
  bool rounds_activations;
};

// Every type, in enum order.
std::span<const DtypeTraits> dtypes();
// nullptr for a value outside the enum (a file's byte).
const DtypeTraits* find_dtype(int t);
// The traits of a type known to be valid.
const DtypeTraits& dtype_traits(qisa_dtype t);

const char* dtype_name(qisa_dtype t);
// The type a name denotes: every name dtype_name prints and every alias
// ("q8" for Q8_0). Empty for anything else.
std::optional<qisa_dtype> dtype_from_name(std::string_view name);
// "f32, f16, bf16, q8_0 (q8)": for usage lines and messages.
std::string dtype_names(std::string_view separator = ", ");
bool dtype_valid(int t);

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

// Bytes of one row of `cols` values; nullopt on overflow.
std::optional<uint64_t> row_bytes(qisa_dtype t, uint64_t cols);

// Converts one row between f32 and the stored type.
void quantize_row(qisa_dtype t, const float* src, size_t cols, uint8_t* dst);
void dequantize_row(qisa_dtype t, const uint8_t* src, size_t cols, float* dst);

// out[:n] = x[:n] as products with a type whose traits say
// rounds_activations use them (every engine): per block of 32 values,
// dx = max|x| / 127 and x -> dx * round_to_nearest_even(x * (127 / max|x|)).
void round_activations(const float* x, size_t n, float* out);

// One element of a stored row.
float load_element(qisa_dtype t, const uint8_t* row, size_t col);

}  // namespace qisa
