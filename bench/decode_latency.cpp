// Latency of single decode steps, one by one, as a user sees them: p50,
// p90, p99 and the worst step, in microseconds. scripts/bench-stalls runs it
// on an idle machine and next to processes that keep every core busy.
//   decode_latency MODEL [--steps N] [--threads N] [--mode slide|window|positions|batch] [--batch B]
//   decode_latency --spin-us U [--steps N]
// slide: every step past a full window (each re-evaluates the window);
// window: steps at positions 0 .. n_ctx-1, the sequence emptied when full;
// positions: the median step at 9 positions from 0 to n_ctx-1 over
// max(5, steps / n_ctx) fillings of the window (attention grows with the
// position); batch: B sequences advance together through a whole window,
// max(3, steps / n_ctx) times: tokens per second.
// --spin-us: no model and no library call, each "step" U microseconds of
// arithmetic on one thread: what the machine's scheduler alone does to a
// step of that length (the same p50 ... worst).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "qisa.h"

namespace {

// xorshift rounds: integer work with no memory traffic.
uint64_t spin(uint64_t x, int64_t rounds) {
  for (int64_t i = 0; i < rounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

void print_quantiles(std::vector<double> us, int threads, const char* mode, int steps) {
  std::sort(us.begin(), us.end());
  auto q = [&](double f) { return us[static_cast<size_t>(f * static_cast<double>(us.size() - 1))]; };
  std::printf(
      "{\"threads\": %d, \"mode\": \"%s\", \"steps\": %d, \"p50_us\": %.1f, \"p90_us\": %.1f, "
      "\"p99_us\": %.1f, \"max_us\": %.1f}\n",
      threads, mode, steps, q(0.5), q(0.9), q(0.99), us.back());
}

int spin_steps(double spin_us, int steps) {
  using clock = std::chrono::steady_clock;
  uint64_t x = 88172645463325252ull;
  int64_t rounds = 1 << 16;  // calibrated: the median of 21 timings
  std::vector<double> t;
  for (int i = 0; i < 21; ++i) {
    const auto t0 = clock::now();
    x = spin(x, rounds);
    t.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  rounds = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(rounds) * spin_us / t[t.size() / 2]));
  std::vector<double> us;
  for (int i = 0; i < 50 + steps; ++i) {
    const auto t0 = clock::now();
    x = spin(x, rounds);
    if (i >= 50) us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  if (x == 42) std::printf(" ");  // keeps the work
  print_quantiles(us, 1, "spin", steps);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && !std::strcmp(argv[1], "--spin-us")) {
    const double spin_us = std::atof(argv[2]);
    const int n = argc >= 5 && !std::strcmp(argv[3], "--steps") ? std::atoi(argv[4]) : 2000;
    if (spin_us <= 0 || n <= 0) {
      std::fprintf(stderr, "decode_latency: --spin-us and --steps need positive values\n");
      return 2;
    }
    return spin_steps(spin_us, n);
  }
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: decode_latency MODEL [--steps N] [--threads N] [--mode slide|window|positions|batch] "
                 "[--batch B]\n");
    return 2;
  }
  int steps = 2000, threads = 0, batch = 64;
  std::string mode = "slide";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps"))
      steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--mode"))
      mode = argv[i + 1];
    else if (!std::strcmp(argv[i], "--batch"))
      batch = std::max(1, std::atoi(argv[i + 1]));
  }
  char err[512] = "";
  qisa_model* m = nullptr;
  if (qisa_model_load_file(argv[1], nullptr, &m, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "decode_latency: %s\n", err);
    return 1;
  }
  qisa_model_info info{};
  info.struct_size = sizeof info;
  qisa_model_get_info(m, &info);
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.n_threads = threads;
  if (mode == "batch") p.max_sequences = p.max_batch = batch;
  qisa_context* c = nullptr;
  if (qisa_context_create(m, &p, &c, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "decode_latency: %s\n", err);
    return 1;
  }
  auto step = [&](int32_t token) {
    const qisa_batch_entry e{0, token, 1};
    if (qisa_decode(c, &e, 1) != QISA_OK) {
      std::fprintf(stderr, "decode_latency: %s\n", qisa_context_last_error(c));
      std::exit(1);
    }
  };
  const int warm = 50;
  using clock = std::chrono::steady_clock;
  if (mode == "positions" || mode == "batch") {
    const int n = info.n_ctx;
    const int rounds = std::max(mode == "batch" ? 3 : 5, steps / n);
    std::vector<std::vector<double>> at(static_cast<size_t>(n));  // per position, one step per round
    std::vector<qisa_batch_entry> entries;
    double total_s = 0.0;
    for (int r = -1; r < rounds; ++r) {  // round -1 warms up
      for (int s = 0; s < (mode == "batch" ? batch : 1); ++s) qisa_seq_clear(c, s);
      const auto r0 = clock::now();
      for (int pos = 0; pos < n; ++pos) {
        const int32_t token = (pos * 7 + r + 1) % info.vocab_size;
        const auto t0 = clock::now();
        if (mode == "batch") {
          entries.assign(static_cast<size_t>(batch), qisa_batch_entry{0, token, 1});
          for (int s = 0; s < batch; ++s) entries[static_cast<size_t>(s)].seq_id = s;
          if (qisa_decode(c, entries.data(), batch) != QISA_OK) {
            std::fprintf(stderr, "decode_latency: %s\n", qisa_context_last_error(c));
            return 1;
          }
        } else {
          step(token);
        }
        if (r >= 0)
          at[static_cast<size_t>(pos)].push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
      }
      if (r >= 0) total_s += std::chrono::duration<double>(clock::now() - r0).count();
    }
    if (mode == "batch") {
      std::printf(
          "{\"threads\": %d, \"mode\": \"batch\", \"batch\": %d, \"n_ctx\": %d, \"rounds\": %d, "
          "\"tokens_per_s\": %.0f}\n",
          qisa_context_threads(c), batch, n, rounds, static_cast<double>(batch) * n * rounds / total_s);
    } else {
      std::printf("{\"threads\": %d, \"mode\": \"positions\", \"n_ctx\": %d, \"rounds\": %d, \"p50_us_at\": {",
                  qisa_context_threads(c), n, rounds);
      for (int k = 0; k <= 8; ++k) {
        const int pos = (n - 1) * k / 8;
        auto& v = at[static_cast<size_t>(pos)];
        std::sort(v.begin(), v.end());
        std::printf("%s\"%d\": %.1f", k ? ", " : "", pos, v[v.size() / 2]);
      }
      std::printf("}}\n");
    }
    qisa_context_free(c);
    qisa_model_free(m);
    return 0;
  }
  if (mode == "slide") {
    for (int i = 0; i < info.n_ctx; ++i) step(i % info.vocab_size);
  }
  std::vector<double> us;
  us.reserve(static_cast<size_t>(steps));
  for (int i = 0; i < warm + steps; ++i) {
    if (mode == "window") {
      int32_t len = 0;
      qisa_seq_length(c, 0, &len);
      if (len == info.n_ctx) qisa_seq_clear(c, 0);
    }
    const auto t0 = std::chrono::steady_clock::now();
    step((i * 7) % info.vocab_size);
    const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warm) us.push_back(t);
  }
  print_quantiles(us, qisa_context_threads(c), mode.c_str(), steps);
  qisa_context_free(c);
  qisa_model_free(m);
  return 0;
}
