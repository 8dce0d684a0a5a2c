"""What every task shares: number checks and loading a task's checkpoint."""

from __future__ import annotations

import math
import os

import numpy as np

from rnnkit import io as rkio
from rnnkit.errors import CheckpointError


def check_number(value, name: str, where: str, low: float, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False):
    """``value`` as a float in the interval [low, high] (ends open as asked); None passes
    through with ``allow_none``. TypeError for a non-number, ValueError out of range."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    bad = (not math.isfinite(v) or (v <= low if low_open else v < low)
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(f"{where}: {name} must lie in {lo}{low}, {'inf' if high is None else high}{hi}, got {value}")
    return v


def load_task(directory, task: str, cls_name: str) -> rkio.Checkpoint:
    """Load a checkpoint and check it was written by ``task`` (CheckpointError if not)."""
    directory = os.fspath(directory)
    ckpt = rkio.load_checkpoint(directory)
    found = ckpt.meta.get("task")
    if found != task:
        what = (f"was written by task {found!r}, not {task!r}" if found is not None else
                f"holds no {task!r} task model (a bare model checkpoint, or a run that did not finish)")
        raise CheckpointError(f"{directory}: {what}; load it with the class of that task, not {cls_name}")
    return ckpt
