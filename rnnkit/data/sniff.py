"""Look at a CSV file before reading it: its delimiter, whether its first row names the
columns, which column holds the dates.

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
"""

from __future__ import annotations

import csv
import io

from rnnkit.errors import RnnkitError

__all__ = ["sniff_csv", "sniff_delimiter", "first_row_is_data", "default_names", "choose_date_column",
           "DATE_NAMES", "DELIMITERS"]

# header names read as the date/time column of a CSV when no date column is given
DATE_NAMES = ("date", "datetime", "time", "timestamp", "day", "ds", "month", "week", "year", "period")
DELIMITERS = (",", "\t", ";", "|")


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

    _, text = read_file_text(path, "utf-8", "CSV file")
    delimiter = sniff_delimiter(text)
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r and any(c.strip() for c in r)
            and not r[0].lstrip().startswith("#")]
    if not rows:
        raise RnnkitError(f"{path}: the file is empty")
    if first_row_is_data(rows[0], delimiter):
        return default_names(rows[0], delimiter), rows[0]
    return [h.strip() for h in rows[0]], (rows[1] if len(rows) > 1 else [])


def choose_date_column(path, columns, date_column):
    """``date_column`` as given, else a header named like a date (not one of ``columns``),
    else the first column whose first value is a date (:func:`rnnkit.data.dates.is_date`;
    not one of ``columns``), else a
    non-numeric first column when no ``columns`` are chosen; None if none fits."""
    from rnnkit.data.dates import is_date

    if date_column is not None:
        return date_column
    header, first = sniff_csv(path)
    wanted = set(columns or [])
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
