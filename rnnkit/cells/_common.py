"""Pieces the three cells share: cheap argument checks, the length mask, the sigmoid,
and the two matrix products that bracket every time loop.

The per-step work is cell-specific and lives in each cell's module; what is here is
the same for all of them:

    before the loop   A = x W_ihᵀ + b             (one product over all T·B rows)
    after the loop    dW_ih = Σ_t dAₜᵀ xₜ,  dW_hh = Σ_t dHHₜᵀ hₜ₋₁,
                      db_ih = Σ_t dAₜ,      db_hh = Σ_t dHHₜ,   dx = dA W_ih
                      (each one product over all T·B rows)

where dA and dHH are the gradients of the input-side and hidden-side
pre-activations (equal for RNN and LSTM; different in the GRU's n column).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnkit._checks import check_float_array, check_lengths, check_shape

PARAM_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid_(a: np.ndarray) -> np.ndarray:
    """Logistic sigmoid computed in place: σ(a) = (1 + tanh(a/2)) / 2.

    The tanh form never overflows (no exp of a large number), so no warnings and no
    branch on the sign of ``a``.
    """
    np.multiply(a, 0.5, out=a)
    np.tanh(a, out=a)
    np.multiply(a, 0.5, out=a)
    np.add(a, 0.5, out=a)
    return a


def check_x(x, where: str) -> np.ndarray:
    """x must be a float32/float64 array (T, B, I) with T, B >= 1 and no NaN/inf."""
    x = check_float_array(x, "x", where, ndim=3, dims="(T, B, I)")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: expected x of dtype float32 or float64, got {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{where}: expected x with at least one time step and one sequence, "
                         f"got shape {x.shape}")
    return x


def unpack_params(params, G: int, I: int, dtype, where: str):
    """Check a cell's params dict against x's input size; return them in ``dtype``.

    Returns ``(H, weight_ih, weight_hh, bias_ih, bias_hh)`` with an absent bias as
    None. Arrays already in ``dtype`` are not copied.

    Shapes:
        weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,)
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: expected params to be a dict of arrays, got {type(params).__name__}")
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown params key(s) {unknown}; expected {list(PARAM_KEYS)}")
    for key in ("weight_ih", "weight_hh"):
        if key not in params:
            raise ValueError(f"{where}: params is missing {key!r}")
    w_hh = check_float_array(params["weight_hh"], "params['weight_hh']", where, ndim=2,
                             dims="(G*H, H)", finite=False)
    H = w_hh.shape[1]
    if H < 1 or w_hh.shape[0] != G * H:
        raise ValueError(f"{where}: expected params['weight_hh'] of shape ({G}*H, H) = "
                         f"({G * max(H, 1)}, {H}), got {w_hh.shape}")
    w_ih = check_float_array(params["weight_ih"], "params['weight_ih']", where, ndim=2,
                             dims="(G*H, I)", finite=False)
    check_shape(w_ih, (G * H, I), "params['weight_ih'] (G*H, I) for x's input size", where)
    out = [np.asarray(w_ih, dtype=dtype), np.asarray(w_hh, dtype=dtype)]
    for key in ("bias_ih", "bias_hh"):
        b = params.get(key)
        if b is not None:
            b = check_float_array(b, f"params[{key!r}]", where, ndim=1, dims="(G*H,)", finite=False)
            check_shape(b, (G * H,), f"params[{key!r}]", where)
            b = np.asarray(b, dtype=dtype)
        out.append(b)
    return (H, *out)


def checked_params(params, G: int, I: int, dtype, where: str) -> dict:
    """:func:`unpack_params` as the dict the trusted ``_forward``/``_backward`` take
    (an absent bias is None)."""
    return dict(zip(PARAM_KEYS, unpack_params(params, G, I, dtype, where)[1:]))


def check_state(s, name: str, B: int, H: int, dtype, where: str, finite: bool = True) -> np.ndarray:
    """A (B, H) float state (initial state or its gradient); None gives zeros.

    Returned in ``dtype``; may be the caller's array, so callers copy before writing.
    """
    if s is None:
        return np.zeros((B, H), dtype=dtype)
    s = check_float_array(s, name, where, ndim=2, dims="(B, H)", finite=finite)
    check_shape(s, (B, H), name, where)
    return np.asarray(s, dtype=dtype)


def lengths_arg(lengths, T: int, B: int, where: str):
    """Checked lengths as a C-contiguous int64 (B,) array, or None when every one is T.

    The one form of the lengths past the public boundary: the trusted ``_forward``
    of every cell takes it, the caches keep it, and the C loops read it.
    """
    return trusted_lengths(check_lengths(lengths, T, B, where), T)


def trusted_lengths(lengths, T: int):
    """:func:`lengths_arg` for lengths already checked (``check_lengths``): no check."""
    if lengths is None or np.all(lengths == T):
        return None
    return np.ascontiguousarray(lengths, dtype=np.int64)


def mask_from_lengths(lengths, T: int):
    """The (T, B, 1) bool mask "step t is inside sequence b" of :func:`lengths_arg`'s
    lengths, or None (every length is T), so full batches pay nothing."""
    if lengths is None:
        return None
    return (np.arange(T)[:, None] < lengths[None, :])[:, :, None]


def length_mask(lengths, T: int, B: int, where: str):
    """The (T, B, 1) bool mask of unchecked lengths, or None if all are full."""
    return mask_from_lengths(lengths_arg(lengths, T, B, where), T)


def trusted_params(params):
    """``(H, weight_ih, weight_hh, bias_ih, bias_hh)`` of params that :func:`unpack_params`
    (or ``rnnkit.Recurrent``) has checked: no check, no conversion."""
    w_hh = params["weight_hh"]
    return w_hh.shape[1], params["weight_ih"], w_hh, params.get("bias_ih"), params.get("bias_hh")


def state_or_zeros(s, B: int, H: int, dtype) -> np.ndarray:
    """A checked (B, H) state, or zeros for None (the trusted twin of :func:`check_state`)."""
    return np.zeros((B, H), dtype=dtype) if s is None else s


def check_one_state_inputs(params, x, h0, lengths, G: int, where: str):
    """A public forward's checks for a cell with one state (RNN, GRU): (params, x, h0,
    lengths) as its trusted ``_forward`` takes them (h0 zeros when None)."""
    x = check_x(x, where)
    T, B, I = x.shape
    params = checked_params(params, G, I, x.dtype, where)
    h0 = check_state(h0, "h0", B, params["weight_hh"].shape[1], x.dtype, where)
    return params, x, h0, lengths_arg(lengths, T, B, where)


def check_one_state_grads(params, cache, d_outputs, d_final_state, G: int, where: str):
    """A public backward's checks for a cell with one state: (params, d_outputs or None,
    d_final_state) as its trusted ``_backward`` takes them."""
    T, B, I = cache.x.shape
    H, dt = cache.h.shape[2], cache.x.dtype
    params = checked_params(params, G, I, dt, where)
    d_out = None if d_outputs is None else check_d_outputs(d_outputs, (T, B, H), dt, None, where)
    return params, d_out, check_state(d_final_state, "d_final_state", B, H, dt, where, finite=False)


def input_projection(x: np.ndarray, w_ih: np.ndarray, bias) -> np.ndarray:
    """A = x W_ihᵀ + bias for all steps at once, as a fresh (T, B, G*H) array."""
    T, B, I = x.shape
    A = (x.reshape(T * B, I) @ w_ih.T).reshape(T, B, w_ih.shape[0])
    if bias is not None:
        A += bias
    return A


def masked_outputs(h: np.ndarray, mask) -> np.ndarray:
    """Outputs y_t = m_t h_t as a fresh (T, B, H) array (never a view of the cache)."""
    return h[1:] * mask if mask is not None else h[1:].copy()


def check_d_outputs(d_outputs, shape, dtype, mask, where: str) -> np.ndarray:
    """d_outputs (T, B, H) in ``dtype``, zero past each length (those outputs are constant 0).

    None means the outputs are not used (zeros). The caller's array is never written.
    """
    if d_outputs is None:
        return np.zeros(shape, dtype=dtype)
    d = check_float_array(d_outputs, "d_outputs", where, ndim=3, dims="(T, B, H)", finite=False)
    check_shape(d, shape, "d_outputs", where)
    d = np.asarray(d, dtype=dtype)
    return d * mask if mask is not None else d


def param_grads(params, x: np.ndarray, h_prev: np.ndarray, dA: np.ndarray, dHH: np.ndarray,
                w_ih: np.ndarray, dx_out=None):
    """Weight gradients and dx as single products over all T·B rows.

    Returns ``(dx, grads)``; ``grads`` has exactly the keys of ``params``. dx is
    written into ``dx_out`` (a C-contiguous (T, B, I) array) when one is given.

    Shapes:
        x (T, B, I), h_prev (T, B, H) = h_0..h_{T-1}, dA and dHH (T, B, G*H)
        -> dx (T, B, I); grads like params
    """
    T, B, I = x.shape
    GH = dA.shape[2]
    dA2 = dA.reshape(T * B, GH)                  # (T*B, G*H)
    dHH2 = dHH.reshape(T * B, GH)                # (T*B, G*H)
    grads = {
        "weight_ih": dA2.T @ x.reshape(T * B, I),                       # (G*H, I)
        "weight_hh": dHH2.T @ h_prev.reshape(T * B, h_prev.shape[2]),   # (G*H, H)
    }
    if params.get("bias_ih") is not None:
        grads["bias_ih"] = dA2.sum(axis=0)                               # (G*H,)
    if params.get("bias_hh") is not None:
        if dHH is dA and "bias_ih" in grads:
            grads["bias_hh"] = grads["bias_ih"].copy()   # same sum; own array for in-place users
        else:
            grads["bias_hh"] = dHH2.sum(axis=0)
    if dx_out is None:
        return (dA2 @ w_ih).reshape(T, B, I), grads
    np.matmul(dA2, w_ih, out=dx_out.reshape(T * B, I))
    return dx_out, grads
