r"""The layer-normalised GRU with the time loop in C: a drop-in for ``rnnkit.cells.gru_variants``.

Layer norm (``ln_*``) runs compiled (``_variants.c``): the same equations, arguments,
results, errors and cache (:class:`~rnnkit.cells.gru_variants.GRUVariantCache`) as the
reference, whose docstring derives them:

    [a_r a_z a_n] = LN_ih(W_ih xₜ) + b_ih,   [u_r u_z u_n] = LN_hh(W_hh hₜ₋₁) + b_hh
    r = σ(a_r + u_r),  z = σ(a_z + u_z),  n = tanh(a_n + r ⊙ u_n),  hₜ = (1 − z) ⊙ n + z ⊙ hₜ₋₁

NumPy does the input side of all steps (projection and LN_ih) before the loop and
dx and the weight, gain and bias gradients after the backward loop; each step's
product by W_hh, LN_hh and the gate arithmetic run in C. Zoneout and recurrent
dropout masks (``rng`` given with a probability above 0) run the reference, as does
a GRU without layer norm here (``rnnkit.fast.gru`` is the plain cell's twin) and
everything without the compiled kernels. Either backward accepts either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit.cells import _layernorm as ln
from rnnkit.cells import gru_variants as _ref
from rnnkit.cells._common import check_d_outputs, check_state, check_x, lengths_arg, mask_from_lengths
from rnnkit.cells._params import input_grads
from rnnkit.cells.gru_variants import GRUVariantCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "GRU"


def compiled(params, zoneout=0.0, recurrent_dropout=0.0, rng=None) -> bool:
    """Whether the C loop runs these arguments: layer norm without zoneout or
    recurrent-dropout masks (else the reference runs)."""
    masks = rng is not None and (zoneout > 0 or recurrent_dropout > 0)
    return not masks and "ln_ih_weight" in params


def forward(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """Run the GRU with the variants its params name (``rnnkit.cells.gru_variants.forward``).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H) -> outputs (T, B, H), h_T (B, H)
    """
    k = _kernels()
    if k is None or not compiled(params, zoneout, recurrent_dropout, rng):
        return _ref.forward(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return _forward(*_check_inputs(params, x, h0, lengths), k)


def infer(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """:func:`forward` without a cache: (outputs, h_T)."""
    k = _kernels()
    if k is None or not compiled(params, zoneout, recurrent_dropout, rng):
        return _ref.infer(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return _infer(*_check_inputs(params, x, h0, lengths), k)


def _check_inputs(params, x, h0, lengths):
    """The reference's checks: (params, x, h0, lengths as ``lengths_arg`` gives them)."""
    x = check_x(x, WHERE)
    T, B, I = x.shape
    H, p = _ref._unpack(params, I, x.dtype)
    return p, x, check_state(h0, "h0", B, H, x.dtype, WHERE), lengths_arg(lengths, T, B, WHERE)


def _prepare(params, x):
    """(H, w_hh, ln, A, (n_ih, s_ih)): the kernel's weights, ln = [γ_hh, β_hh + b_hh] (6H),
    and the input side A = LN_ih(x W_ihᵀ) + b_ih of every step with LN_ih's cache."""
    T, B, I = x.shape
    dt = x.dtype
    w_hh = np.ascontiguousarray(params["weight_hh"])
    H = w_hh.shape[1]
    U = _util.project(np.ascontiguousarray(x), params["weight_ih"], _util.empty(dt, (T, B, 3 * H)))
    A, n_ih, s_ih = ln.forward(U, params["ln_ih_weight"], params["ln_ih_bias"])
    if params.get("bias_ih") is not None:
        A += params["bias_ih"]
    beta = params["ln_hh_bias"] if params.get("bias_hh") is None else params["ln_hh_bias"] + params["bias_hh"]
    lnp = np.concatenate([params["ln_hh_weight"], beta]).astype(dt)
    return H, w_hh, lnp, A, (n_ih, s_ih)


@_util.threads_for_call
def _forward(params, x, h0, lengths, k):
    """:func:`forward` on checked arguments with the kernels ``k`` (``rnnkit.Recurrent``
    checks and chooses once per call): h0 None or (B, H), lengths from ``lengths_arg``."""
    T, B, _ = x.shape
    dt = x.dtype
    H, w_hh, lnp, A, lnc_ih = _prepare(params, x)
    h, hn, n_hh, s_hh, y = _util.workspace(dt, (T + 1, B, H), (T, B, H), (T, B, 3 * H), (T, B, 1), (T, B, H))
    h[0] = 0 if h0 is None else h0
    k.gruln_fwd(T, B, H, lengths, A, lnp, w_hh, h, hn, n_hh, s_hh, y)
    cache = GRUVariantCache(x, h, A, hn, (*lnc_ih, n_hh, s_hh), None, None, mask_from_lengths(lengths, T))
    return y, h[T].copy(), cache


@_util.threads_for_call
def _infer(params, x, h0, lengths, k):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    T, B, _ = x.shape
    dt = x.dtype
    H, w_hh, lnp, A, _ = _prepare(params, x)
    y, h, work = _util.workspace(dt, (T, B, H), (B, H), (B, 3 * H))
    h[...] = 0 if h0 is None else h0
    k.gruln_inf(T, B, H, lengths, A, lnp, w_hh, h, y, work)
    return y, h.copy()


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (``rnnkit.cells.gru_variants.backward``'s contract).

    Returns:
        (dx, dh0, grads) or with ``return_dh`` also δh (T, B, H).

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H)
    """
    if not isinstance(cache, GRUVariantCache):
        raise TypeError(f"{WHERE}: expected the cache from gru_variants.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None or not _compiled_cache(cache):
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    T, B, I = cache.x.shape
    dt = cache.x.dtype
    H, p = _ref._unpack(params, I, dt)
    d_out = None if d_outputs is None else check_d_outputs(d_outputs, (T, B, H), dt, None, WHERE)
    d_final = check_state(d_final_state, "d_final_state", B, H, dt, WHERE, finite=False)
    return _backward(p, d_out, d_final, cache, return_dh, k)


def _compiled_cache(cache) -> bool:
    return cache.ln is not None and cache.rho is None and cache.zone is None


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments with the kernels ``k``: d_outputs None or
    (T, B, H), d_final_state None or (B, H). A cache with masks goes to the reference."""
    if not _compiled_cache(cache):
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    x, h, gates, hn, lnc, _, _, mask = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    lens = None if mask is None else np.ascontiguousarray(mask[:, :, 0].sum(axis=0), dtype=np.int64)
    gamma = np.ascontiguousarray(params["ln_hh_weight"])   # of ln, the backward reads only γ_hh
    w_hh = np.ascontiguousarray(params["weight_hh"])
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    da, du, dv, dh = _util.workspace(dt, (T, B, 3 * H), (T, B, 3 * H), (T, B, 3 * H), (B, H))
    dh[...] = 0 if d_final_state is None else d_final_state
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    # every array the C call reads is bound to a name, so none is freed under it
    h, gates, hn = (np.ascontiguousarray(a) for a in (h, gates, hn))
    n_ih, s_ih, n_hh, s_hh = (np.ascontiguousarray(a) for a in lnc)
    k.gruln_bwd(T, B, H, lens, gates, hn, h, n_hh, s_hh, gamma, w_hh, d_out, dh, da, du, dv, dh_all)
    grads = {"weight_hh": dv.reshape(T * B, 3 * H).T @ h[:-1].reshape(T * B, H)}
    dx = input_grads(x, ln.backward(da, n_ih, s_ih, params["ln_ih_weight"]), params["weight_ih"], grads)
    if "bias_ih" in params:
        grads["bias_ih"] = da.reshape(T * B, 3 * H).sum(axis=0)
        grads["bias_hh"] = du.reshape(T * B, 3 * H).sum(axis=0)
    grads["ln_ih_weight"], grads["ln_ih_bias"] = ln.param_grads(da, n_ih)
    grads["ln_hh_weight"], grads["ln_hh_bias"] = ln.param_grads(du, n_hh)
    grads = {key: grads[key] for key in params}
    if return_dh:
        return dx, dh.copy(), grads, dh_all
    return dx, dh.copy(), grads
