"""Helpers shared by the data readers and generators: files, random generators, numbers."""

from __future__ import annotations

import os

import numpy as np

from rnnkit.errors import RnnkitError


def read_file_text(path, encoding: str = "utf-8", what: str = "file") -> tuple[str, str]:
    """Read and decode a whole file; returns ``(path as str, text)``.

    Newlines are normalized like Python's text mode (``\\r\\n`` and ``\\r`` become
    ``\\n``) and a leading byte-order mark is dropped. A missing file, a
    directory, an unreadable file and bytes that are not valid ``encoding``
    (with the byte offset) are :class:`RnnkitError` naming the path; an unknown
    encoding is a ValueError.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RnnkitError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise RnnkitError(f"expected a {what}, got a directory: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise RnnkitError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"{path}: bytes at offset {exc.start} are not valid {encoding} "
                          f"({exc.reason}); pass the file's encoding") from exc
    except LookupError as exc:
        raise ValueError(f"unknown encoding {encoding!r}") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    return path, text.replace("\r\n", "\n").replace("\r", "\n")


def as_rng(seed, where: str) -> np.random.Generator:
    """A NumPy Generator from an int seed, an existing Generator (used as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"{where}: seed must be an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.default_rng(seed)


def check_number(value, name: str, where: str, low: float | None = None, high: float | None = None,
                 high_open: bool = False) -> float:
    """A finite real number in [low, high] (or [low, high) with ``high_open``) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    too_high = high is not None and (v >= high if high_open else v > high)
    if not np.isfinite(v) or (low is not None and v < low) or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"[{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{where}: {name} must lie in {interval}, got {value}")
    return v
