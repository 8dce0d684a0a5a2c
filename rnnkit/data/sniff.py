"""Look at a CSV file before reading it: its delimiter, whether its first row names the
columns, which column holds the dates, and which columns are not series.

Delimiter (:func:`sniff_delimiter`): of ``,``, tab, ``;`` and ``|`` (in that order of
preference), the first that splits the first lines (up to six; blank and comment lines
skipped) into one number of fields, at least two; ``,`` when none does (a file of one
column). A file written with ``;`` may write its decimals with a comma (``3,14``):
:func:`rnnkit.data.series.number` reads them so.

Header (:func:`first_row_is_data`): the first row names the columns unless every cell of
it is a number or a date (:mod:`rnnkit.data.dates`), at least one of them a number, and
none empty (a data frame library writes its index column with an empty name); a
file without a header gets the names :func:`default_names` gives (``date`` for a column
of dates, ``value`` or ``value1``, ``value2``, … for the others).

Columns that are not series (:func:`unnamed_columns`, :func:`date_part`,
:func:`month_columns`): an unnamed column counting the rows (a data frame's index) or
holding nothing (a spreadsheet's trailing commas); a ``quarter`` or ``month`` column
beside a date column named ``year``, and after a month ``day`` and ``hour`` columns (they
make the date together); a table of a row per year
and a column per month is one monthly series (:func:`melt_months`).
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = ["sniff_csv", "sniff_delimiter", "first_row_is_data", "default_names", "choose_date_column",
           "unnamed_columns", "date_part", "year_and_part", "month_columns", "melt_months", "DATE_NAMES",
           "DELIMITERS", "price_column"]

# header names read as the date/time column of a CSV when no date column is given
DATE_NAMES = ("date", "datetime", "time", "timestamp", "day", "ds", "month", "week", "year", "period")
DELIMITERS = (",", "\t", ";", "|")
#: the close of a price download, in order of preference: the adjusted close (Yahoo Finance)
#: has no jumps at splits and dividends; "price" and "last" are Investing.com's and some brokers'
PRICE_CLOSE = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close", "close", "price", "last")


def sniff_delimiter(text: str, comment: str | None = "#") -> str:
    """The field delimiter of CSV ``text`` (module docstring)."""
    lines = []
    for line in text.splitlines():
        if line.strip() and not (comment and line.lstrip().startswith(comment)):
            lines.append(line)
            if len(lines) == 6:
                break
    for d in DELIMITERS:
        counts = {len(r) for r in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and counts.pop() >= 2:
            return d
    return ","


def first_row_is_data(row, delimiter: str = ",") -> bool:
    """Whether a CSV file's first row is data rather than column names (module docstring)."""
    from rnnkit.data.dates import is_date
    from rnnkit.data.series import number

    cells = [c.strip() for c in row]
    if not cells or not all(cells):         # an empty name: a header (a data frame's index column)
        return False
    numbers = [number(c, "", 0, "", delimiter) for c in cells]
    return (any(v is not None for v in numbers)
            and all(v is not None or is_date(c) for c, v in zip(cells, numbers)))


def default_names(row, delimiter: str = ",") -> list[str]:
    """Column names for a file whose first row is data: ``date`` for the first cell that is
    a date and not a number, ``value`` (one other column) or ``value1``, ``value2``, …"""
    from rnnkit.data.dates import is_date
    from rnnkit.data.series import number

    cells = [c.strip() for c in row]
    date = next((i for i, c in enumerate(cells) if number(c, "", 0, "", delimiter) is None and is_date(c)), None)
    rest = [i for i in range(len(cells)) if i != date]
    names = {date: "date"} if date is not None else {}
    names.update({i: "value" if len(rest) == 1 else f"value{k + 1}" for k, i in enumerate(rest)})
    return [names[i] for i in range(len(cells))]


def sniff_csv(path) -> tuple[list[str], list[str]]:
    """(column names, first data row) of a CSV file as :func:`rnnkit.data.series.read_csv`
    reads it (delimiter and header sniffed), for choosing the date column."""
    from rnnkit.data._util import read_file_text

    _, text = read_file_text(path, "auto", "CSV file")
    delimiter = sniff_delimiter(text)
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r and any(c.strip() for c in r)
            and not r[0].lstrip().startswith("#")]
    if not rows:
        raise RnnkitError(f"{path}: the file is empty")
    if first_row_is_data(rows[0], delimiter):
        return default_names(rows[0], delimiter), rows[0]
    return [h.strip() for h in rows[0]], (rows[1] if len(rows) > 1 else [])


def choose_date_column(path, columns, date_column):
    """``date_column`` as given, else a ``year`` column beside a ``month`` or ``quarter``
    column (:func:`date_part` joins them), else a header named like a date (not one of ``columns``),
    else the first column whose first value is a date (:func:`rnnkit.data.dates.is_date`;
    not one of ``columns``), else a
    non-numeric first column when no ``columns`` are chosen; None if none fits."""
    from rnnkit.data.dates import is_date

    if date_column is not None:
        return date_column
    header, first = sniff_csv(path)
    wanted = set(columns or [])
    lower = [h.strip().lower() for h in header]
    full = ("date", "datetime", "timestamp", "ds", "time")     # a column that holds a whole date
    if any(n in _PARTS for n in lower) and not any(n in full for n in lower):
        # a year with its quarter or month columns, and no date column beside them: read together
        year = next((h for h, n in zip(header, lower) if n in ("year", "yr") and h not in wanted), None)
        if year is not None:
            return year
    for name in header:
        if name.lower() in DATE_NAMES and name not in wanted:
            return name
    for name, value in zip(header, first):
        if name not in wanted and is_date(value):
            return name
    if not columns and first and header:
        try:
            float(first[0])
        except ValueError:
            return header[0]
    return None


def price_column(header: list[str]) -> str | None:
    """The column to forecast in a price download when none is named: its (adjusted) close,
    when the header also has open, high and low columns (Yahoo Finance, Stooq, Investing.com
    exports); None for any other header."""
    names = {h.strip().lower(): h for h in header}
    if not {"open", "high", "low"} <= set(names):
        return None
    return next((names[c] for c in PRICE_CLOSE if c in names), None)


_PARTS = {"quarter": 4, "qtr": 4, "month": 12, "mon": 12}
#: the columns that may follow a month column, each in turn: (names, lowest, highest)
_FINER = ((("day", "dd", "dom"), 1, 31), (("hour", "hr", "hh"), 0, 23))


def _whole_in(rows, i: int, low: int, high: int) -> bool:
    """Whether column ``i`` holds whole numbers in [low, high] on every row."""
    try:
        cells = [float(r[i]) for r in rows]
    except (ValueError, IndexError):
        return False
    return all(c == int(c) and low <= c <= high for c in cells)


#: a column of times of day beside a column of days (``Date;Time``, as UCI's household power
#: consumption file has them), and how its cells look: 17:24, 17:24:00, 5:24 PM
TIME_NAMES = ("time", "clock", "time of day")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(\s?[ap]m)?$", re.I)


def _clock_column(names: list[str], rows: list, date_idx: int) -> int | None:
    """A column named like :data:`TIME_NAMES` whose cells (the first 50 that are not empty)
    are all times of day, beside a date column whose cells hold no time."""
    sample = [r for r in rows[:50] if date_idx < len(r)]
    if not sample or any(":" in r[date_idx] for r in sample):
        return None
    for j, name in enumerate(names):
        if j == date_idx or name.strip().lower() not in TIME_NAMES:
            continue
        cells = [r[j].strip() for r in sample if j < len(r) and r[j].strip()]
        if cells and all(_CLOCK.match(c) for c in cells):
            return j
    return None


def date_part(names: list[str], rows: list, date_idx) -> list[int]:
    """The columns that complete the date column: a column of times of day beside it
    (:func:`_clock_column`); or, for a date column named ``year``, ``quarter`` 1–4, or
    ``month`` 1–12 (statsmodels' macrodata writes its quarters so), then possibly ``day``
    1–31 and then ``hour`` 0–23 (hourly sensor logs: year, month, day, hour); [] if none."""
    if date_idx is None:
        return []
    if names[date_idx].strip().lower() not in ("year", "yr"):
        clock = _clock_column(names, rows, date_idx)
        return [] if clock is None else [clock]
    if not _whole_in(rows, date_idx, -9999, 9999):
        return []
    lower = [n.strip().lower() for n in names]
    for i, name in enumerate(lower):
        top = _PARTS.get(name)
        if top is None or i == date_idx or not _whole_in(rows, i, 1, top):
            continue
        parts = [i]
        if top == 12:
            for finer, low, high in _FINER:
                k = next((j for j, n in enumerate(lower) if n in finer and _whole_in(rows, j, low, high)), None)
                if k is None:
                    break
                parts.append(k)
        return parts
    return []


def year_and_part(row, date_idx: int, parts: list[int], part_name: str) -> str:
    """The date label of a row whose year and quarter (or month, day, hour), or day and
    time of day, are in columns of their own (:func:`date_part`)."""
    if part_name.strip().lower() in TIME_NAMES:
        return f"{row[date_idx].strip()} {row[parts[0]].strip()}"
    year, *rest = (int(float(row[i])) for i in [date_idx] + parts)
    if _PARTS[part_name.strip().lower()] == 4:
        return f"{year:04d}Q{rest[0]}"
    label = "-".join([f"{year:04d}"] + [f"{v:02d}" for v in rest[:2]])
    return label + (f" {rest[2]:02d}:00" if len(rest) == 3 else "")


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def month_columns(names: list[str], date_idx, col_names: list[str]) -> bool:
    """Whether the file is a table of a row per year (the date column named ``year``) and
    a column per month, January to December (``JAN``…``DEC`` or the full names)."""
    return (date_idx is not None and names[date_idx].strip().lower() in ("year", "yr") and len(col_names) == 12
            and all(n.strip().lower()[:3] == m and (len(n.strip()) == 3 or n.strip().lower().startswith(m))
                    for n, m in zip(col_names, _MONTHS)))


def melt_months(values: np.ndarray, dates: list[str], lines: list[int]):
    """A year-by-month table (N, 12) as one monthly series (N·12, 1), dated YYYY-MM; the
    months after the last value (the current year's empty cells) are dropped."""
    flat = values.reshape(-1, 1)
    labels = [f"{int(float(y)):04d}-{m + 1:02d}" for y in dates for m in range(12)]
    rows = [line for line in lines for _ in range(12)]
    seen = np.flatnonzero(~np.isnan(flat[:, 0]))
    end = int(seen[-1]) + 1 if len(seen) else len(flat)
    return flat[:end], labels[:end], rows[:end], ["value"]


#: names of a column that numbers the rows (with cells that count up by one, not a series)
INDEX_NAMES = ("no", "no.", "index", "idx", "id", "row", "#", "unnamed: 0", "obs", "sl no", "s.no", "sno")


def unnamed_columns(names: list[str], rows: list, date_idx) -> tuple[list[int], list[int]]:
    """(index columns, empty columns) among the columns with no name or an index's name
    (:data:`INDEX_NAMES`): those whose cells count up by one (0, 1, 2, … or 1821, 1822,
    …: the row index a data frame library writes first, the ``No`` column of many
    published tables), and those with no value at all (the trailing commas a spreadsheet
    writes). Neither is a series."""
    index, empty = [], []
    for i, name in enumerate(names):
        if (name and name.strip().lower() not in INDEX_NAMES) or i == date_idx:
            continue
        cells = [r[i].strip() if i < len(r) else "" for r in rows]
        if not any(cells):
            empty.append(i)
            continue
        try:
            counts = [int(c) for c in cells]
        except ValueError:
            continue
        if len(counts) > 1 and all(b - a == 1 for a, b in zip(counts, counts[1:])):
            index.append(i)
    return index, empty
