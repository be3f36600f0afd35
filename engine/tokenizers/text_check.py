"""Text that is not Unicode: a lone surrogate (U+D800..U+DFFF, half of a UTF-16 pair) is a Python `str` character
but no Unicode character, so UTF-8 cannot write it. It reaches the program from a command-line argument holding
bytes that are not UTF-8 (Python decodes argv with the surrogateescape handler), from a clipboard or from code.
Every tokenizer checks its input here, so a prompt, a `tape`/`inspect` text, a window field or a corpus gets one
clear TokenizerError instead of a UnicodeEncodeError or the tokenizers library's TypeError."""
from __future__ import annotations

from ..errors import TokenizerError


def require_unicode(text: str) -> str:
    """`text` unchanged when it holds no lone surrogate; else TokenizerError naming the first one and where it is
    (character offset, 0-based). Costs one UTF-8 encode (about 1 ms per MB of ASCII)."""
    if not isinstance(text, str):
        raise TokenizerError(f"text must be a string, not {type(text).__name__}")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        raise TokenizerError(
            f"the text is not valid Unicode: a lone surrogate U+{ord(bad):04X} at character {e.start} "
            f"(bytes that are not UTF-8, e.g. in a command-line argument, arrive like this); remove it or "
            f"retype the text") from None
    return text
