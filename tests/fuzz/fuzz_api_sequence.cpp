// libFuzzer: bytes as a sequence of API calls (decode batches with any ids
// and tokens, greedy decodes, clear, truncate, state copies, generation,
// probes, window evaluations) on
// a fast-engine context and a reference-engine twin, under an overflow
// policy chosen by the first byte. Oracles after every call: both contexts
// return the same status and hold the same tokens as a model of the calls
// kept here; their logits agree; and a sequence's logits equal those of a
// fresh context that evaluates its window in one batch (sliding and
// shifting re-evaluate exactly; batched equals incremental).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "fuzz_support.h"

using namespace qisa::fuzz;

namespace {

constexpr int32_t kSeqs = 3, kBatch = 8, kVocab = 65, kCtx = 16;

struct Mirror {
  qisa_overflow policy;
  std::vector<int32_t> tokens[kSeqs];
  void append(int32_t s, int32_t t) {
    auto& w = tokens[s];
    if (static_cast<int32_t>(w.size()) == kCtx) {
      const size_t keep = policy == QISA_OVERFLOW_SHIFT_HALF ? kCtx / 2 : kCtx - 1;
      w.erase(w.begin(), w.end() - static_cast<std::ptrdiff_t>(keep));
    }
    w.push_back(t);
  }
};

int32_t length(qisa_context* c, int32_t s) {
  int32_t n = -1;
  FUZZ_CHECK(qisa_seq_length(c, s, &n) == QISA_OK, "length");
  return n;
}

// The logits of a fresh evaluation of `window`'s tokens, last position.
std::vector<float> recompute(const std::vector<int32_t>& window) {
  static qisa_context* scratch = make_context(fixed_model(), 1, kCtx, QISA_ENGINE_FAST);
  qisa_seq_clear(scratch, 0);
  std::vector<qisa_batch_entry> e;
  for (size_t i = 0; i < window.size(); ++i) e.push_back({0, window[i], i + 1 == window.size()});
  FUZZ_CHECK(qisa_decode(scratch, e.data(), static_cast<int32_t>(e.size())) == QISA_OK, "recompute");
  const float* l = nullptr;
  FUZZ_CHECK(qisa_get_logits(scratch, static_cast<int32_t>(e.size()) - 1, &l) == QISA_OK, "recompute logits");
  return {l, l + kVocab};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const qisa_model* m = fixed_model();
  Mirror mirror{static_cast<qisa_overflow>(in.next() % 3), {}};
  qisa_context* fast = make_context(m, kSeqs, kBatch, QISA_ENGINE_FAST, mirror.policy);
  qisa_context* ref = make_context(m, kSeqs, kBatch, QISA_ENGINE_REFERENCE, mirror.policy);
  FUZZ_CHECK(fast && ref, "contexts");
  for (int ops = 0; ops < 24 && !in.empty(); ++ops) {
    const uint8_t op = in.next() % 8;
    qisa_status a = QISA_OK, b = QISA_OK;
    std::string a_error;       // the fast context's message right after its call
    if (op == 0 || op == 1) {  // decode / decode_greedy: ids in -1..3, tokens in -1..66
      std::vector<qisa_batch_entry> e(in.next() % (kBatch + 2));
      for (auto& x : e) x = {in.next() % 5 - 1, in.next() % 68 - 1, in.next() & 1};
      const auto n = static_cast<int32_t>(e.size());
      std::vector<int32_t> greedy(e.size() + 1, -9);
      a = op == 0 ? qisa_decode(fast, e.data(), n) : qisa_decode_greedy(fast, e.data(), n, greedy.data());
      a_error = qisa_context_last_error(fast);
      b = qisa_decode(ref, e.data(), n);
      FUZZ_CHECK(a == b, "decode: fast %d, reference %d", a, b);
      if (a == QISA_OK) {
        for (const auto& x : e) mirror.append(x.seq_id, x.token);
        for (int32_t i = 0; i < n; ++i) {
          if (!e[i].logits) continue;
          const float* y = nullptr;
          FUZZ_CHECK(qisa_get_logits(ref, i, &y) == QISA_OK, "reference logits");
          if (op == 0) {
            const float* x = nullptr;
            FUZZ_CHECK(qisa_get_logits(fast, i, &x) == QISA_OK, "fast logits");
            FUZZ_CHECK(logits_close(x, y, kVocab), "entry %d: fast vs reference", i);
          } else {
            FUZZ_CHECK(greedy[i] >= 0 && greedy[i] < kVocab, "greedy token %d", greedy[i]);
            const float top = *std::max_element(y, y + kVocab);
            FUZZ_CHECK(y[greedy[i]] >= top - 1e-3f * std::max(1.0f, std::fabs(top)), "greedy is not the argmax");
          }
        }
        // The last entry of the batch against a fresh evaluation of its window.
        if (!e.empty() && e.back().logits) {
          const auto& last = e.back();
          const float* y = nullptr;
          FUZZ_CHECK(qisa_get_logits(ref, n - 1, &y) == QISA_OK, "reference logits");
          FUZZ_CHECK(logits_close(recompute(mirror.tokens[last.seq_id]).data(), y, kVocab), "window recompute");
        }
      }
    } else if (op == 2) {
      const int32_t s = in.next() % 5 - 1;
      a = qisa_seq_clear(fast, s);
      a_error = qisa_context_last_error(fast);
      b = qisa_seq_clear(ref, s);
      FUZZ_CHECK(a == b, "clear");
      if (a == QISA_OK) {
        for (int32_t t = 0; t < kSeqs; ++t)
          if (s == -1 || s == t) mirror.tokens[t].clear();
      }
    } else if (op == 3) {
      const int32_t s = in.next() % 5 - 1, n = in.next() % 20 - 1;
      a = qisa_seq_truncate(fast, s, n);
      a_error = qisa_context_last_error(fast);
      b = qisa_seq_truncate(ref, s, n);
      FUZZ_CHECK(a == b, "truncate");
      if (a == QISA_OK) mirror.tokens[s].resize(static_cast<size_t>(n));
    } else if (op == 4) {  // copy a sequence's state to another, in each context
      const int32_t from = in.next() % kSeqs, to = in.next() % kSeqs;
      for (qisa_context* c : {fast, ref}) {
        size_t need = 0;
        qisa_seq_state_save(c, from, nullptr, 0, &need);
        std::vector<uint8_t> st(need);
        FUZZ_CHECK(qisa_seq_state_save(c, from, st.data(), need, &need) == QISA_OK, "save");
        FUZZ_CHECK(qisa_seq_state_load(c, to, st.data(), need) == QISA_OK, "%s", qisa_context_last_error(c));
      }
      mirror.tokens[to] = mirror.tokens[from];
    } else if (op == 6) {  // probe: sequence, tokens, what, layer and room all maybe bad
      const int32_t s = in.next() % 5 - 1, what = in.next() % 5 - 1, layer = in.next() % 5 - 1;
      std::vector<int32_t> t(in.next() % (kCtx + 3));
      for (auto& x : t) x = in.next() % 68 - 1;
      const auto n = static_cast<int32_t>(t.size());
      const size_t room = t.size() * 16 - (in.next() % 4 == 0 ? 1 : 0);
      std::vector<float> x(t.size() * 16 + 1, NAN), y(x.size(), NAN);
      a = qisa_context_probe(fast, s, t.data(), n, static_cast<qisa_probe>(what), layer, x.data(), room);
      a_error = qisa_context_last_error(fast);
      b = qisa_context_probe(ref, s, t.data(), n, static_cast<qisa_probe>(what), layer, y.data(), room);
      FUZZ_CHECK(a == b, "probe: fast %d, reference %d", a, b);
      if (a == QISA_OK) {
        for (size_t i = 0; i < t.size() * 16; ++i)
          FUZZ_CHECK(std::fabs(x[i] - y[i]) <= 1e-3f * (1.0f + std::fabs(y[i])), "probe [%zu]: %g vs %g", i, x[i],
                     y[i]);
        FUZZ_CHECK(std::isnan(x[t.size() * 16]), "probe wrote past its rows");
        mirror.tokens[s] = t;
      }
    } else if (op == 7) {  // evaluate_window: sequence, tokens and room maybe bad
      const int32_t s = in.next() % 5 - 1;
      std::vector<int32_t> t(in.next() % (kCtx + 3));
      for (auto& x : t) x = in.next() % 68 - 1;
      const auto n = static_cast<int32_t>(t.size());
      const size_t cells = t.size() * kVocab, room = cells - (in.next() % 4 == 0 && cells > 0 ? 1 : 0);
      std::vector<float> x(cells + 1, NAN), y(x.size(), NAN);
      a = qisa_evaluate_window(fast, s, t.data(), n, x.data(), room);
      a_error = qisa_context_last_error(fast);
      b = qisa_evaluate_window(ref, s, t.data(), n, y.data(), room);
      FUZZ_CHECK(a == b, "evaluate_window: fast %d, reference %d", a, b);
      if (a == QISA_OK) {
        for (size_t i = 0; i < cells; ++i)
          FUZZ_CHECK(std::fabs(x[i] - y[i]) <= 1e-3f * (1.0f + std::fabs(y[i])), "window [%zu]: %g vs %g", i, x[i],
                     y[i]);
        FUZZ_CHECK(std::isnan(x[cells]), "evaluate_window wrote past its rows");
        const auto last = recompute(t);  // the last row is what decoding the window gives
        for (int32_t v = 0; v < kVocab; ++v) {
          const float got = x[cells - kVocab + static_cast<size_t>(v)];
          FUZZ_CHECK(std::fabs(got - last[v]) <= 1e-3f * (1.0f + std::fabs(last[v])), "window vs decode [%d]", v);
        }
        mirror.tokens[s] = t;
      }
    } else {  // generation: greedy, a few tokens, into a sequence (maybe bad)
      qisa_generate_params p;
      qisa_generate_default_params(&p);
      p.seq_id = in.next() % 4;
      p.max_tokens = in.next() % 6;
      p.sampling.temperature = in.next() % 2 ? 0.0f : 0.8f;
      const char* prompts[] = {"ROMEO:", "", "To be, or not to be", "\xff"};
      const char* prompt = prompts[in.next() % 4];
      qisa_generate_result r;
      r.struct_size = sizeof r;
      a = qisa_generate(fast, prompt, &p, &r);
      a_error = qisa_context_last_error(fast);
      b = qisa_generate(ref, prompt, &p, nullptr);
      FUZZ_CHECK(a == b, "generate: fast %d, reference %d", a, b);
      // Texts may differ on near-ties, window lengths may not; then the
      // twin takes the fast context's sequence, and the mirror its tokens
      // (read from the state: they follow the 48-byte header).
      if (p.seq_id < kSeqs) {
        const int32_t n = length(fast, p.seq_id);
        FUZZ_CHECK(length(ref, p.seq_id) == n, "generate: lengths %d / %d", n, length(ref, p.seq_id));
        size_t need = 0;
        qisa_seq_state_save(fast, p.seq_id, nullptr, 0, &need);
        std::vector<uint8_t> st(need);
        FUZZ_CHECK(qisa_seq_state_save(fast, p.seq_id, st.data(), need, &need) == QISA_OK, "save");
        FUZZ_CHECK(qisa_seq_state_load(ref, p.seq_id, st.data(), need) == QISA_OK, "load");
        mirror.tokens[p.seq_id].resize(static_cast<size_t>(n));
        if (n > 0) std::memcpy(mirror.tokens[p.seq_id].data(), st.data() + 48, static_cast<size_t>(n) * 4);
      }
    }
    if (a != QISA_OK) FUZZ_CHECK(!a_error.empty(), "status %d without a message", a);
    for (int32_t s = 0; s < kSeqs; ++s) {
      const auto want = static_cast<int32_t>(mirror.tokens[s].size());
      FUZZ_CHECK(length(fast, s) == want && length(ref, s) == want, "sequence %d: %d / %d tokens, expected %d", s,
                 length(fast, s), length(ref, s), want);
    }
  }
  qisa_context_free(fast);
  qisa_context_free(ref);
  return 0;
}
