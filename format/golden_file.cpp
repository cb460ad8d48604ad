#include "golden_file.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace qisa::writer {

void write_golden(const Golden& g, const std::string& path) {
  if (g.logits.size() != g.tokens.size() * g.vocab) throw std::invalid_argument("golden: logits size mismatch");
  std::ofstream out(path, std::ios::binary);
  const uint32_t head[4] = {0x444c4751u /* "QGLD" */, 1u, static_cast<uint32_t>(g.tokens.size()), g.vocab};
  out.write(reinterpret_cast<const char*>(head), sizeof head);
  out.write(reinterpret_cast<const char*>(g.tokens.data()), static_cast<std::streamsize>(g.tokens.size() * 4));
  out.write(reinterpret_cast<const char*>(g.logits.data()), static_cast<std::streamsize>(g.logits.size() * 4));
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

Golden read_golden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  uint32_t head[4];
  if (!in.read(reinterpret_cast<char*>(head), sizeof head) || head[0] != 0x444c4751u || head[1] != 1u ||
      head[2] > (1u << 20) || head[3] > (1u << 24)) {
    throw std::runtime_error("'" + path + "' is not a golden-logits file");
  }
  Golden g;
  g.tokens.resize(head[2]);
  g.vocab = head[3];
  g.logits.resize(static_cast<size_t>(head[2]) * head[3]);
  in.read(reinterpret_cast<char*>(g.tokens.data()), static_cast<std::streamsize>(g.tokens.size() * 4));
  in.read(reinterpret_cast<char*>(g.logits.data()), static_cast<std::streamsize>(g.logits.size() * 4));
  if (!in) throw std::runtime_error("'" + path + "' is truncated");
  return g;
}

}  // namespace qisa::writer
