"""Look at a CSV file's header before reading it: which column holds the dates."""

from __future__ import annotations

import csv
import io

from rnnkit.errors import RnnkitError

__all__ = ["sniff_csv", "choose_date_column", "DATE_NAMES"]

# header names read as the date/time column of a CSV when no date column is given
DATE_NAMES = ("date", "datetime", "time", "timestamp", "day", "ds", "month", "week", "year", "period")


def sniff_csv(path) -> tuple[list[str], list[str]]:
    """(header names, first data row) of a CSV file, for choosing the date column."""
    from rnnkit.data._util import read_file_text

    _, text = read_file_text(path, "utf-8", "CSV file")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)
            and not r[0].lstrip().startswith("#")]
    if not rows:
        raise RnnkitError(f"{path}: the file is empty")
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
