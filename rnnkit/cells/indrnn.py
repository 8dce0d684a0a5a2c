r"""IndRNN cell (Li, Li, Cook, Zhu & Gao 2018): each unit has one recurrent weight.

Forward, for t = 1..T (rows in the code; u is the recurrent weight *vector*):

    ũ  = clip(u, −M, M)   with M = recurrent_max (ũ = u when it is None)       (0)
    aₜ = W_ih xₜ + b_ih + b_hh + ũ ⊙ hₜ₋₁                                       (1)
    hₜ = φ(aₜ),   φ = relu (the paper's) or tanh                              (2)
    yₜ = hₜ                                                                     (3)

Units do not mix in time, so the gradient through k steps is Πₖ ũ φ' per unit:
|ũ| ≤ M with M = 2^(1/T) keeps it from exploding over T steps (the paper's bound).
The trainers keep u inside the bound by projecting it onto [−M, M] after every
optimizer step (:meth:`rnnkit.Recurrent.constrain`), as the paper's code clips it; the
clip (0) in the forward pass is then the identity, and only guards weights set from
outside. A weight exactly at the bound still gets its gradient ([|u| ≤ M] below), so
an update can move it back inside — with a strict [|u| < M] a projected weight would
be frozen at the bound for good.

With ``lengths`` (packed-sequence semantics) mₜ = 1 while t ≤ length, else 0:
hₜ = mₜ φ(aₜ) + (1 − mₜ) hₜ₋₁ and yₜ = mₜ hₜ.

Backward, δhₜ = ∂L/∂hₜ total, δh_T⁽ʳᵉᶜ⁾ = d_final_state:

    δhₜ   = mₜ ∂L/∂yₜ + δhₜ⁽ʳᵉᶜ⁾                            from (3)
    daₜ   = mₜ δhₜ ⊙ φ'(aₜ),   φ' = [hₜ > 0] or 1 − hₜ²      from (2)
    δhₜ₋₁⁽ʳᵉᶜ⁾ = ũ ⊙ daₜ + (1 − mₜ) δhₜ                      from (1) and the carry
    ∂L/∂u = [|u| ≤ M] ⊙ Σₜ Σ_b daₜ ⊙ hₜ₋₁                     from (1) and (0)
    ∂L/∂xₜ = W_ihᵀ daₜ,  ∂L/∂W_ih = Σₜ daₜ xₜᵀ,  ∂L/∂b_ih = ∂L/∂b_hh = Σₜ daₜ

Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H,) — the vector u —, and with bias
``bias_ih``, ``bias_hh`` (H,). The ONNX standard has no IndRNN operator.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.cells._common import check_d_outputs, check_state, check_x, length_mask, masked_outputs
from rnnkit.cells._params import check_params, get_array, input_grads

WHERE = "IndRNN"
G = 1
NONLINEARITIES = ("relu", "tanh")


def layout(I: int, H: int, bias: bool = True) -> dict:
    """Parameter shapes in PyTorch's order."""
    shapes = {"weight_ih": (H, I), "weight_hh": (H,)}
    if bias:
        shapes.update(bias_ih=(H,), bias_hh=(H,))
    return shapes


class IndRNNCache(NamedTuple):
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, H), h[0] = h0
    u: np.ndarray                 # (H,): ũ, the recurrent weights after the bound
    free: np.ndarray              # (H,) bool: |u| <= M (where the clip passes the gradient)
    mask: Optional[np.ndarray]    # (T, B, 1) bool or None
    nonlinearity: str


def _unpack(params, I: int, dt):
    u = get_array(params, "weight_hh", WHERE, 1)
    H = u.shape[0]
    return H, check_params(params, layout(I, H, "bias_ih" in params or "bias_hh" in params), dt, WHERE)


def _bounded(u: np.ndarray, recurrent_max):
    if recurrent_max is None:
        return u, np.ones(u.shape, dtype=bool)
    return np.clip(u, -recurrent_max, recurrent_max), np.abs(u) <= recurrent_max


def forward(params, x, h0=None, lengths=None, nonlinearity="relu", recurrent_max=None):
    """Run the IndRNN over a whole sequence.

    Args:
        params: "weight_ih", "weight_hh" (the vector u), optionally "bias_ih", "bias_hh".
        nonlinearity: "relu" or "tanh".
        recurrent_max: None or M > 0, the bound on |u| (equation 0).

    Returns:
        (outputs, h_T, cache)

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, WHERE)
    x = check_x(x, WHERE)
    T, B, I = x.shape
    dt = x.dtype
    H, p = _unpack(params, I, dt)
    h0 = check_state(h0, "h0", B, H, dt, WHERE)
    mask = length_mask(lengths, T, B, WHERE)
    u, free = _bounded(p["weight_hh"], recurrent_max)

    A = (x.reshape(T * B, I) @ p["weight_ih"].T).reshape(T, B, H)   # W_ih xₜ, all t
    if "bias_ih" in p:
        A += p["bias_ih"] + p["bias_hh"]
    h = np.empty((T + 1, B, H), dtype=dt)
    h[0] = h0
    for t in range(T):
        a = A[t]
        a += u * h[t]                              # (1)
        if nonlinearity == "relu":                 # (2)
            np.maximum(a, 0, out=h[t + 1])
        else:
            np.tanh(a, out=h[t + 1])
        if mask is not None:
            np.copyto(h[t + 1], h[t], where=~mask[t])
    cache = IndRNNCache(x, h, u, free, mask, nonlinearity)
    return masked_outputs(h, mask), h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, nonlinearity="relu", recurrent_max=None):
    """:func:`forward` without the cache: (outputs, h_T)."""
    outputs, final, _ = forward(params, x, h0, lengths, nonlinearity, recurrent_max)
    return outputs, final


def backward(params, cache: IndRNNCache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT (equations in the module docstring).

    Returns:
        (dx, dh0, grads) or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, IndRNNCache):
        raise TypeError(f"{WHERE}: expected the cache from indrnn.forward, got {type(cache).__name__}")
    x, h, u, free, mask, nonlinearity = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, p = _unpack(params, I, dt)
    d_out = check_d_outputs(d_outputs, (T, B, H), dt, mask, WHERE)
    dh = check_state(d_final_state, "d_final_state", B, H, dt, WHERE, finite=False).copy()
    relu = nonlinearity == "relu"

    da = np.empty((T, B, H), dtype=dt)
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    for t in range(T - 1, -1, -1):
        dh += d_out[t]                             # δhₜ
        if return_dh:
            dh_all[t] = dh
        dh_cell = dh * mask[t] if mask is not None else dh
        # through hₜ = φ(aₜ)
        if relu:
            np.multiply(dh_cell, h[t + 1] > 0, out=da[t])
        else:
            np.multiply(dh_cell, 1 - h[t + 1] * h[t + 1], out=da[t])
        # into hₜ₋₁ through ũ ⊙ hₜ₋₁, plus the carry past the end
        carry = dh - dh_cell if mask is not None else None
        dh = u * da[t]
        if carry is not None:
            dh += carry
    grads = {"weight_hh": np.einsum("tbh,tbh->h", da, h[:-1]) * free}
    dx = input_grads(x, da, p["weight_ih"], grads, ("bias_ih", "bias_hh") if "bias_ih" in p else ())
    grads = {k: grads[k] for k in p}               # params' order
    if return_dh:
        return dx, dh, grads, dh_all
    return dx, dh, grads
