"""`main.py tape`: put a checkpoint's model on the tape for a text, run it forward and backward through the
stepper, and say how closely it agrees with torch.autograd (and, with `check`, with finite differences)."""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from engine.autodiff.bridge import build_tape
from engine.autodiff.check import fd_check_node
from engine.autodiff.stepper import Stepper


def tape_report(ckpt_dir: str, text: str, check: bool = False, **sources) -> dict:
    """sources: load_checkpoint's tokenizer_file / meta_file, for a model trained elsewhere."""
    from engine.api import load_checkpoint   # the facade imports most of the engine; only the CLI needs it here

    handle = load_checkpoint(ckpt_dir, **sources)
    return model_tape_report(handle.model, handle.tokenizer, text, check)


def model_tape_report(model, tokenizer, text: str, check: bool = False, fd_nodes: int = 32, seed: int = 0) -> dict:
    """Figures comparing the tape with the torch model itself (a float64 copy, so `model` is left as it was).
    With `check`, up to `fd_nodes` op nodes picked at random also get a finite-difference check."""
    start = time.perf_counter()
    program = build_tape(model, tokenizer, text)
    stepper = Stepper(program)
    stepper.run_to_end()
    tape_s = time.perf_counter() - start

    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    idx = torch.tensor([tokenizer.encode(text)])
    _, loss = model64(idx[:, :-1], idx[:, 1:])
    loss.backward()
    weights = dict(model64.named_parameters())
    grad_diff = max(float(np.abs(program.nodes[i].grad - weights[name].grad.numpy()).max())
                    for name, i in program.params.items())

    ops = [n.id for n in program.nodes if n.kind == "op"]
    report = {"family": model.family, "tokens": len(program.tokens), "nodes": len(program.nodes),
              "op_nodes": len(ops), "params": len(program.params),
              "param_values": int(sum(program.nodes[i].value.size for i in program.params.values())),
              "loss": stepper.loss, "loss_torch": float(loss.detach()),
              "max_abs_grad_diff_vs_torch": grad_diff, "tape_seconds": tape_s, "max_fd_rel_err": None}
    if check:
        rng = np.random.default_rng(seed)
        picked = sorted(rng.choice(ops, size=min(fd_nodes, len(ops)), replace=False).tolist())
        errors = [fd_check_node(program.tape, i, seed=seed) for i in picked]
        report.update(max_fd_rel_err=max(errors), fd_nodes_checked=len(picked))
    return report
