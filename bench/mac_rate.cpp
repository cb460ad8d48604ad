// Multiply-accumulate rates of this CPU's vector instructions, one thread:
// f32 FMA (what oneDNN's f32 GEMM runs on) against the integer forms an
// int8 product can take. Without VNNI an int8 dot is vpmaddubsw (u8 x s8
// pairs into int16) and vpmaddwd (into int32), plus vpsignb when both sides
// are signed (Q8_0 x Q8_0); with VNNI it is one vpdpbusd. Whether int8
// many-row products can beat f32 ones on a CPU is decided here: an int8
// kernel does at best this rate times its efficiency, and the f32 GEMM
// reaches ~90% of the f32 rate (bench_runtime's BM_PeakGemm).
//
// Throughput, not latency: f32 keeps eight independent sums (the FMA's
// latency times its two pipes); the integer forms add their products with
// a one-cycle vpaddd, so four sums do, over four inputs that an empty asm
// statement marks as changed every step (their products would otherwise
// be hoisted out of the loop).
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr long kSteps = 20'000'000;
constexpr int kF32Sums = 8, kSums = 4;

#define QISA_KEEP(v) __asm__ volatile("" : "+x"(v[0]), "+x"(v[1]), "+x"(v[2]), "+x"(v[3]))

// Each returns a value that depends on every sum (so none is dropped).
__attribute__((target("avx2,fma"))) float f32_fma(long n) {
  __m256 acc[kF32Sums];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const __m256 x = _mm256_set1_ps(1.001f), w = _mm256_set1_ps(0.999f);
  for (long i = 0; i < n; ++i)
    for (auto& a : acc) a = _mm256_fmadd_ps(x, w, a);
  __m256 s = acc[0];
  for (int k = 1; k < kF32Sums; ++k) s = _mm256_add_ps(s, acc[k]);
  return _mm256_cvtss_f32(s);
}

// Signed x signed bytes (the AVX2 Q8_0 dot): |w| as the unsigned side, x
// given w's sign.
__attribute__((target("avx2"))) int s8_s8(long n) {
  __m256i x[kSums], acc[kSums];
  for (int k = 0; k < kSums; ++k) {
    x[k] = _mm256_set1_epi8(static_cast<char>(3 + k));
    acc[k] = _mm256_setzero_si256();
  }
  const __m256i w = _mm256_set1_epi8(-5), aw = _mm256_abs_epi8(w), ones = _mm256_set1_epi16(1);
  for (long i = 0; i < n; ++i) {
    for (int k = 0; k < kSums; ++k)
      acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x[k], w)), ones));
    QISA_KEEP(x);
  }
  __m256i s = acc[0];
  for (int k = 1; k < kSums; ++k) s = _mm256_add_epi32(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

// Unsigned x signed bytes (the AVX2 Q4_0 dot: nibbles are unsigned).
__attribute__((target("avx2"))) int u8_s8(long n) {
  __m256i x[kSums], acc[kSums];
  for (int k = 0; k < kSums; ++k) {
    x[k] = _mm256_set1_epi8(static_cast<char>(3 + k));
    acc[k] = _mm256_setzero_si256();
  }
  const __m256i w = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
  for (long i = 0; i < n; ++i) {
    for (int k = 0; k < kSums; ++k)
      acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(w, x[k]), ones));
    QISA_KEEP(x);
  }
  __m256i s = acc[0];
  for (int k = 1; k < kSums; ++k) s = _mm256_add_epi32(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

// int16 pairs into int32 (vpmaddwd alone).
__attribute__((target("avx2"))) int s16_s16(long n) {
  __m256i x[kSums], acc[kSums];
  for (int k = 0; k < kSums; ++k) {
    x[k] = _mm256_set1_epi16(static_cast<short>(3 + k));
    acc[k] = _mm256_setzero_si256();
  }
  const __m256i w = _mm256_set1_epi16(-5);
  for (long i = 0; i < n; ++i) {
    for (int k = 0; k < kSums; ++k) acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(x[k], w));
    QISA_KEEP(x);
  }
  __m256i s = acc[0];
  for (int k = 1; k < kSums; ++k) s = _mm256_add_epi32(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

// AVX-512 VNNI on 256-bit registers: 32 u8 x s8 products per instruction.
__attribute__((target("avx512f,avx512vl,avx512vnni"))) int vnni(long n) {
  __m256i x[kSums], acc[kSums];
  for (int k = 0; k < kSums; ++k) {
    x[k] = _mm256_set1_epi8(static_cast<char>(3 + k));
    acc[k] = _mm256_setzero_si256();
  }
  const __m256i w = _mm256_set1_epi8(5);
  for (long i = 0; i < n; ++i) {
    for (int k = 0; k < kSums; ++k) acc[k] = _mm256_dpbusd_epi32(acc[k], w, x[k]);
    QISA_KEEP(x);
  }
  __m256i s = acc[0];
  for (int k = 1; k < kSums; ++k) s = _mm256_add_epi32(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

// Billions of multiply-accumulates per second of f(), which does `macs`
// per step; the best of `rounds`.
template <class F>
double rate(F f, double macs, int sums, int rounds) {
  double best = 0.0;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile auto keep = f(kSteps);
    (void)keep;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double g = macs * sums * static_cast<double>(kSteps) / s / 1e9;
    best = g > best ? g : best;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
      if (rounds < 1) rounds = 1;
    } else {
      std::fprintf(stderr, "usage: mac_rate [--rounds R]\n");
      return 2;
    }
  }
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("mac_rate: this CPU has no AVX2 / FMA; nothing to measure\n");
    return 0;
  }
  const double f32 = rate(f32_fma, 8, kF32Sums, rounds);
  std::printf("| form (256-bit registers) | MACs per step | GMAC/s | vs f32 FMA |\n|---|---:|---:|---:|\n");
  auto row = [&](const char* name, int macs, double g) {
    std::printf("| %s | %d | %.1f | %.2fx |\n", name, macs, g, g / f32);
  };
  row("f32: vfmadd231ps", 8, f32);
  row("s8 x s8: vpsignb, vpmaddubsw, vpmaddwd, vpaddd", 32, rate(s8_s8, 32, kSums, rounds));
  row("u8 x s8: vpmaddubsw, vpmaddwd, vpaddd", 32, rate(u8_s8, 32, kSums, rounds));
  row("s16 x s16: vpmaddwd, vpaddd", 16, rate(s16_s16, 16, kSums, rounds));
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
    row("u8 x s8: vpdpbusd (VNNI)", 32, rate(vnni, 32, kSums, rounds));
  else
    std::printf("| u8 x s8: vpdpbusd (VNNI) | 32 | - | this CPU has no AVX-512 VNNI |\n");
  return 0;
}
