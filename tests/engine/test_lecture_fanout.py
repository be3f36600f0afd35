"""The lecture example with one value read by two modules: gradients equal torch.autograd's, and z's gradient is
complete only after both of its consumers have added into it (Version B)."""
import numpy as np
import torch

from engine.autodiff import lecture
from engine.autodiff.lecture import lecture_fanout_example
from engine.autodiff.stepper import Stepper


def test_fanout_gradients_equal_autograd_and_accumulate():
    program = lecture_fanout_example()
    stepper = Stepper(program)
    stepper.run_to_end()
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in (("alpha", lecture.ALPHA), ("gamma", lecture.GAMMA), ("beta", lecture.BETA))}
    z = torch.sigmoid(t["alpha"] @ torch.tensor(lecture.X, dtype=torch.float64))
    u = z + t["gamma"] @ z
    loss = -torch.log_softmax(t["beta"] @ u, dim=0)[lecture.Y]
    loss.backward()
    assert np.isclose(stepper.loss, float(loss.detach()))
    for name, node_id in program.params.items():
        np.testing.assert_allclose(program.nodes[node_id].grad, t[name].grad.numpy(), atol=1e-12)

    stepper.reset()
    stepper.run_forward()
    z_id = next(n.id for n in program.nodes if n.label == "Sigmoid")
    consumers = program.tape.consumers()[z_id]
    assert len(consumers) == 2
    received = []
    while stepper.can_step_backward:
        info = stepper.step_backward()
        if z_id in info.grads:
            received.append(info.node_id)
            assert stepper.grad_complete(z_id) == (len(received) == 2)
    assert sorted(received) == sorted(consumers)
