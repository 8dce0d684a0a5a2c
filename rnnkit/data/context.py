r"""Context for forecasting: dates and calendar features, covariates, many series in one file.

Dates: ISO ``YYYY-MM-DD[ HH:MM[:SS]]``, ``YYYY-MM`` or ``YYYY``, or one other format for a
whole column (31/01/2011, 01/31/2011, Jan 2011, 1990Q1, ...);
:func:`rnnkit.data.dates.parse_dates` turns them into ``datetime64[s]`` and names the
first row it cannot read. The step of a series is the median difference of its dates
(:func:`infer_step`); future dates continue it (calendar months when the step is about a
month or a quarter, so month ends stay ends).

Calendar features (:func:`calendar_features`), as sin/cos pairs so that the end of a
cycle meets its start:

    hour     φ = 2π (hour + minute/60) / 24          when the step is under a day
    weekday  φ = 2π weekday / 7   (Monday = 0)       when the step is under a week
    month    φ = 2π (month − 1) / 12                 when the step is under a year
    feature pair: (sin φ, cos φ)

Known-ahead inputs (calendar features, or ``future_covariates`` such as a holiday flag
or a weather forecast) enter a window through its last ``horizon`` steps:
:func:`context_windows` builds, for an origin o (the first forecast row),

    steps  o−L … o−1 : [series, past covariates, future covariates, 0]
    steps  o … o+H−1 : [0,      0,               future covariates, 1]

(the last column flags the future steps), so one many-to-one network reads the past and
then the known future before it forecasts rows o … o+H−1.

Long files (:func:`read_long_csv`): one row per (series id, time), the rows of a series
in time order, possibly interleaved with other series: ``id,date,value,...``.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.data._util import read_file_text
from rnnkit.data.dates import next_weekdays, parse_dates, weekdays_only
from rnnkit.data.series import AHEAD_NEEDS, MISSING_TOKENS, number, repeated_dates_note
from rnnkit.data.sniff import sniff_delimiter
from rnnkit.errors import RnnkitError

__all__ = ["parse_dates", "infer_step", "future_dates", "calendar_features", "context_windows",
           "read_long_csv", "LongSeries"]

_DAY = np.timedelta64(86400, "s")


def infer_step(dates: np.ndarray) -> np.timedelta64:
    """The median difference between consecutive dates (which must increase)."""
    dates = np.asarray(dates, dtype="datetime64[s]")
    if len(dates) < 2:
        raise RnnkitError("infer_step: need at least 2 dates to know the step")
    diffs = np.diff(dates)
    if (diffs <= np.timedelta64(0, "s")).any():
        i = int(np.argmax(diffs <= np.timedelta64(0, "s")))
        raise RnnkitError(f"dates must increase: row {i + 2} ({dates[i + 1]}) is not after row {i + 1} "
                          f"({dates[i]})")
    return np.median(diffs.astype(np.int64)).astype("timedelta64[s]")


def _months(step: np.timedelta64) -> int:
    """Calendar months per step when the step is about a month, a quarter or a year; else 0."""
    days = step / _DAY
    for months, lo, hi in ((1, 27, 32), (3, 88, 93), (6, 180, 185), (12, 364, 367)):
        if lo <= days <= hi:
            return months
    return 0


def future_dates(dates: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` dates after the last one, one step apart (calendar months for a
    step of about a month, a quarter or a year; the next weekdays when the dates are
    weekdays only, :func:`rnnkit.data.dates.weekdays_only`).

    Shapes:
        dates (N,) -> (horizon,) datetime64[s]
    """
    horizon = check_positive_int(horizon, "horizon", "future_dates")
    dates = np.asarray(dates, dtype="datetime64[s]")
    step = infer_step(dates)
    last = dates[-1]
    if weekdays_only(dates):
        return next_weekdays(last, horizon)
    k = _months(step)
    if k:
        month0 = last.astype("datetime64[M]")
        offset = last - month0.astype("datetime64[s]")     # day and time within the month
        months = month0 + np.arange(1, horizon + 1) * k
        return months.astype("datetime64[s]") + offset
    return last + np.arange(1, horizon + 1) * step


def calendar_features(dates: np.ndarray, step: np.timedelta64 | None = None):
    """Sin/cos calendar features suited to the step (module docstring); returns (values, names).

    Shapes:
        dates (N,) -> values (N, K) float64, K ∈ {0, 2, 4, 6}; names K strings
    """
    dates = np.asarray(dates, dtype="datetime64[s]")
    step = infer_step(dates) if step is None else step
    days = step / _DAY
    cols, names = [], []
    secs = (dates - dates.astype("datetime64[D]")).astype(np.int64)
    weekday = ((dates.astype("datetime64[D]").astype(np.int64) + 3) % 7)    # 1970-01-01 was a Thursday
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    for name, phase, used in (("hour", secs / 86400.0, days < 1.0),
                              ("weekday", weekday / 7.0, days < 7.0),
                              ("month", month / 12.0, days < 360.0)):
        if used:
            cols += [np.sin(2 * math.pi * phase), np.cos(2 * math.pi * phase)]
            names += [f"{name}_sin", f"{name}_cos"]
    values = np.stack(cols, axis=1) if cols else np.zeros((len(dates), 0))
    return values, names


def context_windows(values, origins, lookback: int, horizon: int, past_cov=None, future_cov=None) -> np.ndarray:
    """Input windows of L past and H known-future steps (module docstring).

    ``future_cov`` needs rows up to the last origin + H − 1 (it may be longer than ``values``).

    Shapes:
        values (N, F), past_cov (N, Cp) or None, future_cov (≥ max origin + H, Cf) or None,
        origins (n,) with lookback <= o  ->  (n, L + H, F + Cp + Cf + 1)
    """
    L, H = lookback, horizon
    values = np.asarray(values, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    n, F = len(origins), values.shape[1]
    Cp = 0 if past_cov is None else past_cov.shape[1]
    Cf = 0 if future_cov is None else future_cov.shape[1]
    if n and (origins.min() < L or origins.max() > len(values)):
        raise ValueError(f"context_windows: origins must lie in [{L}, {len(values)}], got "
                         f"{origins.min()} … {origins.max()}")
    out = np.zeros((n, L + H, F + Cp + Cf + 1))
    past = origins[:, None] + np.arange(-L, 0)                            # (n, L) row indices
    out[:, :L, :F] = values[past]
    if Cp:
        out[:, :L, F:F + Cp] = past_cov[past]
    if Cf:
        rows = origins[:, None] + np.arange(-L, H)
        if rows.max() >= len(future_cov):
            raise ValueError(f"context_windows: future_cov has {len(future_cov)} rows, the windows need "
                             f"{int(rows.max()) + 1}")
        out[:, :, F + Cp:F + Cp + Cf] = future_cov[rows]
    out[:, L:, -1] = 1.0
    return out


class LongSeries:
    """Many series read from one long CSV: ``ids`` in order of first appearance and, per id,
    ``values[id]`` (N_id, F), ``dates[id]`` (N_id labels or None)."""

    def __init__(self, ids, values, dates, columns, path=None, notes=None, labels=None, ahead=None):
        self.ids, self.values, self.dates, self.columns, self.path = ids, values, dates, columns, path
        #: per id, the values of the columns known ahead in its rows ahead (``read_long_csv``'s
        #: ``ahead``), (n, k) in the order of ``columns``, or None
        self.ahead = dict(ahead or {})
        #: what the reader changed in the dates (rows repeating a date dropped), for the user
        self.notes = list(notes or [])
        #: {column: its labels} for each column of labels read as indicator columns
        self.labels = dict(labels or {})

    def __len__(self) -> int:
        return len(self.ids)


def read_long_csv(path, series_column, columns, date_column=None, delimiter: str | None = None,
                  labels: dict | None = None, ahead=None) -> LongSeries:
    """Read a long CSV (one row per series and time) into one block of rows per series id.

    ``columns``: the numeric columns to keep (names), in that order. Rows keep their
    file order within a series; a row whose date repeats the previous row of its series is
    dropped (the first of each date kept, said in ``notes``). ``labels`` names columns that
    may hold labels, as in :func:`rnnkit.data.read_csv`: such a column becomes its
    indicator columns ("column=label"), its labels in ``LongSeries.labels``. An unknown
    column, a non-numeric or empty value, and a series with fewer than 2 rows are
    :class:`RnnkitError` naming the file (and line).

    ``ahead`` names columns known ahead of time, as in :func:`rnnkit.data.read_csv`: the
    last rows of a series whose other columns are all empty are its rows ahead, not part
    of the series; their values of those columns are ``LongSeries.ahead[id]``.
    """
    from rnnkit.data.tsf import is_tsf, series_rows_layout

    if is_tsf(path) or series_rows_layout(path):
        return _long_from_tsf(path, columns, labels, ahead)
    path, text = read_file_text(path, "auto", "CSV file")
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise RnnkitError(f"{path}: need a header and data rows")
    header = [h.strip() for h in rows[0][1]]

    def index(name, what):
        if name not in header:
            raise RnnkitError(f"{path}: no {what} column {name!r}; available columns: {', '.join(header)}")
        return header.index(name)

    sid = index(series_column, "series")
    cols = [index(c, "value") for c in columns]
    did = None if date_column is None else index(date_column, "date")
    labels = dict(labels or {})
    text_cols = [k for k, c in enumerate(cols) if header[c] in labels]     # label candidates, kept as text
    ahead = [ahead] if isinstance(ahead, str) else list(ahead or [])
    ahead_lines = _rows_ahead(rows[1:], sid, [c for c in cols if header[c] not in ahead]) if ahead else set()
    ids, values, dates, repeats, texts, kept_lines = [], {}, {}, [], {}, {}
    for line, r in rows[1:]:
        if len(r) < len(header):
            raise RnnkitError(f"{path}: line {line} has {len(r)} fields, expected {len(header)}")
        key = r[sid].strip()
        if key not in values:
            ids.append(key)
            values[key], dates[key], texts[key], kept_lines[key] = [], ([] if did is not None else None), [], []
        if did is not None and dates[key] and dates[key][-1] == r[did].strip():
            repeats.append((line, key, dates[key][-1]))
            continue
        vals = []
        for k, c in enumerate(cols):
            cell = r[c].strip()
            if k in text_cols:
                vals.append(0.0)
                continue
            if cell.lower() in MISSING_TOKENS:
                if line in ahead_lines and header[c] not in ahead:
                    vals.append(np.nan)
                    continue
                if line in ahead_lines:
                    raise RnnkitError(f"{path}: line {line}, column {header[c]!r}: {AHEAD_NEEDS}")
                raise RnnkitError(f"{path}: line {line}, column {header[c]!r}: empty value (series {key!r}); "
                                  f"fill the gap first")
            v = number(cell, path, line, header[c], delimiter)
            if v is None:
                raise RnnkitError(f"{path}: line {line}, column {header[c]!r}: non-numeric value {cell!r}")
            vals.append(v)
        values[key].append(vals)
        texts[key].append([r[cols[k]].strip() for k in text_cols])
        kept_lines[key].append(line)
        if did is not None:
            dates[key].append(r[did].strip())
    n_ahead = {key: sum(line in ahead_lines for line in kept_lines[key]) for key in ids}
    for key in ids:
        if len(values[key]) - n_ahead[key] < 2:
            raise RnnkitError(f"{path}: series {key!r} has {len(values[key]) - n_ahead[key]} row; "
                              f"each series needs at least 2")
    blocks = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    names = [header[c] for c in cols]
    found = _long_labels(path, ids, blocks, texts, kept_lines, text_cols, names, labels, ahead_lines, delimiter)
    notes = []
    if repeats:
        line, key, date = repeats[0]
        notes.append(repeated_dates_note(path, len(repeats), f"line {line}, series {key!r}, {date}", " in its series"))
    known = [name in ahead for name in names]
    if found:
        expanded, known = [], []
        for k, name in enumerate(names):
            parts = [f"{name}={x}" for x in found[name]] if name in found else [name]
            expanded += parts
            known += [name in ahead] * len(parts)
        names = expanded
    blocks_ahead = {}
    for key in ids:
        n = len(blocks[key]) - n_ahead[key]
        if n_ahead[key]:
            a = blocks[key][n:, np.flatnonzero(known)]
            for r, c in zip(*np.nonzero(~np.isfinite(a))):
                raise RnnkitError(f"{path}: line {kept_lines[key][n + r]}, column "
                                  f"{[x for x, k in zip(names, known) if k][c]!r}: {AHEAD_NEEDS}")
            blocks_ahead[key] = a
            blocks[key] = blocks[key][:n]
            if dates[key] is not None:
                dates[key] = dates[key][:n]
    return LongSeries(ids, blocks, dates, names, path, notes, found, blocks_ahead)


#: the one value column of a .tsf file read as a long file (:func:`read_long_csv`)
TSF_COLUMN = "value"


def _long_from_tsf(path, columns, labels, ahead) -> LongSeries:
    """A file of many series, one per line (a Monash ``.tsf``, an M4 CSV: :mod:`rnnkit.data.tsf`),
    as :func:`read_long_csv` returns a long CSV: its series, each a column ``value`` with the
    dates its start and frequency give (none for an M4 CSV)."""
    from rnnkit.data.tsf import many_series

    if list(columns) != [TSF_COLUMN] or labels or ahead:
        raise RnnkitError(f"{path}: a file of one series per line holds one value column per series "
                          f"({TSF_COLUMN!r}) and no covariates; got columns {list(columns)}")
    data = many_series(path)
    blocks = {k: data.values[k][:, None] for k in data.ids}
    return LongSeries(data.ids, blocks, dict(data.dates), [TSF_COLUMN], str(path), data.notes)


def _rows_ahead(rows, sid: int, rest: list) -> set:
    """Lines of each series' last rows whose ``rest`` cells are all empty (its rows ahead)."""
    if not rest:
        return set()
    by_key = {}
    for line, r in rows:
        by_key.setdefault(r[sid].strip() if sid < len(r) else "", []).append((line, r))
    out = set()
    for block in by_key.values():
        for line, r in reversed(block):
            if not all(c >= len(r) or r[c].strip().lower() in MISSING_TOKENS for c in rest):
                break
            out.add(line)
    return out


def _long_labels(path, ids, blocks, texts, lines, text_cols, names, labels, ahead_lines=frozenset(),
                 delimiter: str = ",") -> dict:
    """Fill the label candidates of a long CSV's blocks in place: numbers where every cell of
    the column is one (and no labels are given), else the column's indicator columns (the
    blocks widened). Returns {column: its labels} of the columns read as labels. An empty
    cell on one of ``ahead_lines`` (rows ahead) is NaN, not an error."""
    from rnnkit.data.series import encode_labels, label_set

    found = {}
    for j, k in enumerate(text_cols):
        name = names[k]
        column = [t[j] for key in ids for t in texts[key]]
        if labels[name] is None:
            at_line = [(key, line) for key in ids for line in lines[key]]
            numbers = [number(x, path, line, name, delimiter) for x, (_, line) in zip(column, at_line)]
            if all(v is not None for v in numbers):           # a column of numbers
                gap = next((i for i, v in enumerate(numbers) if np.isnan(v) and at_line[i][1] not in ahead_lines),
                           None)
                if gap is not None:
                    key, line = at_line[gap]
                    raise RnnkitError(f"{path}: line {line}, column {name!r}: empty value (series {key!r}); "
                                      f"fill the gap first")
                at = 0
                for key in ids:
                    blocks[key][:, k] = numbers[at:at + len(blocks[key])]
                    at += len(blocks[key])
                continue
            found[name] = label_set(column, name, path)
        else:
            found[name] = list(labels[name])
    for key in ids:       # widen: each label column's indicators in its place
        parts = []
        for k in range(len(names)):
            if k in text_cols and names[k] in found:
                parts.append(encode_labels([t[text_cols.index(k)] for t in texts[key]], found[names[k]]))
            else:
                parts.append(blocks[key][:, k:k + 1])
        if found:
            blocks[key] = np.concatenate(parts, axis=1)
    return found



