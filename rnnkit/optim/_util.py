"""What the optimizers and the schedules share: checking state dicts and options."""

from __future__ import annotations

import inspect

import numpy as np


def key_errors(where: str, expected, got) -> None:
    """A KeyError naming the missing and the unexpected keys, if any."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise KeyError(f"{where}: " + "; ".join(parts))


def scalar(d: dict, key: str, where: str):
    """``d[key]`` as a Python number; ValueError unless it is a 0-d numeric array."""
    a = np.asarray(d[key])
    if a.ndim != 0 or a.dtype.kind not in "iuf":
        raise ValueError(f"{where}: {key!r} must be a 0-d numeric array, got shape {a.shape} "
                         f"dtype {a.dtype}")
    return a.item()


def check_kwargs(where: str, func, kw: dict, skip: tuple) -> None:
    """Unknown or missing options named clearly, before the call raises a vaguer TypeError."""
    sig = inspect.signature(func)
    allowed = [n for n in sig.parameters if n not in skip]
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise TypeError(f"{where}: unknown option(s) {unknown}; valid options: {', '.join(allowed) or 'none'}")
    required = [n for n in allowed if sig.parameters[n].default is inspect.Parameter.empty
                and sig.parameters[n].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                   inspect.Parameter.VAR_POSITIONAL)]
    missing = [n for n in required if n not in kw]
    if missing:
        raise TypeError(f"{where}: missing required option(s) {missing}")
