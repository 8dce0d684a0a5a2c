r"""The GRU with its variants: layer normalisation, zoneout and recurrent dropout, each
optional, with hand-derived BPTT.

Layer norm (Ba, Kiros & Hinton 2016) runs when the params hold ``ln_ih_weight``,
``ln_ih_bias``, ``ln_hh_weight``, ``ln_hh_bias`` (3H,); zoneout (Krueger et al. 2016)
and recurrent dropout (Gal & Ghahramani 2016) take masks drawn from ``rng``
(training only). With none of them this is :mod:`rnnkit.cells.gru`. Gate order
r, z, n as PyTorch; without layer norm read LN(a) as a:

    ρₜ-masked state   sₜ = ρ ⊙ hₜ₋₁      (ρ one mask per sequence, Bernoulli(1−p)/(1−p))   (1)
    [a_r a_z a_n] = LN_ih(W_ih xₜ) + b_ih,   [u_r u_z u_n] = LN_hh(W_hh sₜ) + b_hh          (2)
    rₜ = σ(a_r + u_r),  zₜ = σ(a_z + u_z),  nₜ = tanh(a_n + rₜ ⊙ u_n)                       (3)
    h̃ₜ = (1 − zₜ) ⊙ nₜ + zₜ ⊙ hₜ₋₁                                                        (4)
    hₜ = ζₜ ⊙ hₜ₋₁ + (1 − ζₜ) ⊙ h̃ₜ     (ζ zoneout mask, Bernoulli(p) per step and unit)    (5)
    yₜ = hₜ

Backward (inside the sequence; past its end the state is carried as in the GRU):

    δh̃ = (1 − ζ) δhₜ                                                                   (5)
    dn = δh̃ ⊙ (1 − z),  dz = δh̃ ⊙ (hₜ₋₁ − n),  da_n = dn ⊙ (1 − n²)                  (3, 4)
    du_n = da_n ⊙ r,  du_r = da_r = da_n ⊙ u_n ⊙ r(1 − r),  du_z = da_z = dz ⊙ z(1 − z)  (3)
    dv = LN_hh'(du);  δhₜ₋₁ = ρ ⊙ (W_hhᵀ dv) + z ⊙ δh̃ + ζ δhₜ                          (1, 2, 4, 5)
    ∂L/∂W_hh = Σₜ dvₜ sₜᵀ,  ∂L/∂b_hh = Σₜ duₜ,  ∂L/∂b_ih = Σₜ daₜ,
    dw = LN_ih'(da):  ∂L/∂W_ih = Σₜ dwₜ xₜᵀ,  ∂L/∂xₜ = W_ihᵀ dwₜ,
    the LN gains and biases by :mod:`~rnnkit.cells._layernorm` (from da and du).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit.cells import _layernorm as ln
from rnnkit.cells._common import check_d_outputs, check_state, check_x, length_mask, sigmoid_
from rnnkit.cells._params import check_params, get_array, input_grads
from rnnkit.cells.lstm_variants import draw_masks

WHERE = "GRU"


def layout(I: int, H: int, bias: bool = True, layer_norm: bool = False) -> dict:
    """Parameter shapes, in torch.nn.GRU's order, then the layer norms."""
    shapes = {"weight_ih": (3 * H, I), "weight_hh": (3 * H, H)}
    if bias:
        shapes.update(bias_ih=(3 * H,), bias_hh=(3 * H,))
    if layer_norm:
        shapes.update(ln_ih_weight=(3 * H,), ln_ih_bias=(3 * H,), ln_hh_weight=(3 * H,), ln_hh_bias=(3 * H,))
    return shapes


class GRUVariantCache(NamedTuple):
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, H)
    gates: np.ndarray             # (T, B, 3H): r, z, n
    hn: np.ndarray                # (T, B, H): u_n
    ln: Optional[tuple]           # (n_ih, s_ih, n_hh, s_hh) or None
    rho: Optional[np.ndarray]     # (B, H) or None
    zone: Optional[np.ndarray]    # (T, B, H) bool or None
    mask: Optional[np.ndarray]    # (T, B, 1) bool or None


def _unpack(params, I: int, dt):
    w_hh = get_array(params, "weight_hh", WHERE, 2)
    H = w_hh.shape[1]
    shapes = layout(I, H, "bias_ih" in params, "ln_ih_weight" in params)
    return H, check_params(params, shapes, dt, WHERE)


def forward(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """Run the GRU with the variants its params and arguments name (module docstring).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H) -> outputs (T, B, H), h_T (B, H)
    """
    x = check_x(x, WHERE)
    T, B, I = x.shape
    dt = x.dtype
    H, p = _unpack(params, I, dt)
    mask = length_mask(lengths, T, B, WHERE)
    rho, zone = draw_masks(rng, B, T, H, H, zoneout, recurrent_dropout, dt)
    zone = None if zone is None else zone[0]
    use_ln = "ln_ih_weight" in p

    A = (x.reshape(T * B, I) @ p["weight_ih"].T).reshape(T, B, 3 * H)
    lnc = None
    if use_ln:
        A, n_ih, s_ih = ln.forward(A, p["ln_ih_weight"], p["ln_ih_bias"])
        n_hh, s_hh = np.empty((T, B, 3 * H), dt), np.empty((T, B, 1), dt)
        lnc = (n_ih, s_ih, n_hh, s_hh)
    if "bias_ih" in p:
        A += p["bias_ih"]
    gates = A
    h = np.empty((T + 1, B, H), dt)
    hn = np.empty((T, B, H), dt)
    h[0] = check_state(h0, "h0", B, H, dt, WHERE)
    w_hh_T = np.ascontiguousarray(p["weight_hh"].T)    # (H, 3H)
    for t in range(T):
        s = h[t] * rho if rho is not None else h[t]                        # (1)
        u = s @ w_hh_T
        if use_ln:                                                         # (2)
            u, n_hh[t], s_hh[t] = ln.forward(u, p["ln_hh_weight"], p["ln_hh_bias"])
        if "bias_hh" in p:
            u += p["bias_hh"]
        a = gates[t]
        hn[t] = u[:, 2 * H:]
        a[:, :2 * H] += u[:, :2 * H]
        sigmoid_(a[:, :2 * H])                                             # (3)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        n += r * hn[t]
        np.tanh(n, out=n)
        new = n + z * (h[t] - n)                                           # (4)
        h[t + 1] = np.where(zone[t], h[t], new) if zone is not None else new   # (5)
        if mask is not None:
            np.copyto(h[t + 1], h[t], where=~mask[t])
    cache = GRUVariantCache(x, h, gates, hn, lnc, rho, zone, mask)
    out = h[1:] * mask if mask is not None else h[1:].copy()
    return out, h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, zoneout=0.0, recurrent_dropout=0.0, rng=None):
    """:func:`forward` without the cache: (outputs, h_T)."""
    outputs, final, _ = forward(params, x, h0, lengths, zoneout, recurrent_dropout, rng)
    return outputs, final


def backward(params, cache: GRUVariantCache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (equations in the module docstring).

    Returns:
        (dx, dh0, grads) or with ``return_dh`` also δh (T, B, H).

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H)
    """
    if not isinstance(cache, GRUVariantCache):
        raise TypeError(f"{WHERE}: expected the cache from gru_variants.forward, got {type(cache).__name__}")
    x, h, gates, hn, lnc, rho, zone, mask = cache
    T, B, I = x.shape
    dt = x.dtype
    H, p = _unpack(params, I, dt)
    d_out = check_d_outputs(d_outputs, (T, B, H), dt, mask, WHERE)
    dh = check_state(d_final_state, "d_final_state", B, H, dt, WHERE, finite=False).copy()
    use_ln = lnc is not None

    da = np.empty((T, B, 3 * H), dt)
    du = np.empty((T, B, 3 * H), dt)
    dv = np.empty((T, B, 3 * H), dt) if use_ln else du
    dh_all = np.empty((T, B, H), dt) if return_dh else None
    w_hh = p["weight_hh"]
    for t in range(T - 1, -1, -1):
        dh += d_out[t]
        if return_dh:
            dh_all[t] = dh
        dh_cell = dh * mask[t] if mask is not None else dh
        carry = dh - dh_cell if mask is not None else None
        keep = None
        if zone is not None:                       # (5)
            keep = dh_cell * zone[t]
            dh_cell = dh_cell - keep
        gt, dut = gates[t], du[t]
        r, z, n = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:]
        dn = dh_cell * (1 - z)                                             # (4)
        dzg = dh_cell * (h[t] - n)
        da_n = da[t, :, 2 * H:]
        np.multiply(dn, 1 - n * n, out=da_n)                               # (3)
        np.multiply(da_n, r, out=dut[:, 2 * H:])
        np.multiply(da_n * hn[t], r * (1 - r), out=dut[:, :H])
        np.multiply(dzg, z * (1 - z), out=dut[:, H:2 * H])
        da[t, :, :2 * H] = dut[:, :2 * H]
        if use_ln:
            dv[t] = ln.backward(dut, lnc[2][t], lnc[3][t], p["ln_hh_weight"])
        dh_prev = dv[t] @ w_hh                                             # (1, 2)
        if rho is not None:
            dh_prev *= rho
        dh_prev += dh_cell * z
        if keep is not None:
            dh_prev += keep
        if carry is not None:
            dh_prev += carry
        dh = dh_prev

    grads = {}
    s = h[:-1] * rho if rho is not None else h[:-1]
    grads["weight_hh"] = dv.reshape(T * B, 3 * H).T @ s.reshape(T * B, H)
    dw = ln.backward(da, lnc[0], lnc[1], p["ln_ih_weight"]) if use_ln else da
    dx = input_grads(x, dw, p["weight_ih"], grads)
    if "bias_ih" in p:
        grads["bias_ih"] = da.reshape(T * B, 3 * H).sum(axis=0)
        grads["bias_hh"] = du.reshape(T * B, 3 * H).sum(axis=0)
    if use_ln:
        grads["ln_ih_weight"], grads["ln_ih_bias"] = ln.param_grads(da, lnc[0])
        grads["ln_hh_weight"], grads["ln_hh_bias"] = ln.param_grads(du, lnc[2])
    grads = {key: grads[key] for key in p}
    if return_dh:
        return dx, dh, grads, dh_all
    return dx, dh, grads
