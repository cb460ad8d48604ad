#include "model_storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "error.h"

namespace qisa {
namespace {

class FileDescriptor {
 public:
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
  // such files are then refused as not regular. Reads of regular files
  // ignore the flag.
  explicit FileDescriptor(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)) {
    if (fd_ < 0) fail(QISA_ERR_IO, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
  }
  ~FileDescriptor() { ::close(fd_); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

  size_t regular_file_size(const std::string& path) const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(QISA_ERR_IO, "cannot stat '%s': %s", path.c_str(), std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(QISA_ERR_IO, "'%s' is not a regular file", path.c_str());
    return static_cast<size_t>(st.st_size);
  }

 private:
  int fd_;
};

class MappedFile final : public ModelStorage {
 public:
  explicit MappedFile(const std::string& path) {
    FileDescriptor fd(path);
    size_ = fd.regular_file_size(path);
    if (size_ == 0) fail(QISA_ERR_NOT_A_MODEL, "'%s' is empty", path.c_str());
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail(QISA_ERR_IO, "cannot map '%s': %s", path.c_str(), std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);
  }
  ~MappedFile() override { ::munmap(const_cast<uint8_t*>(data_), size_); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const override { return data_; }
  size_t size() const override { return size_; }
  bool is_mapped() const override { return true; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

class OwnedBuffer final : public ModelStorage {
 public:
  explicit OwnedBuffer(size_t size) : size_(size) {
    // Rounded up to the alignment, as aligned_alloc requires.
    const size_t rounded = (size + 63) / 64 * 64;
    bytes_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, rounded == 0 ? 64 : rounded)));
    if (!bytes_) fail(QISA_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes for the model", size);
  }
  uint8_t* mutable_data() { return bytes_.get(); }
  const uint8_t* data() const override { return bytes_.get(); }
  size_t size() const override { return size_; }

 private:
  std::unique_ptr<uint8_t, FreeDeleter> bytes_;
  size_t size_;
};

class BorrowedBuffer final : public ModelStorage {
 public:
  BorrowedBuffer(const void* data, size_t size) : data_(static_cast<const uint8_t*>(data)), size_(size) {}
  const uint8_t* data() const override { return data_; }
  size_t size() const override { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace

std::unique_ptr<ModelStorage> map_file(const std::string& path) {
  return std::make_unique<MappedFile>(path);
}

std::unique_ptr<ModelStorage> read_file(const std::string& path) {
  FileDescriptor fd(path);
  const size_t size = fd.regular_file_size(path);
  if (size == 0) fail(QISA_ERR_NOT_A_MODEL, "'%s' is empty", path.c_str());
  auto buf = std::make_unique<OwnedBuffer>(size);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.get(), buf->mutable_data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(QISA_ERR_IO, "cannot read '%s': %s", path.c_str(), n < 0 ? std::strerror(errno) : "short read");
    done += static_cast<size_t>(n);
  }
  return buf;
}

std::unique_ptr<ModelStorage> copy_buffer(const void* data, size_t size) {
  auto buf = std::make_unique<OwnedBuffer>(size);
  std::memcpy(buf->mutable_data(), data, size);
  return buf;
}

std::unique_ptr<ModelStorage> borrow_buffer(const void* data, size_t size) {
  return std::make_unique<BorrowedBuffer>(data, size);
}

}  // namespace qisa
