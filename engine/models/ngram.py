"""n-gram language models (numpy): counting, six smoothing methods, next-token distributions and evaluation.

Storage is a trie in sorted arrays. The j-grams of the training ids are numbered level by level: a j-gram's key is
`index of its first j-1 tokens at level j-1 * vocab_size + last token`, so keys stay small (no V**n overflow), the
j-grams sharing a context are one contiguous run of the sorted keys, and a whole sequence is looked up with one
`searchsorted` per level. Counting is `np.unique` per level; no Python loop touches individual tokens.

Every smoothing is written in one recursive form, for a context h, its shortened context h' and a token w:

    interpolated (add-k, interpolation, kneser-ney):  P_j(w|h) = A_j(h,w) + B_j(h) * P_{j-1}(w|h')
    backoff (mle, stupid-backoff, katz):             P_j(w|h) = A_j(h,w) if (h,w) was seen else B_j(h) * P_{j-1}(w|h')

with A = 0 for unseen n-grams, P_0 = uniform, and P_j = P_{j-1} when h never occurred as a context. B_j(h) is the
mass the order hands down ("backoff_mass" in `explain`), and both forms sum to 1 over the vocabulary exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..corpus import require_min_length
from ..errors import CheckpointError, ConfigError, TrainingError
from . import ConfigMixin, check_finite

SMOOTHINGS = ("mle", "add-k", "interpolation", "stupid-backoff", "katz", "kneser-ney")
MAX_ORDER = 6
_INTERPOLATED = ("add-k", "interpolation", "kneser-ney")


@dataclass(frozen=True)
class NGramConfig(ConfigMixin):
    vocab_size: int                           # number of token ids; every distribution has this length
    order: int = 3                            # n: predict a token from the n-1 tokens before it (1..6)
    smoothing: str = "kneser-ney"             # how unseen n-grams get probability; one of SMOOTHINGS
    k: float = 1.0                            # add-k pseudo-count (1 = Laplace); also smooths interpolation's unigram
    lambdas: tuple[float, ...] | None = None  # interpolation weights, unigram first; None = 1:2:4:... normalised
    discount: float = 0.75                    # absolute discount D of kneser-ney and katz, 0 < D < 1
    backoff_alpha: float = 0.4                # stupid-backoff factor for each shorter context (Brants et al. 2007)

    def __post_init__(self):
        check_finite(self)
        if not isinstance(self.vocab_size, int) or self.vocab_size < 1:
            raise ConfigError(f"vocab_size must be a positive integer, not {self.vocab_size!r}")
        if not isinstance(self.order, int) or not 1 <= self.order <= MAX_ORDER:
            raise ConfigError(f"n-gram order must be an integer from 1 to {MAX_ORDER}, not {self.order!r}")
        if self.smoothing not in SMOOTHINGS:
            raise ConfigError(f"unknown smoothing {self.smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
        if not (isinstance(self.k, (int, float)) and 0 < self.k < math.inf):
            raise ConfigError(f"add-k needs k > 0, not {self.k!r}")
        if not (isinstance(self.discount, (int, float)) and 0 < self.discount < 1):
            raise ConfigError(f"discount must be between 0 and 1 (exclusive), not {self.discount!r}")
        if not (isinstance(self.backoff_alpha, (int, float)) and 0 < self.backoff_alpha <= 1):
            raise ConfigError(f"backoff_alpha must be in (0, 1], not {self.backoff_alpha!r}")
        if self.lambdas is not None:
            object.__setattr__(self, "lambdas", _parse_lambdas(self.lambdas, self.order))

    def interpolation_weights(self) -> np.ndarray:
        if self.lambdas is not None:
            return np.array(self.lambdas, dtype=np.float64)
        w = 2.0 ** np.arange(self.order)
        return w / w.sum()


def _parse_lambdas(value, order: int) -> tuple[float, ...]:
    """Accept a sequence, a single number (order 1) or "0.2,0.3,0.5" (as typed on the command line)."""
    try:
        if isinstance(value, str):
            value = value.split(",")
        elif isinstance(value, (int, float)):
            value = [value]
        lam = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"lambdas must be {order} numbers, not {value!r}") from None
    if len(lam) != order:
        raise ConfigError(f"lambdas needs one weight per order ({order}), got {len(lam)}")
    if any(not 0 <= x <= 1 for x in lam) or lam[0] <= 0:
        raise ConfigError("lambdas must lie in [0, 1], with a positive unigram weight (the first)")
    if abs(sum(lam) - 1.0) > 1e-6:
        raise ConfigError(f"lambdas must sum to 1, not {sum(lam):.6g}")
    return lam


class NGramLM:
    """Counts of every 1..n-gram of the training ids, smoothed into a next-token distribution for any context.

    Smoothings (c = count, h = context, D = discount, V = vocabulary size):
      mle             c(h,w) / c(h); an unseen context uses its longest seen suffix (0/0 is no estimate), and an
                      unseen n-gram gets 0, so evaluation reports math.inf.
      add-k           (c(h,w) + k) / (c(h) + kV) at the highest order only (k = 1 is Laplace).
      interpolation   Jelinek-Mercer: sum_j lambda_j P_ML(w | last j-1 tokens); the unigram term is add-k so no
                      token gets 0, and orders whose context was never seen give their weight to the rest.
      stupid-backoff  Brants et al. score c(h,w)/c(h), else alpha * score of the shorter context. Those scores
                      are not a distribution, so each order's scores are normalised over the vocabulary here.
      katz            Katz backoff with absolute discounting: seen n-grams get (c - D) / c(h); the D * types / c(h)
                      taken off goes to unseen tokens in proportion to the lower order, renormalised over them.
      kneser-ney      interpolated Kneser-Ney (Chen & Goodman), one discount D: the top order discounts counts,
                      lower orders discount continuation counts N1+(. h w), the bottom is uniform.
    """
    family = "ngram"

    def __init__(self, config: NGramConfig):
        self.config = config
        self._keys: list[np.ndarray] = []    # per level j (index j-1): sorted unique keys
        self._counts: list[np.ndarray] = []  # how often each j-gram occurs
        self._suffix: list[np.ndarray] = []  # level j-1 index of each j-gram's last j-1 tokens
        self._A: list[np.ndarray] = []       # smoothing tables, filled by _prepare once every order is counted

    # -- counting ------------------------------------------------------------------------------------------
    def fit_iter(self, ids) -> Iterator[float]:
        """Count all 1..n-grams, one order per step, yielding the fraction done (the last yield means ready)."""
        ids = self._check_ids(ids, "training")
        require_min_length(ids, 1, "the training text")
        cfg, n = self.config, self.config.order
        self._keys, self._counts, self._suffix, self._A = [], [], [], []
        prev = np.zeros(len(ids) + 1, dtype=np.int64)  # level j-1 index of the gram starting at each position
        for j in range(1, n + 1):
            m = max(len(ids) - j + 1, 0)                    # how many j-grams the text has
            keys = prev[:m] * cfg.vocab_size + ids[j - 1:]
            uniq, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                     return_counts=True)
            self._keys.append(uniq)
            self._counts.append(counts.astype(np.int64))
            self._suffix.append(prev[first + 1] if j > 1 else np.zeros(len(uniq), dtype=np.int64))
            prev = inverse.reshape(-1).astype(np.int64)
            if j == n:
                self._prepare()
            yield j / n

    def fit(self, ids) -> "NGramLM":
        for _ in self.fit_iter(ids):
            pass
        return self

    def _prepare(self) -> None:
        """Turn counts into the A (per n-gram) and B (per context) tables of the recursive form, lowest order
        first, since the backoff weights of order j depend on the probabilities of order j-1."""
        cfg, V, n = self.config, self.config.vocab_size, self.config.order
        lam = cfg.interpolation_weights()
        cum = np.cumsum(lam)
        self._A, self._B, self._total, self._types = [], [], [], []
        pseen = None                                  # P_{j-1} of every seen (j-1)-gram
        for j in range(1, n + 1):
            keys = self._keys[j - 1]
            n_ctx = 1 if j == 1 else len(self._keys[j - 2])
            ctx = keys // V
            if cfg.smoothing == "kneser-ney" and j < n:
                # Lower orders count contexts a token follows, not occurrences: N1+(. h w).
                c = np.bincount(self._suffix[j], minlength=len(keys)).astype(np.float64)
            else:
                c = self._counts[j - 1].astype(np.float64)
            total = np.bincount(ctx, weights=c, minlength=n_ctx)
            types = np.bincount(ctx, weights=(c > 0).astype(np.float64), minlength=n_ctx)
            plow = np.full(len(keys), 1.0 / V) if j == 1 or self._flat else pseen[self._suffix[j - 1]]
            safe_total = np.where(total > 0, total, 1.0)
            ml = c / safe_total[ctx]                  # maximum-likelihood estimate within the context
            s = cfg.smoothing
            if s == "mle":
                A, B = ml, np.zeros(n_ctx)
            elif s == "add-k" or (s == "interpolation" and j == 1):
                kV = cfg.k * V
                A, B = c / (total[ctx] + kV), kV / (total + kV)
            elif s == "interpolation":
                w = lam[j - 1] / cum[j - 1]           # this order's share among orders 1..j
                A, B = w * ml, np.full(n_ctx, 1.0 - w)
            elif s == "kneser-ney":
                D = cfg.discount
                A, B = np.maximum(c - D, 0.0) / safe_total[ctx], D * types / safe_total
            else:
                # Mass the lower order gives to the tokens this context has seen; backoff spends the reserved
                # mass only on the rest, so it is scaled by 1 / (1 - seen_low) to stay a distribution.
                seen_low = np.bincount(ctx, weights=plow * (c > 0), minlength=n_ctx)
                unseen_low = np.maximum(1.0 - seen_low, 0.0)
                if s == "stupid-backoff":
                    Z = 1.0 + cfg.backoff_alpha * unseen_low
                    A, B = ml / Z[ctx], cfg.backoff_alpha / Z
                else:  # katz with absolute discounting
                    full = unseen_low <= 1e-12            # the context was followed by every token
                    reserved = cfg.discount * types / safe_total
                    A = np.where(full[ctx], ml, (c - cfg.discount) / safe_total[ctx])
                    B = np.where(full, 0.0, reserved / np.where(full, 1.0, unseen_low))
            B = np.where(total > 0, B, 1.0)           # a context never seen hands everything down
            A = np.where(total[ctx] > 0, A, 0.0)
            pseen = A + B[ctx] * plow if self._interpolated else A
            self._A.append(A)
            self._B.append(B)
            self._total.append(total)
            self._types.append(types)

    # -- queries -------------------------------------------------------------------------------------------
    @property
    def _interpolated(self) -> bool:
        return self.config.smoothing in _INTERPOLATED

    @property
    def _flat(self) -> bool:
        """add-k does not recurse: every order smooths straight towards the uniform distribution."""
        return self.config.smoothing == "add-k"

    def _lookup(self, level: int, query: np.ndarray) -> np.ndarray:
        """Index of each key in level `level`'s sorted keys, -1 where absent (or where the query is -1)."""
        keys = self._keys[level - 1]
        pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
        found = (query >= 0) & (keys[pos] == query) if len(keys) else np.zeros(len(query), dtype=bool)
        return np.where(found, pos, -1)

    def _context_index(self, tokens: Sequence[int]) -> int:
        idx = 0
        for i, t in enumerate(tokens):
            idx = int(self._lookup(i + 1, np.array([idx * self.config.vocab_size + t]))[0])
            if idx < 0:
                break
        return idx

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(next token | context) as a (V,) float64 array summing to 1; only the last n-1 tokens matter."""
        ctx = self._context(context)
        V = self.config.vocab_size
        uniform = np.full(V, 1.0 / V)
        p = uniform
        for j in range(1, len(ctx) + 2):
            base = uniform if self._flat else p
            if not len(self._keys[j - 1]):
                continue                      # the training text is shorter than j tokens
            c = self._context_index(ctx[len(ctx) - j + 1:])
            if c < 0:
                p = base
                continue
            lo, hi = np.searchsorted(self._keys[j - 1], [c * V, (c + 1) * V])
            words = self._keys[j - 1][lo:hi] - c * V
            p = self._B[j - 1][c] * base
            if self._interpolated:
                p[words] += self._A[j - 1][lo:hi]
            else:
                p[words] = self._A[j - 1][lo:hi]
        return p

    def explain(self, context: Sequence[int]) -> dict:
        """Which order answered (the longest context seen in training; 0 = uniform) and how much probability
        mass that order handed down to shorter contexts (discounting, interpolation or backoff), per order."""
        ctx = self._context(context)
        V = self.config.vocab_size
        orders = []
        for j in range(1, len(ctx) + 2):
            c = self._context_index(ctx[len(ctx) - j + 1:])
            if c < 0 or not len(self._keys[j - 1]) or self._total[j - 1][c] == 0:
                orders.append({"order": j, "context_seen": False})
                continue
            lo, hi = np.searchsorted(self._keys[j - 1], [c * V, (c + 1) * V])
            orders.append({"order": j, "context_seen": True, "context_count": float(self._total[j - 1][c]),
                           "continuations": int(self._types[j - 1][c]),
                           "backoff_mass": float(max(1.0 - self._A[j - 1][lo:hi].sum(), 0.0))})
        seen = [o for o in orders if o["context_seen"]]
        if self._flat:
            seen = seen[-1:] if orders[-1]["context_seen"] else []
        top = seen[-1] if seen else {"order": 0, "context_count": 0.0, "continuations": 0, "backoff_mass": 1.0}
        return {"order_used": top["order"], "backoff_mass": top["backoff_mass"], "smoothing": self.config.smoothing,
                "context_count": top["context_count"], "continuations": top["continuations"], "orders": orders}

    def log_probs(self, ids) -> np.ndarray:
        """ln P of every token of `ids` given the tokens before it (the first ones with shorter contexts), all
        positions at once: one searchsorted per order over the whole sequence. -inf where P is 0 (mle)."""
        ids = self._check_ids(ids, "evaluation")
        self._require_fitted()
        V, N = self.config.vocab_size, len(ids)
        p = np.full(N, 1.0 / V)
        gram = np.zeros(N, dtype=np.int64)   # level j-1 index of the gram starting at each position, -1 = unseen
        for j in range(1, self.config.order + 1):
            m = N - j + 1                        # positions s where a j-gram fits; it predicts token s+j-1
            if m <= 0:
                break
            ctx = gram[:m]
            gram = self._lookup(j, np.where(ctx >= 0, ctx * V + ids[j - 1:], -1))
            if not len(self._keys[j - 1]):
                continue
            lower = np.full(m, 1.0 / V) if self._flat else p[j - 1:]
            A, B = self._A[j - 1], self._B[j - 1]
            b = np.where(ctx >= 0, B[np.maximum(ctx, 0)], 1.0) * lower
            a = np.where(gram >= 0, A[np.maximum(gram, 0)], 0.0)
            p[j - 1:] = np.where(gram >= 0, a + b, b) if self._interpolated else np.where(gram >= 0, a, b)
        with np.errstate(divide="ignore"):
            return np.log(p)

    def evaluate(self, ids) -> float:
        """Mean negative log-likelihood in nats per token; math.inf if any token has probability 0."""
        lp = self.log_probs(ids)
        if len(lp) == 0:
            raise ConfigError("cannot evaluate on an empty token sequence")
        return math.inf if np.isneginf(lp).any() else float(-lp.mean())

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def num_params(self) -> int:
        """Number of stored n-gram counts (distinct 1..n-grams of the training text)."""
        return int(sum(len(k) for k in self._keys))

    def flops_per_token(self) -> float:
        """0.0: training is counting and sorting, with no multiply-adds to report in the 6N convention."""
        return 0.0

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the model, as int64 arrays for a safetensors file (the smoothing tables
        are recomputed on load, so changing the smoothing of a saved model needs no recount)."""
        self._require_fitted()
        out = {}
        for j in range(1, self.config.order + 1):
            out[f"keys_{j}"] = self._keys[j - 1]
            out[f"counts_{j}"] = self._counts[j - 1]
            out[f"suffix_{j}"] = self._suffix[j - 1]
        return out

    @classmethod
    def from_arrays(cls, config: NGramConfig, arrays: dict[str, np.ndarray]) -> "NGramLM":
        model = cls(config)
        try:
            for j in range(1, config.order + 1):
                keys, counts, suffix = (np.asarray(arrays[f"{name}_{j}"], dtype=np.int64)
                                        for name in ("keys", "counts", "suffix"))
                n_prev = 1 if j == 1 else len(model._keys[-1])
                if (not len(keys) == len(counts) == len(suffix) or np.any(np.diff(keys) <= 0)
                        or (len(keys) and (keys[0] < 0 or keys[-1] // config.vocab_size >= n_prev
                                           or suffix.min() < 0 or suffix.max() >= max(n_prev, 1)))):
                    raise CheckpointError(f"n-gram arrays of order {j} do not fit a vocabulary of "
                                          f"{config.vocab_size}; the checkpoint is damaged or its config changed")
                model._keys.append(keys)
                model._counts.append(counts)
                model._suffix.append(suffix)
        except KeyError as e:
            raise CheckpointError(f"n-gram checkpoint is missing array {e}") from None
        model._prepare()
        return model

    def _require_fitted(self) -> None:
        if len(self._A) != self.config.order:
            raise TrainingError("the n-gram model has not been trained yet")

    def _check_ids(self, ids, what: str) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"{what} ids must be a 1-D sequence of integers")
        if arr.min() < 0 or arr.max() >= self.config.vocab_size:
            bad = arr.max() if arr.max() >= self.config.vocab_size else arr.min()
            raise ConfigError(f"token id {bad} is outside the model's vocabulary (size {self.config.vocab_size})")
        return arr.astype(np.int64)

    def _context(self, context: Sequence[int]) -> list[int]:
        self._require_fitted()
        ctx = self._check_ids(list(context), "context").tolist()
        return ctx[max(len(ctx) - self.config.order + 1, 0):]
