r"""Vanilla RNN over a whole sequence with the time loop in C: a drop-in for ``rnnkit.cells.rnn``.

Same equations, arguments, results, errors and cache (:class:`~rnnkit.cells.rnn.RNNCache`)
as the reference, whose docstring derives them:

    aₜ = W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh,   hₜ = φ(aₜ),   φ ∈ {tanh, relu}
    daₜ = δhₜ ⊙ φ'(aₜ),   δhₜ₋₁ = W_hhᵀ daₜ (+ the carry past a sequence's end)

Python does the input projection of all steps and, after the backward loop, the
weight gradients and dx (one product each, on the loop's threads when it had
several); the loop, with its products by
W_hh, runs in ``_fastrnn.c``. Without the compiled kernels both functions
are the reference's. Either backward accepts either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.cells import rnn as _ref
from rnnkit.cells._common import trusted_params
from rnnkit.cells.rnn import NONLINEARITIES, RNNCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "RNN"


def forward(params, x, h0=None, lengths=None, nonlinearity="tanh"):
    """Run the RNN over a whole sequence (the contract of ``rnnkit.cells.rnn.forward``).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.forward(params, x, h0, lengths, nonlinearity)
    check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, WHERE)
    return _forward(*_ref.check_inputs(params, x, h0, lengths), k, nonlinearity)


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def _forward(params, x, h0, lens, k, nonlinearity="tanh"):
    """:func:`forward` on checked arguments (``rnnkit.cells.rnn._forward``'s) with the
    kernels ``k`` (``rnnkit.Recurrent`` checks and chooses once per call)."""
    T, B, I = x.shape
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    x, w_ih, w_hh = (np.ascontiguousarray(a) for a in (x, w_ih, w_hh))   # bound: the C call reads them
    relu = int(nonlinearity == "relu")
    dt = x.dtype
    bias = _util.folded_bias(b_ih, b_hh, H, dt)    # b_ih + b_hh, added by the kernel
    a = _util.empty(dt, (T, B, H))    # pre-activations (the kernel projects x_t into a_t)
    h, y = _util.workspace(dt, (T + 1, B, H), (T, B, H))
    h[0] = 0 if h0 is None else h0
    x_in, w_in = x, w_ih
    if not _util.project_in_loop(T, B, w_ih):
        x_in, w_in = None, None
        _util.project(x, w_ih, a)
    k.rnn_fwd(T, B, H, lens, relu, I, x_in, w_in,
              a, bias, w_hh, h, y)
    cache = RNNCache(x=x, h=h, lengths=lens, nonlinearity=nonlinearity)
    return y, h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, nonlinearity="tanh"):
    """:func:`forward` without a cache, for inference (``rnnkit.cells.rnn.infer``).

    Returns:
        (outputs, h_T)
    """
    k = _kernels()
    if k is None:
        return _ref.infer(params, x, h0, lengths, nonlinearity)
    check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, WHERE)
    return _infer(*_ref.check_inputs(params, x, h0, lengths), k, nonlinearity)


def _infer(params, x, h0, lens, k, nonlinearity="tanh"):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    _, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    return run_infer(k, np.ascontiguousarray(x), np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh),
                     b_ih, b_hh, h0, lens, int(nonlinearity == "relu"))


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def run_infer(k, x, w_ih, w_hh, b_ih, b_hh, h0, lens, relu):
    """:func:`infer` on arguments already checked (``rnnkit.Recurrent`` checks them once).

    x (T, B, I), w_ih and w_hh C-contiguous in one dtype with matching shapes; the
    biases and h0 ((B, H)) that dtype or None; lens None or int64 (B,) in [1, T];
    relu 0 (tanh) or 1.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    bias = _util.folded_bias(b_ih, b_hh, H, dt)    # b_ih + b_hh, added by the kernel
    # the state, updated in place; y; one step's pre-activations
    y, h, a = _util.workspace(dt, (T, B, H), (B, H), (B, H))
    h[...] = 0 if h0 is None else h0
    x_in, w_in = x, w_ih
    if not _util.project_in_loop(T, B, w_ih):       # all steps' pre-activations first
        x_in, w_in = None, None
        a = _util.project(x, w_ih, _util.empty(dt, (T, B, H)))
    k.rnn_inf(T, B, H, lens, relu, I, x_in, w_in, a, bias, w_hh, h, y)
    h = h.copy()                                   # not a view keeping y's buffer alive
    return y, h


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT through the whole sequence (the contract of ``rnnkit.cells.rnn.backward``).

    Returns:
        (dx, dh0, grads), or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H)
        -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, RNNCache):
        raise TypeError(f"{WHERE}: expected the cache from rnn.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None:
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    return _backward(*_ref.check_grads_in(params, cache, d_outputs, d_final_state), cache, return_dh, k)


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments (``rnnkit.cells.rnn._backward``'s) with the
    kernels ``k``. Entries of d_outputs past each length are not zeroed: the kernels
    skip them (those outputs are the constant 0)."""
    x, lens = cache.x, cache.lengths
    T, B, I = x.shape
    dt = x.dtype
    relu = int(cache.nonlinearity == "relu")
    _, w_ih, w_hh, _, _ = trusted_params(params)
    H = cache.h.shape[2]
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    da, dh = _util.workspace(dt, (T, B, H), (B, H))
    dh[...] = 0 if d_final_state is None else d_final_state
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    # every array the C call reads is bound to a name, so none is freed under it
    h, w_hh = np.ascontiguousarray(cache.h), np.ascontiguousarray(w_hh)
    k.rnn_bwd(T, B, H, lens, relu, h, w_hh,
              d_out, dh, da, dh_all)
    dx, grads = _util.param_grads(k, params, x, h[:-1],
                                  da, da, w_ih, dx_out=_util.empty(dt, (T, B, I)))
    if return_dh:
        return dx, dh.copy(), grads, dh_all
    return dx, dh.copy(), grads
