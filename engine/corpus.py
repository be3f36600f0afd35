"""Corpora: load and validate text from a file, a folder or a built-in source, and split it into train/val.

Every way a corpus can be unusable (missing, empty, binary, not UTF-8, too large, too short) is a one-line
CorpusError, because the CLI and the GUI show that message to the person who picked the file. The built-in corpora
come from the Python installation itself, so the app works offline and the same Python always gives the same bytes.
"""
from __future__ import annotations

import codecs
import logging
import os
import sysconfig
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from pathlib import Path

from .errors import BadUtf8Error, ConfigError, CorpusError, CorpusTooLarge

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
    skipped: tuple[tuple[str, str], ...] = ()   # a folder's files left out: (path relative to it, why)


def check_spec(spec, on_bad_utf8: str) -> str:
    """`spec` as text, once it names something and `on_bad_utf8` is "error" or "replace" (ConfigError,
    CorpusError): the checks every way of reading a corpus starts with (load_corpus, corpus_stream.open_stream)."""
    if on_bad_utf8 not in ("error", "replace"):
        raise ConfigError(f"on_bad_utf8 must be 'error' or 'replace', not {on_bad_utf8!r}")
    spec = str(spec)
    if not spec.strip():
        raise CorpusError("no corpus given: name a text file, a folder or builtin:python-docs")
    return spec


def load_corpus(spec: str, *, max_bytes: int = 50_000_000, on_bad_utf8: str = "error") -> Corpus:
    """Load `spec`: a text file, a folder (its text files concatenated in sorted path order) or "builtin:NAME".

    on_bad_utf8: "error" refuses invalid UTF-8 naming the byte offset; "replace" substitutes U+FFFD."""
    spec = check_spec(spec, on_bad_utf8)
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
        where = "" if path.is_absolute() else f" (a relative path: looked for from the current folder {Path.cwd()})"
        raise CorpusError(f"no such file or folder: {spec}{where}")
    skipped: tuple = ()
    if path.is_dir():
        text, skipped = _load_folder(path, max_bytes, on_bad_utf8)
    elif not path.is_file():
        raise CorpusError(f"{spec} is not a regular file or folder")
    else:
        data = _read_checked(path, max_bytes)
        text = _decode(path, data, on_bad_utf8)
        if not text.strip():
            raise CorpusError(f"{path} contains only whitespace")
    return Corpus(path.name, text, str(path.resolve()), skipped)


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
        raise CorpusTooLarge(f"{label} is {_mb(size)}, over the {_mb(max_bytes)} limit")


def _read_checked(path: Path, max_bytes: int) -> bytes:
    try:
        _check_size(str(path), path.stat().st_size, max_bytes)
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {_why(e)}") from None
    if not data:
        raise CorpusError(f"{path} is empty")
    if _looks_binary(data):
        raise CorpusError(f"{path} looks binary (it contains NUL bytes), not text")
    return data


def _why(e: OSError) -> str:
    return "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))


# Byte-order marks, longest first (UTF-32 LE starts with UTF-16 LE's mark).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _bom(data: bytes) -> tuple[str, int] | None:
    """(encoding, length of the mark) when the data starts with a byte-order mark."""
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return encoding, len(mark)
    return None


def _looks_binary(data: bytes) -> bool:
    """NUL bytes mean binary, except in UTF-16/32 text announced by its byte-order mark."""
    found = _bom(data)
    return (found is None or found[0] == "utf-8") and b"\x00" in data


def _decode(path: Path, data: bytes, on_bad_utf8: str) -> str:
    """The text of a file: UTF-8 (a leading byte-order mark dropped, so it never becomes a token), or UTF-16/32
    when a byte-order mark says so. Windows line endings (\\r\\n) are read as \\n, as Python's text mode and
    nanoGPT's prepare.py read them: kept, every line of a Windows file carried a '\\r' token, and a model trained
    on Unix text could not be fine-tuned on it without mapping '\\r'. A lone '\\r' stays."""
    encoding, skip = _bom(data) or ("utf-8", 0)
    try:
        return data[skip:].decode(encoding, errors="strict" if on_bad_utf8 == "error" else "replace").replace(
            "\r\n", "\n")
    except UnicodeDecodeError as e:
        if encoding != "utf-8":
            raise CorpusError(f"{path} starts with a {encoding.upper()} byte-order mark but is not valid "
                              f"{encoding.upper()} at byte offset {e.start + skip}") from None
        raise BadUtf8Error(f"{path} is not valid UTF-8 at byte offset {e.start + skip} "
                           f"(byte 0x{data[e.start + skip]:02x})") from None


SNIFF_BYTES = 8192   # enough of a file's start to tell binary from text without reading a whole video


def _folder_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The folder's files (recursively, hidden entries skipped) in sorted relative-path order, and the
    subfolders that could not be read, as (relative path, why). CorpusError when the folder itself cannot be
    read."""
    unreadable: list[tuple[str, str]] = []

    def note(e: OSError) -> None:
        where = Path(e.filename) if e.filename else folder
        if where == folder:
            raise CorpusError(f"cannot read folder {folder}: {_why(e)}")
        unreadable.append((where.relative_to(folder).as_posix() + "/", f"unreadable folder: {_why(e)}"))

    files = []
    for root, dirs, names in os.walk(folder, onerror=note):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in names if not n.startswith("."))
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix()), unreadable


def _load_folder(folder: Path, max_bytes: int, on_bad_utf8: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Concatenate the folder's text files in sorted relative-path order, so the same folder always gives the
    same corpus. Binary, empty, unreadable and non-regular files are skipped and returned as (relative path,
    why): a folder of notes with a stray video in it still loads, and only the text kept counts towards
    `max_bytes`. Bad UTF-8 in a text file is not skipped silently."""
    skipped: list[tuple[str, str]] = []
    parts, total = [], 0
    for p, rel in regular_files(folder, skipped):
        try:
            with open(p, "rb") as f:
                head = f.read(SNIFF_BYTES)
                if not head.strip() or _looks_binary(head):
                    skipped.append((rel, "empty" if not head.strip() else "binary (NUL bytes)"))
                    continue
                size = os.fstat(f.fileno()).st_size
                _check_size(f"the text files in {folder} (at {rel})", total + size, max_bytes)
                data = head + f.read(max_bytes - total - len(head) + 1)
        except OSError as e:
            skipped.append((rel, f"unreadable: {_why(e)}"))
            continue
        _check_size(f"the text files in {folder} (at {rel})", total + len(data), max_bytes)
        if not data.strip() or _looks_binary(data):
            skipped.append((rel, "empty" if not data.strip() else "binary (NUL bytes)"))
            continue
        total += len(data)
        text = _decode(p, data, on_bad_utf8)
        parts.append(text if text.endswith("\n") else text + "\n")
    for rel, why in skipped:
        log.info("skipping %s in %s: %s", rel, folder, why)
    if not parts:
        raise no_text_files(folder, skipped)
    return "".join(parts), tuple(skipped)


def regular_files(folder: Path, skipped: list[tuple[str, str]]) -> Iterator[tuple[Path, str]]:
    """(path, relative path) of each regular file in `folder`, in _folder_files' order (sorted, hidden ones left
    out); what cannot be listed or is not a regular file is appended to `skipped` as (relative path, why)."""
    files, unreadable = _folder_files(folder)
    skipped.extend(unreadable)
    for p in files:
        rel = p.relative_to(folder).as_posix()
        try:
            regular = p.is_file()
        except OSError as e:
            skipped.append((rel, f"unreadable: {_why(e)}"))
            continue
        if not regular:
            skipped.append((rel, "not a regular file"))
            continue
        yield p, rel


def no_text_files(folder: Path, skipped: list[tuple[str, str]]) -> CorpusError:
    """The error for a folder where no file was kept, naming the first five skipped and why."""
    shown = "; ".join(f"{rel} ({why})" for rel, why in skipped[:5])
    return CorpusError(f"folder {folder} contains no text files" + (f" (skipped: {shown})" if shown else ""))


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
