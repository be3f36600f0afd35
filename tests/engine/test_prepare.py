"""main.py prepare (engine/prepare.py, engine/corpus_stream.py): the streamed corpus is load_corpus's text, the
prepared tokenizer and ids are those a run makes in memory, meta.json's counts are right, the dtype fits the
vocabulary, and bad input gets load_corpus's messages. Small chunks make every corpus cross many chunk edges."""
import json
import math

import numpy as np
import pytest

from engine.api import RunSpec, prepare_corpus
from engine.cli import main
from engine.corpus import load_corpus, split_text
from engine.corpus_stream import open_stream
from engine.data import load_prepared, token_dtype
from engine.errors import BadUtf8Error, CorpusError
from engine.prepare import Cancelled, prepare

CHUNK = 4099   # bytes per read: odd, so multi-byte characters and words straddle chunk edges


@pytest.fixture
def unicode_file(tmp_path):
    """A text with 1-4 byte UTF-8 characters, words, newlines and runs of spaces, ~60 KB."""
    words = ["naïve", "café", "東京", "word", "x", "😀ok", "«quote»", "don't", "well-known", "Σίσυφος", "a\tb"]
    rng = np.random.default_rng(0)
    text = "".join(words[i] + (" " if j % 7 else "\n") + ("  " if j % 13 == 0 else "")
                   for j, i in enumerate(rng.integers(0, len(words), 6000)))
    p = tmp_path / "u.txt"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("kind,options", [("char", {}), ("word", {"vocab_size": "40"}),
                                          ("word", {"lowercase": "true"}), ("bpe", {"vocab_size": "300"})])
def test_prepared_ids_and_tokenizer_are_the_in_memory_runs(tmp_path, unicode_file, kind, options):
    meta = prepare(str(unicode_file), kind, tmp_path / "p", tokenizer_options=options, chunk_bytes=CHUNK)
    data = load_prepared(tmp_path / "p")
    corpus, tok, train_text, val_text, train_ids, val_ids = prepare_corpus(
        RunSpec(corpus=str(unicode_file), tokenizer=kind, tokenizer_options=options))
    assert data.tokenizer.to_dict() == tok.to_dict()
    assert np.array_equal(data.train, train_ids) and np.array_equal(data.val, val_ids)
    assert data.train.dtype == np.uint16 and meta["dtype"] == "uint16"
    for split, text, ids in (("train", train_text, train_ids), ("val", val_text, val_ids)):
        assert meta[split]["tokens"] == len(ids)
        assert meta[split]["chars"] == len(text)
        assert meta[split]["chars_per_token"] == pytest.approx(len(text) / len(ids), abs=1e-4)
    assert meta["vocab_size"] == tok.vocab_size and meta["bytes"] == unicode_file.stat().st_size
    assert json.loads((tmp_path / "p" / "meta.json").read_text()) == meta
    if kind == "word":
        assert meta["val"]["unk"] == int(np.count_nonzero(val_ids == 0))


def test_char_round_trip_gives_the_text_back(tmp_path, unicode_file):
    prepare(str(unicode_file), "char", tmp_path / "p", chunk_bytes=CHUNK)
    data = load_prepared(tmp_path / "p")
    text = data.tokenizer.decode(np.asarray(data.train).tolist()) + data.tokenizer.decode(np.asarray(data.val).tolist())
    assert text == unicode_file.read_text(encoding="utf-8")
    n = len(text)
    assert len(data.train) == int(n * 0.9)   # the split of engine.corpus.split_text: the last 10% is validation


def test_builtin_and_other_val_fraction(tmp_path):
    meta = prepare("builtin:python-docs", "char", tmp_path / "p", val_fraction=0.25)
    text = load_corpus("builtin:python-docs").text
    train, val = split_text(text, 0.25)
    assert (meta["train"]["chars"], meta["val"]["chars"]) == (len(train), len(val))
    assert meta["corpus"] == "builtin:python-docs" and meta["val_fraction"] == 0.25


def test_dtype_is_uint32_only_when_the_vocabulary_needs_it(tmp_path):
    assert token_dtype(65_536) == np.uint16 and token_dtype(65_537) == np.uint32
    chars = [chr(0x10000 + i) for i in range(70_000)]          # 70,000 distinct characters (4-byte UTF-8)
    p = tmp_path / "wide.txt"
    p.write_text("".join(chars) + "".join(reversed(chars)), encoding="utf-8")
    meta = prepare(str(p), "char", tmp_path / "p", chunk_bytes=1 << 16)
    data = load_prepared(tmp_path / "p")
    assert meta["dtype"] == "uint32" and data.train.dtype == np.uint32 and meta["vocab_size"] == 70_000
    assert (tmp_path / "p" / "train.bin").stat().st_size == 4 * meta["train"]["tokens"]
    assert data.tokenizer.decode(np.asarray(data.val).tolist()) == split_text(p.read_text(encoding="utf-8"))[1]


def test_stream_is_load_corpus_text_for_a_folder_and_bom_files(tmp_path):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first file, no newline at its end", encoding="utf-8")
    (folder / "sub" / "b.txt").write_bytes(b"\xef\xbb\xbfwith a UTF-8 mark\n" * 500)
    (folder / "c.txt").write_bytes("UTF-16 text ✓\n".encode("utf-16"))
    (folder / "d.bin").write_bytes(b"x" * 10_000 + b"\x00")          # NUL past the sniffed head: skipped
    (folder / "e.txt").write_text("   \n", encoding="utf-8")           # whitespace only: skipped
    stream = open_stream(str(folder))
    assert "".join(stream.chunks(CHUNK)) == load_corpus(str(folder)).text
    assert sorted(stream.skipped) == sorted(load_corpus(str(folder)).skipped)
    meta = prepare(str(folder), "char", tmp_path / "p", chunk_bytes=CHUNK)
    assert [tuple(s) for s in meta["skipped"]] == list(stream.skipped)


def _same_error(spec, tmp_path, **kw):
    with pytest.raises(CorpusError) as loaded:
        load_corpus(spec, **kw)
    with pytest.raises(CorpusError) as prepared:
        prepare(spec, "char", tmp_path / "out", chunk_bytes=CHUNK, **kw)
    assert type(prepared.value) is type(loaded.value)
    assert str(prepared.value) == str(loaded.value)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.preparing-*"))
    return str(prepared.value)


def test_bad_utf8_far_into_the_file_names_its_byte_offset(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes("é".encode() * 6000 + b"ok \xff more" + b" text" * 100)   # byte 12003 is 0xff, chunk 3
    message = _same_error(str(p), tmp_path)
    assert "byte offset 12003" in message and "0xff" in message
    with pytest.raises(BadUtf8Error):
        prepare(str(p), "char", tmp_path / "out", chunk_bytes=CHUNK)


def test_truncated_character_at_the_end_and_replacement(tmp_path):
    p = tmp_path / "cut.txt"
    p.write_bytes(b"abc " * 3000 + "é".encode()[:1])
    assert "byte offset 12000" in _same_error(str(p), tmp_path)
    prepare(str(p), "char", tmp_path / "r", on_bad_utf8="replace", chunk_bytes=CHUNK)
    data = load_prepared(tmp_path / "r")
    text = data.tokenizer.decode(np.asarray(data.train).tolist() + np.asarray(data.val).tolist())
    assert text == load_corpus(str(p), on_bad_utf8="replace").text


@pytest.mark.parametrize("content,what", [(b"", "is empty"), (b" \n\t " * 3000, "only whitespace"),
                                          (b"text" * 3000 + b"\x00", "looks binary")])
def test_empty_blank_and_binary_files_get_load_corpus_messages(tmp_path, content, what):
    p = tmp_path / "x.txt"
    p.write_bytes(content)
    assert what in _same_error(str(p), tmp_path)


def test_missing_file_too_short_and_unknown_tokenizer(tmp_path):
    assert "no such file" in _same_error(str(tmp_path / "nope.txt"), tmp_path)
    p = tmp_path / "tiny.txt"
    p.write_text("a", encoding="utf-8")
    with pytest.raises(CorpusError, match="text of 1 characters is too short to split"):
        prepare(str(p), "char", tmp_path / "o")
    p.write_text("abcdefgh", encoding="utf-8")
    with pytest.raises(CorpusError, match="the validation split has 1 tokens"):
        prepare(str(p), "char", tmp_path / "o", val_fraction=0.01)
    with pytest.raises(Exception, match="unknown tokenizer"):
        prepare(str(p), "chars", tmp_path / "o")
    with pytest.raises(Exception, match="no option"):
        prepare(str(p), "char", tmp_path / "o", tokenizer_options={"vocab_size": "3"})


def test_out_must_be_new_empty_or_prepared(tmp_path, unicode_file):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="prepare did not write"):
        prepare(str(unicode_file), "char", other)
    assert (other / "notes.txt").read_text() == "keep me"
    prepare(str(unicode_file), "char", tmp_path / "p")
    meta = prepare(str(unicode_file), "word", tmp_path / "p")        # an earlier prepared folder is replaced
    assert load_prepared(tmp_path / "p").tokenizer.kind == "word" == meta["tokenizer"]


@pytest.mark.parametrize("files", [
    {"meta.json": "{}", "thesis.tex": "precious"},                                     # any folder with a meta.json
    {"meta.json": json.dumps({"format": "lm-playground checkpoint"}), "model.safetensors": "weights"},
    {"meta.json": "{}"},                                                                # no prepare marker
    {"meta.json": "not json"},
])
def test_out_never_deletes_a_folder_prepare_did_not_write(capsys, tmp_path, unicode_file, files):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name, text in files.items():
        (victim / name).write_text(text)
    with pytest.raises(CorpusError, match="prepare did not write"):
        prepare(str(unicode_file), "char", victim)
    assert main(["prepare", "--corpus", str(unicode_file), "--out", str(victim), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(victim) in err
    assert {p.name: p.read_text() for p in victim.iterdir()} == files


def test_out_refuses_a_prepared_folder_with_a_file_added(tmp_path, unicode_file):
    prepare(str(unicode_file), "char", tmp_path / "p")
    (tmp_path / "p" / "notes.txt").write_text("mine")
    with pytest.raises(CorpusError, match="prepare did not write"):
        prepare(str(unicode_file), "char", tmp_path / "p")
    assert (tmp_path / "p" / "notes.txt").read_text() == "mine"


def test_out_refuses_a_checkpoint_folder(tmp_path, unicode_file):
    assert main(["train", "--corpus", str(unicode_file), "--model", "ngram", "--out", str(tmp_path / "ck")]) == 0
    before = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert "meta.json" in before
    assert main(["prepare", "--corpus", str(unicode_file), "--out", str(tmp_path / "ck"), "--quiet"]) == 2
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == before


def test_cancel_stops_and_leaves_nothing(tmp_path, unicode_file):
    seen = []
    with pytest.raises(Cancelled):
        prepare(str(unicode_file), "bpe", tmp_path / "p", chunk_bytes=CHUNK, progress=lambda f, s: seen.append((f, s)),
                cancel=lambda: len(seen) > 3)
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p.preparing-*"))
    fractions = []
    prepare(str(unicode_file), "bpe", tmp_path / "p", chunk_bytes=CHUNK, progress=lambda f, s: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 20


def test_damaged_prepared_folder_is_refused_by_name(tmp_path, unicode_file):
    prepare(str(unicode_file), "char", tmp_path / "p")
    with open(tmp_path / "p" / "train.bin", "r+b") as f:
        f.truncate(100)
    with pytest.raises(CorpusError, match=r"train\.bin is 100 bytes but meta\.json says"):
        load_prepared(tmp_path / "p")
    with pytest.raises(CorpusError, match="not a folder written by main.py prepare"):
        load_prepared(tmp_path)


def test_cli_prepare_prints_meta_and_refuses_bad_input(capsys, tmp_path, unicode_file):
    assert main(["prepare", "--corpus", str(unicode_file), "--tokenizer", "word", "--tok-set", "vocab_size=10",
                 "--out", str(tmp_path / "p")]) == 0
    out, err = capsys.readouterr()
    meta = json.loads(out.strip().splitlines()[-1])
    assert meta["vocab_size"] == 10 and meta["out"] == str(tmp_path / "p") and "MB/s" in err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\xfe")
    assert main(["prepare", "--corpus", str(bad), "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ") and "byte offset 2" in err and "--replace-bad-utf8" in err
    assert main(["train", "--data", str(tmp_path / "p"), "--tokenizer", "char"]) == 2
    assert "--tokenizer: --data DIR trains on a prepared corpus" in capsys.readouterr().err
    assert not math.isnan(meta["train"]["chars_per_token"])


def test_bpe_in_small_parts_learns_and_encodes_as_the_whole(tmp_path, unicode_file, monkeypatch):
    import engine.prepare as prep
    monkeypatch.setattr(prep, "BPE_PART", 300)     # parts of ~300 characters for training and encoding
    prepare(str(unicode_file), "bpe", tmp_path / "p", tokenizer_options={"vocab_size": 300}, chunk_bytes=CHUNK)
    data = load_prepared(tmp_path / "p")
    _, tok, _, _, train_ids, val_ids = prepare_corpus(RunSpec(corpus=str(unicode_file), tokenizer="bpe",
                                                              tokenizer_options={"vocab_size": 300}))
    assert data.tokenizer.to_dict() == tok.to_dict()
    assert np.array_equal(data.train, train_ids) and np.array_equal(data.val, val_ids)


def test_window_copies_are_keyed_by_the_resolved_path(tmp_path, unicode_file, monkeypatch):
    """Two files of the same name get their own prepared copy; a relative path is the same file's copy."""
    from engine.prepare import default_prepared_dir, find_prepared
    (tmp_path / "b").mkdir()
    twin = tmp_path / "b" / unicode_file.name
    twin.write_text(unicode_file.read_text(encoding="utf-8")[::-1], encoding="utf-8")   # same size and characters
    root = tmp_path / "prepared"
    a, b = (default_prepared_dir(str(p), "char", {}, root) for p in (unicode_file, twin))
    assert a != b and a.name.startswith(unicode_file.name) and b.name.startswith(unicode_file.name)
    monkeypatch.chdir(tmp_path)
    assert default_prepared_dir(unicode_file.name, "char", {}, root) == a
    prepare(str(unicode_file), "char", a)
    assert find_prepared(str(unicode_file), "char", {}, root) == a
    assert find_prepared(str(twin), "char", {}, root) is None


def test_a_prepared_folder_corpus_is_found_again_until_it_changes(tmp_path):
    from engine.prepare import default_prepared_dir, find_prepared
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("hello there, reader. " * 200, encoding="utf-8")
    (folder / "b.bin").write_bytes(b"\x00\x01" * 50)                 # skipped: binary
    root = tmp_path / "prepared"
    prepare(str(folder), "char", default_prepared_dir(str(folder), "char", {}, root))
    assert find_prepared(str(folder), "char", {}, root) is not None
    (folder / "c.txt").write_text("more text", encoding="utf-8")
    assert find_prepared(str(folder), "char", {}, root) is None


def test_every_stage_is_reported_and_a_tiny_validation_split_is_warned_about(capsys, tmp_path, unicode_file):
    seen = []
    prepare(str(unicode_file), "char", tmp_path / "p", progress=lambda f, s: seen.append((f, s)))
    stages = [s for _, s in seen]
    assert ("counting characters" in stages and "writing token ids" in stages
            and (0.5, "writing token ids") in seen)                      # the last pass's start, not only its end
    assert main(["prepare", "--corpus", str(unicode_file), "--val-fraction", "0.0005", "--out",
                 str(tmp_path / "q")]) == 0
    err = capsys.readouterr().err
    assert "warning: the validation split has only" in err and "writing token ids: 50%" in err
    assert main(["prepare", "--corpus", str(unicode_file), "--out", str(tmp_path / "r")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [CHUNK, 2, 3])   # 2 and 3 bytes: every \r\n is split over two reads somewhere
def test_windows_line_endings_read_as_newlines_streamed_and_whole(tmp_path, chunk):
    """A Windows file kept '\r' before every '\n': a '\r' token on every line (shown as an extra line in the
    Tokens tab), and a model trained on Unix text could not be fine-tuned on it without mapping '\r'. Read as
    Python's text mode and nanoGPT's prepare.py read it; a lone '\r' is kept."""
    lines = [f"line {i} naïve café\r\n" for i in range(300)] + ["a lone\rcarriage return\r\n", "end\r"]
    p = tmp_path / "w.txt"
    p.write_bytes("".join(lines).encode("utf-8"))
    want = "".join(lines).replace("\r\n", "\n")
    assert load_corpus(str(p)).text == want and want.count("\r") == 2
    prepare(str(p), "char", tmp_path / "p", chunk_bytes=chunk)
    data = load_prepared(tmp_path / "p")
    tok = data.tokenizer
    assert tok.decode(np.asarray(data.train).tolist()) + tok.decode(np.asarray(data.val).tolist()) == want
