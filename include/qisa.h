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
#define QISA_VERSION_MINOR 8
#define QISA_VERSION_PATCH 0
#define QISA_VERSION_STRING "0.8.0"
/* major * 10000 + minor * 100 + patch */
#define QISA_VERSION_NUMBER (QISA_VERSION_MAJOR * 10000 + QISA_VERSION_MINOR * 100 + QISA_VERSION_PATCH)

/* Highest model-file format version this library reads (major.minor).
 * Files with a newer major are refused; newer minors are accepted. */
#define QISA_FORMAT_VERSION_MAJOR 1
#define QISA_FORMAT_VERSION_MINOR 2

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
  QISA_ERR_INTERNAL = 12,
  QISA_ERR_UNKNOWN_CHARACTER = 13, /* text has a character the vocabulary lacks */
  QISA_ERR_CONTEXT_FULL = 14,      /* sequence at n_ctx with overflow = ERROR  */
  QISA_ERR_NOT_CAUSAL = 15,        /* model trained with the research code's
                                      non-causal attention: no generation     */
  QISA_ERR_BACKEND = 16            /* the compute backend failed or is absent */
} qisa_status;

/* A static English name for a status, e.g. "corrupt model file". Never NULL. */
QISA_API const char* qisa_status_string(qisa_status status);

/* ---- enums describing a model ------------------------------------------- */

typedef enum qisa_attention_kind {
  QISA_ATTENTION_CSA = 0,     /* classical softmax(q.k * scale) attention */
  QISA_ATTENTION_QISA_V1 = 1, /* q, k: circuit + <Z0>; v: circuit + Paulis */
  QISA_ATTENTION_QISA_V2 = 2, /* q, k, v: circuit + Pauli strings          */
  QISA_ATTENTION_QISA_V3 = 3, /* q, k: linear; v: circuit + Pauli strings  */
  QISA_ATTENTION_QSAT = 4     /* QISA v3 scores, sparse: each query attends
                                 to its top_k nearest keys and its `window`
                                 most recent positions (added in 0.6)      */
} qisa_attention_kind;

typedef enum qisa_dtype {
  QISA_DTYPE_F32 = 0,
  QISA_DTYPE_F16 = 1,
  QISA_DTYPE_BF16 = 2,
  QISA_DTYPE_Q8_0 = 3, /* blocks of 32 int8 values with one f16 scale */
  QISA_DTYPE_Q4_0 = 4  /* blocks of 32 4-bit values with one f16 scale
                          (4.5 bits per weight; weights and embeddings
                          only, not unitaries or observables; 0.8)   */
} qisa_dtype;

typedef enum qisa_ln_placement {
  QISA_LN_PRE = 0, /* x += f(LN(x)), the research code and GPT-2 */
  QISA_LN_POST = 1 /* x = LN(x + f(x)), GPT-1                    */
} qisa_ln_placement;

typedef enum qisa_activation { QISA_ACTIVATION_RELU = 0, QISA_ACTIVATION_GELU = 1 } qisa_activation;

/* "csa", "qisa-v1", "qisa-v2", "qisa-v3" or "qsat" (the CLI spelling); "unknown"
 * for any other value. Never NULL. */
QISA_API const char* qisa_attention_kind_string(qisa_attention_kind kind);

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

typedef enum qisa_tokenizer_kind {
  QISA_TOKENIZER_CHAR = 0,    /* one token per Unicode character             */
  QISA_TOKENIZER_BYTE_BPE = 1 /* byte-level BPE: any bytes encode; a token
                                 may hold part of a UTF-8 character          */
} qisa_tokenizer_kind;

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
  /* Added in 0.4: the tokenizer's special tokens, -1 when it has none.
   * Generation ends at eos_token. Callers built against 0.3 (struct_size
   * without these fields) get the fields before them. */
  int32_t bos_token;
  int32_t eos_token;
  int32_t unk_token;
  /* Added in 0.5: how text becomes tokens (qisa_tokenizer_kind). Callers
   * built against 0.4 (struct_size without it) get the fields before it. */
  int32_t tokenizer;
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

/* Fills `info`; info->struct_size must be set by the caller (sizeof, or
 * the size of an earlier version's struct: only those fields are written). */
QISA_API qisa_status qisa_model_get_info(const qisa_model* model, qisa_model_info* info);

/* Attention kind of one head. */
QISA_API qisa_status qisa_model_head_kind(const qisa_model* model, int32_t layer, int32_t head,
                                          qisa_attention_kind* out_kind);

/* Added in 0.6: which positions a head attends to. A QISA_ATTENTION_QSAT
 * head keeps, per query, its top_k nearest keys and its `window` most
 * recent positions (docs/math.md); every other kind gives 0 and 0 (all
 * positions). Either out pointer may be NULL. */
QISA_API qisa_status qisa_model_head_sparsity(const qisa_model* model, int32_t layer, int32_t head, int32_t* out_top_k,
                                              int32_t* out_window);

/* Number of tensors, and the name / dtype / element count of tensor i. The
 * name stays valid while the model lives. */
QISA_API qisa_status qisa_model_tensor_info(const qisa_model* model, uint64_t index, const char** out_name,
                                            qisa_dtype* out_dtype, uint64_t* out_elements);

/* A metadata value by key (provenance: "dataset", "seed", ...). Returns
 * QISA_ERR_OUT_OF_RANGE when the key is absent. Valid while the model lives. */
QISA_API qisa_status qisa_model_metadata(const qisa_model* model, const char* key, const char** out_value);

/* ---- tokenizer ---------------------------------------------------------- */

typedef enum qisa_tokenize_flags {
  QISA_TOKENIZE_DEFAULT = 0,
  QISA_TOKENIZE_SKIP_UNKNOWN = 1 /* drop characters the vocabulary lacks */
} qisa_tokenize_flags;

/* Converts `text_len` bytes of UTF-8 to token ids. *out_count receives the
 * number of tokens the text needs; when it exceeds `capacity` nothing is
 * written and QISA_ERR_BUFFER_TOO_SMALL is returned (tokens may be NULL to
 * ask). A character the vocabulary lacks gives QISA_ERR_UNKNOWN_CHARACTER
 * with a message naming it and its byte offset, unless flags has
 * QISA_TOKENIZE_SKIP_UNKNOWN. Safe to call from many threads at once. */
QISA_API qisa_status qisa_tokenize(const qisa_model* model, const char* text, size_t text_len, int32_t* tokens,
                                   size_t capacity, size_t* out_count, uint32_t flags, char* errmsg,
                                   size_t errmsg_size);

/* The text of a token (NUL-terminated, valid while the model lives). For a
 * byte-level BPE model these are the token's bytes, which may be part of a
 * UTF-8 character; a token holding a NUL byte reads as "" here (use
 * qisa_token_bytes). Concatenate pieces before decoding them as UTF-8, or
 * use qisa_detokenize / qisa_generate, which stream whole characters. */
QISA_API qisa_status qisa_token_piece(const qisa_model* model, int32_t token, const char** out_piece);

/* Added in 0.5: the bytes of a token and their count (NUL bytes included). */
QISA_API qisa_status qisa_token_bytes(const qisa_model* model, int32_t token, const char** out_bytes, size_t* out_len);

/* Writes the text of `n_tokens` tokens plus a NUL into buf. *out_len gets
 * the text's length in bytes (without the NUL); QISA_ERR_BUFFER_TOO_SMALL
 * when capacity < *out_len + 1 (buf may be NULL to ask). */
QISA_API qisa_status qisa_detokenize(const qisa_model* model, const int32_t* tokens, size_t n_tokens, char* buf,
                                     size_t capacity, size_t* out_len);

/* ---- context -------------------------------------------------------------
 * A context holds the per-sequence KV caches and scratch memory for running
 * a model. Many contexts may share one model, from many threads; one context
 * must be used by one thread at a time. */

typedef struct qisa_context qisa_context;

typedef enum qisa_backend {
  QISA_BACKEND_AUTO = 0, /* CUDA when built and a device is usable, else CPU */
  QISA_BACKEND_CPU = 1,
  QISA_BACKEND_CUDA = 2
} qisa_backend;

typedef enum qisa_engine {
  QISA_ENGINE_FAST = 0,     /* oneDNN on CPU                                */
  QISA_ENGINE_REFERENCE = 1 /* plain loops: the readable oracle, slow       */
} qisa_engine;

typedef enum qisa_value_path {
  QISA_VALUE_PATH_AUTO = 0,        /* the engine's measured choice among
                                      unitary and gates                      */
  QISA_VALUE_PATH_UNITARY = 1,     /* phi = U psi with the dense U (the
                                      stored one; the angles' where a file
                                      stores it quantized, docs/format.md),
                                      then O(D) Pauli sums                   */
  QISA_VALUE_PATH_OBSERVABLES = 2, /* psi^T O'_k psi with O' = U^dag P U     */
  QISA_VALUE_PATH_GATES = 3        /* phi = U psi applied gate by gate from
                                      the stored angles (CPU engine, circuits
                                      with angles; else as unitary), then
                                      the Pauli sums                         */
} qisa_value_path;

typedef enum qisa_overflow {
  QISA_OVERFLOW_SLIDE = 0,      /* past n_ctx: re-evaluate the last n_ctx-1
                                   tokens with the new one, exactly like the
                                   research generate loop (crop + recompute) */
  QISA_OVERFLOW_SHIFT_HALF = 1, /* drop the older half, re-evaluate the rest
                                   once, continue (cheaper, not exact)       */
  QISA_OVERFLOW_ERROR = 2       /* QISA_ERR_CONTEXT_FULL                     */
} qisa_overflow;

typedef struct qisa_context_params {
  size_t struct_size; /* sizeof(qisa_context_params)                */
  int32_t n_threads;  /* 0: automatic (1 for small models)          */
  qisa_backend backend;
  qisa_engine engine;
  int32_t max_sequences; /* sequence ids are 0 .. max_sequences-1 (1)  */
  int32_t max_batch;     /* entries per qisa_decode call (64)          */
  qisa_value_path value_path;
  qisa_overflow overflow;
  /* Added in 0.2. Host memory a context may take (its KV cache, scratch,
   * dequantized weights), in bytes; creation fails with
   * QISA_ERR_OUT_OF_MEMORY before allocating when the estimate
   * (qisa_context_memory_estimate) is larger. 0: the machine's physical
   * memory. RLIMIT_AS, when set, also bounds it. Callers built against 0.1
   * (struct_size without this field) get 0. */
  uint64_t max_memory_bytes;
  /* Added in 0.4. Nonzero: a model trained with the research code's
   * transposed attention (qisa_model_info.reference_transposed) gets a
   * context, for qisa_evaluate_window and qisa_context_probe only; every
   * decode and generation on it fails with QISA_ERR_NOT_CAUSAL. Zero (the
   * default): creating a context of such a model fails with
   * QISA_ERR_NOT_CAUSAL. No effect on causal models. Callers built against
   * 0.1-0.3 get 0. */
  int32_t allow_non_causal;
} qisa_context_params;

QISA_API void qisa_context_default_params(qisa_context_params* params);

/* The bytes of memory qisa_context_create would allocate for these params
 * (`params` may be NULL), computed without allocating: an upper bound for
 * the CPU backend; a CUDA context allocates its caches and scratch of the
 * same sizes on the device. Fails like qisa_context_create on bad params. */
QISA_API qisa_status qisa_context_memory_estimate(const qisa_model* model, const qisa_context_params* params,
                                                  uint64_t* out_bytes, char* errmsg, size_t errmsg_size);

/* Creates a context. `params` may be NULL for defaults. */
QISA_API qisa_status qisa_context_create(const qisa_model* model, const qisa_context_params* params,
                                         qisa_context** out_context, char* errmsg, size_t errmsg_size);
/* NULL is a no-op. */
QISA_API void qisa_context_free(qisa_context* ctx);

/* The message of the context's last failed call ("" after a success). */
QISA_API const char* qisa_context_last_error(const qisa_context* ctx);

/* The backend the context runs on (AUTO resolved), and its thread count. */
QISA_API qisa_backend qisa_context_backend(const qisa_context* ctx);
/* One line on the backend chosen and why, e.g. "cuda: NVIDIA H100 ..." or
 * "cpu (auto: no usable CUDA device: ...)". Valid while the context lives. */
QISA_API const char* qisa_context_backend_info(const qisa_context* ctx);
QISA_API int32_t qisa_context_threads(const qisa_context* ctx);

/* ---- decoding ------------------------------------------------------------ */

/* One token appended to one sequence. */
typedef struct qisa_batch_entry {
  int32_t seq_id;
  int32_t token;
  int32_t logits; /* nonzero: keep this entry's next-token logits */
} qisa_batch_entry;

/* Appends every entry's token to its sequence's cache, in order, in one
 * call (entries of one sequence are consecutive positions). Many sequences
 * advance together, and a prompt is one call with one entry per token.
 * On failure no sequence changes, except that a sequence whose full window
 * the call was re-evaluating (overflow policies SLIDE and SHIFT_HALF) is
 * emptied when the failure happens during the computation (out of memory,
 * backend error): its cached positions were being rewritten.
 * QISA_ERR_NUMERIC when a kept logit is NaN or infinite (a value overflowed
 * f32: the model's weights, or a loaded state far outside what the model
 * computes); NaN or infinity never comes back with QISA_OK. */
QISA_API qisa_status qisa_decode(qisa_context* ctx, const qisa_batch_entry* entries, int32_t n_entries);

/* The vocab-size logits of entry `index` of the last qisa_decode call, if
 * it asked for them. Valid until the next decode on this context. */
QISA_API qisa_status qisa_get_logits(qisa_context* ctx, int32_t index, const float** out_logits);

/* As qisa_decode, but brings back only the greedy choice: for each entry
 * that asks for logits, out_tokens[i] gets the index of its largest logit
 * (ties: the lowest index); other entries get -1. out_tokens has n_entries
 * slots. On a GPU context only these ids are copied to the host instead of
 * rows of logits. qisa_get_logits fails (QISA_ERR_INVALID_ARGUMENT) for the
 * entries of this call. Fails as qisa_decode does, QISA_ERR_NUMERIC
 * included (checked on the device on a GPU context). */
QISA_API qisa_status qisa_decode_greedy(qisa_context* ctx, const qisa_batch_entry* entries, int32_t n_entries,
                                        int32_t* out_tokens);

/* Tokens in a sequence's cache (its window: at most n_ctx). */
QISA_API qisa_status qisa_seq_length(qisa_context* ctx, int32_t seq_id, int32_t* out_length);
/* Empties a sequence; seq_id -1 empties all. */
QISA_API qisa_status qisa_seq_clear(qisa_context* ctx, int32_t seq_id);
/* Keeps the first n_tokens of a sequence. */
QISA_API qisa_status qisa_seq_truncate(qisa_context* ctx, int32_t seq_id, int32_t n_tokens);

/* Saves a sequence's cache (tokens and keys/values) to bytes, and restores
 * it into any sequence of a context of the same model. save: *out_size gets
 * the size needed; QISA_ERR_BUFFER_TOO_SMALL when capacity is less (buf may
 * be NULL to ask). */
QISA_API qisa_status qisa_seq_state_save(qisa_context* ctx, int32_t seq_id, void* buf, size_t capacity,
                                         size_t* out_size);
QISA_API qisa_status qisa_seq_state_load(qisa_context* ctx, int32_t seq_id, const void* buf, size_t size);

/* ---- probing the forward pass -------------------------------------------- */

/* A matrix of a window's forward pass, [n_tokens, n_embd], row i for the
 * token at position i. */
typedef enum qisa_probe {
  /* The residual stream entering layer `layer`: layer 0 gets the token +
   * position embeddings; layer n_layer is the last layer's output, before
   * the final LayerNorm. */
  QISA_PROBE_LAYER_INPUT = 0,
  /* Layer `layer`'s queries or keys, every head's side by side (head h in
   * columns [h * head_size, (h + 1) * head_size)). */
  QISA_PROBE_QUERIES = 1,
  QISA_PROBE_KEYS = 2
} qisa_probe;

/* Evaluates tokens[0..n_tokens) as one window from position 0 of sequence
 * seq_id (emptied first; it then holds these tokens, as after qisa_decode)
 * and copies the matrix `what` of layer `layer` into out, which has room
 * for out_count floats (at least n_tokens * n_embd). n_tokens is at most
 * n_ctx. For analysis (tools/qisa-analyze): the rows are computed by the
 * context's backend exactly as a decode computes them. On failure the
 * sequence is unchanged, except after a backend failure during the
 * computation (then it is empty). */
QISA_API qisa_status qisa_context_probe(qisa_context* ctx, int32_t seq_id, const int32_t* tokens, int32_t n_tokens,
                                        qisa_probe what, int32_t layer, float* out, size_t out_count);

/* ---- evaluating a window ------------------------------------------------- */

/* Evaluates tokens[0..n_tokens) as one window from position 0 of sequence
 * seq_id (emptied first; it then holds these tokens, as after qisa_decode)
 * and writes the logits of every position (QISA_ERR_NUMERIC, as in
 * qisa_decode, when one is NaN or infinite), [n_tokens, vocab_size], into
 * logits, which has room for logits_count floats. For a causal model row i
 * is what qisa_decode gives the token at position i. For a model trained
 * with the research code's transposed attention (a context created with
 * allow_non_causal) it is the only way to run the model, the way its
 * trainer evaluated it: row i then reads the window's later tokens, so the
 * numbers measure nothing a generator could do. n_tokens is 1..n_ctx; for a
 * transposed model also at most the context's rows per pass,
 * max(max_batch, min(n_ctx, 256)) (the whole window must be in one pass). On
 * failure the sequence is unchanged, except after a failure during the
 * computation (backend, QISA_ERR_NUMERIC: then it is empty). */
QISA_API qisa_status qisa_evaluate_window(qisa_context* ctx, int32_t seq_id, const int32_t* tokens, int32_t n_tokens,
                                          float* logits, size_t logits_count);

/* ---- sampling ------------------------------------------------------------ */

typedef struct qisa_sampler qisa_sampler;

typedef struct qisa_sampler_params {
  size_t struct_size;    /* sizeof(qisa_sampler_params)                       */
  float temperature;     /* <= 0: greedy (argmax) (0.8)                       */
  int32_t top_k;         /* keep the k most likely; <= 0: off (40)            */
  float top_p;           /* keep the smallest set with mass >= p; 1: off (0.95) */
  float min_p;           /* drop tokens below min_p * max prob; 0: off (0.05) */
  float repeat_penalty;  /* divide positive / multiply negative logits of
                            recent tokens; 1: off (1.1)                      */
  int32_t repeat_last_n; /* how many recent tokens the penalty sees (64)      */
  uint64_t seed;         /* same seed, same logits -> same tokens             */
} qisa_sampler_params;

QISA_API void qisa_sampler_default_params(qisa_sampler_params* params);
QISA_API qisa_status qisa_sampler_create(const qisa_sampler_params* params, qisa_sampler** out_sampler);
QISA_API void qisa_sampler_free(qisa_sampler* sampler);
/* Picks a token from n_vocab logits (not modified). */
QISA_API qisa_status qisa_sampler_sample(qisa_sampler* sampler, const float* logits, int32_t n_vocab,
                                         int32_t* out_token);
/* Records a token for the repetition penalty (sample() does not). */
QISA_API qisa_status qisa_sampler_accept(qisa_sampler* sampler, int32_t token);
/* Forgets history and re-seeds. */
QISA_API qisa_status qisa_sampler_reset(qisa_sampler* sampler, uint64_t seed);

/* ---- generation ---------------------------------------------------------- */

/* Called with each piece of generated text; return nonzero to stop. */
typedef int (*qisa_piece_callback)(const char* piece, size_t length, void* user_data);

typedef enum qisa_stop_reason {
  QISA_STOP_MAX_TOKENS = 0,
  QISA_STOP_CALLBACK = 1,
  QISA_STOP_STRING = 2,
  QISA_STOP_EOS = 3
} qisa_stop_reason;

typedef struct qisa_generate_params {
  size_t struct_size; /* sizeof(qisa_generate_params)          */
  int32_t max_tokens; /* tokens to generate (128)              */
  int32_t seq_id;     /* sequence to use; it is cleared (0)    */
  qisa_sampler_params sampling;
  const char* const* stop_strings; /* generation ends before any of these;
                                      they are not emitted                  */
  int32_t n_stop_strings;
  qisa_piece_callback on_piece; /* may be NULL                           */
  void* user_data;
  uint32_t tokenize_flags; /* qisa_tokenize_flags for the prompt    */
} qisa_generate_params;

typedef struct qisa_generate_result {
  size_t struct_size; /* set by the caller: sizeof(qisa_generate_result) */
  int32_t n_prompt_tokens;
  int32_t n_generated;
  qisa_stop_reason stop_reason;
  double prefill_ms;
  double decode_ms;
} qisa_generate_result;

QISA_API void qisa_generate_default_params(qisa_generate_params* params);

/* Tokenizes the prompt, evaluates it, then samples up to max_tokens tokens,
 * streaming their text to on_piece in whole UTF-8 characters (a byte-level
 * BPE token that ends inside a character is held until the character is
 * complete; bytes that cannot form one arrive as U+FFFD). result may be NULL. The prompt must
 * have at least one token; a prompt longer than n_ctx follows the context's
 * overflow policy. */
QISA_API qisa_status qisa_generate(qisa_context* ctx, const char* prompt, const qisa_generate_params* params,
                                   qisa_generate_result* result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* QISA_H */
