"""One look inside a model on one text: the Inside tab's and `main.py inspect`'s whole computation, as plain
numpy data (nothing here holds a tensor once `look_inside` returns, so the result may cross threads)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.inside.activations import entropy_per_head, logit_lens, rnn_unrolled, transformer_pass
from engine.inside.bptt import BPTT, InsideError, bptt_and_sites, resolve_loss_at
from engine.inside.features import UnitMatch, rank_units, text_features

MAX_RNN_TOKENS = 2048      # the step-by-step loop costs ~0.1 ms a step per layer; past this a refresh drags


@dataclass
class Lens:
    """The logit lens over L+1 readouts (layer 0 = the embeddings, layer l = after block l), T positions.
    top_ids / top_probs (L+1, T): the most likely next token at each readout and its probability.
    final_ids (T,): the token the full model ranks first; final_probs (L+1, T): its probability at each readout
    (the last row equals top_probs' last row). next_probs (L+1, T): probability of the text's actual next token
    (NaN at the last position, which has none). top_tokens: display strings for top_ids."""
    layer_names: list[str]
    top_ids: np.ndarray
    top_probs: np.ndarray
    top_tokens: list[list[str]]
    final_ids: np.ndarray
    final_probs: np.ndarray
    next_probs: np.ndarray
    logits: np.ndarray           # (T, V) float32: the model's own output, for checking the last readout


@dataclass
class Inside:
    """Everything the Inside tab shows for one text. T is the number of tokens looked at.

    sites: "layer k NAME" -> (T, units) float32 activations, in display order (see activations.SITE_HELP).
    features: (F, T) float64 text features named `feature_names`; by_feature / best_units: rank_units' lists.
    attention: (n_layer, n_head, T, T) float32 or None (a recurrent model has none); head_entropy (n_layer,
    n_head) mean nats. lens: Lens or None. bptt: BPTT or None (a transformer has no recurrence).
    missing: part -> one sentence why it is absent for this model. note: e.g. that the text was cut to fit."""
    family: str
    tokens: list[str]
    pieces: list[str]
    ids: np.ndarray
    sites: dict[str, np.ndarray]
    feature_names: list[str]
    features: np.ndarray
    by_feature: dict[str, list[UnitMatch]]
    best_units: list[UnitMatch]
    attention: np.ndarray | None = None
    head_entropy: np.ndarray | None = None
    lens: Lens | None = None
    bptt: BPTT | None = None
    missing: dict[str, str] = field(default_factory=dict)
    note: str = ""


def token_limit(model) -> int:
    """The most tokens look_inside reads from a text for this model (longer texts are cut, with a note)."""
    return model.config.block_size if getattr(model, "family", "") == "transformer" else MAX_RNN_TOKENS



def _recurrent_missing(family: str) -> dict[str, str]:
    """Why a recurrent model has no attention or logit lens view; the article as the name is read aloud (an RNN,
    an LSTM, a GRU)."""
    name = family.upper()
    article = "a" if name == "GRU" else "an"
    return {"attention": f"{article} {name} has no attention: it carries the past in its state h_t",
            "lens": ("the logit lens reads a residual stream after each block; a recurrent model's layers have no "
                     "shared stream to read through the output head")}

def look_inside(model, tokenizer, text: str, loss_at="last", per_feature: int = 5, with_bptt: bool = True) -> Inside:
    """Run `model` (an RNNLM or GPT, in eval mode) on `text` and collect what the Inside tab shows.

    loss_at: whose loss the BPTT norms carry back ("last", "mean" or a position 1..T−1, see bptt.py).
    Raises InsideError for an n-gram model or a text under 2 tokens, TokenizerError for characters the
    tokenizer does not know."""
    family = getattr(model, "family", "ngram")
    if family not in ("rnn", "lstm", "gru", "transformer"):
        raise InsideError("an n-gram model has no units, attention or layers to look inside: it is a table of "
                          "counts that looks the next token's probability up; train an RNN, LSTM, GRU or "
                          "transformer")
    ids = tokenizer.encode(text)
    limit = token_limit(model)
    note = ""
    if len(ids) > limit:
        what = "context (block_size)" if family == "transformer" else "limit for a step-by-step run"
        note = f"the text is {len(ids)} tokens; the model's {what} is {limit}, so the first {limit} are shown"
        ids = ids[:limit]
    if len(ids) < 2:
        raise InsideError(f"the text must be at least 2 tokens long; got {len(ids)}")
    resolve_loss_at(loss_at, len(ids) - 1)   # refused for every family, also where no BPTT figures read it
    tokens = [tokenizer.token_str(i) for i in ids]
    piece_of = {i: tokenizer.decode([i]) for i in set(ids)}
    pieces = [piece_of[i] for i in ids]
    p = next(model.parameters())
    idx = torch.tensor(ids, device=p.device)
    missing: dict[str, str] = {}
    attention = head_entropy = lens = bptt = None
    with torch.no_grad():
        if family == "transformer":
            logits, resid, mlp, att = transformer_pass(model, idx)
            sites = {}
            for k, m in enumerate(mlp):
                sites[f"layer {k + 1} mlp"] = m
            for k, r in enumerate(resid):
                sites[f"layer {k} resid"] = r
            lens = _lens(model, resid, logits, ids, tokenizer)
            attention = _np(att)
            head_entropy = entropy_per_head(att)
            missing["bptt"] = ("a transformer has no recurrence: every position reaches every earlier one "
                               "directly through attention, so there is no chain of h_t to vanish along")
        elif with_bptt:    # one pass gives the activations and, with autograd, the gradient norms
            bptt, sites = bptt_and_sites(model, ids, loss_at, tokens[:-1])
            missing.update(_recurrent_missing(family))
        else:
            logits, sites = rnn_unrolled(model, idx)
            missing.update(_recurrent_missing(family))
    sites = {k: _np(v) for k, v in sites.items()}
    names, feats = text_features(pieces)
    by_feature, best = rank_units(list(sites.items()), names, feats, per_feature)
    return Inside(family, tokens, pieces, np.array(ids), sites, names, feats, by_feature, best, attention,
                  head_entropy, lens, bptt, missing, note)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _lens(model, resid, logits, ids, tokenizer) -> Lens:
    logp = logit_lens(model, resid)                                 # (L+1, T, V)
    probs = logp.exp()
    top_probs, top_ids = probs.max(dim=-1)                          # (L+1, T)
    final_ids = logits.argmax(dim=-1)                               # (T,)
    final_probs = probs.gather(-1, final_ids.expand(probs.shape[0], -1)[..., None])[..., 0]
    nxt = torch.tensor(ids[1:] + ids[-1:], device=probs.device)
    next_probs = probs.gather(-1, nxt.expand(probs.shape[0], -1)[..., None])[..., 0].clone()
    next_probs[:, -1] = float("nan")
    names = ["embeddings"] + [f"after block {k}" for k in range(1, len(resid))]
    top_ids_np = top_ids.cpu().numpy()
    return Lens(names, top_ids_np, _np(top_probs),
                [[tokenizer.token_str(int(i)) for i in row] for row in top_ids_np],
                final_ids.cpu().numpy(), _np(final_probs), _np(next_probs), _np(logits))
