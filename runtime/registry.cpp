#include "registry.h"

#include <algorithm>
#include <vector>

#include "error.h"

namespace qisa {

// Each backend folder defines its row (e.g. kCpuBackend in backends/cpu);
// CMake lists the rows of the folders this build compiled.
#define QISA_BACKEND_ENTRY(name) extern const BackendEntry name;
#include "backend_list.inc"
#undef QISA_BACKEND_ENTRY

namespace {

const BackendEntry* const kEntries[] = {
#define QISA_BACKEND_ENTRY(name) &name,
#include "backend_list.inc"
#undef QISA_BACKEND_ENTRY
};

// A usable row's backend; info defaults to the row's name.
std::unique_ptr<Backend> make(const BackendEntry& e, const Model& model, DeviceSlots& slots,
                              const BackendOptions& options, std::string* info) {
  std::unique_ptr<Backend> b = e.create(model, slots, options, info);
  if (info->empty()) *info = e.name;
  return b;
}

}  // namespace

std::span<const BackendEntry* const> backend_entries() {
  return kEntries;
}

ChosenBackend choose_backend(const Model& model, DeviceSlots& slots, const qisa_context_params& p,
                             const BackendOptions& options) {
  std::vector<const BackendEntry*> rows;  // this engine's, best first
  for (const BackendEntry* e : kEntries)
    if (e->engine == p.engine) rows.push_back(e);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const BackendEntry* a, const BackendEntry* b) { return a->priority > b->priority; });
  const char* engine = p.engine == QISA_ENGINE_REFERENCE ? "reference" : "fast";
  ChosenBackend out;
  if (p.backend != QISA_BACKEND_AUTO) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const BackendEntry* e) { return e->backend == p.backend; });
    if (it == rows.end()) {
      std::string where;
      for (const BackendEntry* e : rows) {
        if (!where.empty()) where += " or ";
        where += e->name;
      }
      fail(QISA_ERR_INVALID_ARGUMENT, "the %s engine runs on %s; use backend %s (or auto) with it", engine,
           where.c_str(), rows.empty() ? "auto" : rows.front()->name);
    }
    std::string why;
    if (!(*it)->usable(&why)) fail(QISA_ERR_BACKEND, "%s", why.c_str());
    out.kind = (*it)->backend;
    out.backend = make(**it, model, slots, options, &out.info);
    return out;
  }
  std::string skipped;  // why the better rows were passed over
  for (const BackendEntry* e : rows) {
    std::string why;
    if (!e->usable(&why)) {
      if (!skipped.empty()) skipped += "; ";
      skipped += why;
      continue;
    }
    out.kind = e->backend;
    out.backend = make(*e, model, slots, options, &out.info);
    if (!skipped.empty()) out.info = std::string(e->name) + " (auto: " + skipped + ")";
    return out;
  }
  fail(QISA_ERR_BACKEND, "no backend of the %s engine is usable here: %s", engine, skipped.c_str());
}

}  // namespace qisa
