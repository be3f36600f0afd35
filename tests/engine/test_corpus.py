"""Corpus loading: every bad input is a one-line CorpusError that says what is wrong; good inputs load exactly."""
import os

import pytest

from engine.corpus import BUILTIN_CORPORA, Corpus, load_corpus, require_min_length, split_text
from engine.errors import ConfigError, CorpusError


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


BAD_INPUTS = [
    # (name, files to create relative to tmp_path, spec relative to tmp_path, options, expected message part)
    ("empty file", {"e.txt": b""}, "e.txt", {}, "is empty"),
    ("whitespace only", {"w.txt": b" \n\t\n"}, "w.txt", {}, "only whitespace"),
    ("binary file", {"b.txt": b"abc\x00\x01def"}, "b.txt", {}, "binary (it contains NUL bytes)"),
    ("invalid utf-8", {"u.txt": b"hello \xff world"}, "u.txt", {}, "not valid UTF-8 at byte offset 6"),
    ("truncated utf-8", {"t.txt": "caf\u00e9".encode()[:-1]}, "t.txt", {}, "byte offset 3"),
    ("folder with no text", {"d/img.png": b"\x89PNG\x00\x00", "d/empty.txt": b""}, "d", {},
     "contains no text files"),
    ("file over the limit", {"big.txt": b"x" * 2000}, "big.txt", {"max_bytes": 1000},
     "is 0.0020 MB, over the 0.0010 MB limit"),
    ("folder over the limit", {"f/a.txt": b"x" * 600, "f/b.txt": b"y" * 600}, "f", {"max_bytes": 1000},
     "over the 0.0010 MB limit"),
    ("bad utf-8 inside a folder", {"g/a.txt": b"fine\n", "g/b.txt": b"\xc3("}, "g", {}, "b.txt is not valid UTF-8"),
    ("nonexistent path", {}, "nope.txt", {}, "no such file or folder"),
]


@pytest.mark.parametrize("name,files,spec,opts,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_line_corpus_error(tmp_path, name, files, spec, opts, message):
    for rel, data in files.items():
        _write(tmp_path / rel, data)
    with pytest.raises(CorpusError) as info:
        load_corpus(str(tmp_path / spec), **opts)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(CorpusError, match="unknown built-in corpus 'builtin:nope'; known: "
                                          "builtin:python-code, builtin:python-docs"):
        load_corpus("builtin:nope")


def test_bad_utf8_replace_option_substitutes(tmp_path):
    p = _write(tmp_path / "u.txt", b"hello \xff world")
    assert load_corpus(str(p), on_bad_utf8="replace").text == "hello \ufffd world"
    with pytest.raises(ConfigError):
        load_corpus(str(p), on_bad_utf8="ignore")


def test_file_loads_with_name_and_absolute_source(tmp_path):
    p = _write(tmp_path / "poem.txt", "Shall I compare thee\nto a summer's day?\n".encode())
    c = load_corpus(str(p))
    assert c == Corpus("poem.txt", "Shall I compare thee\nto a summer's day?\n", str(p.resolve()))


def test_folder_concatenates_text_files_in_sorted_order_skipping_binary_and_hidden(tmp_path):
    root = tmp_path / "notes"
    _write(root / "b.txt", b"second")
    _write(root / "a.md", b"first\n")
    _write(root / "sub" / "c.py", b"third\n")
    _write(root / "z.bin", b"\x00\x01\x02")
    _write(root / ".hidden.txt", b"secret\n")
    _write(root / ".git" / "config", b"[core]\n")
    c = load_corpus(str(root))
    assert c.name == "notes"
    assert c.text == "first\nsecond\nthird\n"


@pytest.mark.parametrize("name", sorted(BUILTIN_CORPORA))
def test_builtin_corpora_are_substantial_and_reproducible(name):
    a = load_corpus(f"builtin:{name}")
    b = load_corpus(f"builtin:{name}")
    assert a.name == a.source == f"builtin:{name}"
    assert len(a.text) > 200_000
    assert len(a.text.encode("utf-8")) < 5_000_000
    assert a.text == b.text
    marker = "def " if name == "python-code" else "The "
    assert a.text.count(marker) > 100


def test_builtin_respects_size_limit():
    with pytest.raises(CorpusError, match="builtin:python-docs is .* MB, over the"):
        load_corpus("builtin:python-docs", max_bytes=1000)


def test_split_text_takes_the_last_fraction_as_validation():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, val = split_text(text)
    assert (len(train), len(val)) == (900, 100)
    assert train + val == text
    train, val = split_text(text, 0.25)
    assert val == text[750:]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, "0.1"])
def test_split_text_rejects_bad_fractions(fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        split_text("some text here", fraction)


@pytest.mark.parametrize("text,fraction", [("a", 0.1), ("", 0.1), ("ab", 0.6), ("abcdefghij", 1e-18)])
def test_split_text_refuses_an_empty_side(text, fraction):
    with pytest.raises(CorpusError, match="too short to split"):
        split_text(text, fraction)


def test_require_min_length():
    require_min_length("abcdef", 6, "the training text", unit="characters")
    require_min_length([1, 2, 3], 2, "ids")
    with pytest.raises(CorpusError, match="the validation split has 3 tokens, fewer than one training window of 65"):
        require_min_length([1, 2, 3], 65, "the validation split")


def test_special_file_is_refused_without_reading_it():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(CorpusError, match="not a regular file"):
        load_corpus("/dev/zero")  # endless: reading it would hang


# ---------------------------------------------------------------- issue 14: what a folder or a file may hold

def test_folder_limit_counts_only_the_text_that_is_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("a note\n")
    with open(tmp_path / "video.mp4", "wb") as f:   # 3 MB of binary, limit 1 MB
        f.write(b"\x00\x01" * 1_500_000)
    corpus = load_corpus(str(tmp_path), max_bytes=1_000_000)
    assert corpus.text == "a note\n"
    assert corpus.skipped == (("video.mp4", "binary (NUL bytes)"),)
    (tmp_path / "big.txt").write_text("x" * 1_200_000)
    with pytest.raises(CorpusError, match=r"text files in .* \(at big.txt\).*over the 1.0 MB limit"):
        load_corpus(str(tmp_path), max_bytes=1_000_000)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_decoded(tmp_path, encoding):
    data = "héllo wörld\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    (tmp_path / "a.txt").write_bytes(data)
    assert load_corpus(str(tmp_path / "a.txt")).text == "héllo wörld\n"
    assert load_corpus(str(tmp_path)).text == "héllo wörld\n"


def test_a_leading_utf8_bom_is_dropped(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfhello\n")
    assert load_corpus(str(tmp_path / "a.txt")).text == "hello\n"


def test_broken_utf16_is_named(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xff\xfeh\x00\x00\xd8")   # an unpaired surrogate
    with pytest.raises(CorpusError, match="UTF-16-LE byte-order mark but is not valid"):
        load_corpus(str(tmp_path / "a.txt"))


@pytest.mark.parametrize("spec", ["", "   "])
def test_an_empty_corpus_path_is_refused(spec):
    with pytest.raises(CorpusError, match="no corpus given"):
        load_corpus(spec)


def test_skipped_files_are_listed_with_the_reason(tmp_path):
    (tmp_path / "a.txt").write_text("text\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    corpus = load_corpus(str(tmp_path))
    assert dict(corpus.skipped) == {"empty.txt": "empty", "pipe": "not a regular file", "zero": "not a regular file"}


def test_unreadable_files_and_folders_are_named(tmp_path, monkeypatch):
    """Simulated (as root, chmod does not stop reads): os.walk meets an unreadable folder, open an unreadable
    file."""
    (tmp_path / "a.txt").write_text("text\n")
    (tmp_path / "secret.txt").write_text("text\n")
    (tmp_path / "locked").mkdir()
    real_scandir, real_open = os.scandir, open

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def fake_open(file, *a, **k):
        if str(file).endswith("secret.txt"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr("builtins.open", fake_open)
    corpus = load_corpus(str(tmp_path))
    assert dict(corpus.skipped) == {"locked/": "unreadable folder: permission denied",
                                    "secret.txt": "unreadable: permission denied"}
    (tmp_path / "a.txt").unlink()
    with pytest.raises(CorpusError, match=r"no text files \(skipped: locked/ \(unreadable folder"):
        load_corpus(str(tmp_path))
    with pytest.raises(CorpusError, match="cannot read folder .*locked: permission denied"):
        load_corpus(str(tmp_path / "locked"))
