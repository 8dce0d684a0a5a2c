r"""The LSTM variants with the time loop in C: a drop-in for ``rnnkit.cells.lstm_variants``.

The projection (``weight_hr``, torch.nn.LSTM(proj_size=P)) and layer norm (``ln_*``),
alone or together, run compiled (``_variants.c``); the same equations, arguments,
results, errors and cache (:class:`~rnnkit.cells.lstm_variants.LSTMVariantCache`) as
the reference, whose docstring derives them:

    zₜ = LN_ih(W_ih xₜ) + LN_hh(W_hh hₜ₋₁) + b_ih + b_hh;   i, f, o = σ(·), g = tanh(·)
    c̃ₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ;   kₜ = tanh(LN_c(c̃ₜ));   hₜ = W_hr (oₜ ⊙ kₜ)  (or oₜ ⊙ kₜ)

NumPy does the once-per-sequence work: the input projection of all steps and its
layer norm LN_ih before the loop (without layer norm the kernel projects xₜ itself
when W_ih is small, as ``rnnkit.fast.lstm``), and after the backward loop dx and
the weight, gain and bias gradients (one product or sum each). Each step's products
by W_hh and W_hr, the row-wise layer norms and the gate arithmetic run in C.

Peepholes, and zoneout or recurrent dropout masks (``rng`` given with a probability
above 0), run the reference (:func:`compiled` says which runs); so does everything
without the compiled kernels. Either backward accepts either forward's cache.
"""

from __future__ import annotations

import numpy as np

from rnnkit.cells import _layernorm as ln
from rnnkit.cells import lstm_variants as _ref
from rnnkit.cells._common import check_d_outputs, check_state, check_x, lengths_arg, mask_from_lengths
from rnnkit.cells._params import input_grads
from rnnkit.cells.lstm import split_pair
from rnnkit.cells.lstm_variants import LSTMVariantCache
from rnnkit.fast import _util
from rnnkit.fast import kernels as _kernels

WHERE = "LSTM"


def compiled(params, zoneout=0.0, recurrent_dropout=0.0, rng=None) -> bool:
    """Whether the C loop runs these arguments: no peepholes and no zoneout or
    recurrent-dropout masks (else the reference runs)."""
    masks = rng is not None and (zoneout > 0 or recurrent_dropout > 0)
    return not masks and "weight_ci" not in params


def forward(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """Run the LSTM with the variants its params name (``rnnkit.cells.lstm_variants.forward``).

    Returns:
        (outputs, (h_T, c_T), cache)

    Shapes:
        x (T, B, I), h0 (B, P), c0 (B, H) -> outputs (T, B, P), h_T (B, P), c_T (B, H)
    """
    k = _kernels()
    if k is None or not compiled(params, zoneout, recurrent_dropout, rng):
        return _ref.forward(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return _forward(*_check_inputs(params, x, h0, lengths), k)


def infer(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """:func:`forward` without a cache: (outputs, (h_T, c_T))."""
    k = _kernels()
    if k is None or not compiled(params, zoneout, recurrent_dropout, rng):
        return _ref.infer(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return _infer(*_check_inputs(params, x, h0, lengths), k)


def _check_inputs(params, x, h0, lengths):
    """The reference's checks: (params, x, (h0, c0), lengths as ``lengths_arg`` gives them)."""
    x = check_x(x, WHERE)
    T, B, I = x.shape
    H, P, p = _ref._unpack(params, I, x.dtype)
    h_init, c_init = split_pair(h0, "h0")
    state = (check_state(h_init, "h0", B, P, x.dtype, WHERE), check_state(c_init, "c0", B, H, x.dtype, WHERE))
    return p, x, state, lengths_arg(lengths, T, B, WHERE)


def _weights(params, dt):
    """(H, P, w_ih, w_hh, w_hr or None, bias, ln or None) as the kernels read them: bias
    (4H) = b_ih + b_hh (+ β_hh), ln = [γ_hh (4H), γ_c (H), β_c (H)]."""
    w_ih, w_hh = (np.ascontiguousarray(params[k]) for k in ("weight_ih", "weight_hh"))
    H, P = w_hh.shape[0] // 4, w_hh.shape[1]
    w_hr = params.get("weight_hr")
    w_hr = None if w_hr is None else np.ascontiguousarray(w_hr)
    bias = _util.folded_bias(params.get("bias_ih"), params.get("bias_hh"), 4 * H, dt)
    lnp = None
    if "ln_ih_weight" in params:
        bias = bias + params["ln_hh_bias"]
        lnp = np.concatenate([params["ln_hh_weight"], params["ln_c_weight"], params["ln_c_bias"]]).astype(dt)
    return H, P, w_ih, w_hh, w_hr, bias, lnp


def _input_side(params, x, w_ih, T, B, H, dt, scratch_rows):
    """(x_in, w_in, gates, lnc_ih): the kernel's input side. With layer norm LN_ih(x W_ihᵀ)
    of every step (and its cache (n_ih, s_ih)); else x and W_ih for the kernel to project
    each step itself, or x W_ihᵀ of every step (``rnnkit.fast._util.project_in_loop``).
    ``scratch_rows``: the rows of the gates buffer when the kernel projects (T·B or B)."""
    if "ln_ih_weight" in params:
        U = _util.project(x, w_ih, _util.empty(dt, (T, B, 4 * H)))
        gates, n_ih, s_ih = ln.forward(U, params["ln_ih_weight"], params["ln_ih_bias"])
        return None, None, gates, (n_ih, s_ih)
    if _util.project_in_loop(T, B, w_ih):
        return x, w_ih, _util.empty(dt, (scratch_rows, 4 * H)), None
    return None, None, _util.project(x, w_ih, _util.empty(dt, (T, B, 4 * H))), None


@_util.threads_for_call
def _forward(params, x, h0, lengths, k):
    """:func:`forward` on checked arguments with the kernels ``k`` (``rnnkit.Recurrent``
    checks and chooses once per call): params the layout's dict, h0 None or a pair of
    (B, P), (B, H) arrays or None, lengths from ``lengths_arg``."""
    T, B, I = x.shape
    dt = x.dtype
    x = np.ascontiguousarray(x)
    H, P, w_ih, w_hh, w_hr, bias, lnp = _weights(params, dt)
    x_in, w_in, gates, lnc_ih = _input_side(params, x, w_ih, T, B, H, dt, T * B)
    gates = gates.reshape(T, B, 4 * H)
    h, c, c_new, kk, y = _util.workspace(dt, (T + 1, B, P), (T + 1, B, H), (T, B, H), (T, B, H), (T, B, P))
    h_init, c_init = (None, None) if h0 is None else h0
    h[0] = 0 if h_init is None else h_init
    c[0] = 0 if c_init is None else c_init
    lnc = n_hh = s_hh = n_c = s_c = None
    if lnp is not None:
        n_hh, s_hh, n_c, s_c = _util.workspace(dt, (T, B, 4 * H), (T, B, 1), (T, B, H), (T, B, 1))
        lnc = (*lnc_ih, n_hh, s_hh, n_c, s_c)
    work = _util.empty(dt, (B, H)) if w_hr is not None else None
    k.lstmv_fwd(T, B, H, P, lengths, I, x_in, w_in, gates, bias, w_hh, w_hr, lnp, h, c, c_new, kk,
                n_hh, s_hh, n_c, s_c, y, work)
    cache = LSTMVariantCache(x, h, c, gates, c_new, kk, lnc, None, None, mask_from_lengths(lengths, T))
    return y, (h[T].copy(), c[T].copy()), cache


@_util.threads_for_call
def _infer(params, x, h0, lengths, k):
    """:func:`infer` on checked arguments (see :func:`_forward`): only the state is
    carried from step to step."""
    T, B, I = x.shape
    dt = x.dtype
    x = np.ascontiguousarray(x)
    H, P, w_ih, w_hh, w_hr, bias, lnp = _weights(params, dt)
    x_in, w_in, gates, _ = _input_side(params, x, w_ih, T, B, H, dt, B)
    y, h, c, work = _util.workspace(dt, (T, B, P), (B, P), (B, H), (B * (6 * H + P),))
    h_init, c_init = (None, None) if h0 is None else h0
    h[...] = 0 if h_init is None else h_init
    c[...] = 0 if c_init is None else c_init
    k.lstmv_inf(T, B, H, P, lengths, I, x_in, w_in, gates, bias, w_hh, w_hr, lnp, h, c, y, work)
    return y, (h.copy(), c.copy())


def backward(params, cache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (``rnnkit.cells.lstm_variants.backward``'s contract).

    Returns:
        (dx, (dh0, dc0), grads) or with ``return_dh`` also δh (T, B, P).

    Shapes:
        d_outputs (T, B, P), d_final_state ((B, P), (B, H)) -> dx (T, B, I), dh0 (B, P), dc0 (B, H)
    """
    if not isinstance(cache, LSTMVariantCache):
        raise TypeError(f"{WHERE}: expected the cache from lstm_variants.forward, got {type(cache).__name__}")
    k = _kernels()
    if k is None or not _compiled_cache(params, cache):
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    T, B, I = cache.x.shape
    dt = cache.x.dtype
    H, P, p = _ref._unpack(params, I, dt)
    d_out = None if d_outputs is None else check_d_outputs(d_outputs, (T, B, P), dt, None, WHERE)
    dh_T, dc_T = split_pair(d_final_state, "d_final_state")
    d_final = (check_state(dh_T, "d_final_state[0]", B, P, dt, WHERE, finite=False),
               check_state(dc_T, "d_final_state[1]", B, H, dt, WHERE, finite=False))
    return _backward(p, d_out, d_final, cache, return_dh, k)


def _compiled_cache(params, cache) -> bool:
    return cache.rho is None and cache.zone is None and "weight_ci" not in params


@_util.threads_for_call
def _backward(params, d_outputs, d_final_state, cache, return_dh, k):
    """:func:`backward` on checked arguments with the kernels ``k`` (``rnnkit.Recurrent``
    checks them once): d_outputs None or (T, B, P), d_final_state None or a pair of
    arrays or None. A cache with masks (or peephole params) goes to the reference."""
    if not _compiled_cache(params, cache):
        return _ref.backward(params, cache, d_outputs, d_final_state, return_dh)
    x, h, c, gates, _, kk, lnc, _, _, mask = cache
    T, B, I = x.shape
    dt = x.dtype
    H, P, _, w_hh, w_hr, _, lnp = _weights(params, dt)
    lens = None if mask is None else np.ascontiguousarray(mask[:, :, 0].sum(axis=0), dtype=np.int64)
    d_out = None if d_outputs is None else np.ascontiguousarray(d_outputs)
    proj, use_ln = w_hr is not None, lnp is not None
    dz, dh, dc = _util.workspace(dt, (T, B, 4 * H), (B, P), (B, H))
    dh_T, dc_T = (None, None) if d_final_state is None else d_final_state
    dh[...] = 0 if dh_T is None else dh_T
    dc[...] = 0 if dc_T is None else dc_T
    dv, dchat = _util.workspace(dt, (T, B, 4 * H), (T, B, H)) if use_ln else (None, None)
    dhn, work = _util.workspace(dt, (T, B, P), (B, H)) if proj else (None, None)
    dh_all = np.empty((T, B, P), dtype=dt) if return_dh else None
    # every array the C call reads is bound to a name, so none is freed under it
    h, c, gates, kk = (np.ascontiguousarray(a) for a in (h, c, gates, kk))
    n_ih, s_ih, n_hh, s_hh, n_c, s_c = (np.ascontiguousarray(a) for a in lnc) if use_ln else (None,) * 6
    k.lstmv_bwd(T, B, H, P, lens, gates, c, kk, lnp, n_hh, s_hh, n_c, s_c, w_hh, w_hr, d_out, dh, dc,
                dz, dv, dchat, dhn, dh_all, work)
    grads = {}
    dvz = dv if use_ln else dz                                             # (T, B, 4H)
    grads["weight_hh"] = dvz.reshape(T * B, 4 * H).T @ h[:-1].reshape(T * B, P)
    du = ln.backward(dz, n_ih, s_ih, params["ln_ih_weight"]) if use_ln else dz
    dx = input_grads(x, du, params["weight_ih"], grads)
    if "bias_ih" in params:
        grads["bias_ih"] = dz.reshape(T * B, 4 * H).sum(axis=0)
        grads["bias_hh"] = grads["bias_ih"].copy()
    if proj:
        m = gates[:, :, 3 * H:] * kk                                       # (T, B, H)
        grads["weight_hr"] = dhn.reshape(T * B, P).T @ m.reshape(T * B, H)
    if use_ln:
        grads["ln_ih_weight"], grads["ln_ih_bias"] = ln.param_grads(dz, n_ih)
        grads["ln_hh_weight"], grads["ln_hh_bias"] = ln.param_grads(dz, n_hh)
        grads["ln_c_weight"], grads["ln_c_bias"] = ln.param_grads(dchat, n_c)
    grads = {key: grads[key] for key in params}     # params' order
    if return_dh:
        return dx, (dh.copy(), dc.copy()), grads, dh_all
    return dx, (dh.copy(), dc.copy()), grads
