"""Stepping through a recorded program one node at a time, forward then backward, and back again.

Forward steps recompute the op nodes in tape order; backward steps visit the same op nodes in reverse, each adding
its input gradients into the producers (the first one seeds g_J = 1, the lecture's base case). Every step leaves
an undo record, so `step_back` restores the previous state exactly: a forward step is undone by clearing the
value, a backward step by putting back the grad arrays it replaced (grads are never changed in place, so the old
arrays are still intact). `run_forward`/`run_backward`/`run_to_end` are loops over the same steps.

Not thread-safe: one worker thread owns a Stepper and hands StepInfo and array copies to the GUI."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.autodiff.tape import Node, TapeProgram, backward_step, forward_step


@dataclass
class StepInfo:
    """What one step did, as plain data."""
    position: int                  # steps done after this one
    phase: str                     # "forward" | "backward"
    node_id: int
    description: str               # one sentence for the learner
    grads: dict[int, np.ndarray] = field(default_factory=dict)   # backward: input node id -> increment received


class Stepper:
    def __init__(self, program: TapeProgram):
        self.program = program
        self.tape = program.tape
        self.ops = [n.id for n in self.tape.nodes[: program.loss + 1] if n.kind == "op"]
        self.n_forward = len(self.ops)
        self.n_steps = 2 * self.n_forward
        # a node's gradient is complete once the last of its consumers (earliest on the tape) has stepped back
        consumers = self.tape.consumers()
        bwd_index = {node_id: k for k, node_id in enumerate(reversed(self.ops))}
        self._complete_after = [max((bwd_index[j] + 1 for j in consumers[i] if j in bwd_index), default=1)
                                for i in range(len(self.tape))]
        self.reset()

    @property
    def nodes(self) -> list[Node]:
        return self.tape.nodes

    def reset(self) -> None:
        """Back to the start: params and inputs hold their values, no op is computed, no gradient exists."""
        for node in self.tape.nodes:
            if node.kind == "op":
                node.value, node.saved = None, {}
            node.grad = None
        self.position = 0
        self.history: list[StepInfo] = []
        self._undo: list[tuple] = []

    @property
    def phase(self) -> str:
        if self.position < self.n_forward:
            return "forward"
        return "backward" if self.position < self.n_steps else "done"

    @property
    def can_step_forward(self) -> bool:
        return self.position < self.n_forward

    @property
    def can_step_backward(self) -> bool:
        return self.n_forward <= self.position < self.n_steps

    @property
    def can_step_back(self) -> bool:
        return self.position > 0

    @property
    def loss(self) -> float | None:
        value = self.tape.nodes[self.program.loss].value
        return None if value is None else float(value)

    def value(self, node_id: int) -> np.ndarray | None:
        return self.tape.nodes[node_id].value

    def grad(self, node_id: int) -> np.ndarray | None:
        return self.tape.nodes[node_id].grad

    def computed(self, node_id: int) -> bool:
        return self.tape.nodes[node_id].value is not None

    def grad_complete(self, node_id: int) -> bool:
        """True once every consumer has pushed its gradient into this node (its grad will not change again)."""
        return self.position - self.n_forward >= self._complete_after[node_id]

    def _title(self, node: Node) -> str:
        """"Sigmoid", "Linear(α)", or the op with a descriptive label: "Sigmoid (reset gate r)"."""
        return node.label if node.label.startswith(node.op) else f"{node.op} ({node.label})"

    def _describe_input(self, node_id: int) -> str:
        """"Linear(α) output" for an op-named node, else its label ("x", "α", "x_r + h_r")."""
        node = self.tape.nodes[node_id]
        return f"{node.label} output" if node.kind == "op" and node.label.startswith(node.op) else node.label

    def step_forward(self) -> StepInfo:
        if not self.can_step_forward:
            raise ValueError("the forward pass is already complete")
        node = self.tape.nodes[self.ops[self.position]]
        forward_step(self.tape, node)
        sources = ", ".join(self._describe_input(i) for i in dict.fromkeys(node.inputs))
        shape = "scalar" if node.value.ndim == 0 else "shape " + "×".join(map(str, node.value.shape))
        info = StepInfo(self.position + 1, "forward", node.id,
                        f"{self._title(node)} forward: {node.fwd_rule}, from {sources} ({shape})")
        return self._done(info, ("forward", node.id))

    def step_backward(self) -> StepInfo:
        if not self.can_step_backward:
            raise ValueError("the backward pass needs a complete forward pass and is not finished yet"
                             if self.position < self.n_forward else "the backward pass is already complete")
        k = self.position - self.n_forward
        node = self.tape.nodes[self.ops[self.n_forward - 1 - k]]
        seeded = k == 0
        if seeded:
            node.grad = np.ones_like(node.value)
        before = {i: self.tape.nodes[i].grad for i in node.inputs}
        increments = backward_step(self.tape, node)
        if increments:
            targets = ", ".join(self._describe_input(i) for i in increments)
            text = f"{self._title(node)} backward: {node.bwd_rule}, added to {targets}"
        elif node.grad is None:
            text = f"{self._title(node)} backward: no gradient reaches this node (it does not affect J), nothing to pass on"
        else:
            text = f"{self._title(node)} backward: its inputs are data, so no gradient is passed on"
        if seeded:
            text = "Base case g_J = dJ/dJ = 1. " + text
        info = StepInfo(self.position + 1, "backward", node.id, text, increments)
        return self._done(info, ("backward", node.id, before, seeded))

    def step(self) -> StepInfo:
        return self.step_forward() if self.can_step_forward else self.step_backward()

    def _done(self, info: StepInfo, undo: tuple) -> StepInfo:
        self.position += 1
        self.history.append(info)
        self._undo.append(undo)
        return info

    def step_back(self) -> StepInfo:
        """Undo the last step exactly; returns the StepInfo of the step undone."""
        if not self.can_step_back:
            raise ValueError("nothing to step back from")
        undo = self._undo.pop()
        node = self.tape.nodes[undo[1]]
        if undo[0] == "forward":
            node.value, node.saved = None, {}
        else:
            for i, grad in undo[2].items():
                self.tape.nodes[i].grad = grad
            if undo[3]:
                node.grad = None
        self.position -= 1
        return self.history.pop()

    def run_forward(self) -> None:
        while self.can_step_forward:
            self.step_forward()

    def run_backward(self) -> None:
        self.run_forward()
        while self.can_step_backward:
            self.step_backward()

    def run_to_end(self) -> None:
        self.run_backward()
