"""User-facing errors. Anything a person can cause (bad file, bad setting) raises one of these with a one-line
message; the CLI prints it without a traceback and the GUI shows it in the panel."""


class PlaygroundError(Exception):
    """Base class: the message is meant for the user, in one line."""


class CorpusError(PlaygroundError):
    pass


class BadUtf8Error(CorpusError):
    """A corpus file is not valid UTF-8. The message names the file and byte; each front end adds how to read
    such bytes as U+FFFD instead (the CLI's --replace-bad-utf8, the window's "replace bad bytes" box)."""


class CorpusTooLarge(CorpusError):
    """A corpus is over the in-memory limit (max_corpus_bytes). It can still be trained on: prepared once into
    token files (engine/prepare.py, `main.py prepare`) and trained from them (`train --data`)."""


class TokenizerError(PlaygroundError):
    pass


class ConfigError(PlaygroundError):
    pass


class CheckpointError(PlaygroundError):
    pass


class TrainingError(PlaygroundError):
    """Raised (or reported) when a run cannot go on: NaN loss, out of memory."""
