"""Time series: CSV in, scalers fitted on the training part, supervised windows, time splits.

Windows
-------
From a series s of N rows and F columns, window i (start r = i·stride) is

    X_i = s[r : r + lookback, :]                              (lookback, F [+ C])
    Y_i = s[r + lookback : r + lookback + horizon, targets]   (horizon, n_targets)

so n = ⌊(N − lookback − horizon) / stride⌋ + 1 windows, and window i's first
target is row ``lookback + i·stride``. Covariates (C extra columns known for the
past, e.g. a day-of-week code) are appended to X's features only.

Scalers
-------
StandardScaler: z = (x − μ) / σ with μ, σ per column of the *training* rows
(σ = 1 where a column is constant). MinMaxScaler: z = lo + (x − min)·(hi − lo)/(max − min)
(scale 1 where max = min). Fit them on the training part only: statistics of the
validation or test rows would leak the future into training.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np

from rnnkit._checks import check_choice, check_number, check_positive_int
from rnnkit.data._util import magnitude_problem, read_file_text
from rnnkit.data.dates import parse_dates, weekdays_only
from rnnkit.data.sniff import (date_part, default_names, first_row_is_data, melt_months, month_columns,
                               sniff_delimiter, unnamed_columns, year_and_part)
from rnnkit.errors import CheckpointError, RnnkitError

__all__ = [
    "SeriesData",
    "read_csv",
    "StandardScaler",
    "MinMaxScaler",
    "make_scaler",
    "scaler_from_dict",
    "make_windows",
    "split_sizes",
    "split_series",
]

#: the error of a row ahead without a value of a column known ahead (both CSV readers)
AHEAD_NEEDS = "a row ahead (its other columns are empty) needs the value of every column known ahead"
# Cells read as "no value" (compared case-insensitively after stripping).
MISSING_TOKENS = frozenset({"", "na", "n/a", "n.a.", "#n/a", "nan", "null", "none", "?", "-", "--", "."})
#: the most distinct labels a column of labels may hold (one indicator column each)
MAX_LABELS = 50


@dataclass
class SeriesData:
    """A series read from a file: ``values`` (N, F) float64, ``columns`` names, optional ``dates`` labels."""

    values: np.ndarray
    columns: list[str]
    dates: list[str] | None = None
    path: str | None = None
    #: what the reader changed or noticed in the dates (repeated dates dropped, gaps), for the user
    notes: list[str] = field(default_factory=list)
    #: {column: its labels} for each column of labels read as indicator columns
    labels: dict = field(default_factory=dict)
    #: the rows ahead (``read_csv``'s ``ahead``): (n, k) values of the columns known ahead,
    #: in ``ahead_columns`` (indicator columns expanded), and their dates; None without them
    ahead: np.ndarray | None = None
    ahead_columns: list[str] = field(default_factory=list)
    ahead_dates: list[str] | None = None

    def __len__(self) -> int:
        return len(self.values)


def _resolve_column(spec, header: list[str], path: str, what: str) -> int:
    if isinstance(spec, bool) or not isinstance(spec, (str, int, np.integer)):
        raise TypeError(f"read_csv: {what} must be a column name or index, got {type(spec).__name__}")
    available = ", ".join(repr(h) for h in header)
    if isinstance(spec, str):
        if spec in header:
            return header.index(spec)
        stripped = [h.strip() for h in header]
        if spec.strip() in stripped:
            return stripped.index(spec.strip())
        raise RnnkitError(f"{path}: no column {spec!r}; available columns: {available}")
    idx = int(spec)
    if not -len(header) <= idx < len(header):
        raise RnnkitError(f"{path}: column index {idx} is out of range for {len(header)} columns "
                          f"({available})")
    return idx % len(header)


def repeated_dates_note(path: str, count: int, first: str, within: str = "") -> str:
    """What a reader says of the ``count`` rows it dropped for repeating the date of the row
    before (``first``: where the first was; ``within``: e.g. " in its series")."""
    rows = f"{count} row{'s repeat' if count > 1 else ' repeats'}"
    return (f"{path}: {rows} the date of the row before{within} (the first on {first}); the first row of each "
            f"date is kept")


def _duration(seconds: int) -> str:
    """'1 hour', '30 minutes', '2 days', '15 seconds'."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return f"{seconds} second{'s' if seconds > 1 else ''}"


def _check_dates(values: np.ndarray, dates: list[str], lines: list[int], path: str, fill: str = "error"):
    """Rows whose date repeats the row before's are dropped (the first of each date kept:
    real logs repeat a timestamp with another reading of a text column), unless a third of
    the rows or more do (an error: several series, or a date made of several columns); rows that run
    from the newest date to the oldest are reversed, and a row dated before the row above
    it otherwise is an error; gaps in the dates of a fixed step are counted, and with
    ``fill`` "interpolate" or "ffill" the missing dates become rows of empty cells for
    :func:`_fill_gaps` to fill. Returns (values, dates, lines, notes)."""
    notes = []
    repeat = np.array([i > 0 and dates[i] == dates[i - 1] for i in range(len(dates))], dtype=bool)
    if repeat.sum() >= len(dates) / 3:           # two series or more interleaved, not a log's repeats
        first = int(np.argmax(repeat))
        raise RnnkitError(f"{path}: {int(repeat.sum())} of {len(dates)} rows repeat the date of the row before "
                          f"(the first on line {lines[first]}, {dates[first]}): the date column does not hold one "
                          f"date per row; name the right one as date_column, or join the columns that make "
                          f"the date")
    if repeat.any():
        first = int(np.argmax(repeat))
        notes.append(repeated_dates_note(path, int(repeat.sum()), f"line {lines[first]}, {dates[first]}"))
        keep = ~repeat
        values = values[keep]
        dates = [d for d, k in zip(dates, keep) if k]
        lines = [line for line, k in zip(lines, keep) if k]
    try:
        parsed = parse_dates(dates, path)
    except RnnkitError:
        _footer_rows(dates, lines, path)
        return values, dates, lines, notes          # labels, not dates: nothing to count
    diffs = np.diff(parsed).astype(np.int64)
    if len(diffs) and (diffs < 0).all():           # newest first, as many downloads list prices
        values, dates, lines, diffs = values[::-1].copy(), dates[::-1], lines[::-1], -diffs[::-1]
        parsed = parsed[::-1]
        notes.append(f"{path}: the rows run from the newest date ({dates[-1]}) to the oldest ({dates[0]}); "
                     f"they are read oldest first")
    elif (diffs < 0).any():
        i = int(np.argmax(diffs < 0)) + 1
        raise RnnkitError(f"{path}: line {lines[i]}: the date {dates[i]!r} is before the row above it "
                          f"({dates[i - 1]!r}); the rows must be in date order")
    if len(diffs) < 2 or (diffs <= 0).any():
        return values, dates, lines, notes          # equal instants written differently: nothing to count
    weekdays = weekdays_only(parsed)
    step = 86400 if weekdays else int(diffs.min())
    if weekdays:            # Friday to Monday is one step; a weekday without a row is a gap
        days = parsed.astype("datetime64[D]")
        skipped = np.busday_count(days[:-1], days[1:]) - 1
        notes.append(f"{path}: the dates are weekdays only: read as business days, Friday to Monday one step")
    elif step < 27 * 86400 and (diffs % step == 0).all():       # a fixed step, not months
        skipped = diffs // step - 1
    else:
        skipped = np.zeros(0, dtype=np.int64)
    if skipped.any():
        longest = int(np.argmax(skipped))
        gaps = int((skipped > 0).sum())
        n = int(skipped.sum())
        what = (f"{n} weekday{'s' if n > 1 else ''} (holidays?)" if weekdays else
                f"{n} step{'s' if n > 1 else ''} of {_duration(step)}")
        filled = fill in ("interpolate", "ffill")
        most = int(skipped[longest])
        notes.append(f"{path}: the dates skip {what} in {gaps} gap{'s' if gaps > 1 else ''} (the longest, "
                     f"{most} step{'s' if most > 1 else ''}, after line {lines[longest]}, {dates[longest]}); "
                     + (f"their rows are filled ({fill})" if filled else
                        "the rows on both sides of a gap are read as consecutive (fill='interpolate' or 'ffill' "
                        "fills them)"))
        if filled:
            at = np.concatenate([[0], np.cumsum(skipped + 1)])          # each read row's place
            full = np.full((int(at[-1]) + 1, values.shape[1]), np.nan)
            full[at] = values
            if weekdays:
                day0 = parsed[0].astype("datetime64[D]")
                every = np.busday_offset(day0, np.arange(len(full))).astype("datetime64[s]")
            else:
                every = parsed[0] + np.arange(len(full)) * np.timedelta64(step, "s")
            labels = [_like(str(d), dates[0]) for d in every]
            for i, d in zip(at, dates):
                labels[i] = d
            owner = np.repeat(np.arange(len(lines)), np.diff(np.concatenate([at, [len(full)]])))
            values, dates, lines = full, labels, [lines[k] for k in owner]
    return values, dates, lines, notes


def _footer_rows(dates: list[str], lines: list[int], path: str) -> None:
    """A column of dates whose last row or two are not dates (a total or a note under the
    table, which would be read as the series' last values) is an error naming the row."""
    n = len(dates)
    for k in (1, 2):
        if n - k < 3:
            return
        try:
            parse_dates(dates[:n - k], path)
        except RnnkitError:
            continue
        i = n - k
        raise RnnkitError(f"{path}: line {lines[i]}: {dates[i]!r} is not a date like the rows above it (a total "
                          f"or a note under the table?); delete the row")


def _like(iso: str, example: str) -> str:
    """An ISO date-time from NumPy ('2016-01-01T05:00:00') written like ``example`` (its
    length and date/time separator) when ``example`` is ISO: '2016-01-01 05:00',
    '2016-01-01', ...; else as an ISO date, with the time when it is not midnight (a
    column may mix ISO with one other format: :mod:`rnnkit.data.dates`)."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}", example):
        return iso[:10] if iso.endswith("T00:00:00") else iso.replace("T", " ")
    if len(example) > 10:
        iso = iso.replace("T", example[10])
    return iso[:len(example)] if len(example) <= len(iso) else iso


#: what read_csv does with empty cells (auto: interpolate them, and say so)
FILLS = ("auto", "error", "interpolate", "ffill", "drop")


def _text_columns(values, names, text: dict, path: str, no_date: bool):
    """(the columns to keep, a note naming the others): not those whose cells are mostly
    text; ``text`` {column: [count of text cells, (first text cell, its line)]}. A column of
    numbers with a few text cells is an error naming the first (a typo, a note in a cell)."""
    drop = []
    for c, (count, (cell, line)) in text.items():
        numbers = int(np.count_nonzero(~np.isnan(values[:, c])))
        if count <= numbers:
            raise RnnkitError(f"{path}: non-numeric value {cell!r} on line {line}, column {names[c]!r}")
        drop.append(c)
    keep = [c for c in range(len(names)) if c not in drop]
    shown = ", ".join(f"{names[c]!r} ({text[c][1][0]!r})" for c in drop[:6]) + (", …" if len(drop) > 6 else "")
    hold = "hold" if len(drop) > 1 else "holds"
    if not keep:
        hint = " (if one holds the dates, name it as date_column)" if no_date else ""
        raise RnnkitError(f"{path}: no column holds numbers: {shown} {hold} text{hint}")
    return keep, f"{path}: column{'s' if len(drop) > 1 else ''} {shown} {hold} text, not numbers: not read"


def _fill_gaps(values: np.ndarray, lines: list[int], names: list[str], fill: str, path: str, notes: list):
    """Fill NaN cells by ``fill`` ("auto" as "interpolate", said in a note appended to
    ``notes``); returns (values, kept row mask)."""
    missing = np.isnan(values)
    keep = np.ones(len(values), dtype=bool)
    if not missing.any():
        return values, keep
    r, c = map(int, np.argwhere(missing)[0])
    n = int(missing.sum())
    if fill == "error":
        raise RnnkitError(f"{path}: empty cell on line {lines[r]}, column {names[c]!r} ({n} empty cells in all); "
                          f"pass fill='interpolate', 'ffill' or 'drop' to fill or skip them")
    if fill == "auto":
        notes.append(f"{path}: {n} empty cell{'s' if n > 1 else ''} (the first on line {lines[r]}, column "
                     f"{names[c]!r}) filled by linear interpolation (fill='error', 'ffill' or 'drop' to choose)")
    if fill == "drop":
        keep = ~missing.any(axis=1)
        return values[keep], keep
    for j in range(values.shape[1]):
        col = values[:, j]
        gaps = np.isnan(col)
        if gaps.all():
            raise RnnkitError(f"{path}: column {names[j]!r} has no values at all")
        if not gaps.any():
            continue
        if fill == "ffill":
            if gaps[0]:
                raise RnnkitError(f"{path}: column {names[j]!r} starts with an empty cell on line {lines[0]}; "
                                  f"ffill has no earlier value to carry (use fill='interpolate' or 'drop')")
            # Index of the last valid row at or before each row, carried forward.
            last = np.maximum.accumulate(np.where(gaps, 0, np.arange(len(col))))
            values[:, j] = col[last]
        else:  # interpolate linearly in the row index; edges take the nearest value
            rows = np.arange(len(col))
            values[gaps, j] = np.interp(rows[gaps], rows[~gaps], col[~gaps])
    return values, keep


def read_csv(path, columns=None, date_column=None, *, header: bool | None = None, delimiter: str | None = None,
             fill: str = "auto", min_rows: int = 2, encoding: str = "auto",
             comment: str | None = "#", labels: dict | None = None, ahead=None) -> SeriesData:
    """Read numeric columns of a CSV file as a series.

    ``columns`` is a name or index, or a list of them for a multivariate series
    (default: every column but ``date_column``). ``date_column`` (name or index)
    is kept as string labels in ``SeriesData.dates``. Without ``columns``, a column whose
    cells are mostly text (an id, a station's name, "3.11B") is not read, and a note
    says so. Cells that are empty or read
    ``NA``/``NaN``/``null``/``?``/``.``/``#N/A`` are gaps: ``fill="auto"`` (default) fills them
    linearly, with a note (the dates are not filled in), ``"error"`` raises naming
    the line and column, ``"interpolate"`` fills linearly (edges take the nearest
    value), ``"ffill"`` repeats the last value, ``"drop"`` skips the row. Blank lines
    and lines starting with ``comment`` are skipped. Line numbers in errors are the file's (the header is line 1).
    ``delimiter`` None (default) sniffs ``,``, tab, ``;`` or ``|``, and ``header`` None
    reads the first row as column names unless it is plainly data
    (:mod:`rnnkit.data.sniff`); a comma in a number is a decimal point when the delimiter
    is not a comma, else a thousands separator (:func:`number`). Both are said in
    ``SeriesData.notes`` when they are not a comma and a header.

    With ``date_column``, a row whose date repeats the row before's is dropped (the first
    row of each date is kept) and gaps in ISO dates of a fixed step are counted; with
    ``fill`` "interpolate" or "ffill" the missing dates are added as rows and filled like
    empty cells. Both are said in ``SeriesData.notes``.

    ``labels`` {column name: None or a list of labels} names columns that may hold labels
    instead of numbers (a weather word, a holiday name): such a column, when one of its
    cells is not a number (None) or always (a list, the labels of a fitted model), becomes
    one indicator column per label (:func:`encode_labels`), named "column=label", in its
    place; ``SeriesData.labels`` holds each one's labels.

    ``ahead`` names columns known ahead of time (a holiday, a planned promotion). The
    last rows of the file whose other columns are all empty are then the rows ahead:
    they are not part of the series; their values of those columns (which must be given)
    are ``SeriesData.ahead``, with ``ahead_columns`` and ``ahead_dates``.

    Errors (:class:`RnnkitError`, all naming the path): missing file, no header or
    no rows, an unknown column (listing the available ones), a non-numeric or
    infinite value (line, column and value), a row with too few fields, a gap
    under ``fill="error"``, fewer than ``min_rows`` rows.

    Shapes:
        returns SeriesData with values float64 (N, F), F = number of columns read
    """
    where = "read_csv"
    check_choice(fill, "fill", FILLS, where)
    min_rows = check_positive_int(min_rows, "min_rows", where)
    path, text = read_file_text(path, encoding, "CSV file")
    read_notes = []
    if delimiter is None:
        delimiter = sniff_delimiter(text, comment)
        if delimiter != ",":
            read_notes.append(f"{path}: fields separated by {'tabs' if delimiter == chr(9) else repr(delimiter)} "
                              f"(a comma in a number is its decimal point)")
    rows, lines = [], []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if comment and row[0].lstrip().startswith(comment):
                continue
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise RnnkitError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from exc
    if not rows:
        raise RnnkitError(f"{path}: the file is empty")
    names = None
    if header is None:
        header = not first_row_is_data(rows[0], delimiter)
        if not header:
            names = default_names(rows[0], delimiter)
            read_notes.append(f"{path}: no header row (line {lines[0]} is data); the columns are named "
                              f"{', '.join(names)}")
    if header:
        names = [h.strip() for h in rows[0]]
        rows, lines = rows[1:], lines[1:]
    elif names is None:
        names = [str(i) for i in range(len(rows[0]))]
    if not rows:
        raise RnnkitError(f"{path}: no data rows below the header")

    date_idx = None if date_column is None else _resolve_column(date_column, names, path, "date_column")
    part_idx = date_part(names, rows, date_idx)
    if part_idx:
        together = [names[i] for i in [date_idx] + part_idx]
        read_notes.append(f"{path}: the dates are columns {', '.join(map(repr, together[:-1]))} and "
                          f"{together[-1]!r} together")
    if columns is None:
        index, empty = unnamed_columns(names, rows, date_idx)
        empty += part_idx
        if index:
            which = ", ".join(f"{i + 1} ({names[i]!r})" if names[i] else f"{i + 1} (no name)" for i in index)
            read_notes.append(f"{path}: column {which} counts the rows ({rows[0][index[0]].strip()}, "
                              f"{rows[1][index[0]].strip()}, …): a row index, not read")
        col_idx = [i for i in range(len(names)) if i != date_idx and i not in index + empty]
        if not col_idx:
            raise RnnkitError(f"{path}: no value columns besides the date column {names[date_idx]!r}")
    else:
        specs = [columns] if isinstance(columns, (str, int, np.integer)) else list(columns)
        if not specs:
            raise ValueError(f"{where}: columns is empty; give a name, an index or a list of them")
        col_idx = [_resolve_column(s, names, path, "columns") for s in specs]
        if len(set(col_idx)) != len(col_idx):
            raise ValueError(f"{where}: columns repeats a column: {specs!r}")
    col_names = [names[i] for i in col_idx]
    needed = max(col_idx + ([date_idx] if date_idx is not None else [])) + 1
    labels = dict(labels or {})
    unknown = sorted(set(labels) - set(col_names))
    if unknown:
        raise ValueError(f"{where}: labels names {unknown}, which are not among the columns read {col_names}")

    n_main = len(rows)
    if ahead:
        ahead = [ahead] if isinstance(ahead, str) else list(ahead)
        unknown = sorted(set(ahead) - set(col_names))
        if unknown:
            raise ValueError(f"{where}: ahead names {unknown}, which are not among the columns read {col_names}")
        rest = [i for i, name in zip(col_idx, col_names) if name not in ahead]

        def blank_rest(row):
            return all(i >= len(row) or row[i].strip().lower() in MISSING_TOKENS for i in rest)

        while rest and n_main > 0 and blank_rest(rows[n_main - 1]):
            n_main -= 1
    values = np.empty((len(rows), len(col_idx)), dtype=np.float64)
    dates = [] if date_idx is not None else None
    cells = {c: [] for c, name in enumerate(col_names) if name in labels}      # label candidates' text
    text = {}       # without columns: c -> [text cells, first (cell, line)] of a column that may hold text
    for r, (row, line) in enumerate(zip(rows, lines)):
        if len(row) < needed:
            raise RnnkitError(f"{path}: line {line} has {len(row)} fields, expected at least {needed} "
                              f"(columns: {', '.join(names)})")
        if dates is not None:
            dates.append(row[date_idx].strip() if not part_idx else year_and_part(row, date_idx, part_idx,
                                                                                     names[part_idx[0]]))
        for c, i in enumerate(col_idx):
            cell = row[i].strip()
            if c in cells:
                cells[c].append(cell)
                continue
            v = number(cell, path, line, names[i], delimiter)
            if v is None:
                if columns is None:         # a column of text is not a series (decided below)
                    seen = text.setdefault(c, [0, (cell, line)])
                    seen[0] += 1
                    values[r, c] = np.nan
                    continue
                raise RnnkitError(f"{path}: non-numeric value {cell!r} on line {line}, column {names[i]!r}")
            values[r, c] = v
    if text:
        keep, note = _text_columns(values, col_names, text, path, date_column is None)
        values, col_names = values[:, keep], [col_names[c] for c in keep]
        cells = {keep.index(c): v for c, v in cells.items()}
        read_notes.append(note)
    if columns is None and not labels and not ahead and month_columns(names, date_idx, col_names):
        values, dates, lines, col_names = melt_months(values, dates, lines)
        read_notes.append(f"{path}: a row per year and a column per month, read as one monthly series 'value'")
    found = {}
    for c, column in cells.items():
        name = col_names[c]
        numbers = (None if labels[name] is not None
                   else [number(x, path, line, name, delimiter) for x, line in zip(column, lines)])
        if numbers is not None and all(v is not None for v in numbers):
            values[:, c] = numbers
        else:
            found[name] = labels[name] if labels[name] is not None else label_set(column, name, path)
    if found:        # each label column becomes its indicator columns, in its place
        blocks, col_names_out = [], []
        for c, name in enumerate(col_names):
            if name in found:
                blocks.append(encode_labels(cells[c], found[name]))
                col_names_out += [f"{name}={x}" for x in found[name]]
            else:
                blocks.append(values[:, c:c + 1])
                col_names_out.append(name)
        values, col_names = np.concatenate(blocks, axis=1), col_names_out

    ahead_values, ahead_columns, ahead_dates = None, [], None
    if ahead:
        ahead_columns = [c for c in col_names if c in ahead or c.split("=", 1)[0] in found and
                         c.split("=", 1)[0] in ahead]
        cols = [col_names.index(c) for c in ahead_columns]
        ahead_values = values[n_main:, cols]
        for r, c in zip(*np.nonzero(~np.isfinite(ahead_values))):
            raise RnnkitError(f"{path}: line {lines[n_main + r]}, column {ahead_columns[c]!r}: {AHEAD_NEEDS}")
        ahead_dates = None if dates is None else dates[n_main:]
        values, lines = values[:n_main], lines[:n_main]
        dates = None if dates is None else dates[:n_main]
    notes = []
    if dates is not None:
        values, dates, lines, notes = _check_dates(values, dates, lines, path, fill)
    notes = read_notes + notes
    values, keep = _fill_gaps(values, lines, col_names, fill, path, notes)
    if dates is not None:
        dates = [d for d, k in zip(dates, keep) if k]
    if len(values) < min_rows:
        raise RnnkitError(f"{path}: {len(values)} usable rows, need at least {min_rows}")
    return SeriesData(values=values, columns=col_names, dates=dates, path=path, notes=notes, labels=found,
                      ahead=ahead_values, ahead_columns=ahead_columns, ahead_dates=ahead_dates)


_CURRENCY = ("$", "€", "£", "¥")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def number(cell: str, path: str, line: int, name: str, delimiter: str = ","):
    """A cell's value: a float, NaN when it reads as missing (MISSING_TOKENS), None when it is
    not a number; an infinite or unreadably large number is an error naming line and column.
    A comma is a decimal point in a file whose fields are not separated by commas (``3,14``
    in a ``;`` file), else it separates thousands (``"1,234.5"``, quoted in a ``,`` file).
    A trailing ``%`` and a leading currency sign are dropped: ``5.1%`` reads 5.1 and
    ``"$1,234.50"`` 1234.5 (the units as written)."""
    if cell.lower() in MISSING_TOKENS:
        return np.nan
    if cell[-1:] == "%" or cell[:1] in _CURRENCY:             # 5.1% is 5.1 (percent, as written); $12 is 12
        cell = cell.rstrip("%").lstrip("".join(_CURRENCY)).strip()
    if "," in cell:
        if delimiter != "," and _DECIMAL_COMMA.match(cell):
            cell = cell.replace(",", ".")
        elif _THOUSANDS.match(cell):
            cell = cell.replace(",", "")
    try:
        v = float(cell)
    except ValueError:
        return None
    if not math.isfinite(v):
        raise RnnkitError(f"{path}: value {cell!r} on line {line}, column {name!r} is not finite")
    problem = magnitude_problem(v)
    if problem is not None:
        raise RnnkitError(f"{path}: value {cell!r} on line {line}, column {name!r} {problem}")
    return v


def label_set(cells, name: str, path: str) -> list[str]:
    """The distinct labels of a column's cells (sorted; cells that read as missing are none),
    at most :data:`MAX_LABELS` of them."""
    found = sorted({x for x in cells if x.lower() not in MISSING_TOKENS})
    if len(found) > MAX_LABELS:
        raise RnnkitError(f"{path}: column {name!r} holds {len(found)} distinct labels (e.g. "
                          f"{', '.join(repr(x) for x in found[:3])}); a column of labels may hold at most "
                          f"{MAX_LABELS} (or it must hold numbers)")
    return found


def encode_labels(cells, known) -> np.ndarray:
    """Indicator columns of a column of labels: (N, K) float64, row r column k is 1 where
    cell r is ``known[k]``; a cell that reads as missing or holds a label not in ``known``
    (first seen after training) is 0 in every column."""
    index = {x: k for k, x in enumerate(known)}
    out = np.zeros((len(cells), len(known)))
    for r, x in enumerate(cells):
        k = index.get(x)
        if k is not None:
            out[r, k] = 1.0
    return out


# -- scalers --------------------------------------------------------------------------

def _as_float(x, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{where}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{where}: expected an array with at least 1 dim, got a scalar")
    return arr


class _Scaler:
    """Shared shape handling: the last axis holds features; a 1-D array is one feature."""

    # Subclasses set kind and _fields and define _stats(arr) (fit the statistics
    # of (N, F) float64 rows) and _affine() -> (shift, scale, offset) with
    # z = (x - shift) * scale + offset.
    kind = ""
    _fields: tuple[str, ...] = ()

    @property
    def n_features(self) -> int | None:
        first = getattr(self, self._fields[0])
        return None if first is None else len(first)

    def fit(self, x):
        """Fit the per-column statistics on ``x`` (the training rows only).

        Shapes:
            x: (N,) one feature, or (..., F)
        """
        where = f"{type(self).__name__}.fit"
        arr = _as_float(x, where)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr.reshape(-1, arr.shape[-1])
        if arr.shape[0] == 0:
            raise ValueError(f"{where}: x has no rows")
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}: x contains NaN or inf")
        self._stats(arr.astype(np.float64))
        return self

    def _params(self, arr: np.ndarray, columns, where: str):
        if self.n_features is None:
            raise RnnkitError(f"{where}: the scaler is not fitted; call fit(train) first")
        shift, scale, offset = self._affine()
        if columns is not None:
            cols = [columns] if isinstance(columns, (int, np.integer)) else list(columns)
            for c in cols:
                if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not -len(shift) <= c < len(shift):
                    raise ValueError(f"{where}: columns must be indices in [0, {len(shift) - 1}], got {columns!r}")
            shift, scale, offset = shift[cols], scale[cols], offset[cols]
        n = len(shift)
        if arr.ndim == 1:
            if n != 1:
                raise ValueError(f"{where}: a 1-D x is one feature, but the scaler has {n} "
                                 f"(pass columns=[j] to use column j)")
        elif arr.shape[-1] != n:
            raise ValueError(f"{where}: expected x with {n} features in its last dim, got shape {arr.shape}")
        dt = arr.dtype
        return shift.astype(dt), scale.astype(dt), offset.astype(dt)

    def transform(self, x, columns=None) -> np.ndarray:
        """Scale ``x``; ``columns`` (indices) says which fitted columns x's features are.

        Shapes:
            x: (N,) or (..., F') with F' = len(columns) or the fitted F  ->  same shape
        """
        arr = _as_float(x, f"{type(self).__name__}.transform")
        shift, scale, offset = self._params(arr, columns, f"{type(self).__name__}.transform")
        return (arr - shift) * scale + offset

    def inverse_transform(self, x, columns=None) -> np.ndarray:
        """Undo :meth:`transform`, e.g. on predictions of the target columns only.

        Shapes:
            x: (N,) or (..., F') with F' = len(columns) or the fitted F  ->  same shape
        """
        arr = _as_float(x, f"{type(self).__name__}.inverse_transform")
        shift, scale, offset = self._params(arr, columns, f"{type(self).__name__}.inverse_transform")
        return (arr - offset) / scale + shift

    def fit_transform(self, x) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def to_dict(self) -> dict:
        """A JSON-able description; :func:`scaler_from_dict` rebuilds the scaler."""
        if self.n_features is None:
            raise RnnkitError(f"{type(self).__name__}.to_dict: the scaler is not fitted")
        d = {"kind": self.kind}
        d.update({f: [float(v) for v in getattr(self, f)] for f in self._fields})
        return d

    @classmethod
    def from_dict(cls, d) -> "_Scaler":
        """Rebuild from :meth:`to_dict`; a malformed dict is a CheckpointError."""
        name = f"{cls.__name__}.from_dict"
        if not isinstance(d, dict) or d.get("kind") != cls.kind:
            raise CheckpointError(f"{name}: expected a dict with kind {cls.kind!r}, got {d!r:.80}")
        try:
            obj = cls(**cls._init_kwargs(d))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{name}: {exc}") from exc
        arrays = []
        for f in cls._fields:
            try:
                a = np.asarray(d[f], dtype=np.float64)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{name}: missing or non-numeric {f!r}") from exc
            if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
                raise CheckpointError(f"{name}: {f!r} must be a non-empty list of finite numbers")
            arrays.append(a)
        if len({a.size for a in arrays}) != 1:
            raise CheckpointError(f"{name}: {', '.join(cls._fields)} have different lengths")
        for f, a in zip(cls._fields, arrays):
            setattr(obj, f, a)
        try:
            obj._affine()
        except ValueError as exc:
            raise CheckpointError(f"{name}: {exc}") from exc
        return obj

    @classmethod
    def _init_kwargs(cls, d) -> dict:
        return {}


class StandardScaler(_Scaler):
    """z = (x − mean) / std per column (std = 1 for a constant column)."""

    kind = "standard"
    _fields = ("mean", "std")

    def __init__(self):
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _stats(self, arr):
        self.mean = arr.mean(axis=0)
        std = arr.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def _affine(self):
        if np.any(self.std <= 0):
            raise ValueError("std must be > 0")
        return self.mean, 1.0 / self.std, np.zeros_like(self.mean)

    def __repr__(self) -> str:
        return f"StandardScaler(n_features={self.n_features})"


class MinMaxScaler(_Scaler):
    """z = lo + (x − min)·(hi − lo)/(max − min) per column (scale 1 for a constant column)."""

    kind = "minmax"
    _fields = ("data_min", "data_max")

    def __init__(self, feature_range=(0.0, 1.0)):
        try:
            lo, hi = (float(v) for v in feature_range)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"MinMaxScaler: feature_range must be two numbers (lo, hi), got {feature_range!r}") from exc
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"MinMaxScaler: feature_range must have lo < hi, got {feature_range!r}")
        self.feature_range = (lo, hi)
        self.data_min: np.ndarray | None = None
        self.data_max: np.ndarray | None = None

    def _stats(self, arr):
        self.data_min = arr.min(axis=0)
        self.data_max = arr.max(axis=0)

    def _affine(self):
        if np.any(self.data_max < self.data_min):
            raise ValueError("data_max must be >= data_min")
        lo, hi = self.feature_range
        span = self.data_max - self.data_min
        scale = np.where(span > 0, (hi - lo) / np.where(span > 0, span, 1.0), 1.0)
        return self.data_min, scale, np.full_like(self.data_min, lo)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["feature_range"] = list(self.feature_range)
        return d

    @classmethod
    def _init_kwargs(cls, d) -> dict:
        return {"feature_range": tuple(d.get("feature_range", (0.0, 1.0)))}

    def __repr__(self) -> str:
        return f"MinMaxScaler(feature_range={self.feature_range}, n_features={self.n_features})"


SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler}


def make_scaler(kind: str):
    """A new, unfitted scaler: ``"standard"`` or ``"minmax"``."""
    check_choice(kind, "kind", tuple(SCALERS), "make_scaler")
    return SCALERS[kind]()


def scaler_from_dict(d):
    """Rebuild any scaler from its ``to_dict()`` (dispatching on ``d["kind"]``)."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in SCALERS:
        raise CheckpointError(f"scaler_from_dict: unknown scaler kind {kind!r}; expected one of {list(SCALERS)}")
    try:
        return SCALERS[kind].from_dict(d)
    except TypeError as exc:
        raise CheckpointError(f"scaler_from_dict: {exc}") from exc


# -- windows and splits ---------------------------------------------------------------

def _as_series(x, name: str, where: str) -> np.ndarray:
    arr = _as_float(x, where)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{where}: expected {name} with 1 or 2 dims (N,) or (N, F), got {arr.ndim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: {name} contains NaN or inf")
    return arr


def make_windows(series, lookback: int, horizon: int = 1, target_cols=None, covariates=None,
                 stride: int = 1, return_index: bool = False):
    """Cut a series into supervised (input window, future targets) pairs (module docstring).

    ``target_cols`` (index or list of indices; default all columns) are the columns
    to predict. ``covariates`` (N, C) are extra inputs aligned with the rows,
    appended to X only. With ``return_index`` also returns each window's first
    target row. A series shorter than ``lookback + horizon`` is a RnnkitError.

    Shapes:
        series: (N,) or (N, F); covariates: (N,) or (N, C)
        X: (n, lookback, F + C), Y: (n, horizon, n_targets), index: int64 (n,)
        n = (N − lookback − horizon) // stride + 1
    """
    where = "make_windows"
    s = _as_series(series, "series", where)
    lookback = check_positive_int(lookback, "lookback", where)
    horizon = check_positive_int(horizon, "horizon", where)
    stride = check_positive_int(stride, "stride", where)
    N, F = s.shape
    if target_cols is None:
        targets = list(range(F))
    else:
        targets = [target_cols] if isinstance(target_cols, (int, np.integer)) else list(target_cols)
        bad = [t for t in targets if isinstance(t, bool) or not isinstance(t, (int, np.integer))
               or not -F <= t < F]
        if bad or not targets:
            raise ValueError(f"{where}: target_cols must be column indices in [0, {F - 1}], got {target_cols!r}")
        targets = [int(t) % F for t in targets]
        if len(set(targets)) != len(targets):
            raise ValueError(f"{where}: target_cols repeats a column: {target_cols!r}")
    inputs = s
    if covariates is not None:
        cov = _as_series(covariates, "covariates", where)
        if len(cov) != N:
            raise ValueError(f"{where}: covariates must have one row per series row ({N}), got {len(cov)}")
        inputs = np.concatenate([s, cov.astype(s.dtype)], axis=1)
    if lookback + horizon > N:
        raise RnnkitError(f"{where}: the series has {N} rows, too short for lookback={lookback} + "
                          f"horizon={horizon} = {lookback + horizon}")
    n = (N - lookback - horizon) // stride + 1
    starts = np.arange(n) * stride
    # (n, lookback) row indices -> fancy indexing copies, so X and Y never alias the series.
    X = inputs[starts[:, None] + np.arange(lookback)]
    Y = s[(starts + lookback)[:, None] + np.arange(horizon)][:, :, targets]
    if return_index:
        return X, Y, (starts + lookback).astype(np.int64)
    return X, Y


def split_sizes(n: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> tuple[int, int, int]:
    """Row counts (n_train, n_val, n_test) of a time-ordered split of ``n`` rows.

    n_val = round(n·val_fraction), n_test = round(n·test_fraction), the rest trains.
    A fraction > 0 that rounds to no rows, or no training rows, is a RnnkitError.
    """
    where = "split_sizes"
    n = check_positive_int(n, "n", where, minimum=0)
    vf = check_number(val_fraction, "val_fraction", where, 0.0, 1.0, high_open=True)
    tf = check_number(test_fraction, "test_fraction", where, 0.0, 1.0, high_open=True)
    if vf + tf >= 1.0:
        raise ValueError(f"{where}: val_fraction + test_fraction must be < 1, got {vf} + {tf} = {vf + tf}")
    n_val, n_test = int(round(n * vf)), int(round(n * tf))
    for frac, count, part in ((vf, n_val, "validation"), (tf, n_test, "test")):
        if frac > 0 and count == 0:
            raise RnnkitError(f"{where}: {part} fraction {frac} of {n} rows gives an empty {part} part")
    n_train = n - n_val - n_test
    if n_train < 1:
        raise RnnkitError(f"{where}: {n} rows leave no training rows")
    return n_train, n_val, n_test


def split_series(series, val_fraction: float = 0.15, test_fraction: float = 0.15, context: int = 0):
    """Split rows in time order into (train, val, test); nothing is shuffled.

    Train is the first rows, then validation, then test. ``context`` rows before
    the validation and test parts are prepended to them (e.g. ``context=lookback``
    so their first windows have a full input window yet every target lies in the
    part). Works on arrays and on lists (e.g. the dates), by slicing.

    Shapes:
        series: (N, ...)  ->  train (n_train, ...), val (context + n_val, ...), test (context + n_test, ...)
        (an empty part has 0 rows and no context)
    """
    where = "split_series"
    context = check_positive_int(context, "context", where, minimum=0)
    n_train, n_val, n_test = split_sizes(len(series), val_fraction, test_fraction)
    a, b = n_train, n_train + n_val
    train = series[:a]
    val = series[max(0, a - context):b] if n_val else series[a:a]
    test = series[max(0, b - context):] if n_test else series[len(series):]
    return train, val, test
