"""How fast the autodiff tape is: recording a 2-layer, 64-wide transformer on 32 tokens plus its full backward
(goal: well under 300 ms), and one Stepper step (goal: far under a 16 ms frame), with a 64-step LSTM for
comparison. Prints figures; run with `.venv/bin/python bench/tape_speed.py`.

The tape's matrices are tiny (32×64), so OpenBLAS's worker threads cost more than they save and make the timings
jumpy on a shared 2-core machine; the script pins one BLAS thread (override with OPENBLAS_NUM_THREADS)."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # must precede the numpy import

import statistics  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.autodiff.bridge import build_tape  # noqa: E402
from engine.autodiff.stepper import Stepper  # noqa: E402
from engine.models.rnn import RNNConfig, RNNLM  # noqa: E402
from engine.models.transformer import GPT, GPTConfig  # noqa: E402
from engine.tokenizers.char import CharTokenizer  # noqa: E402


def record_and_backward(model, tok, text):
    program = build_tape(model, tok, text)
    program.tape.backward(program.loss)
    return program


def bench(name, model, tok, text, repeats=20):
    record_and_backward(model, tok, text)   # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        program = record_and_backward(model, tok, text)
        times.append(time.perf_counter() - start)
    stepper = Stepper(program)
    step_times = []
    while stepper.position < stepper.n_steps:
        start = time.perf_counter()
        stepper.step()
        step_times.append(time.perf_counter() - start)
    back_times = []
    while stepper.can_step_back:
        start = time.perf_counter()
        stepper.step_back()
        back_times.append(time.perf_counter() - start)
    ms = 1000.0
    print(f"{name}: {len(program.nodes)} nodes, {stepper.n_steps} steps")
    print(f"  record + full backward: median {statistics.median(times) * ms:.1f} ms, "
          f"min {min(times) * ms:.1f} ms over {repeats} runs")
    print(f"  one step: median {statistics.median(step_times) * ms:.3f} ms, "
          f"mean {statistics.mean(step_times) * ms:.3f} ms, max {max(step_times) * ms:.3f} ms; "
          f"step back: mean {statistics.mean(back_times) * ms:.3f} ms, max {max(back_times) * ms:.3f} ms")


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tok = CharTokenizer.train(string.ascii_letters + string.digits + " .,;:!?'-\n")   # 73 tokens
    text = "To be, or not to be: that is the q"   # 33 tokens -> 32 inputs
    gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=64))
    bench("GPT 2 layers, n_embd 64, 4 heads, RoPE, 32 tokens", gpt, tok, text)
    lstm = RNNLM(RNNConfig(vocab_size=tok.vocab_size, cell="lstm", n_layer=1, n_embd=64, n_hidden=64))
    bench("LSTM 1 layer, 64 wide, 64 tokens", lstm, tok, (text * 2)[:65], repeats=5)
    big = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384))
    bench("GPT 6 layers, n_embd 384, 6 heads, 256 tokens (GPTConfig defaults)", big, tok, (text * 8)[:257], repeats=3)


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()   # --help, and no stray arguments
    main()
