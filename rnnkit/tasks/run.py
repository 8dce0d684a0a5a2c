"""The run directory every task writes, and the small writers it is made with.

Files are written atomically (a temporary file, then a rename): a reader never
sees half a file, and a crash leaves the previous version in place.
"""

from __future__ import annotations

import json
import math
import os

__all__ = ["jsonable", "write_json", "write_text", "saved_task", "a_cell"]


def jsonable(obj):
    """Arrays to lists, NumPy scalars to numbers, NaN/inf to None: strict JSON."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> None:
    """``obj`` as strict JSON (see :func:`jsonable`), atomically."""
    from rnnkit.io import save_json

    save_json(path, jsonable(obj))


def write_text(path, text: str) -> None:
    """``text`` as UTF-8, atomically."""
    from rnnkit.io import atomic_write

    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def saved_task(directory) -> str | None:
    """The task recorded in a run directory's config.json (None when unreadable)."""
    try:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            meta = json.load(f).get("meta", {})
        return meta.get("task") if isinstance(meta, dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def a_cell(cell: str) -> str:
    """'an LSTM', 'a GRU', 'an RNN', 'an RNN (ReLU)': for messages."""
    name = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN", "rnn-relu": "an RNN (ReLU)"}
    return name.get(cell, f"a {cell}")
