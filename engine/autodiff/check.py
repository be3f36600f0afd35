"""Checking the tape two independent ways, as the lecture recommends ("just run a finite-difference check on each
layer separately"): central finite differences for any single node, and torch.autograd for a whole tape.

Both leave the program's node values and grads as a full forward + backward would; don't run them on a program a
Stepper is partway through."""
from __future__ import annotations

import numpy as np

from engine.autodiff.tape import Node, Tape, TapeProgram


def _probe(out: np.ndarray, g: np.ndarray) -> float:
    """L = Σ g ⊙ out over finite entries (masked scores are −∞ and carry no gradient)."""
    return float((g * np.where(np.isfinite(out), out, 0.0)).sum())


def fd_check_node(tape: Tape, node_id: int, eps: float = 1e-6, max_entries: int = 24, seed: int = 0) -> float:
    """Relative error between the node's backward rule and central differences of its forward rule.

    A random upstream gradient g turns the node into the scalar L = Σ g ⊙ b; its backward gives dL/d(input),
    and (L(x + ε) − L(x − ε)) / 2ε estimates the same numbers. At most `max_entries` entries of each input are
    perturbed (chosen at random), which keeps big matrices cheap. Returns ‖num − ana‖ / (‖num‖ + ‖ana‖)."""
    node = tape.nodes[node_id]
    if node.kind != "op":
        raise ValueError(f"node {node_id} is a {node.kind}; only op nodes have a rule to check")
    rng = np.random.default_rng(seed)
    xs = [tape.nodes[i].value.copy() for i in node.inputs]
    out, saved = node.module.forward(*xs)
    g = np.where(np.isfinite(out), rng.standard_normal(out.shape), 0.0)
    analytic = node.module.backward(g, xs, out, saved)
    num, ana = [], []
    for k, (x, ga) in enumerate(zip(xs, analytic)):
        if ga is None or not np.issubdtype(x.dtype, np.floating):
            continue
        flat = rng.permutation(x.size)[:max_entries]
        for j in flat:
            idx = np.unravel_index(j, x.shape)
            old = x[idx]
            x[idx] = old + eps
            up = _probe(node.module.forward(*xs)[0], g)
            x[idx] = old - eps
            down = _probe(node.module.forward(*xs)[0], g)
            x[idx] = old
            num.append((up - down) / (2 * eps))
            ana.append(ga[idx])
    if not num:
        return 0.0
    num, ana = np.array(num), np.array(ana)
    scale = np.linalg.norm(num) + np.linalg.norm(ana)
    return float(np.linalg.norm(num - ana) / scale) if scale > 0 else 0.0


def check_against_torch(program: TapeProgram) -> dict:
    """Replay every node in torch (float64) from the same leaves, let autograd differentiate the loss, and compare
    with the tape's own forward values and backward grads."""
    import torch

    tape = program.tape
    _forward_all(tape)
    tape.backward(program.loss)
    tensors: list[torch.Tensor] = []
    for node in tape.nodes:
        if node.kind == "op":
            t = node.module.torch(*[tensors[i] for i in node.inputs])
            if t.requires_grad:
                t.retain_grad()
        else:
            t = torch.from_numpy(node.value.copy())
            if node.kind == "param" or (node.kind == "input" and node.differentiable):
                t.requires_grad_(True)
        tensors.append(t)
    loss = tensors[program.loss]
    loss.backward()
    value_diff = max(_max_abs(n.value, tensors[n.id].detach().numpy()) for n in tape.nodes)
    grad_diff = 0.0
    for node in tape.nodes[: program.loss + 1]:
        tg = tensors[node.id].grad
        if tg is not None:
            grad_diff = max(grad_diff, _max_abs(_or_zero(node), tg.numpy()))
    param_diff = max((_max_abs(_or_zero(tape.nodes[i]), tensors[i].grad.numpy())
                      for i in program.params.values() if tensors[i].grad is not None), default=0.0)
    return {"loss": float(tape.nodes[program.loss].value), "loss_torch": float(loss.detach()),
            "max_abs_value_diff": value_diff, "max_abs_grad_diff": grad_diff, "max_abs_param_grad_diff": param_diff}


def _forward_all(tape: Tape) -> None:
    for node in tape.nodes:
        if node.kind == "op":
            node.value, node.saved = node.module.forward(*[tape.nodes[i].value for i in node.inputs])


def _or_zero(node: Node) -> np.ndarray:
    return node.grad if node.grad is not None else np.zeros(node.shape)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    finite = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    return float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0
