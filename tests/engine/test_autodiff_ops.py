"""Every tape op and composite layer against torch.autograd (float64, written independently here) and against
central finite differences of the op's own forward rule."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.autodiff import layers as L
from engine.autodiff import modules as M
from engine.autodiff.activations import CrossEntropy, GELU, LogSoftmax, ProbCrossEntropy, ReLU, Sigmoid, Softmax, Tanh
from engine.autodiff.check import check_against_torch, fd_check_node
from engine.autodiff.lecture import lecture_example
from engine.autodiff.tape import Tape, backward_step
from engine.autodiff.transformer_ops import CausalMask, RepeatKV, Rope

TOL = 1e-12
FD_TOL = 1e-6


def _backward_from(tape, out, g):
    """Seed out.grad = g (an arbitrary upstream gradient) and walk the tape back."""
    for node in tape.nodes:
        node.grad = None
    out.grad = g
    for node in reversed(tape.nodes[: out.id + 1]):
        if node.kind == "op":
            backward_step(tape, node)


def check_op(shapes, torch_fn, tape_fn, *, ints=(), scale=1.0, seed=0):
    """Random float64 inputs of `shapes` (plus integer inputs `ints` = [(high, shape)] appended after them) go
    through `tape_fn(tape, *nodes) -> node` and `torch_fn(*tensors) -> tensor`; outputs and input gradients under a
    random upstream gradient must agree, and every op node the tape recorded must pass a finite-difference check."""
    rng = np.random.default_rng(seed)
    floats = [rng.standard_normal(s) * scale for s in shapes]
    integers = [rng.integers(0, high, size=s) for high, s in ints]
    tape = Tape()
    nodes = [tape.param(a, f"x{i}") for i, a in enumerate(floats)] + [tape.input(a, "ids") for a in integers]
    out = tape_fn(tape, *nodes)
    tensors = [torch.tensor(a, requires_grad=True) for a in floats] + [torch.tensor(a) for a in integers]
    expected = torch_fn(*tensors)
    finite = torch.isfinite(expected)
    g = np.where(finite.numpy(), rng.standard_normal(out.shape), 0.0)
    (expected.masked_fill(~finite, 0.0) * torch.from_numpy(g)).sum().backward()
    _backward_from(tape, out, g)

    np.testing.assert_array_equal(np.isfinite(out.value), finite.numpy())
    np.testing.assert_allclose(out.value[np.isfinite(out.value)], expected.detach().numpy()[finite.numpy()],
                               rtol=TOL, atol=TOL)
    for node, t in zip(nodes, tensors):
        if t.requires_grad:
            got = node.grad if node.grad is not None else np.zeros(node.shape)
            np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=TOL, err_msg=node.label)
    for node in tape.nodes:
        if node.kind == "op":
            assert fd_check_node(tape, node.id) < FD_TOL, node.label
    return tape, out


def test_linear_with_and_without_bias():
    check_op([(5, 3), (4, 3), (4,)], lambda a, w, b: a @ w.T + b, lambda t, a, w, b: L.linear(t, a, w, b, "lin"))
    check_op([(3,), (4, 3)], lambda a, w: w @ a, lambda t, a, w: L.linear(t, a, w, None, "lin"))


def test_add_and_mul_broadcast():
    check_op([(2, 3, 4), (3, 1)], lambda a, b: a + b, lambda t, a, b: t.apply(M.Add(), a, b))
    check_op([(2, 3, 4), (4,)], lambda a, b: a * b, lambda t, a, b: t.apply(M.Mul(), a, b))
    check_op([(3, 4)], lambda a: a * a, lambda t, a: t.apply(M.Mul(), a, a))   # one input read twice


def test_one_minus_and_scale():
    check_op([(3, 4)], lambda a: 1 - a, lambda t, a: t.apply(M.OneMinus(), a))
    check_op([(3, 4)], lambda a: a * 0.37, lambda t, a: t.apply(M.Scale(0.37), a))


def test_matmul_batched_and_broadcast():
    check_op([(2, 3, 4), (2, 4, 5)], torch.matmul, lambda t, a, b: t.apply(M.MatMul(), a, b))
    check_op([(2, 3, 4), (4, 5)], torch.matmul, lambda t, a, b: t.apply(M.MatMul(), a, b))


def test_transpose_reshape_split_concat():
    check_op([(2, 3, 4)], lambda a: a.permute(1, 2, 0), lambda t, a: t.apply(M.Transpose((1, 2, 0)), a))
    check_op([(2, 3, 4)], lambda a: a.reshape(6, 4), lambda t, a: t.apply(M.Reshape((6, 4)), a))
    check_op([(3, 8)], lambda a: a[:, 2:6] * 2 + a[:, 4:8],
             lambda t, a: t.apply(M.Add(), t.apply(M.Scale(2.0), t.apply(M.Split(1, 2, 6), a)),
                                  t.apply(M.Split(1, 4, 8), a)))
    check_op([(2, 3), (4, 3), (1, 3)], lambda a, b, c: torch.cat([a, b, c], dim=0),
             lambda t, a, b, c: t.apply(M.Concat(0), a, b, c))


@pytest.mark.parametrize("op, fn", [(Tanh, torch.tanh), (Sigmoid, torch.sigmoid), (ReLU, torch.relu),
                                    (GELU, F.gelu)])
def test_elementwise_activations(op, fn):
    check_op([(4, 5)], fn, lambda t, a: t.apply(op(), a), scale=2.0)


def test_sigmoid_is_finite_for_extreme_inputs():
    out, _ = Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_gelu_is_the_exact_erf_form_not_the_tanh_approximation():
    a = np.linspace(-4, 4, 101)
    out, _ = GELU().forward(a)
    exact = F.gelu(torch.tensor(a)).numpy()
    approx = F.gelu(torch.tensor(a), approximate="tanh").numpy()
    np.testing.assert_allclose(out, exact, rtol=1e-15, atol=1e-15)
    assert np.abs(out - approx).max() > 1e-5


def test_softmax_and_log_softmax():
    check_op([(3, 6)], lambda a: a.softmax(-1), lambda t, a: t.apply(Softmax(), a), scale=3.0)
    check_op([(2, 3, 6)], lambda a: a.log_softmax(-1), lambda t, a: t.apply(LogSoftmax(), a), scale=3.0)


def test_softmax_backward_equals_the_seed_matrix_form():
    rng = np.random.default_rng(1)
    a, g = rng.standard_normal(5), rng.standard_normal(5)
    b, _ = Softmax().forward(a)
    seed_form = g @ (np.diag(b) - np.outer(b, b))     # g_bᵀ (diag(b) − b bᵀ)
    np.testing.assert_allclose(Softmax().backward(g, [a], b, {})[0], seed_form, rtol=1e-13, atol=1e-15)


def test_cross_entropy_is_torchs_mean_over_positions():
    check_op([(6, 7)], lambda z, y: F.cross_entropy(z, y), lambda t, z, y: t.apply(CrossEntropy(), z, y),
             ints=[(7, (6,))], scale=2.0)


def test_lecture_cross_entropy_on_probabilities():
    y = np.eye(4)[[2, 0, 3]]
    check_op([(3, 4)], lambda a: -(torch.from_numpy(y) * a.softmax(-1).log()).sum() / 3,
             lambda t, a: t.apply(ProbCrossEntropy(), t.input(y, "y", constant=True), t.apply(Softmax(), a)))


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm(bias):
    shapes = [(5, 8), (8,), (8,)] if bias else [(5, 8), (8,)]
    check_op(shapes, lambda a, w, b=None: F.layer_norm(a, (8,), w, b, 1e-5),
             lambda t, a, w, b=None: L.layer_norm(t, a, w, b, 1e-5, "ln"), scale=2.0)


def test_causal_mask_then_softmax():
    def torch_fn(a):
        return a.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    check_op([(2, 5, 5)], torch_fn, lambda t, a: t.apply(Softmax(), t.apply(CausalMask(), a)))


def test_rope_rotate_half():
    T, D = 5, 6
    angles = np.outer(np.arange(T), 10000.0 ** (-np.arange(0, D, 2) / D))
    angles = np.concatenate([angles, angles], axis=-1)
    cos, sin = np.cos(angles), np.sin(angles)

    def torch_fn(x):
        x1, x2 = x[..., :3], x[..., 3:]
        return x * torch.from_numpy(cos) + torch.cat([-x2, x1], dim=-1) * torch.from_numpy(sin)
    check_op([(2, T, D)], torch_fn, lambda t, x: t.apply(Rope(), x, t.input(cos, "cos", constant=True),
                                                         t.input(sin, "sin", constant=True)))


def test_repeat_kv_matches_repeat_interleave():
    check_op([(2, 3, 4)], lambda a: a.repeat_interleave(3, dim=0), lambda t, a: t.apply(RepeatKV(3), a))


def test_embedding_gradient_accumulates_repeated_ids():
    idx = np.array([1, 3, 1, 1, 0])
    tape = Tape()
    w = tape.param(np.random.default_rng(0).standard_normal((5, 3)), "w")
    out = tape.apply(M.Embedding(), tape.input(idx, "idx"), w)
    g = np.random.default_rng(1).standard_normal((5, 3))
    _backward_from(tape, out, g)
    wt = torch.tensor(w.value, requires_grad=True)
    (F.embedding(torch.tensor(idx), wt) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=0, atol=1e-15)
    assert tape.nodes[1].grad is None and not tape.nodes[1].differentiable   # token ids get no gradient


def test_causal_attention_equals_sdpa():
    def tape_fn(t, q, k, v):
        return L.causal_attention(t, q, k, v)

    def torch_fn(q, k, v):
        y = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]   # (H, T, D)
        return y.transpose(0, 1).reshape(4, 6)
    check_op([(2, 4, 3)] * 3, torch_fn, tape_fn)


def _cell_weights(gates, n_in, n_hidden):
    return [(gates * n_hidden, n_in), (gates * n_hidden,), (gates * n_hidden, n_hidden), (gates * n_hidden,)]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_cells_match_torch_cells(cell):
    n_in, n_h, gates = 3, 4, {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    shapes = [(1, n_in), (1, n_h)] + ([(1, n_h)] if cell == "lstm" else []) + _cell_weights(gates, n_in, n_h)

    def tape_fn(t, x, h, *rest):
        c, (w_ih, b_ih, w_hh, b_hh) = (rest[0], rest[1:]) if cell == "lstm" else (None, rest)
        xi = L.linear(t, x, w_ih, b_ih, "W_ih")
        if cell == "lstm":
            h2, c2 = L.lstm_step(t, xi, h, c, w_hh, b_hh)
            return t.apply(M.Concat(1), h2, c2)
        return (L.gru_step if cell == "gru" else L.rnn_step)(t, xi, h, w_hh, b_hh)

    def torch_fn(x, h, *rest):
        c, (w_ih, b_ih, w_hh, b_hh) = (rest[0], rest[1:]) if cell == "lstm" else (None, rest)
        if cell == "lstm":
            return torch.cat(torch._VF.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh), dim=1)
        fn = torch._VF.gru_cell if cell == "gru" else torch._VF.rnn_tanh_cell
        return fn(x, h, w_ih, w_hh, b_ih, b_hh)
    check_op(shapes, torch_fn, tape_fn)


def test_lecture_example_matches_the_seed_algorithms():
    """NNForward/NNBackward of the seed, written out by hand, against the tape's nodes."""
    program = lecture_example()
    nodes = {n.label: n for n in program.nodes}
    x, alpha, beta, y = (nodes[k].value for k in ("x", "α", "β", "y"))
    a = alpha @ x
    z = 1 / (1 + np.exp(-a))
    b = beta @ z
    y_hat = np.exp(b) / np.exp(b).sum()
    J = -y @ np.log(y_hat)
    g_y_hat = -(y / y_hat)
    g_b = g_y_hat @ (np.diag(y_hat) - np.outer(y_hat, y_hat))
    g_beta, g_z = np.outer(g_b, z), beta.T @ g_b
    g_a = g_z * z * (1 - z)
    g_alpha = np.outer(g_a, x)
    program.tape.backward(program.loss)
    assert math.isclose(float(nodes["CrossEntropy"].value), J, rel_tol=1e-14)
    for label, expected in [("Linear(α)", a), ("Sigmoid", z), ("Linear(β)", b), ("Softmax", y_hat)]:
        np.testing.assert_allclose(nodes[label].value, expected, rtol=1e-14)
    for label, expected in [("Softmax", g_y_hat), ("Linear(β)", g_b), ("Sigmoid", g_z), ("Linear(α)", g_a),
                            ("α", g_alpha), ("β", g_beta)]:
        np.testing.assert_allclose(nodes[label].grad, expected, rtol=1e-12, err_msg=label)
    assert [nodes[k].group for k in ("Linear(α)", "Sigmoid", "Linear(β)", "Softmax", "CrossEntropy")] == \
        ["a", "z", "b", "ŷ", "J"]


def test_whole_tape_check_against_torch_and_fd_on_the_lecture():
    result = check_against_torch(lecture_example())
    assert abs(result["loss"] - result["loss_torch"]) < 1e-14
    assert result["max_abs_grad_diff"] < 1e-14 and result["max_abs_value_diff"] < 1e-14
    program = lecture_example()
    assert all(fd_check_node(program.tape, n.id) < FD_TOL for n in program.nodes if n.kind == "op")


def test_fd_check_catches_a_wrong_backward_rule():
    class WrongSigmoid(Sigmoid):
        def backward(self, g, xs, out, saved):
            return [g * out]     # forgot (1 − b)
    tape = Tape()
    node = tape.apply(WrongSigmoid(), tape.param(np.linspace(-1, 1, 6), "a"))
    assert fd_check_node(tape, node.id) > 0.1
