r"""The LSTM with its variants: projection, layer normalisation, peepholes, zoneout and
recurrent dropout, each optional, with hand-derived BPTT.

Which variants run follows from the params present: ``weight_hr`` (projection, as
torch.nn.LSTM(proj_size=P)), ``weight_ci``/``weight_cf``/``weight_co`` (peepholes,
Gers & Schmidhuber 2000), ``ln_*`` (layer norm, Ba, Kiros & Hinton 2016); zoneout
(Krueger et al. 2016) and recurrent dropout (Gal & Ghahramani 2016) take masks drawn
from ``rng`` (training only: without ``rng`` there are none). With none of them this
is :mod:`rnnkit.cells.lstm`. Gate order i, f, g, o; rows in the code.

Forward, t = 1..T; LN(·; γ, β) is :mod:`~rnnkit.cells._layernorm`, and without layer
norm read LN(a) as a; P = proj_size (P = H without projection):

    rₜ   = ρ ⊙ hₜ₋₁           ρ: one mask per sequence, Bernoulli(1−p)/(1−p), else 1   (1)
    zₜ   = LN_ih(W_ih xₜ) + LN_hh(W_hh rₜ) + b_ih + b_hh                             (2)
    iₜ = σ(z_i + w_ci ⊙ cₜ₋₁),  fₜ = σ(z_f + w_cf ⊙ cₜ₋₁),  gₜ = tanh(z_g)           (3)
    c̃ₜ  = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ                                                     (4)
    oₜ   = σ(z_o + w_co ⊙ c̃ₜ)                                                      (5)
    kₜ   = tanh(LN_c(c̃ₜ)),   mₜ = oₜ ⊙ kₜ                                          (6)
    h̃ₜ  = W_hr mₜ  (projection)   or   mₜ                                          (7)
    cₜ   = ζᶜₜ ⊙ cₜ₋₁ + (1 − ζᶜₜ) ⊙ c̃ₜ,   hₜ = ζʰₜ ⊙ hₜ₋₁ + (1 − ζʰₜ) ⊙ h̃ₜ          (8)
           ζ: zoneout masks, Bernoulli(p) per step and unit (0 without zoneout)
    yₜ   = hₜ

With ``lengths`` the state is carried past a sequence's end and yₜ = 0 there, as in
:mod:`rnnkit.cells.lstm`.

Backward, δhₜ and δcₜ the total gradients of the state at step t (δh_T, δc_T from
d_final_state), for steps inside the sequence:

    δh̃ = (1 − ζʰ) δhₜ,  δc̃ = (1 − ζᶜ) δcₜ                                       (8)
    δm = W_hrᵀ δh̃ (or δh̃);   ∂L/∂W_hr = Σₜ δh̃ mₜᵀ                               (7)
    do = δm ⊙ k;  δĉ = δm ⊙ o ⊙ (1 − k²);  δc̃ += LN_c'(δĉ)                       (6)
    dz_o = do ⊙ o(1 − o);  δc̃ += w_co ⊙ dz_o                                     (5)
    dz_i = δc̃ ⊙ g ⊙ i(1−i),  dz_f = δc̃ ⊙ cₜ₋₁ ⊙ f(1−f),  dz_g = δc̃ ⊙ i ⊙ (1−g²)   (3, 4)
    δcₜ₋₁ = δc̃ ⊙ f + w_ci ⊙ dz_i + w_cf ⊙ dz_f + ζᶜ δcₜ                          (3, 4, 8)
    dv = LN_hh'(dz);  δhₜ₋₁ = ρ ⊙ (W_hhᵀ dv) + ζʰ δhₜ                              (1, 2, 8)
    ∂L/∂W_hh = Σₜ dvₜ rₜᵀ,  ∂L/∂b = Σₜ dzₜ,  du = LN_ih'(dz),  ∂L/∂W_ih = Σₜ duₜ xₜᵀ,
    ∂L/∂xₜ = W_ihᵀ duₜ,  ∂L/∂w_ci = Σ dz_i ⊙ cₜ₋₁,  ∂L/∂w_cf = Σ dz_f ⊙ cₜ₋₁,
    ∂L/∂w_co = Σ dz_o ⊙ c̃ₜ,  and the LN gains and biases by :mod:`~rnnkit.cells._layernorm`

where LN'(d) is the layer-norm input gradient. Parameters (PyTorch's names where
PyTorch has the variant): weight_ih (4H, I), weight_hh (4H, P), bias_ih, bias_hh
(4H,), weight_hr (P, H), weight_ci, weight_cf, weight_co (H,), ln_ih_weight,
ln_ih_bias, ln_hh_weight, ln_hh_bias (4H,), ln_c_weight, ln_c_bias (H,).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit.cells import _layernorm as ln
from rnnkit.cells._common import check_d_outputs, check_state, check_x, length_mask, sigmoid_
from rnnkit.cells._params import check_params, get_array, input_grads
from rnnkit.cells.lstm import split_pair

WHERE = "LSTM"
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")
LN_KEYS = ("ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias")


def layout(I: int, H: int, bias: bool = True, proj_size: int = 0, layer_norm: bool = False,
           peephole: bool = False) -> dict:
    """Parameter shapes, in torch.nn.LSTM's order, then the peepholes and the layer norms."""
    P = proj_size or H
    shapes = {"weight_ih": (4 * H, I), "weight_hh": (4 * H, P)}
    if bias:
        shapes.update(bias_ih=(4 * H,), bias_hh=(4 * H,))
    if proj_size:
        shapes["weight_hr"] = (P, H)
    if peephole:
        shapes.update({k: (H,) for k in PEEPHOLES})
    if layer_norm:
        shapes.update(ln_ih_weight=(4 * H,), ln_ih_bias=(4 * H,), ln_hh_weight=(4 * H,),
                      ln_hh_bias=(4 * H,), ln_c_weight=(H,), ln_c_bias=(H,))
    return shapes


class LSTMVariantCache(NamedTuple):
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, P), h[0] = h0
    c: np.ndarray                 # (T+1, B, H), c[0] = c0
    gates: np.ndarray             # (T, B, 4H): i, f, g, o
    c_new: np.ndarray             # (T, B, H): c̃ₜ
    k: np.ndarray                 # (T, B, H): tanh(LN_c(c̃ₜ))
    ln: Optional[tuple]           # (n_ih, s_ih, n_hh, s_hh, n_c, s_c) or None
    rho: Optional[np.ndarray]     # (B, P) recurrent-dropout mask or None
    zone: Optional[tuple]         # (ζʰ (T, B, P), ζᶜ (T, B, H)) bool or None
    mask: Optional[np.ndarray]    # (T, B, 1) bool or None


def _unpack(params, I: int, dt):
    w_hh = get_array(params, "weight_hh", WHERE, 2)
    if w_hh.shape[0] % 4 or w_hh.shape[0] == 0:
        raise ValueError(f"{WHERE}: expected params['weight_hh'] of shape (4*H, P), got {w_hh.shape}")
    H = w_hh.shape[0] // 4
    proj = w_hh.shape[1] if "weight_hr" in params else 0
    shapes = layout(I, H, "bias_ih" in params, proj, "ln_ih_weight" in params, "weight_ci" in params)
    return H, (proj or H), check_params(params, shapes, dt, WHERE)


def draw_masks(rng, B: int, T: int, P: int, H: int, zoneout: float, recurrent_dropout: float, dt):
    """(ρ, ζ) for one sequence batch: ρ (B, P) inverted-dropout scales or None, ζ the pair of
    bool zoneout masks (T, B, P), (T, B, H) (True: keep the previous value) or None."""
    if rng is None:
        return None, None
    rho = None
    if recurrent_dropout > 0:
        rho = ((rng.random((B, P)) >= recurrent_dropout) / (1.0 - recurrent_dropout)).astype(dt)
    zone = None
    if zoneout > 0:
        zone = (rng.random((T, B, P)) < zoneout, rng.random((T, B, H)) < zoneout)
    return rho, zone


def forward(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """Run the LSTM with the variants its params name (module docstring).

    Args:
        params: see the module docstring; the variants follow from the keys.
        h0: (h0, c0) or None (either may be None: zeros).
        zoneout, recurrent_dropout: probabilities; masks are drawn from ``rng`` (None: no masks).

    Returns:
        (outputs, (h_T, c_T), cache)

    Shapes:
        x (T, B, I), h0 (B, P), c0 (B, H) -> outputs (T, B, P), h_T (B, P), c_T (B, H)
    """
    x = check_x(x, WHERE)
    T, B, I = x.shape
    dt = x.dtype
    H, P, p = _unpack(params, I, dt)
    h_init, c_init = split_pair(h0, "h0")
    mask = length_mask(lengths, T, B, WHERE)
    rho, zone = draw_masks(rng, B, T, P, H, zoneout, recurrent_dropout, dt)
    use_ln, peep, proj = "ln_ih_weight" in p, "weight_ci" in p, "weight_hr" in p

    U = (x.reshape(T * B, I) @ p["weight_ih"].T).reshape(T, B, 4 * H)      # W_ih xₜ, all t
    lnc = None
    if use_ln:
        U, n_ih, s_ih = ln.forward(U, p["ln_ih_weight"], p["ln_ih_bias"])
        n_hh, s_hh = np.empty((T, B, 4 * H), dt), np.empty((T, B, 1), dt)
        n_c, s_c = np.empty((T, B, H), dt), np.empty((T, B, 1), dt)
        lnc = (n_ih, s_ih, n_hh, s_hh, n_c, s_c)
    if "bias_ih" in p:
        U += p["bias_ih"] + p["bias_hh"]
    gates = U                                      # each step turns its slice into the gates
    h = np.empty((T + 1, B, P), dt)
    c = np.empty((T + 1, B, H), dt)
    c_new = np.empty((T, B, H), dt)
    k = np.empty((T, B, H), dt)
    h[0] = check_state(h_init, "h0", B, P, dt, WHERE)
    c[0] = check_state(c_init, "c0", B, H, dt, WHERE)
    w_hh_T = np.ascontiguousarray(p["weight_hh"].T)    # (P, 4H)
    for t in range(T):
        r = h[t] * rho if rho is not None else h[t]                        # (1)
        v = r @ w_hh_T
        z = gates[t]
        if use_ln:                                                         # (2)
            v, n_hh[t], s_hh[t] = ln.forward(v, p["ln_hh_weight"], p["ln_hh_bias"])
        z += v
        if peep:
            z[:, :H] += p["weight_ci"] * c[t]
            z[:, H:2 * H] += p["weight_cf"] * c[t]
        sigmoid_(z[:, :2 * H])                                             # (3)
        np.tanh(z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])
        i, f, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H]
        cn = c_new[t]
        np.multiply(f, c[t], out=cn)                                       # (4)
        cn += i * g
        if peep:
            z[:, 3 * H:] += p["weight_co"] * cn
        sigmoid_(z[:, 3 * H:])                                             # (5)
        if use_ln:
            cl, n_c[t], s_c[t] = ln.forward(cn, p["ln_c_weight"], p["ln_c_bias"])
            np.tanh(cl, out=k[t])                                          # (6)
        else:
            np.tanh(cn, out=k[t])
        m = z[:, 3 * H:] * k[t]
        hn = m @ p["weight_hr"].T if proj else m                           # (7)
        if zone is not None:                                               # (8)
            np.copyto(h[t + 1], np.where(zone[0][t], h[t], hn))
            np.copyto(c[t + 1], np.where(zone[1][t], c[t], cn))
        else:
            h[t + 1] = hn
            c[t + 1] = cn
        if mask is not None:
            np.copyto(h[t + 1], h[t], where=~mask[t])
            np.copyto(c[t + 1], c[t], where=~mask[t])
    cache = LSTMVariantCache(x, h, c, gates, c_new, k, lnc, rho, zone, mask)
    out = h[1:] * mask if mask is not None else h[1:].copy()
    return out, (h[T].copy(), c[T].copy()), cache


def infer(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """:func:`forward` without the cache: (outputs, (h_T, c_T))."""
    outputs, final, _ = forward(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return outputs, final


def backward(params, cache: LSTMVariantCache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (equations in the module docstring).

    Returns:
        (dx, (dh0, dc0), grads) or with ``return_dh`` also δh (T, B, P).

    Shapes:
        d_outputs (T, B, P), d_final_state ((B, P), (B, H)) -> dx (T, B, I), dh0 (B, P), dc0 (B, H)
    """
    if not isinstance(cache, LSTMVariantCache):
        raise TypeError(f"{WHERE}: expected the cache from lstm_variants.forward, got {type(cache).__name__}")
    x, h, c, gates, c_new, k, lnc, rho, zone, mask = cache
    T, B, I = x.shape
    dt = x.dtype
    H, P, p = _unpack(params, I, dt)
    use_ln, peep, proj = lnc is not None, "weight_ci" in p, "weight_hr" in p
    d_out = check_d_outputs(d_outputs, (T, B, P), dt, mask, WHERE)
    dh_T, dc_T = split_pair(d_final_state, "d_final_state")
    dh = check_state(dh_T, "d_final_state[0]", B, P, dt, WHERE, finite=False).copy()
    dc = check_state(dc_T, "d_final_state[1]", B, H, dt, WHERE, finite=False).copy()

    dz = np.empty((T, B, 4 * H), dt)               # ∂L/∂zₜ (after the peepholes are added)
    dv = np.empty((T, B, 4 * H), dt) if use_ln else dz
    dchat = np.empty((T, B, H), dt) if use_ln else None
    dhn_all = np.empty((T, B, P), dt) if proj else None
    dh_all = np.empty((T, B, P), dt) if return_dh else None
    w_hh, w_hr = p["weight_hh"], p.get("weight_hr")
    for t in range(T - 1, -1, -1):
        dh += d_out[t]
        if return_dh:
            dh_all[t] = dh
        if mask is not None:
            dh_cell, dc_cell = dh * mask[t], dc * mask[t]
            dh_carry, dc_carry = dh - dh_cell, dc - dc_cell
        else:
            dh_cell, dc_cell = dh, dc
        if zone is not None:                       # (8): what zoneout kept flows straight back
            dh_keep, dc_keep = dh_cell * zone[0][t], dc_cell * zone[1][t]
            dh_cell, dc_cell = dh_cell - dh_keep, dc_cell - dc_keep
        zt = gates[t]
        i, f, g, o = zt[:, :H], zt[:, H:2 * H], zt[:, 2 * H:3 * H], zt[:, 3 * H:]
        # through the projection (7) and mₜ = oₜ ⊙ kₜ (6)
        if proj:
            dhn_all[t] = dh_cell
            dm = dh_cell @ w_hr
        else:
            dm = dh_cell
        kt = k[t]
        do = dm * kt
        dcn = dm * o * (1 - kt * kt)               # ∂L/∂LN_c(c̃), then ∂L/∂c̃
        if use_ln:
            dchat[t] = dcn
            dcn = ln.backward(dcn, lnc[4][t], lnc[5][t], p["ln_c_weight"])
        dcn += dc_cell
        dzt = dz[t]
        np.multiply(do, o * (1 - o), out=dzt[:, 3 * H:])                   # (5)
        if peep:
            dcn += p["weight_co"] * dzt[:, 3 * H:]
        # through c̃ = f ⊙ cₜ₋₁ + i ⊙ g (4) and the gates' nonlinearities (3)
        np.multiply(dcn * g, i * (1 - i), out=dzt[:, :H])
        np.multiply(dcn * c[t], f * (1 - f), out=dzt[:, H:2 * H])
        np.multiply(dcn * i, 1 - g * g, out=dzt[:, 2 * H:3 * H])
        dc = dcn * f
        if peep:
            dc += p["weight_ci"] * dzt[:, :H] + p["weight_cf"] * dzt[:, H:2 * H]
        # into hₜ₋₁ through LN_hh, W_hh and the dropout mask (1, 2)
        if use_ln:
            dv[t] = ln.backward(dzt, lnc[2][t], lnc[3][t], p["ln_hh_weight"])
        dh = dv[t] @ w_hh
        if rho is not None:
            dh *= rho
        if zone is not None:
            dh += dh_keep
            dc += dc_keep
        if mask is not None:
            dh += dh_carry
            dc += dc_carry

    grads = {}
    r = h[:-1] * rho if rho is not None else h[:-1]                        # (T, B, P)
    grads["weight_hh"] = dv.reshape(T * B, 4 * H).T @ r.reshape(T * B, P)
    du = ln.backward(dz, lnc[0], lnc[1], p["ln_ih_weight"]) if use_ln else dz
    dx = input_grads(x, du, p["weight_ih"], grads)
    if "bias_ih" in p:
        grads["bias_ih"] = dz.reshape(T * B, 4 * H).sum(axis=0)
        grads["bias_hh"] = grads["bias_ih"].copy()
    if proj:
        m = gates[:, :, 3 * H:] * k                                        # (T, B, H)
        grads["weight_hr"] = dhn_all.reshape(T * B, P).T @ m.reshape(T * B, H)
    if peep:
        grads["weight_ci"] = np.einsum("tbh,tbh->h", dz[:, :, :H], c[:-1])
        grads["weight_cf"] = np.einsum("tbh,tbh->h", dz[:, :, H:2 * H], c[:-1])
        grads["weight_co"] = np.einsum("tbh,tbh->h", dz[:, :, 3 * H:], c_new)
    if use_ln:
        grads["ln_ih_weight"], grads["ln_ih_bias"] = ln.param_grads(dz, lnc[0])
        grads["ln_hh_weight"], grads["ln_hh_bias"] = ln.param_grads(dz, lnc[2])
        grads["ln_c_weight"], grads["ln_c_bias"] = ln.param_grads(dchat, lnc[4])
    grads = {key: grads[key] for key in p}         # params' order
    if return_dh:
        return dx, (dh, dc), grads, dh_all
    return dx, (dh, dc), grads
