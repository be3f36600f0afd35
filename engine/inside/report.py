"""`main.py inspect`: look_inside's figures as one JSON-ready dict, the same numbers the Inside tab draws."""
from __future__ import annotations

import math

from engine.inside.inspect import Inside, look_inside


def inspect_report(ckpt_dir: str, text: str, loss_at="last", per_feature: int = 5, **sources) -> dict:
    """sources: load_checkpoint's tokenizer_file / meta_file, for a model trained elsewhere."""
    from engine.api import load_checkpoint   # the facade imports most of the engine; only the CLI needs it here

    handle = load_checkpoint(ckpt_dir, **sources)
    return inside_report(look_inside(handle.model, handle.tokenizer, text, loss_at, per_feature))


def _f(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def inside_report(ins: Inside) -> dict:
    """Keys: family, tokens, note, missing (part -> why it is absent), logit_lens, top_units (feature -> units
    with r), attention_entropy (layer -> per-head mean entropy in nats), bptt (‖∂L/∂h_t‖ per layer, t = 1..T)."""
    out: dict = {"family": ins.family, "tokens": ins.tokens, "note": ins.note, "missing": ins.missing}
    if ins.lens is not None:
        lens = ins.lens
        positions = []
        for t, token in enumerate(ins.tokens):
            positions.append({
                "position": t + 1, "token": token,
                "next_in_text": ins.tokens[t + 1] if t + 1 < len(ins.tokens) else None,
                "top_per_layer": [{"token": lens.top_tokens[k][t], "prob": float(lens.top_probs[k, t])}
                                  for k in range(len(lens.layer_names))],
                "model_top_token": lens.top_tokens[-1][t],
                "model_top_prob_per_layer": [float(p) for p in lens.final_probs[:, t]],
                "next_in_text_prob_per_layer": [_f(p) for p in lens.next_probs[:, t]]})
        out["logit_lens"] = {"layers": lens.layer_names, "positions": positions}
    out["top_units"] = {name: [{"site": u.site, "unit": u.unit, "r": u.r} for u in units]
                        for name, units in ins.by_feature.items()}
    if ins.head_entropy is not None:
        out["attention_entropy"] = {f"layer {k + 1}": [float(e) for e in row]
                                    for k, row in enumerate(ins.head_entropy)}
    if ins.bptt is not None:
        b = ins.bptt
        out["bptt"] = {"loss_position": b.loss_at, "loss": b.loss, "positions": len(b.tokens),
                       "grad_norms": {f"layer {k + 1}": [float(v) for v in row] for k, row in enumerate(b.norms)}}
    return out
