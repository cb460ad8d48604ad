// Data-parallel qisa-train (c10d + Gloo) with real processes on this host:
// rendezvous through a file, Gloo on 127.0.0.1, every run bounded by a
// deadline after which the test kills what is left.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gpt_model.h"
#include "model.h"
#include "model_export.h"

namespace qisa::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("qisa-dist-" + std::to_string(::getpid()) + "-" + std::to_string(next_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& f) const { return (path_ / f).string(); }

 private:
  fs::path path_;
  static inline int next_ = 0;
};

// qisa-train with `args`, stderr to `err`, stdout discarded.
pid_t spawn(const std::vector<std::string>& args, const std::string& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = QISA_TRAIN_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!freopen(err.c_str(), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(127);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Exit status, or -1 when it had to be killed at the deadline.
int wait_for(pid_t pid, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (Clock::now() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Whether `path` reaches `n` lines within `seconds` (a rank's --log growing).
bool wait_for_lines(const std::string& path, size_t n, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    std::ifstream f(path);
    size_t lines = 0;
    for (std::string l; std::getline(f, l);) ++lines;
    if (lines >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<std::string> common(const std::string& kind, int64_t steps, int64_t batch) {
  return {"--attention",         kind,      "--n-layer",           "2",         "--steps",
          std::to_string(steps), "--batch", std::to_string(batch), "--threads", "1",
          "--eval-every",        "1000",    "--eval-windows",      "16",        "--quiet"};
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct RankRun {
  std::vector<int> rc;
  std::vector<std::string> err;
};

// Every rank of one job (rank 0 gets `rank0_extra`), waited for together.
RankRun run_ranks(int n, const std::vector<std::string>& args, const std::vector<std::string>& rank0_extra,
                  const TempDir& dir, const std::string& tag, double deadline = 240) {
  const std::string rdv = dir / (tag + ".rdv");
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    auto a = plus(args, {"--world-size", std::to_string(n), "--rank", std::to_string(r), "--rendezvous-file", rdv,
                         "--dist-timeout", "60"});
    if (r == 0) a = plus(a, rank0_extra);
    pids.push_back(spawn(a, dir / (tag + ".rank" + std::to_string(r) + ".err")));
  }
  RankRun out;
  for (int r = 0; r < n; ++r) {
    out.rc.push_back(wait_for(pids[static_cast<size_t>(r)], deadline));
    out.err.push_back(slurp(dir / (tag + ".rank" + std::to_string(r) + ".err")));
  }
  return out;
}

// Largest parameter difference between two exported models, and where.
struct Diff {
  double value = 0;
  std::string where;
};
std::ostream& operator<<(std::ostream& os, const Diff& d) {
  return os << d.value << " (" << d.where << ")";
}
bool operator<(const Diff& d, double x) {
  return d.value < x;
}
bool operator>(const Diff& d, double x) {
  return d.value > x;
}

// `angles`: also the circuit angles. An angle on which the projection's
// outputs do not depend (a qubit none of its Pauli strings acts on, after
// the last CNOT) has a zero gradient in exact arithmetic; Adam normalises
// the round-off left in its place into full-size steps whose sign depends on
// the order of summation, so such angles legitimately differ between runs
// that sum gradients differently. The logits show that nothing else does.
Diff max_param_diff(const std::string& a, const std::string& b, bool angles = true) {
  auto ma = qisa::load_model_file(a), mb = qisa::load_model_file(b);
  Gpt ga = import_model(*ma), gb = import_model(*mb);
  const auto pa = ga->named_parameters(), pb = gb->named_parameters();
  Diff worst;
  for (const auto& kv : pa) {
    if (!angles && kv.key().find("angles") != std::string::npos) continue;
    const double d = (kv.value() - pb[kv.key()]).abs().max().item<double>();
    if (d >= worst.value) worst = {d, kv.key()};
  }
  return worst;
}

// Largest logit difference of the two models on a few windows of the text.
double max_logit_diff(const std::string& a, const std::string& b) {
  auto ma = qisa::load_model_file(a), mb = qisa::load_model_file(b);
  Gpt ga = import_model(*ma), gb = import_model(*mb);
  torch::NoGradGuard ng;
  const auto idx = torch::randint(0, ma->config.vocab_size, {8, ma->config.n_ctx}, torch::kInt64);
  return (ga->forward(idx) - gb->forward(idx)).abs().max().item<double>();
}

class DataParallelKinds : public ::testing::TestWithParam<std::string> {};

TEST_P(DataParallelKinds, TwoRanksOfBatchBEqualOneRankOfBatch2B) {
  TempDir dir;
  const auto args = plus(common(GetParam(), 4, 16), {"--dropout", "0"});
  const RankRun two = run_ranks(2, args, {"--out", dir / "two.qisa"}, dir, "two");
  ASSERT_EQ(two.rc, (std::vector<int>{0, 0})) << two.err[0] << two.err[1];
  EXPECT_NE(two.err[0].find("data parallel: 2 ranks x batch 16"), std::string::npos) << two.err[0];
  EXPECT_TRUE(two.err[1].empty()) << "rank 1 logs nothing: " << two.err[1];
  const pid_t one =
      spawn(plus(common(GetParam(), 4, 32), {"--dropout", "0", "--out", dir / "one.qisa"}), dir / "one.err");
  ASSERT_EQ(wait_for(one, 240), 0) << slurp(dir / "one.err");
  EXPECT_LT(max_param_diff(dir / "two.qisa", dir / "one.qisa", false), 2e-5);
  EXPECT_LT(max_logit_diff(dir / "two.qisa", dir / "one.qisa"), 1e-5);
  // The same steps on half the data (batch 16, one rank) end elsewhere: the
  // comparison above can fail.
  const pid_t half =
      spawn(plus(common(GetParam(), 4, 16), {"--dropout", "0", "--out", dir / "half.qisa"}), dir / "half.err");
  ASSERT_EQ(wait_for(half, 240), 0) << slurp(dir / "half.err");
  EXPECT_GT(max_param_diff(dir / "half.qisa", dir / "one.qisa", false), 1e-4);
  EXPECT_GT(max_logit_diff(dir / "half.qisa", dir / "one.qisa"), 1e-3);
}

TEST_P(DataParallelKinds, StoppedAndResumedEqualsOneRunStraight) {
  TempDir dir;
  // Dropout on: each rank's own RNG stream must come back on resume.
  const auto straight = run_ranks(2, common(GetParam(), 6, 16), {"--out", dir / "straight.qisa"}, dir, "straight");
  ASSERT_EQ(straight.rc, (std::vector<int>{0, 0})) << straight.err[0] << straight.err[1];
  const auto first = run_ranks(2, plus(common(GetParam(), 3, 16), {"--checkpoint", dir / "ckpt"}), {}, dir, "first");
  ASSERT_EQ(first.rc, (std::vector<int>{0, 0})) << first.err[0] << first.err[1];
  EXPECT_TRUE(fs::exists(dir / "ckpt/torch_rng.rank1.pt"));
  const auto second = run_ranks(2, plus(common(GetParam(), 6, 16), {"--checkpoint", dir / "ckpt", "--resume"}),
                                {"--out", dir / "resumed.qisa"}, dir, "second");
  ASSERT_EQ(second.rc, (std::vector<int>{0, 0})) << second.err[0] << second.err[1];
  EXPECT_NE(second.err[0].find("resuming at step 3 of 6"), std::string::npos) << second.err[0];
  EXPECT_LT(max_param_diff(dir / "straight.qisa", dir / "resumed.qisa"), 1e-6);
  // Resuming with another world size is refused on every rank.
  const auto other =
      run_ranks(3, plus(common(GetParam(), 6, 16), {"--checkpoint", dir / "ckpt", "--resume"}), {}, dir, "other");
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(other.rc[static_cast<size_t>(r)], 2);
    EXPECT_NE(other.err[static_cast<size_t>(r)].find("resume with --world-size 2 --batch 16"), std::string::npos)
        << other.err[static_cast<size_t>(r)];
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, DataParallelKinds, ::testing::Values("csa", "qisa-v3"),
                         [](const auto& p) { return p.param == "csa" ? std::string("csa") : std::string("qisa_v3"); });

TEST(DataParallel, AKilledRankStopsTheOthersWithAMessage) {
  TempDir dir;
  const std::string rdv = dir / "kill.rdv";
  auto args = plus(common("csa", 1000000, 16), {"--world-size", "2", "--rendezvous-file", rdv, "--dist-timeout", "30",
                                                "--checkpoint", dir / "ckpt"});
  const pid_t r0 = spawn(plus(args, {"--rank", "0", "--log", dir / "log.csv"}), dir / "r0.err");
  const pid_t r1 = spawn(plus(args, {"--rank", "1"}), dir / "r1.err");
  // Wait until training runs (rank 0 logs steps), then kill rank 1 hard.
  ASSERT_TRUE(wait_for_lines(dir / "log.csv", 4, 120)) << slurp(dir / "r0.err");
  kill(r1, SIGKILL);
  const auto t0 = Clock::now();
  const int rc = wait_for(r0, 45);
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  wait_for(r1, 5);
  EXPECT_EQ(rc, 3) << slurp(dir / "r0.err");
  EXPECT_LT(took, 40.0);
  EXPECT_NE(slurp(dir / "r0.err").find("rank 0 of 2 lost the other ranks at step"), std::string::npos)
      << slurp(dir / "r0.err");
}

TEST(DataParallel, ASignalOnOneRankStopsAllAfterTheSameStepAndTheRunResumes) {
  TempDir dir;
  const auto args = plus(common("qisa-v3", 300, 16), {"--checkpoint", dir / "ckpt", "--save-every", "100000"});
  const std::string rdv = dir / "int.rdv";
  const auto rank_args = [&](int r) {
    return plus(args,
                {"--world-size", "2", "--rank", std::to_string(r), "--rendezvous-file", rdv, "--dist-timeout", "60"});
  };
  const pid_t r0 = spawn(plus(rank_args(0), {"--log", dir / "log.csv"}), dir / "r0.err");
  const pid_t r1 = spawn(rank_args(1), dir / "r1.err");
  ASSERT_TRUE(wait_for_lines(dir / "log.csv", 6, 120)) << slurp(dir / "r0.err");
  kill(r1, SIGINT);  // Ctrl-C on one host only
  EXPECT_EQ(wait_for(r0, 60), 128 + SIGINT) << slurp(dir / "r0.err");
  EXPECT_EQ(wait_for(r1, 60), 128 + SIGINT) << slurp(dir / "r1.err");
  const std::string e0 = slurp(dir / "r0.err");
  ASSERT_NE(e0.find("interrupted at step"), std::string::npos) << e0;
  // Resume to the end; the result is the run that was never interrupted.
  const auto resumed = run_ranks(2, plus(args, {"--resume"}), {"--out", dir / "resumed.qisa"}, dir, "resumed");
  ASSERT_EQ(resumed.rc, (std::vector<int>{0, 0})) << resumed.err[0] << resumed.err[1];
  const auto straight = run_ranks(2, common("qisa-v3", 300, 16), {"--out", dir / "straight.qisa"}, dir, "straight");
  ASSERT_EQ(straight.rc, (std::vector<int>{0, 0})) << straight.err[0];
  EXPECT_LT(max_param_diff(dir / "straight.qisa", dir / "resumed.qisa"), 1e-6);
}

TEST(DataParallel, MismatchedFlagsOrDataAreRefusedOnEveryRank) {
  TempDir dir;
  const std::string rdv = dir / "m.rdv";
  auto args = plus(common("qisa-v3", 2, 8),
                   {"--world-size", "2", "--rendezvous-file", rdv, "--dist-timeout", "60", "--out", dir / "m.qisa"});
  const pid_t r0 = spawn(plus(args, {"--rank", "0"}), dir / "r0.err");
  const pid_t r1 = spawn(plus(args, {"--rank", "1", "--n-embd", "32", "--lr", "0.001"}), dir / "r1.err");
  EXPECT_EQ(wait_for(r0, 120), 3);
  EXPECT_EQ(wait_for(r1, 120), 3);
  const std::string e1 = slurp(dir / "r1.err");
  EXPECT_NE(e1.find("n_embd (rank 0: 16, rank 1: 32)"), std::string::npos) << e1;
  EXPECT_NE(e1.find("lr (rank 0: 0.003, rank 1: 0.001)"), std::string::npos) << e1;
  EXPECT_NE(slurp(dir / "r0.err").find("rank(s) started with training flags other than rank 0's"), std::string::npos)
      << slurp(dir / "r0.err");
  EXPECT_FALSE(fs::exists(dir / "m.qisa"));
  // Another text on rank 1: its sha256 differs.
  std::ofstream(dir / "other.txt") << std::string(4000, 'a') + std::string(4000, 'b');
  const std::string rdv2 = dir / "m2.rdv";
  args = plus(common("csa", 2, 8),
              {"--world-size", "2", "--rendezvous-file", rdv2, "--dist-timeout", "60", "--out", dir / "m.qisa"});
  const pid_t s0 = spawn(plus(args, {"--rank", "0"}), dir / "s0.err");
  const pid_t s1 = spawn(plus(args, {"--rank", "1", "--data", dir / "other.txt"}), dir / "s1.err");
  EXPECT_EQ(wait_for(s0, 120), 3);
  EXPECT_EQ(wait_for(s1, 120), 3);
  EXPECT_NE(slurp(dir / "s1.err").find("dataset_sha256"), std::string::npos) << slurp(dir / "s1.err");
}

TEST(DataParallel, AnUnreachableStoreEndsWithinTheTimeout) {
  TempDir dir;
  // A loopback port nobody listens on: bind one, read its number, close it.
  int port = 0;
  {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    close(s);
  }
  const auto t0 = Clock::now();
  const pid_t p = spawn(
      plus(common("csa", 2, 8), {"--world-size", "2", "--rank", "1", "--master-addr", "127.0.0.1", "--master-port",
                                 std::to_string(port), "--dist-timeout", "3", "--out", dir / "x.qisa"}),
      dir / "err");
  EXPECT_EQ(wait_for(p, 60), 3) << slurp(dir / "err");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 30.0);
  EXPECT_NE(slurp(dir / "err").find("could not reach the rendezvous store at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << slurp(dir / "err");
}

}  // namespace
}  // namespace qisa::train
