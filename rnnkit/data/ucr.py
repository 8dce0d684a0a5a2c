"""Readers for labelled time-series classification files (the UCR/UEA archive formats).

Every reader returns ``(series, labels)``: a list of float64 arrays of shape
(T_i, F) (F = 1 for univariate data; lengths may differ) and a list of labels,
one per series. Labels are strings as written in the file, except that integral
numbers are normalized (``"1.0000000e+00"`` and ``"1"`` both become ``"1"``) so
the same class is not split by formatting.

* ``.tsv`` (UCR 2018): one series per line, ``label<TAB>v1<TAB>v2…``; shorter
  series are padded with ``NaN`` at the end.
* ``.ts`` (UEA archive): a ``@``-header (``@problemName``, ``@timeStamps``,
  ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
  ``@classLabel true a b c``, ``@targetLabel``) then ``@data``; one case per line,
  dimensions separated by ``:``, values by ``,``, the label last; ``?`` is missing.
* CSV: one series per row with a label column; trailing empty cells pad shorter rows.
* ``.txt`` (and a file without a suffix: the archive's older layout): a label, then the
  values, separated by whitespace or commas.
* ``.arff`` (Weka, uni- or multivariate): :mod:`rnnkit.data.arff`.

Missing values (``missing=``): ``"error"`` raises on any; ``"trim"`` drops missing
values at the end of a series (padding of variable-length data) and raises on
interior ones; ``"interpolate"`` also fills interior gaps linearly.
Malformed input raises :class:`RnnkitError` with the path and line number.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.data._util import data_suffix, magnitude_problem, open_text, read_file_text
from rnnkit.errors import RnnkitError

__all__ = ["read_ucr_tsv", "read_ucr_ts", "read_labeled_csv", "read_multichannel_csv", "read_labeled_sequences",
           "read_labeled_file", "read_sequence_files"]

_MISSING = ("error", "trim", "interpolate")


def _read_lines(path) -> tuple[str, list[str]]:
    path, text = read_file_text(path, "auto", "file")
    return path, text.split("\n")


def _norm_label(s: str) -> str:
    s = s.strip()
    try:
        v = float(s)
    except ValueError:
        return s
    if math.isfinite(v) and v == int(v):
        return str(int(v))
    return s


def _parse_value(tok: str, path: str, line: int, missing_tokens) -> float:
    tok = tok.strip()
    if tok.lower() in missing_tokens:
        return math.nan
    try:
        v = float(tok)
    except ValueError:
        raise RnnkitError(f"{path}, line {line}: non-numeric value {tok!r}") from None
    if math.isinf(v):
        raise RnnkitError(f"{path}, line {line}: value {tok!r} is not finite")
    problem = magnitude_problem(v)
    if problem is not None:
        raise RnnkitError(f"{path}, line {line}: value {tok!r} {problem}")
    return v


def _handle_missing(values: np.ndarray, missing: str, path: str, line: int, what: str = "") -> np.ndarray:
    """Apply the ``missing`` policy to one 1-D series with NaN for missing values."""
    gaps = np.isnan(values)
    if not gaps.any():
        return values
    label = f" {what}" if what else ""
    if missing == "error":
        pos = int(np.argmax(gaps))
        raise RnnkitError(f"{path}, line {line}: missing value at position {pos}{label}; "
                          f"pass missing='trim' or 'interpolate'")
    end = len(values) - int(np.argmax(~gaps[::-1])) if not gaps.all() else 0
    values, gaps = values[:end], gaps[:end]
    if end == 0:
        raise RnnkitError(f"{path}, line {line}: the series{label} has no values")
    if gaps.any():
        if missing == "trim":
            pos = int(np.argmax(gaps))
            raise RnnkitError(f"{path}, line {line}: missing value inside the series{label} at position "
                              f"{pos}; only trailing ones can be trimmed (pass missing='interpolate')")
        rows = np.arange(end)
        values = values.copy()
        values[gaps] = np.interp(rows[gaps], rows[~gaps], values[~gaps])
    return values


def read_ucr_tsv(path, missing: str = "trim", delimiter: str | None = "\t"):
    """Read a UCR ``.tsv`` file: a label then the values on each line.

    ``delimiter=None`` splits on any whitespace. ``NaN`` cells are missing values
    (trailing ones pad variable-length series and are trimmed by default).

    Shapes:
        returns (list of n float64 arrays (T_i, 1), list of n str labels)
    """
    check_choice(missing, "missing", _MISSING, "read_ucr_tsv")
    path, lines = _read_lines(path)
    series, labels = [], []
    for ln, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if delimiter is not None:
            fields = raw.rstrip("\r\n").split(delimiter)
        elif "\t" in raw:
            # tab-separated (the archive's .tsv): an empty first field is an empty label,
            # not a reason to read the first value as the label
            fields = raw.rstrip("\r\n").split("\t")
            while len(fields) > 2 and not fields[-1].strip():
                fields.pop()       # trailing tabs
        else:
            fields = raw.split()   # the archive's older whitespace-aligned .txt layout
        if not fields[0].strip():
            raise RnnkitError(f"{path}, line {ln}: empty label (the line starts with its delimiter)")
        if len(fields) < 2:
            raise RnnkitError(f"{path}, line {ln}: expected a label followed by values, got {raw.strip()[:60]!r}")
        vals = np.array([_parse_value(t, path, ln, ("nan", "")) for t in fields[1:]], dtype=np.float64)
        series.append(_handle_missing(vals, missing, path, ln).reshape(-1, 1))
        labels.append(_norm_label(fields[0]))
    if not series:
        raise RnnkitError(f"{path}: no series in the file")
    return series, labels


def _bool_tag(value: str, tag: str, path: str, line: int) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise RnnkitError(f"{path}, line {line}: {tag} must be true or false, got {value.strip()!r}")
    return v == "true"


def read_ucr_ts(path, missing: str = "error"):
    """Read a UEA ``.ts`` file (the format of the module docstring).

    Multivariate cases must have the same length in every dimension (after
    trimming). Time-stamped files (``@timeStamps true``) are not supported. Labels
    must be among those declared by ``@classLabel true …``; with ``@classLabel
    false`` and no ``@targetLabel`` the labels are None; with ``@targetLabel true``
    they are floats (regression targets).

    Shapes:
        returns (list of n float64 arrays (T_i, D), list of n labels or None)
    """
    check_choice(missing, "missing", _MISSING, "read_ucr_ts")
    path, lines = _read_lines(path)
    has_class = has_target = False
    declared: list[str] | None = None
    univariate, dims = None, None
    series, labels = [], []
    in_data = False
    for ln, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise RnnkitError(f"{path}, line {ln}: expected a @tag header line or @data, got {line[:60]!r}")
            tag, _, rest = line.partition(" ")
            tag = tag.lower()
            if tag == "@data":
                in_data = True
            elif tag == "@timestamps":
                if _bool_tag(rest, tag, path, ln):
                    raise RnnkitError(f"{path}, line {ln}: time-stamped .ts files (@timeStamps true) are not supported")
            elif tag == "@univariate":
                univariate = _bool_tag(rest, tag, path, ln)
            elif tag == "@dimensions":
                try:
                    dims = int(rest.strip())
                except ValueError:
                    raise RnnkitError(f"{path}, line {ln}: @dimensions must be an integer, got {rest.strip()!r}") from None
            elif tag == "@classlabel":
                parts = rest.split()
                if not parts:
                    raise RnnkitError(f"{path}, line {ln}: @classLabel needs true or false")
                has_class = _bool_tag(parts[0], tag, path, ln)
                if has_class:
                    if len(parts) < 2:
                        raise RnnkitError(f"{path}, line {ln}: @classLabel true must list the class labels")
                    declared = [_norm_label(p) for p in parts[1:]]
            elif tag == "@targetlabel":
                has_target = _bool_tag(rest, tag, path, ln)
            # @problemName, @missing, @equalLength, @seriesLength, … describe the data
            # and are checked against it case by case instead.
            continue

        fields = line.split(":")
        if has_class or has_target:
            if len(fields) < 2:
                raise RnnkitError(f"{path}, line {ln}: expected dimensions then ':label', got {line[:60]!r}")
            label_tok, fields = fields[-1].strip(), fields[:-1]
        n_dims = len(fields)
        if dims is not None and n_dims != dims:
            raise RnnkitError(f"{path}, line {ln}: {n_dims} dimensions, but @dimensions says {dims}")
        if univariate and n_dims != 1:
            raise RnnkitError(f"{path}, line {ln}: {n_dims} dimensions in a @univariate true file")
        if series and n_dims != series[0].shape[1]:
            raise RnnkitError(f"{path}, line {ln}: {n_dims} dimensions, but earlier cases have {series[0].shape[1]}")
        channels = []
        for d, field in enumerate(fields):
            toks = field.split(",")
            vals = np.array([_parse_value(t, path, ln, ("?", "nan")) for t in toks], dtype=np.float64)
            channels.append(_handle_missing(vals, missing, path, ln, what=f"(dimension {d})"))
        lengths = {len(c) for c in channels}
        if len(lengths) != 1:
            raise RnnkitError(f"{path}, line {ln}: dimensions have different lengths {[len(c) for c in channels]}")
        series.append(np.stack(channels, axis=1))
        if has_class:
            label = _norm_label(label_tok)
            if declared is not None and label not in declared:
                raise RnnkitError(f"{path}, line {ln}: label {label_tok!r} is not among the declared "
                                  f"@classLabel values {declared}")
            labels.append(label)
        elif has_target:
            try:
                labels.append(float(label_tok))
            except ValueError:
                raise RnnkitError(f"{path}, line {ln}: non-numeric target {label_tok!r}") from None
    if not in_data:
        raise RnnkitError(f"{path}: no @data line; not a .ts file")
    if not series:
        raise RnnkitError(f"{path}: no cases after @data")
    return series, (labels if (has_class or has_target) else None)


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _looks_like_data(first_row: list[str], label_column: int) -> bool:
    """Whether a CSV's first row is a row of values rather than column names.

    It is data when every value cell is a number and those numbers are not just the
    column indices (``0, 1, 2, …`` or ``1, 2, 3, …``, a common header of series files).
    """
    if not -len(first_row) <= label_column < len(first_row):
        return False
    li = label_column % len(first_row)
    cells = [c for i, c in enumerate(first_row) if i != li and c.strip()]
    nums = [_number(c) for c in cells]
    if not cells or any(v is None for v in nums):
        return False
    start = nums[0]
    is_index = start in (0.0, 1.0) and all(v == start + i for i, v in enumerate(nums))
    return not is_index


def _auto_label_column(names: list[str] | None, rows: list) -> int:
    """The label column of a CSV with one series per row: the one a header names
    (label, class, target, …), else the first column when its cells read as labels
    (words, or whole numbers taking few values), else the last when its cells do
    (files that append the class to each row), else the first."""
    from rnnkit.data.labeled_text import LABEL_NAMES, name_index

    named = None if names is None else name_index(names, LABEL_NAMES)
    if named is not None:
        return named

    def label_like(col: int) -> bool:
        cells = [r[col].strip() for _, r in rows if r]
        if not cells or not all(cells):
            return False
        try:
            values = [float(c) for c in cells]
        except ValueError:
            return True                       # words: labels
        return all(v == int(v) for v in values) and len(set(values)) <= max(2, len(values) // 2)

    if not rows or label_like(0):
        return 0
    return -1 if label_like(-1) else 0


def read_labeled_csv(path, label_column=None, header: bool = True, delimiter: str = ",", missing: str = "trim"):
    """Read a CSV with one series per row and a label column (name or index; None: the
    header's label column, else the first or last column, whichever reads as labels:
    :func:`_auto_label_column`).

    All other cells of a row are the series, in column order, but those of a column named
    as an id or a subject (``id``, ``sample``, ``subject``, ``user``, …); empty cells at the
    end of a row pad shorter series. With ``header`` the first row names the
    columns, except when it is plainly data (every value cell a number, and not the
    column indices 0, 1, 2, … or 1, 2, 3, …): then it is read as the first series
    rather than dropped.

    Shapes:
        returns (list of n float64 arrays (T_i, 1), list of n str labels)
    """
    check_choice(missing, "missing", _MISSING, "read_labeled_csv")
    if label_column is not None and (isinstance(label_column, bool) or not isinstance(label_column, (str, int))):
        raise TypeError(f"read_labeled_csv: label_column must be a column name or index, "
                        f"got {type(label_column).__name__}")
    if isinstance(label_column, str) and not header:
        raise ValueError("read_labeled_csv: a label_column name needs header=True")
    path, lines = _read_lines(path)
    # One row per line: series rows hold no quoted line breaks.
    numbered = [(ln, r) for ln, r in enumerate(csv.reader(lines, delimiter=delimiter), start=1)
                if r and any(c.strip() for c in r)]
    names = None                                 # the header's names, when the file has one
    if header:
        if not numbered:
            raise RnnkitError(f"{path}: the file is empty")
        first = [c.strip() for c in numbered[0][1]]
        if not isinstance(label_column, str) and _looks_like_data(first, label_column or 0):
            # a first row of measurements is data: reading it as the header would drop a series
            if len(numbered) > 1 and len(numbered[1][1]) != len(first):
                raise RnnkitError(f"{path}, line {numbered[0][0]}: the first row holds numbers, not column "
                                  "names, and the next row has another number of fields; add a header row")
        else:
            names, numbered = first, numbered[1:]
        if isinstance(label_column, str):
            if label_column not in names:
                raise RnnkitError(f"{path}: no column {label_column!r}; available columns: "
                                  f"{', '.join(map(repr, names))}")
            label_column = names.index(label_column)
    if label_column is None:
        label_column = _auto_label_column(names, numbered)
    # an id or a subject column names the row, it is not a value of the series
    drop = set() if names is None else {i for i, n in enumerate(names) if n.lower() in ID_COLUMNS + SUBJECT_COLUMNS}
    series, labels = [], []
    for ln, row in numbered:
        if not -len(row) <= label_column < len(row):
            raise RnnkitError(f"{path}, line {ln}: no label column {label_column} in a row of {len(row)} fields")
        li = label_column % len(row)
        label = row[li].strip()
        if not label:
            raise RnnkitError(f"{path}, line {ln}: empty label")
        cells = [c for i, c in enumerate(row) if i != li and i not in drop]
        vals = np.array([_parse_value(c, path, ln, ("", "nan", "?")) for c in cells], dtype=np.float64)
        if vals.size == 0:
            raise RnnkitError(f"{path}, line {ln}: a label but no values")
        series.append(_handle_missing(vals, missing, path, ln).reshape(-1, 1))
        labels.append(_norm_label(label))
    if not series:
        raise RnnkitError(f"{path}: no data rows")
    return series, labels


ID_COLUMNS = ("id", "case", "sample", "sequence", "series_id")


#: the time column of a long CSV, and the subject column of a recorded stream
TIME_COLUMNS = ("t", "time", "timestamp", "step")
SUBJECT_COLUMNS = ("user", "subject", "participant", "person", "user_id", "subject_id")


def _long_csv_header(path) -> list[str] | None:
    """The header of a CSV in the long multichannel layout (it names an id column, or a
    label and a time column: a recorded stream), else None."""
    from rnnkit.data.labeled_text import LABEL_NAMES

    try:
        with open_text(path) as f:
            header = next(csv.reader(f), [])
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    names = [h.strip().lower() for h in header]
    stream = any(n in TIME_COLUMNS for n in names) and any(n in LABEL_NAMES and n != "y" for n in names)
    return header if stream or any(n in ID_COLUMNS for n in names) else None


def _stream_records(lines: list[str]) -> list[tuple[int, list[str]]]:
    """[(line number, fields)] of the non-blank records of CSV lines; a line of a file
    whose records end in ';' (WISDM's raw files) may hold several of them, or one without it."""
    ends = sum(line.rstrip().endswith(";") for line in lines[:50])
    out = []
    for ln, line in enumerate(lines, start=1):
        for rec in (line.split(";") if ends else (line,)):
            if rec.strip():
                out.append((ln, next(csv.reader([rec]))))
    return out


def _headerless_stream_names(path) -> list[str] | None:
    """Column names for a recorded stream without a header, else None: WISDM's raw files
    (``33,Jogging,49105962326000,-0.69,12.68,0.50;``, ``1600,A,252207666810782,…;``).
    In the first 200 records (at least 20), one column is text in every row (the label) and the other
    columns are numbers: a whole-number column before the label is the subject, one that
    grows from row to row the time (there must be one), and 2 to 16 others the channels."""
    try:
        with open_text(path) as f:
            head = [line for _, line in zip(range(200), f)]
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    recs = [r for _, r in _stream_records([line.rstrip("\r\n") for line in head])]
    if len(recs) < 20 or len(recs[0]) < 4 or sum(len(r) == len(recs[0]) for r in recs) < 0.9 * len(recs):
        return None
    recs = [r + [""] * (len(recs[0]) - len(r)) for r in recs if len(r) <= len(recs[0])]
    cols = list(zip(*recs))
    nums = [[_number(v) for v in col if v.strip()] for col in cols]       # blank: a missing value
    text = [j for j, col in enumerate(nums) if col and all(v is None for v in col)]
    if len(text) != 1 or any(v is None for j, col in enumerate(nums) if j != text[0] for v in col):
        return None
    lab = text[0]
    names = []
    for j, col in enumerate(nums):
        if j == lab:
            names.append("label")
            continue
        whole = bool(col) and all(v == int(v) for v in col)
        if whole and j < lab and "subject" not in names:
            names.append("subject")
        elif whole and "time" not in names and all(b >= a for a, b in zip(col, col[1:])) and col[-1] > col[0]:
            names.append("time")
        else:
            names.append(f"channel_{j}")
    # a recording has a clock and a few sensor channels (a labelled series per row has neither)
    return names if "time" in names and 2 <= sum(n.startswith("channel_") for n in names) <= 16 else None


def read_multichannel_csv(path, id_column=None, label_column=None, time_column=None, missing: str = "error",
                          names=None):
    """Read multichannel cases from a long CSV: one row per case and time step.

    Layout (header required)::

        id,label,t,ax,ay,az
        walk01,walk,0,0.12,-0.40,9.81
        walk01,walk,1,0.31,-0.35,9.78
        …

    ``id_column`` (default: the first column named id/case/sample/sequence/series_id) groups
    the rows of one case, in file order (cases may interleave). Without one, the file is a
    recorded stream (``user,activity,timestamp,x,y,z``: a time column and a label column):
    each run of consecutive rows with the same label (and subject, a column named user,
    subject, participant, …) is a case. ``label_column`` (default:
    the first column named label, class, target, …) holds the case's label (the same on
    all its rows); ``time_column`` (default: a column named t, time, timestamp or step, if
    any) is dropped; every other column is a channel. An empty label, a label that changes
    within a case and a non-numeric value are :class:`RnnkitError` naming the line.

    A file where every id has one row and there are several value columns is the other
    layout, one series per row (``id,label,t1,t2,…``): each row is then a univariate
    series of its values.

    ``names``: the column names of a file without a header (a stream whose records may
    end in ';': :func:`_headerless_stream_names`); its first line is then data.

    Shapes:
        returns (list of n float64 arrays (T_i, C), list of n str labels)
    """
    check_choice(missing, "missing", _MISSING, "read_multichannel_csv")
    path, lines = _read_lines(path)
    if names is None:
        rows = [(ln, r) for ln, r in enumerate(csv.reader(lines), start=1) if r and any(c.strip() for c in r)]
    else:                   # a stream without a header: a short record's last values are missing
        rows = [(0, list(names))] + [(ln, r + [""] * (len(names) - len(r))) for ln, r in _stream_records(lines)]
    if len(rows) < 2:
        raise RnnkitError(f"{path}: expected a header and data rows")
    names = [c.strip() for c in rows[0][1]]
    low = [n.lower() for n in names]

    def find(spec, choices, what):
        if spec is None:
            hits = [i for i, n in enumerate(low) if n in choices]
            return hits[0] if hits else None
        if spec not in names:
            raise RnnkitError(f"{path}: no {what} column {spec!r}; available columns: {', '.join(names)}")
        return names.index(spec)

    from rnnkit.data.labeled_text import LABEL_NAMES, name_index

    idc = find(id_column, ID_COLUMNS, "id")
    # beside x and z columns, y is an axis, not the label
    label_names = [n for n in LABEL_NAMES if n != "y"] if {"x", "z"} <= set(low) else LABEL_NAMES
    lab = name_index(names, label_names) if label_column is None else find(label_column, (), "label")
    if lab is None:
        raise RnnkitError(f"{path}: no label column (one of {', '.join(LABEL_NAMES[:8])}, …)")
    tc = find(time_column, TIME_COLUMNS, "time")
    subject = find(None, SUBJECT_COLUMNS, "subject") if idc is None else None
    if idc is None and tc is None:
        raise RnnkitError(f"{path}: no id column (one of {', '.join(ID_COLUMNS)}) to group the rows of a case")
    chans = [i for i in range(len(names)) if i not in (idc, lab, tc, subject)]
    if not chans:
        raise RnnkitError(f"{path}: no channel columns besides id, label and time")
    run, last = 0, None
    cases: dict[str, list] = {}
    labels: dict[str, str] = {}
    first: dict[str, int] = {}
    for ln, r in rows[1:]:
        if len(r) < len(names):
            raise RnnkitError(f"{path}, line {ln}: {len(r)} fields, expected {len(names)}")
        label = _norm_label(r[lab])
        if not label:
            raise RnnkitError(f"{path}, line {ln}: empty label")
        if idc is None:              # a stream: a case is a run of rows of one subject and label
            who = "" if subject is None else r[subject].strip()
            run += (who, label) != last
            last = (who, label)
            key = f"{who} {label} {run}"
        else:
            key = r[idc].strip()
        if labels.setdefault(key, label) != label:
            raise RnnkitError(f"{path}, line {ln}: case {key!r} changes label from {labels[key]!r} to {label!r}")
        first.setdefault(key, ln)
        cases.setdefault(key, []).append([_parse_value(r[c], path, ln, ("", "nan", "?")) for c in chans])
    series = []
    if len(chans) > 1 and all(len(v) == 1 for v in cases.values()):
        # one row per id: a series per row (id, label, then its values), not one step of channels
        series = [_handle_missing(np.asarray(v[0], dtype=np.float64), missing, path, first[key]).reshape(-1, 1)
                  for key, v in cases.items()]
        return series, [labels[k] for k in cases]
    for key, vals in cases.items():
        arr = np.asarray(vals, dtype=np.float64)
        cols = [_handle_missing(arr[:, j], missing, path, first[key],
                                what=f"(case {key!r} starting there, channel {names[chans[j]]!r})")
                for j in range(arr.shape[1])]
        if len({len(c) for c in cols}) != 1:
            raise RnnkitError(f"{path}: case {key!r} has channels of different lengths after handling gaps")
        series.append(np.stack(cols, axis=1))
    return series, [labels[k] for k in cases]


def _read_ucr_txt(path, missing: str = "trim"):
    """The archive's ``.txt`` layout (and its files without a suffix): a label, then the
    values, separated by whitespace, or by commas (UCR 2015)."""
    with open_text(os.fspath(path)) as f:
        first = next((line for line in f if line.strip()), "")
    if "," in first:
        return read_labeled_csv(path, missing=missing)
    return read_ucr_tsv(path, missing=missing, delimiter=None)


def read_labeled_sequences(path, **kwargs):
    """Read any supported classification file, chosen by suffix: ``.tsv``, ``.ts``,
    ``.csv``, ``.arff`` (:func:`rnnkit.data.arff.read_arff`), or ``.txt`` and no suffix
    (the archive's whitespace- or comma-separated layout, a label then the values).

    A ``.csv`` whose header names an id column is read with :func:`read_multichannel_csv`
    (several channels per step, one row per step), any other with :func:`read_labeled_csv`
    (one series per row). Keyword arguments go to the reader.
    """
    from rnnkit.data.arff import read_arff

    suffix = data_suffix(path)
    if suffix == ".csv" and _long_csv_header(os.fspath(path)) is not None:
        return read_multichannel_csv(path, missing=kwargs.get("missing", "error"))
    stream = _headerless_stream_names(os.fspath(path)) if suffix in (".csv", ".txt", "") else None
    if stream is not None:      # a gap inside a recording (a sensor's drop-out) is interpolated
        import warnings

        from rnnkit.errors import DataNote

        roles = [f"column {j + 1} the {n}" for j, n in enumerate(stream) if not n.startswith("channel_")]
        chans = sum(n.startswith("channel_") for n in stream)
        warnings.warn(DataNote(f"{os.fspath(path)}: no header; read as a recorded stream, {', '.join(roles)}, "
                               f"{chans} channels"), stacklevel=2)
        missing = kwargs.get("missing", "interpolate")
        return read_multichannel_csv(path, missing="interpolate" if missing == "trim" else missing, names=stream)
    readers = {".tsv": read_ucr_tsv, ".ts": read_ucr_ts, ".csv": read_labeled_csv, ".arff": read_arff,
               ".txt": _read_ucr_txt, "": _read_ucr_txt}
    if suffix not in readers:
        raise RnnkitError(f"{os.fspath(path)}: unsupported file type {suffix!r}; "
                          f"expected one of {', '.join(k for k in readers if k)} (or none)")
    return readers[suffix](path, **kwargs)


def read_labeled_file(path, missing: str = "trim"):
    """(X, y) of a classification file (:func:`read_labeled_sequences`) that must hold class
    labels; a file without them is an RnnkitError naming it."""
    X, y = read_labeled_sequences(path, missing=missing)
    if y is None:
        raise RnnkitError(f"{os.fspath(path)}: the file has no class labels")
    return X, y


def read_sequence_files(path, missing: str = "trim", text: bool = False):
    """Sequences to classify from a file or from every file of a folder (sorted by name).

    Numeric sequences (``text=False``): ``.tsv``, ``.ts``, ``.csv``, ``.arff`` or ``.txt`` files as
    :func:`read_labeled_sequences` reads them, or a folder of one file per channel
    (:mod:`rnnkit.data.channels`). Strings (``text=True``): UTF-8 text
    files, one sequence per non-blank line, or labelled text
    (:func:`rnnkit.data.labeled_text.read_text_file`).
    Returns ``(X, y, files)``: the sequences, their labels (None when a file has
    none) and the file each came from. A folder with no such file, or files of which
    some have labels and some not, is an RnnkitError.
    """
    path = os.fspath(path)
    suffixes = (".txt", ".tsv", ".csv") if text else (".tsv", ".ts", ".csv", ".arff", ".txt")
    if not text and os.path.isdir(path):
        from rnnkit.data.channels import is_channel_folder, read_channel_folder

        if is_channel_folder(path):                 # one file per channel (the UCI HAR layout)
            X, y, _ = read_channel_folder(path)
            return list(X), y, [path] * len(X)
        from rnnkit.data.channels import is_recording_folder, read_recording_folder

        if is_recording_folder(path):               # label sub-directories of recordings
            return read_recording_folder(path)
    if text and os.path.isdir(path):
        from rnnkit.data.labeled_text import is_text_folder, read_text_folder

        if is_text_folder(path):                    # label sub-directories of documents
            return read_text_folder(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if data_suffix(f) in suffixes and os.path.isfile(os.path.join(path, f)))
        if not files:
            raise RnnkitError(f"{path}: the folder holds no {', '.join(suffixes)} file to read sequences from")
    else:
        files = [path]
    X, y, sources, labelled = [], [], [], set()
    for f in files:
        if text:
            from rnnkit.data.labeled_text import read_text_file

            xs, ys = read_text_file(f)
        else:
            xs, ys = read_labeled_sequences(f, missing=missing)
        if not len(xs):
            raise RnnkitError(f"{f}: holds no sequences")
        labelled.add(ys is not None)
        X.extend(xs)
        y.extend(ys if ys is not None else [None] * len(xs))
        sources.extend([f] * len(xs))
    if len(labelled) > 1:
        raise RnnkitError(f"{path}: some files have class labels and some do not")
    return X, (y if labelled == {True} else None), sources
