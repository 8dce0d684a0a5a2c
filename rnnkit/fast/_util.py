"""Pieces the three fast cells share: one-allocation workspaces, lengths, gradients in."""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import check_float_array, check_lengths, check_shape


def workspace(dtype, *shapes):
    """Fresh C-contiguous arrays of ``shapes`` carved from one allocation.

    Returns ``(arrays, addresses)``. One allocation and one address lookup instead
    of one per array keeps the per-call overhead of short sequences (a generation
    loop calls with T = 1) small. The arrays do not overlap.
    """
    dt = np.dtype(dtype)
    sizes = [math.prod(s) for s in shapes]
    buf = np.empty(sum(sizes), dtype=dt)
    base = buf.ctypes.data
    arrays, addresses, off = [], [], 0
    for shape, n in zip(shapes, sizes):
        arrays.append(buf[off:off + n].reshape(shape))
        addresses.append(base + off * dt.itemsize)
        off += n
    return arrays, addresses


def lengths_arg(lengths, T: int, B: int, where: str):
    """Checked lengths as a C-contiguous int64 (B,) array, or None when every one is T."""
    lengths = check_lengths(lengths, T, B, where)
    if lengths is None or np.all(lengths == T):
        return None
    return np.ascontiguousarray(lengths, dtype=np.int64)


def mask_from_lengths(lens, T: int):
    """The reference cells' (T, B, 1) bool mask "step t is inside sequence b", or None."""
    if lens is None:
        return None
    return (np.arange(T)[:, None] < lens[None, :])[:, :, None]


def lengths_from_mask(mask):
    """Invert :func:`mask_from_lengths`: the (B,) int64 lengths, or None."""
    if mask is None:
        return None
    return np.ascontiguousarray(mask[:, :, 0].sum(axis=0), dtype=np.int64)


def d_outputs_arg(d_outputs, shape, dtype, where: str):
    """∂L/∂outputs checked and C-contiguous in ``dtype``, or None (outputs unused).

    Unlike the reference, entries past each length are not zeroed here: the
    kernels skip them (those outputs are the constant 0).
    """
    if d_outputs is None:
        return None
    d = check_float_array(d_outputs, "d_outputs", where, ndim=3, dims="(T, B, H)", finite=False)
    check_shape(d, shape, "d_outputs", where)
    return np.ascontiguousarray(d, dtype=dtype)


def addr(a):
    """Address of a C-contiguous array's data, or None (NULL) for None."""
    return None if a is None else a.ctypes.data


def folded_bias(b_ih, b_hh, n: int, dtype):
    """b_ih + b_hh (either may be None; both None gives zeros) as a C-contiguous (n,) array."""
    if b_ih is None and b_hh is None:
        return np.zeros(n, dtype=dtype)
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    return np.ascontiguousarray(bias, dtype=dtype)
