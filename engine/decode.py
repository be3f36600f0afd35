"""Decoding: turn a language model into text, one token at a time, and show why each token was picked.

One API for every family. A runner hides how a family produces next-token logits (the n-gram model looks its
table up, the RNN carries its hidden state, the Transformer appends to its KV cache), so greedy, sampling and beam
search are written once. Each new token comes out as a DecodeEvent of plain CPU data: the token, its probability,
the top of the distribution it was drawn from and what truncation cut away, and for beam search the live beams.

The next-token logits go through, in this order (Hugging Face's order too):
repetition penalty -> temperature -> top-k -> top-p -> min-p -> renormalise -> pick.
Temperature comes before truncation, so it changes which tokens top-p and min-p keep. For the n-gram model the
"logits" are its log-probabilities, so temperature and the penalty work on them alike. Temperature 0 means greedy.
Greedy and beam search use the penalised distribution at temperature 1, untruncated (truncation never removes the
most likely token, and beam search is a search for the most probable text, not a sampler).

An empty prompt starts from a newline when the tokenizer has one (a natural start of a line of text, kept out of
the output). Without one, the n-gram model starts from the empty context (it backs off to the unigram
distribution) and a neural model refuses: it needs at least one token to condition on. Sampling randomness comes
from a numpy Generator made for the call, so a seed reproduces a sample without touching global RNG state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .beam import BeamInfo, BeamSearch
from .errors import ConfigError, PlaygroundError, TokenizerError
from .models import check_finite
from .models.linear import uses_onednn_rows
from . import threads
from .threads import Recheck, decode_flops, torch_threads, usable_cores
from .tokenizers.stream import stream_decoder
from .tokenizers.text_check import require_unicode

STRATEGIES = ("greedy", "sample", "beam")


@dataclass(frozen=True)
class DecodeConfig:
    strategy: str = "sample"         # "greedy" | "sample" | "beam"
    temperature: float = 1.0         # divides the logits before truncation; 0 means greedy, inf uniform
    top_k: int = 0                   # keep only the k most likely tokens; 0 = off
    top_p: float = 1.0               # keep the smallest most-likely set holding this much mass (nucleus); 1 = off
    min_p: float = 0.0               # drop tokens less likely than min_p × the most likely one; 0 = off
    repetition_penalty: float = 1.0  # CTRL: divide positive / multiply negative logits of seen tokens; 1 = off
    beam_width: int = 4              # hypotheses kept per step (beam only)
    length_penalty: float = 1.0      # alpha in score = logprob / len**alpha for finished beams; 0 = off
    max_new_tokens: int = 200        # hard limit on generated tokens
    stop: str | Sequence[str] | None = None  # stop once the text contains one of these (kept out of the text)
    seed: int | None = None          # same seed, same sample; None = fresh randomness
    top_n: int = 10                  # how many alternatives each event reports
    use_cache: bool = True           # carry RNN state / KV cache; False recomputes the context every token

    def __post_init__(self):
        check_finite(self, allow_inf=("temperature",))   # T = inf is the uniform limit, a setting with a meaning
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        object.__setattr__(self, "stop", stop)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be 0 or more, not {self.temperature}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"top_k must be a whole number, 0 or more (0 = off), not {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1] (1 = off), not {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise ConfigError(f"min_p must be in [0, 1] (0 = off), not {self.min_p}")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition_penalty must be above 0 (1 = off), not {self.repetition_penalty}")
        if not isinstance(self.beam_width, int) or self.beam_width < 1:
            raise ConfigError(f"beam_width must be a whole number of at least 1, not {self.beam_width!r}")
        if not np.isfinite(self.length_penalty):
            raise ConfigError(f"length_penalty must be a finite number, not {self.length_penalty}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"seed must be a whole number, 0 or more, not {self.seed!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a whole number of at least 1, not {self.max_new_tokens!r}")
        if not isinstance(self.top_n, int) or self.top_n < 0:
            raise ConfigError(f"top_n must be a whole number, 0 or more, not {self.top_n!r}")
        if any(not isinstance(s, str) or not s for s in stop):
            raise ConfigError("stop strings must be non-empty text")
        for s in stop:
            require_unicode(s)   # a lone surrogate could never match the generated text

    @property
    def greedy(self) -> bool:
        return self.strategy == "greedy" or (self.strategy == "sample" and self.temperature == 0)


@dataclass
class DecodeEvent:
    """One new token (done=False), or the end of decoding (done=True, token_id None, final_text set). For greedy
    and sampling the events' `text`s, final event included, add up to the final text. A token event carries only
    its own piece of text, never the text so far, so a long generation costs the same per token and its events
    hold the text once in all (a consumer that wants the running text joins the pieces)."""
    step: int                        # 1-based index of the token among the generated ones
    token_id: int | None             # the new token; None on the final event
    text: str                        # what the token added to the text (beam: to its own hypothesis)
    final_text: str = ""             # final event only: the whole continuation (beam: the best hypothesis),
                                     # the prompt excluded; "" on token events
    prob: float = 0.0                # under the final distribution (penalty, temperature, truncation)
    raw_prob: float = 0.0            # under the model's own softmax
    rank: int = 0                    # 0 = the most likely token before truncation (after the penalty)
    topk_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (top_n,) best first
    topk_probs: np.ndarray = field(default_factory=lambda: np.zeros(0))      # final probs (0 where cut)
    topk_raw_probs: np.ndarray = field(default_factory=lambda: np.zeros(0))  # model probs
    topk_tempered_probs: np.ndarray = field(default_factory=lambda: np.zeros(0))  # after penalty + temperature
    kept_mass: float = 1.0           # tempered mass that survived truncation
    n_kept: int = 0                  # tokens that survived truncation
    cut_top_k: float = 0.0           # tempered mass removed by top-k
    cut_top_p: float = 0.0           # ... by top-p (after top-k)
    cut_min_p: float = 0.0           # ... by min-p (after top-p)
    beams: list[BeamInfo] | None = None   # beam: new live beams (best first) then those finished at this step
    pruned: list[BeamInfo] | None = None  # beam: candidates dropped at this step
    done: bool = False
    finish_reason: str = ""          # final event: "max_tokens", "stop" or "stopped" (stop_flag)


# ---------------------------------------------------------------- the next-token distribution

@dataclass
class _Dist:
    raw: np.ndarray        # (V,) model probabilities
    tempered: np.ndarray   # (V,) after penalty and temperature
    final: np.ndarray      # (V,) after truncation, renormalised
    order: np.ndarray      # token ids, most likely first under `tempered` (ties: lower id first)
    n_kept: int
    kept_mass: float       # tempered mass of the kept tokens
    cuts: tuple[float, float, float]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _penalise(logits: np.ndarray, seen: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL's repetition penalty on the tokens seen so far (works on rows of (B, V) alike). A penalty so small that
    a positive logit / penalty overflows is taken at its limit: the largest such logit gets all the probability
    (ties share it), never inf - inf = NaN in the softmax."""
    if penalty == 1.0:
        return logits
    with np.errstate(over="ignore"):
        out = np.where(seen, np.where(logits > 0, logits / penalty, np.where(logits < 0, logits * penalty, logits)),
                       logits)
    over = np.isposinf(out) & np.isfinite(logits)
    if over.any():
        best = np.where(over, logits, -np.inf).max(axis=-1, keepdims=True)
        limit = np.where(over & (logits == best), 0.0, -np.inf)
        out = np.where(over.any(axis=-1, keepdims=True), limit, out)
    return out


def _temper(adjusted: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(adjusted / temperature) for every temperature above 0, infinity included, taken at its limit where
    float64 cannot follow: the logits are shifted by their maximum first, so a tiny temperature sends the others to
    -inf (greedy as T -> 0, ties sharing) and never overflows to inf - inf, and T = inf gives the uniform
    distribution over the tokens the model allows (-inf, a zero probability, stays zero: -inf / inf is NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.where(np.isneginf(adjusted), -np.inf, (adjusted - adjusted.max()) / temperature)
    return _softmax(z)


def _distribution(logits: np.ndarray, seen: np.ndarray, cfg: DecodeConfig) -> _Dist:
    raw = _softmax(logits)
    adjusted = _penalise(logits, seen, cfg.repetition_penalty)
    plain = cfg.greedy or cfg.strategy == "beam"
    tempered = _softmax(adjusted) if plain else _temper(adjusted, cfg.temperature)
    order = np.argsort(-adjusted, kind="stable")
    V = len(logits)
    n, cut_k, cut_p, cut_min = V, 0.0, 0.0, 0.0
    sorted_p = tempered[order]
    if not plain and 0 < cfg.top_k < V:
        n = cfg.top_k
        cut_k = float(sorted_p[n:].sum())
    if not plain and cfg.top_p < 1.0:
        cum = np.cumsum(sorted_p[:n])
        n_p = min(n, int(np.searchsorted(cum, cfg.top_p * cum[-1], side="left")) + 1)
        cut_p, n = float(sorted_p[n_p:n].sum()), n_p
    if not plain and cfg.min_p > 0.0:
        n_m = int(np.count_nonzero(sorted_p[:n] >= cfg.min_p * sorted_p[0]))  # a prefix: sorted_p is descending
        cut_min, n = float(sorted_p[n_m:n].sum()), n_m
    final = tempered
    if n < V:  # renormalise only when something was cut, so "off" settings leave the numbers bit-identical
        final = np.zeros(V)
        final[order[:n]] = sorted_p[:n] / sorted_p[:n].sum()
    return _Dist(raw, tempered, final, order, n, float(sorted_p[:n].sum()), (cut_k, cut_p, cut_min))


def _finite(logits: np.ndarray) -> np.ndarray:
    """-inf is a legitimate zero probability (n-gram without smoothing); NaN or +inf means a broken model."""
    if np.isnan(logits).any() or np.isposinf(logits).any():
        raise PlaygroundError("the model outputs NaN or infinite values (training diverged); "
                              "decode from an earlier checkpoint")
    return logits


def _draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Inverse-CDF sampling over ids in their natural order (one uniform draw per token)."""
    cdf = np.cumsum(probs)
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return i if i < len(probs) and probs[i] > 0 else int(np.flatnonzero(probs)[-1])


def _token_event(step: int, tok: int, d: _Dist, top_n: int, text: str, **extra) -> DecodeEvent:
    ids = d.order[:top_n]
    rank = int(np.flatnonzero(d.order == tok)[0])
    return DecodeEvent(step, tok, text, "", float(d.final[tok]), float(d.raw[tok]), rank,
                       ids.astype(np.int64), d.final[ids], d.raw[ids], d.tempered[ids],
                       kept_mass=d.kept_mass, n_kept=d.n_kept, cut_top_k=d.cuts[0], cut_top_p=d.cuts[1],
                       cut_min_p=d.cuts[2], **extra)


# ---------------------------------------------------------------- runners: next-token logits for each family

class _NGramRunner:
    """The n-gram model needs only the last order-1 tokens, so each row keeps just that tail; there is no state
    to cache. Its log-probabilities serve as logits (zero probability -> -inf, never picked)."""

    def __init__(self, model, prompt_ids: list[int], use_cache: bool):
        self.model = model
        self.n = model.config.order - 1
        self.rows = [self._tail(prompt_ids)]

    def _tail(self, ids: list[int]) -> list[int]:
        return ids[max(0, len(ids) - self.n):]

    def start(self) -> np.ndarray:
        return self._logits()

    def advance(self, parents: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        self.rows = [self._tail(self.rows[p] + [t]) for p, t in zip(parents, tokens)]
        return self._logits()

    def _logits(self) -> np.ndarray:  # (B, V)
        with np.errstate(divide="ignore"):
            return np.log(np.stack([self.model.next_distribution(r) for r in self.rows]))


class _TorchRunner:
    """Rows of the batch are hypotheses: one for sampling, beam_width for beam search. `advance` first picks the
    rows' parents (the beam reorder; sampling passes [0]) and then appends one token to each."""

    def __init__(self, model, prompt_ids: list[int], use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.device = next(model.parameters()).device
        self.rows = [prompt_ids]

    def _tensor(self, rows) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    @staticmethod
    def _last(logits: torch.Tensor) -> np.ndarray:  # (B, T, V) -> (B, V) float64 on the CPU
        return logits[:, -1].cpu().numpy().astype(np.float64)  # widened on the host: MPS has no float64


class _RNNRunner(_TorchRunner):
    """The prompt runs once and the hidden state is carried token by token. Without the cache the whole text
    re-runs from a zero state every token: slower, and the reference the carried state must equal."""

    @torch.no_grad()
    def start(self) -> np.ndarray:
        logits, self.state = self.model.step(self._tensor(self.rows), None)
        return self._last(logits)

    @torch.no_grad()
    def advance(self, parents: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        if self.use_cache:
            state = self.model.reorder_state(self.state, self._tensor(parents))
            logits, self.state = self.model.step(self._tensor(tokens)[:, None], state)
        else:
            self.rows = [self.rows[p] + [t] for p, t in zip(parents, tokens)]
            logits, _ = self.model.step(self._tensor(self.rows), None)
        return self._last(logits)


class _AutoThreads:
    """CPU threads for one kind of forward of a decoding (engine/threads.py), looked at on first call and every
    Recheck.RECHECK_S after; one look at the CPUs serves every decoding started within PROBE_REUSE_S (a dialog
    decoding from 32 past models, the lab's columns), instead of 50 ms each. `work()` gives the forward's FLOPs,
    or None to leave torch's setting (GPU, n-gram, a kind of forward that gains nothing from threads)."""

    def __init__(self, work: Callable[[], float | None], per_thread: float):
        self.work, self.per_thread = work, per_thread
        self.threads: int | None = None
        self.recheck: Recheck | None = None
        self.started = False

    def __call__(self) -> int | None:
        if not self.started:
            self.started = True
            work = self.work()
            if work is None:
                return None
            self.recheck = Recheck(work, usable_cores(), probe=threads.recent_free_cores, per_thread=self.per_thread)
            self.threads = self.recheck.choose()
        elif self.recheck is not None and self.recheck.due():
            self.threads = self.recheck.choose()
        return self.threads


class _GPTRunner(_TorchRunner):
    """KV cache while the text fits in block_size. Past that, every token re-runs the last block_size tokens into a
    fresh cache: as the window slides each token's position changes and every layer past the first saw a
    different context, so no cached key stays valid. The logits are therefore exactly the uncached forward on the
    last block_size tokens (what nanoGPT's generate computes); the cache speeds up the first block_size tokens."""

    def __init__(self, model, prompt_ids: list[int], use_cache: bool):
        super().__init__(model, prompt_ids, use_cache)
        self.block = model.config.block_size
        self.rows = [prompt_ids[-self.block:]]
        # a re-run of the window (from 10^8 FLOPs: threads.MIN_WINDOW_FLOPS_PER_THREAD) can use an idle second
        # core; so can a cached step of a model whose few-row products go to oneDNN (engine/models/linear.py:
        # its weights do not fit in cache, and oneDNN reads them ~1.6x faster on 2 threads). Other cached steps
        # stay on the caller's threads: through MKL a second thread gained 0-13% in bench/row_kernel.py's sweep,
        # against the stall it costs when another process wants that core.
        self._window_threads = _AutoThreads(lambda: decode_flops(model, self.block),
                                            threads.MIN_WINDOW_FLOPS_PER_THREAD)
        self._step_threads = _AutoThreads(lambda: decode_flops(model) if uses_onednn_rows(model) else None,
                                          threads.MIN_STEP_FLOPS_PER_THREAD)

    def start(self) -> np.ndarray:
        return self._prefill()

    @torch.inference_mode()
    def _prefill(self) -> np.ndarray:
        idx = self._tensor(self.rows)
        if not self.use_cache or idx.size(1) >= self.block:
            # uncached, or a full window: a cache filled now could take no further token (the next one slides the
            # window and re-runs it), so only the last position's logits are computed
            self.cache = None
            with torch_threads(self._window_threads()):
                return self._last(self.model.last_logits(idx))
        self.cache = self.model.new_cache(idx.size(0))
        with torch_threads(self._step_threads()):
            return self._last(self.model.forward_cached(idx, self.cache))

    @torch.inference_mode()
    def advance(self, parents: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        self.rows = [(self.rows[p] + [t])[-self.block:] for p, t in zip(parents, tokens)]
        if self.cache is None or self.cache.length >= self.block:
            return self._prefill()
        if list(parents) != list(range(self.cache.k[0].size(0))):   # sampling's [0]: no copy of every layer's cache
            self.cache.reorder(self._tensor(parents))
        with torch_threads(self._step_threads()):
            return self._last(self.model.forward_cached(self._tensor(tokens)[:, None], self.cache))


def _runner_class(model) -> type:
    if hasattr(model, "next_distribution"):
        return _NGramRunner
    if hasattr(model, "forward_cached"):
        return _GPTRunner
    if hasattr(model, "reorder_state"):
        return _RNNRunner
    raise TypeError(f"cannot decode from a {type(model).__name__}")


# ---------------------------------------------------------------- text and the decoding loops

class _Text:
    """A hypothesis' text, decoded together with the prompt so the joins come out as in the whole text (the word
    tokenizer's spaces, a character split over byte-level BPE tokens), and cut before the first stop string.
    Stop strings are looked for in the continuation only."""

    def __init__(self, tokenizer, prompt_ids: list[int], stop: tuple[str, ...], spaced: bool = False):
        self.tokenizer, self.prompt_ids, self.stop, self.spaced = tokenizer, prompt_ids, stop, spaced
        self.base = tokenizer.decode(prompt_ids)

    def __call__(self, ids: Sequence[int]) -> tuple[str, bool]:
        full = self.tokenizer.decode(self.prompt_ids + list(ids))
        text = full[len(self.base):] if full.startswith(self.base) else self.tokenizer.decode(list(ids))
        if self.spaced and text.startswith(" "):   # see _prompt_spaced
            text = text[1:]
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return (text[:min(hits)], True) if hits else (text, False)


def _delta(before: str, after: str) -> str:
    """What a token added to the text (for a tokenizer whose decoding is not prefix-stable, what it added after
    the common prefix; the final text is the authority then)."""
    return after[len(os.path.commonprefix([before, after])):]


def _settled(text: str, stop: tuple[str, ...] = ()) -> str:
    """The part of the text that is safe to stream. Held back: trailing '\ufffd' (a byte-level BPE token can end
    inside a multi-byte character, which decodes as '\ufffd' until the next token completes it) and a tail that
    could be the start of a stop string (the final text is cut before a stop string, and streamed text cannot be
    taken back). The final event gives whatever is still held, so the events' texts add up to the final text."""
    text = text.rstrip("\ufffd")
    for k in range(min(len(text), max(map(len, stop), default=1) - 1), 0, -1):
        if any(s.startswith(text[-k:]) for s in stop):
            return text[:-k]
    return text


class _Stream:
    """One hypothesis' text built token by token at a constant cost per token: the tokenizer's stream decoder
    (engine/tokenizers: it carries the joins of the word tokenizer and the bytes of a character split over BPE
    tokens) turns each token into its piece, fed the prompt first so the joins come out as in the whole text.
    Decoded text that could still turn out to be the start of a stop string is held back in `pending`; a stop
    string can only begin there (everything streamed before was checked to be no stop string's start), so only
    `pending` and the new piece are searched."""

    def __init__(self, tokenizer, prompt_ids: list[int], stop: tuple[str, ...], spaced: bool = False):
        self.decoder = stream_decoder(tokenizer)
        for i in prompt_ids:
            self.decoder.add(i)
        self.stop = stop
        self.spaced = spaced          # the first piece's joining space is the prompt's own (_prompt_spaced)
        self.pending = ""
        self.pieces: list[str] = []   # streamed so far; their concatenation is the text

    def add(self, tok: int) -> tuple[str, bool]:
        """(the piece safe to stream now, whether a stop string was reached: the text then ends before it)."""
        piece = self.decoder.add(tok)
        if self.spaced and piece:
            piece, self.spaced = piece[1:] if piece.startswith(" ") else piece, False
        return self._take(self.pending + piece)

    def finish(self) -> tuple[str, bool]:
        """What is still held back (and any incomplete bytes, as '\ufffd'), cut before a stop string in it."""
        piece, hit = self._take(self.pending + self.decoder.flush(), final=True)
        return piece, hit

    def _take(self, buf: str, final: bool = False) -> tuple[str, bool]:
        hits = [i for i in (buf.find(s) for s in self.stop) if i >= 0]
        if hits:
            piece, hit, self.pending = buf[:min(hits)], True, ""
        else:
            piece, hit = (buf if final else _settled(buf, self.stop)), False
            self.pending = buf[len(piece):]
        self.pieces.append(piece)
        return piece, hit

    def text(self) -> str:
        return "".join(self.pieces)


def _sample(runner, text: _Stream, prompt_ids: list[int], V: int, cfg: DecodeConfig, stopped: Callable[[], bool]):
    """Greedy and ancestral sampling; returns (finish_reason, tokens generated, final text, text streamed)."""
    rng = np.random.default_rng(cfg.seed)
    seen = np.zeros(V, dtype=bool)
    seen[prompt_ids] = True
    logits = _finite(runner.start()[0])
    for step in range(1, cfg.max_new_tokens + 1):
        d = _distribution(logits, seen, cfg)
        tok = int(d.order[0]) if cfg.greedy else _draw(d.final, rng)
        seen[tok] = True
        piece, hit = text.add(tok)
        yield _token_event(step, tok, d, cfg.top_n, piece)
        if hit:
            return "stop", step, text.text(), text.text()
        if step == cfg.max_new_tokens or stopped():
            streamed = text.text()
            rest, _ = text.finish()   # a stop string found only now still ends the text before it
            return "max_tokens" if step == cfg.max_new_tokens else "stopped", step, streamed + rest, streamed
        logits = _finite(runner.advance([0], [tok])[0])


def _beam(runner, text_of: _Text, prompt_ids: list[int], V: int, cfg: DecodeConfig, stopped: Callable[[], bool]):
    """Beam search with the hypotheses as batch rows; each event follows the best live hypothesis."""
    search = BeamSearch(cfg.beam_width, cfg.length_penalty, cfg.max_new_tokens, text_of)
    seen = np.zeros((1, V), dtype=bool)
    seen[0, prompt_ids] = True
    logits = _finite(runner.start())
    while True:
        before = search.live
        out = search.step(_log_softmax(_penalise(logits, seen, cfg.repetition_penalty)))
        lead = (out.live or out.finished)[0]
        d = _distribution(logits[lead.parent], seen[lead.parent], cfg)
        yield _token_event(search.steps, lead.token_ids[-1], d, cfg.top_n, _delta(before[lead.parent].text, lead.text),
                           beams=out.live + out.finished, pruned=out.pruned)
        if search.done:
            best = search.best()
            return best.finish, search.steps, best.text, best.text
        if stopped():  # the best so far, finished or not
            best = max(search.finished + search.live, key=lambda h: h.score)
            return "stopped", search.steps, best.text, best.text
        seen = seen[out.parents]
        seen[np.arange(len(out.tokens)), out.tokens] = True
        logits = _finite(runner.advance(out.parents, out.tokens))


def _prompt_ids(tokenizer, prompt: str, ngram: bool) -> list[int]:
    ids = tokenizer.encode(prompt) if prompt else []  # a TokenizerError (unknown characters) passes through
    if ids:
        return ids
    try:
        start = tokenizer.encode("\n")
    except TokenizerError:
        start = []
    if start and tokenizer.decode(start) == "\n":
        return start
    if ngram:
        return []  # the n-gram model backs off to shorter contexts, down to the unigram distribution
    raise ConfigError("type a prompt: this vocabulary has no newline to start from")


def _prompt_spaced(tokenizer, prompt: str) -> bool:
    """Whether the continuation's first joining space is already at the end of the prompt as typed. A word
    tokenizer keeps no spaces (its decoder puts one between words), so "The " and "The" encode alike and the
    continuation starts " quick": shown after the prompt as typed, "The  quick". Other tokenizers encode the
    prompt's trailing space as a token of its own, and a space they generate after it is the model's."""
    return getattr(tokenizer, "kind", None) == "word" and prompt[-1:].isspace()


def generate(model, tokenizer, prompt: str, cfg: DecodeConfig, stop_flag=None) -> Iterator[DecodeEvent]:
    """Stream DecodeEvents: one per new token, then a final one (done=True) holding the whole text.

    Input is checked here, before the first token, so a mistake raises at the call rather than at the first
    next(). stop_flag (a threading.Event or a callable returning bool) is looked at between tokens. The model is
    used in whatever mode it is in; ModelHandle models are already in eval mode."""
    V = model.config.vocab_size
    if tokenizer.vocab_size != V:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model expects {V}")
    if cfg.strategy == "beam" and cfg.beam_width > V:
        raise ConfigError(f"beam_width {cfg.beam_width} is more than the {V} tokens in the vocabulary")
    runner_class = _runner_class(model)
    ids = _prompt_ids(tokenizer, prompt, ngram=runner_class is _NGramRunner)
    runner = runner_class(model, ids, cfg.use_cache)
    stopped = (stop_flag.is_set if hasattr(stop_flag, "is_set") else stop_flag) or (lambda: False)
    spaced = _prompt_spaced(tokenizer, prompt)
    if cfg.strategy == "beam":
        return _with_final(_beam(runner, _Text(tokenizer, ids, cfg.stop, spaced), ids, V, cfg, stopped), stopped)
    return _with_final(_sample(runner, _Stream(tokenizer, ids, cfg.stop, spaced), ids, V, cfg, stopped), stopped)


def _with_final(loop, stopped: Callable[[], bool]) -> Iterator[DecodeEvent]:
    if stopped():
        yield DecodeEvent(0, None, "", "", done=True, finish_reason="stopped")
        return
    reason, steps, text, streamed = yield from loop
    yield DecodeEvent(steps, None, _delta(streamed, text), text, done=True, finish_reason=reason)


def complete(model, tokenizer, prompt: str, cfg: DecodeConfig, stop_flag=None) -> tuple[str, list[DecodeEvent]]:
    """Run generate to the end: (the continuation's text, every event)."""
    events = list(generate(model, tokenizer, prompt, cfg, stop_flag))
    return events[-1].final_text, events
