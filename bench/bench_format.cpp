// Model loading cost: verification with and without the unitary checks, and
// mapping a file, for a 6-layer QISA v3 model at n_embd 16 and 128.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "qisa.h"
#include "synthetic_model.h"

namespace {

std::vector<uint8_t> model_bytes(uint32_t n_embd) {
  qisa::writer::SyntheticSpec s;
  s.n_embd = n_embd;
  s.n_layer = 6;
  return qisa::writer::serialize(qisa::writer::make_synthetic_model(s));
}

void BM_LoadBuffer(benchmark::State& state) {
  const auto bytes = model_bytes(static_cast<uint32_t>(state.range(0)));
  qisa_model_params p;
  qisa_model_default_params(&p);
  p.check_unitaries = static_cast<int>(state.range(1));
  for (auto _ : state) {
    qisa_model* m = nullptr;
    if (qisa_model_load_buffer(bytes.data(), bytes.size(), &p, &m, nullptr, 0) != QISA_OK) {
      state.SkipWithError("load failed");
      break;
    }
    qisa_model_free(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_LoadBuffer)->ArgsProduct({{16, 128}, {0, 1}})->ArgNames({"n_embd", "check_unitaries"});

void BM_LoadMappedFile(benchmark::State& state) {
  const auto bytes = model_bytes(static_cast<uint32_t>(state.range(0)));
  const std::string path = "/tmp/qisa_bench_" + std::to_string(::getpid()) + ".qisa";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  for (auto _ : state) {
    qisa_model* m = nullptr;
    if (qisa_model_load_file(path.c_str(), nullptr, &m, nullptr, 0) != QISA_OK) {
      state.SkipWithError("load failed");
      break;
    }
    qisa_model_free(m);
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_LoadMappedFile)->Arg(16)->Arg(128)->ArgName("n_embd");

}  // namespace

BENCHMARK_MAIN();
