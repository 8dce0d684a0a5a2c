r"""LSTM over a whole sequence with the time loop in C: a drop-in for ``rnnkit.cells.lstm``.

Same equations, arguments, results, errors and cache (:class:`~rnnkit.cells.lstm.LSTMCache`)
as the reference, whose docstring derives them:

    zₜ = W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh;   i, f, o = σ(·), g = tanh(·)
    cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ;                 hₜ = oₜ ⊙ tanh(cₜ)

What differs is where the work runs. NumPy does the once-per-sequence products:
the input projection of all steps before the loop (the kernel adds b_ih + b_hh) and,
after the backward loop, dx and the weight gradients (one product each; on the
loop's threads, the kernels' ``grads``, when it had several). The
loop itself — each step's ``h @ W_hh.T`` (``dz @ W_hh`` backward) and the fused
gate arithmetic — is one call into ``_fastrnn.c``. Without the compiled kernels
(not built, or ``RNNKIT_NO_COMPILE=1``) both functions are the reference's.

The caches are interchangeable: either backward accepts either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit.cells import lstm as _ref
from rnnkit.cells._common import check_d_outputs, check_state, checked_params, trusted_params
from rnnkit.cells.lstm import LSTMCache, split_pair
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "LSTM"
G = 4


def forward(params, x, h0=None, lengths=None):
    """Run the LSTM over a whole sequence (the contract of ``rnnkit.cells.lstm.forward``).

    Returns:
        (outputs, (h_T, c_T), cache)

    Shapes:
        x (T, B, I), h0 = (h0, c0) each (B, H), lengths (B,)
        -> outputs (T, B, H), h_T and c_T (B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.forward(params, x, h0, lengths)
    return _forward(*_ref.check_inputs(params, x, h0, lengths), k)


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def _forward(params, x, h0, lengths, k):
    """:func:`forward` on checked arguments (``rnnkit.cells.lstm._forward``'s) with the
    kernels ``k`` (``rnnkit.Recurrent`` checks and chooses once per call)."""
    T, B, I = x.shape
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    x, w_ih, w_hh = (np.ascontiguousarray(a) for a in (x, w_ih, w_hh))   # bound: the C call reads them
    bias = _util.folded_bias(b_ih, b_hh, G * H, x.dtype)    # b_ih + b_hh, added by the kernel
    # gates (T, B, 4H): each step's input projection, then its gates (the kernel
    # projects x_t just before the recurrent product adds to it)
    gates, h, c, tanh_c, y = _util.workspace(
        x.dtype, (T, B, G * H), (T + 1, B, H), (T + 1, B, H), (T, B, H), (T, B, H))
    x_in, w_in = x, w_ih
    h_init, c_init = (None, None) if h0 is None else h0
    h[0] = 0 if h_init is None else h_init
    c[0] = 0 if c_init is None else c_init
    if not _util.project_in_loop(T, B, w_ih):
        x_in, w_in = None, None
        _util.project(x, w_ih, gates)
    k.lstm_fwd(T, B, H, lengths, I, x_in, w_in, gates, bias, w_hh, h, c, tanh_c, y)
    cache = LSTMCache(x=x, h=h, c=c, gates=gates, tanh_c=tanh_c, lengths=lengths)
    return y, (h[T].copy(), c[T].copy()), cache


def infer(params, x, h0=None, lengths=None):
    """:func:`forward` without a cache, for inference (``rnnkit.cells.lstm.infer``).

    Only the state is carried from step to step: nothing of size T is written
    but the outputs.

    Returns:
        (outputs, (h_T, c_T))
    """
    k = _kernels()
    if k is None:
        return _ref.infer(params, x, h0, lengths)
    return _infer(*_ref.check_inputs(params, x, h0, lengths), k)


def _infer(params, x, h0, lengths, k):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    _, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    h_init, c_init = (None, None) if h0 is None else h0
    return run_infer(k, np.ascontiguousarray(x), np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh),
                     b_ih, b_hh, h_init, c_init, lengths)


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def run_infer(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lens):
    """:func:`infer` on arguments already checked (``rnnkit.Recurrent`` checks them once).

    x (T, B, I), w_ih and w_hh C-contiguous in one dtype with matching shapes; the
    biases, h0 and c0 ((B, H)) that dtype or None; lens None or int64 (B,) in [1, T].
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    bias = _util.folded_bias(b_ih, b_hh, G * H, dt)    # b_ih + b_hh, added by the kernel
    # the state, updated in place; y; the gates of one step (when the kernel projects x_t)
    y, h, c, gates = _util.workspace(
        dt, (T, B, H), (B, H), (B, H), (B, G * H))
    h[...] = 0 if h0 is None else h0
    c[...] = 0 if c0 is None else c0
    x_in, w_in = x, w_ih
    if not _util.project_in_loop(T, B, w_ih):       # all steps' gates first
        x_in, w_in = None, None
        gates = _util.project(x, w_ih, _util.empty(dt, (T, B, G * H)))
    k.lstm_inf(T, B, H, lens, I, x_in, w_in, gates, bias, w_hh, h, c, y)
    h, c = h.copy(), c.copy()                      # not views keeping y's buffer alive
    return y, (h, c)


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT through the whole sequence (the contract of ``rnnkit.cells.lstm.backward``).

    Returns:
        (dx, (dh0, dc0), grads), or (dx, (dh0, dc0), grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state = (dh_T, dc_T) each (B, H)
        -> dx (T, B, I), dh0 and dc0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"{WHERE}: expected the cache from lstm.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None:
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    T, B, I = cache.x.shape
    H = cache.h.shape[2]
    dt = cache.x.dtype
    params = checked_params(params, G, I, dt, WHERE)
    d_out = None if d_outputs is None else check_d_outputs(d_outputs, (T, B, H), dt, None, WHERE)
    dh_T, dc_T = split_pair(d_final_state, "d_final_state")
    d_final = (check_state(dh_T, "d_final_state[0]", B, H, dt, WHERE, finite=False),
               check_state(dc_T, "d_final_state[1]", B, H, dt, WHERE, finite=False))
    return _backward(params, d_out, d_final, cache, return_dh, k)


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments (``rnnkit.cells.lstm._backward``'s) with the
    kernels ``k``. Entries of d_outputs past each length are not zeroed: the kernels
    skip them (those outputs are the constant 0)."""
    x, h, c, gates, tanh_c, lengths = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, w_ih, w_hh, _, _ = trusted_params(params)
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    dz, dh, dc = _util.workspace(dt, (T, B, G * H), (B, H), (B, H))
    dh_T, dc_T = (None, None) if d_final_state is None else d_final_state
    dh[...] = 0 if dh_T is None else dh_T
    dc[...] = 0 if dc_T is None else dc_T
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    # every array the C call reads is bound to a name, so none is freed under it
    gates, c, tanh_c, w_hh = (np.ascontiguousarray(a) for a in (gates, c, tanh_c, w_hh))
    k.lstm_bwd(T, B, H, lengths, gates, c, tanh_c,
               w_hh, d_out, dh, dc, dz, dh_all)
    dx, grads = _util.param_grads(k, params, x, h[:-1],
                                  dz, dz, w_ih, dx_out=_util.empty(dt, (T, B, I)))
    dh0, dc0 = dh.copy(), dc.copy()
    if return_dh:
        return dx, (dh0, dc0), grads, dh_all
    return dx, (dh0, dc0), grads
