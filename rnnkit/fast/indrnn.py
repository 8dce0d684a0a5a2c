r"""IndRNN with the time loop in C: a drop-in for ``rnnkit.cells.indrnn``.

Same equations, arguments (relu or tanh, the optional bound ``recurrent_max``),
results, errors and cache (:class:`~rnnkit.cells.indrnn.IndRNNCache`) as the
reference, whose docstring derives them:

    ũ = clip(u, −M, M),   aₜ = W_ih xₜ + b_ih + b_hh + ũ ⊙ hₜ₋₁,   hₜ = φ(aₜ)

NumPy does the input projection of all steps (one product) and the bound before
the loop, and dx, ∂L/∂W_ih, the biases and the bound's mask on ∂L/∂u after the
backward loop. The loop is element-wise (u is a vector): each thread runs every
step of its own sequences in C, with no barrier between steps, and sums its rows'
share of ∂L/∂u = Σₜ daₜ ⊙ hₜ₋₁ as it goes. Without the compiled kernels both
functions are the reference's. Either backward accepts either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.cells import indrnn as _ref
from rnnkit.cells._common import (check_d_outputs, check_state, check_x, input_projection, lengths_arg,
                                  mask_from_lengths)
from rnnkit.cells._params import input_grads
from rnnkit.cells.indrnn import NONLINEARITIES, IndRNNCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "IndRNN"


def forward(params, x, h0=None, lengths=None, nonlinearity="relu", recurrent_max=None):
    """Run the IndRNN over a whole sequence (the contract of ``rnnkit.cells.indrnn.forward``).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.forward(params, x, h0, lengths, nonlinearity, recurrent_max)
    return _forward(*_check_inputs(params, x, h0, lengths, nonlinearity), k, nonlinearity, recurrent_max)


def infer(params, x, h0=None, lengths=None, nonlinearity="relu", recurrent_max=None):
    """:func:`forward` without a cache: (outputs, h_T)."""
    k = _kernels()
    if k is None:
        return _ref.infer(params, x, h0, lengths, nonlinearity, recurrent_max)
    return _infer(*_check_inputs(params, x, h0, lengths, nonlinearity), k, nonlinearity, recurrent_max)


def _check_inputs(params, x, h0, lengths, nonlinearity):
    """The reference's checks: (params, x, h0, lengths as ``lengths_arg`` gives them)."""
    check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, WHERE)
    x = check_x(x, WHERE)
    T, B, I = x.shape
    H, p = _ref._unpack(params, I, x.dtype)
    return p, x, check_state(h0, "h0", B, H, x.dtype, WHERE), lengths_arg(lengths, T, B, WHERE)


def _prepare(params, x, recurrent_max):
    """(H, A, ũ, free): the input side W_ih xₜ + b_ih + b_hh of every step, the bounded
    recurrent weights (C-contiguous) and where the bound does not hold them."""
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    bias = None if b_ih is None else b_ih + b_hh
    A = input_projection(np.ascontiguousarray(x), params["weight_ih"], bias)
    u, free = _ref._bounded(params["weight_hh"], recurrent_max)
    return A.shape[2], A, np.ascontiguousarray(u, dtype=x.dtype), free


@_util.threads_for_call
def _forward(params, x, h0, lengths, k, nonlinearity="relu", recurrent_max=None):
    """:func:`forward` on checked arguments with the kernels ``k`` (``rnnkit.Recurrent``
    checks and chooses once per call): h0 None or (B, H), lengths from ``lengths_arg``."""
    T, B, _ = x.shape
    H, A, u, free = _prepare(params, x, recurrent_max)
    h, y = _util.workspace(x.dtype, (T + 1, B, H), (T, B, H))
    h[0] = 0 if h0 is None else h0
    k.indrnn_fwd(T, B, H, lengths, int(nonlinearity == "relu"), A, u, h, y)
    cache = IndRNNCache(x, h, u, free, mask_from_lengths(lengths, T), nonlinearity)
    return y, h[T].copy(), cache


@_util.threads_for_call
def _infer(params, x, h0, lengths, k, nonlinearity="relu", recurrent_max=None):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    T, B, _ = x.shape
    H, A, u, _ = _prepare(params, x, recurrent_max)
    y, h = _util.workspace(x.dtype, (T, B, H), (B, H))
    h[...] = 0 if h0 is None else h0
    k.indrnn_inf(T, B, H, lengths, int(nonlinearity == "relu"), A, u, h, y)
    return y, h.copy()


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (the contract of ``rnnkit.cells.indrnn.backward``).

    Returns:
        (dx, dh0, grads) or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, IndRNNCache):
        raise TypeError(f"{WHERE}: expected the cache from indrnn.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None:
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    T, B, I = cache.x.shape
    H, dt = cache.h.shape[2], cache.x.dtype
    _, p = _ref._unpack(params, I, dt)
    d_out = None if d_outputs is None else check_d_outputs(d_outputs, (T, B, H), dt, None, WHERE)
    d_final = check_state(d_final_state, "d_final_state", B, H, dt, WHERE, finite=False)
    return _backward(p, d_out, d_final, cache, return_dh, k)


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments with the kernels ``k``: d_outputs None or
    (T, B, H), d_final_state None or (B, H)."""
    x, h, u, free, mask, nonlinearity = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    lens = None if mask is None else np.ascontiguousarray(mask[:, :, 0].sum(axis=0), dtype=np.int64)
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    da, dh, du = _util.workspace(dt, (T, B, H), (B, H), (B, H))
    dh[...] = 0 if d_final_state is None else d_final_state
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    # every array the C call reads is bound to a name, so none is freed under it
    h, u = np.ascontiguousarray(h), np.ascontiguousarray(u)
    k.indrnn_bwd(T, B, H, lens, int(nonlinearity == "relu"), h, u, d_out, dh, da, du, dh_all)
    grads = {"weight_hh": du.sum(axis=0) * free}
    dx = input_grads(x, da, params["weight_ih"], grads, ("bias_ih", "bias_hh") if "bias_ih" in params else ())
    grads = {key: grads[key] for key in params}    # params' order
    if return_dh:
        return dx, dh.copy(), grads, dh_all
    return dx, dh.copy(), grads
