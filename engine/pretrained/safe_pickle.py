"""Reading the pickle files other programs write without letting them run code.

A pickle is a small program: its GLOBAL/STACK_GLOBAL opcodes import any callable by name and REDUCE calls it, so
`pickle.load` on a stranger's file can do anything (Python's pickle documentation, "Restricting Globals").

- `load_plain_pickle` reads nanoGPT's `meta.pkl` with an Unpickler whose `find_class` refuses every name: without
  a callable nothing can be called or built, so only pickle's own plain values come out. The result must then be
  made of dicts, lists, strings and whole numbers only.
- `load_torch_file` reads a `torch.save` file (nanoGPT's ckpt.pt, Hugging Face's pytorch_model.bin) with
  `torch.load(weights_only=True)`, torch's own restricted unpickler, which admits tensors and plain containers
  only and refuses every other name before anything is called.

Both raise CheckpointError; a refused file has executed nothing."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

from ..errors import CheckpointError
from ..safe_read import read_regular

MAX_PICKLE_BYTES = 64 * 1024 * 1024   # nanoGPT's meta.pkl of a char vocabulary is about 1 kB
MAX_DEPTH = 8
REFUSED = "it would run code or build objects when loaded; nothing in it was run"


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):   # every callable a pickle names goes through here
        raise pickle.UnpicklingError(f"it names {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it refers to objects outside the file")


def load_plain_pickle(path: str | Path, what: str = "pickle file"):
    """The value pickled in `path`, which may hold only dicts, lists, strings and whole numbers. Raises
    CheckpointError for a file that names any class or function (refused before it is called), for other types
    and for damaged files."""
    data = read_regular(path, MAX_PICKLE_BYTES, what, CheckpointError)
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        why = str(e)
        if why.startswith("it "):
            raise CheckpointError(f"refused {what} {path}: {why}, so {REFUSED}") from None
        raise CheckpointError(f"{what} {path} is not a readable pickle: {why[:200]}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError, RecursionError,
            OverflowError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{what} {path} is not a readable pickle ({type(e).__name__})") from None
    _check_plain(value, f"{what} {path}", 0)
    return value


MAX_NODES = 1_000_000   # values a plain pickle may hold (shared lists are walked once per reference)


def _check_plain(value, where: str, depth: int, seen: list[int] | None = None) -> None:
    """Refuses anything but dicts, lists, str and int, deeper than MAX_DEPTH, or with more than MAX_NODES values
    counted per reference (3 levels of a 300-way shared list are 27 million: the walk would hang)."""
    seen = [0] if seen is None else seen
    seen[0] += 1
    if seen[0] > MAX_NODES:
        raise CheckpointError(f"{where} holds more than {MAX_NODES:,} values: not a vocabulary file")
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if type(value) in (str, int):
        return
    if type(value) is dict:
        for k, v in value.items():
            _check_plain(k, where, depth + 1, seen)
            _check_plain(v, where, depth + 1, seen)
        return
    if type(value) is list:
        for v in value:
            _check_plain(v, where, depth + 1, seen)
        return
    raise CheckpointError(f"{where} holds a {type(value).__name__}; only dicts, lists, strings and whole numbers "
                          f"are read from it")


def load_torch_file(path: str | Path, what: str):
    """torch.load(path, weights_only=True) onto the CPU, memory-mapped when the file is torch's zip format (so the
    optimizer state in a nanoGPT ckpt.pt is never read into memory). Raises CheckpointError: for a file whose
    pickle names anything besides tensors and plain containers (refused by torch before it is called), and for
    damaged files."""
    import torch
    p = Path(path)
    try:
        is_zip = zipfile.is_zipfile(p)
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {p}: {e.strerror}") from None
    if not is_zip:   # torch's legacy format is read whole into memory
        from ..device import available_memory, format_bytes
        have, size = available_memory("cpu"), p.stat().st_size
        if have is not None and size > have[0]:
            raise CheckpointError(f"{what} {p} is {format_bytes(size)}, more than the {format_bytes(have[0])} of "
                                  f"{have[1]} here")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as e:
        detail = " ".join(str(e).split())
        # torch words it several ways ("Unsupported global: GLOBAL x.y", "Trying to load unsupported GLOBAL x.y
        # whose module x is blocked", "Unsupported operand 149"): quote the sentence that names what was refused
        named = max(detail.find("Unsupported global:"), detail.find("Trying to load unsupported"),
                    detail.find("Unsupported operand"))
        why = detail[named:].split(". ")[0].split(" Check the documentation")[0][:160] if named >= 0 else \
            "it names code to run"
        raise CheckpointError(f"refused {what} {p}: {REFUSED} ({why})") from None
    except (RuntimeError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, OSError,
            zipfile.BadZipFile, MemoryError, RecursionError, OverflowError, UnicodeDecodeError) as e:
        text = str(e).strip().splitlines()
        raise CheckpointError(f"{what} {p} cannot be read as a PyTorch file: "
                              f"{text[0][:200] if text else type(e).__name__}") from None
