#include "evaluation.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "text_metrics.h"

namespace qisa::train {

using text_metrics::cer;
using text_metrics::sentence_bleu;
using text_metrics::wer;

EvalResult evaluate(Gpt& model, const std::vector<int64_t>& tokens, const TextTokenizer& vocab, int64_t batch,
                    int64_t max_windows, bool text_metrics) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t T = model->options.n_ctx;
  int64_t n = (static_cast<int64_t>(tokens.size()) - 1) / T;
  if (max_windows > 0) n = std::min(n, max_windows);
  EvalResult r;
  r.windows = n;
  r.batch = batch;
  double ce_sum = 0, ce_last_sum = 0, cer_sum = 0, wer_sum = 0, bleu_sum = 0;
  int64_t correct = 0, correct_last = 0, wer_count = 0, batches = 0;
  double ms = 0;
  const auto data = torch::tensor(tokens, torch::kInt64);
  for (int64_t w0 = 0; w0 < n; w0 += batch) {
    const int64_t b = std::min(batch, n - w0);
    const auto starts = torch::arange(w0, w0 + b, torch::kInt64) * T;
    const auto offs = torch::arange(T, torch::kInt64);
    const auto idx = data.index_select(0, (starts.unsqueeze(1) + offs).flatten()).view({b, T});
    const auto tgt = data.index_select(0, (starts.unsqueeze(1) + offs + 1).flatten()).view({b, T});
    const auto t0 = std::chrono::steady_clock::now();
    const auto logits = model(idx);
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++batches;
    const auto logp = torch::log_softmax(logits, -1);
    const auto nll = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1);  // [b, T]
    ce_sum += nll.sum().item<double>();
    ce_last_sum += nll.select(1, T - 1).sum().item<double>();
    const auto pred = logits.argmax(-1);
    correct += pred.eq(tgt).sum().item<int64_t>();
    correct_last += pred.select(1, T - 1).eq(tgt.select(1, T - 1)).sum().item<int64_t>();
    if (!text_metrics) continue;
    for (int64_t i = 0; i < b; ++i) {
      const auto p = pred[i], t = tgt[i];
      const std::string hyp = vocab.decode({p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + T});
      const std::string ref = vocab.decode({t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + T});
      cer_sum += cer(hyp, ref);
      const double w = wer(hyp, ref);
      if (w >= 0) {
        wer_sum += w;
        ++wer_count;
      }
      bleu_sum += sentence_bleu(hyp, ref);
    }
  }
  const double positions = static_cast<double>(n * T);
  r.cross_entropy = ce_sum / positions;
  // Per character of the predicted text, so that char and BPE models compare.
  r.chars = n * T;
  if (vocab.is_bpe()) {
    const std::vector<int64_t> targets(tokens.begin() + 1, tokens.begin() + 1 + n * T);
    r.chars = static_cast<int64_t>(count_chars(vocab.decode(targets)));
  }
  r.cross_entropy_per_char = r.chars ? ce_sum / static_cast<double>(r.chars) : 0.0;
  r.perplexity = std::exp(r.cross_entropy);
  r.accuracy = static_cast<double>(correct) / positions;
  r.cross_entropy_last = ce_last_sum / static_cast<double>(n);
  r.perplexity_last = std::exp(r.cross_entropy_last);
  r.accuracy_last = static_cast<double>(correct_last) / static_cast<double>(n);
  r.cer = cer_sum / static_cast<double>(n);
  r.wer = wer_count ? wer_sum / static_cast<double>(wer_count) : 0.0;
  r.bleu = bleu_sum / static_cast<double>(n);
  r.ms_per_batch = batches ? ms / static_cast<double>(batches) : 0.0;
  if (was_training) model->train();
  return r;
}

std::string format_eval_table(const EvalResult& r) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "  metric            all positions   last position\n"
                "  cross-entropy     %13.4f   %13.4f\n"
                "  perplexity        %13.4f   %13.4f\n"
                "  CE per character  %13.4f   (%lld characters)\n"
                "  top-1 accuracy    %13.4f   %13.4f\n"
                "  CER               %13.4f\n"
                "  WER               %13.4f\n"
                "  BLEU              %13.4f\n"
                "  ms per batch      %13.3f   (batch %lld, %lld windows)\n",
                r.cross_entropy, r.cross_entropy_last, r.perplexity, r.perplexity_last, r.cross_entropy_per_char,
                static_cast<long long>(r.chars), r.accuracy, r.accuracy_last, r.cer, r.wer, r.bleu, r.ms_per_batch,
                static_cast<long long>(r.batch), static_cast<long long>(r.windows));
  return buf;
}

std::string eval_json(const EvalResult& r) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"cross_entropy\": %.6f, \"perplexity\": %.6f, \"accuracy\": %.6f, "
                "\"cross_entropy_last\": %.6f, \"perplexity_last\": %.6f, \"accuracy_last\": %.6f, "
                "\"cer\": %.6f, \"wer\": %.6f, \"bleu\": %.6f, \"ms_per_batch\": %.4f, \"batch\": %lld, "
                "\"windows\": %lld, \"cross_entropy_per_char\": %.6f, \"chars\": %lld}",
                r.cross_entropy, r.perplexity, r.accuracy, r.cross_entropy_last, r.perplexity_last, r.accuracy_last,
                r.cer, r.wer, r.bleu, r.ms_per_batch, static_cast<long long>(r.batch),
                static_cast<long long>(r.windows), r.cross_entropy_per_char, static_cast<long long>(r.chars));
  return buf;
}

}  // namespace qisa::train
