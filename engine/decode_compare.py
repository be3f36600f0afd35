"""Decoding strategies side by side, the figures that tell them apart, and the KV cache checked against recomputing.

A *column* is one decoding setting (greedy; sampling with its knobs; beam search with width and length penalty) run
on a shared prompt, seed, stop strings and max tokens. `interleave` runs several columns together, one token of each
in turn, so they stream at the same pace from one thread (a GUI worker or the CLI). `ColumnRecord` collects a
column's events; `column_report` turns it into the figures:

- mean_logprob: the mean over generated tokens of log p(token | text before it) under the model's *unmodified*
  distribution (no repetition penalty, temperature or truncation), in nats. It is recomputed by feeding the column's
  tokens through the model (`forced_logits`), so it is the same kind of number for sampling and beam search.
- mean_cut_mass: the mean over tokens of the probability mass (after penalty and temperature) that truncation
  (top-k, top-p, min-p) removed before the draw; 0 for greedy and beam search, which do not truncate.
- distinct_2, distinct_3: distinct n-grams / n-grams over the generated token ids (Li et al. 2016, "A
  Diversity-Promoting Objective Function for Neural Conversation Models"); None when the text has fewer than n tokens.
- repeated_4gram_share: 1 - distinct 4-grams / 4-grams, the share of 4-grams that repeat an earlier one (seq-rep-4 of
  Welleck et al. 2020, "Neural Text Generation with Unlikelihood Training"); None below 4 tokens.

`check_cache` feeds a text through the model twice, with the KV cache / carried RNN state and without, and reports
the largest |difference| of the next-token logits: the cache must change speed, never the numbers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from .beam import BeamInfo
from .decode import (DecodeConfig, DecodeEvent, _GPTRunner, _NGramRunner, _finite, _log_softmax, _prompt_ids,
                     _runner_class, generate)
from .errors import ConfigError
from .tokenizers.stream import stream_decoder

MAX_COLUMNS = 6
# the settings a column spec may name, per strategy (the names of DecodeConfig's fields; "width" = beam_width)
COLUMN_KEYS = {
    "greedy": ("repetition_penalty",),
    "sample": ("temperature", "top_k", "top_p", "min_p", "repetition_penalty"),
    "beam": ("beam_width", "length_penalty", "repetition_penalty"),
}
ALIASES = {"width": "beam_width", "k": "top_k", "p": "top_p", "t": "temperature"}
INT_KEYS = ("top_k", "beam_width")


def parse_column(spec: str) -> dict:
    """A column spec as DecodeConfig keyword arguments: "greedy", "sample:temperature=0.8,top_p=0.9",
    "beam:width=4,length_penalty=1" (hyphens or underscores; width = beam_width). ConfigError names what is wrong."""
    strategy, _, rest = spec.strip().partition(":")
    strategy = strategy.strip()
    if strategy not in COLUMN_KEYS:
        raise ConfigError(f"column {spec!r}: the strategy must be one of {', '.join(COLUMN_KEYS)}, not {strategy!r}")
    out: dict = {"strategy": strategy}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        key = ALIASES.get(key, key)
        if not eq:
            raise ConfigError(f"column {spec!r}: {item!r} is not key=value")
        if key not in COLUMN_KEYS[strategy]:
            allowed = ", ".join(k.replace("beam_width", "width") for k in COLUMN_KEYS[strategy])
            raise ConfigError(f"column {spec!r}: {strategy} takes {allowed}, not {key!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"column {spec!r}: {key} must be a number, not {value.strip()!r}") from None
        if key in INT_KEYS:
            if number != int(number):
                raise ConfigError(f"column {spec!r}: {key} must be a whole number, not {value.strip()!r}")
            number = int(number)
        out[key] = number
    return out


def column_config(spec: str | dict, **shared) -> DecodeConfig:
    """A column's DecodeConfig: its spec (a string for parse_column, or its result) plus the settings every column
    shares (max_new_tokens, stop, seed, top_n, use_cache). ConfigError for bad values."""
    own = parse_column(spec) if isinstance(spec, str) else dict(spec)
    return DecodeConfig(**{**shared, **own})


def describe_config(cfg: DecodeConfig) -> str:
    """A column's settings in spec form, only what differs from "off" ("sample:temperature=0.8,top_p=0.9")."""
    defaults = DecodeConfig()
    parts = [f"{'width' if k == 'beam_width' else k}={getattr(cfg, k):g}" for k in COLUMN_KEYS[cfg.strategy]
             if k in ("beam_width", "length_penalty") or getattr(cfg, k) != getattr(defaults, k)]
    return cfg.strategy + (":" + ",".join(parts) if parts else "")


def interleave(model, tokenizer, prompt: str, cfgs: Sequence[DecodeConfig],
               stop_flag=None) -> Iterator[tuple[int, DecodeEvent, float]]:
    """Run the columns together: one event of each live column in turn, as (column index, event, seconds that
    event took). Every column's input is checked here, at the call, before any event (ConfigError, TokenizerError).
    A column ends with its done event; stop_flag ends them all between tokens."""
    if not 1 <= len(cfgs) <= MAX_COLUMNS:
        raise ConfigError(f"compare 1 to {MAX_COLUMNS} columns, not {len(cfgs)}")
    streams = {i: generate(model, tokenizer, prompt, cfg, stop_flag) for i, cfg in enumerate(cfgs)}
    return _in_turn(streams)


def _in_turn(streams: dict) -> Iterator[tuple[int, DecodeEvent, float]]:
    while streams:
        for i in list(streams):
            t0 = time.perf_counter()
            try:
                event = next(streams[i])
            except StopIteration:
                del streams[i]
                continue
            yield i, event, time.perf_counter() - t0


@dataclass
class ColumnRecord:
    """What one column produced, fed its events in order. Beam events follow the leading hypothesis, which can
    change; the answer's tokens are read from the hypotheses the events reported."""
    cfg: DecodeConfig
    ids: list[int] = field(default_factory=list)           # greedy/sample: the generated tokens
    raw_probs: list[float] = field(default_factory=list)   # greedy/sample: p of each under the model's softmax
    cut_masses: list[float] = field(default_factory=list)  # mass truncation removed at each token
    events: list[DecodeEvent] = field(default_factory=list)
    hypotheses: dict = field(default_factory=dict)          # beam: token ids -> BeamInfo, every one reported
    seconds: float = 0.0                                    # time spent producing this column's events
    final: DecodeEvent | None = None

    def add(self, event: DecodeEvent, seconds: float = 0.0) -> None:
        self.seconds += seconds
        if event.done:
            self.final = event
            return
        self.events.append(event)
        # the sum of what each truncation step removed: exactly 0 when nothing was cut (1 - kept_mass can be 1e-17)
        self.cut_masses.append(event.cut_top_k + event.cut_top_p + event.cut_min_p)
        if event.beams is not None:
            self.hypotheses.update((h.token_ids, h) for h in event.beams)
        else:
            self.ids.append(int(event.token_id))
            self.raw_probs.append(float(event.raw_prob))

    @property
    def done(self) -> bool:
        return self.final is not None

    def answer(self) -> BeamInfo | None:
        """Beam: the returned hypothesis (the best-scoring finished one whose text is the final text)."""
        if self.final is None or not self.hypotheses:
            return None
        done = [h for h in self.hypotheses.values() if h.finish in ("stop", "max_tokens")]
        same = [h for h in done if h.text == self.final.final_text] or done
        return max(same, key=lambda h: h.score) if same else None

    def token_ids(self) -> list[int]:
        """The generated tokens of the text shown: the sample, or (beam, once done) the answer; while beam search
        runs, the leading hypothesis."""
        if self.cfg.strategy != "beam":
            return list(self.ids)
        best = self.answer()
        if best is not None:
            return list(best.token_ids)
        lead = self.events[-1].beams[0] if self.events and self.events[-1].beams else None
        return list(lead.token_ids) if lead is not None else []


def token_pieces(tokenizer, prompt: str, ids: Sequence[int], text: str | None = None) -> list[str]:
    """Each generated token's piece of text (decoded after the prompt, so joins come out as in the whole text).
    With `text` (the final text, cut before a stop string), the pieces are clipped to it: a token past the stop
    string gets ""; a BPE token ending inside a character gets "" and the next one the character."""
    dec = stream_decoder(tokenizer)
    for i in _prompt_ids(tokenizer, prompt, ngram=True):
        dec.add(i)
    pieces = [dec.add(int(i)) for i in ids]
    if pieces:
        pieces[-1] += dec.flush()
    if text is None or not "".join(pieces).startswith(text):
        return pieces
    out, left = [], len(text)
    for p in pieces:
        out.append(p[:left])
        left -= len(out[-1])
    return out


def forced_logits(model, tokenizer, prompt: str, ids: Sequence[int], use_cache: bool = True) -> np.ndarray:
    """Next-token logits (len(ids), V) float64 at each generated position: row t is what the model gives after the
    prompt and ids[:t], computed exactly as decoding does (the same runner: KV cache or carried state when
    use_cache, the GPT sliding its block_size window past the context). n-gram: log-probabilities (-inf allowed)."""
    runner_class = _runner_class(model)
    prompt_ids = _prompt_ids(tokenizer, prompt, ngram=runner_class is _NGramRunner)
    runner = runner_class(model, prompt_ids, use_cache)
    if not len(ids):
        return np.zeros((0, model.config.vocab_size))
    rows = [_finite(runner.start()[0])]
    for t in ids[:-1]:
        rows.append(_finite(runner.advance([0], [int(t)])[0]))
    return np.stack(rows)


def token_logprobs(model, tokenizer, prompt: str, ids: Sequence[int]) -> np.ndarray:
    """log p(ids[t] | prompt, ids[:t]) under the model's own softmax, (len(ids),) in nats."""
    logits = forced_logits(model, tokenizer, prompt, ids)
    return _log_softmax(logits)[np.arange(len(ids)), np.asarray(ids, dtype=np.int64)] if len(ids) else np.zeros(0)


def distinct_n(ids: Sequence[int], n: int) -> float | None:
    """Distinct n-grams / n-grams of a token sequence (Li et al. 2016); None when it has fewer than n tokens."""
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def repeated_share(ids: Sequence[int], n: int = 4) -> float | None:
    """The share of n-grams that repeat an earlier n-gram of the same text: 1 - distinct-n (seq-rep-n of Welleck
    et al. 2020); None below n tokens."""
    d = distinct_n(ids, n)
    return None if d is None else 1.0 - d


def figures(ids: Sequence[int], logprobs: Sequence[float], cut_masses: Sequence[float]) -> dict:
    """The side-by-side figures of one text (module docstring): plain floats, None where undefined."""
    lp = np.asarray(logprobs, dtype=float)
    return {"mean_logprob": float(lp.mean()) if lp.size else None,
            "mean_cut_mass": float(np.mean(cut_masses)) if len(cut_masses) else None,
            "distinct_2": distinct_n(ids, 2), "distinct_3": distinct_n(ids, 3),
            "repeated_4gram_share": repeated_share(ids, 4)}


def live_figures(record: ColumnRecord) -> dict:
    """Figures while a column streams, from its events alone (no model call, cheap enough for the GUI thread):
    the mean log-probability comes from the events' raw probabilities (None for beam search until the end)."""
    ids = record.token_ids()
    logprobs = [math.log(p) for p in record.raw_probs] if record.cfg.strategy != "beam" else []
    return figures(ids, logprobs, record.cut_masses)


def column_report(model, tokenizer, prompt: str, record: ColumnRecord) -> dict:
    """A finished column as plain data: spec, text, token pieces and ids, finish reason, tokens/s and figures.
    Runs the model once over the column's tokens (forced_logits) for the mean log-probability."""
    ids = record.token_ids()
    text = record.final.final_text if record.final is not None else ""
    n = len(record.events)   # tokens decoded (beam: search steps, each extending every hypothesis)
    out = {"column": describe_config(record.cfg), "strategy": record.cfg.strategy, "text": text,
           "tokens": token_pieces(tokenizer, prompt, ids, text), "token_ids": ids,
           "finish_reason": record.final.finish_reason if record.final is not None else "",
           "steps": n, "tokens_per_s": n / record.seconds if record.seconds > 0 else None,
           "cache": record.cfg.use_cache}
    cut = record.cut_masses if record.cfg.strategy != "beam" else [0.0] * len(ids)
    out.update(figures(ids, token_logprobs(model, tokenizer, prompt, ids), cut))
    return out


@dataclass(frozen=True)
class CacheCheck:
    """Cached against uncached next-token logits over one text."""
    max_abs_diff: float        # largest |logit cached - logit uncached| over every position and token (finite ones)
    positions: int             # positions compared (one per generated token)
    past_window: int           # of them, positions whose context was longer than the model's window (GPT)
    max_abs_diff_past_window: float   # the largest difference among those (0.0 when there are none)
    same_argmax: bool          # the most probable next token agreed at every position
    context: int | None        # the GPT's block_size; None for models without a window

    def as_dict(self) -> dict:
        return {"max_abs_dlogit": self.max_abs_diff, "positions": self.positions, "past_window": self.past_window,
                "max_abs_dlogit_past_window": self.max_abs_diff_past_window, "same_argmax": self.same_argmax,
                "context": self.context}

    def summary(self) -> str:
        where = (f", {self.past_window} past the {self.context}-token window (max {self.max_abs_diff_past_window:.1e}"
                 f" there)" if self.context else "")
        return (f"largest |Δ logit| cached vs uncached: {self.max_abs_diff:.1e} over {self.positions} positions"
                f"{where}; "
                f"the most probable token {'agrees' if self.same_argmax else 'DIFFERS'} everywhere")


def check_cache(model, tokenizer, prompt: str, ids: Sequence[int]) -> CacheCheck:
    """Feed prompt + ids through the model with the cache (GPT: KV cache; RNN: the hidden state carried token to
    token) and without it (everything recomputed from the text for each position), and compare the next-token
    logits at every generated position (one row per id, so past the GPT's context window too, where both slide the
    window and re-run it: engine/decode.py says why no cached key survives the slide). Float32 models agree to about
    1e-6; a wrong cache (stale keys, wrong positions, a mis-reordered beam) shows up as differences of order 1.
    An n-gram model has no cache: both passes are the same table look-ups (difference 0)."""
    cached = forced_logits(model, tokenizer, prompt, ids, use_cache=True)
    plain = forced_logits(model, tokenizer, prompt, ids, use_cache=False)
    with np.errstate(invalid="ignore"):
        diff = np.where(np.isneginf(cached) & np.isneginf(plain), 0.0, np.abs(cached - plain))
    per_pos = diff.max(axis=1) if len(ids) else np.zeros(0)
    block = model.config.block_size if _runner_class(model) is _GPTRunner else None
    n_prompt = len(_prompt_ids(tokenizer, prompt, ngram=_runner_class(model) is _NGramRunner))
    past = (np.arange(len(ids)) + n_prompt > block) if block else np.zeros(len(ids), dtype=bool)
    return CacheCheck(float(per_pos.max(initial=0.0)), len(ids), int(past.sum()),
                      float(per_pos[past].max(initial=0.0)),
                      bool((cached.argmax(axis=1) == plain.argmax(axis=1)).all()) if len(ids) else True, block)


def run_columns(model, tokenizer, prompt: str, specs: Sequence[str | dict], check: bool = False,
                stop_flag=None, **shared) -> list[dict]:
    """Run columns to the end and report each (column_report; with check, its check_cache as "cache_check").
    `shared` goes to every column's DecodeConfig (max_new_tokens, stop, seed, use_cache, ...)."""
    cfgs = [column_config(s, **shared) for s in specs]
    records = [ColumnRecord(c) for c in cfgs]
    for i, event, seconds in interleave(model, tokenizer, prompt, cfgs, stop_flag):
        records[i].add(event, seconds)
    reports = [column_report(model, tokenizer, prompt, r) for r in records]
    if check:
        for rep in reports:
            rep["cache_check"] = check_cache(model, tokenizer, prompt, rep["token_ids"]).as_dict()
    return reports
