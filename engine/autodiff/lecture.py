"""The seed lecture's example network as a ready-made tape, with small fixed numbers, so a learner can step
through NNForward and NNBackward and see the lecture's quantities:

    a = Linear(x, α)   z = σ(a)   b = Linear(z, β)   ŷ = softmax(b)   J = −yᵀ log ŷ

Each node's group is the lecture's name for the quantity it produces (a, z, b, ŷ, J); the backward steps come out
in the order of NNBackward: g_ŷ, g_b, (g_β, g_z), g_a, (g_α, g_x)."""
from __future__ import annotations

import numpy as np

from engine.autodiff import modules as M
from engine.autodiff.activations import ProbCrossEntropy, Sigmoid, Softmax
from engine.autodiff.tape import Tape, TapeProgram

X = [1.0, 0.5, -1.0]                      # one training example, 3 features
ALPHA = [[0.2, -0.3, 0.1],                # hidden layer: 4 units from 3 features
         [0.4, 0.1, -0.2],
         [-0.1, 0.3, 0.5],
         [0.3, -0.4, 0.2]]
BETA = [[0.5, -0.2, 0.3, 0.1],            # output layer: 3 classes from 4 hidden units
        [-0.3, 0.4, 0.2, -0.1],
        [0.1, 0.2, -0.4, 0.3]]
Y = 1                                     # the gold class


GAMMA = [[0.3, -0.1, 0.2, 0.4],           # the residual variant's mixing layer: 4 hidden units to 4
         [-0.2, 0.5, 0.1, -0.3],
         [0.1, 0.2, -0.4, 0.2],
         [0.4, -0.3, 0.2, 0.1]]


def lecture_example() -> TapeProgram:
    return _lecture(fanout=False)


def lecture_fanout_example() -> TapeProgram:
    """The lecture's network with one value read twice, so Version B's accumulation shows:

        a = Linear(x, α)   z = σ(a)   m = Linear(z, γ)   u = z + m   b = Linear(u, β)   ŷ = softmax(b)   J

    z feeds both Linear(γ) and the Add (a skip connection, as in a transformer's residual stream). Popping the
    Add adds its in_gradient into z's out_gradient first; popping Linear(γ) adds the second increment, and only
    then is g_z complete and Sigmoid's apply_bwd can use it."""
    return _lecture(fanout=True)


def _lecture(fanout: bool) -> TapeProgram:
    """The seed lecture's network on the tape; with `fanout`, z also feeds Linear(γ) and a skip Add before β."""
    tape = Tape()
    with tape.group("x"):
        x = tape.input(X, "x")
    with tape.group("a"):
        alpha = tape.param(ALPHA, "alpha", "α")
        a = tape.apply(M.Linear(bias=False), x, alpha, label="Linear(α)")
    with tape.group("z"):
        z = tape.apply(Sigmoid(), a, label="Sigmoid")
    params = {"alpha": alpha.id}
    into_beta = z
    if fanout:
        with tape.group("m"):
            gamma = tape.param(GAMMA, "gamma", "γ")
            m = tape.apply(M.Linear(bias=False), z, gamma, label="Linear(γ)")
        with tape.group("u"):
            into_beta = tape.apply(M.Add(), z, m, label="Add")
        params["gamma"] = gamma.id
    with tape.group("b"):
        beta = tape.param(BETA, "beta", "β")
        b = tape.apply(M.Linear(bias=False), into_beta, beta, label="Linear(β)")
    params["beta"] = beta.id
    with tape.group("ŷ"):
        y_hat = tape.apply(Softmax(), b, label="Softmax")
    with tape.group("J"):
        y = tape.input(np.eye(len(BETA))[Y], "y", constant=True)   # gold labels: no gradient
        loss = tape.apply(ProbCrossEntropy(), y, y_hat, label="CrossEntropy")
    title = ("One value, two consumers: z feeds Linear(γ) and the skip Add, so g_z accumulates (Version B)" if fanout
             else "Seed lecture: x → Linear(α) → Sigmoid → Linear(β) → Softmax → CrossEntropy")
    return TapeProgram(tape, loss.id, params, tokens=[], title=title)
