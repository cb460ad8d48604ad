// qisa-analyze: how the norms of a model's sequence matrices grow with the
// window length N, the quantities that govern the cost of a fault-tolerant
// quantum transformer (Guo et al., "Quantum Transformer: Accelerating model
// inference via quantum linear algebra", arXiv:2402.16714; docs/analysis.md).
//   qisa-analyze MODEL [--text FILE | --random] [--n 2,4,8,...] [--samples K]
//                [--seed S] [--layers] [--heads] [--json FILE|-] [--plot OUT.png]
// For each N: S = the N x n_embd matrix layer 0 sees (token + position
// embeddings of N consecutive tokens of the text, or of uniformly random
// tokens), through libqisa's qisa_context_probe; ||S||_F and ||S||_2 over
// K samples; with --layers every layer's input, with --heads Q, K and Q K^T
// of every head. Then the fitted exponents (norm ~ N^a) and the cost scalings.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "analysis.h"
#include "json_escape.h"
#include "qisa.h"

namespace {

namespace an = qisa::analysis;

struct Options {
  std::string model, text, json, plot;
  std::vector<int32_t> n;  // empty: powers of two up to n_ctx, and n_ctx
  int samples = 16;
  uint64_t seed = 1;
  bool layers = false, heads = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "qisa-analyze: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

void usage() {
  std::printf(
      "usage: qisa-analyze MODEL [--text FILE | --random] [--n N1,N2,...] [--samples K] [--seed S]\n"
      "                    [--layers] [--heads] [--json FILE|-] [--plot OUT.png]\n"
      "Norms of the sequence matrix S (N tokens x n_embd, what layer 0 sees) against N:\n"
      "  --text FILE      windows of N consecutive tokens of FILE (characters the model lacks are skipped)\n"
      "  --random         uniformly random tokens (the default)\n"
      "  --n LIST         window lengths (default: 2, 4, 8, ... up to n_ctx, and n_ctx)\n"
      "  --samples K      windows per length, averaged (16)\n"
      "  --layers         also the input of every later layer (and the last layer's output)\n"
      "  --heads          also Q, K and Q K^T of every head of every layer\n"
      "  --json FILE      the results as JSON ('-': standard output)\n"
      "  --plot OUT.png   log-log plot of ||S||_F and ||S||_2 with a sqrt(N) line (gnuplot)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](const std::string& v, long lo, long hi) {
      char* end = nullptr;
      const long x = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x < lo || x > hi)
        usage_error(a + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v +
                    "'");
      return x;
    };
    if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else if (a == "--text") {
      o.text = value();
    } else if (a == "--random") {
      o.text.clear();
    } else if (a == "--n") {
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) o.n.push_back(static_cast<int32_t>(number(item, 1, 1 << 20)));
    } else if (a == "--samples") {
      o.samples = static_cast<int>(number(value(), 1, 100000));
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(number(value(), 0, 1L << 62));
    } else if (a == "--layers") {
      o.layers = true;
    } else if (a == "--heads") {
      o.heads = true;
    } else if (a == "--json") {
      o.json = value();
    } else if (a == "--plot") {
      o.plot = value();
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (o.model.empty()) {
      o.model = a;
    } else {
      usage_error("more than one model given");
    }
  }
  if (o.model.empty()) usage_error("no model given");
  return o;
}

// One quantity's norms per window length: samples of ||.||_F and ||.||_2.
struct Series {
  std::string name;
  std::vector<std::vector<double>> frob, spec;  // [length][sample]
};

using qisa::tools::json_escape;

void write_plot(const Options& o, const std::vector<int32_t>& lengths, const Series& s, const std::string& source) {
  const std::string data = o.plot + ".dat", script = o.plot + ".gp";
  {
    std::ofstream d(data);
    for (size_t i = 0; i < lengths.size(); ++i) {
      const an::Spread f = an::spread(s.frob[i]), g = an::spread(s.spec[i]);
      d << lengths[i] << ' ' << f.mean << ' ' << f.stddev << ' ' << g.mean << ' ' << g.stddev << '\n';
    }
  }
  // The sqrt(N) reference passes through ||S||_F at the shortest window.
  const double c = an::spread(s.frob[0]).mean / std::sqrt(static_cast<double>(lengths[0]));
  std::string title = o.model.substr(o.model.find_last_of('/') + 1) + ", " + source;
  std::ofstream g(script);
  g << "set terminal pngcairo size 720,480\nset output '" << o.plot << "'\n"
    << "set logscale xy\nset xlabel 'N (tokens in the window)'\nset ylabel 'norm of S'\n"
    << "set title '" << title << "'\nset key top left\nset grid\n"
    << "plot '" << data << "' using 1:2:3 with yerrorlines title '||S||_F', '" << data
    << "' using 1:4:5 with yerrorlines title '||S||_2', " << c << "*sqrt(x) with lines dashtype 2 title 'sqrt(N)'\n";
  g.close();
  const std::string cmd = "gnuplot '" + script + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "qisa-analyze: gnuplot failed (is it installed?); data in %s, script in %s\n", data.c_str(),
                 script.c_str());
    return;
  }
  std::remove(data.c_str());
  std::remove(script.c_str());
  std::fprintf(stderr, "wrote %s\n", o.plot.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  qisa_model* model = nullptr;
  char err[512];
  if (qisa_model_load_file(o.model.c_str(), nullptr, &model, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "qisa-analyze: %s: %s\n", o.model.c_str(), err);
    return 1;
  }
  qisa_model_info info{};
  info.struct_size = sizeof info;
  qisa_model_get_info(model, &info);
  std::vector<int32_t> lengths = o.n;
  if (lengths.empty()) {
    for (int32_t n = 2; n < info.n_ctx; n *= 2) lengths.push_back(n);
    lengths.push_back(info.n_ctx);
  }
  for (int32_t n : lengths) {
    if (n > info.n_ctx)
      usage_error("--n " + std::to_string(n) + " is longer than the window (n_ctx " + std::to_string(info.n_ctx) + ")");
  }

  std::vector<int32_t> corpus;  // the text's tokens
  if (!o.text.empty()) {
    std::ifstream f(o.text, std::ios::binary);
    if (!f) usage_error("cannot read " + o.text);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t count = 0;
    corpus.resize(text.size());
    if (qisa_tokenize(model, text.data(), text.size(), corpus.data(), corpus.size(), &count, QISA_TOKENIZE_SKIP_UNKNOWN,
                      err, sizeof err) != QISA_OK) {
      std::fprintf(stderr, "qisa-analyze: %s: %s\n", o.text.c_str(), err);
      return 1;
    }
    corpus.resize(count);
    for (int32_t n : lengths)
      if (corpus.size() < static_cast<size_t>(n))
        usage_error(o.text + " has fewer tokens than --n " + std::to_string(n));
  }
  const std::string source = o.text.empty() ? "random tokens" : o.text.substr(o.text.find_last_of('/') + 1);

  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.max_sequences = 1;
  cp.max_batch = 1;
  qisa_context* ctx = nullptr;
  if (qisa_context_create(model, &cp, &ctx, err, sizeof err) != QISA_OK) {
    std::fprintf(stderr, "qisa-analyze: %s\n", err);
    return 1;
  }

  // The quantities: S (layer 0's input), later layers' inputs, Q K^T per head.
  const int64_t d = info.n_embd, hs = info.n_embd / info.n_head;
  std::vector<Series> series;
  series.push_back({"S", {}, {}});
  if (o.layers)
    for (int l = 1; l <= info.n_layer; ++l)
      series.push_back(
          {l == info.n_layer ? "output of the last layer" : "input of layer " + std::to_string(l), {}, {}});
  if (o.heads)
    for (int l = 0; l < info.n_layer; ++l)
      for (int h = 0; h < info.n_head; ++h)
        for (const char* what : {"Q", "K", "QK^T"})
          series.push_back({std::string(what) + " layer " + std::to_string(l) + " head " + std::to_string(h), {}, {}});
  for (auto& s : series) {
    s.frob.resize(lengths.size());
    s.spec.resize(lengths.size());
  }

  std::mt19937_64 rng(o.seed);
  std::vector<float> m, q, k;
  auto probe = [&](const std::vector<int32_t>& tokens, qisa_probe what, int layer, std::vector<float>& out) {
    out.assign(tokens.size() * static_cast<size_t>(d), 0.0f);
    if (qisa_context_probe(ctx, 0, tokens.data(), static_cast<int32_t>(tokens.size()), what, layer, out.data(),
                           out.size()) != QISA_OK) {
      std::fprintf(stderr, "qisa-analyze: %s\n", qisa_context_last_error(ctx));
      std::exit(1);
    }
  };
  for (size_t li = 0; li < lengths.size(); ++li) {
    const int32_t n = lengths[li];
    for (int sample = 0; sample < o.samples; ++sample) {
      std::vector<int32_t> tokens(static_cast<size_t>(n));
      if (corpus.empty()) {
        std::uniform_int_distribution<int32_t> tok(0, info.vocab_size - 1);
        for (auto& t : tokens) t = tok(rng);
      } else {
        std::uniform_int_distribution<size_t> start(0, corpus.size() - static_cast<size_t>(n));
        const size_t at = start(rng);
        std::copy(corpus.begin() + static_cast<std::ptrdiff_t>(at),
                  corpus.begin() + static_cast<std::ptrdiff_t>(at) + n, tokens.begin());
      }
      size_t si = 0;
      auto record = [&](const float* a, int64_t rows, int64_t cols) {
        series[si].frob[li].push_back(an::frobenius_norm(a, rows, cols));
        series[si].spec[li].push_back(an::spectral_norm(a, rows, cols));
        ++si;
      };
      for (int l = 0; l <= (o.layers ? info.n_layer : 0); ++l) {
        probe(tokens, QISA_PROBE_LAYER_INPUT, l, m);
        record(m.data(), n, d);
      }
      if (o.heads) {
        for (int l = 0; l < info.n_layer; ++l) {
          probe(tokens, QISA_PROBE_QUERIES, l, q);
          probe(tokens, QISA_PROBE_KEYS, l, k);
          for (int h = 0; h < info.n_head; ++h) {
            for (const std::vector<float>* qk : {&q, &k}) {  // the head's columns, [n, head_size]
              std::vector<float> head(static_cast<size_t>(n * hs));
              for (int64_t r = 0; r < n; ++r) std::copy_n(qk->data() + r * d + h * hs, hs, head.data() + r * hs);
              record(head.data(), n, hs);
            }
            const std::vector<float> s = an::scores(q.data() + h * hs, k.data() + h * hs, n, hs, d);
            record(s.data(), n, n);
          }
        }
      }
    }
  }

  // The table, the fits and the cost scalings.
  std::vector<double> xs(lengths.begin(), lengths.end());
  std::printf("qisa-analyze: %s, %s, %d samples per length (n_embd %d, n_ctx %d)\n", o.model.c_str(), source.c_str(),
              o.samples, info.n_embd, info.n_ctx);
  std::ostringstream js;
  js << "{\"model\": \"" << json_escape(o.model) << "\", \"source\": \"" << json_escape(source)
     << "\", \"samples\": " << o.samples << ", \"n_embd\": " << info.n_embd << ", \"n_ctx\": " << info.n_ctx
     << ", \"quantities\": [";
  std::vector<an::PowerLaw> fits_f, fits_s;
  for (size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    std::printf("\n%s\n%8s  %22s  %22s  %10s\n", s.name.c_str(), "N", "||.||_F (mean +- sd)", "||.||_2 (mean +- sd)",
                "F/sqrt(N)");
    std::vector<double> mf, ms;
    js << (si ? ", " : "") << "{\"name\": \"" << json_escape(s.name) << "\", \"points\": [";
    for (size_t li = 0; li < lengths.size(); ++li) {
      const an::Spread f = an::spread(s.frob[li]), g = an::spread(s.spec[li]);
      mf.push_back(f.mean);
      ms.push_back(g.mean);
      std::printf("%8d  %12.4g +- %-8.2g  %12.4g +- %-8.2g  %10.4g\n", lengths[li], f.mean, f.stddev, g.mean, g.stddev,
                  f.mean / std::sqrt(static_cast<double>(lengths[li])));
      js << (li ? ", " : "") << "{\"n\": " << lengths[li] << ", \"frobenius\": " << f.mean
         << ", \"frobenius_sd\": " << f.stddev << ", \"spectral\": " << g.mean << ", \"spectral_sd\": " << g.stddev
         << "}";
    }
    const an::PowerLaw ff = an::fit_power_law(xs, mf), fs = an::fit_power_law(xs, ms);
    fits_f.push_back(ff);
    fits_s.push_back(fs);
    std::printf("fit: ||.||_F ~ %.4g N^%.3f (r2 %.3f), ||.||_2 ~ %.4g N^%.3f (r2 %.3f)\n", ff.coefficient, ff.slope,
                ff.r2, fs.coefficient, fs.slope, fs.r2);
    js << "], \"fit\": {\"frobenius\": {\"slope\": " << ff.slope << ", \"coefficient\": " << ff.coefficient
       << ", \"r2\": " << ff.r2 << "}, \"spectral\": {\"slope\": " << fs.slope
       << ", \"coefficient\": " << fs.coefficient << ", \"r2\": " << fs.r2 << "}}}";
  }
  // docs/analysis.md: with block encodings from QRAM the encoding factor of S
  // is ||S||_F, and one token's output state of a layer costs O~(d ||S||_F)
  // uses of them (the paper's O~(sqrt(N) d) where ||S||_F ~ sqrt(N)); the
  // attention state preparation scales with ||Q K^T||.
  const double a = fits_f[0].slope;
  std::printf("\ncost scalings (docs/analysis.md):\n");
  std::printf("  encoding factor alpha_s = ||S||_F ~ N^%.3f (the paper observes N^0.5)\n", a);
  std::printf("  one token's output state of one layer: O~(d alpha_s) ~ d N^%.3f block-encoding uses\n", a);
  js << "], \"costs\": {\"alpha_s_exponent\": " << a << ", \"layer_state_cost_exponent\": " << a;
  if (o.heads) {
    double worst = -1e300, sum = 0.0;
    int heads = 0;
    for (size_t si = 0; si < series.size(); ++si) {
      if (series[si].name.rfind("QK^T", 0) != 0) continue;
      worst = std::max(worst, fits_s[si].slope);
      sum += fits_s[si].slope;
      ++heads;
    }
    std::printf("  attention state preparation: O~(||QK^T||) ~ N^%.3f (mean over %d heads; largest N^%.3f)\n",
                sum / heads, heads, worst);
    js << ", \"qkt_spectral_exponent_mean\": " << sum / heads << ", \"qkt_spectral_exponent\": " << worst;
  }
  js << "}}\n";
  if (o.json == "-") {
    std::fputs(js.str().c_str(), stdout);
  } else if (!o.json.empty()) {
    std::ofstream(o.json) << js.str();
  }
  if (!o.plot.empty()) write_plot(o, lengths, series[0], source);
  qisa_context_free(ctx);
  qisa_model_free(model);
  return 0;
}
