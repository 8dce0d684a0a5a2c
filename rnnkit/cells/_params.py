"""Parameter checks for the cells whose params are not the four PyTorch arrays
(:mod:`~rnnkit.cells.indrnn`, :mod:`~rnnkit.cells.minrnn`, the LSTM and GRU variants).

Each such cell describes its parameters as ``layout(I, H, ...) -> {key: shape}`` in
PyTorch's order; :func:`check_params` checks a params dict against it and returns
the arrays in the computation's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnkit._checks import check_float_array, check_shape


def get_array(params, key: str, where: str, ndim: int) -> np.ndarray:
    """params[key] as a float array of ``ndim`` dims (a missing key is a ValueError)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: expected params to be a dict of arrays, got {type(params).__name__}")
    if params.get(key) is None:
        raise ValueError(f"{where}: params is missing {key!r}")
    return check_float_array(params[key], f"params[{key!r}]", where, ndim=ndim, finite=False)


def check_params(params, layout: dict, dtype, where: str) -> dict:
    """``params`` checked against ``layout`` (key -> shape): no unknown key, every key of
    the layout present with its shape. Returns {key: array in ``dtype``} (no copy when
    the dtype matches)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: expected params to be a dict of arrays, got {type(params).__name__}")
    unknown = sorted(set(params) - set(layout))
    if unknown:
        raise ValueError(f"{where}: unknown params key(s) {unknown}; expected {list(layout)}")
    out = {}
    for key, shape in layout.items():
        a = get_array(params, key, where, len(shape))
        check_shape(a, shape, f"params[{key!r}]", where)
        out[key] = np.asarray(a, dtype=dtype)
    return out


def input_grads(x: np.ndarray, dA: np.ndarray, w_ih: np.ndarray, grads: dict, bias_keys=()) -> np.ndarray:
    """Add ∂L/∂W_ih = Σₜ dAₜᵀ xₜ and each bias key's Σₜ dAₜ into ``grads``; return dx = dA W_ih.

    Shapes:
        x (T, B, I), dA (T, B, G*H), w_ih (G*H, I) -> dx (T, B, I)
    """
    T, B, I = x.shape
    dA2 = dA.reshape(T * B, dA.shape[2])           # (T*B, G*H)
    grads["weight_ih"] = dA2.T @ x.reshape(T * B, I)
    if bias_keys:
        db = dA2.sum(axis=0)
        for i, key in enumerate(bias_keys):
            grads[key] = db if i == 0 else db.copy()
    return (dA2 @ w_ih).reshape(T, B, I)
