"""What a tokenizer does to a corpus, for the app's Tokens tab: where each token starts and ends in the text, how
often each id occurs in the train split, how much it compresses (characters per token), what a capped word
vocabulary maps to <unk>, and how byte-level BPE builds a word up merge by merge.

Everything here is plain Python and numpy, so the app computes it in its worker process (app.common.worker_process)
and hands the GUI the result."""
from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..corpus import split_text
from ..errors import TokenizerError
from . import Tokenizer, build_for_corpus
from .bpe import BPETokenizer, byte_decoder
from .char import visible
from .word import TOKEN_RE, WordTokenizer, rank_by_count

UNK_SHOWN = 200   # most frequent <unk>-mapped words kept for display


@dataclass(frozen=True)
class TokenSpan:
    start: int    # character offsets into the text; a BPE token holding only the first bytes of a character is
    end: int      # empty (start == end) and the character goes to the token that completes it
    id: int


@dataclass(frozen=True)
class TokenStats:
    kind: str
    vocab_size: int
    train_chars: int
    val_chars: int
    train_tokens: int
    val_tokens: int
    counts: np.ndarray                    # (V,) int64: occurrences of each id in the train split
    order: np.ndarray                     # (V,) ids by count, most frequent first (ties: lower id first)
    unk_train: int = 0                    # <unk> tokens in the train split (word tokenizers; 0 otherwise)
    unk_val: int = 0
    unk_words: tuple[tuple[str, int], ...] = ()   # train-split words mapped to <unk>, most frequent first
    unk_distinct: int = 0                 # how many distinct words that is in all (unk_words keeps UNK_SHOWN)

    @property
    def chars_per_token(self) -> float:
        """Compression on the train split: 1.0 for characters, more for words and BPE."""
        return self.train_chars / self.train_tokens if self.train_tokens else 0.0

    @property
    def unk_fraction(self) -> float:
        return self.unk_train / self.train_tokens if self.train_tokens else 0.0

    @property
    def unk_val_fraction(self) -> float:
        return self.unk_val / self.val_tokens if self.val_tokens else 0.0


def form_tokenizer(kind: str, text: str, options: dict, val_fraction: float = 0.1) -> tuple[Tokenizer, str, str]:
    """Build the tokenizer a run with these settings would build, with the same rule as `api.prepare_corpus`: a
    char vocabulary from the whole text, word and BPE from the train split only. Returns (tokenizer, train, val)."""
    train, val = split_text(text, val_fraction)
    return build_for_corpus(kind, text, train, **options), train, val


def token_stats(tokenizer: Tokenizer, train: str, val: str) -> TokenStats:
    """Encode both splits and count. A char tokenizer meeting a character it lacks (a model's tokenizer on
    another corpus) raises TokenizerError naming the characters."""
    train_ids = np.asarray(tokenizer.encode(train), dtype=np.int64)
    val_ids = np.asarray(tokenizer.encode(val), dtype=np.int64)
    counts = np.bincount(train_ids, minlength=tokenizer.vocab_size).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -counts))
    extra = {}
    if isinstance(tokenizer, WordTokenizer):
        missing = _missing_words(tokenizer, train)
        extra = dict(unk_train=int(counts[0]), unk_val=int(np.count_nonzero(val_ids == 0)),
                     unk_words=_ranked(missing, UNK_SHOWN), unk_distinct=len(missing))
    return TokenStats(tokenizer.kind, tokenizer.vocab_size, len(train), len(val), len(train_ids), len(val_ids),
                      counts, order, **extra)


def unk_words(tokenizer: WordTokenizer, text: str, limit: int = UNK_SHOWN) -> tuple[tuple[str, int], ...]:
    """The words the vocabulary cap cut away, as (word, count), most frequent first (ties alphabetical)."""
    return _ranked(_missing_words(tokenizer, text), limit)


def _missing_words(tokenizer: WordTokenizer, text: str) -> Counter:
    stoi = tokenizer.stoi
    return Counter(w for w in tokenizer.split(text) if w not in stoi)


def _ranked(counts: Counter, limit: int) -> tuple[tuple[str, int], ...]:
    return tuple((w, counts[w]) for w in rank_by_count(counts)[:limit])


def token_spans(tokenizer: Tokenizer, text: str) -> list[TokenSpan]:
    """Each token of `tokenizer.encode(text)`, in order, with the characters of `text` it covers. Char and BPE
    spans tile the text; word spans skip the spaces between words (spaces are not word tokens)."""
    if isinstance(tokenizer, WordTokenizer):
        return _word_spans(tokenizer, text)
    ids = tokenizer.encode(text)
    if isinstance(tokenizer, BPETokenizer):
        # The tokens' bytes add up to the text's UTF-8; an incremental decoder gives each token the characters
        # it completes, so a character split over two tokens is drawn once, with the second.
        decoder, spans, pos = codecs.getincrementaldecoder("utf-8")(errors="replace"), [], 0
        for i in ids:
            n = len(decoder.decode(tokenizer.token_bytes(i)))
            spans.append(TokenSpan(pos, pos + n, i))
            pos += n
        return spans
    return [TokenSpan(k, k + 1, i) for k, i in enumerate(ids)]


def _word_spans(tokenizer: WordTokenizer, text: str) -> list[TokenSpan]:
    lowered = text.lower() if tokenizer.lowercase else text
    get = tokenizer.stoi.get
    if len(lowered) == len(text):
        return [TokenSpan(m.start(), m.end(), get(m.group(), 0)) for m in TOKEN_RE.finditer(lowered)]
    # Lower-casing changed the length ('İ' becomes 'i' and a combining dot, which is not a word character, so
    # 'İstanbul' encodes as three tokens): match on the original text so the offsets stay right, and split each
    # lower-cased match as encode() does; the extra tokens are empty spans at the match's end.
    spans = []
    for m in TOKEN_RE.finditer(text):
        for k, piece in enumerate(TOKEN_RE.findall(m.group().lower())):
            spans.append(TokenSpan(m.start() if k == 0 else m.end(), m.end(), get(piece, 0)))
    return spans


def readable(byte_chars: str) -> str:
    """A byte-level BPE string ('Ġthe') as text with visible whitespace ('␣the'); bytes that are not whole
    characters show as \\xNN."""
    table = byte_decoder()
    return visible(bytes(table[c] for c in byte_chars).decode("utf-8", errors="backslashreplace"))


@dataclass(frozen=True)
class MergeStep:
    rank: int                     # position in the merge list: lower ranks were learned (and are applied) first
    pair: tuple[str, str]         # the two byte-level strings merged
    parts: tuple[str, ...]        # the pre-token's pieces after this merge


@dataclass(frozen=True)
class BPEReplay:
    """How one pre-token (a word with its leading space, a run of punctuation, ...) became tokens."""
    text: str                     # the pre-token as typed
    start: tuple[str, ...]        # its bytes, one byte-level character each
    steps: tuple[MergeStep, ...]
    ids: tuple[int, ...]          # the final tokens

    @property
    def final(self) -> tuple[str, ...]:
        return self.steps[-1].parts if self.steps else self.start


def bpe_replay(tokenizer: BPETokenizer, text: str) -> list[BPEReplay]:
    """Replay byte-level BPE on `text`: split it the way the tokenizer's pre-tokenizer does, start from the
    bytes of each piece, and repeatedly merge the adjacent pair that was learned earliest (every occurrence of it,
    left to right) until no learned pair is left. The ids of all pieces together are `tokenizer.encode(text)`."""
    if not isinstance(tokenizer, BPETokenizer):
        raise TokenizerError(f"merge replay needs a BPE tokenizer, not a {tokenizer.kind} one")
    ranks = {pair: r for r, pair in enumerate(tokenizer.merges())}
    out = []
    for piece, (a, b) in tokenizer.tok.pre_tokenizer.pre_tokenize_str(text):
        parts, steps = tuple(piece), []
        while len(parts) > 1:
            rank, pair = min((ranks.get(p, len(ranks)), p) for p in zip(parts, parts[1:]))
            if rank == len(ranks):
                break
            parts = _merge(parts, pair)
            steps.append(MergeStep(rank, pair, parts))
        ids = tuple(tokenizer.tok.token_to_id(p) for p in parts)
        out.append(BPEReplay(text[a:b], tuple(piece), tuple(steps), ids))
    return out


def _merge(parts: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    merged, k = [], 0
    while k < len(parts):
        if k + 1 < len(parts) and (parts[k], parts[k + 1]) == pair:
            merged.append(parts[k] + parts[k + 1])
            k += 2
        else:
            merged.append(parts[k])
            k += 1
    return tuple(merged)


@dataclass(frozen=True)
class TokensResult:
    """What the background job hands the GUI thread: a tokenizer and plain numbers, no tensors."""
    tokenizer: object
    stats: TokenStats
    preview: str
    spans: list[TokenSpan]
    label: str
    curve: object = None   # BPE: engine.tokenizers.bpe_curve.LengthCurve of the train split, every merge count


def analyse(text: str, label: str, val_fraction: float, tokenizer=None, kind: str = "", options=None,
            preview_chars: int = 3000) -> TokensResult:
    """The Tokens tab's background job: build the form's tokenizer unless one is given (a model's), then count
    both splits and find the spans of the text's first `preview_chars` characters."""
    if tokenizer is None:
        tokenizer, train, val = form_tokenizer(kind, text, options or {}, val_fraction)
    else:
        train, val = split_text(text, val_fraction)
    preview = text[:preview_chars]
    stats = token_stats(tokenizer, train, val)
    curve = None
    if tokenizer.kind == "bpe":
        from .bpe_curve import length_curve
        curve = length_curve(tokenizer, train, counts=stats.counts)
    return TokensResult(tokenizer, stats, preview, token_spans(tokenizer, preview), label, curve)
