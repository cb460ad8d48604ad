// Many-row Q8_0 and Q4_0 products on Intel AMX (tile registers, int8 x int8 -> int32
// at 16 x 16 x 32 per instruction), for CPUs that have AMX-INT8 and
// AVX-512. This file alone is compiled with those instructions and is only
// entered after amx_batch_kernels() checked the CPU and the kernel allowed
// the tile data (Linux asks each process to request it).
//   The activations are rounded per block of 32 exactly like
// round_activations() (core/dtype.h), so a row's result does not depend on
// whether it went through these kernels or the few-row ones. Per block b
// of 32 inputs: C[o, r] = sum_k W[o, k] q[r, k] (one tile product on the
// stored int8, no copy of the weight), then y[r, o] += dw[o, b] dx[r, b]
// C[o, r] in f32. Q4_0 weights are unpacked to int8 one 16-output tile at a
// time (into the caller's work buffer) and used for all rows.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "avx512_support.h"
#include "cpu_kernels.h"
#include "dtype_blocks.h"
#include "qisa.h"

namespace qisa {

namespace {

constexpr int64_t kTile = 16;               // rows or outputs per tile
constexpr int64_t kBlock = 32;              // inputs per tile product (one Q8_0 block)
constexpr int64_t kTileBytes = kTile * 32;  // one activation tile: 8 rows of 64 bytes
constexpr int64_t kScaleBytes = kTile * 4;  // the 16 rows' dx of one block
constexpr int64_t kMaxBlocks = kBatchMaxIn / kBlock;

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tile 0: C, m outputs x 16 rows of int32. Tile 1: A, m weight rows x 32
// int8 (one block). Tile 2: B, the 16 activation rows' block in the VNNI
// layout (8 rows of 16 x 4 bytes).
void configure(int m) {
  TileConfig c;
  c.rows[0] = static_cast<uint8_t>(m);
  c.colsb[0] = 64;
  c.rows[1] = static_cast<uint8_t>(m);
  c.colsb[1] = 32;
  c.rows[2] = 8;
  c.colsb[2] = 64;
  _tile_loadconfig(&c);
}

int64_t blocks_of(int64_t in) {
  return (in + kBlock - 1) / kBlock;
}

size_t packed_bytes(int64_t rows, int64_t in) {
  return static_cast<size_t>((rows + kTile - 1) / kTile * blocks_of(in) * (kTileBytes + kScaleBytes));
}

// Per tile of 16 rows and block b: the int8 activations at (t nb + b) 512,
// B[k / 4][n * 4 + k % 4] = q[row n][32 b + k]; then after all of them the
// scales dx[t][b][n] (0 for padding rows, whose q are 0).
void pack(const float* x, int64_t ldx, int64_t rows, int64_t in, uint8_t* packed) {
  pack_row_tiles(x, ldx, rows, in, 0, packed);
}

size_t no_work(int64_t) {
  return 0;
}
// Q4_0: one 16-output tile's weights unpacked to int8 (nibble - 8), [block][output][32].
size_t q4_work(int64_t in) {
  return static_cast<size_t>(blocks_of(in) * kTile * kBlock);
}

// Q4_0 block -> 32 int8 values (nibble - 8) in order.
inline void unpack_q4(const uint8_t* block, int8_t* out) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m128i mask = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_sub_epi8(_mm_and_si128(raw, mask), eight));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16),
                   _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight));
}

// y[r, o] = bias[o] + sum over blocks of dw[o, b] dx[r, b] C_b[o, r]. The
// weight tile of a block is the stored int8 (Q8_0, `BlockBytes` 34) or the
// unpacked nibbles in `work` (Q4_0, 18).
template <size_t BlockBytes>
void product(float* y, int64_t ldy, const uint8_t* packed, int64_t rows, int64_t in, const uint8_t* w, size_t w_stride,
             const float* bias, int64_t out, uint8_t* work) {
  constexpr bool kNibbles = BlockBytes == kQ4BlockBytes;
  const int64_t nb = blocks_of(in), tiles = (rows + kTile - 1) / kTile;
  const float* dxs = reinterpret_cast<const float*>(packed + tiles * nb * kTileBytes);
  alignas(64) int32_t c[kTile * kTile] = {};
  alignas(64) float dw[kMaxBlocks * kTile];
  int configured = 0;
  for (int64_t o0 = 0; o0 < out; o0 += kTile) {
    const int m = static_cast<int>(out - o0 < kTile ? out - o0 : kTile);
    if (m != configured) {
      configure(m);
      configured = m;
    }
    const uint8_t* wo = w + static_cast<size_t>(o0) * w_stride;
    for (int64_t b = 0; b < nb; ++b) {
      for (int i = 0; i < kTile; ++i) {
        uint16_t h = 0;
        if (i < m) {
          const uint8_t* block = wo + static_cast<size_t>(i) * w_stride + b * BlockBytes;
          std::memcpy(&h, block, 2);
          if (kNibbles) unpack_q4(block, reinterpret_cast<int8_t*>(work) + (b * kTile + i) * kBlock);
        }
        dw[b * kTile + i] = _cvtsh_ss(h);
      }
    }
    for (int64_t t = 0; t < tiles; ++t) {
      __m512 acc[kTile];
      for (auto& a : acc) a = _mm512_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        _tile_zero(0);
        if (kNibbles) {
          _tile_loadd(1, work + b * kTile * kBlock, kBlock);
        } else {
          _tile_loadd(1, wo + b * BlockBytes + 2, static_cast<long>(w_stride));
        }
        _tile_loadd(2, packed + (t * nb + b) * kTileBytes, 64);
        _tile_dpbssd(0, 1, 2);
        _tile_stored(0, c, 64);
        const __m512 dxv = _mm512_loadu_ps(dxs + (t * nb + b) * kTile);
        const float* dwb = dw + b * kTile;
#pragma GCC unroll 16
        for (int i = 0; i < kTile; ++i)
          acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + kTile * i)),
                                   _mm512_mul_ps(_mm512_set1_ps(dwb[i]), dxv), acc[i]);
      }
      // Output i of the tile is column o0 + i of the 16 rows.
      const int64_t here = rows - t * kTile < kTile ? rows - t * kTile : kTile;
      store_row_tile(y + t * kTile * ldy, ldy, here, o0, acc, m, bias);
    }
  }
  _tile_release();
}

// AVX-512 (avx512_support.h), AMX-TILE and AMX-INT8, and the process
// allowed to use the tile data.
bool usable() {
  Cpuid7 leaf7;
  if (!avx512_usable(&leaf7) || !(leaf7.edx >> 24 & 1) || !(leaf7.edx >> 25 & 1)) return false;
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
}

}  // namespace

const BatchKernel* amx_batch_kernels() {
  struct Table {
    BatchKernel k[kDtypeCount] = {};
  };
  static const Table table = [] {
    Table t;
    t.k[QISA_DTYPE_Q8_0] = {packed_bytes, pack, product<kQ8BlockBytes>, no_work};
    t.k[QISA_DTYPE_Q4_0] = {packed_bytes, pack, product<kQ4BlockBytes>, q4_work};
    return t;
  }();
  static const bool ok = usable();
  return ok ? table.k : nullptr;
}

}  // namespace qisa
