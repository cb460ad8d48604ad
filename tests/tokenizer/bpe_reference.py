"""An independent byte-level BPE encoder, written from docs/format.md
("Byte-level BPE") rather than from libqisa's C++: GPT-2's byte map built
the way GPT-2's encoder.py describes it, the chunk rule as one regular
expression, and the textbook merge loop (merge every occurrence of the
best-ranked pair, repeat)."""

import re


def bytes_to_unicode():
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the rest
    take code points from 256 upwards, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_LETTER = rb"A-Za-z\x80-\xff"
_DIGIT = rb"0-9"
_SPACE = rb" \t\r\x0b\x0c"
# One alternative per chunk kind, in the rule's order: a word, number or
# punctuation run with an optional leading space; newlines; a run of spaces
# that leaves its last space to a following word; any other run of spaces.
CHUNK = re.compile(
    rb" ?[" + _LETTER + rb"]+"
    rb"| ?[" + _DIGIT + rb"]+"
    rb"| ?[^" + _LETTER + _DIGIT + _SPACE + rb"\n]+"
    rb"|\n+"
    rb"|[" + _SPACE + rb"]+?(?= [^" + _SPACE + rb"\n])"
    rb"|[" + _SPACE + rb"]+",
    re.S,
)
MAX_CHUNK = 64


def chunks(data):
    for m in CHUNK.finditer(data):
        c = m.group(0)
        for i in range(0, len(c), MAX_CHUNK):
            yield c[i:i + MAX_CHUNK]


class Reference:
    def __init__(self, stored_pieces, stored_merges):
        inverse = {u: b for b, u in bytes_to_unicode().items()}
        self.pieces = [bytes(inverse[ch] for ch in p) for p in stored_pieces]
        self.id_of = {p: i for i, p in enumerate(self.pieces)}
        self.rank = {}
        for r, m in enumerate(stored_merges):
            left, right = m.split(" ")
            a = bytes(inverse[ch] for ch in left)
            b = bytes(inverse[ch] for ch in right)
            self.rank.setdefault((a, b), r)
        self.cache = {}

    def encode_chunk(self, chunk):
        if chunk in self.cache:
            return self.cache[chunk]
        word = [bytes([b]) for b in chunk]
        while len(word) > 1:
            ranked = [(self.rank[p], p) for p in zip(word, word[1:]) if p in self.rank]
            if not ranked:
                break
            _, (a, b) = min(ranked)
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = [self.id_of[p] for p in word]
        self.cache[chunk] = ids
        return ids

    def encode(self, data):
        out = []
        for c in chunks(data):
            out.extend(self.encode_chunk(c))
        return out
