#include "checkpoint.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "text_data.h"

namespace qisa::train {

namespace fs = std::filesystem;

namespace {

std::string join_code_points(const std::vector<std::string>& vocab) {
  std::string s;
  for (const auto& p : vocab) s += std::to_string(utf8_code_points(p)[0]) + " ";
  return s;
}

std::string join_hex(const std::vector<std::string>& items) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (const auto& item : items) {
    for (unsigned char c : item) {
      s += digits[c >> 4];
      s += digits[c & 15];
    }
    s += ' ';
  }
  return s;
}

std::vector<std::string> split_hex(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    if (word.size() % 2) throw std::runtime_error("checkpoint state: bad hex item");
    std::string item;
    for (size_t i = 0; i < word.size(); i += 2) item += static_cast<char>(std::stoi(word.substr(i, 2), nullptr, 16));
    out.push_back(item);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("checkpoint file '" + path + "' is missing");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write '" + path + "'");
}

std::string rng_file(int rank) {
  return rank == 0 ? "torch_rng.pt" : "torch_rng.rank" + std::to_string(rank) + ".pt";
}

}  // namespace

std::string torch_rng_bytes() {
  std::ostringstream out;
  torch::save(at::detail::getDefaultCPUGenerator().get_state(), out);
  return out.str();
}

void write_checkpoint(const std::string& dir, Gpt& model, torch::optim::AdamW& opt, const CheckpointState& st,
                      const std::vector<std::string>& torch_rng) {
  fs::create_directories(dir);
  torch::save(model, dir + "/model.pt");
  torch::save(opt, dir + "/optimizer.pt");
  for (size_t r = 0; r < torch_rng.size(); ++r) write_bytes(dir + "/" + rng_file(static_cast<int>(r)), torch_rng[r]);
  std::ofstream f(dir + "/state.txt.tmp");
  const ModelOptions& m = st.model;
  f << "step " << st.step << "\nvocab_size " << m.vocab_size << "\nn_ctx " << m.n_ctx << "\nn_embd " << m.n_embd
    << "\nn_layer " << m.n_layer << "\nn_head " << m.n_head << "\nattention " << attention_name(m.attention)
    << "\ndropout " << m.dropout << "\nreference_transpose " << m.reference_transpose << "\nraw_encoding "
    << m.raw_encoding << "\npauli_seed " << m.pauli_seed << "\nqsat_top_k " << m.qsat_top_k << "\nqsat_window "
    << m.qsat_window << "\nsplit " << st.split << "\ndata_sha256 " << st.data_sha256 << "\nworld_size " << st.world_size
    << "\nbatch " << st.batch << "\nrng " << st.rng << "\n";
  if (st.bpe)  // pieces and merges as hex: they hold any bytes, and merges hold spaces
    f << "tokenizer bpe\npieces_hex " << join_hex(st.vocab) << "\nmerges_hex " << join_hex(st.merges) << "\n";
  else
    f << "vocab " << join_code_points(st.vocab) << "\n";
  f.close();
  fs::rename(dir + "/state.txt.tmp", dir + "/state.txt");
}

CheckpointFiles read_checkpoint_files(const std::string& dir) {
  if (!fs::is_regular_file(dir + "/state.txt"))
    throw std::runtime_error("no checkpoint at '" + dir + "' (state.txt missing)");
  CheckpointFiles f;
  f.state = slurp(dir + "/state.txt");
  const CheckpointState st = parse_checkpoint_state(f.state);
  f.model = slurp(dir + "/model.pt");
  f.optimizer = slurp(dir + "/optimizer.pt");
  for (int r = 0; r < st.world_size; ++r) f.torch_rng.push_back(slurp(dir + "/" + rng_file(r)));
  return f;
}

CheckpointState parse_checkpoint_state(const std::string& text) {
  CheckpointState st;
  std::istringstream f(text);
  std::string line;
  while (std::getline(f, line)) {
    const auto sp = line.find(' ');
    const std::string key = line.substr(0, sp), value = sp == std::string::npos ? "" : line.substr(sp + 1);
    ModelOptions& m = st.model;
    if (key == "step")
      st.step = std::stoll(value);
    else if (key == "vocab_size")
      m.vocab_size = std::stoll(value);
    else if (key == "n_ctx")
      m.n_ctx = std::stoll(value);
    else if (key == "n_embd")
      m.n_embd = std::stoll(value);
    else if (key == "n_layer")
      m.n_layer = std::stoll(value);
    else if (key == "n_head")
      m.n_head = std::stoll(value);
    else if (key == "attention")
      m.attention = parse_attention(value);
    else if (key == "dropout")
      m.dropout = std::stod(value);
    else if (key == "reference_transpose")
      m.reference_transpose = value == "1";
    else if (key == "qsat_top_k")
      m.qsat_top_k = std::stoll(value);
    else if (key == "qsat_window")
      m.qsat_window = std::stoll(value);
    else if (key == "raw_encoding")
      m.raw_encoding = value == "1";
    else if (key == "pauli_seed")
      m.pauli_seed = std::stoull(value);
    else if (key == "split")
      st.split = value;
    else if (key == "data_sha256")
      st.data_sha256 = value;
    else if (key == "world_size")
      st.world_size = std::stoi(value);
    else if (key == "batch")
      st.batch = std::stoll(value);
    else if (key == "rng")
      st.rng = value;
    else if (key == "tokenizer")
      st.bpe = value == "bpe";
    else if (key == "pieces_hex")
      st.vocab = split_hex(value);
    else if (key == "merges_hex")
      st.merges = split_hex(value);
    else if (key == "vocab") {
      std::istringstream in(value);
      uint32_t cp;
      while (in >> cp) st.vocab.push_back(utf8_encode(cp));
    }
  }
  if (st.world_size < 1) throw std::runtime_error("checkpoint state: world_size " + std::to_string(st.world_size));
  return st;
}

void load_checkpoint(const CheckpointFiles& files, int rank, Gpt& model, torch::optim::AdamW* opt) {
  std::istringstream m(files.model);
  torch::load(model, m);
  if (opt) {
    std::istringstream o(files.optimizer);
    torch::load(*opt, o);
  }
  if (rank >= static_cast<int>(files.torch_rng.size()))
    throw std::runtime_error("checkpoint has no RNG state for rank " + std::to_string(rank));
  std::istringstream r(files.torch_rng[static_cast<size_t>(rank)]);
  torch::Tensor rng;
  torch::load(rng, r);
  auto gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(rng);
}

}  // namespace qisa::train
