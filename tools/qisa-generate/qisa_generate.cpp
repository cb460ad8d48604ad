// qisa-generate: text generation from a .qisa model, streamed to stdout.
// Flags follow llama.cpp's where they overlap; see --help.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "json_escape.h"
#include "qisa.h"

#ifndef QISA_BUILD_TREE_MODEL
#define QISA_BUILD_TREE_MODEL ""
#endif

namespace {

struct Options {
  std::string model, prompt = "ROMEO:", prompt_file;
  bool prompt_set = false;
  int n_predict = 200;
  qisa_sampler_params sampling{};
  int threads = 0;
  qisa_backend backend = QISA_BACKEND_AUTO;
  qisa_value_path path = QISA_VALUE_PATH_AUTO;
  qisa_engine engine = QISA_ENGINE_FAST;
  qisa_overflow overflow = QISA_OVERFLOW_SLIDE;
  std::vector<std::string> stops;
  bool json = false, quiet = false, escape = false, display_prompt = true, skip_unknown = false;
  bool seed_given = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: qisa-generate [options]\n"
               "Generates text with a QISA model (default: the bundled tiny-Shakespeare QISA v3 model).\n\n"
               "  -m, --model FILE        .qisa model file\n"
               "  -p, --prompt TEXT       prompt (default \"ROMEO:\")\n"
               "  -f, --file FILE         read the prompt from a file (- : standard input)\n"
               "  -e, --escape            process escapes in the prompt (\\n \\t \\r \\\\ \\\" \\' \\xHH)\n"
               "      --no-display-prompt print only the generated text\n"
               "      --skip-unknown      drop prompt characters the vocabulary lacks (else an error)\n"
               "  -n, --n-predict N       tokens to generate (200)\n"
               "      --temp X            temperature, 0 = greedy (0.8)\n"
               "      --top-k N           top-k, 0 = off (40)\n"
               "      --top-p X           top-p, 1 = off (0.95)\n"
               "      --min-p X           min-p, 0 = off (0.05)\n"
               "      --repeat-penalty X  repetition penalty, 1 = off (1.1)\n"
               "      --repeat-last-n N   tokens the penalty looks back (64)\n"
               "  -s, --seed N            sampling seed; -1 (default): a random one, printed; same seed, same text\n"
               "  -t, --threads N         CPU threads (0 = automatic)\n"
               "      --backend B         cpu | cuda | auto (auto)\n"
               "      --qisa-path P       QISA value path: auto | unitary | observables | gates (auto)\n"
               "      --engine E          fast | reference (fast)\n"
               "      --context-shift M   past the model's window: slide (exact, default) | shift-half | error\n"
               "      --stop TEXT         stop before TEXT (repeatable)\n"
               "      --json              print one JSON object instead of streaming\n"
               "      --quiet             no timing summary on stderr\n"
               "  -h, --help              this text\n"
               "      --version           versions of libqisa and the format\n");
}

[[noreturn]] void bad(const std::string& msg) {
  std::fprintf(stderr, "qisa-generate: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

long parse_int(const std::string& flag, const char* v, long lo, long hi) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi) {
    bad(flag + " needs an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v + "'");
  }
  return x;
}

float parse_float(const std::string& flag, const char* v, float lo, float hi) {
  char* end = nullptr;
  const float x = std::strtof(v, &end);
  if (end == v || *end != '\0' || !(x >= lo && x <= hi)) {
    bad(flag + " needs a number in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v + "'");
  }
  return x;
}

// The value a flag's word names, from a table of (word, value).
template <class T>
T choice(const std::string& flag, const std::string& word, std::initializer_list<std::pair<const char*, T>> table) {
  std::string words;
  for (const auto& [name, value] : table) {
    if (word == name) return value;
    words += std::string(words.empty() ? "" : " | ") + name;
  }
  bad(flag + " must be " + words + ", got '" + word + "'");
}

// The bundled model: next to an installed binary, else in the source tree
// this binary was built from.
std::string default_model() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    const std::string installed = dir + "/../share/qisa/models/default.qisa";
    if (access(installed.c_str(), R_OK) == 0) return installed;
  }
  return QISA_BUILD_TREE_MODEL;
}

// -e: the escapes llama.cpp's -e understands; anything else stays as typed.
std::string unescape(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 == in.size()) {
      out += in[i];
      continue;
    }
    const char c = in[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case '\'': out += '\''; break;
      case 'x':
        if (i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
          out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
          i += 2;
          break;
        }
        [[fallthrough]];
      default: out += '\\'; out += c;
    }
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  qisa_sampler_default_params(&o.sampling);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("qisa-generate: libqisa %s, model format %d.%d\n", qisa_version(), QISA_FORMAT_VERSION_MAJOR,
                  QISA_FORMAT_VERSION_MINOR);
      std::exit(0);
    } else if (a == "-m" || a == "--model") {
      o.model = val();
      if (o.model.empty()) bad(a + " needs a non-empty path");
    } else if (a == "-p" || a == "--prompt") {
      o.prompt = val();
      o.prompt_set = true;
    } else if (a == "-f" || a == "--file") {
      o.prompt_file = val();
      if (o.prompt_file.empty()) bad(a + " needs a non-empty path");
    } else if (a == "-n" || a == "--n-predict") {
      o.n_predict = static_cast<int>(parse_int(a, val(), 0, 1 << 24));
    } else if (a == "--temp") {
      o.sampling.temperature = parse_float(a, val(), 0.0f, 100.0f);
    } else if (a == "--top-k") {
      o.sampling.top_k = static_cast<int32_t>(parse_int(a, val(), 0, 1 << 24));
    } else if (a == "--top-p") {
      o.sampling.top_p = parse_float(a, val(), 1e-6f, 1.0f);
    } else if (a == "--min-p") {
      o.sampling.min_p = parse_float(a, val(), 0.0f, 1.0f);
    } else if (a == "--repeat-penalty") {
      o.sampling.repeat_penalty = parse_float(a, val(), 1e-3f, 1000.0f);
    } else if (a == "--repeat-last-n") {
      o.sampling.repeat_last_n = static_cast<int32_t>(parse_int(a, val(), 0, 1 << 20));
    } else if (a == "-s" || a == "--seed") {
      const long seed = parse_int(a, val(), -1, 0x7fffffffL);
      o.seed_given = seed >= 0;
      if (o.seed_given) o.sampling.seed = static_cast<uint64_t>(seed);
    } else if (a == "-e" || a == "--escape") {
      o.escape = true;
    } else if (a == "--no-display-prompt") {
      o.display_prompt = false;
    } else if (a == "--skip-unknown") {
      o.skip_unknown = true;
    } else if (a == "--context-shift") {
      o.overflow = choice<qisa_overflow>(
          a, val(),
          {{"slide", QISA_OVERFLOW_SLIDE}, {"shift-half", QISA_OVERFLOW_SHIFT_HALF}, {"error", QISA_OVERFLOW_ERROR}});
    } else if (a == "-t" || a == "--threads") {
      o.threads = static_cast<int>(parse_int(a, val(), 0, 1024));
    } else if (a == "--backend") {
      o.backend = choice<qisa_backend>(
          a, val(), {{"cpu", QISA_BACKEND_CPU}, {"cuda", QISA_BACKEND_CUDA}, {"auto", QISA_BACKEND_AUTO}});
    } else if (a == "--qisa-path") {
      o.path = choice<qisa_value_path>(a, val(),
                                       {{"auto", QISA_VALUE_PATH_AUTO},
                                        {"unitary", QISA_VALUE_PATH_UNITARY},
                                        {"observables", QISA_VALUE_PATH_OBSERVABLES},
                                        {"gates", QISA_VALUE_PATH_GATES}});
    } else if (a == "--engine") {
      o.engine = choice<qisa_engine>(a, val(), {{"fast", QISA_ENGINE_FAST}, {"reference", QISA_ENGINE_REFERENCE}});
    } else if (a == "--stop") {
      o.stops.push_back(val());
      if (o.stops.back().empty()) bad("--stop needs a non-empty string");
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (!o.prompt_file.empty()) {
    if (o.prompt_set) bad("give -p or -f, not both");
    std::ostringstream ss;
    if (o.prompt_file == "-") {
      ss << std::cin.rdbuf();
    } else {
      std::ifstream in(o.prompt_file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "qisa-generate: cannot read prompt file '%s'\n", o.prompt_file.c_str());
        std::exit(1);
      }
      ss << in.rdbuf();
    }
    o.prompt = ss.str();
    // The prompt is text passed as a C string: a NUL would silently cut it.
    const size_t nul = o.prompt.find('\0');
    if (nul != std::string::npos) {
      std::fprintf(stderr, "qisa-generate: prompt file '%s' has a NUL byte at offset %zu; a prompt must be text\n",
                   o.prompt_file.c_str(), nul);
      std::exit(1);
    }
  }
  if (o.escape) o.prompt = unescape(o.prompt);
  if (o.prompt.find('\0') != std::string::npos) bad("the prompt has a NUL character");
  if (!o.seed_given) o.sampling.seed = std::random_device{}() & 0x7fffffffu;
  if (o.model.empty()) o.model = default_model();
  return o;
}

using qisa::tools::json_escape;

struct Stream {
  bool echo;
  std::string text;
};

int on_piece(const char* piece, size_t n, void* user) {
  auto* s = static_cast<Stream*>(user);
  s->text.append(piece, n);
  if (s->echo) {
    std::fwrite(piece, 1, n, stdout);
    std::fflush(stdout);
  }
  return 0;
}

const char* stop_name(qisa_stop_reason r) {
  switch (r) {
    case QISA_STOP_MAX_TOKENS: return "max_tokens";
    case QISA_STOP_CALLBACK: return "callback";
    case QISA_STOP_STRING: return "stop_string";
    case QISA_STOP_EOS: return "eos";
  }
  return "?";
}

// Past the window the model sees only the last n_ctx tokens; say so, since
// the text before them cannot change what is generated.
void warn_long_prompt(const qisa_model* model, const Options& o) {
  if (o.quiet || o.overflow == QISA_OVERFLOW_ERROR) return;  // there a long prompt is an error
  size_t n = 0;
  qisa_tokenize(model, o.prompt.data(), o.prompt.size(), nullptr, 0, &n,
                o.skip_unknown ? QISA_TOKENIZE_SKIP_UNKNOWN : QISA_TOKENIZE_DEFAULT, nullptr, 0);
  qisa_model_info info;
  info.struct_size = sizeof info;
  if (qisa_model_get_info(model, &info) != QISA_OK || n <= static_cast<size_t>(info.n_ctx)) return;
  std::fprintf(stderr,
               "qisa-generate: warning: the prompt has %zu tokens and the model's window is %d: only its last "
               "tokens, up to %d, affect the output (the rest is not evaluated)\n",
               n, info.n_ctx, info.n_ctx);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.model.empty()) {
    std::fprintf(stderr, "qisa-generate: no model given and no bundled model found; use -m FILE\n");
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  qisa_model* model = nullptr;
  char err[1024];
  qisa_status st = qisa_model_load_file(o.model.c_str(), nullptr, &model, err, sizeof err);
  if (st != QISA_OK) {
    std::fprintf(stderr, "qisa-generate: cannot load '%s': %s: %s\n", o.model.c_str(), qisa_status_string(st), err);
    return 1;
  }
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  qisa_context_params cp;
  qisa_context_default_params(&cp);
  cp.n_threads = o.threads;
  cp.backend = o.backend;
  cp.value_path = o.path;
  cp.engine = o.engine;
  cp.overflow = o.overflow;
  qisa_context* ctx = nullptr;
  st = qisa_context_create(model, &cp, &ctx, err, sizeof err);
  if (st != QISA_OK) {
    std::fprintf(stderr, "qisa-generate: %s: %s\n", qisa_status_string(st), err);
    qisa_model_free(model);
    return 1;
  }
  warn_long_prompt(model, o);
  std::vector<const char*> stops;
  for (const auto& s : o.stops) stops.push_back(s.c_str());
  qisa_generate_params gp;
  qisa_generate_default_params(&gp);
  gp.max_tokens = o.n_predict;
  gp.sampling = o.sampling;
  gp.stop_strings = stops.data();
  gp.n_stop_strings = static_cast<int32_t>(stops.size());
  Stream stream{!o.json, {}};
  gp.on_piece = on_piece;
  gp.user_data = &stream;
  gp.tokenize_flags = o.skip_unknown ? QISA_TOKENIZE_SKIP_UNKNOWN : QISA_TOKENIZE_DEFAULT;
  qisa_generate_result r;
  r.struct_size = sizeof r;
  if (!o.json && o.display_prompt) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  st = qisa_generate(ctx, o.prompt.c_str(), &gp, &r);
  int rc = 0;
  if (st != QISA_OK) {
    std::fprintf(stderr, "\nqisa-generate: %s: %s\n", qisa_status_string(st), qisa_context_last_error(ctx));
    rc = 1;
  } else {
    const double prefill_tps = r.prefill_ms > 0 ? r.n_prompt_tokens * 1000.0 / r.prefill_ms : 0.0;
    const double decode_tps = r.decode_ms > 0 ? r.n_generated * 1000.0 / r.decode_ms : 0.0;
    const char* backend = qisa_context_backend(ctx) == QISA_BACKEND_CUDA ? "cuda" : "cpu";
    const char* why = qisa_context_backend_info(ctx);  // "cpu", "cuda: <device>", "cpu (auto: reason)"
    if (o.json) {
      std::printf(
          "{\"model\": \"%s\", \"prompt\": \"%s\", \"text\": \"%s\", \"n_prompt_tokens\": %d, \"n_generated\": %d, "
          "\"stop_reason\": \"%s\", \"seed\": %llu, \"load_ms\": %.3f, \"prefill_ms\": %.3f, \"decode_ms\": %.3f, "
          "\"prefill_tokens_per_s\": %.1f, \"decode_tokens_per_s\": %.1f, \"backend\": \"%s\", \"backend_info\": "
          "\"%s\", "
          "\"threads\": %d}\n",
          json_escape(o.model).c_str(), json_escape(o.prompt).c_str(), json_escape(stream.text).c_str(),
          r.n_prompt_tokens, r.n_generated, stop_name(r.stop_reason), static_cast<unsigned long long>(o.sampling.seed),
          load_ms, r.prefill_ms, r.decode_ms, prefill_tps, decode_tps, backend, json_escape(why).c_str(),
          qisa_context_threads(ctx));
    } else {
      std::printf("\n");
      if (!o.quiet) {
        std::fprintf(stderr,
                     "\n[qisa-generate] load %.1f ms | prefill %d tokens, %.0f tok/s | decode %d tokens, %.0f tok/s "
                     "| backend %s, %d thread%s | seed %llu | stop: %s\n",
                     load_ms, r.n_prompt_tokens, prefill_tps, r.n_generated, decode_tps, why, qisa_context_threads(ctx),
                     qisa_context_threads(ctx) == 1 ? "" : "s", static_cast<unsigned long long>(o.sampling.seed),
                     stop_name(r.stop_reason));
        // Where the decode rate comes from once the window is full: with
        // learned absolute positions an exact slide re-evaluates the window
        // for every token.
        qisa_model_info info;
        info.struct_size = sizeof info;
        const int64_t past = static_cast<int64_t>(r.n_prompt_tokens) + r.n_generated -
                             (qisa_model_get_info(model, &info) == QISA_OK ? info.n_ctx : INT32_MAX);
        if (past > 0 && o.overflow == QISA_OVERFLOW_SLIDE)
          std::fprintf(stderr,
                       "[qisa-generate] %lld of those tokens came past the %d-token window: each re-evaluated the "
                       "whole window (exact); --context-shift shift-half re-evaluates half of it once per half "
                       "window instead (faster, not exact)\n",
                       static_cast<long long>(std::min<int64_t>(past, r.n_generated)), info.n_ctx);
      }
    }
  }
  qisa_context_free(ctx);
  qisa_model_free(model);
  return rc;
}
