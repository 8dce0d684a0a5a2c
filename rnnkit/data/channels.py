r"""Sensor recordings stored one file per channel (the UCI HAR layout) -> multichannel series.

A folder of this layout::

    DIR/Inertial Signals/body_acc_x_train.txt   one row per recording: its values over time,
    DIR/Inertial Signals/body_acc_y_train.txt   separated by spaces or commas; the same
    ...                                          number of rows and of values in every file
    DIR/y_train.txt                              the label of each row, one per line (optional)
    DIR/../activity_labels.txt                   ``id name`` lines naming numeric labels
                                                 (optional; DIR itself is looked in first)

is read as n recordings of shape (T, C): C channels (the files, sorted by name; the
split's suffix ``_train``/``_test`` dropped from their names), T steps. The channel files
may also lie in DIR itself beside the label file. The label file is named ``y_*.txt``,
``y.txt``, ``labels.txt`` or ``label.txt``; ``subject*``, ``X_*`` (engineered features),
``features*`` and ``*_labels.txt`` files are not channels.

A folder of one sub-directory per label holding one recording per file (MotionSense's
``A_DeviceMotion_data/<activity>/sub_1.csv``, many gesture and EMG sets)::

    DIR/walk/sub_1.csv      a row per time step, a column per channel (a header naming them
    DIR/walk/sub_2.csv      or none); a time or index column is not a channel
    DIR/run/sub_1.csv

is read by :func:`read_recording_folder`: one (T_i, C) series per file, labelled by its
sub-directory.
"""

from __future__ import annotations

import os
import re

import numpy as np

from rnnkit.data._util import first_bad_magnitude, is_number, magnitude_problem, read_file_text
from rnnkit.errors import RnnkitError

__all__ = ["is_channel_folder", "read_channel_folder", "is_recording_folder", "read_recording_folder"]

LABEL_FILES = re.compile(r"^(y(_.+)?|labels?)\.txt$", re.I)
NOT_CHANNELS = re.compile(r"^(subject|x_|features|.*_labels\.txt$|readme)", re.I)


def _txt(folder) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(".txt") and not f.startswith(".")
                  and os.path.isfile(os.path.join(folder, f)))


def _layout(path):
    """(label file or None, channel folder, channel files) of a channel folder, else None."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return None
    labels = [f for f in _txt(path) if LABEL_FILES.match(f)]
    label = os.path.join(path, labels[0]) if len(labels) == 1 else None
    subs = [os.path.join(path, d) for d in sorted(os.listdir(path))
            if not d.startswith((".", "_")) and os.path.isdir(os.path.join(path, d))]
    for folder in [s for s in subs if len(_channels(s)) >= 2] + [path]:
        files = _channels(folder)
        if len(files) >= 2 and (label is not None or folder != path) and _numbers_first(os.path.join(folder, files[0])):
            return label, folder, files
    return None


def _numbers_first(path) -> bool:
    """Whether the first non-blank line of a file is numbers (a channel file's first
    recording), not words (a folder of documents)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    line = next((ln for ln in head.split("\n") if ln.strip()), "")
    cells = [c for c in re.split(r"[\s,]+", line.strip()) if c]
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return bool(cells)


def _channels(folder) -> list[str]:
    return [f for f in _txt(folder) if not LABEL_FILES.match(f) and not NOT_CHANNELS.match(f)]


def is_channel_folder(path) -> bool:
    """Whether ``path`` is a folder of the module docstring's layout."""
    return _layout(path) is not None


def _rows(path) -> list[list[str]]:
    _, text = read_file_text(path, "auto", "channel file")
    return [re.split(r"[\s,]+", line.strip()) for line in text.split("\n") if line.strip()]


def _label_names(folder) -> dict:
    """{id: name} of an ``activity_labels.txt`` (or ``*_labels.txt``) beside the folder or above it."""
    for where in (folder, os.path.dirname(os.path.abspath(folder))):
        names = [f for f in _txt(where) if f.lower().endswith("_labels.txt")] if os.path.isdir(where) else []
        if len(names) == 1:
            _, text = read_file_text(os.path.join(where, names[0]), "auto", "label names file")
            pairs = [line.strip().split(None, 1) for line in text.split("\n") if line.strip()]
            if pairs and all(len(p) == 2 for p in pairs):
                return {k: v.strip() for k, v in pairs}
    return {}


def read_channel_folder(path):
    """(X, y, channels) of a channel folder (module docstring): X float64 (n, T, C), y the
    n labels (named by an ``activity_labels.txt`` when one names them all) or None, and
    the channel names. Files whose rows or lengths differ, and values that are not
    numbers, are an RnnkitError naming the file and line."""
    path = os.fspath(path)
    layout = _layout(path)
    if layout is None:
        raise RnnkitError(f"{path}: not a folder of channel files (expected DIR/<signals>/<channel>.txt with "
                          f"one recording per row, and DIR/y.txt with its labels)")
    label_file, folder, files = layout
    blocks, names = [], []
    for f in files:
        full = os.path.join(folder, f)
        rows = _rows(full)
        if not rows:
            raise RnnkitError(f"{full}: the channel file is empty")
        if blocks and (len(rows), len(rows[0])) != blocks[0].shape:
            raise RnnkitError(f"{full}: {len(rows)} rows of {len(rows[0])} values; {files[0]} has "
                              f"{blocks[0].shape[0]} rows of {blocks[0].shape[1]}: every channel file needs the same")
        for n, row in enumerate(rows, start=1):
            if len(row) != len(rows[0]):
                raise RnnkitError(f"{full}: line {n} has {len(row)} values, line 1 has {len(rows[0])}")
        try:
            block = np.array(rows, dtype=np.float64)
        except ValueError:
            n = next(i for i, r in enumerate(rows, start=1) if not all(is_number(v) for v in r))
            raise RnnkitError(f"{full}: line {n}: a value that is not a number") from None
        if not np.isfinite(block).all():
            n = int(np.argwhere(~np.isfinite(block))[0][0]) + 1
            raise RnnkitError(f"{full}: line {n}: a value that is NaN or inf; fill it first")
        bad = first_bad_magnitude(block)
        if bad is not None:
            raise RnnkitError(f"{full}: line {bad[0] + 1}: value {block[bad]!r} {magnitude_problem(block[bad])}")
        blocks.append(block)
        names.append(re.sub(r"_(train|test|val|valid|validation)$", "", f[:-4], flags=re.I))
    X = np.stack(blocks, axis=2)
    y = None
    if label_file is not None:
        _, text = read_file_text(label_file, "auto", "label file")
        y = [line.strip() for line in text.split("\n") if line.strip()]
        if len(y) != len(X):
            raise RnnkitError(f"{label_file}: {len(y)} labels for {len(X)} recordings in {folder}")
        named = _label_names(path)
        if named and all(v in named for v in y):
            y = [named[v] for v in y]
    import warnings

    from rnnkit.errors import DataNote

    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    warnings.warn(DataNote(f"{path}: {len(X)} recordings of {X.shape[1]} steps × {len(names)} channels, one file "
                           f"each ({shown})" + (f"; labels from {os.path.basename(label_file)}" if y else "")),
                  stacklevel=2)
    return X, y, names


RECORDING_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")


def _recordings(path) -> dict:
    """{label: [recording files]} of a folder of label sub-directories of numeric tables."""
    path = os.fspath(path)
    out = {}
    if not os.path.isdir(path):
        return out
    for label in sorted(os.listdir(path)):
        sub = os.path.join(path, label)
        if not os.path.isdir(sub) or label.startswith((".", "_")) or label == "__MACOSX":
            continue
        files = sorted(os.path.join(sub, f) for f in os.listdir(sub)
                       if f.lower().endswith(RECORDING_SUFFIXES) and not f.startswith(".")
                       and os.path.isfile(os.path.join(sub, f)))
        if files:
            out[label] = files
    return out


def _numbers_second(path) -> bool:
    """Whether the second non-blank line of a file is numbers (below a header, or not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    lines = [ln for ln in head.split("\n") if ln.strip()]
    if len(lines) < 2:
        return False
    cells = [c for c in re.split(r"[\s,;]+", lines[1].strip()) if c]
    return len(cells) >= 1 and all(is_number(c) for c in cells)


def is_recording_folder(path) -> bool:
    """Whether ``path`` holds label sub-directories of recordings (module docstring): the
    first file of each a table of numbers."""
    found = _recordings(path)
    return len(found) >= 2 and all(_numbers_second(files[0]) for files in found.values())


def read_recording_folder(path):
    """(X, y, files) of a folder of label sub-directories of recordings: each file one
    series (T_i, C) as :func:`rnnkit.data.series.read_csv` reads a table (a header or
    none; a date, time or row-index column, and columns of text, are not channels; empty
    cells interpolated), labelled by its sub-directory. Recordings whose channels differ
    from the first's are an RnnkitError naming the file."""
    import warnings

    from rnnkit.data.series import read_csv
    from rnnkit.data.sniff import choose_date_column
    from rnnkit.errors import DataNote

    path = os.fspath(path)
    found = _recordings(path)
    if not found:
        raise RnnkitError(f"{path}: no label sub-directories of recordings (expected {path}/<label>/<recording>.csv)")
    X, y, files, channels = [], [], [], None
    for label, paths in found.items():
        for f in paths:
            data = read_csv(f, None, choose_date_column(f, None, None))
            if channels is None:
                channels = data.columns
            elif data.columns != channels:
                raise RnnkitError(f"{f}: channels {', '.join(data.columns)}; {files[0]} has {', '.join(channels)}: "
                                  f"every recording needs the same")
            X.append(data.values)
            y.append(label)
            files.append(f)
    lengths = [len(x) for x in X]
    warnings.warn(DataNote(f"{path}: {len(X)} recordings in {len(found)} label folders, {len(channels)} channels "
                           f"({', '.join(channels[:6])}{', …' if len(channels) > 6 else ''}), "
                           f"{min(lengths):,}–{max(lengths):,} steps"), stacklevel=2)
    return X, y, files
