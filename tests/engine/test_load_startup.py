"""Loading a checkpoint builds its model without random initialisation (engine/train_state.py SkipInit): the
weights are the saved ones, tied weights stay tied, other threads still initialise their models, and loading does
not pull torch._dynamo into a CLI sample's start-up."""
import subprocess
import sys
import threading
from pathlib import Path

import torch

from engine import api
from engine.checkpoint import save_checkpoint
from engine.models import build_model
from engine.train import TrainConfig
from engine.train_state import SkipInit, load_model_from_checkpoint, model_tensors

ROOT = Path(__file__).resolve().parents[2]
CHARS = "\n abcdefgh"
CFG = dict(vocab_size=len(CHARS), block_size=16, n_layer=2, n_head=2, n_embd=16, pos="rope", tie_weights=True)


def _save(tmp_path, family="transformer", cfg=CFG):
    torch.manual_seed(0)
    model = build_model(family, cfg).eval()
    meta = {"family": family, "model": model.config.to_dict(), "train": TrainConfig().to_dict(), "step": 3,
            "tokens": 0, "tokenizer": {"kind": "char", "chars": CHARS}}
    return model, save_checkpoint(tmp_path / family, meta, {"model": model_tensors(model)})


def test_loaded_model_is_the_saved_one(tmp_path):
    for family, cfg in (("transformer", CFG), ("lstm", dict(vocab_size=len(CHARS), n_layer=1, n_embd=8,
                                                            n_hidden=16))):
        model, path = _save(tmp_path, family, cfg)
        loaded, _ = load_model_from_checkpoint(path)
        want, got = model.state_dict(), loaded.state_dict()
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
        x = torch.tensor([[1, 2, 3, 4]])
        assert torch.equal(model(x)[0], loaded(x)[0])
    transformer, _ = load_model_from_checkpoint(tmp_path / "transformer")
    assert transformer.lm_head.weight is transformer.wte.weight    # tying survives the skipped init


def test_skip_init_is_this_threads_only():
    seen = []
    ready, done = threading.Event(), threading.Event()

    def other():
        ready.wait()
        torch.manual_seed(0)
        seen.append(build_model("transformer", CFG).wte.weight.detach().clone())
        done.set()
    t = threading.Thread(target=other)
    t.start()
    with SkipInit():
        ready.set()
        done.wait(30)
    t.join()
    torch.manual_seed(0)
    assert torch.equal(seen[0], build_model("transformer", CFG).wte.weight.detach())


def test_loading_keeps_dynamo_out_of_start_up(tmp_path):
    _, path = _save(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from engine import api; api.load_checkpoint(sys.argv[2]); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert api.load_checkpoint(path).model.training is False
