"""Python bindings for libqisa over its C ABI (ctypes; no compiled extension).

    import qisa
    model = qisa.Model("models/default.qisa")
    ctx = qisa.Context(model)
    for piece in ctx.generate("ROMEO:", max_tokens=100, seed=42):
        print(piece, end="")

The shared library is found through $QISA_LIBRARY, next to this package
(installed layout), in the build tree, or on the loader's search path.
"""

import ctypes
import ctypes.util
import os

__all__ = ["QisaError", "Model", "Context", "Sampler", "version", "library_path"]

_c_float_p = ctypes.POINTER(ctypes.c_float)


class QisaError(Exception):
    """A libqisa call failed: .status is the qisa_status code, .name its name."""

    def __init__(self, status, message, name=""):
        super().__init__(f"{name or status}: {message}")
        self.status = status
        self.name = name
        self.message = message


def _candidates():
    env = os.environ.get("QISA_LIBRARY")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    # Installed: the package is in PREFIX/LIBDIR/python3/dist-packages/qisa
    # (LIBDIR may be lib/<multiarch>), the library in PREFIX/LIBDIR: look in
    # each folder above the package. In the source tree: build/runtime.
    folder = here
    for _ in range(4):
        folder = os.path.dirname(folder)
        for name in ("libqisa.so.0", "libqisa.so"):
            yield os.path.join(folder, name)
    for rel in ("../../../build/runtime", "../../../../build/runtime"):
        yield os.path.normpath(os.path.join(here, rel, "libqisa.so.0"))
    found = ctypes.util.find_library("qisa")
    if found:
        yield found


def _load():
    errors = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:  # pragma: no cover - depends on the machine
            errors.append(f"{path}: {e}")
    raise ImportError("libqisa not found; set QISA_LIBRARY to libqisa.so (" + "; ".join(errors) + ")")


_lib, library_path = _load()


class _ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("use_mmap", ctypes.c_int), ("copy_buffer", ctypes.c_int),
                ("check_unitaries", ctypes.c_int), ("check_weights_finite", ctypes.c_int)]


class _ModelInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("vocab_size", ctypes.c_int32), ("n_ctx", ctypes.c_int32),
                ("n_embd", ctypes.c_int32), ("n_layer", ctypes.c_int32), ("n_head", ctypes.c_int32),
                ("n_ff", ctypes.c_int32), ("n_qubits", ctypes.c_int32), ("format_major", ctypes.c_int32),
                ("format_minor", ctypes.c_int32), ("ln_placement", ctypes.c_int), ("activation", ctypes.c_int),
                ("ln_eps", ctypes.c_float), ("tied_lm_head", ctypes.c_int), ("reference_transposed", ctypes.c_int),
                ("n_params", ctypes.c_uint64), ("n_tensors", ctypes.c_uint64), ("file_bytes", ctypes.c_uint64),
                ("bos_token", ctypes.c_int32), ("eos_token", ctypes.c_int32), ("unk_token", ctypes.c_int32),
                ("tokenizer", ctypes.c_int32)]


class _ContextParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_threads", ctypes.c_int32), ("backend", ctypes.c_int),
                ("engine", ctypes.c_int), ("max_sequences", ctypes.c_int32), ("max_batch", ctypes.c_int32),
                ("value_path", ctypes.c_int), ("overflow", ctypes.c_int), ("max_memory_bytes", ctypes.c_uint64),
                ("allow_non_causal", ctypes.c_int32)]


class _BatchEntry(ctypes.Structure):
    _fields_ = [("seq_id", ctypes.c_int32), ("token", ctypes.c_int32), ("logits", ctypes.c_int32)]


class _SamplerParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("top_p", ctypes.c_float), ("min_p", ctypes.c_float), ("repeat_penalty", ctypes.c_float),
                ("repeat_last_n", ctypes.c_int32), ("seed", ctypes.c_uint64)]


_PIECE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)


class _GenerateParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("max_tokens", ctypes.c_int32), ("seq_id", ctypes.c_int32),
                ("sampling", _SamplerParams), ("stop_strings", ctypes.POINTER(ctypes.c_char_p)),
                ("n_stop_strings", ctypes.c_int32), ("on_piece", _PIECE_CB), ("user_data", ctypes.c_void_p),
                ("tokenize_flags", ctypes.c_uint32)]


class _GenerateResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_prompt_tokens", ctypes.c_int32),
                ("n_generated", ctypes.c_int32), ("stop_reason", ctypes.c_int), ("prefill_ms", ctypes.c_double),
                ("decode_ms", ctypes.c_double)]


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_P = ctypes.c_void_p
_version = _sig("qisa_version", ctypes.c_char_p)
_status_string = _sig("qisa_status_string", ctypes.c_char_p, ctypes.c_int)
_model_default_params = _sig("qisa_model_default_params", None, ctypes.POINTER(_ModelParams))
_model_load_file = _sig("qisa_model_load_file", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_ModelParams),
                        ctypes.POINTER(_P), ctypes.c_char_p, ctypes.c_size_t)
_model_load_buffer = _sig("qisa_model_load_buffer", ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                          ctypes.POINTER(_ModelParams), ctypes.POINTER(_P), ctypes.c_char_p, ctypes.c_size_t)
_model_free = _sig("qisa_model_free", None, _P)
_model_get_info = _sig("qisa_model_get_info", ctypes.c_int, _P, ctypes.POINTER(_ModelInfo))
_model_metadata = _sig("qisa_model_metadata", ctypes.c_int, _P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p))
_tokenize = _sig("qisa_tokenize", ctypes.c_int, _P, ctypes.c_char_p, ctypes.c_size_t,
                 ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.c_uint32,
                 ctypes.c_char_p, ctypes.c_size_t)
_token_piece = _sig("qisa_token_piece", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(ctypes.c_char_p))
_token_bytes = _sig("qisa_token_bytes", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p),
                    ctypes.POINTER(ctypes.c_size_t))
_context_default_params = _sig("qisa_context_default_params", None, ctypes.POINTER(_ContextParams))
_context_create = _sig("qisa_context_create", ctypes.c_int, _P, ctypes.POINTER(_ContextParams), ctypes.POINTER(_P),
                       ctypes.c_char_p, ctypes.c_size_t)
_context_free = _sig("qisa_context_free", None, _P)
_context_last_error = _sig("qisa_context_last_error", ctypes.c_char_p, _P)
_context_backend = _sig("qisa_context_backend", ctypes.c_int, _P)
_context_backend_info = _sig("qisa_context_backend_info", ctypes.c_char_p, _P)
_decode = _sig("qisa_decode", ctypes.c_int, _P, ctypes.POINTER(_BatchEntry), ctypes.c_int32)
_decode_greedy = _sig("qisa_decode_greedy", ctypes.c_int, _P, ctypes.POINTER(_BatchEntry), ctypes.c_int32,
                     ctypes.POINTER(ctypes.c_int32))
_get_logits = _sig("qisa_get_logits", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(_c_float_p))
_seq_clear = _sig("qisa_seq_clear", ctypes.c_int, _P, ctypes.c_int32)
_seq_truncate = _sig("qisa_seq_truncate", ctypes.c_int, _P, ctypes.c_int32, ctypes.c_int32)
_seq_state_save = _sig("qisa_seq_state_save", ctypes.c_int, _P, ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t,
                       ctypes.POINTER(ctypes.c_size_t))
_seq_state_load = _sig("qisa_seq_state_load", ctypes.c_int, _P, ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t)
_context_memory_estimate = _sig("qisa_context_memory_estimate", ctypes.c_int, _P, ctypes.POINTER(_ContextParams),
                                ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p, ctypes.c_size_t)
_evaluate_window = _sig("qisa_evaluate_window", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                        ctypes.c_int32, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t)
_context_probe = _sig("qisa_context_probe", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                      ctypes.c_int32, ctypes.c_int, ctypes.c_int32, _c_float_p, ctypes.c_size_t)
_seq_length = _sig("qisa_seq_length", ctypes.c_int, _P, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32))
_sampler_default_params = _sig("qisa_sampler_default_params", None, ctypes.POINTER(_SamplerParams))
_sampler_create = _sig("qisa_sampler_create", ctypes.c_int, ctypes.POINTER(_SamplerParams), ctypes.POINTER(_P))
_sampler_free = _sig("qisa_sampler_free", None, _P)
_sampler_sample = _sig("qisa_sampler_sample", ctypes.c_int, _P, _c_float_p, ctypes.c_int32,
                       ctypes.POINTER(ctypes.c_int32))
_sampler_accept = _sig("qisa_sampler_accept", ctypes.c_int, _P, ctypes.c_int32)
_generate_default_params = _sig("qisa_generate_default_params", None, ctypes.POINTER(_GenerateParams))
_generate = _sig("qisa_generate", ctypes.c_int, _P, ctypes.c_char_p, ctypes.POINTER(_GenerateParams),
                 ctypes.POINTER(_GenerateResult))


def version():
    """libqisa's version string."""
    return _version().decode()


def _raise(status, message):
    raise QisaError(status, message, _status_string(status).decode())


def _check(status, message_fn):
    if status != 0:
        _raise(status, message_fn())


try:  # numpy is optional: logits come back as an array when it is importable
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the machine
    _np = None


class _Handle:
    """Owns one libqisa handle; freed by close(), a with-block or collection."""

    _handle = None

    @staticmethod
    def _free(handle):
        raise NotImplementedError

    def close(self):
        if self._handle:
            self._free(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Handle):
    """A loaded .qisa model: immutable, shareable by many contexts and threads."""

    _free = staticmethod(lambda h: _model_free(h))

    def __init__(self, path=None, *, data=None, check_unitaries=True):
        params = _ModelParams()
        _model_default_params(ctypes.byref(params))
        params.check_unitaries = 1 if check_unitaries else 0
        handle = _P()
        err = ctypes.create_string_buffer(1024)
        if data is not None:
            buf = bytes(data)
            status = _model_load_buffer(buf, len(buf), ctypes.byref(params), ctypes.byref(handle), err, len(err))
        elif path is not None:
            status = _model_load_file(os.fsencode(path), ctypes.byref(params), ctypes.byref(handle), err, len(err))
        else:
            raise ValueError("Model needs a path or data=bytes")
        _check(status, lambda: err.value.decode(errors="replace"))
        self._handle = handle
        info = _ModelInfo()
        info.struct_size = ctypes.sizeof(info)
        _check(_model_get_info(self._handle, ctypes.byref(info)), lambda: "get_info failed")
        self.info = {name: getattr(info, name) for name, _ in _ModelInfo._fields_ if name != "struct_size"}

    @property
    def vocab_size(self):
        return self.info["vocab_size"]

    @property
    def n_ctx(self):
        return self.info["n_ctx"]

    @property
    def n_embd(self):
        return self.info["n_embd"]

    @property
    def n_layer(self):
        return self.info["n_layer"]

    @property
    def eos_token(self):
        """The end-of-text token id, or -1 when the vocabulary has none."""
        return self.info["eos_token"]

    def metadata(self, key):
        """A provenance value ("dataset", "seed", ...) or None."""
        out = ctypes.c_char_p()
        if _model_metadata(self._handle, key.encode(), ctypes.byref(out)) != 0:
            return None
        return out.value.decode()

    @property
    def tokenizer(self):
        """"char" (one token per character) or "bpe" (byte-level BPE)."""
        return "bpe" if self.info["tokenizer"] == 1 else "char"

    def tokenize(self, text, skip_unknown=False):
        """Token ids of a text (str, or bytes: a byte-level BPE model encodes
        any bytes); QisaError for a character a char vocabulary lacks."""
        raw = bytes(text) if isinstance(text, (bytes, bytearray)) else text.encode()
        n = ctypes.c_size_t()
        err = ctypes.create_string_buffer(512)
        flags = 1 if skip_unknown else 0
        status = _tokenize(self._handle, raw, len(raw), None, 0, ctypes.byref(n), flags, err, len(err))
        if status not in (0, 11):  # 11: buffer too small, the count is in n
            _raise(status, err.value.decode(errors="replace"))
        ids = (ctypes.c_int32 * max(n.value, 1))()
        _check(_tokenize(self._handle, raw, len(raw), ids, n.value, ctypes.byref(n), flags, err, len(err)),
               lambda: err.value.decode(errors="replace"))
        return list(ids[: n.value])

    def token_bytes(self, token):
        """A token's bytes (byte-level BPE: possibly part of a character)."""
        out, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(_token_bytes(self._handle, int(token), ctypes.byref(out), ctypes.byref(n)),
               lambda: f"token {token} out of range")
        return ctypes.string_at(out, n.value) if n.value else b""

    def piece(self, token):
        """A token's text; bytes that are not whole UTF-8 characters read as U+FFFD."""
        return self.token_bytes(token).decode(errors="replace")

    def detokenize_bytes(self, tokens):
        """The exact bytes the tokens spell."""
        return b"".join(self.token_bytes(t) for t in tokens)

    def detokenize(self, tokens):
        """The text the tokens spell (characters split across tokens joined)."""
        return self.detokenize_bytes(tokens).decode(errors="replace")



class Sampler(_Handle):
    """Seeded sampling over any logits (list or array)."""

    _free = staticmethod(lambda h: _sampler_free(h))

    def __init__(self, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, repeat_last_n=64,
                 seed=1234):
        p = _sampler_params(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)
        handle = _P()
        _check(_sampler_create(ctypes.byref(p), ctypes.byref(handle)), lambda: "invalid sampler parameters")
        self._handle = handle

    def sample(self, logits):
        arr = (ctypes.c_float * len(logits))(*[float(x) for x in logits])
        out = ctypes.c_int32()
        _check(_sampler_sample(self._handle, arr, len(logits), ctypes.byref(out)), lambda: "sample failed")
        return out.value

    def accept(self, token):
        _sampler_accept(self._handle, int(token))



def _sampler_params(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed):
    p = _SamplerParams()
    _sampler_default_params(ctypes.byref(p))
    p.temperature, p.top_k, p.top_p, p.min_p = temperature, top_k, top_p, min_p
    p.repeat_penalty, p.repeat_last_n, p.seed = repeat_penalty, repeat_last_n, seed
    return p


def _choice(name, value, table):
    if value not in table:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, table))}, got {value!r}")
    return table[value]


def _context_params(n_threads, max_sequences, max_batch, engine, value_path, backend, max_memory_bytes, overflow,
                    allow_non_causal=False):
    params = _ContextParams()
    _context_default_params(ctypes.byref(params))
    params.n_threads = n_threads
    params.backend = _choice("backend", backend, {"auto": 0, "cpu": 1, "cuda": 2})
    params.max_sequences = max_sequences
    params.max_batch = max_batch
    params.engine = _choice("engine", engine, {"fast": 0, "reference": 1})
    params.value_path = _choice("value_path", value_path, {"auto": 0, "unitary": 1, "observables": 2, "gates": 3})
    params.overflow = _choice("overflow", overflow, {"slide": 0, "shift-half": 1, "error": 2})
    params.max_memory_bytes = max_memory_bytes
    params.allow_non_causal = 1 if allow_non_causal else 0
    return params


_DONE = object()


class Context(_Handle):
    """KV caches and scratch for running a model; use from one thread at a time."""

    _free = staticmethod(lambda h: _context_free(h))

    def __init__(self, model, n_threads=0, max_sequences=1, max_batch=64, engine="fast", value_path="auto",
                 backend="auto", max_memory_bytes=0, overflow="slide", allow_non_causal=False):
        """overflow: past the window, "slide" (exact, like the research
        generate loop), "shift-half" (cheaper) or "error". max_memory_bytes:
        refuse to create a context that would need more (0: physical memory);
        Context.memory_estimate() tells the need beforehand. allow_non_causal:
        accept a model trained with the research code's transposed attention,
        for evaluate_window() only."""
        self.model = model
        params = _context_params(n_threads, max_sequences, max_batch, engine, value_path, backend, max_memory_bytes,
                                 overflow, allow_non_causal)
        handle = _P()
        err = ctypes.create_string_buffer(1024)
        _check(_context_create(model._handle, ctypes.byref(params), ctypes.byref(handle), err, len(err)),
               lambda: err.value.decode(errors="replace"))
        self._handle = handle

    def _error(self):
        return _context_last_error(self._handle).decode(errors="replace")

    @property
    def backend(self):
        """("cpu" or "cuda", a line saying why): what AUTO chose."""
        kind = {1: "cpu", 2: "cuda"}.get(_context_backend(self._handle), "auto")
        return kind, _context_backend_info(self._handle).decode(errors="replace")

    def decode_greedy(self, entries):
        """One batched step that returns only each entry's greedy token.
        entries: (seq_id, token) pairs, every one asking for its next token.
        Returns the list of next tokens (largest logit, lowest index on ties);
        on a GPU only these ids leave the device."""
        n = len(entries)
        arr = (_BatchEntry * n)()
        for i, (seq, tok) in enumerate(entries):
            arr[i] = _BatchEntry(int(seq), int(tok), 1)
        out = (ctypes.c_int32 * n)()
        _check(_decode_greedy(self._handle, arr, n, out), self._error)
        return list(out)

    def decode(self, tokens, seq_id=0, logits="last"):
        """Appends tokens to a sequence in one call. Returns the logits of the
        last token ("last"), of every token ("all"), or None."""
        n = len(tokens)
        entries = (_BatchEntry * n)()
        for i, t in enumerate(tokens):
            want = logits == "all" or (logits == "last" and i == n - 1)
            entries[i] = _BatchEntry(seq_id, int(t), 1 if want else 0)
        _check(_decode(self._handle, entries, n), self._error)
        if logits == "last":
            return self.logits(n - 1)
        if logits == "all":
            return [self.logits(i) for i in range(n)]
        return None

    def probe(self, tokens, what="input", layer=0, seq_id=0):
        """A window's matrix [len(tokens)][n_embd]: "input" (the residual
        stream entering `layer`; layer n_layer is the last layer's output),
        "queries" or "keys" of `layer`. The sequence is emptied first and then
        holds the tokens, as after decode()."""
        what = _choice("what", what, {"input": 0, "queries": 1, "keys": 2})
        n, d = len(tokens), self.model.n_embd
        arr = (ctypes.c_int32 * n)(*[int(t) for t in tokens])
        out = (ctypes.c_float * (n * d))()
        _check(_context_probe(self._handle, seq_id, arr, n, what, layer, out, n * d), self._error)
        if _np is not None:
            return _np.ctypeslib.as_array(out).reshape(n, d).copy()
        return [list(out[i * d:(i + 1) * d]) for i in range(n)]

    def evaluate_window(self, tokens, seq_id=0):
        """The logits of every position of one window from position 0,
        [len(tokens)][vocab_size]. The only way to run a model trained with the
        research code's transposed attention (a context made with
        allow_non_causal): its rows then read the window's later tokens."""
        n, v = len(tokens), self.model.vocab_size
        arr = (ctypes.c_int32 * n)(*[int(t) for t in tokens])
        out = (ctypes.c_float * (n * v))()
        _check(_evaluate_window(self._handle, seq_id, arr, n, out, n * v), self._error)
        if _np is not None:
            return _np.ctypeslib.as_array(out).reshape(n, v).copy()
        return [list(out[i * v:(i + 1) * v]) for i in range(n)]

    def logits(self, index):
        ptr = _c_float_p()
        _check(_get_logits(self._handle, index, ctypes.byref(ptr)), self._error)
        v = self.model.vocab_size
        if _np is not None:
            return _np.ctypeslib.as_array(ptr, shape=(v,)).copy()
        return ptr[:v]

    def clear(self, seq_id=0):
        _check(_seq_clear(self._handle, seq_id), self._error)

    def truncate(self, n_tokens, seq_id=0):
        _check(_seq_truncate(self._handle, seq_id, n_tokens), self._error)

    def save_state(self, seq_id=0):
        """The sequence's cache as bytes (loads only into a context of the same model)."""
        need = ctypes.c_size_t()
        _seq_state_save(self._handle, seq_id, None, 0, ctypes.byref(need))
        buf = ctypes.create_string_buffer(need.value)
        _check(_seq_state_save(self._handle, seq_id, buf, need.value, ctypes.byref(need)), self._error)
        return buf.raw

    def load_state(self, data, seq_id=0):
        """Restores a sequence from save_state() bytes; checked before it changes anything."""
        data = bytes(data)
        _check(_seq_state_load(self._handle, seq_id, data, len(data)), self._error)

    @staticmethod
    def memory_estimate(model, n_threads=0, max_sequences=1, max_batch=64, engine="fast", value_path="auto",
                        backend="auto", overflow="slide"):
        """Bytes a context with these settings would allocate, computed without allocating."""
        params = _context_params(n_threads, max_sequences, max_batch, engine, value_path, backend, 0, overflow)
        out = ctypes.c_uint64()
        err = ctypes.create_string_buffer(1024)
        _check(_context_memory_estimate(model._handle, ctypes.byref(params), ctypes.byref(out), err, len(err)),
               lambda: err.value.decode(errors="replace"))
        return out.value

    def length(self, seq_id=0):
        n = ctypes.c_int32()
        _check(_seq_length(self._handle, seq_id, ctypes.byref(n)), self._error)
        return n.value

    def generate(self, prompt, max_tokens=128, seed=1234, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                 repeat_penalty=1.1, repeat_last_n=64, stop=(), seq_id=0):
        """Yields pieces of generated text as they are decoded. The library
        call runs on a helper thread (the context must not be used otherwise
        until the iterator ends); stopping the iteration early stops the
        generation. Bad parameters raise QisaError with the library's message
        at the first next(). Afterwards last_result holds the counts, times
        and stop reason."""
        import queue
        import threading

        # Bounded: the library runs at most a few pieces ahead of the reader.
        pieces = queue.Queue(maxsize=8)
        stop_now = threading.Event()

        def on_piece(data, length, _user):
            pieces.put(ctypes.string_at(data, length).decode(errors="replace"))
            return 1 if stop_now.is_set() else 0

        cb = _PIECE_CB(on_piece)
        p = _GenerateParams()
        _generate_default_params(ctypes.byref(p))
        p.max_tokens = max_tokens
        p.seq_id = seq_id
        p.sampling = _sampler_params(temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed)
        stops = [s.encode() for s in stop]
        arr = (ctypes.c_char_p * max(len(stops), 1))(*stops)
        p.stop_strings = arr
        p.n_stop_strings = len(stops)
        p.on_piece = cb
        result = _GenerateResult()
        result.struct_size = ctypes.sizeof(result)
        status = []
        prompt_bytes = prompt.encode()

        def run():
            try:
                status.append(_generate(self._handle, prompt_bytes, ctypes.byref(p), ctypes.byref(result)))
            finally:
                pieces.put(_DONE)

        worker = threading.Thread(target=run, name="qisa-generate", daemon=True)
        worker.start()
        try:
            while True:
                piece = pieces.get()
                if piece is _DONE:
                    break
                yield piece
        finally:
            stop_now.set()
            while worker.is_alive():  # let a blocked put() through until the call returns
                try:
                    pieces.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()
            if status and status[0] == 0:
                self.last_result = {name: getattr(result, name) for name, _ in _GenerateResult._fields_
                                    if name != "struct_size"}
        _check(status[0], self._error)

