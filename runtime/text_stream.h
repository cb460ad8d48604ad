// Generated tokens' bytes -> the text a caller sees: whole UTF-8 characters
// (utf8_stream.h), cut before the first stop string (stop_matcher.h). One
// rule for qisa_generate and tools/qisa-server. Header-only.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stop_matcher.h"
#include "utf8_stream.h"

namespace qisa {

class TextStream {
 public:
  TextStream() = default;
  explicit TextStream(std::vector<std::string> stops) : matcher_(std::move(stops)) {}

  // Adds a token's bytes; true when a stop string is complete (the text
  // before it has been emitted, the rest dropped).
  template <class Emit>
  bool add(std::string_view bytes, Emit&& emit) {
    bool stop = false;
    utf8_.add(bytes, [&](const std::string& text) { stop = matcher_.add(text, emit); });
    return stop;
  }

  // The end of generation: emits what is held; true if that completed a
  // stop string.
  template <class Emit>
  bool finish(Emit&& emit) {
    bool stop = false;
    utf8_.finish([&](const std::string& text) { stop = matcher_.add(text, emit); });
    if (!stop) matcher_.finish(emit);
    return stop;
  }

 private:
  Utf8Stream utf8_;
  StopMatcher matcher_;
};

}  // namespace qisa
