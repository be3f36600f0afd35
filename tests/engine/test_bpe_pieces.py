"""A long text's BPE encode goes through encode_batch in pieces (so it does not hold the GIL for a second, which
froze the window while the Tokens tab or a run's preparation encoded a corpus); the ids must be those of one
encode of the whole text, whatever whitespace sits near a cut."""
from engine.tokenizers import bpe


def test_pieces_cut_only_before_a_space_between_two_words():
    text = "ab  cd\n ef gh\tij kl"
    pieces = bpe.split_at_word_starts(text, 3)
    assert "".join(pieces) == text
    for piece in pieces[1:]:
        assert piece.startswith(" ") and not piece[1].isspace()


def test_long_text_encodes_in_pieces_with_the_same_ids(small_text, monkeypatch):
    tok = bpe.BPETokenizer.train(small_text, 400)
    text = (small_text + "  two  spaces, tabs\t\tand\n\nnewlines; é ü 12 34 ,, ok\n") * 3
    monkeypatch.setattr(bpe, "ENCODE_PIECE", 97)
    batches = []
    real = tok.tok.encode_batch
    tok.tok = _Spy(tok.tok, lambda texts: batches.append(len(texts)) or real(texts))
    assert tok.encode(text) == tok.tok.encode(text).ids
    assert batches and batches[0] > 10


class _Spy:
    """The library's Tokenizer is a Rust object whose methods cannot be patched; this wraps it."""

    def __init__(self, inner, encode_batch):
        self._inner, self.encode_batch = inner, encode_batch

    def __getattr__(self, name):
        return getattr(self._inner, name)
