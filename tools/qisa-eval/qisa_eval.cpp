// qisa-eval: a model and its variants (e.g. quantized copies) on held-out
// text, through libqisa itself: cross-entropy and perplexity over every
// position of non-overlapping n_ctx windows, and against the first model:
// perplexity change, top-1 agreement and the largest logit difference;
// file size; single-stream decode and batched tokens/s. A model trained with
// the research code's transposed attention is evaluated window by window
// (qisa_evaluate_window), with a warning that its numbers read the future.
// A second table gives the research protocol of qisa-train eval: last
// position, top-1 accuracy, CER, WER and BLEU of the argmax text.
//   qisa-eval REF.qisa [VARIANT.qisa ...] [--data FILE] [--split S]
//             [--windows N] [--threads N] [--json FILE]
// Held-out text: by default the text and split the first model was trained
// on (its metadata), held out by the rule qisa-train uses (format/dataset.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dataset.h"
#include "qisa.hpp"
#include "text_metrics.h"

namespace {

struct Options {
  std::vector<std::string> models;
  std::string data, split;  // empty: the first model's, else tiny Shakespeare / research
  std::string json;
  int64_t windows = 0;  // 0: all
  int threads = 1;
};

struct Result {
  std::string path;
  bool transposed = false;  // the research code's attention: reads future tokens
  uint64_t bytes = 0;
  double ce = 0, ppl = 0, agree = 1, max_err = 0;
  // The research protocol (qisa-train eval's table): the last position of
  // each window, top-1 accuracy, and per window the argmax text against the
  // target text (CER, WER, BLEU).
  double ce_last = 0, accuracy = 0, accuracy_last = 0, cer = 0, wer = 0, bleu = 0;
  double ce_per_char = 0;  // total CE over the characters of the targets
  int64_t chars = 0;
  double decode_tok_s = 0, batch_tok_s = 0;
  std::vector<float> logits;  // every position of every window
};

int usage(std::FILE* f, int rc) {
  std::fprintf(f,
               "usage: qisa-eval REF.qisa [VARIANT.qisa ...] [--data FILE] [--split research|FRACTION] [--windows N]\n"
               "                 [--threads N] [--json FILE]\n"
               "Evaluates each model on the held-out part of a text; variants are compared with the first model.\n"
               "Defaults: the text and split recorded in the first model (by qisa-train), else tiny Shakespeare\n"
               "and the research split (test: the last 4%%). A text whose SHA-256 differs from the recorded one\n"
               "gets a warning.\n");
  return rc;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Result evaluate(const std::string& path, const std::string& text, const std::string& split, const Options& o) {
  Result r;
  r.path = path;
  r.bytes = std::filesystem::file_size(path);
  qisa_cpp::Model model(path);
  const auto info = model.info();
  const int32_t T = info.n_ctx, V = info.vocab_size;
  // The held-out tokens: the same rule and windows as qisa-train eval.
  const auto all = model.tokenize(text);
  const qisa::dataset::Bounds b = qisa::dataset::split(all.size(), split);
  const std::vector<int32_t> tokens(all.begin() + static_cast<std::ptrdiff_t>(b.test_begin), all.end());
  int64_t n_windows = (static_cast<int64_t>(tokens.size()) - 1) / T;
  if (o.windows > 0) n_windows = std::min(n_windows, o.windows);
  if (n_windows == 0) throw qisa_cpp::Error(QISA_ERR_INVALID_ARGUMENT, "the held-out text is shorter than n_ctx");
  // Per position: the negative log-likelihood of the next token and whether
  // the argmax is it; per window (once its last position is scored): the
  // argmax text against the target text, as qisa-train eval does.
  double nll = 0.0, nll_last = 0.0, cer_sum = 0.0, wer_sum = 0.0, bleu_sum = 0.0;
  int64_t scored = 0, correct = 0, correct_last = 0, wer_count = 0;
  std::string hyp, ref, targets;
  auto score = [&](const float* l, int64_t pos) {
    if (pos + 1 >= static_cast<int64_t>(tokens.size())) return;
    const int32_t target = tokens[pos + 1];  // y = x shifted by one, as in training
    ++scored;
    const float mx = *std::max_element(l, l + V);
    double z = 0.0;
    for (int32_t v = 0; v < V; ++v) z += std::exp(double(l[v]) - mx);
    const double loss = std::log(z) + mx - l[target];
    nll += loss;
    const auto pred = static_cast<int32_t>(std::max_element(l, l + V) - l);
    correct += pred == target;
    if (pos % T == 0) hyp.clear(), ref.clear();
    hyp += model.piece(pred);
    ref += model.piece(target);
    targets += model.piece(target);
    if (pos % T == T - 1) {
      nll_last += loss;
      correct_last += pred == target;
      cer_sum += qisa::text_metrics::cer(hyp, ref);
      const double w = qisa::text_metrics::wer(hyp, ref);
      if (w >= 0) wer_sum += w, ++wer_count;
      bleu_sum += qisa::text_metrics::sentence_bleu(hyp, ref);
    }
  };
  auto finish = [&] {
    r.ce = nll / static_cast<double>(scored);
    r.ppl = std::exp(r.ce);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(scored);
    r.ce_last = nll_last / static_cast<double>(n_windows);
    r.accuracy_last = static_cast<double>(correct_last) / static_cast<double>(n_windows);
    r.cer = cer_sum / static_cast<double>(n_windows);
    r.wer = wer_count ? wer_sum / static_cast<double>(wer_count) : 0.0;
    r.bleu = bleu_sum / static_cast<double>(n_windows);
    // Per character of the target text (bytes that do not continue a UTF-8
    // character), so that char and BPE models compare; as qisa-train eval.
    r.chars = 0;
    for (char ch : targets) r.chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    r.ce_per_char = r.chars ? nll / static_cast<double>(r.chars) : 0.0;
  };
  if (info.reference_transposed) {
    // Only whole windows run the research code's transposed attention
    // (qisa_evaluate_window); no single-stream decode exists.
    r.transposed = true;
    std::fprintf(stderr,
                 "qisa-eval: %s was trained with the research code's transposed attention: every position reads "
                 "the later tokens of its window, including the one it predicts. Its numbers measure that leak, "
                 "not a model that could generate.\n",
                 path.c_str());
    qisa_context_params tp;
    qisa_context_default_params(&tp);
    tp.n_threads = o.threads;
    tp.backend = QISA_BACKEND_CPU;
    tp.max_batch = T;
    tp.allow_non_causal = 1;
    qisa_cpp::Context ctx(model, &tp);
    r.logits.resize(static_cast<size_t>(n_windows * T * V));
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t w = 0; w < n_windows; ++w) {
      const std::vector<int32_t> window(tokens.begin() + w * T, tokens.begin() + (w + 1) * T);
      const auto l = ctx.evaluate_window(window, V);
      std::copy(l.begin(), l.end(), r.logits.begin() + w * T * V);
      for (int32_t t = 0; t < T; ++t) score(l.data() + static_cast<size_t>(t) * V, w * T + t);
    }
    r.batch_tok_s = static_cast<double>(n_windows * T) / seconds_since(t0);
    finish();
    return r;
  }
  const int32_t per_call = 64;  // windows evaluated by one qisa_decode
  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.n_threads = o.threads;
  cp.max_sequences = per_call;
  cp.max_batch = per_call * T;
  qisa_cpp::Context ctx(model, &cp);
  r.logits.resize(static_cast<size_t>(n_windows * T * V));
  {  // warm-up with a full-size call: first-use costs (page faults, oneDNN
     // primitives for this row count) stay out of the timing
    std::vector<qisa_batch_entry> w;
    for (int64_t i = 0; i < std::min<int64_t>(per_call, n_windows) * T; ++i)
      w.push_back({static_cast<int32_t>(i / T), tokens[static_cast<size_t>(i)], 1});
    ctx.decode(w);
    ctx.clear();
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<qisa_batch_entry> e;
  for (int64_t w0 = 0; w0 < n_windows; w0 += per_call) {
    const int64_t nw = std::min<int64_t>(per_call, n_windows - w0);
    e.clear();
    for (int64_t w = 0; w < nw; ++w)
      for (int32_t t = 0; t < T; ++t) e.push_back({static_cast<int32_t>(w), tokens[(w0 + w) * T + t], 1});
    ctx.clear();
    ctx.decode(e);
    for (size_t i = 0; i < e.size(); ++i) {
      const float* l = ctx.logits(static_cast<int32_t>(i));
      const int64_t pos = w0 * T + static_cast<int64_t>(i);
      std::copy(l, l + V, r.logits.begin() + pos * V);
      score(l, pos);
    }
  }
  r.batch_tok_s = static_cast<double>(n_windows * T) / seconds_since(t0);
  finish();
  // Single stream: one token per call with the KV cache, 32 windows' worth
  // (after one for warm-up).
  qisa_context_params sp = cp;
  sp.max_sequences = 1;
  sp.max_batch = 1;
  qisa_cpp::Context single(model, &sp);
  auto t1 = std::chrono::steady_clock::now();
  int64_t n = 0;
  const int reps = static_cast<int>(std::min<int64_t>(33, n_windows));
  for (int rep = 0; rep < reps; ++rep) {
    if (rep == 1) {
      t1 = std::chrono::steady_clock::now();
      n = 0;
    }
    single.clear();
    for (int32_t t = 0; t < T; ++t, ++n) single.decode({{0, tokens[static_cast<size_t>(rep * T + t)], 1}});
  }
  r.decode_tok_s = static_cast<double>(n) / seconds_since(t1);
  return r;
}

void compare(Result& r, const Result& ref, int32_t V) {
  const size_t positions = std::min(r.logits.size(), ref.logits.size()) / static_cast<size_t>(V);
  size_t agree = 0;
  double worst = 0.0;
  for (size_t p = 0; p < positions; ++p) {
    const float* a = r.logits.data() + p * V;
    const float* b = ref.logits.data() + p * V;
    agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
    for (int32_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(double(a[v]) - b[v]));
  }
  r.agree = positions ? static_cast<double>(agree) / static_cast<double>(positions) : 0.0;
  r.max_err = worst;
}

// The text and split to hold out: given, else recorded in the first model,
// else the defaults. Warns when the text is not the one the model recorded.
struct Held {
  std::string text, split;
};

Held held_out_text(const Options& o) {
  const qisa_cpp::Model ref(o.models.front());
  auto recorded = [&](const char* key) {
    const char* v = nullptr;
    return qisa_model_metadata(ref.get(), key, &v) == QISA_OK ? std::string(v) : std::string();
  };
  const std::string rec_path = recorded(qisa::dataset::kPath), rec_sha = recorded(qisa::dataset::kSha256);
  std::string path = o.data;
  if (path.empty())
    path = !rec_path.empty() && std::filesystem::is_regular_file(rec_path) ? rec_path : QISA_DEFAULT_DATA;
  Held h;
  h.split = !o.split.empty()                           ? o.split
            : !recorded(qisa::dataset::kSplit).empty() ? recorded(qisa::dataset::kSplit)
                                                       : "research";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  h.text = ss.str();
  if (!rec_sha.empty() && qisa::dataset::sha256_hex(h.text) != rec_sha) {
    std::fprintf(stderr,
                 "qisa-eval: warning: %s is not the text %s was trained on (sha256 %.12s..., recorded %.12s...)\n",
                 path.c_str(), o.models.front().c_str(), qisa::dataset::sha256_hex(h.text).c_str(), rec_sha.c_str());
  }
  std::fprintf(stderr, "qisa-eval: held out from %s (split %s)\n", path.c_str(), h.split.c_str());
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--help" || a == "-h") return usage(stdout, 0);
      if (a == "--data")
        o.data = value();
      else if (a == "--split")
        o.split = value();
      else if (a == "--json")
        o.json = value();
      else if (a == "--windows")
        o.windows = std::stoll(value());
      else if (a == "--threads")
        o.threads = std::stoi(value());
      else if (a.rfind("--", 0) == 0)
        throw std::runtime_error("unknown option " + a);
      else
        o.models.push_back(a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "qisa-eval: %s\n", e.what());
      return usage(stderr, 2);
    }
  }
  if (o.models.empty()) return usage(stderr, 2);
  std::vector<Result> results;
  try {
    const Held held = held_out_text(o);
    int32_t V = 0;
    for (const auto& path : o.models) {
      results.push_back(evaluate(path, held.text, held.split, o));
      if (results.size() == 1) {
        V = qisa_cpp::Model(path).info().vocab_size;
      } else {
        compare(results.back(), results.front(), V);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-eval: %s\n", e.what());
    return 1;
  }
  const Result& ref = results.front();
  std::printf(
      "| model | bytes | smaller by | CE | perplexity | ppl change | top-1 agreement | max abs logit diff | decode "
      "tok/s | batch tok/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    const std::string name =
        std::filesystem::path(r.path).filename().string() + (r.transposed ? " (transposed: reads future tokens)" : "");
    const std::string decode = r.transposed ? "-" : std::to_string(static_cast<long long>(std::lround(r.decode_tok_s)));
    std::printf("| %s | %llu | %.2fx | %.4f | %.4f | %+.3f%% | %.2f%% | %.2e | %s | %.0f |\n", name.c_str(),
                static_cast<unsigned long long>(r.bytes), double(ref.bytes) / double(r.bytes), r.ce, r.ppl,
                100.0 * (r.ppl / ref.ppl - 1.0), 100.0 * r.agree, r.max_err, decode.c_str(), r.batch_tok_s);
  }
  // The research protocol, as qisa-train eval prints it.
  std::printf(
      "\n| model | CE | CE last | perplexity | ppl last | CE per char | top-1 | top-1 last | CER | WER | BLEU |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %s%s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n",
                std::filesystem::path(r.path).filename().c_str(), r.transposed ? " (transposed)" : "", r.ce, r.ce_last,
                r.ppl, std::exp(r.ce_last), r.ce_per_char, r.accuracy, r.accuracy_last, r.cer, r.wer, r.bleu);
  }
  if (!o.json.empty()) {
    std::ofstream j(o.json);
    j << "[\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      j << "  {\"model\": \"" << std::filesystem::path(r.path).filename().string() << "\", \"bytes\": " << r.bytes
        << ", \"cross_entropy\": " << r.ce << ", \"perplexity\": " << r.ppl
        << ", \"perplexity_change\": " << (r.ppl / ref.ppl - 1.0) << ", \"top1_agreement\": " << r.agree
        << ", \"max_abs_logit_diff\": " << r.max_err << ", \"decode_tokens_per_s\": " << r.decode_tok_s
        << ", \"batch_tokens_per_s\": " << r.batch_tok_s << ", \"threads\": " << o.threads
        << ", \"reads_future_tokens\": " << (r.transposed ? "true" : "false")
        << ", \"cross_entropy_last\": " << r.ce_last << ", \"accuracy\": " << r.accuracy
        << ", \"accuracy_last\": " << r.accuracy_last << ", \"cer\": " << r.cer << ", \"wer\": " << r.wer
        << ", \"bleu\": " << r.bleu << ", \"cross_entropy_per_char\": " << r.ce_per_char << ", \"chars\": " << r.chars
        << "}" << (i + 1 < results.size() ? ",\n" : "\n");
    }
    j << "]\n";
  }
  return 0;
}
