// Helpers for tests that run qisa-train as a user would and read what it
// wrote through libqisa.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qisa.h"
#include "test_support.h"

namespace qisa::train {

// Eval-mode logits of `tokens` (one window from position 0) in libqisa's CPU
// engine; transposed models allowed.
inline std::vector<float> libqisa_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto model = test::load_file(path);
  qisa_context_params p;
  qisa_context_default_params(&p);
  p.backend = QISA_BACKEND_CPU;
  p.n_threads = 1;
  p.allow_non_causal = 1;
  qisa_context* raw = nullptr;
  EXPECT_EQ(qisa_context_create(model.get(), &p, &raw, nullptr, 0), QISA_OK);
  test::ContextPtr c(raw);
  qisa_model_info info{};
  info.struct_size = sizeof info;
  EXPECT_EQ(qisa_model_get_info(model.get(), &info), QISA_OK);
  std::vector<float> out(tokens.size() * static_cast<size_t>(info.vocab_size));
  EXPECT_EQ(
      qisa_evaluate_window(c.get(), 0, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(), out.size()),
      QISA_OK)
      << qisa_context_last_error(c.get());
  return out;
}

struct CliRun {
  int rc = 0;
  std::string err;
};

// qisa-train with `args`, stderr captured.
inline CliRun train_cli(const std::string& args, const std::string& dir) {
  const std::string err = dir + "/stderr.txt";
  const std::string cmd = std::string(QISA_TRAIN_BIN) + " " + args + " 2> " + err + " > /dev/null";
  CliRun r;
  const int status = std::system(cmd.c_str());
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

// A fresh folder under the temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("qisa-trainer-test-" + std::to_string(::getpid()) + "-" + std::to_string(next_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& f) const { return (path_ / f).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
  static inline int next_ = 0;
};

}  // namespace qisa::train
