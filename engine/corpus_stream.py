"""A corpus read as a stream of text chunks, for corpora too large to hold as one string (engine/prepare.py).

The same sources as engine.corpus.load_corpus (a file, a folder of text files concatenated in sorted path order,
builtin:NAME) and the same refusals, with the same messages: a missing path, an empty or whitespace-only file,
NUL bytes (binary), bad UTF-8 naming its byte offset in the file (or U+FFFD with on_bad_utf8="replace"), a
UTF-16/32 byte-order mark over bytes that are not that encoding. There is no size limit. Concatenating every
chunk gives exactly the text load_corpus returns for the same source (tests/engine/test_prepare.py checks it).
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .corpus import BUILTIN_PREFIX, SNIFF_BYTES, _bom, _why, check_spec, load_corpus, no_text_files, regular_files
from .errors import BadUtf8Error, CorpusError

CHUNK_BYTES = 8 << 20   # bytes read at a time: ~8 MB of text, a few tens of MB while it is tokenized


@dataclass
class TextStream:
    """A corpus to read chunk by chunk. `chunks()` may be iterated several times (each pass reads the files
    again); `total_bytes` is what one pass reads, for progress."""
    name: str
    source: str
    files: list[Path] = field(default_factory=list)    # the files read, in order (empty for a built-in)
    text: str | None = None                             # a built-in corpus's text
    skipped: list[tuple[str, str]] = field(default_factory=list)
    total_bytes: int = 0
    on_bad_utf8: str = "error"
    folder: bool = False

    def chunks(self, chunk_bytes: int = CHUNK_BYTES, progress=None) -> Iterator[str]:
        """The text in pieces of about `chunk_bytes` bytes. progress(bytes_read) is called after each piece."""
        if self.text is not None:
            step = max(1, chunk_bytes)
            for i in range(0, len(self.text), step):
                yield self.text[i:i + step]
                if progress:
                    progress(min(self.total_bytes, i + step))
            return
        done = 0
        seen_text = False
        for path in self.files:
            last = ""
            for piece, read in _file_chunks(path, chunk_bytes, self.on_bad_utf8, self.folder):
                done += read
                if piece:
                    seen_text = seen_text or bool(piece.strip())
                    last = piece
                    yield piece
                if progress:
                    progress(done)
            if self.folder and last and not last.endswith("\n"):
                yield "\n"    # as load_corpus joins a folder's files: each ends with a newline
            if not self.folder and not seen_text:
                raise CorpusError(f"{path} contains only whitespace")


def open_stream(spec: str, on_bad_utf8: str = "error") -> TextStream:
    """A TextStream over `spec` (file, folder or builtin:NAME). A folder's files are checked here, as load_corpus
    checks them: empty, whitespace-only, binary (a NUL byte anywhere, read in chunks) and unreadable files are
    skipped and listed; none left is a CorpusError. Errors inside a file (bad UTF-8) are raised while reading."""
    spec = check_spec(spec, on_bad_utf8)
    if spec.startswith(BUILTIN_PREFIX):
        corpus = load_corpus(spec)   # a few MB at most
        return TextStream(corpus.name, corpus.source, text=corpus.text, total_bytes=len(corpus.text.encode()),
                          on_bad_utf8=on_bad_utf8)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CorpusError(f"no such file or folder: {spec}")
    if path.is_dir():
        files, skipped = _folder_text_files(path)
        return TextStream(path.name, str(path.resolve()), files, skipped=skipped,
                          total_bytes=sum(p.stat().st_size for p in files), on_bad_utf8=on_bad_utf8, folder=True)
    if not path.is_file():
        raise CorpusError(f"{spec} is not a regular file or folder")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {_why(e)}") from None
    if size == 0:
        raise CorpusError(f"{path} is empty")
    return TextStream(path.name, str(path.resolve()), [path], total_bytes=size, on_bad_utf8=on_bad_utf8)


def _folder_text_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    skipped: list[tuple[str, str]] = []
    kept = []
    for p, rel in regular_files(folder, skipped):
        try:
            why = _scan(p)
        except OSError as e:
            skipped.append((rel, f"unreadable: {_why(e)}"))
            continue
        if why:
            skipped.append((rel, why))
        else:
            kept.append(p)
    if not kept:
        raise no_text_files(folder, skipped)
    return kept, skipped


def _scan(path: Path) -> str:
    """Why a folder's file is skipped ("empty", "binary (NUL bytes)") or "" to keep it: the whole file is read, in
    chunks, as load_corpus reads it whole."""
    blank = True
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        unicode_bom = (_bom(head) or ("utf-8",))[0] != "utf-8"
        chunk = head
        while chunk:
            if not unicode_bom and b"\x00" in chunk:
                return "binary (NUL bytes)"
            blank = blank and not chunk.strip()
            chunk = f.read(CHUNK_BYTES)
    return "empty" if blank else ""


def _file_chunks(path: Path, chunk_bytes: int, on_bad_utf8: str, in_folder: bool) -> Iterator[tuple[str, int]]:
    """(text, bytes read) pieces of one file, decoded incrementally: UTF-8, its byte-order mark dropped, or
    UTF-16/32 when a mark says so, with \\r\\n read as \\n as load_corpus does (a '\\r' at a piece's end waits for the
    next piece). A decoding error names the byte offset in the file."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {_why(e)}") from None
    with f:
        try:
            head = f.read(max(chunk_bytes, 4))
        except OSError as e:
            raise CorpusError(f"cannot read {path}: {_why(e)}") from None
        if not head:
            raise CorpusError(f"{path} is empty")
        encoding, skip = _bom(head) or ("utf-8", 0)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict" if on_bad_utf8 == "error" else "replace")
        pos = 0                    # file offset of the start of `data`
        data = head
        held_cr = False            # the last piece ended in '\r': it may be the first half of a \r\n
        while True:
            if encoding == "utf-8" and not in_folder and b"\x00" in data:
                raise CorpusError(f"{path} looks binary (it contains NUL bytes), not text")
            final = not data
            start = pos + (skip if pos == 0 else 0)
            buffered = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data[skip:] if pos == 0 else data, final=final)
            except UnicodeDecodeError as e:
                raise _decode_error(path, encoding, start - buffered + e.start, e) from None
            text, held_cr = ("\r" if held_cr else "") + text, False
            if text.endswith("\r") and not final:
                text, held_cr = text[:-1], True
            yield text.replace("\r\n", "\n"), len(data)
            if final:
                return
            pos += len(data)
            try:
                data = f.read(chunk_bytes)
            except OSError as e:
                raise CorpusError(f"cannot read {path}: {_why(e)}") from None


def _decode_error(path: Path, encoding: str, offset: int, e: UnicodeDecodeError) -> CorpusError:
    """The message engine.corpus gives for the same bytes."""
    if encoding != "utf-8":
        return CorpusError(f"{path} starts with a {encoding.upper()} byte-order mark but is not valid "
                           f"{encoding.upper()} at byte offset {offset}")
    bad = e.object[e.start] if e.start < len(e.object) else 0
    return BadUtf8Error(f"{path} is not valid UTF-8 at byte offset {offset} (byte 0x{bad:02x})")

