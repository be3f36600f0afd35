"""The loss plot's data side, without Qt: growing column buffers, min/max downsampling that keeps spikes visible,
and the debiased exponential moving average of the train loss."""
from __future__ import annotations

import math

import numpy as np


class Series:
    """Named float64 columns in buffers that double when full, so appending is amortised O(1) and reading is a
    view (no copy)."""

    def __init__(self, columns: tuple[str, ...], capacity: int = 1024):
        self._data = {c: np.empty(capacity) for c in columns}
        self.n = 0

    def append(self, **values: float) -> None:
        if self.n == len(next(iter(self._data.values()))):
            for c, a in self._data.items():
                self._data[c] = np.concatenate([a, np.empty_like(a)])
        for c, a in self._data.items():
            a[self.n] = values[c]
        self.n += 1

    def __getitem__(self, column: str) -> np.ndarray:
        return self._data[column][:self.n]

    def clear(self) -> None:
        self.n = 0


def minmax_downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bucket's minimum and maximum (in x order), so peaks survive however many points are merged —
    plain striding or averaging would hide a one-step loss spike among 100k points."""
    n = len(y)
    if n <= max_points:
        return x, y
    per = math.ceil(n / max(max_points // 2, 1))
    buckets = math.ceil(n / per)
    padded = np.concatenate([y, np.full(buckets * per - n, y[-1])]).reshape(buckets, per)
    base = np.arange(buckets) * per
    i_min = np.minimum(base + padded.argmin(axis=1), n - 1)
    i_max = np.minimum(base + padded.argmax(axis=1), n - 1)
    idx = np.stack([np.minimum(i_min, i_max), np.maximum(i_min, i_max)], axis=1).ravel()
    return x[idx], y[idx]


def ema_debiased(y: np.ndarray, beta: float, state: tuple = (0.0, 0.0, None),
                 steps: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """Exponential moving average of y, its time constant counted in training steps, bias-corrected as in Adam
    (divided by the weight the average has gathered, 1 - beta^t for one point per step), so the first points are
    not pulled towards zero. `steps` (y's steps, increasing; None: one point per step) lets points logged every k
    steps (a command-line run's history) decay by beta^k each: averaged per point, such a curve lagged k times as
    many steps behind its raw loss as a run logged at every step. `state` (average, weight, last step) lets new
    points extend an earlier result without recomputing it."""
    s, w, last = state
    out = np.empty(len(y))
    for i, v in enumerate(y):
        step = steps[i] if steps is not None else (last + 1 if last is not None else 1)
        b = beta ** max(float(step - last), 1.0) if last is not None else beta
        s = b * s + (1.0 - b) * v
        w = b * w + (1.0 - b)
        out[i] = s / w if beta > 0 else v
        last = step
    return out, (s, w, last)


def visible_slice(x: np.ndarray, lo: float, hi: float) -> slice:
    """Indices of the points inside [lo, hi] plus one either side, so lines run to the plot edges."""
    a = max(int(np.searchsorted(x, lo)) - 1, 0)
    b = min(int(np.searchsorted(x, hi, side="right")) + 1, len(x))
    return slice(a, b)


def unit_factor(val, unit: str) -> float | None:
    """What a run's losses (nats/token) are multiplied by to show them in `unit`: 1 for nats/token; for bits/char
    its validation split's bits per character over nats per token (tokens per character / ln 2), from its latest
    evaluation, or None before it has one. `val` maps "loss" and "bpc" to arrays (a Series or a dict)."""
    if unit == "nats/token":
        return 1.0
    loss, bpc = np.asarray(val["loss"]), np.asarray(val["bpc"])
    ok = np.isfinite(loss) & np.isfinite(bpc) & (loss > 0)
    return float(bpc[ok][-1] / loss[ok][-1]) if ok.any() else None


CLIP_ABOVE_START = 1.25   # a curve is shown up to this multiple of its first value; higher is cut off


def robust_y_range(series: list[np.ndarray]) -> tuple[float, float, bool] | None:
    """(low, high, clipped) for the loss axis over several curves, so that one diverged run does not squash the
    rest: a healthy loss curve is highest near its start, so each curve counts up to CLIP_ABOVE_START × its first
    value (all of it when it stays below that); `clipped` says some point lies above `high`. None when no curve
    has a finite point. Each array holds a curve's y values in x order (NaN allowed)."""
    lo, hi, top = math.inf, -math.inf, -math.inf
    for y in series:
        y = np.asarray(y, dtype=float)
        y = y[np.isfinite(y)]
        if len(y) == 0:
            continue
        first, ymax = float(y[0]), float(y.max())
        lo = min(lo, float(y.min()))
        hi = max(hi, min(ymax, CLIP_ABOVE_START * first) if first > 0 else ymax)
        top = max(top, ymax)
    if not math.isfinite(lo):
        return None
    hi = max(hi, lo)
    return lo, hi, top > hi
