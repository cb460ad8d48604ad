// Tokenizing speed through qisa_tokenize on tiny Shakespeare (1.1 MB), one
// thread: the char tokenizer, and byte-level BPE with the 384-token fixture
// and a 2,048-token vocabulary learned here. Bytes per second in the
// "bytes_per_second" counter (target: >= 20 MB/s for BPE).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpe.h"
#include "qisa.h"
#include "synthetic_model.h"

namespace {

const std::string& text() {
  static const std::string t = [] {
    std::ifstream f(QISA_BENCH_TEXT);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }();
  return t;
}

qisa_model* load(const std::string& path) {
  qisa_model* m = nullptr;
  if (qisa_model_load_file(path.c_str(), nullptr, &m, nullptr, 0) != QISA_OK) return nullptr;
  return m;
}

// A model whose tokenizer is BPE learned on the first 64% of the text.
qisa_model* learned(uint32_t vocab) {
  const auto l = qisa::bpe::learn(std::string_view(text()).substr(0, text().size() * 64 / 100), vocab);
  const auto bytes = qisa::writer::serialize(qisa::writer::synthetic_bpe_model(l));
  qisa_model* m = nullptr;
  qisa_model_load_buffer(bytes.data(), bytes.size(), nullptr, &m, nullptr, 0);
  return m;
}

void run(benchmark::State& state, qisa_model* m) {
  if (!m) {
    state.SkipWithError("model did not load");
    return;
  }
  const std::string& t = text();
  std::vector<int32_t> ids(t.size());
  size_t n = 0;
  for (auto _ : state) {
    qisa_tokenize(m, t.data(), t.size(), ids.data(), ids.size(), &n, 0, nullptr, 0);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(t.size()));
  state.counters["tokens"] = static_cast<double>(n);
  state.counters["bytes_per_token"] = static_cast<double>(t.size()) / static_cast<double>(n);
  qisa_model_free(m);
}

void BM_TokenizeChar(benchmark::State& state) {
  run(state, load(QISA_BENCH_FIXTURES "/tiny-qisa-v3.qisa"));
}
BENCHMARK(BM_TokenizeChar)->Unit(benchmark::kMillisecond);

void BM_TokenizeBpe384(benchmark::State& state) {
  run(state, load(QISA_BENCH_FIXTURES "/tiny-qisa-v3-bpe.qisa"));
}
BENCHMARK(BM_TokenizeBpe384)->Unit(benchmark::kMillisecond);

void BM_TokenizeBpe2048(benchmark::State& state) {
  run(state, learned(2048));
}
BENCHMARK(BM_TokenizeBpe2048)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
