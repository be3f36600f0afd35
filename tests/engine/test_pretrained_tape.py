"""The autodiff tape on GPT-2's options: the tanh-approximate GELU and LayerNorm with its own ε and bias as ops
(forward against torch, backward against autograd and finite differences, all in float64), and a whole Hugging
Face GPT-2 on the tape: its loss equals transformers' own float64 loss, its gradients torch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import api
from engine.autodiff import layers as L
from engine.autodiff.activations import GELUTanh
from engine.autodiff.bridge import build_tape
from engine.autodiff.check import check_against_torch, fd_check_node
from engine.autodiff.stepper import Stepper
from tests.engine.pretrained_files import hf_gpt2
from tests.engine.test_autodiff_ops import check_op


def test_tanh_gelu_op_is_torchs_approximation_with_its_gradient():
    check_op([(4, 7)], lambda a: F.gelu(a, approximate="tanh"), lambda t, a: t.apply(GELUTanh(), a), scale=3.0)
    a = np.linspace(-4, 4, 101)
    out, _ = GELUTanh().forward(a)
    assert np.abs(out - F.gelu(torch.tensor(a)).numpy()).max() > 1e-5   # not the exact form


def test_layer_norm_with_gpt2s_epsilon_and_bias():
    check_op([(5, 8), (8,), (8,)], lambda a, w, b: F.layer_norm(a, (8,), w, b, 1e-3),
             lambda t, a, w, b: L.layer_norm(t, a, w, b, 1e-3, "ln"), scale=0.05)


def test_a_gpt2_on_the_tape_equals_hugging_faces_float64_loss(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = hf_gpt2(tmp_path / "hf", layer_norm_epsilon=1e-4)
    handle = api.load_checkpoint(tmp_path / "hf")
    assert handle.model.config.norm_eps == 1e-4
    text = "It is a truth universally"
    program = build_tape(handle.model, handle.tokenizer, text)
    assert any(n.kind == "op" and n.module.op == "GELU(tanh)" for n in program.nodes)
    stepper = Stepper(program)
    stepper.run_to_end()
    ids = torch.tensor([handle.tokenizer.encode(text)])
    with torch.no_grad():   # transformers' own loss casts the logits to float32; its float64 logits are taken
        logits = hf.double()(ids).logits[0]
        hf_loss = F.cross_entropy(logits[:-1], ids[0, 1:]).item()
    assert isinstance(hf, transformers.GPT2LMHeadModel)
    assert abs(stepper.loss - hf_loss) < 1e-10
    figures = check_against_torch(program)
    assert figures["max_abs_value_diff"] < 1e-9 and figures["max_abs_param_grad_diff"] < 1e-9
    ops = [n.id for n in program.nodes if n.kind == "op"]
    assert max(fd_check_node(program.tape, i) for i in ops[::7]) < 1e-5
