"""Read Weka ``.arff`` files of the UCR/UEA archive: labelled series, uni- or multivariate.

The header (``@relation``, ``@attribute``, ``@data``; case-insensitive; ``%`` starts a
comment) declares the columns; the last attribute is the class. Two layouts:

* univariate: one numeric attribute per time step, then the class; a case per line,
  ``v1,v2,…,vT,label``;
* multivariate: one ``relational`` attribute (its own ``@attribute`` lines up to
  ``@end``), then the class; a case per line, the channels quoted as one field and
  separated by a literal ``\\n``: ``'x1,x2,…\\ny1,y2,…',label``.

``?`` is a missing value, handled by ``missing`` as in :mod:`rnnkit.data.ucr`. Labels are
normalised as there (``1.0`` and ``1`` are one class).
"""

from __future__ import annotations

import csv

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.data.ucr import _MISSING, _handle_missing, _norm_label, _parse_value, _read_lines
from rnnkit.errors import RnnkitError

__all__ = ["read_arff"]


def _data_start(path: str, lines: list[str]) -> tuple[int, bool]:
    """(index of the first line after ``@data``, whether the cases are relational)."""
    relational = False
    for i, raw in enumerate(lines):
        s = raw.strip()
        low = s.lower()
        if not s or s.startswith("%"):
            continue
        if low.startswith("@attribute"):
            parts = s.split()
            relational |= len(parts) >= 3 and parts[2].lower() == "relational"
        elif low.startswith("@data"):
            return i + 1, relational
        elif not low.startswith(("@relation", "@end")):
            raise RnnkitError(f"{path}, line {i + 1}: expected an @relation, @attribute or @data line before "
                              f"the data, got {s[:60]!r}")
    raise RnnkitError(f"{path}: no @data line")


def read_arff(path, missing: str = "trim"):
    """Read a UCR/UEA ``.arff`` file (module docstring).

    Shapes:
        returns (list of n float64 arrays (T_i, D), list of n str labels)
    """
    check_choice(missing, "missing", _MISSING, "read_arff")
    path, lines = _read_lines(path)
    start, relational = _data_start(path, lines)
    series, labels = [], []
    for ln in range(start + 1, len(lines) + 1):
        raw = lines[ln - 1].strip()
        if not raw or raw.startswith("%"):
            continue
        fields = next(csv.reader([raw], quotechar="'" if raw[0] == "'" else '"', skipinitialspace=True))
        if len(fields) < 2:
            raise RnnkitError(f"{path}, line {ln}: expected values and a label, got {raw[:60]!r}")
        label = fields[-1].strip().strip("'\"")
        if not label:
            raise RnnkitError(f"{path}, line {ln}: empty label")
        if relational:
            if len(fields) != 2:
                raise RnnkitError(f"{path}, line {ln}: expected 'channels',label with the channels quoted, "
                                  f"got {len(fields)} fields")
            chans = [c for c in fields[0].replace("\\n", "\n").split("\n") if c.strip()]
            cols = [_handle_missing(np.array([_parse_value(t, path, ln, ("?", "nan", "")) for t in c.split(",")]),
                                    missing, path, ln, f"(channel {d + 1})") for d, c in enumerate(chans)]
            if len({len(c) for c in cols}) != 1:
                raise RnnkitError(f"{path}, line {ln}: the channels have different lengths "
                                  f"({', '.join(str(len(c)) for c in cols)})")
            series.append(np.stack(cols, axis=1))
        else:
            vals = np.array([_parse_value(t, path, ln, ("?", "nan", "")) for t in fields[:-1]], dtype=np.float64)
            series.append(_handle_missing(vals, missing, path, ln).reshape(-1, 1))
        labels.append(_norm_label(label))
    if not series:
        raise RnnkitError(f"{path}: no cases after @data")
    return series, labels
