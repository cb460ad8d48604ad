#include "torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace qisa::train {

namespace {

[[noreturn]] void bad(const std::string& why) {
  throw std::runtime_error(why);
}

struct Value;
using Ptr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor } kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s, name;                             // Str; Global: module and name; Storage: key
  std::vector<Ptr> items;                          // Tuple, List
  std::vector<std::pair<Ptr, Ptr>> entries;        // Dict, in insertion order
  c10::ScalarType dtype = c10::ScalarType::Float;  // Storage
  torch::Tensor tensor;                            // Tensor
};

Ptr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

std::optional<c10::ScalarType> storage_dtype(const std::string& name) {
  static const std::pair<const char*, c10::ScalarType> kTypes[] = {
      {"FloatStorage", c10::ScalarType::Float},
      {"DoubleStorage", c10::ScalarType::Double},
      {"HalfStorage", c10::ScalarType::Half},
      {"BFloat16Storage", c10::ScalarType::BFloat16},
      {"ComplexFloatStorage", c10::ScalarType::ComplexFloat},
      {"ComplexDoubleStorage", c10::ScalarType::ComplexDouble},
      {"LongStorage", c10::ScalarType::Long},
      {"IntStorage", c10::ScalarType::Int},
      {"ShortStorage", c10::ScalarType::Short},
      {"CharStorage", c10::ScalarType::Char},
      {"ByteStorage", c10::ScalarType::Byte},
      {"BoolStorage", c10::ScalarType::Bool}};
  for (const auto& [n, t] : kTypes)
    if (name == n) return t;
  return std::nullopt;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, caffe2::serialize::PyTorchStreamReader& zip)
      : p_(data), end_(data + size), zip_(zip) {}

  Ptr run() {
    for (;;) {
      const auto op = static_cast<uint8_t>(byte());
      switch (op) {
        case 0x80: byte(); break;  // PROTO
        case '.':                  // STOP
          if (stack_.size() != 1) bad("pickle ends with " + std::to_string(stack_.size()) + " values on the stack");
          return stack_.back();
        case 'c': {  // GLOBAL "module\nname\n"
          auto g = make(Value::Kind::Global);
          g->s = line();
          g->name = line();
          push(g);
          break;
        }
        case 'q': memo(static_cast<uint8_t>(byte())); break;          // BINPUT
        case 'r': memo(u32()); break;                                 // LONG_BINPUT
        case 'h': push(recall(static_cast<uint8_t>(byte()))); break;  // BINGET
        case 'j': push(recall(u32())); break;                         // LONG_BINGET
        case '(': marks_.push_back(stack_.size()); break;
        case ')': push(make(Value::Kind::Tuple)); break;
        case 't': {
          auto t = make(Value::Kind::Tuple);
          t->items = pop_to_mark();
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84u;
          if (stack_.size() < n) bad("pickle: TUPLE" + std::to_string(n) + " on a short stack");
          auto t = make(Value::Kind::Tuple);
          t->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case '}': push(make(Value::Kind::Dict)); break;
        case ']': push(make(Value::Kind::List)); break;
        case 's': {  // SETITEM
          auto v = pop(), k = pop();
          top(Value::Kind::Dict)->entries.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          if (items.size() % 2) bad("pickle: SETITEMS with an odd count");
          auto d = top(Value::Kind::Dict);
          for (size_t i = 0; i < items.size(); i += 2) d->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          auto v = pop();
          top(Value::Kind::List)->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark();
          auto l = top(Value::Kind::List);
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 'K': push(integer(static_cast<uint8_t>(byte()))); break;
        case 'M': {
          const auto lo = static_cast<uint8_t>(byte()), hi = static_cast<uint8_t>(byte());
          push(integer(lo | (hi << 8)));
          break;
        }
        case 'J': push(integer(static_cast<int32_t>(u32()))); break;
        case 0x8a: {  // LONG1: n little-endian two's-complement bytes
          const auto n = static_cast<uint8_t>(byte());
          if (n > 8) bad("pickle: integer wider than 64 bits");
          uint64_t v = 0;
          for (uint8_t b = 0; b < n; ++b) v |= static_cast<uint64_t>(static_cast<uint8_t>(byte())) << (8 * b);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          push(integer(static_cast<int64_t>(v)));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          uint64_t bits = 0;
          for (int b = 0; b < 8; ++b) bits = (bits << 8) | static_cast<uint8_t>(byte());
          auto v = make(Value::Kind::Float);
          std::memcpy(&v->f, &bits, sizeof bits);
          push(v);
          break;
        }
        case 'X': push(string(u32())); break;                          // BINUNICODE
        case 0x8c: push(string(static_cast<uint8_t>(byte()))); break;  // SHORT_BINUNICODE
        case 'U': push(string(static_cast<uint8_t>(byte()))); break;   // SHORT_BINSTRING
        case 'T': push(string(u32())); break;                          // BINSTRING
        case 'N': push(make(Value::Kind::None)); break;
        case 0x88:
        case 0x89: {
          auto v = make(Value::Kind::Bool);
          v->i = op == 0x88;
          push(v);
          break;
        }
        case 'Q': push(storage(pop())); break;  // BINPERSID
        case 'R': {                             // REDUCE
          auto args = pop(), fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 'b': {  // BUILD: a state_dict's _metadata (version numbers) on its OrderedDict
          pop();
          top(Value::Kind::Dict);
          break;
        }
        case 0x95: skip(8); break;                                    // FRAME (protocol 4)
        case 0x94: memo(static_cast<uint32_t>(memo_.size())); break;  // MEMOIZE
        default: {
          char buf[64];
          std::snprintf(buf, sizeof buf, "pickle: opcode 0x%02x is not one torch.save uses for a state_dict", op);
          bad(buf);
        }
      }
    }
  }

 private:
  char byte() {
    if (p_ >= end_) bad("pickle: truncated");
    return *p_++;
  }
  void skip(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) bad("pickle: truncated");
    p_ += n;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int b = 0; b < 4; ++b) v |= static_cast<uint32_t>(static_cast<uint8_t>(byte())) << (8 * b);
    return v;
  }
  std::string line() {
    std::string s;
    for (char c; (c = byte()) != '\n';) s += c;
    return s;
  }
  Ptr string(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) bad("pickle: truncated string");
    auto v = make(Value::Kind::Str);
    v->s.assign(p_, n);
    p_ += n;
    return v;
  }
  static Ptr integer(int64_t i) {
    auto v = make(Value::Kind::Int);
    v->i = i;
    return v;
  }
  void push(Ptr v) { stack_.push_back(std::move(v)); }
  Ptr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("pickle: pop from an empty stack");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Ptr top(Value::Kind k) {
    if (stack_.empty() || stack_.back()->kind != k) bad("pickle: unexpected value for a dict or list operation");
    return stack_.back();
  }
  std::vector<Ptr> pop_to_mark() {
    if (marks_.empty()) bad("pickle: no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ptr> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo(uint32_t idx) {
    if (stack_.empty()) bad("pickle: PUT on an empty stack");
    if (idx > (1u << 24)) bad("pickle: memo index out of range");
    if (memo_.size() <= idx) memo_.resize(idx + 1);
    memo_[idx] = stack_.back();
  }
  Ptr recall(uint32_t idx) {
    if (idx >= memo_.size() || !memo_[idx]) bad("pickle: GET of an unset memo entry");
    return memo_[idx];
  }

  // ('storage', torch.<Type>Storage, key, location, numel)
  Ptr storage(const Ptr& pid) {
    if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != Value::Kind::Global || pid->items[2]->kind != Value::Kind::Str ||
        pid->items[4]->kind != Value::Kind::Int)
      bad("pickle: a persistent id that is not a torch storage");
    const auto dt = storage_dtype(pid->items[1]->name);
    if (!dt) bad("pickle: storage type " + pid->items[1]->name + " is not supported");
    auto v = make(Value::Kind::Storage);
    v->dtype = *dt;
    v->s = pid->items[2]->s;
    v->i = pid->items[4]->i;
    return v;
  }

  torch::Tensor storage_tensor(const Value& st) {
    const std::string key = st.s;
    if (auto it = storages_.find(key); it != storages_.end()) return it->second;
    const std::string rec = "data/" + key;
    if (!zip_.hasRecord(rec)) bad("checkpoint: missing record " + rec);
    auto [ptr, size] = zip_.getRecord(rec);
    const auto elem = static_cast<size_t>(c10::elementSize(st.dtype));
    if (st.i < 0 || size / elem < static_cast<size_t>(st.i))
      bad("checkpoint: record " + rec + " has " + std::to_string(size) + " bytes, fewer than its " +
          std::to_string(st.i) + " elements need");
    auto t = torch::empty({st.i}, torch::TensorOptions().dtype(st.dtype));
    if (st.i > 0) std::memcpy(t.data_ptr(), ptr.get(), static_cast<size_t>(st.i) * elem);
    storages_[key] = t;
    return t;
  }

  static std::vector<int64_t> ints(const Ptr& t, const char* what) {
    if (t->kind != Value::Kind::Tuple) bad(std::string("pickle: tensor ") + what + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& v : t->items) {
      if (v->kind != Value::Kind::Int) bad(std::string("pickle: tensor ") + what + " holds a non-integer");
      out.push_back(v->i);
    }
    return out;
  }

  Ptr reduce(const Ptr& fn, const Ptr& args) {
    if (fn->kind != Value::Kind::Global || args->kind != Value::Kind::Tuple) bad("pickle: REDUCE of a non-global");
    const std::string name = fn->s + "." + fn->name;
    if (name == "collections.OrderedDict") return make(Value::Kind::Dict);
    if (name == "torch.jit._pickle.restore_type_tag") {  // LibTorch's pickle_save: (value, "Dict[str, Tensor]")
      if (args->items.empty()) bad("pickle: bad restore_type_tag");
      return args->items[0];
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor) bad("pickle: bad _rebuild_parameter");
      return args->items[0];
    }
    if (name != "torch._utils._rebuild_tensor_v2") bad("checkpoint calls " + name + ", which a state_dict does not");
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->items.size() < 4 || args->items[0]->kind != Value::Kind::Storage ||
        args->items[1]->kind != Value::Kind::Int)
      bad("pickle: bad _rebuild_tensor_v2 arguments");
    const torch::Tensor st = storage_tensor(*args->items[0]);
    const int64_t offset = args->items[1]->i;
    const auto size = ints(args->items[2], "size"), stride = ints(args->items[3], "stride");
    if (size.size() != stride.size() || size.size() > 8) bad("pickle: tensor size and stride differ in rank");
    // Every element the view reads lies inside the storage.
    int64_t last = offset, numel = 1;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0 || size[d] > (int64_t{1} << 40) || stride[d] > (int64_t{1} << 40))
        bad("pickle: tensor size or stride out of range");
      numel *= size[d];
      if (numel > (int64_t{1} << 40)) bad("pickle: tensor too large");
      if (size[d] > 0) last += (size[d] - 1) * stride[d];
    }
    if (offset < 0 || (numel > 0 && last >= st.numel())) bad("checkpoint: a tensor reads past the end of its storage");
    auto v = make(Value::Kind::Tensor);
    v->tensor = numel == 0 ? torch::empty(size, st.options()) : st.as_strided(size, stride, offset).clone();
    return v;
  }

  const char* p_;
  const char* end_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  std::vector<Ptr> stack_, memo_;
  std::vector<size_t> marks_;
  std::map<std::string, torch::Tensor> storages_;
};

std::optional<std::map<std::string, torch::Tensor>> tensors_of(const Value& v) {
  if (v.kind != Value::Kind::Dict) return std::nullopt;
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, t] : v.entries) {
    if (k->kind != Value::Kind::Str || t->kind != Value::Kind::Tensor) return std::nullopt;
    out[k->s] = t->tensor;
  }
  return out;
}

}  // namespace

std::map<std::string, torch::Tensor> load_torch_state_dict(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  at::DataPtr pkl;
  size_t pkl_size = 0;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    if (!zip->hasRecord("data.pkl")) bad(path + " has no data.pkl: not a torch.save archive");
    std::tie(pkl, pkl_size) = zip->getRecord("data.pkl");
  } catch (const c10::Error& e) {
    bad(path +
        " is not a torch.save zip archive (PyTorch >= 1.6 writes one by default; re-save an older file with "
        "_use_new_zipfile_serialization=True): " +
        e.what_without_backtrace());
  }
  Ptr root;
  try {
    root = Unpickler(static_cast<const char*>(pkl.get()), pkl_size, *zip).run();
  } catch (const c10::Error& e) {
    bad(path + ": " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    bad(path + ": " + e.what());
  }
  if (auto sd = tensors_of(*root); sd && !sd->empty()) return *sd;
  if (root->kind == Value::Kind::Dict) {  // {"model_state_dict": {...}, "optimizer": ...}
    for (const char* key : {"state_dict", "model_state_dict", "model"}) {
      for (const auto& [k, v] : root->entries) {
        if (k->kind == Value::Kind::Str && k->s == key) {
          if (auto sd = tensors_of(*v); sd && !sd->empty()) return *sd;
        }
      }
    }
    bad(path +
        " holds a dict that is not a state_dict (name -> tensor) and has none under 'state_dict', "
        "'model_state_dict' or 'model'");
  }
  bad(path + " holds no state_dict (save model.state_dict(), not the model)");
}

}  // namespace qisa::train
