"""The library's argument checks, one of each: clear errors instead of NumPy's deep ones.

Each check names the caller (``where``, e.g. ``"LSTM"``) and the argument, and says
what was expected and what came: ``LSTM: expected x with 3 dims (T, B, I), got 2``.
A wrong type is a TypeError, a wrong value a ValueError. Scalars may come as Python
or NumPy scalars or 0-d arrays (what a state dict loaded from ``.npz`` holds).
"""

from __future__ import annotations

import math

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


class NonFiniteError(ValueError):
    """An array that must be finite holds NaN or inf: bad data at a model's entry, or
    activations that overflowed inside it (the Trainer tells the two apart)."""


def check_dtype(dtype, where: str):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dt}")
    return dt


def check_float_array(a, name: str, where: str, ndim: int | None = None, dims: str = "",
                      finite: bool = True) -> np.ndarray:
    """Check that ``a`` is a floating array (of ``ndim`` dims); return it as an ndarray.

    Integer, boolean and object arrays are refused with a TypeError (a silent cast
    would hide a bug, e.g. token ids passed where one-hot vectors belong). With
    ``finite`` a NaN or inf is a ValueError.
    """
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple)):
            a = np.asarray(a)
        else:
            raise TypeError(f"{where}: expected {name} to be a numpy array, got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{where}: expected {name} to hold floats (float32 or float64), got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        shape = f" {dims}" if dims else ""
        raise ValueError(f"{where}: expected {name} with {ndim} dims{shape}, got {a.ndim}")
    if finite and not all_finite(a):
        raise NonFiniteError(f"{where}: {name} contains NaN or inf")
    return a


_compiled_finite = None     # rnnkit.fast's all_finite, looked up at the first call (False: none)


def all_finite(a: np.ndarray) -> bool:
    """Whether no element of the float array ``a`` is NaN or ±inf.

    Where rnnkit.fast is built, by its C ``all_finite`` (C-contiguous float32/float64
    arrays: the exponent bits of every element, one call of about 0.1 µs, what a
    generation step's three checks can afford). Else, or for another layout, as one
    dot product, Σ aᵢ², which a NaN or an inf makes NaN or inf: a finite sum proves
    every element finite, and costs a third of np.isfinite(a).all() on a (1, 1, 64)
    input. Only a sum that is not finite (a bad element, or squares past the dtype's
    largest value) is checked element-wise.
    """
    global _compiled_finite
    if _compiled_finite is None:
        from rnnkit import fast       # here, not at import: rnnkit.fast imports this module's users

        _compiled_finite = getattr(fast._ext, "all_finite", False)
    if _compiled_finite:
        known = _compiled_finite(a)
        if known is not None:
            return known
    flat = a.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):      # squares past the largest value: no warning
        return math.isfinite(np.dot(flat, flat)) or bool(np.isfinite(flat).all())


def check_shape(a: np.ndarray, expected: tuple, name: str, where: str) -> None:
    """Raise ValueError unless ``a.shape == expected``."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{where}: expected {name} of shape {tuple(expected)}, got {tuple(a.shape)}")


def check_lengths(lengths, T: int, B: int, where: str):
    """Validate per-sequence lengths: B integers in [1, T]. Returns an int64 array or None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{where}: expected lengths to be integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"{where}: expected lengths of shape ({B},) (one per sequence), got {arr.shape}")
    if arr.size and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"{where}: lengths must lie in [1, T={T}], got min {arr.min()} and max {arr.max()}")
    return arr.astype(np.int64)


def check_choice(value, name: str, choices, where: str):
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_positive_int(value, name: str, where: str, minimum: int = 1) -> int:
    """``value`` as a Python int >= ``minimum``: TypeError for a non-integer (bools and
    floats included, even 2.0), ValueError below the minimum."""
    value = _item(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_number(value, name: str, where: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False) -> float | None:
    """``value`` as a finite Python float in [low, high] (either end open as asked, either
    bound None for none); None passes through with ``allow_none``.

    A Python float keeps NumPy arithmetic in an array's dtype (a NumPy float64 scalar
    would promote float32 parameters to float64). The error states the rule:
    ``must be >= 0``, ``must be < 1`` or ``must lie in [0, 1)``, and ``must be finite``.
    """
    if value is None and allow_none:
        return None
    v = _item(value)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        none = "None or " if allow_none else ""
        raise TypeError(f"{where}: {name} must be {none}a number, got {type(value).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{where}: {name} must be finite, got {v}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if below or above:
        if low is not None and high is not None:
            rule = f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            rule = f"be {'>' if low_open else '>='} {low:g}"
        else:
            rule = f"be {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{where}: {name} must {rule}, got {value}")
    return v


def check_prob(p, name: str, where: str) -> float:
    """A probability that can be dropped: a number in [0, 1) (1 would drop everything)."""
    return check_number(p, name, where, 0.0, 1.0, high_open=True)


def check_flag(value, name: str, where: str) -> bool:
    """``value`` as a bool; only True or False (or NumPy's bools) are accepted: 1, "yes"
    and None are TypeErrors rather than silently true or false."""
    value = _item(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_seed(seed, where: str, allow_none: bool = True) -> int | None:
    """A seed: an int >= 0, or None (fresh entropy) when ``allow_none``."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(_item(seed), (int, np.integer)):
        none = "None or " if allow_none else ""
        raise TypeError(f"{where}: seed must be {none}an integer, got {type(seed).__name__}")
    return check_positive_int(seed, "seed", where, minimum=0)


def _item(value):
    """A 0-d array as its Python scalar; anything else as it is."""
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
