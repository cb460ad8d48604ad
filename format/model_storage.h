// Where a model's bytes live: a read-only file mapping, an owned aligned
// copy, or the caller's buffer used in place. RAII: the bytes go away with
// the storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace qisa {

class ModelStorage {
 public:
  virtual ~ModelStorage() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
  // True when the bytes are a mapping of the file (zero-copy).
  virtual bool is_mapped() const { return false; }
};

// mmap()s the file read-only. Throws qisa::Error (QISA_ERR_IO).
std::unique_ptr<ModelStorage> map_file(const std::string& path);
// Reads the whole file into an aligned buffer. Throws qisa::Error.
std::unique_ptr<ModelStorage> read_file(const std::string& path);
// Copies `size` bytes into a 64-byte aligned buffer. Throws qisa::Error.
std::unique_ptr<ModelStorage> copy_buffer(const void* data, size_t size);
// Uses the caller's bytes in place.
std::unique_ptr<ModelStorage> borrow_buffer(const void* data, size_t size);

}  // namespace qisa
