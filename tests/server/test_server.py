"""qisa-server over real HTTP on 127.0.0.1: completions equal qisa_generate
(through the Python bindings), streaming, 32 concurrent clients, a client
that disconnects, bad input, queue limits, deadlines and SIGTERM draining.

Environment: QISA_SERVER (the binary), QISA_MODEL (a character-vocabulary
model with a 16-token window), QISA_BPE_MODEL (a byte-level BPE model: the
bundled one), QISA_LIBRARY (libqisa for the bindings). With
QISA_SERVER_REFERENCE=server (sanitizer builds, whose library Python cannot
load) the expected results come from the same server run with one slot, one
request at a time, instead of from qisa_generate. Every server listens on a
free loopback port, runs with --lifetime as a backstop and is stopped by the
test that started it."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SERVER = os.environ["QISA_SERVER"]
MODEL = os.environ["QISA_MODEL"]
BPE_MODEL = os.environ.get("QISA_BPE_MODEL")
MODE = os.environ.get("QISA_SERVER_REFERENCE", "bindings")
if MODE == "bindings":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
    import qisa  # noqa: E402


class Server:
    """One qisa-server process on a free loopback port."""

    def __init__(self, *args, model=MODEL):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SERVER, "-m", model, "--host", "127.0.0.1", "--port", "0", "--lifetime", "240",
                                      "--quiet", *args], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError("qisa-server did not start: " + line + self.stderr())
        self.port = int(line.strip().rsplit(":", 1)[1])
        deadline = time.time() + 30
        while self.get("/health")[0] != 200:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("qisa-server never became ready: " + self.stderr())
            time.sleep(0.05)

    def stderr(self):
        if self.log.closed:
            return self.final_stderr
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=120):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = dict({"Content-Type": "application/json"} if data is not None else {}, **(headers or {}))
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path, **kw):
        try:
            return self.request("GET", path, **kw)
        except (urllib.error.URLError, ConnectionError):
            return 0, None

    def complete(self, **body):
        return self.request("POST", "/v1/completions", body)

    def stream(self, **body):
        """The events of a streamed completion, parsed, and whether [DONE] came."""
        req = urllib.request.Request(self.url("/v1/completions"), data=json.dumps(dict(body, stream=True)).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        events, done = [], False
        with urllib.request.urlopen(req, timeout=120) as r:
            self.assert_sse = r.headers.get("Content-Type", "")
            for line in r:
                line = line.decode().rstrip("\n")
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                events.append(json.loads(line[6:]))
        return events, done

    def metric(self, name):
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.final_stderr = self.stderr()
            self.log.close()


class BindingsReference:
    """qisa_generate through the bindings."""

    def __init__(self, model=MODEL):
        self.model = qisa.Model(model)
        self.n_ctx = self.model.n_ctx

    def tokenize(self, text):
        return self.model.tokenize(text)

    def generate(self, prompt, max_tokens, seed, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                 repeat_penalty=1.1, repeat_last_n=64, stop=()):
        """The text, prompt and generated token counts, and the finish reason."""
        with qisa.Context(self.model) as ctx:
            text = "".join(ctx.generate(prompt, max_tokens=max_tokens, seed=seed, temperature=temperature,
                                        top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                                        repeat_last_n=repeat_last_n, stop=stop))
            r = ctx.last_result
        return text, r["n_prompt_tokens"], r["n_generated"], "length" if r["stop_reason"] == 0 else "stop"

    def close(self):
        self.model.close()


class ServerReference:
    """The same request on a server with one slot, one at a time."""

    def __init__(self, model=MODEL):
        self.server = Server("--parallel", "1", model=model)
        self.n_ctx = self.server.get("/v1/models")[1]["data"][0]["meta"]["n_ctx"]

    def tokenize(self, text):
        return self.server.request("POST", "/tokenize", {"content": text})[1]["tokens"]

    def generate(self, prompt, max_tokens, seed, **kw):
        status, body = self.server.complete(prompt=prompt, max_tokens=max_tokens, seed=seed, **kw)
        assert status == 200, body
        u = body["usage"]
        return body["choices"][0]["text"], u["prompt_tokens"], u["completion_tokens"], body["choices"][0]["finish_reason"]

    def close(self):
        assert self.server.stop() == 0, self.server.stderr()


def make_reference(model=MODEL):
    return BindingsReference(model) if MODE == "bindings" else ServerReference(model)


CASES = [
    dict(prompt="ROMEO:", max_tokens=40, seed=7),
    dict(prompt="JULIET:\nO Romeo", max_tokens=60, seed=1, temperature=1.2, top_k=0, top_p=1.0, min_p=0.0),
    dict(prompt="First Citizen:\nWe are accounted poor citizens, the patricians good.", max_tokens=30, seed=3,
         temperature=0.0, repeat_penalty=1.0),
    dict(prompt="KING", max_tokens=80, seed=11, stop=["\n\n", "the"]),
    dict(prompt="A", max_tokens=0, seed=5),
]


@unittest.skipUnless(BPE_MODEL, "QISA_BPE_MODEL not set")
class BpeModelTest(unittest.TestCase):
    """The same contract on a byte-level BPE model: any UTF-8 prompt encodes
    (byte fallback), and streamed pieces never split a character, so a token
    that ends inside one is held back and its piece may be empty."""

    @classmethod
    def setUpClass(cls):
        cls.ref = make_reference(BPE_MODEL)
        cls.server = Server("--parallel", "4", model=BPE_MODEL)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ref.close()
        assert code == 0, "qisa-server exited with %s: %s" % (code, cls.server.stderr())

    def test_completions_and_streams_equal_qisa_generate(self):
        for case in CASES + [dict(prompt="日本語 — ROMEO:", max_tokens=30, seed=2)]:
            with self.subTest(case=case):
                status, body = self.server.complete(**case)
                self.assertEqual(status, 200, body)
                want, n_prompt, n_generated, finish = self.ref.generate(**case)
                self.assertEqual(body["choices"][0]["text"], want)
                self.assertEqual(body["usage"]["prompt_tokens"], n_prompt)
                self.assertEqual(body["usage"]["completion_tokens"], n_generated)
                self.assertEqual(body["choices"][0]["finish_reason"], finish)
                events, done = self.server.stream(**case)
                self.assertTrue(done)
                self.assertEqual("".join(e["choices"][0]["text"] for e in events), want)
                self.assertEqual(events[-1]["usage"]["completion_tokens"], n_generated)

    def test_tokenize_round_trips_any_text(self):
        text = "KING RICHARD III:\n日本語 \u00e9t\u00e9 \U0001F600 ~"
        status, body = self.server.request("POST", "/tokenize", {"content": text})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tokens"], self.ref.tokenize(text))
        status, back = self.server.request("POST", "/detokenize", {"tokens": body["tokens"]})
        self.assertEqual(status, 200, back)
        self.assertEqual(back["content"], text)


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = make_reference()
        cls.server = Server("--parallel", "8", "--max-queue", "64")

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ref.close()
        assert code == 0, "qisa-server exited with %s: %s" % (code, cls.server.stderr())

    def expect_ok_afterwards(self):
        status, body = self.server.complete(prompt="ROMEO:", max_tokens=5, seed=2)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], 5)

    def test_completion_equals_qisa_generate(self):
        for case in CASES:
            with self.subTest(case=case):
                status, body = self.server.complete(**case)
                self.assertEqual(status, 200, body)
                want, n_prompt, n_generated, finish = self.ref.generate(**case)
                self.assertEqual(body["choices"][0]["text"], want)
                self.assertEqual(body["choices"][0]["finish_reason"], finish)
                self.assertEqual(body["usage"]["prompt_tokens"], n_prompt)
                self.assertEqual(body["usage"]["completion_tokens"], n_generated)
                self.assertEqual(body["usage"]["total_tokens"], n_prompt + n_generated)
                self.assertEqual(body["object"], "text_completion")
                self.assertTrue(body["id"].startswith("cmpl-"))

    def test_prompt_longer_than_the_window_slides_as_qisa_generate(self):
        prompt = "MENENIUS:\nI tell you, friends, most charitable care Have the patricians of you."
        self.assertGreater(len(prompt), self.ref.n_ctx)
        status, body = self.server.complete(prompt=prompt, max_tokens=20, seed=9)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["choices"][0]["text"], self.ref.generate(prompt, 20, 9)[0])

    def test_token_id_prompt_equals_text_prompt(self):
        ids = self.ref.tokenize("ROMEO:")
        a = self.server.complete(prompt=ids, max_tokens=20, seed=4)[1]
        b = self.server.complete(prompt="ROMEO:", max_tokens=20, seed=4)[1]
        self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])

    def test_stream_yields_the_same_text_piece_by_piece(self):
        for case in CASES[:4]:
            with self.subTest(case=case):
                events, done = self.server.stream(**case)
                self.assertTrue(done)
                self.assertIn("text/event-stream", self.server.assert_sse)
                pieces = [e["choices"][0]["text"] for e in events]
                want, _, n_generated, _ = self.ref.generate(**case)
                self.assertEqual("".join(pieces), want)
                if not case.get("stop"):  # one event per token (a stop string may hold pieces back)
                    self.assertEqual(len([p for p in pieces if p]), n_generated)
                self.assertTrue(all(e["choices"][0]["finish_reason"] is None for e in events[:-1]))
                self.assertIn(events[-1]["choices"][0]["finish_reason"], ("stop", "length"))
                self.assertEqual(events[-1]["usage"]["completion_tokens"], n_generated)

    def test_32_concurrent_clients_get_their_sequential_results(self):
        cases = []
        for i in range(32):
            cases.append(dict(prompt=["ROMEO:", "JULIET:", "KING HENRY:\nNow", "Clown:\nAy"][i % 4],
                              max_tokens=12 + (i * 7) % 40, seed=100 + i,
                              temperature=[0.0, 0.7, 1.0][i % 3], repeat_penalty=[1.0, 1.1][i % 2],
                              stream=(i % 3 == 0)))
        want = [self.ref.generate(**{k: v for k, v in c.items() if k != "stream"})[0] for c in cases]
        got = [None] * len(cases)
        errors = []
        start = threading.Barrier(len(cases))

        def client(i):
            try:
                start.wait()
                c = cases[i]
                if c["stream"]:
                    events, done = self.server.stream(**{k: v for k, v in c.items() if k != "stream"})
                    got[i] = "".join(e["choices"][0]["text"] for e in events) if done else None
                else:
                    status, body = self.server.complete(**c)
                    got[i] = body["choices"][0]["text"] if status == 200 else body
            except Exception as e:  # reported below, with the client's index
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(cases))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        for i in range(len(cases)):
            self.assertEqual(got[i], want[i], "client %d: %r" % (i, cases[i]))
        # The requests really ran side by side: some decode call held several.
        self.assertGreater(self.server.metric("qisa_batch_entries_sum") / self.server.metric("qisa_batch_entries_count"),
                           1.0)

    def test_tokenize_and_detokenize(self):
        text = "To be, or not to be:\nthat is the question."
        status, body = self.server.request("POST", "/tokenize", {"content": text})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tokens"], self.ref.tokenize(text))
        self.assertEqual("".join(body["pieces"]), text)
        status, body2 = self.server.request("POST", "/detokenize", {"tokens": body["tokens"]})
        self.assertEqual((status, body2["content"]), (200, text))

    def test_models_health_metrics(self):
        status, body = self.server.get("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["data"][0]["id"], os.path.basename(MODEL)[:-len(".qisa")])
        self.assertEqual(body["data"][0]["meta"]["n_ctx"], self.ref.n_ctx)
        status, body = self.server.get("/health")
        self.assertEqual((status, body["status"]), (200, "ok"))
        self.server.complete(prompt="ROMEO:", max_tokens=3, seed=1)
        status, text = self.server.get("/metrics")
        self.assertEqual(status, 200)
        for name in ("qisa_requests_total", "qisa_generated_tokens_total", "qisa_queue_depth",
                     "qisa_request_duration_seconds_bucket", "qisa_time_to_first_token_seconds_count",
                     "qisa_decode_tokens_per_second", "qisa_prefill_tokens_per_second", "qisa_batch_entries_bucket"):
            self.assertIn(name, text)
        self.assertGreaterEqual(self.server.metric("qisa_generated_tokens_total"), 3)

    def test_bad_input_gets_its_status_and_the_server_keeps_serving(self):
        n_ctx = self.ref.n_ctx
        bad = [
            (400, dict(raw=b"{not json")),
            (400, dict(raw=b"[1, 2, 3]")),
            (400, dict(raw=b"[" * 100000 + b"]" * 100000)),  # deep nesting
            (400, dict(raw=b'{"prompt": "\xff\xfe"}')),  # invalid UTF-8
            (400, dict(body={})),
            (400, dict(body={"prompt": 5})),
            (400, dict(body={"prompt": ""})),
            (400, dict(body={"prompt": []})),
            (400, dict(body={"prompt": ["a", "b"]})),
            (400, dict(body={"prompt": [1, 2, 100000]})),
            (400, dict(body={"prompt": [1, -1]})),
            (400, dict(body={"prompt": "ROMEO:", "max_tokens": "ten"})),
            (400, dict(body={"prompt": "ROMEO:", "max_tokens": -1})),
            (400, dict(body={"prompt": "ROMEO:", "max_tokens": 10 ** 12})),
            (400, dict(body={"prompt": "ROMEO:", "max_tokens": 2.5})),
            (400, dict(body={"prompt": "ROMEO:", "temperature": "hot"})),
            (400, dict(body={"prompt": "ROMEO:", "temperature": -1})),
            (400, dict(body={"prompt": "ROMEO:", "top_p": 0})),
            (400, dict(body={"prompt": "ROMEO:", "top_p": 2})),
            (400, dict(body={"prompt": "ROMEO:", "min_p": -0.5})),
            (400, dict(body={"prompt": "ROMEO:", "repeat_penalty": 0})),
            (400, dict(body={"prompt": "ROMEO:", "repeat_last_n": 10 ** 9})),
            (400, dict(body={"prompt": "ROMEO:", "seed": "x"})),
            (400, dict(body={"prompt": "ROMEO:", "stream": "yes"})),
            (400, dict(body={"prompt": "ROMEO:", "stop": 3})),
            (400, dict(body={"prompt": "ROMEO:", "stop": [""]})),
            (400, dict(body={"prompt": "ROMEO:", "stop": ["x"] * 100})),
            (400, dict(body={"prompt": "ROMEO:", "n": 2})),
            (400, dict(body={"prompt": "ROMEO:", "logprobs": 3})),
            (400, dict(body={"prompt": "ROMEO:", "echo": True})),
            (400, dict(body={"prompt": "ROMEO:", "frequency_penalty": 0.5})),
            (400, dict(body={"prompt": "日本語"})),  # characters the vocabulary lacks
            (400, dict(path="/tokenize", body={"content": 3})),
            (400, dict(path="/detokenize", body={"tokens": [0, 10 ** 6]})),
            (413, dict(raw=b'{"prompt": "' + b"a" * (2 << 20) + b'"}')),
            (404, dict(path="/v1/chat/completions", body={"prompt": "x"})),
        ]
        for want, kw in bad:
            with self.subTest(want=want, path=kw.get("path"), body=str(kw.get("body", kw.get("raw")))[:80]):
                path = kw.pop("path", "/v1/completions")
                try:
                    status, body = self.server.request("POST", path, **kw)
                except (ConnectionError, urllib.error.URLError) as e:
                    # A server may close the connection after refusing an
                    # oversized body before the client has sent it all.
                    self.assertEqual(want, 413, repr(e))
                    continue
                self.assertEqual(status, want, body)
                self.assertIsInstance(body, dict, body)
                self.assertIn("message", body["error"])
                self.assertTrue(body["error"]["message"])
        self.expect_ok_afterwards()
        self.assertIsNone(self.server.proc.poll())
        # A 'prompt' that is too long for the window is fine here (the
        # default policy slides); see the error-policy server below.
        status, _ = self.server.complete(prompt="a" * (n_ctx * 3), max_tokens=2, seed=1)
        self.assertEqual(status, 200)


class PolicyTest(unittest.TestCase):
    """Servers started with particular limits."""

    N_CTX = None

    @classmethod
    def setUpClass(cls):
        s = Server()
        cls.N_CTX = s.get("/v1/models")[1]["data"][0]["meta"]["n_ctx"]
        assert s.stop() == 0

    def long_request(self, server, **extra):
        """A streamed request that runs until its client lets go; returns the
        open response after its first piece."""
        req = urllib.request.Request(server.url("/v1/completions"), method="POST", data=json.dumps(
            dict(prompt="ROMEO:", max_tokens=10 ** 6, seed=1, stream=True, **extra)).encode(),
            headers={"Content-Type": "application/json"})
        r = urllib.request.urlopen(req, timeout=60)
        for line in r:
            if line.startswith(b"data: "):
                break
        return r

    def wait_for(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return False

    def test_bad_starts_exit_with_a_message(self):
        fixtures = os.path.join(os.path.dirname(__file__), "..", "fixtures")
        cases = [
            (2, "unknown option", ["-m", MODEL, "--bogus"]),
            (2, "needs an integer", ["-m", MODEL, "--parallel", "0"]),
            (2, "no model", []),
            (1, "cannot load", ["-m", os.path.join(fixtures, "no-such-model.qisa"), "--port", "0"]),
            # The research code's future-reading attention cannot serve completions.
            (1, "transposed", ["-m", os.path.join(fixtures, "tiny-qisa-v3-transposed.qisa"), "--port", "0"]),
        ]
        for code, text, args in cases:
            with self.subTest(args=args):
                r = subprocess.run([SERVER, "--host", "127.0.0.1", *args], capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, code, r.stderr)
                self.assertIn(text, r.stderr)

    def test_api_key(self):
        s = Server("--api-key", "sesame")
        try:
            self.assertEqual(s.complete(prompt="ROMEO:", max_tokens=2)[0], 401)
            status, body = s.request("POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 2},
                                     headers={"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401, body)
            self.assertEqual(body["error"]["type"], "authentication_error")
            self.assertEqual(s.get("/v1/models")[0], 401)
            self.assertEqual(s.get("/health")[0], 200)  # load balancers probe without a key
            status, body = s.request("POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 2, "seed": 1},
                                     headers={"Authorization": "Bearer sesame"})
            self.assertEqual(status, 200, body)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_context_shift_error_refuses_long_prompts(self):
        s = Server("--context-shift", "error")
        try:
            status, body = s.complete(prompt="a" * (self.N_CTX + 1), max_tokens=2)
            self.assertEqual(status, 400, body)
            self.assertEqual(body["error"]["code"], "context_length_exceeded")
            # Generation stops at the full window instead of sliding.
            status, body = s.complete(prompt="ROMEO:", max_tokens=100, seed=1)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["choices"][0]["finish_reason"], "length")
            self.assertEqual(body["usage"]["total_tokens"], self.N_CTX + 1)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_disconnect_mid_stream_frees_the_slot(self):
        s = Server("--parallel", "1", "--max-tokens", "1000000")
        try:
            r = self.long_request(s)
            self.assertEqual(s.get("/health")[1]["slots_idle"], 0)
            r.close()  # the client goes away mid-stream
            self.assertTrue(self.wait_for(lambda: s.get("/health")[1]["slots_idle"] == 1), s.stderr())
            self.assertEqual(s.metric('qisa_requests_total{outcome="cancelled"}'), 1)
            status, body = s.complete(prompt="ROMEO:", max_tokens=5, seed=2)
            self.assertEqual(status, 200, body)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_full_queue_gets_503_and_health_says_busy(self):
        s = Server("--parallel", "1", "--max-queue", "0", "--max-tokens", "1000000")
        try:
            r = self.long_request(s)
            status, body = s.complete(prompt="ROMEO:", max_tokens=2)
            self.assertEqual(status, 503, body)
            self.assertEqual(body["error"]["code"], "queue_full")
            self.assertEqual(s.get("/health")[1]["status"], "busy")
            self.assertEqual(s.get("/health?fail_on_no_slot=1")[0], 503)
            r.close()
            self.assertTrue(self.wait_for(lambda: s.get("/health")[1]["status"] == "ok"))
            self.assertEqual(s.complete(prompt="ROMEO:", max_tokens=2, seed=1)[0], 200)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_deadline(self):
        s = Server("--timeout", "0.5", "--max-tokens", "1000000")
        try:
            t0 = time.time()
            status, body = s.complete(prompt="ROMEO:", max_tokens=10 ** 6, seed=1)
            self.assertEqual(status, 504, body)
            self.assertLess(time.time() - t0, 10)
            self.assertEqual(s.complete(prompt="ROMEO:", max_tokens=2, seed=1)[0], 200)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_sigterm_drains_in_flight_requests(self):
        s = Server("--parallel", "2")
        n = 3000
        result = {}

        def client():
            result["r"] = s.complete(prompt="ROMEO:", max_tokens=n, seed=5)

        t = threading.Thread(target=client)
        t.start()
        self.assertTrue(self.wait_for(lambda: s.get("/health")[1]["slots_processing"] == 1))
        s.proc.send_signal(signal.SIGTERM)
        t.join(timeout=60)
        code = s.stop()
        self.assertEqual(code, 0, s.stderr())
        status, body = result["r"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], n)
        self.assertIn("draining", s.stderr())


if __name__ == "__main__":
    unittest.main()
