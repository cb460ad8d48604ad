"""libqisa's byte-level BPE against bpe_reference.py on the trainer's
tiny-qisa-v3-bpe fixture: identical ids on tiny Shakespeare, random bytes
(every byte value), invalid UTF-8, long runs and non-Latin text; exact
round trips through qisa_detokenize."""

import json
import os
import random
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))
sys.path.insert(0, HERE)
import qisa  # noqa: E402
from bpe_reference import Reference, bytes_to_unicode, chunks  # noqa: E402

FIXTURES = os.environ.get("QISA_FIXTURES", os.path.join(HERE, "..", "fixtures"))
MODEL = os.path.join(FIXTURES, "tiny-qisa-v3-bpe.qisa")
TEXT = os.environ.get("QISA_TEXT", os.path.join(HERE, "..", "..", "data", "tinyshakespeare.txt"))
INSPECT = os.environ.get("QISA_INSPECT", "qisa-inspect")


class BpeReferenceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        table = json.loads(subprocess.run([INSPECT, "--vocab", "--json", MODEL], check=True,
                                          capture_output=True).stdout)
        assert table["kind"] == "byte-bpe"
        cls.ref = Reference(table["pieces"], table["merges"])
        cls.model = qisa.Model(MODEL)

    def check(self, data):
        got = self.model.tokenize(data)
        want = self.ref.encode(data)
        self.assertEqual(len(got), len(want))
        if got != want:
            at = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            self.fail(f"first difference at token {at}: libqisa {got[at]}, reference {want[at]}")
        self.assertEqual(self.model.detokenize_bytes(got), data)

    def test_byte_map_is_gpt2s(self):
        m = bytes_to_unicode()
        self.assertEqual(m[ord(" ")], "\u0120")
        self.assertEqual(m[ord("\n")], "\u010a")
        self.assertEqual(len(set(m.values())), 256)

    def test_tiny_shakespeare(self):
        with open(TEXT, "rb") as f:
            data = f.read()
        self.check(data)
        self.assertLess(len(self.model.tokenize(data)), 0.7 * len(data))

    def test_every_byte_value_and_random_bytes(self):
        rng = random.Random(11)
        self.check(bytes(range(256)))
        for n in (1, 2, 3, 17, 1000, 20000):
            self.check(bytes(rng.randrange(256) for _ in range(n)))

    def test_invalid_utf8_long_runs_and_other_scripts(self):
        for data in (b"\xc3\x28 \xa0\xa1 \xe2\x82 \xf0\x28\x8c\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf",
                     b" " * 500 + b"x" + b"\t \t  " * 40 + b"y",
                     b"a" * 300 + b"1" * 130 + b"!" * 70 + b"\n" * 65,
                     "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u4f60\u597d\uff0c\u4e16\u754c "
                     "\U0001f600\U0001f680 na\u00efve caf\u00e9 \u00bd\u00a0\u00ad-".encode(),
                     b"", b" ", b"\n", b"  \n  x", b"it's 2024-11-30\r\n\tdone.  ",
                     b"\x00\x01 null\x00bytes\x7f"):
            self.check(data)

    def test_chunk_rule_examples(self):
        self.assertEqual(list(chunks(b"Hello world, it's 2024!\n\nOK")),
                         [b"Hello", b" world", b",", b" it", b"'", b"s", b" 2024", b"!", b"\n\n", b"OK"])
        self.assertEqual(list(chunks(b"a   b \tc \n d")), [b"a", b"  ", b" b", b" \t", b"c", b" ", b"\n", b" d"])


if __name__ == "__main__":
    unittest.main()
