"""Beam search bookkeeping: which hypotheses live on, which finish, which are pruned.

The lecture's point is that the most likely *sequence* is not found by picking the most likely token each step
(greedy), and trying every sequence is exponential; beam search keeps the `width` best prefixes per step as an
approximation. This module holds only that selection rule, on numpy arrays; `engine/decode.py` runs the model (the
hypotheses are the rows of one batch, their states reordered by the parents chosen here) and reports each step.

Ranking: live hypotheses all have the same length, so they are ranked by summed log-probability. A hypothesis is
finished when its text reaches a stop string or at max_new_tokens; finished ones are compared by
score = logprob / len**length_penalty (the simple form used by Hugging Face; 0 turns it off, 1 is the mean
log-probability per token, so longer texts are not punished just for having more factors below 1). The search
stops early once `width` hypotheses have finished.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class BeamInfo:
    """One hypothesis as a panel draws it in a beam tree."""
    token_ids: tuple[int, ...]  # generated tokens (the prompt excluded)
    text: str                   # their text, cut before a stop string
    logprob: float              # sum of the tokens' log-probabilities
    score: float                # logprob / len**length_penalty: what finished hypotheses are ranked by
    alive: bool                 # still being extended (False: finished or pruned)
    parent: int                 # index of the extended hypothesis among the previous step's live beams
    finish: str = ""            # "" while alive; "stop", "max_tokens" or "pruned"


def length_penalised(logprob: float, length: int, alpha: float) -> float:
    return logprob / (length ** alpha) if alpha else logprob


@dataclass
class BeamStep:
    """What one step decided: the rows to continue (parents, tokens) and what to report."""
    parents: list[int]          # for each new live beam, the row of its parent in the model batch
    tokens: list[int]           # the token each new live beam appends
    live: list[BeamInfo]        # the new live beams, best first (row i of the next batch is live[i])
    finished: list[BeamInfo]    # hypotheses that finished at this step
    pruned: list[BeamInfo]      # candidates that ranked in the top 2·width but were dropped


class BeamSearch:
    """The selection rule; `describe(token_ids) -> (text, hit_stop)` is supplied by the decoder, which knows the
    tokenizer and the stop strings."""

    def __init__(self, width: int, length_penalty: float, max_new_tokens: int,
                 describe: Callable[[tuple[int, ...]], tuple[str, bool]]):
        self.width = width
        self.alpha = length_penalty
        self.max_new_tokens = max_new_tokens
        self.describe = describe
        self.live = [BeamInfo((), "", 0.0, 0.0, True, -1)]
        self.finished: list[BeamInfo] = []
        self.steps = 0

    @property
    def done(self) -> bool:
        return not self.live or len(self.finished) >= self.width or self.steps >= self.max_new_tokens

    def best(self) -> BeamInfo:
        """The answer once done: the best finished hypothesis."""
        return max(self.finished, key=lambda h: h.score)

    def step(self, logprobs: np.ndarray) -> BeamStep:
        """Extend every live hypothesis (row b of logprobs (B, V) continues self.live[b]) by every token and keep
        the best. Only the top 2·width candidates are looked at: at most width of them finish and width live on."""
        self.steps += 1
        last = self.steps >= self.max_new_tokens
        V = logprobs.shape[1]
        totals = np.array([h.logprob for h in self.live])[:, None] + logprobs  # (B, V)
        flat = totals.ravel()
        n = min(2 * self.width, flat.size)
        top = np.argpartition(-flat, n - 1)[:n] if n < flat.size else np.arange(flat.size)
        # best first; ties go to the lower (row, token) so the order is deterministic and greedy-compatible
        top = top[np.lexsort((top, -flat[top]))]
        out = BeamStep([], [], [], [], [])
        for rank, c in enumerate(top):
            if not np.isfinite(flat[c]):
                break  # a zero-probability continuation (n-gram without smoothing) is never a hypothesis
            row, tok = divmod(int(c), V)
            ids = self.live[row].token_ids + (tok,)
            text, hit = self.describe(ids)
            lp = float(flat[c])
            hyp = BeamInfo(ids, text, lp, length_penalised(lp, len(ids), self.alpha), True, row)
            if (hit or last) and rank < self.width:
                out.finished.append(replace(hyp, alive=False, finish="stop" if hit else "max_tokens"))
            elif hit or last or len(out.live) >= self.width:
                out.pruned.append(replace(hyp, alive=False, finish="pruned"))
            else:
                out.live.append(hyp)
                out.parents.append(row)
                out.tokens.append(tok)
        self.finished.extend(out.finished)
        self.live = out.live
        return out
