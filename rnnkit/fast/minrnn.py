r"""minGRU and minLSTM with the scan in C: a drop-in for ``rnnkit.cells.minrnn``.

Same equations, arguments, results and errors as the reference, whose docstring
derives them. The C kernel (``_minscan.c``) runs one fused pass each way: the gates,
g, the decay and the scan hₜ = aₜ hₜ₋₁ + bₜ forward, the scan (5) and every local
derivative backward, split among threads by channels (B·H) and, when there are few
channels, by chunks of time (a two-level parallel scan).

The input product, two ways. For a large input (I > :data:`FUSE_MAX_INPUT`) NumPy
computes the pre-activations k = x W_ihᵀ + b_ih (one product per gate block) before
the scan and ∂L/∂W_ih = Σₜ dkₜᵀ xₜ, ∂L/∂b_ih = Σₜ dkₜ, ∂L/∂x = dk W_ih after it. For a
small one the passes compute each batch row's k from x inside the scan
(``min_fwd_x``, ``min_bwd_x``), the backward computes it again and sums those three
gradients from each row's dk as it goes: k and dk (G·T·B·H numbers, 16 MB each for
minGRU at T=1000, B=32, H=64 float32) are never written to memory and read back,
which is most of the time a training step of a small-input model spends (the
adding problem, I = 2: the products, k and dk took 7 of the 23 ms of a step).

The cache is :class:`~rnnkit.cells.minrnn.MinCache` without the gate arrays (z, s,
htilde, decay are None: the backward computes them again from k, which costs less than
reading them), and with k None too when the projection ran inside the scan. Either
backward accepts either forward's cache. Without the compiled kernels, or with a build
that predates them, every function is the reference's.
"""

from __future__ import annotations

import numpy as np

from rnnkit.cells import minrnn as _ref
from rnnkit.cells._common import mask_from_lengths
from rnnkit.cells.minrnn import GATES, MinCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _all_kernels


#: the largest input size I whose projection runs inside the scan (``min_fwd_x``); above
#: it NumPy's products. The C loops are vectorised for I <= 4 only (the sums over the
#: inputs written out); measured on one core (AVX2, CPU time), minGRU T=1000, B=32,
#: H=64 float32, forward + backward of the layer, fused / unfused: 0.65 at I=1, 0.62
#: at I=2, 0.83 at I=3, 0.80 at I=4.
FUSE_MAX_INPUT = 4


def _kernels():
    """The extension when it runs here and has the scan, else None."""
    k = _all_kernels()
    return k if k is not None and hasattr(k, "min_fwd") else None


def _fuses(k, I: int) -> bool:
    """Whether the scan computes the input product itself (a small input, a build that can)."""
    return I <= FUSE_MAX_INPUT and hasattr(k, "min_fwd_x")


def _transposed(w, bias, G: int):
    """The weights as the fused passes read them: wt[g, i] = W_gᵀ's row i, wt[g, I] = b_g.

    Shapes:
        w (G·H, I), bias (G·H,) or None -> wt (G, I + 1, H)
    """
    GH, I = w.shape
    H = GH // G
    wt = np.zeros((G, I + 1, H), dtype=w.dtype)
    wt[:, :I] = w.reshape(G, H, I).transpose(0, 2, 1)
    if bias is not None:
        wt[:, I] = bias.reshape(G, H)
    return wt


def forward(params, x, h0=None, lengths=None, kind="mingru"):
    """Run minGRU or minLSTM (the contract of ``rnnkit.cells.minrnn.forward``).

    Returns:
        (outputs, h_T, cache); outputs are zero past each length.

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.forward(params, x, h0, lengths, kind)
    return _forward(*_ref.check_inputs(params, x, h0, lengths, kind), k, kind=kind)


def _scan_forward(params, x, h0, lens, k, kind):
    """(y, h, x, kk): the outputs, the states (T+1, B, H), x (C-contiguous) and the
    pre-activations (None when the scan computed them from x itself)."""
    T, B, I = x.shape
    G = GATES[kind]
    w = np.ascontiguousarray(params["weight_ih"])
    H = w.shape[0] // G
    bias = params.get("bias_ih")
    h, y = _util.workspace(x.dtype, (T + 1, B, H), (T, B, H))
    h[0] = 0 if h0 is None else h0
    if _fuses(k, I):
        x = np.ascontiguousarray(x)
        k.min_fwd_x(T, B, H, I, lens, int(kind == "minlstm"), x, _transposed(w, bias, G), h, y)
        return y, h, x, None
    kk = _project(_with_ones(x, bias), w, bias, G).reshape(G, T, B, H)
    k.min_fwd(T, B, H, lens, int(kind == "minlstm"), kk, h, y)
    return y, h, x, kk


@_util.threads_for_call
def _forward(params, x, h0, lens, k, kind="mingru"):
    """:func:`forward` on checked arguments (:func:`rnnkit.cells.minrnn.check_inputs`'s)
    with the kernels ``k`` (``rnnkit.Recurrent`` checks and chooses once per call)."""
    y, h, x, kk = _scan_forward(params, x, h0, lens, k, kind)
    T = x.shape[0]
    cache = MinCache(kind, x, kk, None, None, None, None, h, mask_from_lengths(lens, T))
    return y, h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, kind="mingru"):
    """:func:`forward` without the cache: (outputs, h_T)."""
    k = _kernels()
    if k is None:
        return _ref.infer(params, x, h0, lengths, kind)
    return _infer(*_ref.check_inputs(params, x, h0, lengths, kind), k, kind=kind)


@_util.threads_for_call
def _infer(params, x, h0, lens, k, kind="mingru"):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    y, h, _, _ = _scan_forward(params, x, h0, lens, k, kind)
    return y, h[x.shape[0]].copy()


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """Backward by the scan (5) (the contract of ``rnnkit.cells.minrnn.backward``).

    Returns:
        (dx, dh0, grads) or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    k = _kernels()
    if k is None:
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    return _backward(*_ref.check_grads_in(params, cache, d_outputs, d_final_state), cache, return_dh, k)


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments (:func:`rnnkit.cells.minrnn.check_grads_in`'s)
    with the kernels ``k``. Entries of d_outputs past each length are not read."""
    kind, x, kk, h, mask = cache.kind, cache.x, cache.k, cache.h, cache.mask
    T, B, I = x.shape
    H = h.shape[2]
    G = GATES[kind]
    dt = x.dtype
    lstm = int(kind == "minlstm")
    w, bias = params["weight_ih"], params.get("bias_ih")
    lens = None if mask is None else np.count_nonzero(mask[:, :, 0], axis=0).astype(np.int64)
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    x, h = np.ascontiguousarray(x), np.ascontiguousarray(h)         # bound: the C call reads them
    if kk is None and hasattr(k, "min_bwd_x"):                      # k, dk inside the scan
        dh = np.empty((B, H), dtype=dt)
        dh[...] = 0 if d_final_state is None else d_final_state
        dwt = np.empty((G, I + 1, H), dtype=dt)                     # (∂L/∂W_gᵀ, ∂L/∂b_g) per gate
        dx = np.empty((T, B, I), dtype=dt)
        k.min_bwd_x(T, B, H, I, lens, lstm, x, _transposed(np.ascontiguousarray(w), bias, G), h, d_out, dh,
                    dwt, dx, dh_all)
        grads = {"weight_ih": np.ascontiguousarray(dwt[:, :I].transpose(0, 2, 1)).reshape(G * H, I)}
        if bias is not None:
            grads["bias_ih"] = np.ascontiguousarray(dwt[:, I]).reshape(G * H)
        if return_dh:
            return dx, dh, grads, dh_all
        return dx, dh, grads
    if kk is None:                                 # a fused forward's cache, a build without min_bwd_x
        kk = _project(_with_ones(x, bias), np.ascontiguousarray(w), bias, G).reshape(G, T, B, H)
    kk = np.ascontiguousarray(kk)
    dk, dh = _util.workspace(dt, kk.shape, (B, H))
    dh[...] = 0 if d_final_state is None else d_final_state
    k.min_bwd(T, B, H, lens, lstm, kk, h, d_out, dh, dk, dh_all)
    dx, grads = _input_grads(x, dk, w, bias is not None)
    if return_dh:
        return dx, dh.copy(), grads, dh_all
    return dx, dh.copy(), grads


# The products around the scan, with the bias as one more input that is always 1
# (x₁ = [x 1], W₁ = [W_ih b_ih]): k = x₁ W₁ᵀ needs no pass to add the bias, and
# x₁ᵀ ∂L/∂k gives ∂L/∂W_ih and ∂L/∂b_ih in one product, with no pass to sum ∂L/∂k
# over the rows (T=1000, B=32, I=2, H=64 float32: 2.0 ms for both, 2.7 ms + 1.2 ms as
# two; (I, T·B) @ (T·B, H) is also the faster order of the operands for small I).
def _with_ones(x, bias):
    """x₁ (T·B, I + 1) = [x 1] (x (T·B, I) itself without a bias)."""
    T, B, I = x.shape
    if bias is None:
        return x.reshape(T * B, I)
    x1 = np.empty((T * B, I + 1), dtype=x.dtype)
    x1[:, :I] = x.reshape(T * B, I)
    x1[:, I] = 1
    return x1


def _project(x1, w, bias, G: int):
    """k[g] = x₁ W₁_gᵀ, each gate block contiguous.

    Shapes:
        x1 (T·B, I [+ 1]), w (G·H, I), bias (G·H,) or None -> (G, T·B, H)
    """
    H = w.shape[0] // G
    w1 = w if bias is None else np.concatenate([w, bias[:, None]], axis=1)      # (G·H, I + 1)
    k = np.empty((G, x1.shape[0], H), dtype=x1.dtype)
    for g in range(G):
        np.matmul(x1, w1[g * H:(g + 1) * H].T, out=k[g])
    return k


def _input_grads(x, dk, w, bias: bool):
    """∂L/∂W_ih, ∂L/∂b_ih (one product per gate block) and ∂L/∂x.

    Shapes:
        x (T, B, I), dk (G, T, B, H), w (G·H, I) -> dx (T, B, I), grads
    """
    G, T, B, H = dk.shape
    I = x.shape[2]
    x1 = _with_ones(x, True if bias else None)
    d2 = dk.reshape(G, T * B, H)
    m = [x1.T @ d2[g] for g in range(G)]                 # (I [+ 1], H) each
    grads = {"weight_ih": np.concatenate([mg[:I].T for mg in m])}
    if bias:
        grads["bias_ih"] = np.concatenate([mg[I] for mg in m])
    dx = d2[0] @ w[:H]
    for g in range(1, G):
        dx += d2[g] @ w[g * H:(g + 1) * H]
    return dx.reshape(T, B, I), grads
