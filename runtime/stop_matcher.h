// Stop strings over streamed text: holds back output that may be the start
// of a stop string and finds a complete one. Header-only so that programs
// that stream text through the public API (tools/qisa-server) stop exactly
// as qisa_generate does.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace qisa {

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds text; returns true when a stop string is complete (the text before
  // it has been emitted, the rest dropped). `emit` receives the text that
  // is now certainly output.
  template <class Emit>
  bool add(const std::string& piece, Emit&& emit) {
    held_ += piece;
    size_t cut = std::string::npos;
    for (const auto& s : stops_) {
      const size_t at = held_.find(s);
      if (at != std::string::npos && at < cut) cut = at;
    }
    if (cut != std::string::npos) {
      if (cut > 0) emit(held_.substr(0, cut));
      held_.clear();
      return true;
    }
    // Keep the longest tail that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const auto& s : stops_) {
      for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
        if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
      }
    }
    if (held_.size() > keep) {
      emit(held_.substr(0, held_.size() - keep));
      held_.erase(0, held_.size() - keep);
    }
    return false;
  }

  // Emits what is held back (generation ended without a stop string).
  template <class Emit>
  void finish(Emit&& emit) {
    if (!held_.empty()) emit(held_);
    held_.clear();
  }

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace qisa
