"""The window's side of fine-tuning (engine.finetune): what the loaded checkpoint's tokenizer cannot encode in the
form's corpus, the token a user may map it to, and where the new run's curve starts on the shared step axis."""
from __future__ import annotations

from collections import Counter

from engine.finetune import unencodable
from engine.tokenizers import tokenizer_from_dict


def missing_symbols(meta: dict, text: str) -> tuple[object, Counter]:
    """(the checkpoint's tokenizer, symbol -> count of what it cannot encode in `text`). One pass over the corpus
    text (about 0.1 s per MB): the window calls it on a worker thread."""
    tok = tokenizer_from_dict(meta["tokenizer"])
    return tok, unencodable(tok, text)


def default_replacement(tokenizer) -> str:
    """The token offered for unencodable symbols: a space for characters (or the vocabulary's first character if
    it has none), <unk> for words."""
    if tokenizer.kind == "word":
        return "<unk>"
    return " " if " " in tokenizer.stoi else next(iter(tokenizer.stoi))


def start_step(meta: dict) -> int:
    """Where a run fine-tuned from this checkpoint starts on the step axis: after the checkpoint's own steps,
    which themselves start after its parent's if it was fine-tuned."""
    parent = meta.get("parent") or {}
    own_start = int(parent.get("offset", 0)) + int(parent.get("step", 0)) if parent else 0
    return own_start + int(meta.get("step", 0))

