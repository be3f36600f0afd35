"""LM Playground next to nanoGPT on the same machine, in the same invocation: whole processes, run alternately
(A B A B ...), medians of each and the ratio pair by pair.

    .venv/bin/python bench/vs_nanogpt.py                 # every job, 2 pairs (about 15 minutes on 2 cores)
    .venv/bin/python bench/vs_nanogpt.py --quick         # 200 steps, 300 tokens: checks that everything runs
    .venv/bin/python bench/vs_nanogpt.py --pairs 3 --jobs train,sample

Jobs:
  train    nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, context 64, batch 12, its README's command) against
           `main.py train --preset nanogpt-cpu` (the same recipe), and `--preset fast-cpu-char` (the project's best
           CPU recipe) in the same rotation. nanoGPT's final ckpt.pt is scored on the whole validation split the
           way the project scores its own runs (non-overlapping 64-token windows, every token after the first
           predicted once), so the val figures compare.
  sample   2000 tokens (temperature 0.8, top-k 200, nanoGPT's sample.py defaults) from each one's 0.80M model of
           the first pair: nanoGPT's `sample.py` against `main.py sample`, whole processes.
  decode   the nanogpt-char shape (6 layers, 6 heads, 384 wide, context 256, vocab 65, random weights): tokens/s
           of the generation loop itself, after start-up (imports and model building excluded), nanoGPT's
           `model.generate` against `engine.decode.generate`, each with the threads its own command would use;
           250 tokens (inside the window) and 500 (sample.py's default, past it).
Past the window every token re-runs the whole window in both programs (exact logits allow nothing else); after
those jobs the bench prints the fastest a torch program could go there on this machine: the fewest FLOPs such a
re-run takes, at the best rate torch's matmul reaches here at the model's widest shape (plus, for the whole-process
sample job, our own start-up).

nanoGPT (`../shared/anchors/nanoGPT`, unmodified) is copied to a temporary folder and its data prepared there with
its own prepare.py; the copies of prepare.py and sample.py get their unused `requests` / `tiktoken` imports
replaced (the char dataset needs neither). When the anchor folder is missing the bench says so and exits 0.
The machine may be shared: every ratio is from runs taken back to back, never from figures of another run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT.parent / "shared" / "anchors" / "nanoGPT"
CORPUS = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"
PY = sys.executable

# Scores a nanoGPT ckpt.pt on the whole validation split with the project's rule (engine/train.py evaluate):
# non-overlapping windows of the training context, the last one shorter, summed cross-entropy / predicted tokens.
SCORE_NANOGPT = r"""
import json, sys, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from model import GPT, GPTConfig
ckpt = torch.load(sys.argv[2], map_location="cpu", weights_only=False)
model = GPT(GPTConfig(**ckpt["model_args"]))
model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
model.eval()
data = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.uint16).astype(np.int64))
T = int(sys.argv[4])
n = data.numel() - 1
w = n // T
spans = [(i * T, (i + 1) * T) for i in range(w)] + ([(w * T, n)] if n > w * T else [])
nats = 0.0
with torch.no_grad():
    for a in range(0, len(spans), 64):
        group = spans[a:a + 64]
        for length in sorted({e - s for s, e in group}):
            rows = [s for s, e in group if e - s == length]
            x = torch.stack([data[s:s + length] for s in rows])
            y = torch.stack([data[s + 1:s + length + 1] for s in rows])
            # nanoGPT's forward with targets returns logits for every position
            logits, _ = model(x, y)
            nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
print(json.dumps({"val_loss": nats / n, "iter_num": int(ckpt["iter_num"]), "windows": len(spans)}))
"""

# The models' shapes, for the bounds the sample and decode jobs print: nanoGPT's CPU recipe (= the nanogpt-cpu
# preset, checked in job_sample) and nanogpt-char (checked against the two scripts below at import).
SAMPLE_SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64}
DECODE_SHAPE = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}
PROMPT = "ROMEO:"

# The nanogpt-char shape, random weights, through nanoGPT's own generate (what its sample.py calls).
DECODE_NANOGPT = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from model import GPT, GPTConfig
n_tokens = int(sys.argv[2])
torch.manual_seed(0)
model = GPT(GPTConfig(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384, dropout=0.0, bias=False))
model.eval()
x = torch.tensor([[20, 27, 25, 17, 27, 10]], dtype=torch.long)   # 6 prompt tokens
with torch.no_grad():
    model.generate(x, 4, temperature=0.8, top_k=200)      # warm-up
    t0 = time.perf_counter()
    model.generate(x, n_tokens, temperature=0.8, top_k=200)
    dt = time.perf_counter() - t0
print(json.dumps({"tokens": n_tokens, "seconds": dt, "threads": torch.get_num_threads()}))
"""

# The same shape through the engine's decoder, with the threads the project's CLI and window choose.
DECODE_OURS = r"""
import json, string, sys, time
sys.path.insert(0, sys.argv[1])
from engine.decode import DecodeConfig, generate
from engine.threads import inference_threads
import torch
from engine.models import build_model
from engine.models.linear import uses_onednn_rows
from engine.tokenizers.char import CharTokenizer
n_tokens = int(sys.argv[2])
torch.manual_seed(0)
model = build_model("transformer", dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384,
                                        dropout=0.0, bias=False, pos="learned")).eval()
tok = CharTokenizer("\n " + string.ascii_letters + "!$&',-.3:;?")
threads = inference_threads(model) or torch.get_num_threads()
torch.set_num_threads(threads)
for _ in generate(model, tok, "ROMEO:", DecodeConfig(temperature=0.8, top_k=200, max_new_tokens=4, seed=0)):
    pass
t0 = time.perf_counter()
n = sum(not ev.done for ev in generate(model, tok, "ROMEO:", DecodeConfig(temperature=0.8, top_k=200,
                                                                         max_new_tokens=n_tokens, seed=0)))
dt = time.perf_counter() - t0
print(json.dumps({"tokens": n, "seconds": dt, "threads": threads, "onednn_steps": uses_onednn_rows(model)}))
"""


# This machine's best matmul rate at a model's widest shape (context rows, d -> 4d), float32 and bf16, on the
# best thread count. No implementation's whole-window re-run can go faster than its FLOPs at this rate: the bound
# that the sample and decode jobs print next to their goals.
GEMM_RATE = r"""
import json, os, sys, time, torch
T, d = int(sys.argv[1]), int(sys.argv[2])
out = {}
for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    a, b = torch.randn(T, d, dtype=dt), torch.randn(d, 4 * d, dtype=dt)
    out[name] = 0.0
    for _ in range(5):   # the best of 5 rounds on each thread count: a ceiling, not a typical figure
        for threads in range(1, (os.cpu_count() or 1) + 1):
            torch.set_num_threads(threads)
            for _ in range(10):
                a @ b
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 0.2:
                a @ b
                n += 1
            out[name] = max(out[name], 2 * T * d * 4 * d * n / (time.perf_counter() - t0))
print(json.dumps(out))
"""


def rerun_flops(n_layer: int, d: int, T: int) -> float:
    """The fewest FLOPs a re-run of a GPT (n_layer blocks, width d) over a T-token window can take to give the last
    position's logits: every block but the last at every position (2 per weight per position for its 12·d²
    weights; causal attention's scores and weighted sum, 2·T·d per position on average), the last block's key
    and value projections at every position (4·d²) and the rest of it for the last position alone (20·d² +
    4·T·d). The per-position counts are the forward third of the PaLM paper's 6N + 12·L·d·T (appendix B), with
    attention's term halved for the causal mask; n_kv_head = n_head (GQA would make the key and value
    projections smaller); the lm_head's 2·d·V is left out. So it is a lower bound."""
    return (n_layer - 1) * T * (24 * d * d + 2 * T * d) + T * 4 * d * d + 20 * d * d + 4 * T * d


def rerun_bound(n_layer: int, d: int, T: int) -> tuple[float, dict[str, float]]:
    """(FLOPs of one whole-window re-run, {"fp32": best matmul FLOP/s, "bf16": ...})."""
    _, rates = run([PY, "-c", GEMM_RATE, str(T), str(d)], ROOT, "matmul rate", True)
    return rerun_flops(n_layer, d, T), rates


assert all(f"{k}={v}" in DECODE_NANOGPT and f"{k}={v}" in DECODE_OURS for k, v in DECODE_SHAPE.items())

NANOGPT_ENV: dict[str, str] = {}   # --nanogpt-threads sets OMP_NUM_THREADS here for nanoGPT's processes only


def run(cmd: list[str], cwd: Path, label: str, capture_json: bool = False, timeout: float = 1800) -> tuple[float, dict]:
    """Run one whole process; (wall seconds, its last JSON line on stdout or {})."""
    env = {**os.environ, **NANOGPT_ENV} if Path(cwd).name == "nanoGPT" else None
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{label} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = {}
    if capture_json:
        for line in reversed(p.stdout.strip().splitlines()):
            if line.startswith("{"):
                out = json.loads(line)
                break
    return dt, out


def prepare_anchor(tmp: Path) -> Path:
    """Copy nanoGPT, neutralise the two imports the char dataset never uses, prepare the data with its own script."""
    ng = tmp / "nanoGPT"
    shutil.copytree(ANCHOR, ng)
    for name, imp in (("data/shakespeare_char/prepare.py", "import requests"), ("sample.py", "import tiktoken")):
        f = ng / name
        src = f.read_text()
        assert imp + "\n" in src, f"{name} no longer has {imp!r}"
        f.write_text(src.replace(imp + "\n", f"{imp.split()[1]} = None  # patched by bench/vs_nanogpt.py\n", 1))
    data = ng / "data" / "shakespeare_char"
    shutil.copy(CORPUS, data / "input.txt")
    subprocess.run([PY, "prepare.py"], cwd=data, check=True, capture_output=True)
    return ng


def nanogpt_train_cmd(steps: int, out_dir: Path) -> list[str]:
    """The anchors README's command for nanoGPT's CPU recipe."""
    return [PY, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
            "--log_interval=100", "--batch_size=12", *(f"--{k}={v}" for k, v in SAMPLE_SHAPE.items()),
            f"--max_iters={steps}", f"--lr_decay_iters={steps}", "--dropout=0.0", f"--out_dir={out_dir}",
            f"--eval_interval={min(250, steps)}"]


def ours_train_cmd(preset: str, steps: int | None, out_dir: Path) -> list[str]:
    cmd = [PY, "main.py", "train", "--corpus", str(CORPUS), "--model", "transformer", "--preset", preset,
           "--device", "cpu", "--out", str(out_dir), "--quiet"]
    return cmd + (["--max-steps", str(steps)] if steps else [])


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def job_train(ng: Path, tmp: Path, args) -> tuple[Path, Path]:
    steps = args.steps
    fast_steps = None if not args.quick else max(1, steps // 2)
    print(f"\n== train: nanoGPT CPU recipe, {steps} steps, whole processes; pairs run nanoGPT, nanogpt-cpu, "
          f"fast-cpu-char in turn ==")
    rows = []
    for i in range(args.pairs):
        ng_out, ours_out, fast_out = tmp / f"ng-out-{i}", tmp / f"ours-{i}", tmp / f"fast-{i}"
        t_ng, _ = run(nanogpt_train_cmd(steps, ng_out), ng, "nanoGPT train.py")
        _, score = run([PY, "-c", SCORE_NANOGPT, str(ng), str(ng_out / "ckpt.pt"),
                        str(ng / "data" / "shakespeare_char" / "val.bin"), "64"], ng, "scoring nanoGPT", True)
        t_ours, res = run(ours_train_cmd("nanogpt-cpu", steps, ours_out), ROOT, "main.py train nanogpt-cpu", True)
        t_fast, fres = run(ours_train_cmd("fast-cpu-char", fast_steps, fast_out), ROOT, "main.py train fast", True)
        rows.append((t_ng, score, t_ours, res, t_fast, fres))
        print(f"pair {i + 1}: nanoGPT {t_ng:6.1f} s (val {score['val_loss']:.4f}, its ckpt of step "
              f"{score['iter_num']})  |  nanogpt-cpu {t_ours:6.1f} s (val {res['val_loss']:.4f}) ratio "
              f"{t_ours / t_ng:.2f}  |  fast-cpu-char {t_fast:6.1f} s (val {fres['val_loss']:.4f}, "
              f"{fres['step']} steps) ratio {t_fast / t_ng:.2f}", flush=True)
    print(f"precision: nanoGPT float32 (its train.py on a CPU); nanogpt-cpu {rows[0][3].get('precision', '?')}, "
          f"fast-cpu-char {rows[0][5].get('precision', '?')} (engine/train.py's auto)")
    t_ng = med([r[0] for r in rows])
    print(f"median: nanoGPT {t_ng:.1f} s, whole-split val {med([r[1]['val_loss'] for r in rows]):.4f}")
    print(f"median: nanogpt-cpu {med([r[2] for r in rows]):.1f} s, whole-split val "
          f"{med([r[3]['val_loss'] for r in rows]):.4f}; ratio pair by pair "
          f"{', '.join(f'{r[2] / r[0]:.2f}' for r in rows)} (goal <= 0.90)")
    print(f"median: fast-cpu-char {med([r[4] for r in rows]):.1f} s, whole-split val "
          f"{med([r[5]['val_loss'] for r in rows]):.4f}; ratio pair by pair "
          f"{', '.join(f'{r[4] / r[0]:.2f}' for r in rows)} (goal <= 0.60 with val <= 1.90)")
    return tmp / "ng-out-0", tmp / "ours-0"


def job_sample(ng: Path, ng_out: Path, ours_ckpt: Path, args) -> None:
    n = args.sample_tokens
    print(f"\n== sample: {n} tokens from the 0.80M models above (temperature 0.8, top-k 200), whole processes ==")
    ng_cmd = [PY, "sample.py", f"--out_dir={ng_out}", "--device=cpu", "--compile=False", "--num_samples=1",
              f"--max_new_tokens={n}", f"--start={PROMPT}"]
    def ours(tokens: int) -> list[str]:
        return [PY, "main.py", "sample", "--checkpoint", str(ours_ckpt), "--prompt", PROMPT, "--max-new-tokens",
                str(tokens), "--temperature", "0.8", "--top-k", "200", "--seed", "1337"]
    ours_cmd = ours(n)
    rows = []
    for i in range(args.pairs):
        a, _ = run(ng_cmd, ng, "nanoGPT sample.py")
        b, _ = run(ours_cmd, ROOT, "main.py sample")
        rows.append((a, b))
        print(f"pair {i + 1}: nanoGPT sample.py {a:5.2f} s  |  main.py sample {b:5.2f} s  ratio {b / a:.2f}",
              flush=True)
    print(f"median: nanoGPT {med([r[0] for r in rows]):.2f} s, main.py sample {med([r[1] for r in rows]):.2f} s; "
          f"ratio pair by pair {', '.join(f'{b / a:.2f}' for a, b in rows)} (goal <= 0.50)")
    preset = json.loads((ROOT / "resources" / "presets" / "nanogpt-cpu.json").read_text())["model"]
    assert all(preset[k] == v for k, v in SAMPLE_SHAPE.items()), "nanogpt-cpu no longer has nanoGPT's CPU shape"
    start = min(run(ours(1), ROOT, "main.py sample, 1 token")[0] for _ in range(2))
    L, d, T = SAMPLE_SHAPE["n_layer"], SAMPLE_SHAPE["n_embd"], SAMPLE_SHAPE["block_size"]
    flops, rates = rerun_bound(L, d, T)
    reruns = past_window(n, len(PROMPT), T)
    floors = {k: start + reruns * flops / r for k, r in rates.items()}
    ng_s = med([r[0] for r in rows])
    print(f"bound on this machine: main.py sample of 1 token takes {start:.2f} s (imports, checkpoint; the faster "
          f"of 2 runs); each of the {reruns} tokens past the {T}-token window re-runs the window, at least "
          f"{flops / 1e6:.0f} MFLOP, at best {rates['fp32'] / 1e9:.0f} GFLOP/s in float32 (what decoding uses), "
          f"{rates['bf16'] / 1e9:.0f} in bf16 (torch's matmul at {T}x{d}->{4 * d}, best thread count): at least "
          f"{floors['fp32']:.2f} s ({floors['bf16']:.2f} in bf16), a ratio of at least {floors['fp32'] / ng_s:.2f} "
          f"({floors['bf16'] / ng_s:.2f} in bf16) for exact sliding-window logits with our start-up, every matmul "
          f"at that rate and nothing else taking any time")


def past_window(n: int, prompt_tokens: int, T: int) -> int:
    """How many of n generated tokens come from a context longer than the T-token window (each of them a
    whole-window re-run): token i is drawn from prompt_tokens - 1 + i tokens."""
    return max(0, n + prompt_tokens - 1 - T)


def job_decode(ng: Path, args) -> None:
    """Two lengths: inside the window (prompt + tokens <= 256: a KV cache applies) and nanoGPT sample.py's default
    500 (past 256 both re-run the whole window for every token: exact sliding-window logits cannot reuse keys
    whose positions all moved)."""
    for n in args.decode_tokens:
        where = "inside the 256-token window" if n + 6 <= 256 else "past the 256-token window"
        print(f"\n== decode: nanogpt-char shape (10.7M, context 256), {n} tokens after a 6-token prompt ({where}), "
              f"tokens/s after start-up ==")
        rows = []
        for i in range(args.pairs):
            _, a = run([PY, "-c", DECODE_NANOGPT, str(ng), str(n)], ng, "nanoGPT generate", True)
            _, b = run([PY, "-c", DECODE_OURS, str(ROOT), str(n)], ROOT, "engine generate", True)
            ra, rb = a["tokens"] / a["seconds"], b["tokens"] / b["seconds"]
            rows.append((ra, rb))
            steps = "cached steps on oneDNN with the idle cores" if b.get("onednn_steps") else "cached steps on it"
            ours = f"{b['threads']} thread(s), {steps}" + ("" if n + 6 <= 256 else ", idle cores for re-runs")
            print(f"pair {i + 1}: nanoGPT {ra:7.1f} tok/s ({a['threads']} threads)  |  LM Playground {rb:7.1f} "
                  f"tok/s ({ours})  speed-up {rb / ra:.1f}x", flush=True)
        print(f"median: nanoGPT {med([r[0] for r in rows]):.1f} tok/s, LM Playground {med([r[1] for r in rows]):.1f} "
              f"tok/s; speed-up pair by pair {', '.join(f'{b / a:.1f}x' for a, b in rows)} (goal >= 5x)")
        L, d, T = DECODE_SHAPE["n_layer"], DECODE_SHAPE["n_embd"], DECODE_SHAPE["block_size"]
        past = past_window(n, 6, T)
        if past:
            flops, rates = rerun_bound(L, d, T)
            best = {k: n / (past * flops / r) for k, r in rates.items()}
            ng_rate = med([r[0] for r in rows])
            print(f"bound on this machine: each of the {past} tokens past the window re-runs it, at least "
                  f"{flops / 1e9:.2f} GFLOP, at best {rates['fp32'] / 1e9:.0f} GFLOP/s in float32 (what decoding "
                  f"uses), {rates['bf16'] / 1e9:.0f} in bf16 (torch's matmul at {T}x{d}->{4 * d}, best thread "
                  f"count): even with the {n - past} tokens before free, at most {best['fp32']:.0f} tok/s "
                  f"({best['fp32'] / ng_rate:.1f}x nanoGPT's median), {best['bf16']:.0f} in bf16 "
                  f"({best['bf16'] / ng_rate:.1f}x), for exact sliding-window logits")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=2, help="alternating pairs per job (at least 2 for a median)")
    ap.add_argument("--jobs", default="train,sample,decode", help="comma-separated: train, sample, decode")
    ap.add_argument("--steps", type=int, default=2000, help="training steps of the nanoGPT recipe")
    ap.add_argument("--sample-tokens", type=int, default=2000)
    ap.add_argument("--decode-tokens", default="250,500",
                    help="comma-separated lengths for the decode job (500 is nanoGPT sample.py's default)")
    ap.add_argument("--quick", action="store_true", help="200 steps, 300 sample and 100 decode tokens")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--nanogpt-threads", type=int, default=0,
                    help="OMP_NUM_THREADS for nanoGPT's processes (default: unset, torch's own choice, as its "
                    "README runs it); 1 shows how much of a gap is only the thread count")
    args = ap.parse_args(argv)
    if args.nanogpt_threads:
        NANOGPT_ENV["OMP_NUM_THREADS"] = str(args.nanogpt_threads)
    if args.quick:
        args.steps, args.sample_tokens, args.decode_tokens = 200, 300, "100,280"
    if not ANCHOR.is_dir():
        print(f"nanoGPT anchor not found at {ANCHOR}: nothing to compare with, skipping")
        return 0
    if not CORPUS.is_file():
        print(f"corpus not found at {CORPUS}: skipping")
        return 0
    jobs = {j.strip() for j in args.jobs.split(",") if j.strip()}
    args.decode_tokens = [int(n) for n in str(args.decode_tokens).split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="vs-nanogpt-"))
    import platform
    import torch
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores ({_cpu_name()}), load average "
          f"{os.getloadavg()[0]:.2f} at start (shared: other work may run meanwhile); torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; {args.pairs} alternating pairs per job; nanoGPT threads: "
          f"{args.nanogpt_threads or 'torch default'}; temp {tmp}")
    try:
        ng = prepare_anchor(tmp)
        ng_out, ours_ckpt = None, None
        if "train" in jobs or "sample" in jobs:
            ng_out, ours_ckpt = job_train(ng, tmp, args) if "train" in jobs else _one_pair(ng, tmp, args)
        if "sample" in jobs:
            job_sample(ng, ng_out, ours_ckpt, args)
        if "decode" in jobs:
            job_decode(ng, args)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _one_pair(ng: Path, tmp: Path, args) -> tuple[Path, Path]:
    """The models the sample job needs when the train job is not run (not timed)."""
    run(nanogpt_train_cmd(args.steps, tmp / "ng-out-0"), ng, "nanoGPT train.py")
    run(ours_train_cmd("nanogpt-cpu", args.steps, tmp / "ours-0"), ROOT, "main.py train")
    return tmp / "ng-out-0", tmp / "ours-0"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
