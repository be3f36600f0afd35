"""Tokenizers: round trips (property-tested), vocabularies, readable token strings and the user-facing errors."""
import os
from functools import lru_cache

import pytest
from hypothesis import given, settings, strategies as st
from tokenizers import Tokenizer as HFTokenizer

from engine.errors import TokenizerError
from engine.tokenizers import BPETokenizer, build_tokenizer, tokenizer_from_dict

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n") * 20 + "naïve café — ok\n"


@lru_cache(maxsize=None)
def bpe(vocab_size: int = 300) -> BPETokenizer:
    return build_tokenizer("bpe", CORPUS, vocab_size=vocab_size)


# -- char ----------------------------------------------------------------------------------------------------

def test_char_vocab_is_the_sorted_set_of_corpus_characters():
    tok = build_tokenizer("char", "hello world\n")
    assert tok.chars == "\n dehlorw"
    assert tok.vocab_size == 9
    assert tok.encode("hello") == [4, 3, 5, 5, 6]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=sorted(set(CORPUS)), max_size=200))
def test_char_round_trip_over_the_vocabulary(text):
    tok = build_tokenizer("char", CORPUS)
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_char_unknown_characters_are_named():
    tok = build_tokenizer("char", "abc")
    with pytest.raises(TokenizerError, match=r"2 character\(s\) not in the vocabulary: 'x', 'é'"):
        tok.encode("abxcé")


def test_char_decode_rejects_ids_outside_the_vocabulary():
    tok = build_tokenizer("char", "abc")
    with pytest.raises(TokenizerError, match="token id 3 is outside the vocabulary"):
        tok.decode([0, 3])


def test_char_token_str_makes_whitespace_visible():
    tok = build_tokenizer("char", "a b\n\tc\x01")
    shown = {tok.chars[i]: tok.token_str(i) for i in range(tok.vocab_size)}
    assert shown == {"\t": "\\t", "\n": "\\n", " ": "␣", "a": "a", "b": "b", "c": "c", "\x01": "\\x01"}


# -- word ----------------------------------------------------------------------------------------------------

def test_word_splits_words_punctuation_and_newlines():
    tok = build_tokenizer("word", CORPUS)
    assert tok.split("Speak, speak.\nDon't stop well-known") == [
        "Speak", ",", "speak", ".", "\n", "Don't", "stop", "well-known"]


def test_word_decode_rejoins_without_space_before_punctuation():
    text = 'First Citizen:\nYou are all resolved, rather (to die) than to famish?\n\nHe said "speak" now.'
    tok = build_tokenizer("word", text)
    assert tok.decode(tok.encode(text)) == text


def test_word_vocab_cap_and_unknown_words():
    tok = build_tokenizer("word", "a a a b b c d", vocab_size=3)
    assert tok.tokens == ["<unk>", "a", "b"]
    assert tok.encode("a c zebra b") == [1, 0, 0, 2]
    assert tok.decode([1, 0, 2]) == "a <unk> b"


def test_word_lowercase_option():
    tok = build_tokenizer("word", "The the THE cat", lowercase=True)
    assert tok.tokens == ["<unk>", "the", "cat"]
    assert tok.encode("THE Cat") == [1, 2]
    assert tokenizer_from_dict(tok.to_dict()).encode("THE Cat") == [1, 2]


def test_word_token_str_and_bad_vocab_size():
    tok = build_tokenizer("word", "a\nb")
    assert [tok.token_str(i) for i in range(tok.vocab_size)] == ["<unk>", "\\n", "a", "b"]
    with pytest.raises(TokenizerError, match="at least 2"):
        build_tokenizer("word", "a b", vocab_size=1)
    with pytest.raises(TokenizerError, match="no words"):
        build_tokenizer("word", "   ")


@pytest.mark.parametrize("text, tokens", [
    ("नमस्ते दुनिया।", ["नमस्ते", "दुनिया", "।"]),                       # Devanagari vowel signs and virama
    ("cafe\u0301 nai\u0308ve", ["cafe\u0301", "nai\u0308ve"]),          # decomposed accents
    ("Ça va, señor", ["Ça", "va", ",", "señor"]),                        # precomposed Latin
    ("Привет, мир!", ["Привет", ",", "мир", "!"]),
    ("Γειά σου κόσμε;", ["Γειά", "σου", "κόσμε", ";"]),
    ("مَرْحَبًا، كيف؟", ["مَرْحَبًا", "،", "كيف", "؟"]),                     # Arabic with harakat (marks)
    ("می\u200cخواهم", ["می\u200cخواهم"]),                                # Persian zero-width non-joiner
    ("你好，世界。", ["你好", "，", "世界", "。"]),
    ("👍🏽 👨\u200d👩\u200d👧 🇫🇷 ❤\ufe0f 1\ufe0f\u20e3",                     # skin tone, ZWJ, flag, VS16, keycap
     ["👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤\ufe0f", "1\ufe0f\u20e3"]),
    ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!",        # a tag sequence flag
     ["🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "!"]),
])
def test_word_keeps_words_and_emoji_whole_in_every_script(text, tokens):
    tok = build_tokenizer("word", text)
    assert tok.split(text) == tokens
    assert tok.decode(tok.encode(text)) == text


def test_word_flags_pair_regional_indicators_in_order():
    assert build_tokenizer("word", "x").split("🇫🇷🇩🇪🇯") == ["🇫🇷", "🇩🇪", "🇯"]


def test_word_decode_puts_no_space_around_non_ascii_punctuation():
    text = ("¿Cómo estás? «Bien», dijo él.\n你好，世界。 Привет, мир! Γειά σου κόσμε; नमस्ते दुनिया। "
            "مرحبا، كيف حالك؟\n「東京」へ行く。 I ❤\ufe0f 👍🏽 — fine (really).")
    tok = build_tokenizer("word", text)
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_word_split_loses_no_character_but_spaces(text):
    import re
    from engine.tokenizers.word import TOKEN_RE
    assert "".join(TOKEN_RE.findall(text)) == re.sub(r"[^\S\n]", "", text)


def test_word_mark_table_covers_all_of_unicode():
    from engine.tokenizers import word
    assert word._mark_codepoints() == word._mark_codepoints(planes=range(17))


# -- bpe -----------------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_bpe_round_trips_any_text(text):
    tok = bpe()
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_bpe_vocab_size_and_compression():
    tok = bpe()
    assert tok.vocab_size == 300
    assert len(tok.encode(CORPUS)) < len(CORPUS.encode("utf-8")) / 2


def test_bpe_merges_are_in_order_and_replay_to_the_same_tokens():
    tok = bpe()
    merges = tok.merges()
    assert len(merges) == tok.vocab_size - 256
    vocab = tok.tok.get_vocab()
    assert all(a + b in vocab for a, b in merges)
    rank = {m: r for r, m in enumerate(merges)}
    for word in ("Citizen", "Ġresolved", "Ġspeak", "famish"):
        # Classic BPE: keep merging the adjacent pair that was learned earliest.
        parts = list(word)
        while True:
            pairs = [(rank.get((a, b), len(rank)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            best, i = min(pairs, default=(len(rank), 0))
            if best == len(rank):
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        text = word.replace("Ġ", " ")
        assert parts == tok.tok.encode(text).tokens


def test_bpe_saves_the_libraries_own_json(tmp_path):
    tok = bpe()
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    other = HFTokenizer.from_file(str(path))
    assert other.encode(CORPUS[:300]).ids == tok.encode(CORPUS[:300])
    assert BPETokenizer.load(path).encode("speak up") == tok.encode("speak up")
    d = tok.to_dict()
    assert HFTokenizer.from_str(d["tokenizer_json"]).get_vocab_size() == 300
    assert tokenizer_from_dict(d).encode("naïve café") == tok.encode("naïve café")


def test_bpe_token_str_shows_spaces_newlines_and_partial_bytes():
    tok = bpe()
    newline = tok.tok.token_to_id("Ċ")
    assert tok.token_str(newline) == "\\n"
    spaced = [(t, i) for t, i in tok.tok.get_vocab().items()
              if t.startswith("Ġ") and t[1:].isalpha() and t[1:].isascii()]
    assert spaced
    for t, i in spaced:
        assert tok.token_str(i) == "␣" + t[1:]
    assert tok.token_bytes(tok.tok.token_to_id("Ã")) == b"\xc3"
    assert tok.token_str(tok.tok.token_to_id("Ã")) == "\\xc3"


def test_bpe_rejects_tiny_vocab_and_bad_json(tmp_path):
    with pytest.raises(TokenizerError, match="from 256"):
        build_tokenizer("bpe", CORPUS, vocab_size=100)
    with pytest.raises(TokenizerError, match="to 1,000,000"):    # the tokenizers library overflowed on this
        build_tokenizer("bpe", CORPUS, vocab_size=10**23)
    with pytest.raises(TokenizerError, match="is not valid JSON"):
        tokenizer_from_dict({"kind": "bpe", "tokenizer_json": "{not json"})
    with pytest.raises(TokenizerError, match="nested 100000 levels deep"):
        tokenizer_from_dict({"kind": "bpe", "tokenizer_json": "[" * 100_000 + "]" * 100_000})
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(TokenizerError, match="not a BPE tokenizer"):
        BPETokenizer.load(bad)
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(TokenizerError, match="is a FIFO"):
        BPETokenizer.load(tmp_path / "pipe.json")
    good = tmp_path / "good.json"
    build_tokenizer("bpe", CORPUS, vocab_size=300).save(good)
    assert BPETokenizer.load(good).vocab_size == 300


# -- factory -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,options", [("char", {}), ("word", {"vocab_size": 50}), ("bpe", {"vocab_size": 280})])
def test_to_dict_round_trip(kind, options):
    tok = build_tokenizer(kind, CORPUS, **options)
    again = tokenizer_from_dict(tok.to_dict())
    assert type(again) is type(tok) and again.kind == kind
    assert again.vocab_size == tok.vocab_size
    sample = CORPUS[:120]
    assert again.encode(sample) == tok.encode(sample)
    assert [again.token_str(i) for i in range(tok.vocab_size)] == [tok.token_str(i) for i in range(tok.vocab_size)]


def test_factory_errors_name_what_is_known():
    with pytest.raises(TokenizerError, match="unknown tokenizer 'sentencepiece'; choose one of char, word, bpe"):
        build_tokenizer("sentencepiece", CORPUS)
    with pytest.raises(TokenizerError, match="char tokenizer has no option.* vocab_size; it takes: none"):
        build_tokenizer("char", CORPUS, vocab_size=10)
    with pytest.raises(TokenizerError, match="bpe tokenizer has no option.* lowercase; it takes: vocab_size"):
        build_tokenizer("bpe", CORPUS, lowercase=True)
    with pytest.raises(TokenizerError, match="unknown tokenizer"):
        tokenizer_from_dict({"kind": "nope"})
    with pytest.raises(TokenizerError, match="missing 'chars'"):
        tokenizer_from_dict({"kind": "char"})
