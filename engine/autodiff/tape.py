"""The tape: a flat list of node records in the order they were computed, as in the seed lecture's
"Module-based AutoDiff (OOP Version)". `Tape.apply` is the lecture's `apply_fwd` (compute, then push); the backward
walk pops the list in reverse and each module's backward adds its input gradients into the producers' `grad`
(the lecture's `out_gradient`). Everything a viewer wants to show is plain data on the `Node`.

Because nodes are appended only after their inputs exist, list order is already a topological order: every walk
is a loop over the list, never recursion, so a long unrolled RNN is no deeper than a short one."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np


@dataclass(eq=False)
class Node:
    """One value on the tape and how it was made. `module` is the op object (holding any static settings such as
    an axis); it is the single place the node's forward and backward rules live."""
    id: int
    op: str                       # "Linear", "Sigmoid", "Param", "Input", ...
    inputs: tuple[int, ...]       # producer node ids in the op's argument order
    kind: str                     # "param" | "input" | "op"
    label: str                    # display name: "Linear(α)", "α", "x"
    group: str                    # "block 1 / attention / q projection", "RNN step 3", "loss"
    shape: tuple[int, ...]        # output shape, kept while the stepper has cleared `value`
    name: str = ""                # torch parameter name for params ("blocks.0.attn.q_proj.weight")
    value: np.ndarray | None = None
    saved: dict[str, np.ndarray] = field(default_factory=dict)
    grad: np.ndarray | None = None
    fwd_rule: str = ""
    bwd_rule: str = ""
    module: object = None         # the op (modules.Op); None for params and inputs
    differentiable: bool = True   # False for integer nodes (token ids, targets) and constant tables: no gradient


class Tape:
    """The global stack of the lecture, made an object so several programs can coexist."""

    def __init__(self):
        self.nodes: list[Node] = []
        self._groups: list[str] = []

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    @property
    def current_group(self) -> str:
        return " / ".join(self._groups)

    @contextmanager
    def group(self, name: str) -> Iterator[None]:
        """Nodes pushed inside the block belong to `name`, nested below any enclosing group."""
        self._groups.append(name)
        try:
            yield
        finally:
            self._groups.pop()

    def _push(self, **fields) -> Node:
        node = Node(id=len(self.nodes), group=self.current_group, **fields)
        self.nodes.append(node)
        return node

    def param(self, value, name: str, label: str | None = None) -> Node:
        """A trainable leaf; the backward walk accumulates its gradient."""
        value = np.array(value, dtype=np.float64)
        return self._push(op="Param", inputs=(), kind="param", label=label or name, shape=value.shape,
                          name=name, value=value, fwd_rule=f"{label or name} is a parameter",
                          bwd_rule="g accumulates from every consumer")

    def input(self, value, label: str, constant: bool = False) -> Node:
        """A non-trainable leaf: data (token ids, targets, x) or a table (positions, RoPE cos/sin). Float data
        collects a gradient like anything else (the lecture's g_x); `constant` leaves say they never do."""
        value = np.array(value)
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
        differentiable = not constant and bool(np.issubdtype(value.dtype, np.floating))
        # a constant's rule must not promise a gradient that its consumers never send
        bwd = ("g accumulates from every consumer" if differentiable else
               f"none: {label} is a constant (token ids, targets or a fixed table), so no gradient is kept for it")
        return self._push(op="Input", inputs=(), kind="input", label=label, shape=value.shape, value=value,
                          fwd_rule=f"{label} is given", bwd_rule=bwd, differentiable=differentiable)

    def apply(self, module, *inputs: Node, label: str | None = None) -> Node:
        """apply_fwd: compute the module's output from its inputs' values now, then push the record."""
        values = [n.value for n in inputs]
        out, saved = module.forward(*values)
        return self._push(op=module.op, inputs=tuple(n.id for n in inputs), kind="op", label=label or module.op,
                          shape=out.shape, value=out, saved=saved, fwd_rule=module.fwd_rule,
                          bwd_rule=module.bwd_rule, module=module,
                          differentiable=bool(np.issubdtype(out.dtype, np.floating)))

    def consumers(self) -> list[list[int]]:
        """For each node, the distinct op nodes that read it (each pushes one gradient into it)."""
        out: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in dict.fromkeys(node.inputs):
                out[i].append(node.id)
        return out

    def backward(self, loss: Node | int) -> None:
        """tape_bwd: seed g_J = 1 and walk the list backwards, each op adding into its inputs' grads.
        The Stepper does the same one node at a time; this is the one-shot version for code that only wants
        gradients (it shares `backward_step` with the stepper)."""
        loss_id = loss if isinstance(loss, int) else loss.id
        for node in self.nodes:
            node.grad = None
        self.nodes[loss_id].grad = np.ones_like(self.nodes[loss_id].value)
        for node in reversed(self.nodes[: loss_id + 1]):
            if node.kind == "op":
                backward_step(self, node)


def backward_step(tape: Tape, node: Node) -> dict[int, np.ndarray]:
    """apply_bwd for one node: run its backward rule and add each input gradient into the producer's `grad`.
    A new array is made rather than adding in place, so a caller holding the previous grad (the stepper, for
    step back) keeps it unchanged. Returns the increments, keyed by input node id."""
    if node.grad is None:
        return {}
    ins = [tape.nodes[i] for i in node.inputs]
    grads = node.module.backward(node.grad, [n.value for n in ins], node.value, node.saved)
    increments: dict[int, np.ndarray] = {}
    for src, g in zip(ins, grads):
        if g is None or not src.differentiable:
            continue
        increments[src.id] = increments[src.id] + g if src.id in increments else g
    for i, g in increments.items():
        src = tape.nodes[i]
        src.grad = g.copy() if src.grad is None else src.grad + g
    return increments


def forward_step(tape: Tape, node: Node) -> np.ndarray:
    """Recompute one op node from its inputs' current values (the stepper's forward)."""
    out, saved = node.module.forward(*[tape.nodes[i].value for i in node.inputs])
    node.value, node.saved = out, saved
    return out


@dataclass
class TapeProgram:
    """A recorded computation ready to step: the tape, which node is the loss, and where each parameter lives."""
    tape: Tape
    loss: int                                         # node id of the scalar loss
    params: dict[str, int] = field(default_factory=dict)   # torch parameter name -> node id
    tokens: list[str] = field(default_factory=list)   # input tokens as text, for display
    title: str = ""

    @property
    def nodes(self) -> list[Node]:
        return self.tape.nodes
