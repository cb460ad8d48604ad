// Multiply-accumulate rates of this CPU's vector instructions, one thread:
// f32 FMA (what oneDNN's f32 GEMM runs on) against the integer forms an
// int8 product can take. Without VNNI an int8 dot is vpmaddubsw (u8 x s8
// pairs into int16) and vpmaddwd (into int32), plus vpsignb when both sides
// are signed (Q8_0 x Q8_0); with VNNI it is one vpdpbusd. Whether int8
// many-row products can beat f32 ones on a CPU is decided here: an int8
// kernel does at best this rate times its efficiency, and the f32 GEMM
// comes close to the f32 rate (bench_runtime's BM_PeakGemm: 84-87 GFLOP/s
// on one Zen 3 core, where this measured 44-50 GMAC/s).
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

// An integer form's loop: four sums over four inputs x, each step
// acc = Step{}(acc, x) for every sum. The forms below differ only in Step.
// Named variables, not arrays: GCC kept an array of sums in memory here.
template <class Step>
__attribute__((target("avx2"))) int integer_rate(long n, __m256i x0) {
  static_assert(kSums == 4);
  __m256i x[kSums] = {x0, _mm256_add_epi8(x0, _mm256_set1_epi8(1)), _mm256_add_epi8(x0, _mm256_set1_epi8(2)),
                      _mm256_add_epi8(x0, _mm256_set1_epi8(3))};
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  const Step step;
  for (long i = 0; i < n; ++i) {
    a0 = step(a0, x[0]);
    a1 = step(a1, x[1]);
    a2 = step(a2, x[2]);
    a3 = step(a3, x[3]);
    QISA_KEEP(x);
  }
  return _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)), 0);
}

// Signed x signed bytes (the AVX2 Q8_0 dot): |w| as the unsigned side, x
// given w's sign.
struct S8S8 {
  __attribute__((target("avx2"))) __m256i operator()(__m256i acc, __m256i x) const {
    const __m256i w = _mm256_set1_epi8(-5);
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};
// Unsigned x signed bytes (the AVX2 Q4_0 dot: nibbles are unsigned).
struct U8S8 {
  __attribute__((target("avx2"))) __m256i operator()(__m256i acc, __m256i x) const {
    const __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(5), x);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
};
// int16 pairs into int32 (vpmaddwd alone: the AVX2 batch kernels).
struct S16S16 {
  __attribute__((target("avx2"))) __m256i operator()(__m256i acc, __m256i x) const {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_set1_epi16(-5)));
  }
};

__attribute__((target("avx2"))) int s8_s8(long n) {
  return integer_rate<S8S8>(n, _mm256_set1_epi8(3));
}
__attribute__((target("avx2"))) int u8_s8(long n) {
  return integer_rate<U8S8>(n, _mm256_set1_epi8(3));
}
__attribute__((target("avx2"))) int s16_s16(long n) {
  return integer_rate<S16S16>(n, _mm256_set1_epi16(3));
}

// The AVX2 Q8_0 batch kernel's step (cpu_batch_avx2.cpp) on data in L1:
// four weight quads broadcast from memory and their |w|, two tiles of 8
// rows' quads loaded, eight sums of vpsignb, vpmaddubsw, vpmaddwd, vpaddd:
// 256 MACs. kSigned false drops vpabsb and vpsignb (wrong products: what
// the sign handling costs). The kernel cannot run faster than this loop.
template <bool kSigned>
__attribute__((target("avx2"))) int kernel_step(long n) {
  alignas(32) static int8_t w[4][256], x[2][2048];
  for (int i = 0; i < 256; ++i)
    for (int o = 0; o < 4; ++o) w[o][i] = static_cast<int8_t>((i * 7 + o) % 255 - 127);
  for (int i = 0; i < 2048; ++i) x[0][i] = x[1][i] = static_cast<int8_t>(i % 251 - 125);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c[2][4];
  for (auto& t : c)
    for (auto& v : t) v = _mm256_setzero_si256();
  for (long i = 0; i < n; ++i) {
    const long q = i & 63;
    __m256i wv[4], aw[4];
    for (int o = 0; o < 4; ++o) {
      int32_t quad;
      std::memcpy(&quad, &w[o][q * 4], 4);
      wv[o] = _mm256_set1_epi32(quad);
      aw[o] = kSigned ? _mm256_abs_epi8(wv[o]) : wv[o];
    }
    for (int t = 0; t < 2; ++t) {
      const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(&x[t][q * 32]));
      for (int o = 0; o < 4; ++o)
        c[t][o] = _mm256_add_epi32(
            c[t][o], _mm256_madd_epi16(_mm256_maddubs_epi16(aw[o], kSigned ? _mm256_sign_epi8(xq, wv[o]) : xq), ones));
    }
  }
  __m256i sum = _mm256_setzero_si256();
  for (auto& t : c)
    for (auto& v : t) sum = _mm256_add_epi32(sum, v);
  return _mm256_extract_epi32(sum, 0);
}

// AVX-512 VNNI on 256-bit registers: 32 u8 x s8 products per instruction,
// which accumulates itself (its own loop: integer_rate is built for AVX2
// and cannot inline VNNI code).
__attribute__((target("avx512f,avx512vl,avx512vnni"))) int vnni(long n) {
  const __m256i x0 = _mm256_set1_epi8(3), w = _mm256_set1_epi8(5);
  __m256i x[kSums] = {x0, _mm256_add_epi8(x0, _mm256_set1_epi8(1)), _mm256_add_epi8(x0, _mm256_set1_epi8(2)),
                      _mm256_add_epi8(x0, _mm256_set1_epi8(3))};
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (long i = 0; i < n; ++i) {
    a0 = _mm256_dpbusd_epi32(a0, w, x[0]);
    a1 = _mm256_dpbusd_epi32(a1, w, x[1]);
    a2 = _mm256_dpbusd_epi32(a2, w, x[2]);
    a3 = _mm256_dpbusd_epi32(a3, w, x[3]);
    QISA_KEEP(x);
  }
  return _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)), 0);
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
  row("the Q8_0 batch kernel's step: 4 broadcasts + vpabsb, 2 x 4 sums as s8 x s8", 256,
      rate(kernel_step<true>, 256, 1, rounds));
  row("the same step without vpabsb / vpsignb (wrong products: their cost)", 256,
      rate(kernel_step<false>, 256, 1, rounds));
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
    row("u8 x s8: vpdpbusd (VNNI)", 32, rate(vnni, 32, kSums, rounds));
  else
    std::printf("| u8 x s8: vpdpbusd (VNNI) | 32 | - | this CPU has no AVX-512 VNNI |\n");
  return 0;
}
