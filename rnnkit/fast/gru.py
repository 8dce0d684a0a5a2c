r"""GRU over a whole sequence with the time loop in C: a drop-in for ``rnnkit.cells.gru``.

Same equations, arguments, results, errors and cache (:class:`~rnnkit.cells.gru.GRUCache`)
as the reference, whose docstring derives them:

    [a_r a_z a_n] = W_ih xₜ + b_ih,   [u_r u_z u_n] = W_hh hₜ₋₁ + b_hh
    r = σ(a_r + u_r),  z = σ(a_z + u_z),  n = tanh(a_n + r ⊙ u_n)
    hₜ = (1 − z) ⊙ n + z ⊙ hₜ₋₁

The kernel adds the biases: b_ir + b_hr and b_iz + b_hz outside, b_hn inside r ⊙ (…).
After the backward loop the weight gradients are one product each, from the
input-side (da) and hidden-side (du) gradients, which the kernel writes both (on
the loop's threads when it had several: ``_util.param_grads``). Without the
compiled kernels both functions are the reference's. Either backward accepts
either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit.cells import gru as _ref
from rnnkit.cells._common import trusted_params
from rnnkit.cells.gru import GRUCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "GRU"
G = 3


def _biases(b_ih, b_hh, H: int, dt):
    """(ba, b_hn): the input side's bias [b_ir + b_hr, b_iz + b_hz, b_in] (3H) and
    b_hn (H), both added by the kernel; absent biases count as zeros."""
    zeros = np.zeros(G * H, dtype=dt)
    b_ih = zeros if b_ih is None else b_ih
    b_hh = zeros if b_hh is None else b_hh
    ba = np.concatenate([b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
    return ba, np.ascontiguousarray(b_hh[2 * H:])


def forward(params, x, h0=None, lengths=None):
    """Run the GRU over a whole sequence (the contract of ``rnnkit.cells.gru.forward``).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.forward(params, x, h0, lengths)
    return _forward(*_ref.check_inputs(params, x, h0, lengths), k)


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def _forward(params, x, h0, lens, k):
    """:func:`forward` on checked arguments (``rnnkit.cells.gru._forward``'s) with the
    kernels ``k`` (``rnnkit.Recurrent`` checks and chooses once per call)."""
    T, B, I = x.shape
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    x, w_ih, w_hh = (np.ascontiguousarray(a) for a in (x, w_ih, w_hh))   # bound: the C call reads them
    ba, b_hn = _biases(b_ih, b_hh, H, x.dtype)
    # gates (T, B, 3H): each step's input projection (the kernel projects x_t),
    # the gates after the loop; u (B, 3H): the scratch for each step's hidden side
    gates, h, hn, y, u = _util.workspace(
        x.dtype, (T, B, G * H), (T + 1, B, H), (T, B, H), (T, B, H), (B, G * H))
    h[0] = 0 if h0 is None else h0
    x_in, w_in = x, w_ih
    if not _util.project_in_loop(T, B, w_ih):
        x_in, w_in = None, None
        _util.project(x, w_ih, gates)
    k.gru_fwd(T, B, H, lens, I, x_in, w_in, gates, ba, u, b_hn, w_hh, h, hn, y)
    cache = GRUCache(x=x, h=h, gates=gates, hn=hn, lengths=lens)
    return y, h[T].copy(), cache


def infer(params, x, h0=None, lengths=None):
    """:func:`forward` without a cache, for inference (``rnnkit.cells.gru.infer``).

    Returns:
        (outputs, h_T)
    """
    k = _kernels()
    if k is None:
        return _ref.infer(params, x, h0, lengths)
    return _infer(*_ref.check_inputs(params, x, h0, lengths), k)


def _infer(params, x, h0, lens, k):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    _, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    return run_infer(k, np.ascontiguousarray(x), np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh),
                     b_ih, b_hh, h0, lens)


@_util.threads_for_call(blas="lazy")          # its one NumPy product: _util.project
def run_infer(k, x, w_ih, w_hh, b_ih, b_hh, h0, lens):
    """:func:`infer` on arguments already checked (``rnnkit.Recurrent`` checks them once).

    x (T, B, I), w_ih and w_hh C-contiguous in one dtype with matching shapes; the
    biases and h0 ((B, H)) that dtype or None; lens None or int64 (B,) in [1, T].
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    ba, b_hn = _biases(b_ih, b_hh, H, dt)
    # the state, updated in place; y; one step's input and hidden sides
    y, h, a, u = _util.workspace(
        dt, (T, B, H), (B, H), (B, G * H), (B, G * H))
    h[...] = 0 if h0 is None else h0
    x_in, w_in = x, w_ih
    if not _util.project_in_loop(T, B, w_ih):       # all steps' input sides first
        x_in, w_in = None, None
        a = _util.project(x, w_ih, _util.empty(dt, (T, B, G * H)))
    k.gru_inf(T, B, H, lens, I, x_in, w_in, a, ba, u, b_hn, w_hh, h, y)
    h = h.copy()                                   # not a view keeping y's buffer alive
    return y, h


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT through the whole sequence (the contract of ``rnnkit.cells.gru.backward``).

    Returns:
        (dx, dh0, grads), or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H)
        -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, GRUCache):
        raise TypeError(f"{WHERE}: expected the cache from gru.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None:
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    return _backward(*_ref.check_grads_in(params, cache, d_outputs, d_final_state), cache, return_dh, k)


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments (``rnnkit.cells.gru._backward``'s) with the
    kernels ``k``. Entries of d_outputs past each length are not zeroed: the kernels
    skip them (those outputs are the constant 0)."""
    x, h, gates, hn, lens = cache
    # every array the C call reads is bound to a name, so none is freed under it
    h, gates, hn = (np.ascontiguousarray(a) for a in (h, gates, hn))
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, w_ih, w_hh, _, _ = trusted_params(params)
    w_hh = np.ascontiguousarray(w_hh)
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    da, du, dh = _util.workspace(dt, (T, B, G * H), (T, B, G * H), (B, H))
    dh[...] = 0 if d_final_state is None else d_final_state
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    k.gru_bwd(T, B, H, lens, gates, hn, h,
              w_hh, d_out, dh, da, du, dh_all)
    dx, grads = _util.param_grads(k, params, x, h[:-1],
                                  da, du, w_ih, dx_out=_util.empty(dt, (T, B, I)))
    if return_dh:
        return dx, dh.copy(), grads, dh_all
    return dx, dh.copy(), grads
