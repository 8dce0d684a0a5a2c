r"""Files of many series, one per line: the Monash forecasting archive's ``.tsf`` and the M4
competition's CSV.

``.tsf`` (:func:`read_tsf`): a header, then one series a line.

    # comments
    @relation tourism
    @attribute series_name string
    @attribute start_timestamp date
    @frequency monthly
    @horizon 24
    @missing false
    @equallength false
    @data
    T1:1979-01-01 00-00-00:1149.87,1053.8,1388.88,...

Each data line holds the attributes in the order of the ``@attribute`` lines, separated by
``:``, then the series' values separated by ``,`` (``?`` is missing). The first string
attribute names the series (else its line number does). With a ``start_timestamp`` and a
``@frequency``, each row gets its date: ISO ``YYYY`` (yearly), ``YYYY-MM`` (monthly,
quarterly: three months a step), ``YYYY-MM-DD`` (daily, weekly) or ``YYYY-MM-DD HH:MM:SS``
(hourly and finer), so the seasonal period and calendar features come from the dates as
they do for a CSV. Missing values inside a series are filled by linear interpolation (a
note says how many); those at its ends are dropped.
"""

from __future__ import annotations

import numpy as np

from rnnkit.data._util import is_number
from rnnkit.errors import RnnkitError

__all__ = ["read_tsf", "TsfData", "FREQUENCIES", "is_tsf", "read_series_rows", "series_rows_layout",
           "many_series"]

#: a @frequency -> (the step as a numpy unit and count, the seasonal period when no dates say it)
FREQUENCIES = {"yearly": (("Y", 1), None), "quarterly": (("M", 3), 4), "monthly": (("M", 1), 12),
               "weekly": (("D", 7), 52), "daily": (("D", 1), 7), "hourly": (("m", 60), 24),
               "half_hourly": (("m", 30), 48), "30_minutes": (("m", 30), 48), "15_minutes": (("m", 15), 96),
               "10_minutes": (("m", 10), 144), "minutely": (("m", 1), 60), "4_seconds": (("s", 4), None)}


def is_tsf(path) -> bool:
    """Whether ``path`` names a ``.tsf`` file (``.tsf.gz`` too)."""
    from rnnkit.data._util import data_suffix

    return data_suffix(path) == ".tsf"


class TsfData:
    """The series of a ``.tsf`` file: ``ids``, per id ``values[id]`` (N,) and ``dates[id]``
    (N ISO labels, or None without a start or a known frequency), the file's ``frequency``,
    ``horizon`` and ``period`` (from the frequency) when it gives them, and ``notes``."""

    def __init__(self, ids, values, dates, frequency, horizon, notes):
        self.ids, self.values, self.dates = ids, values, dates
        self.frequency, self.horizon, self.notes = frequency, horizon, notes
        self.period = FREQUENCIES.get(frequency, (None, None))[1] if frequency else None


def _iso(start: str, n: int, step, path: str, line: int) -> list[str]:
    """n dates from ``start`` ("1979-01-01 00-00-00") one ``step`` apart, as ISO labels."""
    text = start.strip()
    day, _, clock = text.partition(" ")
    try:
        t0 = np.datetime64(day + ("T" + clock.replace("-", ":") if clock else ""), "s")
    except ValueError:
        raise RnnkitError(f"{path}: line {line}: start timestamp {start!r} is not 'YYYY-MM-DD HH-MM-SS'") from None
    unit, k = step
    if unit in ("Y", "M"):
        t = t0.astype(f"datetime64[{unit}]") + k * np.arange(n)
        return [str(v) for v in t]                                   # YYYY or YYYY-MM
    t = t0 + (k * np.arange(n)).astype(f"timedelta64[{unit}]")
    if unit == "D":
        return [str(v)[:10] for v in t]
    return [str(v).replace("T", " ") for v in t]


def read_tsf(path) -> TsfData:
    """Read a ``.tsf`` file (module docstring). A header or data line that does not fit is
    an error naming the file and line."""
    from rnnkit.data._util import read_file_text

    path, text = read_file_text(path, "auto", ".tsf file")
    attrs, frequency, horizon, data_at = [], None, None, None
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.lower() == "@data":
            data_at = i + 1
            break
        if not s.startswith("@"):
            raise RnnkitError(f"{path}: line {i + 1}: expected a header line ('@attribute', '@frequency', …) "
                              f"before '@data', got {s[:40]!r}")
        key, _, value = s[1:].partition(" ")
        key, value = key.lower(), value.strip()
        if key == "attribute":
            name, _, kind = value.partition(" ")
            if kind.strip().lower() not in ("string", "numeric", "date"):
                raise RnnkitError(f"{path}: line {i + 1}: attribute type {kind.strip()!r}, expected string, "
                                  f"numeric or date")
            attrs.append((name, kind.strip().lower()))
        elif key == "frequency":
            frequency = value.lower()
        elif key == "horizon":
            try:
                horizon = int(value)
            except ValueError:
                raise RnnkitError(f"{path}: line {i + 1}: @horizon {value!r} is not a whole number") from None
    if data_at is None:
        raise RnnkitError(f"{path}: no '@data' line: not a .tsf file of the Monash forecasting archive")
    name_at = next((k for k, (_, kind) in enumerate(attrs) if kind == "string"), None)
    date_at = next((k for k, (_, kind) in enumerate(attrs) if kind == "date"), None)
    step = FREQUENCIES.get(frequency, (None,))[0] if frequency else None
    ids, values, dates, filled, trimmed = [], {}, {}, 0, 0
    for i in range(data_at, len(lines)):
        s = lines[i].strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(":", len(attrs))
        if len(parts) != len(attrs) + 1:
            raise RnnkitError(f"{path}: line {i + 1}: expected {len(attrs)} attributes and the values, "
                              f"separated by ':'; got {len(parts)} fields")
        key = parts[name_at].strip() if name_at is not None else f"series{len(ids) + 1}"
        if key in values:
            raise RnnkitError(f"{path}: line {i + 1}: series {key!r} appears twice")
        cells = parts[-1].split(",")
        try:
            v = np.array([np.nan if c.strip() == "?" else float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if c.strip() != "?" and not is_number(c))
            raise RnnkitError(f"{path}: line {i + 1}: non-numeric value {bad.strip()!r} in series {key!r}") from None
        ok = np.flatnonzero(np.isfinite(v))
        if len(ok) < 2:
            raise RnnkitError(f"{path}: line {i + 1}: series {key!r} has {len(ok)} values; each needs at least 2")
        first, last = ok[0], ok[-1] + 1
        trimmed += len(v) - (last - first)
        v = v[first:last]
        gaps = ~np.isfinite(v)
        if gaps.any():
            filled += int(gaps.sum())
            idx = np.arange(len(v))
            v[gaps] = np.interp(idx[gaps], idx[~gaps], v[~gaps])
        ids.append(key)
        values[key] = v
        dates[key] = None
        if date_at is not None and step is not None:
            dates[key] = _iso(parts[date_at], first + len(v), step, path, i + 1)[first:]
    if not ids:
        raise RnnkitError(f"{path}: no series after '@data'")
    notes = []
    if frequency and step is None:
        notes.append(f"{path}: @frequency {frequency!r} is not one rnnkit dates ({', '.join(FREQUENCIES)}): "
                     f"rows without dates")
    if filled:
        notes.append(f"{path}: {filled} missing value{'s' if filled > 1 else ''} ('?') inside the series filled "
                     f"by linear interpolation")
    if trimmed:
        notes.append(f"{path}: {trimmed} missing value{'s' if trimmed > 1 else ''} ('?') at the ends of series "
                     f"dropped")
    return TsfData(ids, values, dates, frequency, horizon, notes)


#: the M4 competition's horizon of each frequency (Makridakis, Spiliotis & Assimakopoulos 2020)
M4_HORIZONS = {"yearly": 6, "quarterly": 8, "monthly": 18, "weekly": 13, "daily": 14, "hourly": 48}


def series_rows_layout(path, max_rows: int = 200) -> bool:
    """Whether a CSV holds one series per row, as the M4 competition's ``Monthly-train.csv``
    does: a header, then rows of an id (text, never a date) and at least 9 numbers, each
    row's empty cells all at its end (series of different lengths)."""
    from rnnkit.data._util import csv_head
    from rnnkit.data.dates import is_date

    rows = csv_head(path, max_rows + 1)
    if rows is None or len(rows) < 3 or len(rows[0]) < 10:
        return False
    body = rows[1:-1] if len(rows) > max_rows else rows[1:]          # the last may be cut by the 1 MB read
    ids = [r[0].strip() for r in body]
    if len(set(ids)) < len(ids) or any(not i or is_number(i) or is_date(i) for i in ids):
        return False
    for r in body:
        cells = [c.strip() for c in r[1:]]
        n = len(cells) - next((k for k, c in enumerate(reversed(cells)) if c), len(cells))
        if n < 9 or not all(is_number(c) for c in cells[:n]):
            return False
    return True


def read_series_rows(path) -> TsfData:
    """The series of a CSV of one series per row (:func:`series_rows_layout`): ids from the
    first column, values from the rest up to the row's first empty cell. The frequency is
    the word of the file's name that names one (``Monthly-train.csv``), which gives the
    seasonal period and, as in M4, the horizon; rows carry no dates."""
    import csv
    import io
    import os
    import re

    from rnnkit.data._util import read_file_text

    path, text = read_file_text(path, "auto", "CSV file")
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)][1:]
    ids, values, dates = [], {}, {}
    for line, r in rows:
        key = r[0].strip()
        if key in values:
            raise RnnkitError(f"{path}, line {line}: series {key!r} appears twice")
        cells = [c.strip() for c in r[1:]]
        n = len(cells) - next((k for k, c in enumerate(reversed(cells)) if c), len(cells))
        try:
            v = np.array([float(c) for c in cells[:n]])
        except ValueError:
            bad = next(c for c in cells[:n] if not is_number(c))
            raise RnnkitError(f"{path}, line {line}: {bad!r} in series {key!r} is not a number (or an empty cell "
                              f"before its last value)") from None
        if n < 2:
            raise RnnkitError(f"{path}, line {line}: series {key!r} has {n} values; each needs at least 2")
        ids.append(key)
        values[key], dates[key] = v, None
    if not ids:
        raise RnnkitError(f"{path}: no series below the header")
    words = re.findall(r"[a-z]+", os.path.basename(path).lower())
    frequency = next((w for w in words if w in FREQUENCIES), None)
    notes = [f"{path}: one series per row ({len(ids):,} series)"
             + (f", {frequency} (the file's name)" if frequency else ", frequency unknown (name it in the file's "
                                                                     "name, or give --period)")]
    return TsfData(ids, values, dates, frequency, M4_HORIZONS.get(frequency), notes)


def many_series(path):
    """The series of a file of many series, one per line (a ``.tsf``, or a CSV of one series
    per row), else None."""
    if is_tsf(path):
        return read_tsf(path)
    return read_series_rows(path) if series_rows_layout(path) else None
