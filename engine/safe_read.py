"""Reading a file the product did not necessarily write: a regular file only (never a FIFO, a device such as
/dev/zero behind a symlink, or a folder), at most a given number of bytes, and JSON parsed with its nesting depth
bounded. Every failure is one error of the caller's class with a one-line message, never a hang or a traceback."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .errors import PlaygroundError

MAX_JSON_DEPTH = 64     # the deepest JSON any of the product's files needs is about 6


def read_regular(path: str | os.PathLike, max_bytes: int, what: str,
                 error: type[PlaygroundError] = PlaygroundError) -> bytes:
    """The bytes of `path`, which must be a regular file (symlinks to one are fine) of at most `max_bytes`.

    Raises `error` (a PlaygroundError subclass) when the path is missing, is a folder, a FIFO, a device or a socket,
    is larger than `max_bytes`, or cannot be read. The file is opened non-blocking and checked with fstat on the
    open descriptor, so a FIFO swapped in after the first check cannot hang the reader either."""
    p = Path(path)
    regular_stat(p, what, error)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        _require_regular(st, p, what, error)
        if st.st_size > max_bytes:
            raise error(f"{what} {p} is {st.st_size:,} bytes, more than the {max_bytes:,} this file can be")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:   # the file grew while being read
                raise error(f"{what} {p} is more than the {max_bytes:,} bytes this file can be")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror}") from None
    finally:
        os.close(fd)


def regular_stat(path: str | os.PathLike, what: str, error: type[PlaygroundError] = PlaygroundError
                 ) -> os.stat_result:
    """os.stat of `path` once it is a regular file (symlinks to one are fine); `error` with a one-line message
    when it is missing, unreadable, a folder, a FIFO, a device or a socket."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist") from None
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror}") from None
    _require_regular(st, p, what, error)
    return st


def _require_regular(st: os.stat_result, p: Path, what: str, error: type[PlaygroundError]) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
    raise error(f"{what} {p} is {kind}, not a regular file")


def parse_json(data: bytes | str, what: str, error: type[PlaygroundError] = PlaygroundError,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text, refusing invalid UTF-8, invalid JSON and nesting deeper than `max_depth` (a file nested
    200,000 deep would otherwise exhaust the parser's recursion). Raises `error`."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{what} is not UTF-8 text (byte offset {e.start})") from None
    depth = _bracket_depth(data)
    if depth > max_depth:
        raise error(f"{what} is nested {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:   # JSONDecodeError is a ValueError
        raise error(f"{what} is not valid JSON: {str(e).splitlines()[0][:200]}") from None


_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { outside JSON strings, found by one regular-expression scan (no recursion,
    linear time). Unbalanced brackets or an unterminated string are left for the parser to report."""
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif c in "]}":
            depth -= 1
    return deepest
