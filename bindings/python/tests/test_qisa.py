"""Tests of the Python bindings, run by ctest with the system python3
(unittest; no pytest needed)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import qisa  # noqa: E402

FIXTURES = os.environ.get("QISA_FIXTURES", os.path.join(os.path.dirname(__file__), "../../../tests/fixtures"))
MODEL = os.path.join(FIXTURES, "tiny-qisa-v3.qisa")


class BindingsTest(unittest.TestCase):
    def test_version(self):
        self.assertRegex(qisa.version(), r"^\d+\.\d+\.\d+$")

    def test_byte_level_bpe_model(self):
        m = qisa.Model(os.path.join(FIXTURES, "tiny-qisa-v3-bpe.qisa"))
        self.assertEqual(m.tokenizer, "bpe")
        self.assertEqual(qisa.Model(MODEL).tokenizer, "char")
        text = "ROMEO: caf\u00e9 \u20ac5"
        ids = m.tokenize(text)
        self.assertLess(len(ids), len(text.encode()))
        self.assertEqual(m.detokenize(ids), text)
        raw = bytes(range(256))  # any bytes encode, NUL and invalid UTF-8 included
        self.assertEqual(m.detokenize_bytes(m.tokenize(raw)), raw)
        euro = m.tokenize("\u20ac")  # three bytes; no merge joins them in this vocabulary
        self.assertEqual(b"".join(m.token_bytes(t) for t in euro), "\u20ac".encode())
        self.assertEqual(m.token_bytes(m.tokenize(b"\x00")[0]), b"\x00")
        with self.assertRaises(qisa.QisaError):
            m.token_bytes(m.vocab_size)

    def test_model_info_and_tokenizer(self):
        m = qisa.Model(MODEL)
        self.assertEqual(m.vocab_size, 65)
        self.assertEqual(m.n_ctx, 16)
        self.assertEqual(m.info["n_layer"], 2)
        ids = m.tokenize("ROMEO:")
        self.assertEqual(len(ids), 6)
        self.assertEqual(m.detokenize(ids), "ROMEO:")
        with self.assertRaises(qisa.QisaError) as cm:
            m.tokenize("price: \u20ac5")
        self.assertEqual(cm.exception.status, 13)
        self.assertIn("U+20AC", cm.exception.message)
        self.assertEqual(m.tokenize("a\u20acb", skip_unknown=True), m.tokenize("ab"))
        self.assertIsNotNone(m.metadata("dataset_sha256"))

    def test_load_errors_raise(self):
        with self.assertRaises(qisa.QisaError) as cm:
            qisa.Model("/nonexistent/model.qisa")
        self.assertEqual(cm.exception.name, "I/O error")
        with self.assertRaises(qisa.QisaError) as cm:
            qisa.Model(data=b"definitely not a model")
        self.assertEqual(cm.exception.status, 4)

    def test_generate_is_deterministic_for_a_seed(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m)
        a = "".join(ctx.generate("ROMEO:", max_tokens=40, seed=5))
        b = "".join(ctx.generate("ROMEO:", max_tokens=40, seed=5))
        c = "".join(ctx.generate("ROMEO:", max_tokens=40, seed=6))
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertEqual(ctx.last_result["n_generated"], 40)

    def test_backend_choice_is_reported(self):
        m = qisa.Model(MODEL)
        kind, info = qisa.Context(m, backend="cpu").backend
        self.assertEqual((kind, info), ("cpu", "cpu"))
        kind, info = qisa.Context(m).backend  # auto
        self.assertIn(kind, ("cpu", "cuda"))
        self.assertTrue(info.startswith("cuda: " if kind == "cuda" else "cpu (auto: "), info)

    def test_decode_logits_and_sampler(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m)
        ids = m.tokenize("KING")
        every = ctx.decode(ids, logits="all")
        self.assertEqual(len(every), 4)
        self.assertEqual(len(every[-1]), 65)
        ctx.clear()
        last = ctx.decode(ids)
        self.assertLess(max(abs(float(x) - float(y)) for x, y in zip(last, every[-1])), 1e-5)
        self.assertEqual(ctx.length(), 4)
        greedy = qisa.Sampler(temperature=0.0, repeat_penalty=1.0)
        best = max(range(65), key=lambda i: float(last[i]))
        self.assertEqual(greedy.sample(list(last)), best)
        with self.assertRaises(qisa.QisaError):
            ctx.decode([65])
        # The greedy step: the next token of the logits above, without them.
        ctx.clear()
        ctx.decode(ids[:-1], logits="none")
        self.assertEqual(ctx.decode_greedy([(0, ids[-1])]), [best])
        self.assertEqual(ctx.length(), 4)
        # Every value path gives the same logits.
        for path in ("unitary", "observables", "gates"):
            other = qisa.Context(m, value_path=path, backend="cpu").decode(ids, logits="all")
            self.assertLess(max(abs(float(x) - float(y)) for x, y in zip(other[-1], every[-1])), 1e-4, path)

    def test_probe_returns_a_window_matrix(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m, max_sequences=2)
        ids = m.tokenize("KING RICHARD")
        keys = ctx.probe(ids, "keys", layer=0)
        self.assertEqual((len(keys), len(keys[0])), (len(ids), m.n_embd))
        self.assertEqual(ctx.length(), len(ids))
        out = ctx.probe(ids, "input", layer=m.n_layer, seq_id=1)
        # Probing is deterministic: the same window gives the same matrix.
        again = ctx.probe(ids, "input", layer=m.n_layer)
        self.assertEqual([list(map(float, r)) for r in out], [list(map(float, r)) for r in again])
        with self.assertRaises(qisa.QisaError):
            ctx.probe(ids, "queries", layer=m.n_layer)
        with self.assertRaises(ValueError):
            ctx.probe(ids, "values")

    def test_evaluate_window_equals_decoding_and_runs_transposed_models(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m, max_sequences=2)
        ids = m.tokenize("KING RICHARD")
        window = ctx.evaluate_window(ids)
        decoded = ctx.decode(ids, seq_id=1, logits="all")
        self.assertEqual(len(window), len(ids))
        for a, b in zip(window, decoded):
            self.assertLess(max(abs(float(x) - float(y)) for x, y in zip(a, b)), 1e-4)
        # A model with the research code's transposed attention: refused
        # unless asked for, then only whole windows run it.
        leaky = qisa.Model(os.path.join(FIXTURES, "tiny-qisa-v3-transposed.qisa"))
        with self.assertRaises(qisa.QisaError) as e:
            qisa.Context(leaky)
        self.assertIn("allow_non_causal", str(e.exception))
        lctx = qisa.Context(leaky, backend="cpu", allow_non_causal=True)
        full = lctx.evaluate_window(ids)
        half = lctx.evaluate_window(ids[:6])
        self.assertGreater(max(abs(float(x) - float(y)) for x, y in zip(full[0], half[0])), 1e-3)  # reads ahead
        with self.assertRaises(qisa.QisaError):
            lctx.decode(ids)

    def test_generate_streams_and_stops_early(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m)
        full = "".join(ctx.generate("ROMEO:", max_tokens=300, seed=3))
        self.assertEqual(ctx.last_result["n_generated"], 300)
        it = ctx.generate("ROMEO:", max_tokens=300, seed=3)
        first = [next(it) for _ in range(3)]  # pieces arrive before the generation ends
        it.close()
        self.assertTrue(full.startswith("".join(first)))
        # Closing the iterator stopped the library call through its callback.
        self.assertLess(ctx.last_result["n_generated"], 300)
        self.assertEqual(ctx.last_result["stop_reason"], 1)  # QISA_STOP_CALLBACK
        # The context is free again and gives the same text.
        self.assertEqual("".join(ctx.generate("ROMEO:", max_tokens=300, seed=3)), full)

    def test_bad_parameters_raise_with_the_library_message(self):
        m = qisa.Model(MODEL)
        ctx = qisa.Context(m)
        for kwargs, field in ((dict(temperature=float("nan")), "temperature"), (dict(top_p=0.0), "top_p"),
                              (dict(repeat_penalty=0.0), "repeat_penalty"), (dict(seq_id=5), "sequence id")):
            with self.assertRaises(qisa.QisaError) as cm:
                list(ctx.generate("ROMEO:", max_tokens=5, **kwargs))
            self.assertIn(field, cm.exception.message)
        with self.assertRaises(ValueError):
            qisa.Context(m, overflow="wrap")
        with self.assertRaises(qisa.QisaError) as cm:
            qisa.Context(m, max_memory_bytes=1000)
        self.assertEqual(cm.exception.status, 2)  # QISA_ERR_OUT_OF_MEMORY

    def test_overflow_state_and_memory_estimate(self):
        m = qisa.Model(MODEL)
        strict = qisa.Context(m, overflow="error")
        strict.decode(list(range(16)), logits="none")
        with self.assertRaises(qisa.QisaError) as cm:
            strict.decode([1])
        self.assertEqual(cm.exception.status, 14)  # QISA_ERR_CONTEXT_FULL
        ctx = qisa.Context(m, max_sequences=2)
        ctx.decode(m.tokenize("ROMEO:"), seq_id=0)
        state = ctx.save_state(0)
        ctx.load_state(state, seq_id=1)
        self.assertEqual(ctx.length(1), 6)
        a, b = ctx.decode([5], seq_id=0), ctx.decode([5], seq_id=1)
        self.assertEqual([float(x) for x in a], [float(x) for x in b])
        with self.assertRaises(qisa.QisaError):
            ctx.load_state(state[:-1], seq_id=1)
        ctx.truncate(2, seq_id=1)
        self.assertEqual(ctx.length(1), 2)
        small = qisa.Context.memory_estimate(m)
        self.assertGreater(qisa.Context.memory_estimate(m, max_sequences=100), small)


if __name__ == "__main__":
    unittest.main()
