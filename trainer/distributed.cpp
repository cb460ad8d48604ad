#include "distributed.h"

#define USE_C10D_GLOO 1  // Debian's libtorch_cpu.so is built with it; the header hides Gloo without it
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace qisa::train {

namespace {

std::vector<uint8_t> to_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

std::string from_bytes(const std::vector<uint8_t>& b) {
  return {b.begin(), b.end()};
}

std::map<std::string, std::string> fields(const std::string& lines) {
  std::map<std::string, std::string> out;
  std::istringstream in(lines);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    out[line.substr(0, eq)] = eq == std::string::npos ? "" : line.substr(eq + 1);
  }
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The interface Gloo's pairs bind to: GLOO_SOCKET_IFNAME as in PyTorch;
// else loopback for a run on one host (a rendezvous file, or a master on
// 127.0.0.1), else the address this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const DistOptions& o) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (!o.rendezvous_file.empty() || is_loopback(o.master_addr))
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string what_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

DataParallel::DataParallel(const DistOptions& o) : o_(o) {}

DataParallel::~DataParallel() = default;

std::unique_ptr<DataParallel> DataParallel::connect(const DistOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw std::runtime_error("rank " + std::to_string(o.rank) + " is not in 0.." + std::to_string(o.world_size - 1));
  std::unique_ptr<DataParallel> dp(new DataParallel(o));
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout);
  const std::string where = o.rendezvous_file.empty()
                                ? "the rendezvous store at " + o.master_addr + ":" + std::to_string(o.master_port)
                                : "the rendezvous file " + o.rendezvous_file;
  try {
    if (o.rendezvous_file.empty()) {
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(o.master_port);
      so.isServer = o.rank == 0;
      so.numWorkers = static_cast<size_t>(o.world_size);
      so.waitWorkers = true;
      so.timeout = timeout;
      dp->store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    } else {
      dp->store_ = c10::make_intrusive<c10d::FileStore>(o.rendezvous_file, o.world_size);
      dp->store_->setTimeout(timeout);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(o.rank) + " could not reach " + where + " within " +
                             std::to_string(o.timeout.count()) + " s: " + what_of(e));
  }
  try {
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    go->devices.push_back(gloo_device(o));
    go->threads = 2;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", dp->store_);
    dp->pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, go);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(o.rank) + " could not form the Gloo group of " +
                             std::to_string(o.world_size) + " ranks through " + where + ": " + what_of(e));
  }
  return dp;
}

void DataParallel::check_same(const std::string& what, const std::string& fingerprint) {
  const std::string mine = "check/" + what + "/" + std::to_string(o_.rank);
  store_->set(mine, to_bytes(fingerprint));
  const std::string root = from_bytes(store_->get("check/" + what + "/0"));
  std::string diff;
  if (root != fingerprint) {
    const auto a = fields(root), b = fields(fingerprint);
    for (const auto& [k, v] : a) {
      const auto it = b.find(k);
      if (it == b.end() || it->second != v)
        diff += " " + k + " (rank 0: " + v + ", rank " + std::to_string(o_.rank) + ": " +
                (it == b.end() ? "-" : it->second) + ")";
    }
  }
  const int64_t bad = sum(root == fingerprint ? 0 : 1);
  if (bad > 0) {
    throw std::runtime_error(diff.empty() ? std::to_string(bad) + " rank(s) started with " + what +
                                                " other than rank 0's; every rank stops"
                                          : "this rank's " + what + " differ from rank 0's:" + diff);
  }
}

std::string DataParallel::share(const std::string& key, const std::string& bytes) {
  const std::string k = "share/" + std::to_string(generation_++) + "/" + key;
  if (o_.rank == 0) store_->set(k, to_bytes(bytes));
  return o_.rank == 0 ? bytes : from_bytes(store_->get(k));
}

std::vector<std::string> DataParallel::gather(const std::string& key, const std::string& bytes) {
  const std::string k = "gather/" + std::to_string(generation_++) + "/" + key + "/";
  if (o_.rank != 0) {
    store_->set(k + std::to_string(o_.rank), to_bytes(bytes));
    return {};
  }
  std::vector<std::string> out{bytes};
  for (int r = 1; r < o_.world_size; ++r) {
    out.push_back(from_bytes(store_->get(k + std::to_string(r))));
    store_->deleteKey(k + std::to_string(r));
  }
  return out;
}

int64_t DataParallel::sum(int64_t value) {
  std::vector<torch::Tensor> t{torch::tensor({value}, torch::kInt64)};
  pg_->allreduce(t)->wait();
  return t[0].item<int64_t>();
}

int64_t DataParallel::max(int64_t value) {
  std::vector<torch::Tensor> t{torch::tensor({value}, torch::kInt64)};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  pg_->allreduce(t, o)->wait();
  return t[0].item<int64_t>();
}

void DataParallel::barrier() {
  pg_->barrier()->wait();
}

void DataParallel::broadcast(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> flat{torch::cat([&] {
    std::vector<torch::Tensor> v;
    for (const auto& p : params) v.push_back(p.detach().flatten());
    return v;
  }())};
  pg_->broadcast(flat)->wait();
  int64_t off = 0;
  for (const auto& p : params) {
    p.detach().copy_(flat[0].narrow(0, off, p.numel()).view_as(p));
    off += p.numel();
  }
}

void DataParallel::attach(const std::vector<torch::Tensor>& params) {
  params_ = params;
  bucket_of_.assign(params.size(), 0);
  offset_of_.assign(params.size(), 0);
  arrived_.assign(params.size(), false);
  buckets_.clear();
  grad_bytes_ = 0;
  size_t bytes = 0;
  for (size_t i = params.size(); i-- > 0;) {  // last parameters first
    const size_t b = static_cast<size_t>(params[i].numel()) * sizeof(float);
    if (buckets_.empty() || (bytes + b > o_.bucket_bytes && !buckets_.back().params.empty())) {
      buckets_.emplace_back();
      bytes = 0;
    }
    bucket_of_[i] = buckets_.size() - 1;
    offset_of_[i] = bytes / sizeof(float);
    buckets_.back().params.push_back(i);
    bytes += b;
    grad_bytes_ += b;
  }
  for (auto& bk : buckets_) {
    int64_t n = 0;
    for (size_t i : bk.params) n += params[i].numel();
    bk.flat = torch::zeros({n}, torch::kFloat32);
    bk.pending = bk.params.size();
  }
  for (size_t i = 0; i < params.size(); ++i) params_[i].register_hook([this, i](torch::Tensor g) { on_grad(i, g); });
}

void DataParallel::on_grad(size_t i, const torch::Tensor& g) {
  Bucket& b = buckets_[bucket_of_[i]];
  b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), params_[i].numel()).copy_(g.detach().flatten());
  if (!arrived_[i]) {
    arrived_[i] = true;
    --b.pending;
  }
  launch_ready();
}

// Buckets start strictly in index order, so that every rank issues the same
// sequence of collectives (Gloo pairs them by order).
void DataParallel::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    std::vector<torch::Tensor> t{buckets_[next_launch_].flat};
    buckets_[next_launch_].work = pg_->allreduce(t);
    ++next_launch_;
  }
}

double DataParallel::time_allreduce(int repeats) {
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& b : buckets_) {
      std::vector<torch::Tensor> t{b.flat.clone()};
      pg_->allreduce(t)->wait();
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms.empty() ? 0 : ms[ms.size() / 2];
}

void DataParallel::finish_gradients() {
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < params_.size(); ++i) {  // a parameter without a gradient contributes zeros
    if (arrived_[i]) continue;
    Bucket& b = buckets_[bucket_of_[i]];
    b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), params_[i].numel()).zero_();
    arrived_[i] = true;
    --b.pending;
  }
  launch_ready();
  for (auto& b : buckets_) b.work->wait();
  torch::NoGradGuard ng;
  const float inv = 1.0f / static_cast<float>(o_.world_size);
  for (size_t i = 0; i < params_.size(); ++i) {
    Bucket& b = buckets_[bucket_of_[i]];
    auto avg = b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), params_[i].numel()).view_as(params_[i]) * inv;
    auto& grad = params_[i].mutable_grad();
    if (grad.defined())
      grad.copy_(avg);
    else
      grad = avg;
  }
  for (auto& b : buckets_) {
    b.work.reset();
    b.pending = b.params.size();
  }
  std::fill(arrived_.begin(), arrived_.end(), false);
  next_launch_ = 0;
  last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace qisa::train
