// libFuzzer: bytes as a saved sequence state. The first byte picks the
// mode: raw bytes (checked as they are), or a real state of tokens drawn
// from the input with a few of its bytes changed and its checksum redone
// (so the payload checks, not only the checksum, meet edited values).
// A refused state leaves the target sequence as it was; an accepted one
// gives finite logits (or a decode that fails with QISA_ERR_NUMERIC and
// keeps the sequence, where edited values overflow), and an unchanged one
// continues exactly like the sequence it was saved from.
#include <cstring>

#include "fuzz_support.h"
#include "hash.h"

using namespace qisa::fuzz;

namespace {

constexpr size_t kHeader = 48;  // docs/format.md, sequence state version 2

std::vector<uint8_t> save(qisa_context* c, int32_t seq) {
  size_t need = 0;
  FUZZ_CHECK(qisa_seq_state_save(c, seq, nullptr, 0, &need) == QISA_ERR_BUFFER_TOO_SMALL, "size query");
  std::vector<uint8_t> b(need);
  FUZZ_CHECK(qisa_seq_state_save(c, seq, b.data(), need, &need) == QISA_OK, "save");
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qisa_model* m = fixed_model();
  static qisa_context* ctx = make_context(m, 3, 16, QISA_ENGINE_FAST);
  Bytes in(data, size);
  const uint8_t mode = in.next();
  for (int32_t s = 0; s < 3; ++s) qisa_seq_clear(ctx, s);
  // Sequence 0: the source; sequence 1: the target, holding 3 tokens.
  const int32_t n = in.next() % 20;
  for (int32_t i = 0; i < n; ++i) {
    const qisa_batch_entry e{0, in.next() % 65, 0};
    FUZZ_CHECK(qisa_decode(ctx, &e, 1) == QISA_OK, "%s", qisa_context_last_error(ctx));
  }
  const qisa_batch_entry three[3] = {{1, 1, 0}, {1, 2, 0}, {1, 3, 0}};
  FUZZ_CHECK(qisa_decode(ctx, three, 3) == QISA_OK, "fill target");
  const std::vector<uint8_t> target_before = save(ctx, 1);

  std::vector<uint8_t> state;
  bool edited = false;
  if (mode % 2 == 0) {
    state.assign(in.rest(), in.rest() + in.left());
  } else {
    state = save(ctx, 0);
    for (int k = in.next() % 4; k > 0 && !in.empty(); --k) {
      const size_t at = (size_t{in.next()} << 8 | in.next()) % state.size();
      state[at] ^= static_cast<uint8_t>(in.next() | 1);
      edited = true;
    }
    if (mode & 2) {
      const uint64_t sum = qisa::hash64(state.data() + kHeader, state.size() - kHeader, qisa::hash64(state.data(), 40));
      std::memcpy(state.data() + 40, &sum, 8);
    }
  }
  const qisa_status st = qisa_seq_state_load(ctx, 1, state.data(), state.size());
  if (st != QISA_OK) {
    FUZZ_CHECK(qisa_context_last_error(ctx)[0] != '\0', "status %d without a message", st);
    FUZZ_CHECK(save(ctx, 1) == target_before, "a refused state changed the target");
    return 0;
  }
  // Accepted: the next token's logits are finite, or (finite keys or
  // values far outside what the model computes overflow f32 on the way)
  // the decode says so and the sequence keeps what it holds.
  const qisa_batch_entry next{1, 7, 1};
  int32_t held = -1, after = -1;
  FUZZ_CHECK(qisa_seq_length(ctx, 1, &held) == QISA_OK, "length");
  const qisa_status decoded = qisa_decode(ctx, &next, 1);
  if (decoded == QISA_ERR_NUMERIC) {
    FUZZ_CHECK(mode % 2 == 0 || edited, "an unedited state overflowed");
    FUZZ_CHECK(qisa_context_last_error(ctx)[0] != '\0', "QISA_ERR_NUMERIC without a message");
    FUZZ_CHECK(qisa_seq_length(ctx, 1, &after) == QISA_OK && after == held, "a failed decode changed the sequence");
    return 0;
  }
  FUZZ_CHECK(decoded == QISA_OK, "%s", qisa_context_last_error(ctx));
  const float* l = nullptr;
  FUZZ_CHECK(qisa_get_logits(ctx, 0, &l) == QISA_OK, "logits");
  std::vector<float> got(l, l + 65);
  for (float x : got) FUZZ_CHECK(std::isfinite(x), "non-finite logit after an accepted state");
  if (mode % 2 == 1 && !edited) {  // continuation: the same as the source sequence
    const qisa_batch_entry src{0, 7, 1};
    FUZZ_CHECK(qisa_decode(ctx, &src, 1) == QISA_OK, "source");
    FUZZ_CHECK(qisa_get_logits(ctx, 0, &l) == QISA_OK, "logits");
    FUZZ_CHECK(std::memcmp(l, got.data(), 65 * sizeof(float)) == 0, "a loaded state continues differently");
  }
  return 0;
}
