"""Seeded synthetic data sets for tests and demos; the same seed gives the same data.

* :func:`seasonal_series` — a noisy periodic series with a known period, so a
  seasonal-naive forecast ``ŷ_t = y_{t−period}`` is a meaningful baseline:

      y_t = a·sin(2πt/p) + (a/2)·cos(4πt/p + 1) + trend·t + level + σ·ε_t,   ε_t ~ N(0, 1)

* :func:`temperature_series` — a daily temperature-like series (°C): an annual
  cycle, a slow linear trend and AR(1) weather noise,

      y_d = 12 + 9·sin(2π(d − 105)/365.25) + 0.0005·d + e_d,   e_d = 0.7·e_{d−1} + 1.5·ε_d

* :func:`dna_motif_dataset` — DNA strings whose class is whether a motif occurs,
  always placed far from the end, so a recurrent classifier must carry the
  information across many steps (the long-term dependency test).

* :func:`date_dataset` — a sequence-to-sequence task: dates written in many
  human formats ("3 March 2021", "Mar 3, 21", "03.03.2021", …) to ISO 8601
  ("2021-03-03").

* :func:`digit_images` — 8×8 images of the digits 0–9, drawn from a 5×7 font
  with the variation of handwriting (placement, slant, stroke weight, gaps,
  noise): a small image-classification set with no download and no dependency.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from rnnkit._checks import check_number, check_positive_int
from rnnkit.data._util import as_rng

__all__ = [
    "seasonal_series",
    "temperature_series",
    "dna_motif_dataset",
    "date_dataset",
    "DATE_FORMATS",
    "digit_images",
]


def seasonal_series(n: int = 500, period: int = 24, amplitude: float = 1.0, trend: float = 0.0,
                    noise: float = 0.1, level: float = 0.0, seed=0) -> np.ndarray:
    """A noisy seasonal series with known ``period`` (see the module docstring).

    Shapes:
        returns float64 (n,)
    """
    where = "seasonal_series"
    n = check_positive_int(n, "n", where)
    period = check_positive_int(period, "period", where, minimum=2)
    amplitude = check_number(amplitude, "amplitude", where)
    trend = check_number(trend, "trend", where)
    noise = check_number(noise, "noise", where, 0.0)
    level = check_number(level, "level", where)
    rng = as_rng(seed, where)
    t = np.arange(n, dtype=np.float64)
    phase = 2.0 * np.pi * t / period
    y = amplitude * np.sin(phase) + 0.5 * amplitude * np.cos(2.0 * phase + 1.0) + trend * t + level
    return y + noise * rng.standard_normal(n)


def temperature_series(n_days: int = 1096, seed=0, start: str = "2000-01-01"):
    """A synthetic daily temperature (°C) series with ISO dates (see the module docstring).

    Returns ``(values, dates)``.

    Shapes:
        values: float64 (n_days,); dates: list of n_days "YYYY-MM-DD" strings
    """
    where = "temperature_series"
    n_days = check_positive_int(n_days, "n_days", where)
    try:
        day0 = _dt.date.fromisoformat(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: start must be an ISO date 'YYYY-MM-DD', got {start!r}") from exc
    rng = as_rng(seed, where)
    d = np.arange(n_days, dtype=np.float64)
    # Day of year of `start` keeps the annual cycle aligned with the calendar.
    doy = day0.timetuple().tm_yday - 1
    cycle = 12.0 + 9.0 * np.sin(2.0 * np.pi * (d + doy - 105.0) / 365.25) + 0.0005 * d
    eps = rng.standard_normal(n_days)
    e = np.empty(n_days)
    e[0] = 1.5 * eps[0] / np.sqrt(1 - 0.7 ** 2)  # the AR(1) stationary spread
    for i in range(1, n_days):
        e[i] = 0.7 * e[i - 1] + 1.5 * eps[i]
    dates = [(day0 + _dt.timedelta(days=i)).isoformat() for i in range(n_days)]
    return cycle + e, dates


def dna_motif_dataset(n: int = 200, length: int = 100, motif: str = "TATAGGCA",
                      early: float = 0.25, seed=0):
    """DNA strings labelled 1 when ``motif`` occurs (placed early) and 0 when it nowhere occurs.

    Class-1 strings carry the motif starting at a random position in the first
    ``early`` fraction of the string, i.e. at least ``(1 − early)·length − len(motif)``
    steps before the end, so the evidence must survive a long way through the
    recurrence. Class-0 strings are checked to contain no copy of the motif.
    The classes alternate in a shuffled order (balanced within one).

    Returns ``(sequences: list[str], labels: int64 (n,))``.
    """
    where = "dna_motif_dataset"
    n = check_positive_int(n, "n", where)
    length = check_positive_int(length, "length", where)
    if not isinstance(motif, str) or not motif or set(motif) - set("ACGT"):
        raise ValueError(f"{where}: motif must be a non-empty string over 'ACGT', got {motif!r}")
    early = check_number(early, "early", where, 0.0, 1.0)
    last_start = int(early * length)
    if last_start + len(motif) > length:
        raise ValueError(f"{where}: motif of length {len(motif)} does not fit at positions "
                         f"0..{last_start} of a string of length {length}")
    rng = as_rng(seed, where)
    alphabet = np.array(list("ACGT"))
    labels = np.arange(n, dtype=np.int64) % 2
    rng.shuffle(labels)
    seqs = []
    for label in labels:
        while True:
            s = "".join(alphabet[rng.integers(0, 4, size=length)])
            if label == 1:
                pos = int(rng.integers(0, last_start + 1))
                s = s[:pos] + motif + s[pos + len(motif):]
                break
            if motif not in s:
                break
        seqs.append(s)
    return seqs, labels


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


# Each format is unambiguous on its own: day/month order is fixed per separator
# ('/' is year-first or month-first US style, '.' and '-' are day-first).
# English names are spelled out here, not taken from the locale, so the data set
# is the same on every machine.
DATE_FORMATS = {
    "d Month yyyy": lambda x: f"{x.day} {_MONTHS[x.month - 1]} {x.year}",
    "yyyy/mm/dd": lambda x: f"{x.year:04d}/{x.month:02d}/{x.day:02d}",
    "Mon d, yy": lambda x: f"{_MONTHS[x.month - 1][:3]} {x.day}, {x.year % 100:02d}",
    "dd.mm.yyyy": lambda x: f"{x.day:02d}.{x.month:02d}.{x.year:04d}",
    "Month d, yyyy": lambda x: f"{_MONTHS[x.month - 1]} {x.day}, {x.year}",
    "d Mon yyyy": lambda x: f"{x.day} {_MONTHS[x.month - 1][:3]} {x.year}",
    "mm/dd/yyyy": lambda x: f"{x.month:02d}/{x.day:02d}/{x.year:04d}",
    "yyyymmdd": lambda x: f"{x.year:04d}{x.month:02d}{x.day:02d}",
    "Weekday, d Month yyyy": lambda x: f"{_WEEKDAYS[x.weekday()]}, {x.day} {_MONTHS[x.month - 1]} {x.year}",
    "dth of Month yyyy": lambda x: f"{_ordinal(x.day)} of {_MONTHS[x.month - 1]} {x.year}",
    "MONTH d yyyy": lambda x: f"{_MONTHS[x.month - 1].upper()} {x.day} {x.year}",
    "d-Mon-yyyy": lambda x: f"{x.day}-{_MONTHS[x.month - 1][:3]}-{x.year}",
    "dd.mm.yy": lambda x: f"{x.day:02d}.{x.month:02d}.{x.year % 100:02d}",
    "Mon dd yyyy": lambda x: f"{_MONTHS[x.month - 1][:3]} {x.day:02d} {x.year}",
}


def date_dataset(n: int = 1000, seed=0, formats=None, start_year: int = 1950, end_year: int = 2049):
    """Human-written dates -> ISO 8601 dates, a sequence-to-sequence task.

    Dates are drawn uniformly from ``start_year``-01-01 to ``end_year``-12-31 and
    each is written in a format drawn uniformly from ``formats`` (names from
    :data:`DATE_FORMATS`; default all). Two-digit years are unambiguous because the
    range spans at most 100 years.

    Returns ``(sources: list[str], targets: list[str])``, e.g.
    ``("Mar 3, 21", "2021-03-03")``.
    """
    where = "date_dataset"
    n = check_positive_int(n, "n", where)
    start_year = check_positive_int(start_year, "start_year", where)
    end_year = check_positive_int(end_year, "end_year", where)
    if not start_year <= end_year <= 9999 or end_year - start_year >= 100:
        raise ValueError(f"{where}: need start_year <= end_year <= 9999 within 100 years "
                         f"(two-digit years must be unambiguous), got {start_year}..{end_year}")
    if formats is None:
        names = list(DATE_FORMATS)
    else:
        names = [formats] if isinstance(formats, str) else list(formats)
        unknown = [f for f in names if f not in DATE_FORMATS]
        if unknown or not names:
            raise ValueError(f"{where}: unknown formats {unknown!r}; choose from {list(DATE_FORMATS)}")
    rng = as_rng(seed, where)
    lo = _dt.date(start_year, 1, 1).toordinal()
    hi = _dt.date(end_year, 12, 31).toordinal()
    days = rng.integers(lo, hi + 1, size=n)
    which = rng.integers(0, len(names), size=n)
    sources, targets = [], []
    for day, k in zip(days, which):
        date = _dt.date.fromordinal(int(day))
        sources.append(DATE_FORMATS[names[int(k)]](date))
        targets.append(date.isoformat())
    return sources, targets


# 5x7 glyphs of 0..9, one string of 5 characters per row ("#" = ink)
_DIGIT_FONT = (
    (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
)


def digit_images(n: int = 2000, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 8×8 grey images of the digits 0–9 and their labels, classes balanced.

    Each is a digit of a 5×7 font drawn as a hand would vary it: placed anywhere in
    the 8×8 frame, each row slanted by up to one pixel, strokes thickened by a
    random amount, ink of random darkness with 5 % of it missing, and Gaussian
    noise (σ 0.1); values in [0, 1]. Read row by row it is a sequence of 8 steps
    of 8 inputs whose class needs rows seen several steps before the last.

    Shapes:
        returns images float64 (n, 8, 8), labels int64 (n,)
    """
    where = "digit_images"
    n = check_positive_int(n, "n", where)
    rng = as_rng(seed, where)
    font = np.array([[[c == "#" for c in row] for row in glyph] for glyph in _DIGIT_FONT], dtype=np.float64)
    labels = rng.permutation(np.arange(n) % 10)
    images = np.zeros((n, 8, 8))
    top = rng.integers(0, 2, n)                       # 7 rows in 8: offset 0 or 1
    left = rng.integers(0, 4, n)                      # 5 columns in 8: offset 0..3
    for k in range(n):
        glyph = font[labels[k]]
        slant = rng.choice([-1, 0, 0, 0, 1])          # a whole-glyph lean, one pixel at most
        for r in range(7):
            shift = int(round(slant * (r - 3) / 3)) + rng.choice([-1, 0, 0, 0, 0, 0, 1])
            c0 = left[k] + shift
            lo, hi = max(c0, 0), min(c0 + 5, 8)
            images[k, top[k] + r, lo:hi] = glyph[r, lo - c0:hi - c0]
    # stroke weight: add a fraction of each pixel's 4 neighbours
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    images = np.clip(images + rng.uniform(0.0, 0.35, (n, 1, 1)) * neighbours, 0.0, 1.0)
    images *= rng.uniform(0.6, 1.0, (n, 1, 1)) * (rng.random((n, 8, 8)) >= 0.05)
    images = np.clip(images + 0.1 * rng.standard_normal((n, 8, 8)), 0.0, 1.0)
    return images, labels.astype(np.int64)
