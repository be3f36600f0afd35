"""BPE vocabulary size against sequence length: how many tokens a text takes after the first m merges.

A byte-level BPE with M merges, cut to its first m (0 <= m <= M), is itself a BPE tokenizer: the 256 bytes plus
the m first merged tokens. Encoding applies the lowest-ranked applicable merge again and again, and a merge's
parts exist before it, so the merges applied to a piece come in increasing rank; the cut tokenizer therefore gives
the full encoding stopped before merge m, and the token count can only fall as m grows.

`length_curve` gets the count at every m from one encoding with all merges (the library's), by counting how often
each merge was applied; `sampled_curve` measures it at chosen m by encoding with the cut tokenizer, built by the
library too (`truncated(tok, m)`, whose ids are the full tokenizer's): the slower oracle the tests hold the first
to, and the fallback when two merges made the same token. Long work: run it off the GUI thread.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from ..errors import TokenizerError
from .bpe import ENCODE_PIECE, BPETokenizer, split_at_word_starts
from .text_check import require_unicode

BYTES = 256      # a byte-level BPE starts from the 256 bytes: 0 merges is a vocabulary of 256
WORDS_PER_INPUT = 4096   # distinct pre-tokens per pre-tokenized input of encode_batch (one Encoding each)


@dataclass(frozen=True)
class LengthCurve:
    """Token counts of one text at several merge counts. merges: (P,) int64, increasing, 0 and the tokenizer's
    last merge included; tokens: (P,) int64, the text's length in tokens there; vocab_sizes: (P,) int64, the
    vocabulary there (256 + the distinct tokens the merges made: 256 + m unless two merges made one token);
    chars: the text's length in characters (Python str length, as TokenStats counts them)."""
    merges: np.ndarray
    tokens: np.ndarray
    vocab_sizes: np.ndarray
    chars: int

    @property
    def chars_per_token(self) -> np.ndarray:
        """(P,) float64: characters per token, 0 where the text is empty."""
        return np.where(self.tokens > 0, self.chars / np.maximum(self.tokens, 1), 0.0)


def _parts(tok: BPETokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tok.tok.to_str())["model"]
    return model["vocab"], tok.merges()


def _require_bpe(tok) -> None:
    if getattr(tok, "kind", None) != "bpe":
        raise TokenizerError("only a BPE tokenizer has merges to count")


def _bpe_model(vocab: dict[str, int], merges: list[tuple[str, str]], m: int) -> models.BPE:
    """The BPE model of the first m merges, keeping the full vocabulary's ids."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    keep = {s: vocab[s] for s in alphabet if s in vocab}
    for a, b in merges[:m]:
        keep[a + b] = vocab[a + b]
    return models.BPE(keep, list(merges[:m]))


def vocab_after(merges: list[tuple[str, str]]) -> np.ndarray:
    """(M+1,) int64: the vocabulary size after the first m merges, m = 0..M."""
    seen, new = set(), np.zeros(len(merges) + 1, dtype=np.int64)
    for i, (a, b) in enumerate(merges):
        new[i + 1] = (a + b) not in seen
        seen.add(a + b)
    return BYTES + np.cumsum(new)


def merge_count(tok: BPETokenizer) -> int:
    """How many merges the tokenizer learned (its vocabulary size minus the 256 bytes)."""
    return len(tok.merges())


def _check_m(tok: BPETokenizer, m: int) -> int:
    total = merge_count(tok)
    if not isinstance(m, (int, np.integer)) or not 0 <= m <= total:
        raise TokenizerError(f"a merge count must be a whole number from 0 to {total}, not {m!r}")
    return int(m)


class MergeCuts:
    """`tok` cut to its first m merges, for any m: the vocabulary and merges are read from the tokenizer's JSON
    once, so each cut only builds the library's BPE model (a slider can ask for many)."""

    def __init__(self, tok: BPETokenizer):
        _require_bpe(tok)
        self.tok = tok
        self.vocab, self.merges = _parts(tok)

    @property
    def total(self) -> int:
        return len(self.merges)

    def at(self, m: int) -> BPETokenizer:
        """The tokenizer made of the bytes and the first m merges (vocabulary 256 + m, the same ids as the full
        tokenizer for the tokens it keeps). TokenizerError for m outside 0..total."""
        if not isinstance(m, (int, np.integer)) or not 0 <= m <= self.total:
            raise TokenizerError(f"a merge count must be a whole number from 0 to {self.total}, not {m!r}")
        cut = Tokenizer(_bpe_model(self.vocab, self.merges, int(m)))
        cut.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        cut.decoder = decoders.ByteLevel()
        out = BPETokenizer(cut)
        out.vocab_size = self.tok.vocab_size   # ids stay the full tokenizer's: token_str and decode work on them
        return out


def truncated(tok: BPETokenizer, m: int) -> BPETokenizer:
    """`tok` with only its first m merges (see MergeCuts.at)."""
    return MergeCuts(tok).at(m)


def pre_token_counts(tok: BPETokenizer, text: str) -> Counter:
    """How often each byte-level pre-token (a word with its leading space, a run of punctuation, ...) occurs in
    `text`, split by the tokenizer's own pre-tokenizer piece by piece (a short hold of the GIL each)."""
    counts: Counter = Counter()
    pre = tok.tok.pre_tokenizer
    for piece in split_at_word_starts(require_unicode(text), ENCODE_PIECE):
        counts.update(s for s, _ in pre.pre_tokenize_str(piece))
    return counts


def merge_grid(total: int, points: int = 33) -> np.ndarray:
    """About `points` merge counts from 0 to `total`, evenly spaced, both ends included; (P,) int64."""
    if points < 2:
        raise TokenizerError(f"a curve needs at least 2 points, not {points}")
    return np.unique(np.round(np.linspace(0, total, min(points, total + 1))).astype(np.int64))


def length_curve(tok: BPETokenizer, text: str, counts: np.ndarray | None = None) -> LengthCurve:
    """The length of `text` in tokens after every merge count m = 0..M, exactly, from one encoding with every
    merge. `counts` ((V,) int, optional): how often each token occurs in tok.encode(text), when the caller has it.

    Each token of the full encoding is the root of a tree of the merges that built it (its merge's two parts,
    their merges, down to bytes). Walking the merges from the last learned to the first, a token's count is
    added to both its parts: that gives how often every merge was applied, and stopping before merge m leaves
    tokens(m) = UTF-8 bytes - (applications of merges 0..m-1). When two merges made the same token (the library
    allows it) a token's tree is ambiguous, and the curve is measured with `sampled_curve` instead (at most 65
    points). TokenizerError for a tokenizer that is not BPE."""
    _require_bpe(tok)
    vocab, merges = _parts(tok)
    results = [a + b for a, b in merges]
    if len(set(results)) < len(results):
        return sampled_curve(tok, text, points=65)
    if counts is None:
        counts = np.bincount(np.asarray(tok.encode(text), dtype=np.int64), minlength=tok.vocab_size)
    flow = np.asarray(counts, dtype=np.int64).copy()
    if len(flow) < tok.vocab_size:
        raise TokenizerError(f"counts has {len(flow)} entries, the vocabulary {tok.vocab_size}")
    applied = np.zeros(len(merges), dtype=np.int64)
    for r in range(len(merges) - 1, -1, -1):
        a, b = merges[r]
        n = flow[vocab[results[r]]]
        applied[r] = n
        flow[vocab[a]] += n
        flow[vocab[b]] += n
    total_bytes = len(require_unicode(text).encode("utf-8"))
    tokens = total_bytes - np.concatenate([[0], np.cumsum(applied)])
    return LengthCurve(np.arange(len(merges) + 1, dtype=np.int64), tokens, vocab_after(merges), len(text))


def sampled_curve(tok: BPETokenizer, text: str, merges: np.ndarray | None = None, points: int = 33,
                  cancel=None) -> LengthCurve:
    """The length of `text` in tokens at the merge counts `merges` (default `merge_grid`), measured with the
    library: each distinct pre-token encoded by the cut tokenizer, weighted by how often it occurs (slower than
    `length_curve`: one encoding per point; the oracle the tests hold it to). `cancel()` (optional) is asked
    between points; when it returns True the curve so far is returned."""
    _require_bpe(tok)
    total = merge_count(tok)
    grid = merge_grid(total, points) if merges is None else np.asarray([_check_m(tok, int(m)) for m in merges])
    counts = pre_token_counts(tok, text)
    words = list(counts)
    chunks = [words[i:i + WORDS_PER_INPUT] for i in range(0, len(words), WORDS_PER_INPUT)]
    weight = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    vocab, all_merges = _parts(tok)
    done = []
    for m in grid:
        if cancel is not None and cancel():
            break
        cut = Tokenizer(_bpe_model(vocab, all_merges, int(m)))
        lengths = np.concatenate([np.bincount(np.asarray(e.word_ids, dtype=np.int64), minlength=len(chunk))
                                  for e, chunk in zip(cut.encode_batch(chunks, is_pretokenized=True), chunks)]
                                 or [np.zeros(0, np.int64)])
        done.append(int(lengths @ weight))
    grid = grid[:len(done)].astype(np.int64)
    return LengthCurve(grid, np.array(done, dtype=np.int64), vocab_after(all_merges)[grid], len(text))
