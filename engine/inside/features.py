"""Simple features of a text, one number per token, and the units whose activation tracks them best.

This is the method of Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015) and of
LSTMVis (Strobelt et al. 2017) reduced to its simplest honest form: compute a feature from the text alone (is this
character inside quotes? how far into the line is it?), then rank every unit by the Pearson correlation between
its activation over the text and the feature. A high |r| says the unit co-varies with the feature on this text,
not that it computes it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOWELS = set("aeiouAEIOU")
OPEN_BRACKETS, CLOSE_BRACKETS = "([{", ")]}"

# name -> one-line explanation (shown as a tooltip and in the CLI's JSON)
FEATURES = {
    "inside quotes": "1 between an opening and a closing quote mark (\" always; ' when not between two letters)",
    "inside brackets": "1 inside (), [] or {} (nested brackets count once)",
    "position in line": "characters since the last newline (0 at the start of a line)",
    "after newline": "1 for the token right after a newline",
    "upper case": "1 when the token starts with an upper-case letter",
    "vowel": "1 when the token starts with a vowel (a e i o u, either case)",
    "space": "1 when the token starts with a space",
}


def token_starts(pieces: list[str]) -> list[int]:
    """Character offset where each token's text begins in the concatenated text."""
    starts, at = [], 0
    for p in pieces:
        starts.append(at)
        at += len(p)
    return starts


def text_features(pieces: list[str]) -> tuple[list[str], np.ndarray]:
    """Feature values (F, T) float64 for the tokens whose texts are `pieces` (T tokens). Each feature is read at
    the token's first character; a token with empty text (a byte fragment) takes the state of the one before."""
    text = "".join(pieces)
    n = len(text)
    in_quote = np.zeros(n + 1)
    in_bracket = np.zeros(n + 1)
    line_pos = np.zeros(n + 1)
    after_nl = np.zeros(n + 1)
    dq = sq = False
    depth = 0
    col = 0
    for i, ch in enumerate(text):
        # the state when character i is read: an opening mark is outside, its closing mark still inside
        in_quote[i] = float(dq or sq)
        in_bracket[i] = float(depth > 0)
        line_pos[i] = col
        after_nl[i] = float(i > 0 and text[i - 1] == "\n")
        if ch == '"':
            dq = not dq
        elif ch == "'":
            between_letters = 0 < i < n - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
            if not between_letters:
                sq = not sq
        elif ch in OPEN_BRACKETS:
            depth += 1
        elif ch in CLOSE_BRACKETS:
            depth = max(0, depth - 1)
        elif ch == "\n":   # a quote or bracket left open at the end of a line is most likely an apostrophe or typo
            sq = False
        col = 0 if ch == "\n" else col + 1
    starts = [min(s, max(n - 1, 0)) for s in token_starts(pieces)]
    first = [p[:1] if p else "" for p in pieces]
    rows = {
        "inside quotes": in_quote[starts],
        "inside brackets": in_bracket[starts],
        "position in line": line_pos[starts],
        "after newline": after_nl[starts],
        "upper case": np.array([float(c.isupper()) for c in first]),
        "vowel": np.array([float(c in VOWELS) for c in first]),
        "space": np.array([float(c == " ") for c in first]),
    }
    names = list(FEATURES)
    return names, np.stack([rows[k] for k in names]) if pieces else np.zeros((len(names), 0))


def correlations(acts: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """Pearson r (U, F) between every column of `acts` (T, U) and every row of `feats` (F, T). A unit or feature
    that is constant over the text has no correlation: its entries are 0 (not NaN), so it ranks last."""
    a = acts - acts.mean(axis=0, keepdims=True)
    f = feats - feats.mean(axis=1, keepdims=True)
    an = np.sqrt((a * a).sum(axis=0))
    fn = np.sqrt((f * f).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ f.T) / np.outer(an, fn)
    r[~np.isfinite(r)] = 0.0
    return np.clip(r, -1.0, 1.0)


@dataclass(frozen=True)
class UnitMatch:
    """One unit and the feature it tracks: `site` names where the unit lives ("layer 1 c"), `unit` its index
    there, `r` the Pearson correlation over the text (−1..1)."""
    site: str
    unit: int
    feature: str
    r: float


def rank_units(sites: list[tuple[str, np.ndarray]], names: list[str], feats: np.ndarray,
               per_feature: int = 5) -> tuple[dict[str, list[UnitMatch]], list[UnitMatch]]:
    """For each feature, its `per_feature` units with the largest |r| over all sites (each site (T, U)); and one
    list of every unit's best feature, ranked by |r| (the "which units track anything" list), at most 200 long.
    A feature that is constant on this text gets an empty list."""
    by_feature: dict[str, list[UnitMatch]] = {k: [] for k in names}
    best: list[UnitMatch] = []
    if not sites or feats.shape[1] < 3:
        return by_feature, best
    labels = [(site, u) for site, acts in sites for u in range(acts.shape[1])]
    r = correlations(np.concatenate([acts for _, acts in sites], axis=1).astype(np.float64), feats)   # (U, F)
    constant = feats.std(axis=1) == 0
    for k, name in enumerate(names):
        if constant[k]:
            continue
        top = np.argsort(-np.abs(r[:, k]), kind="stable")[:per_feature]
        by_feature[name] = [UnitMatch(*labels[i], name, float(r[i, k])) for i in top]
    strongest = np.abs(r).argmax(axis=1)
    order = np.argsort(-np.abs(r[np.arange(len(labels)), strongest]), kind="stable")[:200]
    best = [UnitMatch(*labels[i], names[strongest[i]], float(r[i, strongest[i]])) for i in order
            if r[i, strongest[i]] != 0]
    return by_feature, best
