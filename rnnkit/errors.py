"""The library's own exception: what the CLI turns into ``error: …`` and exit status 1.

Argument checks raise ``ValueError``/``TypeError`` (see ``rnnkit._checks``); problems
with files, data and runs raise :class:`RnnkitError`. The CLI reports all three
as one line.
"""


class RnnkitError(Exception):
    """A problem the user can fix: a bad file, unusable data, a diverging run."""


class CheckpointError(RnnkitError):
    """A checkpoint that is missing, truncated, tampered with or does not match."""


class DivergenceError(RnnkitError):
    """Training produced a NaN or inf loss or gradient."""


class PerformanceWarning(UserWarning):
    """rnnkit runs, but slower than it could: e.g. the compiled loops were not built."""


class DataNote(UserWarning):
    """Something a reader assumed about a file that its user should know, e.g. the
    encoding it guessed for a file that is not UTF-8. The CLI prints it as a line."""


class ResourceLimitError(RnnkitError):
    """A size (of a model, a sequence, a file) whose memory estimate exceeds what is available."""
