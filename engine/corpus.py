"""Corpora: load and validate text from a file, a folder or a built-in source, and split it into train/val.

Every way a corpus can be unusable (missing, empty, binary, not UTF-8, too large, too short) is a one-line
CorpusError, because the CLI and the GUI show that message to the person who picked the file. The built-in corpora
come from the Python installation itself, so the app works offline and the same Python always gives the same bytes.
"""
from __future__ import annotations

import logging
import sysconfig
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path

from .errors import BadUtf8Error, ConfigError, CorpusError

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
BUILTIN_CORPORA: dict[str, str] = {
    "python-docs": "the Python reference's prose topics (pydoc_data.topics), about 0.5 MB of English",
    "python-code": "a fixed selection of the Python standard library's source, about 2 MB of code",
}

# Standard-library modules that make up builtin:python-code. A fixed, sorted list (not a directory scan) so the
# corpus does not change when packages are installed; each entry is NAME.py or NAME/__init__.py under the stdlib.
_CODE_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "collections", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "difflib", "enum", "fractions", "functools", "gettext", "heapq", "inspect",
    "ipaddress", "json/decoder", "json/encoder", "json", "logging", "operator", "optparse", "pathlib", "pprint",
    "queue", "random", "re/_compiler", "re/_parser", "re", "sched", "selectors", "shlex", "shutil", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "tokenize", "traceback", "types",
    "typing", "unittest/case", "uuid", "warnings", "weakref", "zipfile",
)


@dataclass(frozen=True)
class Corpus:
    name: str    # "builtin:python-docs", a file name, or a folder name
    text: str    # the whole corpus, decoded
    source: str  # absolute path or "builtin:..."


def load_corpus(spec: str, *, max_bytes: int = 50_000_000, on_bad_utf8: str = "error") -> Corpus:
    """Load `spec`: a text file, a folder (its text files concatenated in sorted path order) or "builtin:NAME".

    on_bad_utf8: "error" refuses invalid UTF-8 naming the byte offset; "replace" substitutes U+FFFD."""
    if on_bad_utf8 not in ("error", "replace"):
        raise ConfigError(f"on_bad_utf8 must be 'error' or 'replace', not {on_bad_utf8!r}")
    spec = str(spec)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_CORPORA:
            known = ", ".join(BUILTIN_PREFIX + k for k in sorted(BUILTIN_CORPORA))
            raise CorpusError(f"unknown built-in corpus {spec!r}; known: {known}")
        text = _python_docs() if name == "python-docs" else _python_code()
        _check_size(spec, len(text.encode("utf-8")), max_bytes)
        return Corpus(spec, text, spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CorpusError(f"no such file or folder: {spec}")
    if path.is_dir():
        text = _load_folder(path, max_bytes, on_bad_utf8)
    elif not path.is_file():
        raise CorpusError(f"{spec} is not a regular file or folder")
    else:
        data = _read_checked(path, max_bytes)
        text = _decode(path, data, on_bad_utf8)
        if not text.strip():
            raise CorpusError(f"{path} contains only whitespace")
    return Corpus(path.name, text, str(path.resolve()))


VAL_FRACTION = 0.1   # the default validation share: the last 10% of the text, as in nanoGPT


def split_text(text: str, val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    """The last `val_fraction` of the text is validation, as in nanoGPT: a contiguous tail, so no validation
    sentence is half-seen in training."""
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction!r}")
    n = int(len(text) * (1.0 - val_fraction))
    if n == 0 or n == len(text):
        raise CorpusError(f"text of {len(text)} characters is too short to split with val_fraction={val_fraction}")
    return text[:n], text[n:]


def require_min_length(seq: Sized, n: int, what: str, unit: str = "tokens") -> None:
    """Refuse a text or id sequence shorter than one training window (`n` items), with a message that says what
    to change, instead of an index error deep in a batch sampler."""
    if len(seq) < n:
        raise CorpusError(f"{what} has {len(seq)} {unit}, fewer than one training window of {n}; "
                          f"use a longer corpus or a smaller block_size")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e6:.4f} MB"


def _check_size(label: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise CorpusError(f"{label} is {_mb(size)}, over the {_mb(max_bytes)} limit")


def _read_checked(path: Path, max_bytes: int) -> bytes:
    try:
        _check_size(str(path), path.stat().st_size, max_bytes)
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror}") from None
    if not data:
        raise CorpusError(f"{path} is empty")
    if b"\x00" in data:
        raise CorpusError(f"{path} looks binary (it contains NUL bytes), not text")
    return data


def _decode(path: Path, data: bytes, on_bad_utf8: str) -> str:
    try:
        return data.decode("utf-8", errors="strict" if on_bad_utf8 == "error" else "replace")
    except UnicodeDecodeError as e:
        raise BadUtf8Error(f"{path} is not valid UTF-8 at byte offset {e.start} (byte 0x{data[e.start]:02x})") from None


def _load_folder(folder: Path, max_bytes: int, on_bad_utf8: str) -> str:
    """Concatenate the folder's text files (recursively, hidden entries skipped) in sorted relative-path order so
    the same folder always gives the same corpus. Binary and empty files are skipped with a log line: a folder of
    notes with a stray image in it should still load. Bad UTF-8 in a text file is not skipped silently."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).as_posix())
    parts, total = [], 0
    for p in files:
        try:
            _check_size(f"the text in {folder}", total + p.stat().st_size, max_bytes)
            data = p.read_bytes()
        except OSError as e:
            log.warning("skipping %s: %s", p, e.strerror)
            continue
        if not data.strip() or b"\x00" in data:
            log.info("skipping %s (empty or binary)", p)
            continue
        total += len(data)
        text = _decode(p, data, on_bad_utf8)
        parts.append(text if text.endswith("\n") else text + "\n")
    if not parts:
        raise CorpusError(f"folder {folder} contains no text files")
    return "".join(parts)


def _python_docs() -> str:
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"


def _python_code() -> str:
    stdlib = Path(sysconfig.get_path("stdlib"))
    parts = []
    for name in _CODE_MODULES:
        for candidate in (stdlib / f"{name}.py", stdlib / name / "__init__.py"):
            if candidate.is_file():
                rel = candidate.relative_to(stdlib).as_posix()
                parts.append(f"# ---- {rel} ----\n" + candidate.read_text(encoding="utf-8"))
                break
    if not parts:
        raise CorpusError(f"builtin:python-code: no standard-library sources found under {stdlib}")
    return "\n".join(parts)
