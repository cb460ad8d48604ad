// Data-parallel training on LibTorch's c10d, the engine of PyTorch's own
// DDP: a rendezvous store (TCPStore at the master's address, or FileStore on
// a shared file system), a Gloo process group, parameters broadcast from
// rank 0, and gradients averaged with all-reduce in buckets launched from
// autograd hooks while the backward pass is still running. docs/distributed.md.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace c10d {
class ProcessGroupGloo;
class Store;
class Work;
}  // namespace c10d

namespace qisa::train {

struct DistOptions {
  int world_size = 1;
  int rank = 0;
  std::string master_addr = "127.0.0.1";  // TCPStore: rank 0 serves it
  int master_port = 29500;
  std::string rendezvous_file;  // FileStore instead, when set
  std::chrono::seconds timeout{300};
  size_t bucket_bytes = size_t{4} << 20;  // gradient bytes per all-reduce
};

class DataParallel {
 public:
  // Rendezvous and process group; throws std::runtime_error with a message
  // saying what could not be reached within the timeout.
  static std::unique_ptr<DataParallel> connect(const DistOptions& o);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return o_.rank; }
  int world_size() const { return o_.world_size; }

  // `fingerprint` is "key=value" lines; every rank throws, naming the keys
  // that differ, unless all ranks hold rank 0's.
  void check_same(const std::string& what, const std::string& fingerprint);

  // Rank 0's bytes on every rank (through the store).
  std::string share(const std::string& key, const std::string& bytes);
  // Every rank's bytes on rank 0 (empty elsewhere).
  std::vector<std::string> gather(const std::string& key, const std::string& bytes);
  // The sum / the largest of `value` over all ranks.
  int64_t sum(int64_t value);
  int64_t max(int64_t value);
  void barrier();

  // Rank 0's values into `params` on every rank.
  void broadcast(const std::vector<torch::Tensor>& params);

  // Buckets the parameters (in reverse order: gradients arrive last layer
  // first) and hooks each: when a bucket's gradients are all in, its
  // all-reduce starts while autograd continues.
  void attach(const std::vector<torch::Tensor>& params);
  // After backward(): launches what is left, waits, and leaves every
  // parameter's .grad the mean over the ranks.
  void finish_gradients();

  // Per finish_gradients(): seconds spent waiting for all-reduces after
  // backward returned, and gradient bytes each rank contributed.
  double last_wait_seconds() const { return last_wait_s_; }
  // Median milliseconds of a synchronous all-reduce of every gradient bucket
  // (what a step would wait without overlap); all ranks must call it.
  double time_allreduce(int repeats);
  size_t gradient_bytes() const { return grad_bytes_; }

 private:
  explicit DataParallel(const DistOptions& o);
  void on_grad(size_t param, const torch::Tensor& g);
  void launch_ready();

  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> params;
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  DistOptions o_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_, offset_of_;
  std::vector<bool> arrived_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  size_t grad_bytes_ = 0;
  double last_wait_s_ = 0;
  int64_t generation_ = 0;  // store keys of successive share/gather calls differ
};

}  // namespace qisa::train
