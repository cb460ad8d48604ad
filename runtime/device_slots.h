// Per-model slots for weights a backend uploads to a device, keyed by the
// backend's choice (e.g. "<backend>/unitary"), shared by every context of that
// model and freed with the last of them. Lives in the model handle: loading
// stays immutable, uploading happens on first use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace qisa {

class DeviceSlots {
 public:
  // The weights in slot `key`, made by make() (a shared_ptr<T>) when none
  // are alive. Any thread.
  template <class T, class Make>
  std::shared_ptr<T> get(std::string_view key, Make&& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::weak_ptr<void>& slot = slots_[std::string(key)];
    std::shared_ptr<T> p = std::static_pointer_cast<T>(slot.lock());
    if (!p) {
      p = make();
      slot = p;
    }
    return p;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<void>> slots_;
};

}  // namespace qisa
