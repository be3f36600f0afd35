"""Stepping: one node at a time equals the one-shot pass, step back restores the previous state bit for bit, the
per-node status is right, and a long unrolled RNN needs no recursion."""
import sys

import numpy as np
import pytest
import torch

from engine.autodiff.bridge import build_tape
from engine.autodiff.lecture import lecture_example
from engine.autodiff.stepper import Stepper
from engine.models.rnn import RNNConfig, RNNLM
from engine.models.transformer import GPT, GPTConfig
from engine.tokenizers.char import CharTokenizer

TEXT = "the king walks to the castle"


def _tok():
    return CharTokenizer.train(TEXT)


def _lstm_program():
    torch.manual_seed(0)
    model = RNNLM(RNNConfig(vocab_size=_tok().vocab_size, cell="lstm", n_layer=2, n_embd=6, n_hidden=6,
                            tie_weights=True))
    return build_tape(model, _tok(), TEXT[:6])


def _gpt_program():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=_tok().vocab_size, block_size=16, n_layer=2, n_head=2, n_kv_head=1,
                          n_embd=8))
    return build_tape(model, _tok(), TEXT[:10])


def _snapshot(program):
    return [(None if n.value is None else n.value.copy(), None if n.grad is None else n.grad.copy())
            for n in program.nodes]


def _assert_same(a, b):
    for (va, ga), (vb, gb) in zip(a, b):
        for x, y in ((va, vb), (ga, gb)):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("make", [lecture_example, _lstm_program, _gpt_program])
def test_stepping_all_the_way_equals_the_one_shot_pass(make):
    program = make()
    program.tape.backward(program.loss)   # recorded values + the tape's own backward walk
    one_shot = _snapshot(program)
    stepper = Stepper(program)
    assert all(not stepper.computed(n.id) for n in program.nodes if n.kind == "op")
    assert all(n.grad is None for n in program.nodes)
    while stepper.position < stepper.n_steps:
        stepper.step()
    assert stepper.phase == "done" and not stepper.can_step_forward and not stepper.can_step_backward
    _assert_same(_snapshot(program), one_shot)


@pytest.mark.parametrize("make", [lecture_example, _lstm_program])
def test_step_back_restores_every_earlier_state_exactly(make):
    stepper = Stepper(make())
    states = [_snapshot(stepper.program)]
    while stepper.position < stepper.n_steps:
        stepper.step()
        states.append(_snapshot(stepper.program))
    while stepper.can_step_back:
        undone = stepper.step_back()
        assert undone.position == stepper.position + 1
        _assert_same(_snapshot(stepper.program), states[stepper.position])
    assert stepper.position == 0 and stepper.history == []
    stepper.run_to_end()    # and forward again after going all the way back
    _assert_same(_snapshot(stepper.program), states[-1])


def test_step_infos_describe_each_step_and_carry_the_increments():
    stepper = Stepper(lecture_example())
    stepper.run_to_end()
    infos = stepper.history
    nodes = stepper.nodes
    assert [i.phase for i in infos] == ["forward"] * 5 + ["backward"] * 5
    assert [nodes[i.node_id].label for i in infos[5:]] == \
        ["CrossEntropy", "Softmax", "Linear(β)", "Sigmoid", "Linear(α)"]          # NNBackward's order
    sigmoid = infos[8]
    assert sigmoid.description == "Sigmoid backward: g_a = g_b ⊙ b ⊙ (1 − b), added to Linear(α) output"
    assert infos[0].description.startswith("Linear(α) forward: b = a ωᵀ")
    assert infos[5].description.startswith("Base case g_J = dJ/dJ = 1.")
    for info in infos[5:]:
        assert set(info.grads) <= set(nodes[info.node_id].inputs)
    # each param's final grad is exactly the sum of the increments it received, in step order
    for node in nodes:
        received = [i.grads[node.id] for i in infos if node.id in i.grads]
        if received:
            total = received[0].copy()
            for inc in received[1:]:
                total = total + inc
            np.testing.assert_array_equal(total, node.grad)


def test_grad_complete_means_the_grad_never_changes_again():
    stepper = Stepper(_lstm_program())
    stepper.run_forward()
    assert not any(stepper.grad_complete(n.id) for n in stepper.nodes)
    frozen = {}
    while stepper.can_step_backward:
        stepper.step_backward()
        for n in stepper.nodes:
            if n.id in frozen:
                assert stepper.grad_complete(n.id)
                np.testing.assert_array_equal(n.grad, frozen[n.id])
            elif stepper.grad_complete(n.id) and n.grad is not None:
                frozen[n.id] = n.grad.copy()
    assert all(stepper.grad_complete(n.id) for n in stepper.nodes)
    tied = stepper.program.params["wte.weight"]     # read by the embedding and the head: two consumers
    assert len(stepper.tape.consumers()[tied]) == 2 and tied in frozen


def test_wrong_order_is_refused():
    stepper = Stepper(lecture_example())
    with pytest.raises(ValueError):
        stepper.step_back()
    with pytest.raises(ValueError):
        stepper.step_backward()
    stepper.run_forward()
    assert stepper.can_step_backward and not stepper.can_step_forward
    with pytest.raises(ValueError):
        stepper.step_forward()
    stepper.reset()
    assert stepper.position == 0 and stepper.loss is None


def test_unrolled_rnn_of_256_steps_needs_no_recursion():
    text = ("abcdefgh" * 40)[:257]
    tok = CharTokenizer.train(text)
    torch.manual_seed(0)
    model = RNNLM(RNNConfig(vocab_size=tok.vocab_size, cell="lstm", n_layer=1, n_embd=3, n_hidden=3))
    program = build_tape(model, tok, text)
    # the longest chain from a leaf to the loss is far deeper than Python's recursion limit
    depth = [0] * len(program.nodes)
    for n in program.nodes:
        depth[n.id] = 1 + max((depth[i] for i in n.inputs), default=0)
    assert depth[program.loss] > sys.getrecursionlimit()
    stepper = Stepper(program)
    stepper.run_to_end()
    model = model.double()
    idx = torch.tensor([tok.encode(text)])
    _, loss = model(idx[:, :-1], idx[:, 1:])
    loss.backward()
    assert abs(stepper.loss - loss.item()) < 1e-12
    np.testing.assert_allclose(program.nodes[program.params["rnn.weight_hh_l0"]].grad,
                               model.rnn.weight_hh_l0.grad.numpy(), rtol=0, atol=1e-12)
