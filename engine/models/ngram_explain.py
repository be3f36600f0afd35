"""Why an n-gram model gave a token the probability it did: the counts, discount and weights at every order.

`explain_token(model, context, w)` rebuilds P(w | context) from the raw counts, one order at a time, with the
formula of the model's smoothing (the recursive form of engine/models/ngram.py):

    interpolated (add-k, interpolation, kneser-ney):  P_j = A_j + B_j * P_{j-1}
    backoff (mle, stupid-backoff, katz):             P_j = A_j if the j-gram (h, w) was seen, else B_j * P_{j-1}

A_j is what order j gives w itself (its discounted or weighted count), B_j the weight of the lower order. The
pieces are worked out here from the counts (c(h w), c(h), the number of different tokens seen after h, the
Kneser-Ney continuation counts N1+(. h w)), not read from the model's tables, so `recombine` agreeing with
`NGramLM.next_distribution` checks the explanation. `describe` words it for a learner.

Sources: Jelinek & Mercer (1980) interpolation; Katz (1987) backoff, here with absolute discounting; Kneser & Ney
(1995) in Chen & Goodman's interpolated form (1998); Brants et al. (2007) stupid backoff (normalised here).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .ngram import NGramLM

FORMULAS = {
    "mle": "P(w | h) = c(h w) / c(h). A context h never seen is shortened until it was seen; a token never seen "
           "after a seen context gets 0.",
    "add-k": "P(w | h) = (c(h w) + k) / (c(h) + k·V), at the highest order only; a context never seen gives "
             "every token 1/V.",
    "interpolation": "P_j(w | h) = λ′_j · c(h w) / c(h) + (1 − λ′_j) · P_{j−1}(w | h′), with λ′_j = λ_j / "
                     "(λ_1 + … + λ_j); the unigram is add-k: P_1(w) = (c(w) + k) / (N + k·V).",
    "kneser-ney": "P_j(w | h) = max(c(h w) − D, 0) / c(h) + D · N1+(h •) / c(h) · P_{j−1}(w | h′), "
                  "down to P_0 = 1/V. Below the top order c counts contexts, not occurrences: "
                  "c(h w) = N1+(• h w), the "
                  "number of different tokens seen before h w.",
    "stupid-backoff": "S(w | h) = c(h w) / c(h) if h w was seen, else α · S(w | h′); normalised per order: "
                      "P_j = c(h w) / c(h) / Z or α / Z · P_{j−1}(w | h′), Z = 1 + α · (P_{j−1} mass of the "
                      "tokens never seen after h).",
    "katz": "P_j(w | h) = (c(h w) − D) / c(h) if h w was seen, else β(h) · P_{j−1}(w | h′), where "
            "β(h) = (D · N1+(h •) / c(h)) / (P_{j−1} mass of the tokens never seen after h).",
}
_INTERPOLATED = ("add-k", "interpolation", "kneser-ney")


def _level_counts(model: NGramLM, j: int, ctx_index: int, w: int, continuation: bool) -> dict:
    """Counts at order j for the context with index `ctx_index` at level j-1: c(h w), c(h) (the total over the
    tokens seen after h) and N1+(h •), as raw counts or as Kneser-Ney continuation counts; `words` and `cs` list
    every token seen after h with its count (the lower-order mass of the seen tokens needs them)."""
    V = model.config.vocab_size
    keys = model._keys[j - 1]
    lo, hi = (int(x) for x in np.searchsorted(keys, [ctx_index * V, (ctx_index + 1) * V]))
    words = keys[lo:hi] - ctx_index * V
    raw = model._counts[j - 1][lo:hi]
    if continuation:   # N1+(. h v): how many distinct (j+1)-grams end in the j-gram h v
        s = model._suffix[j]
        inside = s[(s >= lo) & (s < hi)]
        cs = np.bincount(inside - lo, minlength=hi - lo).astype(np.int64)
    else:
        cs = raw
    pos = int(np.searchsorted(words, w))
    present = pos < len(words) and int(words[pos]) == w
    return {"present": present, "count": int(cs[pos]) if present else 0,
            "raw_count": int(raw[pos]) if present else 0, "total": int(cs.sum()),
            "raw_total": int(raw.sum()), "types": int(np.count_nonzero(cs)), "words": words, "cs": cs}


def explain_token(model: NGramLM, context: Sequence[int], w: int) -> dict:
    """How P(w | context) comes about, order by order. Only the last n-1 tokens of `context` matter.

    Returns a JSON-ready dict: smoothing, formula, n (the model's order), token, context (the ids used),
    probability (recombined from the pieces), order_used (the longest context seen in training; 0 = none),
    ngram_order (the longest j-gram "context + w" seen in training; 0 = w never seen), kn_continuation (Kneser-Ney:
    N1+(• w) and N1+(• •), the continuation count that fed the lowest order; else None) and `orders`, one dict per
    order j = 1.. len(context)+1 with: order, context (ids), context_seen, count c(h w), context_count c(h),
    followers N1+(h •) (continuation counts for Kneser-Ney below the top order, with raw_count / raw_context_count
    the plain occurrences), seen (h w occurred), A and B of the recursive form, lower (P_{j-1}(w | h′) that B
    multiplies), mass_down (the share of probability this order hands to shorter contexts), p (P_j(w | h)) and
    the settings used (discount, weight, k, alpha). Raises ConfigError for ids outside the vocabulary and
    TrainingError for an unfitted model."""
    ctx = model._context(context)
    cfg, V, n = model.config, model.config.vocab_size, model.config.order
    w = int(model._check_ids([w], "token")[0])
    s = cfg.smoothing
    lam = cfg.interpolation_weights()
    interpolated, flat = s in _INTERPOLATED, s == "add-k"
    p, orders = 1.0 / V, []
    for j in range(1, len(ctx) + 2):
        h = ctx[len(ctx) - j + 1:]
        base = 1.0 / V if flat else p
        row = {"order": j, "context": list(h), "context_seen": False, "count": 0, "context_count": 0,
               "followers": 0, "seen": False, "A": 0.0, "B": 1.0, "lower": base, "mass_down": 1.0}
        c_idx = model._context_index(h) if len(model._keys[j - 1]) else -1
        if c_idx >= 0:
            k = _level_counts(model, j, c_idx, w, continuation=s == "kneser-ney" and j < n)
            row.update(count=k["count"], context_count=k["total"], followers=k["types"], seen=k["present"],
                       raw_count=k["raw_count"], raw_context_count=k["raw_total"],
                       continuation=s == "kneser-ney" and j < n)
        if c_idx < 0 or row["context_count"] == 0:
            if len(model._keys[j - 1]):
                p = base                  # the whole weight goes to the lower order
            else:
                row["no_grams"] = True    # the training text is shorter than j tokens: this order is skipped
            row["p"] = p
            orders.append(row)
            continue
        row["context_seen"] = True
        c, T, N = row["count"], row["context_count"], row["followers"]
        if s in ("stupid-backoff", "katz"):
            low = np.full(V, 1.0 / V) if j == 1 else model.next_distribution(h[1:])
            seen_low = float(low[k["words"][k["cs"] > 0]].sum())
            unseen_low = max(1.0 - seen_low, 0.0)
            row["lower_seen_mass"] = seen_low
        if s == "mle":
            A, B = c / T, 0.0
        elif s == "add-k" or (s == "interpolation" and j == 1):
            kV = cfg.k * V
            A, B = c / (T + kV), kV / (T + kV)
            row["k"] = cfg.k
        elif s == "interpolation":
            weight = float(lam[j - 1] / lam[:j].sum())
            A, B = weight * c / T, 1.0 - weight
            row["weight"] = weight
        elif s == "kneser-ney":
            A, B = max(c - cfg.discount, 0.0) / T, cfg.discount * N / T
            row["discount"] = cfg.discount
        elif s == "stupid-backoff":
            Z = 1.0 + cfg.backoff_alpha * unseen_low
            A, B = c / T / Z, cfg.backoff_alpha / Z
            row.update(alpha=cfg.backoff_alpha, Z=Z)
        else:  # katz
            full = unseen_low <= 1e-12
            A = c / T if full else (c - cfg.discount) / T
            B = 0.0 if full else cfg.discount * N / T / unseen_low
            row["discount"] = cfg.discount
        if not row["seen"]:
            A = 0.0
        p = A + B * base if interpolated else (A if row["seen"] else B * base)
        row.update(A=A, B=B, p=p, mass_down=B if interpolated else B * unseen_low if s != "mle" else 0.0)
        orders.append(row)
    seen_ctx = [o["order"] for o in orders if o["context_seen"]]
    if flat:
        seen_ctx = seen_ctx[-1:] if orders[-1]["context_seen"] else []
    kn = None
    if s == "kneser-ney" and n > 1:
        kn = {"count": orders[0]["count"], "total": orders[0]["context_count"]}
    return {"smoothing": s, "formula": FORMULAS[s], "n": n, "token": w, "context": list(ctx),
            "probability": p, "order_used": seen_ctx[-1] if seen_ctx else 0,
            "ngram_order": max([o["order"] for o in orders if o.get("raw_count", 0) > 0], default=0),
            "kn_continuation": kn, "orders": orders}


def recombine(expl: dict) -> float:
    """P(w | context) from the explanation's pieces alone: P_0 = 1/V (the first order's `lower`), then order by
    order P_j = A + B * P_{j-1} (interpolated) or A / B * P_{j-1} (backoff); add-k restarts from 1/V each order."""
    orders = expl["orders"]
    p = orders[0]["lower"]
    uniform = p
    for o in orders:
        lower = uniform if expl["smoothing"] == "add-k" else p
        if o.get("no_grams"):
            continue
        if not o["context_seen"]:
            p = lower
            continue
        if expl["smoothing"] in _INTERPOLATED:
            p = o["A"] + o["B"] * lower
        else:
            p = o["A"] if o["seen"] else o["B"] * lower
    return p


def _times(k: int) -> str:
    return "once" if k == 1 else f"{k} times"


def _ngram_name(j: int) -> str:
    return {1: "unigram", 2: "bigram", 3: "trigram"}.get(j, f"{j}-gram")


def describe(expl: dict, token_str: Callable[[int], str]) -> list[str]:
    """The explanation in sentences for a learner, most important first: the answer, then one line per order
    from the longest context down (the numbers put into the formula), then the formula. `token_str(id)` shows a
    token (spaces visible)."""
    s, n, w = expl["smoothing"], expl["n"], f"'{token_str(expl['token'])}'"
    ctx_text = lambda ids: "".join(token_str(i) for i in ids) if ids else "(nothing)"   # noqa: E731
    used, seen_at = expl["order_used"], expl["ngram_order"]
    lines = [f"P({w} | '{ctx_text(expl['context'])}') = {expl['probability']:.6g} under this {_ngram_name(n)} "
             f"model with {s} smoothing."]
    if used == 0:
        lines.append("No part of the context was seen in training, so the model answers from 1/V.")
    elif used < len(expl["orders"]):
        lines.append(f"The longest context seen in training is the {_ngram_name(used)} context "
                     f"'{ctx_text(expl['orders'][used - 1]['context'])}': longer ones were never seen, so their "
                     f"weight went down to it.")
    else:
        lines.append(f"The whole context '{ctx_text(expl['context'])}' was seen in training.")
    if seen_at == 0:
        lines.append(f"The token {w} itself never occurred in training.")
    elif s in ("mle", "stupid-backoff", "katz"):
        gram = (f"The unigram {w}" if seen_at == 1 else
                f"The {_ngram_name(seen_at)} '{ctx_text(expl['orders'][seen_at - 1]['context'])}' + {w}")
        if seen_at == len(expl["orders"]):
            lines.append(f"{gram} was seen in training, so order {seen_at}, the longest, answered directly.")
        elif s == "mle" and used > seen_at:
            lines.append(f"{gram} is the longest one seen, but the longer context was seen without {w} after it, "
                         f"and MLE keeps nothing for unseen tokens: P = 0.")
        else:
            lines.append(f"{gram} is the longest one seen, so order {seen_at} answered; the orders above it "
                         f"handed down to it the share they keep for tokens they never saw after their context.")
    elif s == "add-k":
        lines.append(f"The longest n-gram seen ending in {w} is the {_ngram_name(seen_at)}. Add-k looks only at the "
                     f"whole context (order {len(expl['orders'])}); the shorter ones below are shown for comparison "
                     f"and do not change P.")
    else:
        lines.append(f"The longest n-gram seen ending in {w} is the {_ngram_name(seen_at)}; with {s} every order "
                     f"adds its share, so the orders below still contribute.")
    if expl["kn_continuation"]:
        k = expl["kn_continuation"]
        lines.append(f"Kneser-Ney's lowest order counts how many different tokens came before {w}: "
                     f"N1+(• {w}) = {k['count']} of {k['total']} different bigrams.")
    for o in reversed(expl["orders"]):
        lines.append(_order_line(s, o, w, ctx_text))
    lines.append("Formula: " + expl["formula"])
    return lines


def _order_line(s: str, o: dict, w: str, ctx_text) -> str:
    j, name = o["order"], _ngram_name(o["order"])
    head = f"order {j} ({name}, context '{ctx_text(o['context'])}'): "
    if not o["context_seen"]:
        return head + f"context never seen, all its weight goes down: P_{j} = {o['p']:.6g}."
    if o.get("continuation"):
        seen = (f"continuation counts (how many different tokens came before): {o['context_count']} in all "
                f"after this context, {o['count']} for {w}, {_followers(o['followers'])}")
    else:
        seen = (f"seen {_times(o['context_count'])}, followed by {o['followers']} different "
                f"token{'s' * (o['followers'] != 1)}, by {w} {_times(o['count'])}")
    if s == "kneser-ney":
        how = (f"max({o['count']} − {o['discount']}, 0)/{o['context_count']} = {o['A']:.6g}, hands down "
               f"D·{o['followers']}/{o['context_count']} = {o['B']:.6g}")
    elif s == "interpolation" and "weight" in o:
        how = f"weight λ′ = {o['weight']:.4g}: A = {o['A']:.6g}, hands down {o['B']:.6g}"
    elif s in ("add-k", "interpolation"):
        how = f"({o['count']} + k)/({o['context_count']} + k·V) with k = {o['k']:g}; hands down {o['B']:.6g}"
    elif s == "mle":
        how = f"{o['count']}/{o['context_count']} = {o['A']:.6g}; nothing handed down"
    elif s == "katz":
        how = (f"({o['count']} − {o['discount']})/{o['context_count']} = {o['A']:.6g} if seen; reserved "
               f"{o['mass_down']:.6g} for unseen tokens (β = {o['B']:.6g})")
    else:
        how = (f"{o['count']}/{o['context_count']}/Z = {o['A']:.6g} if seen, else α/Z = {o['B']:.6g} "
               f"(Z = {o['Z']:.6g})")
    return head + seen + "; " + how + f"; P_{j} = {o['p']:.6g}."


def require_ngram(model) -> None:
    """ConfigError unless `model` is an n-gram model (only its probabilities are counts that can be explained)."""
    from ..errors import ConfigError
    if not isinstance(model, NGramLM):
        raise ConfigError("--explain explains an n-gram model's counts; this checkpoint holds a "
                          f"{getattr(model, 'family', type(model).__name__)} model")


def explain_generation(model: NGramLM, tokenizer, prompt: str, tokens: Sequence[dict]):
    """One JSON-ready dict per generated token (`tokens`: dicts with "id", "text" and "prob" as drawn, in order):
    step, id, text, prob, model_prob (P under the model, from `next_distribution`), the fields of `explain_token`
    and `explanation` (describe's sentences). The context of the first token is the prompt's ids as decoding
    starts from them (an empty prompt starts from a newline when the vocabulary has one)."""
    from ..decode import _prompt_ids   # the context decoding started from
    ids = _prompt_ids(tokenizer, prompt, ngram=True)
    for step, t in enumerate(tokens, 1):
        e = explain_token(model, ids, t["id"])
        yield {"step": step, "id": t["id"], "text": t["text"], "prob": t["prob"],
               "model_prob": float(model.next_distribution(ids)[t["id"]]), **e,
               "explanation": describe(e, tokenizer.token_str)}
        ids = (ids + [t["id"]])[-model.config.order:]


def generation_context(tokenizer, prompt: str, generated: Sequence[int], order: int) -> list[int]:
    """The ids the model conditioned on before the next generated token: the prompt's ids as decoding started from
    them, then `generated`, the last order-1 of them (what an n-gram model looks at)."""
    from ..decode import _prompt_ids
    ids = _prompt_ids(tokenizer, prompt, ngram=True) + [int(i) for i in generated]
    return ids[max(len(ids) - order + 1, 0):]


def _followers(n: int) -> str:
    return "1 different token follows it" if n == 1 else f"{n} different tokens follow it"
