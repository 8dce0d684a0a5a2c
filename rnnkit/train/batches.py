"""What the Trainer reads: batch sources (lists or functions) and checks of each batch."""

from __future__ import annotations

import math
import typing
from typing import Callable, Iterable

import numpy as np

__all__ = ["as_train_source", "as_val_source", "check_batch", "carry_at", "with_context", "batch_finite",
           "oversized_weights"]


def with_context(exc: BaseException, context: str) -> BaseException:
    """The same exception type with ``context`` (the step) in front of its message."""
    try:
        new = type(exc)(f"{context}: {exc}")
    except Exception:  # an exception class whose constructor wants more than a message
        return exc
    for attr in ("step", "epoch", "batch"):
        if hasattr(exc, attr):
            setattr(new, attr, getattr(exc, attr))
    return new


def _is_one_shot(obj) -> bool:
    return isinstance(obj, typing.Iterator)


def as_train_source(batches, name: str) -> Callable[[int, np.random.Generator], Iterable]:
    """``batches`` as a function (epoch, rng) -> iterable of batch dicts."""
    if isinstance(batches, (list, tuple)):
        return lambda epoch, rng: batches
    if _is_one_shot(batches):
        raise TypeError(f"{name} is a one-shot iterator (a generator?) and would be used up after "
                        "one epoch; pass a list of batches or a function (epoch, rng) -> batches")
    if callable(batches):
        return batches
    raise TypeError(f"{name} must be a list of batch dicts or a function (epoch, rng) -> batches, "
                    f"got {type(batches).__name__}")


def as_val_source(batches, name: str) -> Callable[[], Iterable]:
    """``batches`` as a function () -> iterable of batch dicts."""
    if isinstance(batches, (list, tuple)):
        return lambda: batches
    if _is_one_shot(batches):
        raise TypeError(f"{name} is a one-shot iterator (a generator?) and would be used up after "
                        "one evaluation; pass a list of batches or a function () -> batches")
    if callable(batches):
        return batches
    raise TypeError(f"{name} must be a list of batch dicts or a function () -> batches, "
                    f"got {type(batches).__name__}")


def check_batch(batch, what: str, k2: int | None) -> None:
    """A batch is a dict; with TBPTT, x (time-major) has at most k2 steps."""
    if not isinstance(batch, dict):
        raise TypeError(f"{what}: expected a dict of arrays (e.g. {{'x': ..., 'y': ...}}), "
                        f"got {type(batch).__name__}")
    x = batch.get("x")
    if k2 is not None and isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] > k2:
        raise ValueError(f"{what}: x has {x.shape[0]} time steps (time-major), more than "
                         f"tbptt_k2={k2}; cut the stream into windows of k2 steps")

def carry_at(batch, config) -> int | None:
    """k1 when it is shorter than the window (time-major x), else None (the final state)."""
    k1 = config.tbptt_k1
    if k1 is None or not config.carry_state:
        return None
    x = batch.get("x")
    T = x.shape[0] if isinstance(x, np.ndarray) and x.ndim >= 1 else None
    return k1 if T is None or k1 < T else None


def batch_finite(batch) -> bool:
    """Whether every float array in a batch dict is free of NaN and inf."""
    if not isinstance(batch, dict):
        return True
    for v in batch.values():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all():
            return False
    return True


def oversized_weights(params: dict):
    """The first parameter too large to compute with, as (name, norm, bound), or None.

    Divergence the loss may not show yet: weights whose norm passes sqrt(max float)
    / 1000 (1.8e16 in float32) make the network's products overflow its dtype. One
    dot product per parameter in its own dtype; squares that overflow give inf.
    """
    for name, p in params.items():
        flat = p.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            sq = float(np.dot(flat, flat))
        bound = math.sqrt(float(np.finfo(p.dtype).max)) / 1000.0
        if not math.isfinite(sq) or sq > bound * bound:
            return name, (math.sqrt(sq) if math.isfinite(sq) else sq), bound
    return None
