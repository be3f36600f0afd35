"""A generator of hostile checkpoints, built on the fly from one good checkpoint (nothing hostile is committed),
and the loaders a user can point at them: `sample`, `tape`, `train --resume` (the CLI, in-process) and the
api-level load the window's Load uses. Used by tests/engine/test_hostile_checkpoints.py, tests/app (the window's
Load) and tools/hostile_checkpoints.py (which prints the counts).

Each case is (name, mutate(folder), expect) where expect says what a correct loader does:
  "error"       every loader refuses it with one clear error
  "resume"      loading for sampling is fine, a resume is refused with one clear error
  "warn"        loading is fine, a resume runs with fresh optimizer/RNG state and says so
  "ok"          odd but harmless: every loader works (the window must show it without a crash)
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import threading
import traceback
from pathlib import Path

from safetensors.torch import load as st_load, save as st_save
import torch

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def build_good(base: Path) -> Path:
    """A tiny char transformer trained for 2 steps on a corpus in `base`, saved to base/good (with spec, history,
    optimizer and RNG: everything a resume needs)."""
    from engine import api
    (base / "corpus.txt").write_text(TEXT, encoding="utf-8")
    run = api.start_run(api.RunSpec(corpus=str(base / "corpus.txt"), preset="tiny-cpu-transformer", device="cpu",
                                    overrides={"n_layer": "1", "n_embd": "16", "eval_interval": "2",
                                               "batch_size": "2", "block_size": "8"}, max_steps=2))
    list(run.reports())
    return run.save(base / "good")


# -- mutation helpers --------------------------------------------------------------------------------------------
def _meta(d: Path) -> dict:
    return json.loads((d / "meta.json").read_text())


def _write_meta(d: Path, meta) -> None:
    (d / "meta.json").unlink()
    (d / "meta.json").write_text(json.dumps(meta))


def _edit(fn):
    """A mutation that edits meta.json as a dict."""
    def mutate(d: Path) -> None:
        m = _meta(d)
        out = fn(m)
        _write_meta(d, m if out is None else out)
    return mutate


def _set_file(d: Path, name: str, data: bytes, manifest: bool = True) -> None:
    """Replace a tensor file's bytes; with manifest=True meta.json's size and hash follow, so the check under
    test is the one after the manifest."""
    (d / name).unlink()
    (d / name).write_bytes(data)
    if manifest:
        m = _meta(d)
        m["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _write_meta(d, m)


def _tensors(fn, group: str = "model"):
    """A mutation of a group's tensors (dict -> dict), written back with a matching manifest."""
    def mutate(d: Path) -> None:
        name = f"{group}.safetensors"
        tensors = st_load((d / name).read_bytes())
        _set_file(d, name, st_save(fn(tensors)))
    return mutate


def _replace(name: str, kind: str):
    def mutate(d: Path) -> None:
        p = d / name
        p.unlink()
        if kind == "folder":
            p.mkdir()
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "zero":
            p.symlink_to("/dev/zero")
        elif kind == "missing":
            pass
        elif kind == "huge":   # sparse: costs no disk
            with open(p, "wb") as f:
                f.truncate(200 * 1024 * 1024)
        elif kind == "empty":
            p.write_bytes(b"")
    return mutate


def _raw_meta(text: str | bytes):
    def mutate(d: Path) -> None:
        (d / "meta.json").unlink()
        (d / "meta.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return mutate


def _first_tensor(fn):
    def edit(t: dict) -> dict:
        k = sorted(t)[0]
        t[k] = fn(t[k])
        return t
    return edit


def _header(raw_header: bytes, n: int | None = None):
    """model.safetensors with the given header bytes (and the real data after it), manifest updated."""
    def mutate(d: Path) -> None:
        data = (d / "model.safetensors").read_bytes()
        old_n = int.from_bytes(data[:8], "little")
        body = data[8 + old_n:]
        length = len(raw_header) if n is None else n
        _set_file(d, "model.safetensors", length.to_bytes(8, "little") + raw_header + body)
    return mutate


def _set(path: str, value):
    """meta[a][b]... = value (path 'a.b'); a value of _DELETE removes the key."""
    keys = path.split(".")

    def fn(m):
        target = m
        for k in keys[:-1]:
            target = target[k]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return _edit(fn)


_DELETE = object()


def _history_rows(rows):
    return _set("history", {"columns": ["step", "tokens", "elapsed_s", "train_loss", "lr", "grad_norm",
                                        "val_loss", "val_bpc"], "rows": rows})


def _deep_json(depth: int):
    return _raw_meta("[" * depth + "]" * depth)


def _bpe(json_text):
    return _edit(lambda m: m.update(tokenizer={"kind": "bpe", "tokenizer_json": json_text}))


def _opt_state(fn):
    def edit(m):
        fn(m["optimizer"])
    return _edit(edit)


CASES = [
    # meta.json as a file
    ("meta: missing", _replace("meta.json", "missing"), "error"),
    ("meta: a folder", _replace("meta.json", "folder"), "error"),
    ("meta: a FIFO", _replace("meta.json", "fifo"), "error"),
    ("meta: symlink to /dev/zero", _replace("meta.json", "zero"), "error"),
    ("meta: 200 MB (sparse)", _replace("meta.json", "huge"), "error"),
    ("meta: empty", _replace("meta.json", "empty"), "error"),
    ("meta: not UTF-8", _raw_meta(b'{"family": "\xff\xfe"}'), "error"),
    ("meta: truncated JSON", _raw_meta('{"family": "transformer", "model": {'), "error"),
    ("meta: nested 200,000 deep", _deep_json(200_000), "error"),
    ("meta: nested 500 deep inside a field", lambda d: _raw_meta(json.dumps(dict(_meta(d), summary="@")).replace(
        '"@"', "[" * 500 + "]" * 500))(d), "error"),
    # meta.json's structure
    ("meta: a list", _raw_meta("[1, 2, 3]"), "error"),
    ("meta: a string", _raw_meta('"checkpoint"'), "error"),
    ("meta: null", _raw_meta("null"), "error"),
    ("format_version missing", _set("format_version", _DELETE), "error"),
    ("format_version 99", _set("format_version", 99), "error"),
    ("format_version '2'", _set("format_version", "2"), "error"),
    ("family missing", _set("family", _DELETE), "error"),
    ("family unknown", _set("family", "mamba"), "error"),
    ("family a list", _set("family", ["transformer"]), "error"),
    ("model null", _set("model", None), "error"),
    ("model a list", _set("model", [1, 2]), "error"),
    ("model unknown key", _set("model.flux_capacitor", 1), "error"),
    ("model n_layer 1,000,000", _set("model.n_layer", 1_000_000), "error"),
    ("model n_layer 1e30", _set("model.n_layer", 1e30), "error"),
    ("model n_layer '6'", _set("model.n_layer", "6"), "error"),
    ("model n_layer 0", _set("model.n_layer", 0), "error"),
    ("model n_layer 2 (weights for 1)", _set("model.n_layer", 2), "error"),
    ("model n_embd 10^9", _set("model.n_embd", 10 ** 9), "error"),
    ("model n_embd 65536 x 256 layers (memory)", _edit(lambda m: m["model"].update(n_embd=65536, n_layer=256,
                                                                                    n_head=256)), "error"),
    ("model vocab_size 10^12", _set("model.vocab_size", 10 ** 12), "error"),
    ("model block_size 10^9", _set("model.block_size", 10 ** 9), "error"),
    ("model block_size 2^64", _set("model.block_size", 2 ** 64), "error"),
    ("model n_head not dividing n_embd", _set("model.n_head", 3), "error"),
    ("model dropout NaN", _raw_meta(b""), "error"),   # replaced below by a real NaN edit
    ("model pos unknown", _set("model.pos", "alibi"), "error"),
    # tokenizer
    ("tokenizer missing", _set("tokenizer", _DELETE), "error"),
    ("tokenizer null", _set("tokenizer", None), "error"),
    ("tokenizer a string", _set("tokenizer", "char"), "error"),
    ("tokenizer kind unknown", _set("tokenizer.kind", "sentencepiece"), "error"),
    ("char vocabulary an int", _set("tokenizer.chars", 42), "error"),
    ("char vocabulary multi-character strings", _edit(lambda m: m["tokenizer"].update(
        chars=["ab", "cd"] + list(m["tokenizer"]["chars"][2:]))), "error"),
    ("char vocabulary repeats", _edit(lambda m: m["tokenizer"].update(
        chars=m["tokenizer"]["chars"][:-1] + m["tokenizer"]["chars"][0])), "error"),
    ("char vocabulary one short of vocab_size", _edit(lambda m: m["tokenizer"].update(
        chars=m["tokenizer"]["chars"][:-1])), "error"),
    ("char vocabulary empty", _set("tokenizer.chars", ""), "error"),
    ("word tokens without <unk>", _set("tokenizer", {"kind": "word", "tokens": ["a", "b"]}), "error"),
    ("word tokens ints", _set("tokenizer", {"kind": "word", "tokens": ["<unk>", 1, 2]}), "error"),
    ("bpe json garbage", _bpe("{not json"), "error"),
    ("bpe json nested deep", _bpe("[" * 100_000 + "]" * 100_000), "error"),
    ("bpe json not a BPE", _bpe(json.dumps({"model": {"type": "WordPiece", "vocab": {}}})), "error"),
    ("bpe json vocab ids with gaps", _bpe(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 7},
                                                                 "merges": []}})), "error"),
    ("bpe json a number", _bpe(12), "error"),
    # step, train, counters
    ("step 'abc'", _set("step", "abc"), "error"),
    ("step -5", _set("step", -5), "error"),
    ("step 1.5", _set("step", 1.5), "error"),
    ("step true", _set("step", True), "error"),
    ("step missing", _set("step", _DELETE), "error"),
    ("tokens -3", _set("tokens", -3), "error"),
    ("elapsed_s 'x'", _set("elapsed_s", "x"), "error"),
    ("train null", _set("train", None), "error"),
    ("train lr 'fast'", _set("train.lr", "fast"), "error"),
    ("train max_steps -1", _set("train.max_steps", -1), "error"),
    ("train unknown key", _set("train.warp", 9), "error"),
    ("optimizer null", _set("optimizer", None), "error"),
    ("summary a list", _set("summary", [1, 2]), "error"),
    ("summary val_loss 'abc'", _set("summary.val_loss", "abc"), "error"),
    ("summary step -1", _set("summary.step", -1), "error"),
    ("summary val_bpc null beside a val_loss", _set("summary.val_bpc", None), "ok"),
    ("metrics a dict inside", _set("metrics.val_loss", {"a": 1}), "error"),
    ("device a number", _set("device", 3), "error"),
    # history
    ("history rows garbage strings", _history_rows(["x", "y"]), "error"),
    ("history row too short", _history_rows([[1, 2, 3]]), "error"),
    ("history step 'one'", _history_rows([["one", 0, 0.1, 1.0, 0.1, 1.0, None, None]]), "error"),
    ("history lr null", _history_rows([[1, 0, 0.1, 1.0, None, 1.0, None, None]]), "error"),
    ("history a list", _set("history", [1, 2]), "error"),
    ("history columns an int", _set("history", {"columns": 7, "rows": []}), "error"),
    # spec
    ("spec a list", _set("spec", ["corpus"]), "error"),
    ("spec seed 2^70", _set("spec.seed", 2 ** 70), "error"),
    ("spec seed a string", _set("spec.seed", "1337"), "error"),
    ("spec val_fraction 5", _set("spec.val_fraction", 5), "error"),
    ("spec family differs", _set("spec.family", "lstm"), "error"),
    ("spec unknown field", _set("spec.rocket", 1), "error"),
    ("spec overrides a list", _set("spec.overrides", [1]), "error"),
    ("spec override value a dict", _set("spec.overrides.lr", {"a": 1}), "error"),
    ("spec missing", _set("spec", _DELETE), "resume"),
    # groups and manifest
    ("groups missing", _set("groups", _DELETE), "error"),
    ("groups with a path", _set("groups", ["model", "../../etc/passwd"]), "error"),
    ("groups without model", _set("groups", ["optimizer", "rng"]), "error"),
    ("manifest missing", _set("files", _DELETE), "error"),
    ("manifest a list", _set("files", []), "error"),
    ("manifest size wrong", _edit(lambda m: m["files"]["model.safetensors"].update(bytes=123)), "error"),
    ("manifest hash wrong", _edit(lambda m: m["files"]["model.safetensors"].update(sha256="0" * 64)), "error"),
    ("manifest hash not hex", _edit(lambda m: m["files"]["model.safetensors"].update(sha256="xyz")), "error"),
    # model.safetensors as a file
    ("weights missing", _replace("model.safetensors", "missing"), "error"),
    ("weights a folder", _replace("model.safetensors", "folder"), "error"),
    ("weights a FIFO", _replace("model.safetensors", "fifo"), "error"),
    ("weights symlink to /dev/zero", _replace("model.safetensors", "zero"), "error"),
    ("weights 200 MB sparse", _replace("model.safetensors", "huge"), "error"),
    ("weights one byte flipped", lambda d: _set_file(d, "model.safetensors", (lambda b: b[:-1] + bytes(
        [b[-1] ^ 1]))((d / "model.safetensors").read_bytes()), manifest=False), "error"),
    ("weights truncated (manifest agrees)", lambda d: _set_file(d, "model.safetensors",
                                                                (d / "model.safetensors").read_bytes()[:-100]),
     "error"),
    ("weights empty (manifest agrees)", lambda d: _set_file(d, "model.safetensors", b""), "error"),
    ("weights from another checkpoint", lambda d: _set_file(d, "model.safetensors", st_save(
        {"w": torch.zeros(3)}), manifest=False), "error"),
    # safetensors headers (manifest updated so the header check is what is tested)
    ("header length 2^60", _header(b"{}", n=2 ** 60), "error"),
    ("header not JSON", _header(b"{nope" + b" " * 20), "error"),
    ("header a list", _header(b"[1,2,3]"), "error"),
    ("header nested deep", _header(b"[" * 10_000 + b"]" * 10_000), "error"),
    ("header unknown dtype", _header(json.dumps({"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}
                                                ).encode()), "error"),
    ("header offsets outside the file", _header(json.dumps(
        {"w": {"dtype": "F32", "shape": [10 ** 9], "data_offsets": [0, 4 * 10 ** 9]}}).encode()), "error"),
    ("header negative shape", _header(json.dumps(
        {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}).encode()), "error"),
    # tensors
    ("weights int32", _tensors(lambda t: {k: v.to(torch.int32) for k, v in t.items()}), "error"),
    ("weights bool", _tensors(lambda t: {k: v > 0 for k, v in t.items()}), "error"),
    ("weights complex64", _tensors(lambda t: {k: v.to(torch.complex64) for k, v in t.items()}), "error"),
    ("weights uint8 one tensor", _tensors(_first_tensor(lambda v: v.to(torch.uint8))), "error"),
    ("weights a shape transposed", _tensors(lambda t: dict(t, **{"wte.weight": t["wte.weight"].T.contiguous()})),
     "error"),
    ("weights a tensor missing", _tensors(lambda t: {k: v for k, v in list(t.items())[1:]}), "error"),
    ("weights an extra tensor", _tensors(lambda t: dict(t, extra=torch.zeros(2))), "error"),
    ("weights all renamed", _tensors(lambda t: {"x" + k: v for k, v in t.items()}), "error"),
    # optimizer and RNG: sampling does not need them, a resume starts them fresh and says so
    ("optimizer tensors missing one", _tensors(lambda t: {k: v for k, v in t.items() if k != "0.exp_avg"},
                                               "optimizer"), "warn"),
    ("optimizer a moment of the wrong shape", _tensors(lambda t: dict(t, **{"0.exp_avg": torch.zeros(3)}),
                                                       "optimizer"), "warn"),
    ("optimizer moments int32", _tensors(lambda t: {k: v.to(torch.int32) for k, v in t.items()}, "optimizer"),
     "warn"),
    ("optimizer exp_avg_sq negative", _tensors(lambda t: {k: -v.abs() - 1 if k.endswith("exp_avg_sq") else v
                                                          for k, v in t.items()}, "optimizer"), "warn"),
    ("optimizer file missing", lambda d: ((d / "optimizer.safetensors").unlink(), _edit(
        lambda m: [m["groups"].remove("optimizer"), m["files"].pop("optimizer.safetensors")] and None)(d)),
     "warn"),
    ("optimizer layout state garbage", _opt_state(lambda o: o.update(state={"0": "x"})), "warn"),
    ("optimizer layout groups differ", _opt_state(lambda o: o["param_groups"].pop()), "warn"),
    ("optimizer layout param index out of range", _opt_state(lambda o: o["state"].update(
        {"999": {"step": None, "exp_avg": None, "exp_avg_sq": None}})), "warn"),
    ("rng cpu state wrong size", _tensors(lambda t: dict(t, cpu=t["cpu"][:100].clone()), "rng"), "warn"),
    ("rng states float", _tensors(lambda t: {k: v.float() for k, v in t.items()}, "rng"), "warn"),
    ("rng batch missing", _tensors(lambda t: {"cpu": t["cpu"]}, "rng"), "warn"),
]


def _nan_dropout(d: Path) -> None:
    text = (d / "meta.json").read_text()
    m = json.loads(text)
    m["model"]["dropout"] = float("nan")
    _write_meta(d, m)   # json.dumps writes NaN, which Python's json reads back


CASES = [(n, _nan_dropout, e) if n == "model dropout NaN" else (n, f, e) for n, f, e in CASES]


def make_case(good: Path, dest: Path, mutate) -> Path:
    shutil.copytree(good, dest, symlinks=True)
    mutate(dest)
    return dest


# -- loaders -----------------------------------------------------------------------------------------------------
def _cli(argv: list[str]) -> tuple[str, str]:
    """Run engine.cli.main in-process: ("error", message) for exit 2 with one `error:` line and no traceback,
    ("ok", stderr) for exit 0, ("crash", what) otherwise."""
    from engine.cli import main
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except BaseException as e:   # noqa: BLE001 - anything escaping main is what this counts
        return "crash", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
    text = err.getvalue()
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    if rc == 2 and len(errors) == 1 and "Traceback" not in text:
        return "error", errors[0]
    if rc == 0 and not errors:
        return "ok", text
    return "crash", f"rc {rc}: {text[-500:]}"


def load_sample(d: Path, work: Path):
    return _cli(["sample", "--checkpoint", str(d), "--prompt", "the", "--max-new-tokens", "3", "--seed", "0"])


def load_tape(d: Path, work: Path):
    return _cli(["tape", "--checkpoint", str(d), "--text", "the cat"])


def load_resume(d: Path, work: Path):
    return _cli(["train", "--resume", str(d), "--max-steps", "3", "--device", "cpu", "--quiet",
                 "--out", str(work / "resumed")])


def load_window(d: Path, work: Path):
    """What the window's Load calls (api.load_checkpoint): a PlaygroundError is a clear error."""
    from engine import api
    from engine.errors import PlaygroundError
    try:
        api.load_checkpoint(d)
    except PlaygroundError as e:
        return "error", str(e)
    except BaseException as e:   # noqa: BLE001
        return "crash", f"{type(e).__name__}: {e}"
    return "ok", ""


LOADERS = {"sample": load_sample, "tape": load_tape, "train --resume": load_resume, "window Load": load_window}


def run_loader(loader, d: Path, work: Path, timeout: float = 60.0) -> tuple[str, str]:
    """The loader's outcome, or ("hang", ...) when it has not returned within `timeout` seconds."""
    result: list = []
    t = threading.Thread(target=lambda: result.append(loader(d, work)), daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else ("hang", f"no answer in {timeout:.0f} s")


def judge(expect: str, loader_name: str, outcome: str, message: str) -> bool:
    """Whether a loader's outcome is the right one for a case."""
    resume = loader_name == "train --resume"
    if expect == "error" or (expect == "resume" and resume):
        return outcome == "error" and "\n" not in message.strip()
    if expect == "warn" and resume:
        return outcome == "ok" and "warning:" in message
    return outcome == "ok"


CASES_BY_NAME = {name: mutate for name, mutate, _ in CASES}
