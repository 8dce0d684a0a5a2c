"""rnnkit.Linear's products on the recurrent loops' threads.

A training step of a recurrent model runs its loops on OpenMP threads (the
kernels'), and the output layer's products between them. Left to NumPy, those
products would wake the BLAS library's own pool of threads, which then spins for
a while beside the loops' and makes the next calls see a busy machine (one loop
thread instead of two: a char LM step on 2 cores 150 ms instead of 127). So while
the loops may use several threads, Linear's products run on the kernels' threads
too (``linear_fwd``, and ``grads`` for the backward), and NumPy's BLAS is held to
one thread for the rest (:func:`rnnkit.fast._util.threads_for_call`). Products too
small or too narrow for the kernels' panels stay with NumPy.
"""

from __future__ import annotations

import numpy as np

from rnnkit import fast
from rnnkit.fast import _util

MIN_WORK = 1 << 20          # multiply-adds below which NumPy's one thread is as quick
MIN_WIDTH = 16              # fewer inputs or outputs fill too little of a panel


def _loops_run() -> bool:
    """Whether the compiled loops run here (asked without fast.kernels()'s warning: a
    model of Linear layers alone has no loops to miss)."""
    return fast.available() and fast.enabled()


def _kernels_for(M: int, n_in: int, n_out: int, dtype):
    """The kernels, if this product should run on them now; else None."""
    if (dtype not in (np.float32, np.float64) or min(n_in, n_out) < MIN_WIDTH
            or M * n_in * n_out < MIN_WORK or fast.max_threads() <= 1):
        return None
    return fast.kernels()


def _numpy_forward(x2, w, b):
    y = x2 @ w.T
    if b is not None:
        y += b
    return y


def _numpy_backward(x2, dy2, w, want_db):
    return dy2 @ w, dy2.T @ x2, dy2.sum(axis=0) if want_db else None


def forward(x2: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    """y (M, out) = x2 (M, in) Wᵀ + b for W (out, in), b (out,) or None."""
    if x2.shape[0] * w.size < MIN_WORK or not _loops_run():   # a generation step, or
        return _numpy_forward(x2, w, b)                        # no loops: NumPy alone
    return _forward(x2, w, b)


def backward(x2: np.ndarray, dy2: np.ndarray, w: np.ndarray, want_db: bool):
    """(dx (M, in), dW (out, in), db (out,) or None) for y = x2 Wᵀ + b and dy2 = ∂L/∂y."""
    if x2.shape[0] * w.size < MIN_WORK or not _loops_run():
        return _numpy_backward(x2, dy2, w, want_db)
    return _backward(x2, dy2, w, want_db)


@_util.threads_for_call
def _forward(x2, w, b):
    M, n_in = x2.shape
    n_out = w.shape[0]
    k = _kernels_for(M, n_in, n_out, x2.dtype)
    if k is None:
        return _numpy_forward(x2, w, b)
    y = np.empty((M, n_out), dtype=x2.dtype)
    x2, w = np.ascontiguousarray(x2), np.ascontiguousarray(w)
    k.linear_fwd(M, n_out, n_in, x2, w, None if b is None else np.ascontiguousarray(b), y)
    return y


@_util.threads_for_call
def _backward(x2, dy2, w, want_db):
    M, n_in = x2.shape
    n_out = w.shape[0]
    k = _kernels_for(M, n_in, n_out, x2.dtype)
    if k is None:
        return _numpy_backward(x2, dy2, w, want_db)
    dt = x2.dtype
    dx, dw = np.empty((M, n_in), dtype=dt), np.empty((n_out, n_in), dtype=dt)
    db = np.empty(n_out, dtype=dt) if want_db else None
    x2, dy2, w = (np.ascontiguousarray(a) for a in (x2, dy2, w))
    k.grads(M, n_out, n_in, 0, dy2, dy2, x2, x2, w, dw, None, db, None, dx)
    return dx, dw, db
