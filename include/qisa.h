/*
 * qisa.h - the public C API of libqisa.
 *
 * libqisa runs GPT-1-style language models whose attention is
 * quantum-inspired self-attention (QISA), stored in one `.qisa` file.
 *
 * Conventions
 *  - Plain C99; every object is an opaque handle.
 *  - Every call that can fail returns a qisa_status. QISA_OK is 0.
 *  - Calls with no handle to hold a message (loading) take an optional
 *    caller buffer `errmsg`/`errmsg_size` that receives a NUL-terminated
 *    message naming what failed (may be NULL).
 *  - Params structs are filled by *_default_params() and passed by pointer.
 *    Their first field is `struct_size`: set by *_default_params() and
 *    checked by the library, so fields can be appended in later versions.
 *    Fields and enum values are only ever added at the end.
 *  - A model is immutable after loading and may be shared by any number of
 *    threads.
 */
#ifndef QISA_H
#define QISA_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(QISA_BUILDING_LIBRARY)
#define QISA_API __declspec(dllexport)
#else
#define QISA_API
#endif
#else
#define QISA_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ------------------------------------------------------------ */

#define QISA_VERSION_MAJOR 0
#define QISA_VERSION_MINOR 1
#define QISA_VERSION_PATCH 0
#define QISA_VERSION_STRING "0.1.0"
/* major * 10000 + minor * 100 + patch */
#define QISA_VERSION_NUMBER (QISA_VERSION_MAJOR * 10000 + QISA_VERSION_MINOR * 100 + QISA_VERSION_PATCH)

/* Highest model-file format version this library reads (major.minor).
 * Files with a newer major are refused; newer minors are accepted. */
#define QISA_FORMAT_VERSION_MAJOR 1
#define QISA_FORMAT_VERSION_MINOR 0

/* The library's version at run time, e.g. "0.1.0". */
QISA_API const char* qisa_version(void);
/* QISA_VERSION_NUMBER of the library at run time. */
QISA_API int qisa_version_number(void);

/* ---- status ------------------------------------------------------------- */

typedef enum qisa_status {
  QISA_OK = 0,
  QISA_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, bad parameter value      */
  QISA_ERR_OUT_OF_MEMORY = 2,
  QISA_ERR_IO = 3,            /* file cannot be opened, read or mapped  */
  QISA_ERR_NOT_A_MODEL = 4,   /* too small or wrong file identifier     */
  QISA_ERR_VERSION = 5,       /* format major newer than supported      */
  QISA_ERR_CORRUPT = 6,       /* structure fails verification           */
  QISA_ERR_INVALID_MODEL = 7, /* well-formed but inconsistent content   */
  QISA_ERR_NUMERIC = 8,       /* NaN/Inf, non-unitary U, U vs angles    */
  QISA_ERR_UNSUPPORTED = 9,   /* valid but not supported by this build  */
  QISA_ERR_OUT_OF_RANGE = 10, /* index, token id or position too large  */
  QISA_ERR_BUFFER_TOO_SMALL = 11,
  QISA_ERR_INTERNAL = 12
} qisa_status;

/* A static English name for a status, e.g. "corrupt model file". Never NULL. */
QISA_API const char* qisa_status_string(qisa_status status);

/* ---- enums describing a model ------------------------------------------- */

typedef enum qisa_attention_kind {
  QISA_ATTENTION_CSA = 0,     /* classical softmax(q.k * scale) attention */
  QISA_ATTENTION_QISA_V1 = 1, /* q, k: circuit + <Z0>; v: circuit + Paulis */
  QISA_ATTENTION_QISA_V2 = 2, /* q, k, v: circuit + Pauli strings          */
  QISA_ATTENTION_QISA_V3 = 3  /* q, k: linear; v: circuit + Pauli strings  */
} qisa_attention_kind;

typedef enum qisa_dtype {
  QISA_DTYPE_F32 = 0,
  QISA_DTYPE_F16 = 1,
  QISA_DTYPE_BF16 = 2,
  QISA_DTYPE_Q8_0 = 3 /* blocks of 32 int8 values with one f16 scale */
} qisa_dtype;

typedef enum qisa_ln_placement {
  QISA_LN_PRE = 0, /* x += f(LN(x)), the research code and GPT-2 */
  QISA_LN_POST = 1 /* x = LN(x + f(x)), GPT-1                    */
} qisa_ln_placement;

typedef enum qisa_activation { QISA_ACTIVATION_RELU = 0, QISA_ACTIVATION_GELU = 1 } qisa_activation;

/* ---- model -------------------------------------------------------------- */

typedef struct qisa_model qisa_model;

typedef struct qisa_model_params {
  size_t struct_size;       /* sizeof(qisa_model_params); set by defaults  */
  int use_mmap;             /* load_file: map the file (1) or read it (0)  */
  int copy_buffer;          /* load_buffer: copy the caller's bytes (1) or
                               use them in place (0; the caller keeps them
                               alive and unchanged until qisa_model_free)  */
  int check_unitaries;      /* verify each stored U against its angles     */
  int check_weights_finite; /* scan every weight for NaN/Inf (reads all)   */
} qisa_model_params;

typedef struct qisa_model_info {
  size_t struct_size; /* set by the caller: sizeof(qisa_model_info) */
  int32_t vocab_size;
  int32_t n_ctx;
  int32_t n_embd;
  int32_t n_layer;
  int32_t n_head;
  int32_t n_ff;         /* hidden width of the MLP                 */
  int32_t n_qubits;     /* ceil(log2 n_embd), 0 if no QISA head    */
  int32_t format_major; /* version of the file that was loaded     */
  int32_t format_minor;
  qisa_ln_placement ln_placement;
  qisa_activation activation;
  float ln_eps;
  int tied_lm_head;         /* LM head reuses the token embedding      */
  int reference_transposed; /* trained with the research code's
                               non-causal attention: not generatable   */
  uint64_t n_params;        /* total elements over all weight tensors  */
  uint64_t n_tensors;
  uint64_t file_bytes;
} qisa_model_info;

QISA_API void qisa_model_default_params(qisa_model_params* params);

/* Loads a model from a file. `params` may be NULL for defaults. On success
 * *out_model receives a handle to free with qisa_model_free(); on failure it
 * receives NULL and errmsg (if not NULL) a message. */
QISA_API qisa_status qisa_model_load_file(const char* path, const qisa_model_params* params, qisa_model** out_model,
                                          char* errmsg, size_t errmsg_size);

/* Loads a model from `size` bytes at `data` (see params->copy_buffer). */
QISA_API qisa_status qisa_model_load_buffer(const void* data, size_t size, const qisa_model_params* params,
                                            qisa_model** out_model, char* errmsg, size_t errmsg_size);

/* Frees a model; NULL is a no-op. Every context made from it must be freed
 * first. */
QISA_API void qisa_model_free(qisa_model* model);

/* Fills `info`; info->struct_size must be set by the caller. */
QISA_API qisa_status qisa_model_get_info(const qisa_model* model, qisa_model_info* info);

/* Attention kind of one head. */
QISA_API qisa_status qisa_model_head_kind(const qisa_model* model, int32_t layer, int32_t head,
                                          qisa_attention_kind* out_kind);

/* Number of tensors, and the name / dtype / element count of tensor i. The
 * name stays valid while the model lives. */
QISA_API qisa_status qisa_model_tensor_info(const qisa_model* model, uint64_t index, const char** out_name,
                                            qisa_dtype* out_dtype, uint64_t* out_elements);

/* A metadata value by key (provenance: "dataset", "seed", ...). Returns
 * QISA_ERR_OUT_OF_RANGE when the key is absent. Valid while the model lives. */
QISA_API qisa_status qisa_model_metadata(const qisa_model* model, const char* key, const char** out_value);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* QISA_H */
