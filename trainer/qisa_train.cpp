// qisa-train: trains a GPT-1-style model with CSA or QISA v1/v2/v3 attention
// on a text file, evaluates it with the research protocol and exports a
// .qisa file. Subcommands:
//   qisa-train [train options]                     train (the default)
//   qisa-train eval MODEL.qisa [--data F] [...]    evaluate a stored model
//   qisa-train export --checkpoint DIR --out M     convert a checkpoint
//   qisa-train convert-research CKPT.pt --text T --out M
//                                                  convert the research code's state_dict
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "allocator_tuning.h"
#include "checkpoint.h"
#include "dataset.h"
#include "distributed.h"
#include "dtype.h"
#include "evaluation.h"
#include "golden_file.h"
#include "gpt_model.h"
#include "lr_schedule.h"
#include "model.h"
#include "model_export.h"
#include "research_checkpoint.h"
#include "text_data.h"

#ifndef QISA_DEFAULT_DATA
#define QISA_DEFAULT_DATA "data/tinyshakespeare.txt"
#endif
#ifndef QISA_TRAINER_VERSION
#define QISA_TRAINER_VERSION "0.2.0"
#endif

namespace fs = std::filesystem;
using namespace qisa::train;

namespace {

struct Options {
  std::string command = "train";
  std::string data = QISA_DEFAULT_DATA;
  std::string attention = "qisa-v3";
  std::string tokenizer = "char";  // char | bpe
  int64_t vocab_size = 512;        // bpe
  int64_t n_embd = 16, n_layer = 6, n_head = 1, ctx = 16, batch = 1024;
  double lr = 3e-3, dropout = 0.2, weight_decay = 0.01;
  std::string lr_schedule = "constant";  // constant | cosine
  double min_lr = -1;                    // cosine floor; default lr / 10
  int64_t warmup = 0;
  int64_t steps = 0;
  double epochs = 0;
  uint64_t seed = 1337;
  int threads = 2;
  std::string split = "research";
  int64_t eval_every = 100, eval_windows = 256;
  std::string out;  // .qisa
  std::string dtype = "f32";
  std::string checkpoint;
  bool resume = false;
  bool reference_transpose = false;
  int64_t qsat_top_k = 8, qsat_window = 8;  // attention qsat
  bool raw_encoding = false;
  bool export_golden = false;
  bool observables = false;
  std::string log_csv, metrics_json;
  std::string model_path;    // eval; convert-research: the checkpoint
  std::string text, paulis;  // convert-research
  bool causal = false, transposed = false, ignore_stored_unitary = false;
  // Data parallelism (docs/distributed.md); WORLD_SIZE / RANK / MASTER_ADDR /
  // MASTER_PORT from the environment where the flags are not given.
  int world_size = 1, rank = 0, master_port = 29500, dist_timeout = 300;
  std::string master_addr = "127.0.0.1", rendezvous_file;
  int64_t eval_batch = 1024;
  int64_t save_every = 0;  // 0: at every evaluation
  bool quiet = false;
  std::set<std::string> given;  // flags on the command line
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "qisa-train: %s\n", msg.c_str());
  std::exit(2);
}

qisa_dtype parse_dtype(const std::string& s) {
  const auto t = qisa::dtype_from_name(s);  // a name or alias of core/dtype.cpp's table
  if (!t) die("--dtype must be one of " + qisa::dtype_names() + ", got '" + s + "'");
  return *t;
}

void usage() {
  // The kinds and types from their tables: "csa|qisa-v1|...", "f32|f16|...".
  const std::string kinds = qisa::attention_kind_names("|"), types = qisa::dtype_names("|");
  std::printf(
      "usage: qisa-train [options]                 train, evaluate, export\n"
      "       qisa-train eval MODEL.qisa [options]   evaluate a stored model\n"
      "       qisa-train export --checkpoint DIR --out MODEL.qisa [--dtype T]\n"
      "       qisa-train convert-research CKPT.pt --text TRAIN.txt --out MODEL.qisa [--attention K]\n"
      "           [--paulis LOG] [--causal | --transposed] [--ignore-stored-unitary] [--dtype T]\n"
      "           [--observables] [--export-golden]   (docs/format.md: converting research checkpoints)\n\n"
      "model:    --attention %s (qisa-v3)  --n-embd N (16)  --n-layer N (6)\n"
      "          --n-head N (1)  --ctx N (16)  --raw-encoding  --reference-transpose\n"
      "          --tokenizer char|bpe (char)  --vocab-size N (bpe: 512, learned on the training part)\n"
      "          qsat: --qsat-top-k K (8) --qsat-window W (8): each query keeps its K nearest keys and\n"
      "          its W most recent positions (W = 0: the nearest keys only)\n"
      "training: --data FILE (bundled tiny Shakespeare)  --split research|FRACTION (research: 64%%/4%%)\n"
      "          --batch N (1024)  --lr X (3e-3)  --weight-decay X (0.01)  --dropout X (0.2)\n"
      "          --lr-schedule constant|cosine (constant)  --warmup N (0 steps)  --min-lr X (cosine: lr/10)\n"
      "          --steps N | --epochs X  --seed N (1337)  --threads N (2)  --eval-every N (100)\n"
      "          --eval-windows N (256; periodic evals only)  --checkpoint DIR  --resume\n"
      "          --save-every N (checkpoint every N steps; default: at every evaluation)\n"
      "parallel: --world-size N --rank R (0; --batch is per rank)  --master-addr HOST (127.0.0.1)\n"
      "          --master-port P (29500) | --rendezvous-file PATH  --dist-timeout S (300)\n"
      "          (or WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT; scripts/train-distributed -n N)\n"
      "output:   --out MODEL.qisa  --dtype %s (f32)  --observables  --export-golden\n"
      "          --log FILE.csv  --metrics FILE.json  --eval-batch N (1024)  --quiet\n"
      "A run needs --out or --checkpoint (or both): without them the model would be lost. Every\n"
      "flag and both paths are checked before the first step. Ctrl-C (SIGINT) or SIGTERM saves a\n"
      "checkpoint (to --checkpoint, else to OUT.checkpoint) and says how to resume; --resume refuses\n"
      "model flags that differ from the checkpoint's.\n"
      "--reference-transpose reproduces the research code's non-causal attention (out_i reads\n"
      "tokens j >= i); its models are marked and the runtime refuses to generate from them.\n",
      kinds.c_str(), types.c_str());
}

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  if (i < argc && (!std::strcmp(argv[i], "eval") || !std::strcmp(argv[i], "export") || !std::strcmp(argv[i], "train") ||
                   !std::strcmp(argv[i], "convert-research"))) {
    o.command = argv[i++];
  }
  bool epochs_set = false, steps_set = false;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    o.given.insert(a);
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    auto num = [&]() {
      const std::string v = val();
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0') die(a + " needs a number, got '" + v + "'");
      return x;
    };
    auto count = [&]() {
      const double x = num();
      if (x < 1 || x != std::floor(x)) die(a + " needs a positive integer");
      return static_cast<int64_t>(x);
    };
    auto count_or_zero = [&]() {
      const double x = num();
      if (x < 0 || x != std::floor(x)) die(a + " needs a non-negative integer");
      return static_cast<int64_t>(x);
    };
    if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else if (a == "--data")
      o.data = val();
    else if (a == "--attention")
      o.attention = val();
    else if (a == "--n-embd")
      o.n_embd = count();
    else if (a == "--n-layer")
      o.n_layer = count();
    else if (a == "--n-head")
      o.n_head = count();
    else if (a == "--ctx")
      o.ctx = count();
    else if (a == "--batch")
      o.batch = count();
    else if (a == "--lr")
      o.lr = num();
    else if (a == "--lr-schedule")
      o.lr_schedule = val();
    else if (a == "--min-lr")
      o.min_lr = num();
    else if (a == "--warmup")
      o.warmup = count();
    else if (a == "--weight-decay")
      o.weight_decay = num();
    else if (a == "--dropout")
      o.dropout = num();
    else if (a == "--steps") {
      o.steps = count();
      steps_set = true;
    } else if (a == "--epochs") {
      o.epochs = num();
      epochs_set = true;
    } else if (a == "--seed")
      o.seed = static_cast<uint64_t>(count());
    else if (a == "--threads")
      o.threads = static_cast<int>(count());
    else if (a == "--split")
      o.split = val();
    else if (a == "--eval-every")
      o.eval_every = count();
    else if (a == "--eval-windows")
      o.eval_windows = count();
    else if (a == "--eval-batch")
      o.eval_batch = count();
    else if (a == "--save-every")
      o.save_every = count();
    else if (a == "--out")
      o.out = val();
    else if (a == "--dtype")
      o.dtype = val();
    else if (a == "--checkpoint")
      o.checkpoint = val();
    else if (a == "--resume")
      o.resume = true;
    else if (a == "--reference-transpose")
      o.reference_transpose = true;
    else if (a == "--qsat-top-k")
      o.qsat_top_k = count();
    else if (a == "--qsat-window")
      o.qsat_window = count_or_zero();  // 0: the nearest keys only
    else if (a == "--raw-encoding")
      o.raw_encoding = true;
    else if (a == "--export-golden")
      o.export_golden = true;
    else if (a == "--observables")
      o.observables = true;
    else if (a == "--log")
      o.log_csv = val();
    else if (a == "--metrics")
      o.metrics_json = val();
    else if (a == "--quiet")
      o.quiet = true;
    else if (a == "--tokenizer")
      o.tokenizer = val();
    else if (a == "--vocab-size")
      o.vocab_size = count();
    else if (a == "--text")
      o.text = val();
    else if (a == "--paulis")
      o.paulis = val();
    else if (a == "--causal")
      o.causal = true;
    else if (a == "--transposed")
      o.transposed = true;
    else if (a == "--ignore-stored-unitary")
      o.ignore_stored_unitary = true;
    else if (a == "--world-size")
      o.world_size = static_cast<int>(count());
    else if (a == "--rank")
      o.rank = static_cast<int>(num());
    else if (a == "--master-addr")
      o.master_addr = val();
    else if (a == "--master-port")
      o.master_port = static_cast<int>(count());
    else if (a == "--rendezvous-file")
      o.rendezvous_file = val();
    else if (a == "--dist-timeout")
      o.dist_timeout = static_cast<int>(count());
    else if ((o.command == "eval" || o.command == "convert-research") && a[0] != '-' && o.model_path.empty())
      o.model_path = a;
    else
      die("unknown argument '" + a + "' (see --help)");
  }
  if (epochs_set && steps_set) die("give --steps or --epochs, not both");
  if (o.command != "convert-research") {
    for (const char* f : {"--text", "--paulis", "--causal", "--transposed", "--ignore-stored-unitary"})
      if (o.given.count(f)) die(std::string(f) + " belongs to convert-research");
  }
  if (o.causal && o.transposed) die("give --causal or --transposed, not both");
  if (o.attention == "qsat") {
    if (o.qsat_top_k < 1) die("--qsat-top-k must be at least 1");
    if (o.qsat_top_k > o.ctx || o.qsat_window > o.ctx) die("--qsat-top-k and --qsat-window must be at most --ctx");
    if (o.reference_transpose) die("--reference-transpose applies to the research code's dense kinds, not qsat");
  } else {
    for (const char* f : {"--qsat-top-k", "--qsat-window"})
      if (o.given.count(f)) die(std::string(f) + " applies to --attention qsat");
    o.qsat_top_k = o.qsat_window = 0;
  }
  if (o.tokenizer != "char" && o.tokenizer != "bpe") die("--tokenizer must be char or bpe, got '" + o.tokenizer + "'");
  if (o.given.count("--vocab-size") && o.tokenizer != "bpe") die("--vocab-size needs --tokenizer bpe");
  if (o.vocab_size < 256 || o.vocab_size > 65536) die("--vocab-size must be in 256..65536 (256: bytes only)");
  // torchrun's variables where the flags are absent.
  auto env_int = [&](const char* flag, const char* var, int& field) {
    const char* v = std::getenv(var);
    if (o.given.count(flag) || !v || !*v) return;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (*end != '\0' || x < 0 || x > 65535) die(std::string(var) + "='" + v + "' is not a valid number");
    field = static_cast<int>(x);
  };
  env_int("--world-size", "WORLD_SIZE", o.world_size);
  env_int("--rank", "RANK", o.rank);
  env_int("--master-port", "MASTER_PORT", o.master_port);
  if (const char* v = std::getenv("MASTER_ADDR"); v && *v && !o.given.count("--master-addr")) o.master_addr = v;
  if (o.world_size < 1 || o.world_size > 4096) die("--world-size must be in 1..4096");
  if (o.rank < 0 || o.rank >= o.world_size)
    die("--rank " + std::to_string(o.rank) + " is not in 0.." + std::to_string(o.world_size - 1));
  if (o.master_port < 1 || o.master_port > 65535) die("--master-port must be in 1..65535");
  if (o.world_size > 1 && o.command != "train") die("--world-size applies to training only");
  if (!(o.dropout >= 0 && o.dropout < 1)) die("--dropout must be in [0, 1)");
  if (!(o.lr > 0)) die("--lr must be > 0");
  try {
    (void)parse_lr_shape(o.lr_schedule);
  } catch (const std::exception& e) {
    die(e.what());
  }
  if (o.given.count("--min-lr") && !(o.min_lr >= 0 && o.min_lr <= o.lr)) die("--min-lr must be in [0, --lr]");
  if (o.given.count("--min-lr") && o.lr_schedule != "cosine") die("--min-lr needs --lr-schedule cosine");
  if (o.min_lr < 0) o.min_lr = o.lr / 10;
  if (o.command == "train" && !epochs_set && !steps_set) o.steps = 1500;
  if (epochs_set && !(o.epochs > 0)) die("--epochs must be > 0");
  // Values refused now, not after training.
  (void)parse_dtype(o.dtype);
  try {
    (void)parse_attention(o.attention);
  } catch (const std::exception& e) {
    die(e.what());
  }
  return o;
}

// A file can be written at `path`: its folder exists and takes a new file.
// Checked before training so a typo does not cost the run.
void check_writable_file(const std::string& flag, const std::string& path) {
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) die(flag + " " + path + ": folder '" + dir.string() + "' does not exist");
  if (fs::is_directory(p)) die(flag + " " + path + " is a folder");
  const fs::path probe = dir / (".qisa-train-probe-" + std::to_string(::getpid()));
  std::ofstream f(probe);
  const bool ok = static_cast<bool>(f);
  f.close();
  fs::remove(probe);
  if (!ok) die(flag + " " + path + ": cannot write in '" + dir.string() + "'");
}

void check_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) die("--checkpoint " + dir + ": cannot create the folder");
  check_writable_file("--checkpoint", (fs::path(dir) / "state.txt").string());
}

// SIGINT / SIGTERM: the training loop checkpoints and stops after its step.
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

std::string fmt_time(double s) {
  char b[32];
  const int t = static_cast<int>(s + 0.5);
  std::snprintf(b, sizeof b, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  return b;
}

// The run's learning-rate schedule, from the flags checked by parse().
LrSchedule lr_schedule(const Options& o, int64_t steps) {
  return {parse_lr_shape(o.lr_schedule), o.lr, o.min_lr, o.warmup, steps};
}

std::vector<std::pair<std::string, std::string>> provenance(const Options& o, const std::string& sha, int64_t steps,
                                                            double train_loss, double eval_loss,
                                                            const std::string& split) {
  char tl[32], el[32];
  std::snprintf(tl, sizeof tl, "%.6f", train_loss);
  std::snprintf(el, sizeof el, "%.6f", eval_loss);
  return {{qisa::dataset::kName, fs::path(o.data).filename().string()},
          {qisa::dataset::kPath, fs::absolute(o.data).lexically_normal().string()},
          {qisa::dataset::kSha256, sha},
          {qisa::dataset::kSplit, o.split},
          {"split", split},
          {"steps", std::to_string(steps)},
          {"train_loss", tl},
          {"eval_loss", el},
          {"seed", std::to_string(o.seed)},
          {"batch", std::to_string(o.batch)},
          {"lr", std::to_string(o.lr)},
          {"lr_schedule", describe(lr_schedule(o, steps))},
          {"dropout", std::to_string(o.dropout)},
          {"tokenizer", o.tokenizer == "bpe" ? "bpe (vocab " + std::to_string(o.vocab_size) + ")" : "char"},
          {"trainer_version", QISA_TRAINER_VERSION},
          {"trainer", "qisa-train (LibTorch " TORCH_VERSION ")"}};
}

std::string golden_path(const std::string& out) {
  fs::path p(out);
  p.replace_extension(".golden");
  return p.string();
}

void write_model(Gpt& model, const Options& o, const TextTokenizer& vocab,
                 std::vector<std::pair<std::string, std::string>> metadata, const std::vector<int64_t>& golden_prompt) {
  ExportOptions eo;
  eo.weight_dtype = eo.unitary_dtype = parse_dtype(o.dtype);
  // A type too coarse for unitaries (q4_0) stores them as q8_0, as qisa-quantize --all does.
  if (!qisa::dtype_traits(eo.unitary_dtype).holds_unitaries) eo.unitary_dtype = QISA_DTYPE_Q8_0;
  eo.observables = o.observables;
  eo.tokenizer = vocab.desc();
  eo.metadata = std::move(metadata);
  model->eval();
  const auto desc = export_model(model, eo);
  qisa::writer::write_file(desc, o.out);
  // Load it back through libqisa's loader: the export is only done when the
  // runtime accepts it.
  try {
    qisa::load_model_file(o.out);
  } catch (const std::exception& e) {
    throw std::runtime_error("exported file fails libqisa's checks: " + std::string(e.what()));
  }
  std::fprintf(stderr, "wrote %s (%ju bytes, %s)\n", o.out.c_str(), static_cast<uintmax_t>(fs::file_size(o.out)),
               o.dtype.c_str());
  if (o.export_golden && !golden_prompt.empty()) {
    torch::NoGradGuard ng;
    const auto T = std::min<int64_t>(model->options.n_ctx, static_cast<int64_t>(golden_prompt.size()));
    const auto idx = torch::tensor(std::vector<int64_t>(golden_prompt.begin(), golden_prompt.begin() + T)).view({1, T});
    const auto logits = model(idx).squeeze(0).contiguous();
    qisa::writer::Golden g;
    for (int64_t t = 0; t < T; ++t) g.tokens.push_back(static_cast<int32_t>(golden_prompt[static_cast<size_t>(t)]));
    g.vocab = static_cast<uint32_t>(logits.size(1));
    g.logits.assign(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
    qisa::writer::write_golden(g, golden_path(o.out));
    std::fprintf(stderr, "wrote %s (eval-mode logits of %lld positions)\n", golden_path(o.out).c_str(),
                 static_cast<long long>(T));
  }
}

// ---- train -----------------------------------------------------------------

// What every rank of a data-parallel run must agree on.
std::string training_fingerprint(const Options& o, const ModelOptions& mo, const std::string& sha, int64_t steps) {
  std::ostringstream f;
  f << "attention=" << attention_name(mo.attention) << "\nn_embd=" << mo.n_embd << "\nn_layer=" << mo.n_layer
    << "\nn_head=" << mo.n_head << "\nctx=" << mo.n_ctx << "\nreference_transpose=" << mo.reference_transpose
    << "\nqsat_top_k=" << mo.qsat_top_k << "\nqsat_window=" << mo.qsat_window << "\nraw_encoding=" << mo.raw_encoding
    << "\ndropout=" << o.dropout << "\ndataset_sha256=" << sha << "\nsplit=" << o.split << "\nbatch=" << o.batch
    << "\nlr=" << o.lr << "\nlr_schedule=" << o.lr_schedule << "\nmin_lr=" << o.min_lr << "\nwarmup=" << o.warmup
    << "\nweight_decay=" << o.weight_decay << "\nsteps=" << steps << "\nseed=" << o.seed
    << "\neval_every=" << o.eval_every << "\nsave_every=" << o.save_every << "\nresume=" << o.resume
    << "\nworld_size=" << o.world_size << "\ntokenizer=" << o.tokenizer << "\nvocab_size=" << mo.vocab_size
    << "\ntrainer=" << QISA_TRAINER_VERSION << "\n";
  return f.str();
}

// Where an interrupted run leaves its checkpoint.
std::string interrupt_checkpoint(const Options& o) {
  return o.checkpoint.empty() ? o.out + ".checkpoint" : o.checkpoint;
}

// --resume: model flags given now must be the checkpoint's.
void check_resume_flags(const Options& o, const ModelOptions& ck) {
  auto same = [&](const char* flag, bool equal, const std::string& was) {
    if (o.given.count(flag) && !equal)
      die(std::string("--resume: the checkpoint was made with ") + flag + " " + was +
          "; drop the flag, or start a new run in another --checkpoint folder");
  };
  same("--attention", parse_attention(o.attention) == ck.attention, attention_name(ck.attention));
  same("--n-embd", o.n_embd == ck.n_embd, std::to_string(ck.n_embd));
  same("--n-layer", o.n_layer == ck.n_layer, std::to_string(ck.n_layer));
  same("--n-head", o.n_head == ck.n_head, std::to_string(ck.n_head));
  same("--ctx", o.ctx == ck.n_ctx, std::to_string(ck.n_ctx));
  same("--dropout", o.dropout == ck.dropout, std::to_string(ck.dropout));
  same("--reference-transpose", ck.reference_transpose, "off");
  same("--qsat-top-k", o.qsat_top_k == ck.qsat_top_k, std::to_string(ck.qsat_top_k));
  same("--qsat-window", o.qsat_window == ck.qsat_window, std::to_string(ck.qsat_window));
  same("--raw-encoding", ck.raw_encoding, "off");
}

int run_train(const Options& o) {
  const bool root = o.rank == 0;  // rank 0 alone logs, evaluates, checkpoints and exports
  // Every path is checked before any work: a typo must not cost a run.
  if (root) {
    if (o.out.empty() && o.checkpoint.empty())
      die("give --out MODEL.qisa and/or --checkpoint DIR: without either the trained model would be lost");
    if (!o.out.empty()) check_writable_file("--out", o.out);
    if (!o.checkpoint.empty()) check_checkpoint_dir(o.checkpoint);
    if (!o.log_csv.empty()) check_writable_file("--log", o.log_csv);
    if (!o.metrics_json.empty()) check_writable_file("--metrics", o.metrics_json);
  }
  const std::string text = read_text_file(o.data);
  const std::string sha = sha256_hex(text);
  // BPE merges are learned on the training part of the text only (the
  // split's rule over bytes); the whole text is then split over tokens.
  const TextTokenizer vocab =
      o.tokenizer == "bpe"
          ? TextTokenizer::learn_bpe(text.substr(0, qisa::dataset::split(text.size(), o.split).train_end),
                                     static_cast<uint32_t>(o.vocab_size))
          : TextTokenizer::chars(text);
  const Split split = make_split(vocab.encode(text), o.split);
  if (static_cast<int64_t>(split.train.size()) <= o.ctx + 1 || static_cast<int64_t>(split.test.size()) <= o.ctx + 1) {
    die("the data is too short for --ctx " + std::to_string(o.ctx));
  }

  ModelOptions mo;
  mo.vocab_size = static_cast<int64_t>(vocab.size());
  mo.n_ctx = o.ctx;
  mo.n_embd = o.n_embd;
  mo.n_layer = o.n_layer;
  mo.n_head = o.n_head;
  mo.attention = parse_attention(o.attention);
  mo.dropout = o.dropout;
  mo.reference_transpose = o.reference_transpose;
  mo.qsat_top_k = o.qsat_top_k;
  mo.qsat_window = o.qsat_window;
  mo.raw_encoding = o.raw_encoding;
  mo.pauli_seed = o.seed;
  if (o.n_embd % o.n_head) die("--n-head must divide --n-embd");

  // Each step draws one global batch of world_size x batch windows (the same
  // on every rank) and each rank trains on its slice of it.
  const int64_t global_batch = o.batch * o.world_size;
  const int64_t windows = static_cast<int64_t>(split.train.size()) - o.ctx - 1;
  const int64_t steps =
      o.epochs > 0
          ? static_cast<int64_t>(std::ceil(o.epochs * static_cast<double>(windows) / static_cast<double>(global_batch)))
          : o.steps;

  std::unique_ptr<DataParallel> dp;
  if (o.world_size > 1) {
    DistOptions d;
    d.world_size = o.world_size;
    d.rank = o.rank;
    d.master_addr = o.master_addr;
    d.master_port = o.master_port;
    d.rendezvous_file = o.rendezvous_file;
    d.timeout = std::chrono::seconds(o.dist_timeout);
    try {
      dp = DataParallel::connect(d);
      dp->check_same("training flags", training_fingerprint(o, mo, sha, steps));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "qisa-train: rank %d of %d: %s\n", o.rank, o.world_size, e.what());
      return 3;
    }
  }

  torch::manual_seed(o.seed);
  std::mt19937_64 rng(o.seed);
  int64_t start_step = 0;
  CheckpointFiles resume;
  if (o.resume) {
    if (o.checkpoint.empty()) die("--resume needs --checkpoint DIR");
    // Rank 0 reads the folder and hands its bytes to the other ranks.
    std::string err;
    if (root) {
      try {
        resume = read_checkpoint_files(o.checkpoint);
      } catch (const std::exception& e) {
        err = e.what();
      }
    }
    if (dp) {
      err = dp->share("resume-error", err);
      if (err.empty()) {
        resume.state = dp->share("state", resume.state);
        resume.model = dp->share("model", resume.model);
        resume.optimizer = dp->share("optimizer", resume.optimizer);
        const auto n = std::stoul(dp->share("rng-count", std::to_string(resume.torch_rng.size())));
        resume.torch_rng.resize(n);
        for (size_t r = 0; r < n; ++r) resume.torch_rng[r] = dp->share("rng", resume.torch_rng[r]);
      }
    }
    if (!err.empty()) die(err);
    const CheckpointState st = parse_checkpoint_state(resume.state);
    if (st.data_sha256 != sha) die("--resume: the checkpoint was trained on other data");
    if (st.bpe != vocab.is_bpe() || st.vocab != vocab.pieces() || st.merges != vocab.merges())
      die(std::string("--resume: the checkpoint's tokenizer (") + (st.bpe ? "bpe" : "char") + ", " +
          std::to_string(st.vocab.size()) + " tokens) is not the one these flags give (" + vocab.kind_name() + ", " +
          std::to_string(vocab.size()) + "): give the same --tokenizer and --vocab-size");
    check_resume_flags(o, st.model);
    if (st.world_size != o.world_size || (st.batch != 0 && st.batch != o.batch))
      die("--resume: the checkpoint was written by " + std::to_string(st.world_size) + " rank(s) of batch " +
          std::to_string(st.batch) + "; resume with --world-size " + std::to_string(st.world_size) + " --batch " +
          std::to_string(st.batch) + " (the data order depends on both)");
    mo = st.model;
    start_step = st.step;
    std::istringstream(st.rng) >> rng;
  }
  Gpt model(mo);
  // Rank 0 initialises exactly as a one-process run; the others draw their
  // own dropout masks (their initial weights are replaced by rank 0's).
  if (!root) torch::manual_seed(o.seed + 1000003ull * static_cast<uint64_t>(o.rank));
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  if (o.resume) load_checkpoint(resume, o.rank, model, &opt);
  const LrSchedule schedule = lr_schedule(o, steps);
  if (dp) {
    dp->broadcast(model->parameters());
    dp->attach(model->parameters());
  }

  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  if (root) {
    std::fprintf(stderr,
                 "qisa-train: %s, n_embd %lld, %lld layers, %lld heads, ctx %lld, %lld parameters%s\n"
                 "  data %s (%zu chars, vocab %zu, sha256 %.12s), split %s: %zu train / %zu test tokens\n"
                 "  %lld steps of batch %lld (%.3f epochs), lr %g (%s), dropout %g, seed %llu, %d threads\n",
                 o.attention.c_str(), static_cast<long long>(mo.n_embd), static_cast<long long>(mo.n_layer),
                 static_cast<long long>(mo.n_head), static_cast<long long>(mo.n_ctx), static_cast<long long>(n_params),
                 mo.reference_transpose ? ", REFERENCE-TRANSPOSED (non-causal)" : "", o.data.c_str(), text.size(),
                 vocab.size(), sha.c_str(), split.description.c_str(), split.train.size(), split.test.size(),
                 static_cast<long long>(steps), static_cast<long long>(global_batch),
                 static_cast<double>(steps * global_batch) / static_cast<double>(windows), o.lr,
                 describe(schedule).c_str(), o.dropout, static_cast<unsigned long long>(o.seed), o.threads);
    if (dp)
      std::fprintf(stderr, "  data parallel: %d ranks x batch %lld, %zu gradient bytes all-reduced per step\n",
                   o.world_size, static_cast<long long>(o.batch), dp->gradient_bytes());
  }

  std::ofstream csv;
  if (root && !o.log_csv.empty()) {
    csv.open(o.log_csv, start_step > 0 ? std::ios::app : std::ios::trunc);
    if (start_step == 0) csv << "step,train_loss,eval_loss,tokens_per_s,elapsed_s\n";
  }
  const bool tty = root && isatty(STDERR_FILENO) && !o.quiet;
  const auto data = torch::tensor(split.train, torch::kInt64);
  const auto offs = torch::arange(o.ctx, torch::kInt64);
  std::uniform_int_distribution<int64_t> pick(0, windows - 1);
  const auto t_start = std::chrono::steady_clock::now();
  double loss_ema = 0, last_loss = 0, last_eval = NAN, wait_s = 0;
  if (root && start_step > 0)
    std::fprintf(stderr, "qisa-train: resuming at step %lld of %lld from %s\n", static_cast<long long>(start_step),
                 static_cast<long long>(steps), o.checkpoint.c_str());
  auto checkpoint_to = [&](const std::string& dir, int64_t done_steps) {
    std::ostringstream rs;
    rs << rng;
    const std::string mine = torch_rng_bytes();
    const auto all = dp ? dp->gather("rng", mine) : std::vector<std::string>{mine};
    if (root)
      write_checkpoint(dir, model, opt,
                       {mo, vocab.pieces(), vocab.is_bpe(), vocab.merges(), done_steps, rs.str(), o.split, sha,
                        o.world_size, o.batch},
                       all);
  };
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  model->train();
  int64_t step = start_step;
  try {
    for (; step < steps; ++step) {
      std::vector<int64_t> starts(static_cast<size_t>(global_batch));
      for (auto& s : starts) s = pick(rng);
      const auto st = torch::tensor(starts, torch::kInt64).narrow(0, o.rank * o.batch, o.batch).unsqueeze(1);
      const auto x = data.index_select(0, (st + offs).flatten()).view({o.batch, o.ctx});
      const auto y = data.index_select(0, (st + offs + 1).flatten()).view({o.batch, o.ctx});
      const double lr = lr_at(schedule, step);
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      const auto logits = model(x);
      const auto loss = torch::nn::functional::cross_entropy(logits.view({-1, mo.vocab_size}), y.flatten());
      opt.zero_grad();
      loss.backward();
      if (dp) {
        dp->finish_gradients();
        wait_s += dp->last_wait_seconds();
      }
      opt.step();
      last_loss = loss.item<double>();
      loss_ema = step == start_step ? last_loss : 0.95 * loss_ema + 0.05 * last_loss;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      const double done = static_cast<double>(step + 1 - start_step);
      const double tok_s = done * static_cast<double>(global_batch * o.ctx) / elapsed;
      const double eta = elapsed / done * static_cast<double>(steps - step - 1);
      const bool eval_now = (step + 1) % o.eval_every == 0 || step + 1 == steps;
      if (eval_now && root) {
        last_eval = evaluate(model, split.test, vocab, o.eval_batch, o.eval_windows, false).cross_entropy;
        if (csv) csv << step + 1 << "," << last_loss << "," << last_eval << "," << tok_s << "," << elapsed << "\n";
      } else if (csv) {
        csv << step + 1 << "," << last_loss << ",," << tok_s << "," << elapsed << "\n";
      }
      const bool save_now = o.save_every > 0 ? (step + 1) % o.save_every == 0 || step + 1 == steps : eval_now;
      if (save_now && !o.checkpoint.empty()) checkpoint_to(o.checkpoint, step + 1);
      // A signal on any rank stops every rank after the same step.
      const int sig = dp ? static_cast<int>(dp->max(g_stop_signal.load())) : g_stop_signal.load();
      if (sig != 0 && step + 1 < steps) {
        const std::string dir = interrupt_checkpoint(o);
        checkpoint_to(dir, step + 1);
        if (csv) csv.flush();
        if (root)
          std::fprintf(stderr,
                       "\nqisa-train: %s at step %lld of %lld; checkpoint saved in %s\n"
                       "resume with: qisa-train --checkpoint %s --resume [the same flags]\n",
                       sig == SIGTERM ? "terminated" : "interrupted", static_cast<long long>(step + 1),
                       static_cast<long long>(steps), dir.c_str(), dir.c_str());
        return 128 + sig;
      }
      if (tty) {
        const int width = 24, filled = static_cast<int>(width * (step + 1) / steps);
        char eval[32] = "-";  // no evaluation yet
        if (!std::isnan(last_eval)) std::snprintf(eval, sizeof eval, "%.4f", last_eval);
        std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f eval %s %.0f tok/s ETA %s  ",
                     std::string(static_cast<size_t>(filled), '#').c_str(),
                     std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(step + 1),
                     static_cast<long long>(steps), loss_ema, eval, tok_s, fmt_time(eta).c_str());
      } else if (eval_now && root && !o.quiet) {
        std::fprintf(stderr, "step %lld/%lld train_loss %.4f eval_loss %.4f tok/s %.0f elapsed %s ETA %s\n",
                     static_cast<long long>(step + 1), static_cast<long long>(steps), loss_ema, last_eval, tok_s,
                     fmt_time(elapsed).c_str(), fmt_time(eta).c_str());
      }
    }
  } catch (const std::exception& e) {
    if (!dp) throw;
    // A peer that died or hung: Gloo reports it (connection closed, or the
    // timeout); this rank stops too instead of waiting forever.
    const std::string what =
        dynamic_cast<const c10::Error*>(&e) ? static_cast<const c10::Error&>(e).what_without_backtrace() : e.what();
    std::fprintf(stderr, "qisa-train: rank %d of %d lost the other ranks at step %lld (%s); stopping\n", o.rank,
                 o.world_size, static_cast<long long>(step + 1), what.substr(0, what.find('\n')).c_str());
    return 3;
  }
  if (tty) std::fprintf(stderr, "\n");
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const double tok_s = static_cast<double>((steps - start_step) * global_batch * o.ctx) / std::max(train_s, 1e-9);
  const double step_ms = 1000 * train_s / static_cast<double>(std::max<int64_t>(steps - start_step, 1));
  const double wait_ms = 1000 * wait_s / static_cast<double>(std::max<int64_t>(steps - start_step, 1));
  // The all-reduce of every gradient by itself, for docs/distributed.md.
  const double alone_ms = dp ? dp->time_allreduce(5) : 0;
  if (!root) return 0;

  const EvalResult r = evaluate(model, split.test, vocab, o.eval_batch);
  std::printf("qisa-train: %s%s, %lld steps in %s (%.0f tokens/s, %.3f epochs), split %s\n", o.attention.c_str(),
              mo.reference_transpose ? " (reference-transposed)" : "", static_cast<long long>(steps),
              fmt_time(train_s).c_str(), tok_s,
              static_cast<double>(steps * global_batch) / static_cast<double>(windows), split.description.c_str());
  if (dp) {
    const double g = static_cast<double>(dp->gradient_bytes());
    std::printf(
        "data parallel: %d ranks x batch %lld x %d threads: %.2f steps/s, %.1f ms/step, of which %.2f ms waiting "
        "for the gradient all-reduce after backward; %.0f gradient bytes per rank per step (a ring all-reduce sends "
        "%.0f); the all-reduce of all %.0f bytes alone: %.2f ms\n",
        o.world_size, static_cast<long long>(o.batch), o.threads, 1000 / step_ms, step_ms, wait_ms, g,
        2.0 * (o.world_size - 1) / o.world_size * g, g, alone_ms);
  }
  std::printf("%s", format_eval_table(r).c_str());
  if (!o.metrics_json.empty()) {
    std::ofstream j(o.metrics_json);
    j << "{\"attention\": \"" << o.attention
      << "\", \"reference_transpose\": " << (mo.reference_transpose ? "true" : "false") << ", \"n_embd\": " << mo.n_embd
      << ", \"n_layer\": " << mo.n_layer << ", \"n_head\": " << mo.n_head << ", \"ctx\": " << mo.n_ctx
      << ", \"batch\": " << global_batch << ", \"steps\": " << steps << ", \"seed\": " << o.seed
      << ", \"threads\": " << o.threads << ", \"world_size\": " << o.world_size << ", \"split\": \"" << o.split
      << "\", \"train_seconds\": " << train_s << ", \"tokens_per_second\": " << tok_s
      << ", \"ms_per_step\": " << step_ms << ", \"allreduce_wait_ms_per_step\": " << wait_ms
      << ", \"allreduce_alone_ms\": " << alone_ms << ", \"gradient_bytes\": " << (dp ? dp->gradient_bytes() : 0)
      << ", \"final_train_loss\": " << loss_ema << ", \"test\": " << eval_json(r) << "}\n";
  }
  if (!o.out.empty()) {
    const std::vector<int64_t> prompt(split.test.begin(), split.test.begin() + o.ctx);
    write_model(model, o, vocab, provenance(o, sha, steps, loss_ema, r.cross_entropy, split.description), prompt);
  }
  return 0;
}

// ---- eval / export ----------------------------------------------------------

int run_eval(const Options& o) {
  if (o.model_path.empty()) die("eval needs a MODEL.qisa");
  std::unique_ptr<qisa::Model> loaded;
  try {
    loaded = qisa::load_model_file(o.model_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-train: %s: %s\n", o.model_path.c_str(), e.what());
    return 1;
  }
  const qisa::Model& m = *loaded;
  Gpt model = import_model(m);
  const TextTokenizer vocab = m.tokenizer.kind == qisa::TokenizerKind::ByteBPE
                                  ? TextTokenizer::bpe(m.tokenizer.pieces, m.tokenizer.merges)
                                  : TextTokenizer::chars(m.tokenizer.pieces);
  // The text and split the model recorded, unless given (qisa-eval does the same).
  auto recorded = [&](const char* key) {
    const auto it = m.metadata.find(key);
    return it == m.metadata.end() ? std::string() : it->second;
  };
  std::string data = o.data;
  if (!o.given.count("--data") && !recorded(qisa::dataset::kPath).empty() &&
      fs::is_regular_file(recorded(qisa::dataset::kPath)))
    data = recorded(qisa::dataset::kPath);
  const std::string spec =
      o.given.count("--split") || recorded(qisa::dataset::kSplit).empty() ? o.split : recorded(qisa::dataset::kSplit);
  const std::string text = read_text_file(data);
  if (!recorded(qisa::dataset::kSha256).empty() && sha256_hex(text) != recorded(qisa::dataset::kSha256)) {
    std::fprintf(stderr, "qisa-train eval: warning: %s is not the text %s was trained on (sha256 differs)\n",
                 data.c_str(), o.model_path.c_str());
  }
  const Split split = make_split(vocab.encode(text), spec);
  const EvalResult r = evaluate(model, split.test, vocab, o.eval_batch);
  std::printf("qisa-train eval: %s on %s (%s), %zu test tokens\n%s", o.model_path.c_str(), data.c_str(),
              split.description.c_str(), split.test.size(), format_eval_table(r).c_str());
  if (!o.metrics_json.empty()) std::ofstream(o.metrics_json) << eval_json(r) << "\n";
  return 0;
}

int run_export(const Options& o) {
  if (o.checkpoint.empty() || o.out.empty()) die("export needs --checkpoint DIR and --out MODEL.qisa");
  const CheckpointFiles files = read_checkpoint_files(o.checkpoint);
  const CheckpointState st = parse_checkpoint_state(files.state);
  Gpt model(st.model);
  load_checkpoint(files, 0, model, nullptr);
  Options eo = o;
  eo.export_golden = false;
  auto md = provenance(o, st.data_sha256, st.step, NAN, NAN, st.split);
  md.erase(std::remove_if(md.begin(), md.end(),
                          [](const auto& kv) {
                            return kv.first == "train_loss" || kv.first == "eval_loss" || kv.first == "seed" ||
                                   kv.first == "batch" || kv.first == "lr" || kv.first == "lr_schedule" ||
                                   kv.first == "dropout" || kv.first == qisa::dataset::kName ||
                                   kv.first == qisa::dataset::kPath;
                          }),
           md.end());
  for (auto& kv : md) {  // the checkpoint's split and tokenizer, not this command's defaults
    if (kv.first == qisa::dataset::kSplit) kv.second = st.split;
    if (kv.first == "tokenizer")
      kv.second = st.bpe ? "bpe (vocab " + std::to_string(st.vocab.size()) + ")" : std::string("char");
  }
  md.push_back({"exported_from_checkpoint", fs::path(o.checkpoint).filename().string()});
  write_model(model, eo, st.bpe ? TextTokenizer::bpe(st.vocab, st.merges) : TextTokenizer::chars(st.vocab), md, {});
  return 0;
}

}  // namespace

// The research code's state_dict -> .qisa, verified by libqisa's loader.
int run_convert_research(const Options& o) {
  if (o.model_path.empty() || o.text.empty() || o.out.empty())
    die("convert-research needs CKPT.pt, --text TRAIN.txt (its vocabulary is the text's sorted characters) and --out "
        "MODEL.qisa");
  check_writable_file("--out", o.out);
  research::ConvertOptions co;
  if (o.given.count("--attention")) co.attention = parse_attention(o.attention);
  const std::string text = read_text_file(o.text);
  co.vocab = CharVocab::from_text(text).pieces();
  if (!o.paulis.empty()) co.paulis = research::parse_pauli_log(read_text_file(o.paulis));
  if (o.causal) co.transposed = false;
  if (o.transposed) co.transposed = true;
  co.ignore_stored_unitary = o.ignore_stored_unitary;
  const research::StateDict sd = research::read_state_dict(o.model_path);
  research::Converted c;
  try {
    c = research::convert(sd, co);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-train convert-research: %s: %s\n", o.model_path.c_str(), e.what());
    return 1;
  }
  for (const auto& line : c.report) std::fprintf(stderr, "  %s\n", line.c_str());
  std::vector<std::pair<std::string, std::string>> md = {
      {"source", "research code state_dict (github.com/Nikait/QISA)"},
      {"converted_from", fs::path(o.model_path).filename().string()},
      {"converted_from_sha256", sha256_hex(read_text_file(o.model_path))},
      {"pauli_strings_from", c.pauli_source},
      {qisa::dataset::kName, fs::path(o.text).filename().string()},
      {qisa::dataset::kPath, fs::absolute(o.text).lexically_normal().string()},
      {qisa::dataset::kSha256, sha256_hex(text)},
      {qisa::dataset::kSplit, o.split},
      {"trainer_version", QISA_TRAINER_VERSION},
      {"trainer", "qisa-train convert-research (LibTorch " TORCH_VERSION ")"}};
  std::vector<int64_t> prompt;
  if (o.export_golden) {  // the first window of the text
    const auto ids = CharVocab(co.vocab).encode(text);
    prompt.assign(ids.begin(),
                  ids.begin() + std::min<int64_t>(c.model->options.n_ctx, static_cast<int64_t>(ids.size())));
  }
  write_model(c.model, o, TextTokenizer::chars(co.vocab), md, prompt);
  if (c.model->options.reference_transpose)
    std::fprintf(stderr,
                 "marked ReferenceTransposed: the research code's attention reads later tokens of its window; libqisa "
                 "evaluates such a model only by whole windows (qisa-eval) and never generates from it. --causal "
                 "converts it as causal instead (a different model than the one trained).\n");
  return 0;
}

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  torch::set_num_threads(o.threads);
  qisa::train::keep_freed_memory_for_reuse();
  try {
    if (o.command == "eval") return run_eval(o);
    if (o.command == "export") return run_export(o);
    if (o.command == "convert-research") return run_convert_research(o);
    return run_train(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qisa-train: %s\n", e.what());
    return 1;
  }
}
