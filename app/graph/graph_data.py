"""What the Graph tab shows, as plain data and with no Qt: recording and laying out a tape (run on a worker
thread), a random text window from the validation split, and the RNN hidden states for the gradient strip."""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from app.graph.graph_layout import GraphSpec, default_collapsed, layout

H_GROUP = re.compile(r"^RNN layer (\d+) / RNN step (\d+)$")


def record_and_layout(build: Callable[[], object], view_width: float | None = None) -> tuple:
    """Worker side of a build: the tape, its structure and its first layout (large graphs collapsed, small wide
    ones folded to fit a view `view_width` pixels wide)."""
    program = build()
    spec = GraphSpec.from_nodes(program.nodes)
    collapsed = default_collapsed(spec)
    return program, spec, collapsed, layout(spec, collapsed, view_width)


def build_model_tape(model, tokenizer, text: str):
    """bridge.build_tape; when the text is too long, its message also says how much of the text would fit."""
    from engine.autodiff.bridge import TapeError, build_tape, max_tape_tokens   # torch model code, only when needed
    try:
        return build_tape(model, tokenizer, text)
    except TapeError as e:
        limit, ids = max_tape_tokens(model), tokenizer.encode(text)
        if len(ids) <= limit:
            raise
        fits = tokenizer.decode(ids[:limit])
        shown = f"“{fits}”" if len(fits) <= 30 else f"up to “…{fits[-20:]}”"   # where to cut the text
        raise TapeError(f"{e} — {limit} tokens fit: the first {len(fits)} characters, {shown}") from e


def hidden_states_by_layer(nodes) -> dict[int, list[int]]:
    """RNN layer -> its h_t node ids in time order: the node labelled "h" in each "RNN layer k / RNN step t"
    group (empty for a transformer or the lecture example)."""
    found: dict[int, dict[int, int]] = {}
    for node in nodes:
        m = H_GROUP.match(node.group)
        if m and node.label == "h":
            found.setdefault(int(m[1]), {})[int(m[2])] = node.id
    return {k: [v[t] for t in sorted(v)] for k, v in sorted(found.items())}


def finished_grad_norms(stepper, ids) -> np.ndarray:
    """‖∂L/∂v‖ for each node id; 0 until the backward pass has finished adding into that node."""
    return np.array([np.linalg.norm(stepper.grad(i)) if stepper.grad(i) is not None and stepper.grad_complete(i)
                     else 0.0 for i in ids])
