// Version queries and status names.
#include "attention_kind.h"
#include "error.h"
#include "qisa.h"

extern "C" {

const char* qisa_version(void) {
  return QISA_VERSION_STRING;
}

int qisa_version_number(void) {
  return QISA_VERSION_NUMBER;
}

const char* qisa_attention_kind_string(qisa_attention_kind kind) {
  const qisa::AttentionKind* k = qisa::find_attention_kind(static_cast<int>(qisa::enum_bits(kind)));
  return k ? k->name : "unknown";
}

const char* qisa_status_string(qisa_status status) {
  switch (qisa::enum_bits(status)) {
    case QISA_OK: return "ok";
    case QISA_ERR_INVALID_ARGUMENT: return "invalid argument";
    case QISA_ERR_OUT_OF_MEMORY: return "out of memory";
    case QISA_ERR_IO: return "I/O error";
    case QISA_ERR_NOT_A_MODEL: return "not a qisa model file";
    case QISA_ERR_VERSION: return "unsupported format version";
    case QISA_ERR_CORRUPT: return "corrupt model file";
    case QISA_ERR_INVALID_MODEL: return "invalid model";
    case QISA_ERR_NUMERIC: return "numerically invalid model";
    case QISA_ERR_UNSUPPORTED: return "unsupported";
    case QISA_ERR_OUT_OF_RANGE: return "out of range";
    case QISA_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case QISA_ERR_INTERNAL: return "internal error";
    case QISA_ERR_UNKNOWN_CHARACTER: return "unknown character";
    case QISA_ERR_CONTEXT_FULL: return "context full";
    case QISA_ERR_NOT_CAUSAL: return "model is not causal";
    case QISA_ERR_BACKEND: return "backend error";
  }
  return "unknown status";
}

}  // extern "C"
