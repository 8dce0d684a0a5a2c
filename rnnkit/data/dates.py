r"""Dates as CSV files write them -> ``datetime64[s]``.

ISO 8601 is read first, label by label: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]`` (or with
``T``), ``YYYY-MM``, or a bare year ``YYYY``. A time with a UTC offset (``+02:00``,
``-0500``, ``Z``) is read as the same instant in UTC, so a series that crosses a change
to or from summer time keeps an even step.

The other labels of a column are read with one format for them all (a column mixes at
most ISO with one other: rows that ``fill`` added to a column of 01/31/2011 dates are
ISO), chosen among

    year first      2011/01/31  2011.01.31  2011/01  2011.01  2011M01  20110131  2011013112 (hour)
                    201101311230 (hour and minute)
    year last       31/01/2011  01/31/2011  31.01.2011  31-01-2011  01-31-2011
    month names     1991 Jul  Jul 1991  Jul-1991  1991-Jul  July 1991  Jul 4, 1991
                    Jan-1-1995  01-Jan-1995  1 January 1995  Jul-91  01-Jan-95
    quarters        1990Q1  1990 Q1  1990-Q1  Q1 1990  Q1-1990   (the quarter's first month)
    Unix time       1609459200 (seconds since 1970-01-01 UTC, 9–10 digits) or 1609459200000
                    (milliseconds, 12–13 digits), every label of the column; where the digits
                    also read as a compact date and hour, the reading that steps more regularly

each optionally followed by a time ``HH:MM[:SS]`` or ``HH:MM[:SS] AM/PM`` (month names in
English, any case; a comma is read as a space). The formats that read every label
compete; the one whose dates step most regularly wins (the fewest steps backwards, then
the smallest spread of the steps about their median), so ``01/02/2011`` is the first of
February in a column that steps by months and the second of January in one that steps
by days; a tie goes to the earlier format above (day before month). A two-digit year
is 19YY from 69 on, else 20YY (Python's ``%y``).
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = ["parse_dates", "is_date", "weekdays_only", "next_weekdays"]

_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?"
                  r"\s?(Z|[+-]\d{2}:?\d{2})?$")
_QUARTER = (re.compile(r"^(\d{4})\s*[-_ ]?\s*q([1-4])$", re.I), re.compile(r"^q([1-4])\s*[-_ ]?\s*(\d{4})$", re.I))
_DAYS = ("%Y/%m/%d", "%Y.%m.%d", "%Y/%m", "%Y.%m", "%YM%m", "%Y%m%d", "%Y%m%d%H", "%Y%m%d%H%M",
         "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y",
         "%Y %b", "%b %Y", "%b-%Y", "%Y-%b", "%Y %B", "%B %Y", "%b %d %Y", "%B %d %Y", "%b-%d-%Y",
         "%d-%b-%Y", "%d %b %Y", "%d %B %Y", "%b-%y", "%d-%b-%y")
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")
FORMATS = tuple(d + t for d in _DAYS for t in _TIMES if not (t and "%H" in d))   # a compact hour takes no time
_SAMPLE = 24                               # labels each format must read before it reads them all
_EXPECTED = ("ISO YYYY-MM-DD[ HH:MM[:SS]], YYYY-MM or YYYY, or one format for the whole column "
             "such as 31/01/2011, 01/31/2011, 2011/01/31, Jan 2011, 1990Q1, or Unix time (rnnkit.data.dates)")


def _iso(label: str, where: str = "dates", row: int = 0):
    """The ISO date ``label`` names, or None when it is not written as one; an ISO label of
    a day that does not exist (2021-02-30) is an error."""
    m = _ISO.match(label)
    if not m:
        return None
    y, mo, d, hh, mm, ss = (int(g) if g else None for g in m.groups()[:6])
    try:
        t = np.datetime64(f"{y:04d}-{mo or 1:02d}-{d or 1:02d}T{hh or 0:02d}:{mm or 0:02d}:{ss or 0:02d}", "s")
    except ValueError:
        raise RnnkitError(f"{where}: row {row + 1}: {label!r} is not a valid date") from None
    zone = m.group(7)
    if zone and zone != "Z":             # a UTC offset: the time in UTC, so steps stay even across DST
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        t -= np.timedelta64(sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60), "s")
    return t


def _quarter(label: str):
    for k, pattern in enumerate(_QUARTER):
        m = pattern.match(label)
        if m:
            year, q = (m.group(1), m.group(2)) if k == 0 else (m.group(2), m.group(1))
            return np.datetime64(f"{int(year):04d}-{3 * int(q) - 2:02d}-01T00:00:00", "s")
    return None


def _clean(label) -> str:
    return " ".join(str(label).replace(",", " ").split())


def _read_all(labels: list, fmt: str):
    """((N,) datetime64[s] of ``labels`` under ``fmt`` ("quarter" or a strptime format), None)
    or (None, the index of the first label it cannot read)."""
    out = np.empty(len(labels), dtype="datetime64[s]")
    for i, s in enumerate(labels):
        if fmt == "quarter":
            v = _quarter(s)
            if v is None:
                return None, i
            out[i] = v
            continue
        try:
            out[i] = np.datetime64(datetime.strptime(s, fmt), "s")
        except ValueError:
            return None, i
    return out, None


_EPOCH = re.compile(r"^(\d{9,10}|\d{12,13})(\.\d+)?$")


def _epoch(labels: list):
    """Unix time: every label a whole number of 9–10 digits (seconds since 1970-01-01 UTC:
    1973 to 2286) or of 12–13 (milliseconds), all of one kind -> (N,) datetime64[s]; else None."""
    m = [_EPOCH.match(s) for s in labels]
    if not m or not all(m) or len({len(x.group(1)) > 10 for x in m}) != 1:
        return None
    v = np.array([float(s) for s in labels])
    if len(m[0].group(1)) > 10:
        v = v / 1000.0
    return np.floor(v).astype(np.int64).astype("datetime64[s]")


def _irregularity(d: np.ndarray) -> tuple:
    """(steps backwards, spread of the steps about their median): lower is more regular."""
    if len(d) < 2:
        return 0, 0.0
    diffs = np.diff(d).astype(np.int64).astype(np.float64)
    med = np.median(diffs)
    return int((diffs < 0).sum()), float(np.mean(np.abs(diffs - med)) / (abs(med) + 1.0))


def _column_format(labels: list):
    """(the column parsed under the most regular format that reads every label, None), or
    (None, the index of a label that stops it: the first one that the first format to read
    a sample of the labels cannot read, else the first one that no format reading the
    first label reads)."""
    idx = np.unique(np.linspace(0, len(labels) - 1, min(len(labels), _SAMPLE)).astype(int))
    sample = [labels[i] for i in idx]
    best, best_key, bad = None, None, None
    for k, fmt in enumerate(("quarter",) + FORMATS):
        if _read_all(sample, fmt)[0] is None:
            continue
        parsed, stop = _read_all(labels, fmt)
        if parsed is None:
            bad = stop if bad is None else bad
            continue
        key = (*_irregularity(parsed), k)
        if best_key is None or key < best_key:
            best, best_key = parsed, key
    if best is not None:
        return best, None
    if bad is None:              # no format reads the sample: where the first label's formats stop
        stops = [_read_all(labels, f)[1] for f in ("quarter",) + FORMATS if _read_all(labels[:1], f)[0] is not None]
        bad = max(stops) if stops else 0
    return None, bad


def parse_dates(labels, where: str = "dates") -> np.ndarray:
    """Date labels (module docstring) -> ``datetime64[s]``; an unreadable one is an
    :class:`RnnkitError` naming its row and value.

    Shapes:
        labels: N strings -> (N,) datetime64[s]
    """
    labels = [_clean(s) for s in labels]
    out = np.empty(len(labels), dtype="datetime64[s]")
    other = []                                  # rows that are not ISO
    for i, s in enumerate(labels):
        v = _iso(s, where, i)
        if v is None:
            other.append(i)
        else:
            out[i] = v
    if not other:
        return out
    epoch = _epoch([labels[i] for i in other])
    parsed, bad = _column_format([labels[i] for i in other])
    if epoch is not None and (parsed is None or _irregularity(epoch) < _irregularity(parsed)):
        out[other] = epoch           # Unix time, unless compact digits (2011013112) step more regularly
        return out
    if parsed is None:
        i = other[bad]
        raise RnnkitError(f"{where}: row {i + 1}: cannot read {labels[i]!r} as a date; expected {_EXPECTED}")
    out[other] = parsed
    return out


def is_date(label) -> bool:
    """Whether one label reads as a date in some format of :func:`parse_dates` (a number,
    such as 2011 or 2011.5, does not: it is a value)."""
    s = _clean(label)
    try:
        float(s)
        return False
    except ValueError:
        pass
    try:
        if _iso(s) is not None:
            return True
    except RnnkitError:
        return False
    return bool(s) and _column_format([s])[0] is not None


def weekdays_only(dates) -> bool:
    """Whether ``dates`` (datetime64) are the business days of a daily series: whole
    days apart, none on a Saturday or Sunday, and at least one weekend skipped between
    two rows (as prices, trading volumes and office data are). Such a series steps one
    business day at a time: Friday to Monday is one step, and a weekday without a row
    (a holiday) is a gap."""
    d = np.asarray(dates, dtype="datetime64[s]")
    if len(d) < 3:
        return False
    days = d.astype("datetime64[D]")
    if (d != days).any() or not np.is_busday(days).all():
        return False
    diffs = np.diff(days).astype(np.int64)
    return bool((diffs >= 1).all() and np.median(diffs) == 1
                and (np.busday_count(days[:-1], days[1:]) < diffs).any())


def next_weekdays(last, horizon: int) -> np.ndarray:
    """The ``horizon`` weekdays after the date ``last``, as datetime64[s]."""
    day = np.datetime64(last, "D")
    return np.busday_offset(day, np.arange(1, horizon + 1), roll="forward").astype("datetime64[s]")
