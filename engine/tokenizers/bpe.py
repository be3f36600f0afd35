"""Byte-level BPE (GPT-2 style) trained on the corpus with the HuggingFace `tokenizers` library.

Byte-level means the base alphabet is the 256 bytes, each shown as a printable character (space is 'Ġ', newline
'Ċ'), so any text encodes and round-trips. The tokenizer is stored as the library's own JSON, which other tools can
load, and `merges()` lists the learned merges in order so the app can replay how words get built up.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import TokenizerError
from .char import check_ids, visible
from .text_check import require_unicode


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte -> printable character table: printable Latin-1 bytes stand for themselves,
    the other 68 bytes (controls, space, a few Latin-1 gaps) are moved to code points 256 and up, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


MAX_VOCAB = 1_000_000   # far above what any corpus here yields; the tokenizers library overflows past 2**64

MAX_JSON_BYTES = 64 * 1024 * 1024   # a 50,000-token vocabulary with its merges is about 2 MB


def check_json(text) -> int:
    """The vocabulary size of the tokenizers library's JSON `text`, after checking its structure without the
    library (whose Rust parser is not bounded in depth or size): at most MAX_JSON_BYTES, nesting at most 8 deep,
    a BPE model whose vocabulary maps distinct strings to the ids 0..n-1 and whose merges are pairs of strings.
    Raises TokenizerError."""
    from ..safe_read import parse_json
    if type(text) is not str:
        raise TokenizerError(f"stored BPE tokenizer must be JSON text, not {type(text).__name__}")
    if len(text) > MAX_JSON_BYTES:
        raise TokenizerError(f"stored BPE tokenizer is {len(text):,} characters, more than {MAX_JSON_BYTES:,}")
    d = parse_json(text, "stored BPE tokenizer", TokenizerError, max_depth=8)
    model = d.get("model") if isinstance(d, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise TokenizerError("stored tokenizer JSON is not a BPE tokenizer")
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError("stored BPE tokenizer has no vocabulary")
    ids = list(vocab.values())
    if any(type(i) is not int for i in ids) or sorted(ids) != list(range(len(ids))):
        raise TokenizerError("stored BPE tokenizer has vocabulary ids that are not 0..n-1, each once")
    if not isinstance(merges, list) or not all(
            (type(m) is str and " " in m) or (type(m) is list and len(m) == 2 and all(type(p) is str for p in m))
            for m in merges):
        raise TokenizerError("stored BPE tokenizer has merges that are not pairs of strings")
    added = d.get("added_tokens")
    if added is None:
        added = []
    if not isinstance(added, list) or not all(
            isinstance(a, dict) and type(a.get("id")) is int and type(a.get("content")) is str
            and vocab.get(a["content"]) == a["id"] for a in added):
        # GPT-2's <|endoftext|> is an added token that is also in the vocabulary, under the same id; one outside
        # it would make the vocabulary larger than the model's
        raise TokenizerError("stored BPE tokenizer has added tokens that are not entries of its vocabulary")
    return len(vocab)


ENCODE_PIECE = 1 << 16   # characters per piece of a long text's encode_batch


def split_at_word_starts(text: str, size: int) -> list[str]:
    """`text` in pieces of about `size` characters, each cut just before a space that sits between two
    non-space characters. GPT-2's pre-tokenizer starts a pre-token there (the space joins the following word, the
    previous pre-token ends before it), so encoding the pieces one by one gives exactly the ids of the whole. A
    stretch without such a space stays in one piece."""
    pieces, start = [], 0
    while len(text) - start > size:
        cut = start + size
        while cut < len(text) - 1 and not (text[cut] == " " and not text[cut - 1].isspace()
                                           and not text[cut + 1].isspace()):
            cut += 1
        if cut >= len(text) - 1:
            break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


class BPETokenizer:
    kind = "bpe"

    def __init__(self, tokenizer: Tokenizer):
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self._special = {t.content for t in tokenizer.get_added_tokens_decoder().values()}

    @classmethod
    def train(cls, text: str, vocab_size: int = 512) -> "BPETokenizer":
        """Learn merges until the vocabulary has `vocab_size` entries (fewer if the corpus runs out of pairs)."""
        if not require_unicode(text):
            raise TokenizerError("cannot train BPE on empty text")
        return cls.train_from_pieces([text], vocab_size)

    @classmethod
    def train_from_pieces(cls, pieces, vocab_size: int = 512) -> "BPETokenizer":
        """`train` on a text given as an iterable of pieces (the tokenizers library's train_from_iterator). Pieces
        cut where the byte-level pre-tokenizer cuts (split_at_word_starts) learn exactly the merges of the whole
        text, which is how a corpus too large for memory is trained on (engine/prepare.py)."""
        if not isinstance(vocab_size, int) or not 256 <= vocab_size <= MAX_VOCAB:
            raise TokenizerError(f"byte-level BPE needs a vocab_size from 256 (the bytes) to {MAX_VOCAB:,}, "
                                 f"not {vocab_size!r}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[], show_progress=False)
        tok.train_from_iterator(pieces, trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        """Long texts are encoded as pieces with `encode_batch`, which releases the GIL (a single `encode` of a
        1 MB text holds it for most of a second, freezing every other Python thread: the GUI's, in the app).
        The pieces are cut only where the byte-level pre-tokenizer cuts anyway, so the ids are the same."""
        if len(require_unicode(text)) <= ENCODE_PIECE:
            return self.tok.encode(text).ids
        return [i for e in self.tok.encode_batch(split_at_word_starts(text, ENCODE_PIECE)) for i in e.ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(check_ids(ids, self.vocab_size), skip_special_tokens=False)

    def stream_decoder(self) -> "_ByteStream":
        """decode() one token at a time: bytes of a character split over tokens wait for the rest."""
        return _ByteStream(self)

    def token_bytes(self, i: int) -> bytes:
        """The bytes token i stands for; a special token (GPT-2's <|endoftext|>) is its text in UTF-8."""
        table = byte_decoder()
        token = self.tok.id_to_token(check_ids([i], self.vocab_size)[0])
        if token in self._special:
            return token.encode("utf-8")
        return bytes(table[c] for c in token)

    def token_str(self, i: int) -> str:
        """The token's text with spaces as ␣ and newlines as \\n; a token holding part of a multi-byte character
        shows the leftover bytes as \\xNN."""
        return visible(self.token_bytes(i).decode("utf-8", errors="backslashreplace"))

    def merges(self) -> list[tuple[str, str]]:
        """The learned merges in the order they are applied, as pairs of byte-level token strings."""
        raw = json.loads(self.tok.to_str())["model"]["merges"]
        # Older `tokenizers` releases store a merge as "a b", newer ones as ["a", "b"].
        return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]

    def save(self, path: str | Path) -> None:
        """Write the library's JSON format, loadable with `tokenizers.Tokenizer.from_file`."""
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        """A tokenizer from the library's JSON file: a regular file of at most MAX_JSON_BYTES, checked by
        check_json before the library parses it. Raises TokenizerError."""
        from ..safe_read import read_regular
        data = read_regular(path, MAX_JSON_BYTES, "tokenizer file", TokenizerError)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TokenizerError(f"tokenizer file {path} is not UTF-8 (byte offset {e.start})") from None
        return cls.from_dict({"kind": "bpe", "tokenizer_json": text})

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer_json": self.tok.to_str()}

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        """Raises TokenizerError when the stored JSON is not a BPE tokenizer (check_json) or the library refuses
        it."""
        check_json(d["tokenizer_json"])
        try:
            return cls(Tokenizer.from_str(d["tokenizer_json"]))
        except Exception as e:
            raise TokenizerError(f"stored BPE tokenizer is not valid tokenizers JSON: {e}") from None


class _ByteStream:
    """A byte-level token is a run of bytes; UTF-8's incremental decoder holds an incomplete character until its
    last byte arrives and turns invalid bytes into '\ufffd', as the library's lossy decode of the whole does."""

    def __init__(self, tokenizer: BPETokenizer):
        import codecs
        self.tokenizer = tokenizer
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.cache: dict[int, bytes] = {}

    def add(self, i: int) -> str:
        b = self.cache.get(i)
        if b is None:
            try:
                b = self.tokenizer.token_bytes(i)
            except KeyError:   # an added token outside the byte alphabet: its text as it decodes
                b = self.tokenizer.decode([i]).encode("utf-8")
            self.cache[i] = b
        return self.utf8.decode(b)

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)
