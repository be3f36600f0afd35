"""User-facing errors. Anything a person can cause (bad file, bad setting) raises one of these with a one-line
message; the CLI prints it without a traceback and the GUI shows it in the panel."""


class PlaygroundError(Exception):
    """Base class: the message is meant for the user, in one line."""


class CorpusError(PlaygroundError):
    pass


class TokenizerError(PlaygroundError):
    pass


class ConfigError(PlaygroundError):
    pass


class CheckpointError(PlaygroundError):
    pass


class TrainingError(PlaygroundError):
    """Raised (or reported) when a run cannot go on: NaN loss, out of memory."""
