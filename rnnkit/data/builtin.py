"""Built-in data for demos: nothing is downloaded, everything is already on the machine.

* :func:`stdlib_text` — source code of Python's own standard library, a few
  hundred thousand characters of real, structured text for a character model.
* :func:`builtin_series` — a real daily series when matplotlib is installed (the
  closing prices in matplotlib's bundled sample file ``goog.npz``), otherwise the
  seeded synthetic temperature series of :func:`rnnkit.data.synthetic.temperature_series`.

Both return a small record with a ``name`` and a ``description`` of the source,
so a demo can say what it trained on.
"""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass, field

import numpy as np

from rnnkit._checks import check_choice, check_positive_int
from rnnkit.errors import RnnkitError
from rnnkit.data._util import read_file_text
from rnnkit.data.synthetic import temperature_series

__all__ = ["BuiltinText", "BuiltinSeries", "stdlib_text", "builtin_series", "STDLIB_FILES"]

# Modules present in every CPython >= 3.10, read in this order; mostly prose-rich,
# idiomatic code (docstrings, comments, identifiers), which a char model can learn.
STDLIB_FILES = (
    "textwrap.py", "heapq.py", "bisect.py", "functools.py", "random.py", "statistics.py",
    "fractions.py", "difflib.py", "calendar.py", "shlex.py", "fnmatch.py", "glob.py",
    "contextlib.py", "dataclasses.py", "argparse.py",
)


@dataclass
class BuiltinText:
    """A built-in text: ``text`` plus where it came from."""

    name: str
    description: str
    text: str
    files: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class BuiltinSeries:
    """A built-in series: ``values`` (N, F) float64 with ``columns`` names and ISO ``dates``."""

    name: str
    description: str
    values: np.ndarray
    columns: tuple[str, ...]
    dates: list[str]


def _stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def _read_source(path: str) -> str | None:
    """A source file's text, or None when it cannot be read (it is then skipped)."""
    try:
        return read_file_text(path, "utf-8", "source file")[1]
    except RnnkitError:
        return None


def stdlib_text(max_chars: int | None = 500_000, stdlib_dir: str | None = None) -> BuiltinText:
    """Text of Python standard-library source files, up to ``max_chars`` characters.

    Reads the files of :data:`STDLIB_FILES` in order from the standard library
    directory (``sysconfig.get_paths()["stdlib"]``, or ``stdlib_dir``); when none of
    them is there (an installation without sources), any ``*.py`` files directly
    in that directory in sorted order. The result is deterministic for a given
    Python version. No readable source at all is a :class:`RnnkitError`.
    """
    if max_chars is not None:
        max_chars = check_positive_int(max_chars, "max_chars", "stdlib_text")
    root = os.fspath(stdlib_dir) if stdlib_dir is not None else _stdlib_dir()
    candidates = [os.path.join(root, f) for f in STDLIB_FILES if os.path.isfile(os.path.join(root, f))]
    fallback = not candidates
    if fallback and os.path.isdir(root):
        candidates = sorted(os.path.join(root, f) for f in os.listdir(root)
                            if f.endswith(".py") and os.path.isfile(os.path.join(root, f)))
    parts, used, total = [], [], 0
    for path in candidates:
        text = _read_source(path)
        if not text:
            continue
        if parts:
            text = "\n\n" + text
        if max_chars is not None and total + len(text) > max_chars:
            text = text[: max_chars - total]
        parts.append(text)
        used.append(os.path.basename(path))
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    if not parts:
        raise RnnkitError(f"stdlib_text: no readable Python source files in {root}; "
                          f"use your own text file instead")
    how = "a fixed list of modules" if not fallback else "the sorted *.py files"
    description = (f"Python standard library source ({how} in {root}): "
                   f"{', '.join(used)}; {total} characters")
    return BuiltinText(name="python-stdlib", description=description, text="".join(parts),
                       files=tuple(used))


def _matplotlib_series() -> BuiltinSeries:
    """Daily closes from matplotlib's sample file goog.npz; raises when unavailable."""
    import matplotlib.cbook as cbook  # optional dependency, imported only here

    path = cbook.get_sample_data("goog.npz", asfileobj=False)
    with np.load(path, allow_pickle=False) as npz:
        data = npz["price_data"]
    values = np.asarray(data["close"], dtype=np.float64).reshape(-1, 1)
    dates = [str(d) for d in np.asarray(data["date"]).astype("datetime64[D]")]
    if len(values) < 10 or not np.isfinite(values).all():
        raise ValueError("goog.npz holds no usable closing prices")
    description = (f"daily closing stock price, {dates[0]} to {dates[-1]} ({len(values)} trading days), "
                   f"from matplotlib's bundled sample data file goog.npz")
    return BuiltinSeries(name="stock-close", description=description, values=values,
                         columns=("close",), dates=dates)


def _synthetic_series() -> BuiltinSeries:
    values, dates = temperature_series(n_days=1096, seed=0)
    description = ("synthetic daily temperature in °C, 3 years from 2000-01-01: annual cycle + slow "
                   "trend + AR(1) noise, seed 0 (rnnkit.data.synthetic.temperature_series)")
    return BuiltinSeries(name="synthetic-temperature", description=description,
                         values=values.reshape(-1, 1), columns=("temperature",), dates=dates)


def builtin_series(source: str = "auto") -> BuiltinSeries:
    """A daily series for the forecasting demo, offline.

    ``source="auto"`` uses matplotlib's sample stock prices when matplotlib is
    importable and ships them, else the synthetic temperature series;
    ``"matplotlib"`` insists on the former (:class:`RnnkitError` when missing) and
    ``"synthetic"`` always gives the latter.

    Shapes:
        values: float64 (N, 1); dates: list of N ISO date strings
    """
    check_choice(source, "source", ("auto", "matplotlib", "synthetic"), "builtin_series")
    if source == "synthetic":
        return _synthetic_series()
    try:
        return _matplotlib_series()
    except (ImportError, OSError, KeyError, ValueError) as exc:
        if source == "matplotlib":
            raise RnnkitError(f"builtin_series: matplotlib's sample data is not available ({exc}); "
                              f"use source='synthetic'") from exc
    return _synthetic_series()
