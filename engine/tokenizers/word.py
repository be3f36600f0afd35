"""Word tokenizer: words and single punctuation marks or symbols, newlines kept as tokens, a capped vocabulary
with <unk>.

A token is one user-perceived unit in any script: a word keeps its combining marks (Devanagari vowel signs and
virama, Arabic harakat, decomposed accents such as "e\u0301") and the zero-width (non-)joiners some scripts write
inside words; a symbol keeps its variation selector, skin-tone modifier and emoji tags, and ZWJ sequences
("👨‍👩‍👧") and flags (a pair of regional indicators) stay one token. This follows the parts of Unicode's
extended grapheme cluster rules (UAX #29, rules GB9-GB9c, GB11-GB13) that cross a word boundary, using only the
standard library's `re` and `unicodedata`.

Spaces are not tokens; `decode` puts them back by simple rules: none before closing punctuation (in any script:
"。", "،", "।", "»", ...), none after opening punctuation ("(", "¿", "«", "「"), ASCII quotes alternate
open/close, and none between two wide (CJK) characters, since Chinese and Japanese are written without spaces.
Newlines are tokens so that verse and code keep their line shape.
"""
from __future__ import annotations

import heapq
import re
import sys
import unicodedata
from collections import Counter
from typing import Iterator, Sequence

from ..errors import TokenizerError
from .text_check import require_unicode
from .char import check_ids, visible

UNK = "<unk>"


def _char_class(codepoints: list[int]) -> str:
    """A regex character class body (no brackets) of the given sorted code points, as ranges."""
    parts, i = [], 0
    while i < len(codepoints):
        j = i
        while j + 1 < len(codepoints) and codepoints[j + 1] == codepoints[j] + 1:
            j += 1
        lo, hi = chr(codepoints[i]), chr(codepoints[j])
        parts.append(re.escape(lo) if i == j else f"{re.escape(lo)}-{re.escape(hi)}")
        i = j + 1
    return "".join(parts)


def _mark_codepoints(planes=(0, 1, 14)) -> list[int]:
    """Every combining mark (categories Mn, Mc, Me) in the given Unicode planes, for the Python's Unicode
    version. Marks are assigned only in planes 0, 1 and 14 (variation selectors supplement); the other planes
    hold ideographs and private use. A test checks this against a scan of all of Unicode."""
    return [c for p in planes for c in range(p << 16, min((p + 1) << 16, sys.maxunicode + 1))
            if unicodedata.category(chr(c))[0] == "M"]


_MARKS = _mark_codepoints()
# Marks in two classes: re turns a class of BMP characters into a bitmap, but one with astral ranges is scanned
# range by range, which after every word doubled the time to split a corpus. The astral class is only tried on an
# astral character.
_BMP_MARKS = _char_class([c for c in _MARKS if c < 0x10000])
_ASTRAL_MARKS = _char_class([c for c in _MARKS if c >= 0x10000])
_ASTRAL = r"(?=[\U00010000-\U0010ffff])"
_MARK = rf"(?:[{_BMP_MARKS}]|{_ASTRAL}[{_ASTRAL_MARKS}])"
# what may follow a symbol: marks (variation selectors, the keycap), skin-tone modifiers, emoji tag characters
_SYMBOL_EXTEND = rf"(?:[{_BMP_MARKS}]|{_ASTRAL}[{_ASTRAL_MARKS}\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f])"
_JOINERS = r"\u200c\u200d"        # zero-width non-joiner and joiner, written inside Indic and Persian words
_WORD_PART = rf"\w+(?:{_MARK}+\w*)*"
_SYMBOL_PART = rf"[^\w\s]{_SYMBOL_EXTEND}*"
# A newline; or a word with its marks and inner apostrophes, hyphens or joiners ("don't", "well-known",
# "नमस्ते"); or a flag (two regional indicators) or one other non-space character, with what extends it and any
# ZWJ-joined symbols after it.
TOKEN_RE = re.compile(
    r"\n"
    rf"|{_WORD_PART}(?:['’\-{_JOINERS}]{_WORD_PART})*"
    rf"|[\U0001f1e6-\U0001f1ff]{{2}}{_SYMBOL_EXTEND}*"
    rf"|{_SYMBOL_PART}(?:\u200d{_SYMBOL_PART})*")

_CLOSERS = set(".,;:!?)]}%…")
_OPENERS = set("([{")
_QUOTES = set("\"'")
# Words in the Unicode names of "other punctuation" (Po) that ends a clause or sentence, in any script.
_TERMINAL_NAMES = ("FULL STOP", "COMMA", "COLON", "QUESTION MARK", "EXCLAMATION MARK", "DANDA", "ELLIPSIS",
                   "TELEIA", "PER MILLE", "PER TEN THOUSAND")
# How decode spaces a token: WORD gets a space on both sides, CLOSE none before, OPEN none after, QUOTE
# alternates open and close, NEWLINE none on either side.
WORD, CLOSE, OPEN, QUOTE, NEWLINE = range(5)


def _spacing(tok: str) -> int:
    """The spacing kind of one token, from its first character (the rest are marks or joined symbols)."""
    if tok == "\n":
        return NEWLINE
    c = tok[0]
    if c in _QUOTES:
        return QUOTE
    if c in _CLOSERS:
        return CLOSE
    if c in _OPENERS:
        return OPEN
    cat = unicodedata.category(c)
    if cat in ("Pe", "Pf"):
        return CLOSE
    if cat in ("Ps", "Pi"):
        return OPEN
    if cat == "Po":
        name = unicodedata.name(c, "")
        if "INVERTED" in name:          # Spanish ¿ ¡ open a sentence
            return OPEN
        if any(word in name for word in _TERMINAL_NAMES):
            return CLOSE
    return WORD


def _wide(c: str) -> bool:
    """A wide or fullwidth letter or punctuation mark (CJK): no space is written between two of them. Emoji are
    wide too, but are symbols (So), and keep their spaces."""
    return unicodedata.east_asian_width(c) in ("W", "F") and unicodedata.category(c)[0] in "LP"


# Characters per regex call. One call holds the GIL throughout (0.9-3 ms for 16k characters on a 2-core machine,
# 0.2 ms for 4k); between calls the window's thread gets it. Every call from Qt into Python (a table cell's paint,
# a timer) waits for the end of the current one, so a table repaint during the job paid ~1 ms per cell at 16k.
# The whole count takes as long in 4k slices (83 against 82 ms on tinyshakespeare).
FINDALL_PIECE = 1 << 12
SORT_PIECE = 2048         # tokens per C sort call, for the same reason (bench/gui_stalls.py tokens_word_result)


def find_token_pieces(text: str) -> Iterator[list[str]]:
    """TOKEN_RE.findall over consecutive slices of the text that end at whitespace (no token spans whitespace, so
    the pieces joined are the findall of the whole text), one list per slice."""
    i = 0
    while i < len(text):
        j = min(i + FINDALL_PIECE, len(text))
        while j < len(text) and not text[j].isspace():
            j += 1
        yield TOKEN_RE.findall(text, i, j)
        i = j


def find_tokens(text: str) -> list[str]:
    """TOKEN_RE.findall(text), computed slice by slice so that another thread, the window's, gets the GIL
    between slices."""
    out: list[str] = []
    for piece in find_token_pieces(text):
        out.extend(piece)
    return out


def count_tokens(text: str) -> Counter:
    """Token -> occurrences in `text`. Counter(list) counts in one C call that holds the GIL for tens of ms on a
    1 MB corpus; counting slice by slice gives it up between slices."""
    counts: Counter = Counter()
    for piece in find_token_pieces(text):
        counts.update(piece)
    return counts


def rank_by_count(counts: dict[str, int]) -> list[str]:
    """The keys of `counts`, most frequent first, ties in code point order: sorted(counts, key=lambda t:
    (-counts[t], t)), without one long C sort. Alphabetical runs of SORT_PIECE keys are sorted and merged by
    heapq.merge (Python, so it gives up the GIL), then a stable sort by count keeps that order among ties."""
    keys = list(counts)
    runs = [sorted(keys[i:i + SORT_PIECE]) for i in range(0, len(keys), SORT_PIECE)]
    alphabetical = list(heapq.merge(*runs)) if len(runs) > 1 else (runs[0] if runs else [])
    return sorted(alphabetical, key=counts.__getitem__, reverse=True)   # reverse=True keeps ties' order


class WordTokenizer:
    kind = "word"

    def __init__(self, tokens: Sequence[str], lowercase: bool = False):
        if not tokens or tokens[0] != UNK:
            raise TokenizerError(f"a word vocabulary must start with {UNK}")
        self.tokens = list(tokens)
        self.lowercase = bool(lowercase)
        self.stoi = {t: i for i, t in enumerate(self.tokens)}
        self._spacing = [_spacing(t) for t in self.tokens]     # decode's rule for each token
        self.vocab_size = len(self.tokens)

    @classmethod
    def train(cls, text: str, vocab_size: int | None = None, lowercase: bool = False) -> "WordTokenizer":
        """Keep the `vocab_size - 1` most frequent tokens (ties broken alphabetically, so training is
        deterministic); everything else encodes as <unk>. vocab_size None keeps every token."""
        if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < 2):
            raise TokenizerError(f"word vocab_size must be an integer of at least 2, not {vocab_size!r}")
        text = require_unicode(text)
        return cls.from_counts(count_tokens(text.lower() if lowercase else text), vocab_size, lowercase)

    @classmethod
    def from_counts(cls, counts: Counter, vocab_size: int | None = None, lowercase: bool = False) -> "WordTokenizer":
        """The vocabulary `train` builds, from token counts gathered elsewhere (a corpus streamed in pieces cut at
        whitespace, engine/prepare.py, counts exactly what the whole text would)."""
        if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < 2):
            raise TokenizerError(f"word vocab_size must be an integer of at least 2, not {vocab_size!r}")
        counts = Counter(counts)
        counts.pop(UNK, None)
        if not counts:
            raise TokenizerError("the text has no words to build a vocabulary from")
        ranked = rank_by_count(counts)
        if vocab_size is not None:
            ranked = ranked[:vocab_size - 1]
        return cls([UNK] + ranked, lowercase)

    def split(self, text: str) -> list[str]:
        text = require_unicode(text)
        return find_tokens(text.lower() if self.lowercase else text)

    def encode(self, text: str) -> list[int]:
        get = self.stoi.get
        return [get(t, 0) for t in self.split(text)]

    def decode(self, ids: Sequence[int]) -> str:
        joiner = _Joiner(self)
        return "".join(joiner.add(i) for i in check_ids(ids, self.vocab_size))

    def stream_decoder(self) -> "_Joiner":
        """decode() one token at a time: the spacing state carries over (engine/tokenizers/stream.py)."""
        return _Joiner(self)

    def token_str(self, i: int) -> str:
        return visible(self.tokens[check_ids([i], self.vocab_size)[0]])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        """TokenizerError unless d["tokens"] is a list of distinct strings starting with <unk>."""
        tokens = d["tokens"]
        if type(tokens) is not list or any(type(t) is not str for t in tokens) or len(set(tokens)) != len(tokens):
            raise TokenizerError("stored word vocabulary must be a list of distinct strings")
        return cls(tokens, d.get("lowercase", False) is True)


class _Joiner:
    """decode()'s spacing rules as a state machine over tokens, so decoding a whole list and streaming one token
    at a time (engine/tokenizers/stream.py) share them."""

    def __init__(self, tokenizer: WordTokenizer):
        self.tokens, self.spacing, self.vocab_size = tokenizer.tokens, tokenizer._spacing, tokenizer.vocab_size
        self.glue = True          # no space before the next token (start of text, after a newline or an opener)
        self.prev_wide = False    # the text so far ends in a wide (CJK) character
        self.open_quote = {q: False for q in _QUOTES}

    def add(self, i: int) -> str:
        i = check_ids([i], self.vocab_size)[0]
        tok, kind = self.tokens[i], self.spacing[i]
        if kind == NEWLINE:
            self.glue, self.prev_wide = True, False
            return "\n"
        space = not self.glue and kind != CLOSE and not (self.prev_wide and _wide(tok[0]))
        self.glue = kind == OPEN
        if kind == QUOTE:
            closing = self.open_quote[tok[0]]
            self.open_quote[tok[0]] = not closing
            space = space and not closing
            self.glue = not closing
        self.prev_wide = _wide(tok[-1])
        return " " + tok if space else tok

    def flush(self) -> str:
        return ""
