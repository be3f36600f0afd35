"""The word tokenizer runs its regex over whitespace-bounded slices of a long text (one findall over a corpus
holds the GIL for a fifth of a second, freezing the window); the tokens must be those of one findall."""
from engine.tokenizers import word


def test_long_text_is_searched_in_slices_with_the_same_tokens(small_text, monkeypatch):
    text = (small_text + "don't well-known x\n\n  tabs\there, ok.\n") * 4
    monkeypatch.setattr(word, "FINDALL_PIECE", 50)
    calls = []
    real = word.TOKEN_RE

    class Spy:
        def findall(self, *args):
            calls.append(args[1:])
            return real.findall(*args)
    monkeypatch.setattr(word, "TOKEN_RE", Spy())
    assert word.find_tokens(text) == real.findall(text)
    assert len(calls) > 10
    for _, end in calls[:-1]:
        assert text[end].isspace()   # each slice ends where a whitespace character starts
    tok = word.WordTokenizer.train(text, 50)
    monkeypatch.setattr(word, "TOKEN_RE", real)
    assert tok.encode(text) == [tok.stoi.get(t, 0) for t in real.findall(text)]
