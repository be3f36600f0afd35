"""A pretrained model's byte-level BPE tokenizer from its files, through the Hugging Face `tokenizers` library,
wrapped in the program's BPETokenizer (engine/tokenizers/bpe.py) so every tab and command uses it as any other.

Accepted: a `tokenizer.json` (the library's own format, as in a Hugging Face snapshot), or GPT-2's original pair
`vocab.json` + `merges.txt`, from which the same tokenizer is assembled as Hugging Face's GPT2TokenizerFast does:
BPE over GPT-2's byte alphabet, its pre-tokenizer regex without a prefix space, and `<|endoftext|>` as a special
token when the vocabulary has it. Every file is read as a bounded regular file and checked before the library
parses it. Errors are CheckpointError."""
from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, TokenizerError
from ..safe_read import parse_json, read_regular
from ..tokenizers.bpe import MAX_JSON_BYTES, BPETokenizer

SPECIAL = ("<|endoftext|>",)


def find_tokenizer(folder: Path) -> Path | None:
    """The tokenizer a folder holds: tokenizer.json, else the folder itself when it has vocab.json and
    merges.txt, else None."""
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    return None


def load_tokenizer(path: str | Path) -> BPETokenizer:
    """The tokenizer in `path`: a tokenizer.json file, or a folder with tokenizer.json or vocab.json + merges.txt
    (find_tokenizer). Raises CheckpointError saying what is missing or wrong."""
    p = Path(path)
    if p.is_dir():
        found = find_tokenizer(p)
        if found is None:
            raise CheckpointError(f"{p} holds no tokenizer: it needs tokenizer.json, or vocab.json and merges.txt")
        p = found
    elif not p.exists():
        raise CheckpointError(f"tokenizer file {p} does not exist")
    try:
        if p.is_dir():
            return _from_vocab_merges(p / "vocab.json", p / "merges.txt")
        return BPETokenizer.load(p)
    except TokenizerError as e:
        raise CheckpointError(f"{p}: {e}") from None


def _from_vocab_merges(vocab_path: Path, merges_path: Path) -> BPETokenizer:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    vocab = parse_json(read_regular(vocab_path, MAX_JSON_BYTES, "vocabulary file", TokenizerError),
                       str(vocab_path), TokenizerError, max_depth=2)
    if not isinstance(vocab, dict) or not vocab or not all(type(k) is str and type(v) is int
                                                           for k, v in vocab.items()):
        raise TokenizerError(f"{vocab_path.name} must map token strings to ids")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise TokenizerError(f"{vocab_path.name} has ids that are not 0..n-1, each once")
    raw = read_regular(merges_path, MAX_JSON_BYTES, "merges file", TokenizerError)
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise TokenizerError(f"{merges_path.name} is not UTF-8 (byte offset {e.start})") from None
    merges = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise TokenizerError(f"{merges_path.name} line {n} is not a pair of tokens: {line[:40]!r}")
        if parts[0] not in vocab or parts[1] not in vocab or parts[0] + parts[1] not in vocab:
            raise TokenizerError(f"{merges_path.name} line {n} merges tokens that are not in {vocab_path.name}")
        merges.append((parts[0], parts[1]))
    try:
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        special = [AddedToken(s, special=True, normalized=False) for s in SPECIAL if s in vocab]
        if special:
            tok.add_special_tokens(special)
    except Exception as e:   # the library's own errors for a vocabulary it cannot use
        raise TokenizerError(f"the tokenizers library refused it: {str(e).splitlines()[0][:200]}") from None
    if tok.get_vocab_size() != len(vocab):
        raise TokenizerError(f"{vocab_path.name} gives {tok.get_vocab_size()} tokens, not {len(vocab)}")
    return BPETokenizer(tok)
