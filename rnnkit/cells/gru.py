r"""GRU cell over a whole sequence: forward and hand-derived BPTT.

Forward, for t = 1..T, gate order r, z, n as PyTorch (column vectors; the code uses
rows, ``x @ W.T``, and W_ih, W_hh stack the three gates' blocks in that order):

    [a_r a_z a_n] = W_ih xₜ + b_ih                 (input side)      (1)
    [u_r u_z u_n] = W_hh hₜ₋₁ + b_hh               (hidden side)     (1)
    rₜ = σ(a_r + u_r),   zₜ = σ(a_z + u_z)                           (2)
    nₜ = tanh(a_n + rₜ ⊙ u_n)      i.e. tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   (3)
    hₜ = (1 − zₜ) ⊙ nₜ + zₜ ⊙ hₜ₋₁                                   (4)
    yₜ = hₜ                                                          (5)

b_hn sits inside r ⊙ (…), so it cannot be folded into the input projection the way
b_hr and b_hz are.

With ``lengths`` (packed-sequence semantics) let mₜ = 1 while t ≤ length, else 0:
hₜ = mₜ·(4) + (1 − mₜ) hₜ₋₁ and yₜ = mₜ hₜ, so past its end a sequence carries its
state unchanged and outputs zeros.

Backward. δhₜ = ∂L/∂hₜ is the *total* gradient w.r.t. the state at step t (what
``return_dh`` returns), δh_T⁽ʳᵉᶜ⁾ = d_final_state, and ĥₜ = mₜ δhₜ:

    δhₜ  = mₜ ∂L/∂yₜ + δhₜ⁽ʳᵉᶜ⁾                                from (5)
    dnₜ  = ĥₜ ⊙ (1 − zₜ),   dzₜ = ĥₜ ⊙ (hₜ₋₁ − nₜ)               from (4)
    da_n = dnₜ ⊙ (1 − nₜ²)                                       from (3)
    du_n = da_n ⊙ rₜ,       drₜ = da_n ⊙ u_n                     from (3)
    da_r = du_r = drₜ ⊙ rₜ(1 − rₜ),   da_z = du_z = dzₜ ⊙ zₜ(1 − zₜ)   from (2)
    δhₜ₋₁⁽ʳᵉᶜ⁾ = W_hhᵀ du + zₜ ⊙ ĥₜ + (1 − mₜ) δhₜ              from (1), (4), the carry
    ∂L/∂h₀ = δh₀⁽ʳᵉᶜ⁾,  ∂L/∂xₜ = W_ihᵀ daₜ
    ∂L/∂W_ih = Σₜ daₜ xₜᵀ,  ∂L/∂b_ih = Σₜ daₜ,  ∂L/∂W_hh = Σₜ duₜ hₜ₋₁ᵀ,  ∂L/∂b_hh = Σₜ duₜ

da and du agree in the r and z columns and differ in the n column (by the factor
rₜ), so the backward loop fills du and the input side copies its r, z columns.

The input projection of all steps is one matrix product before the loop; the loop
does one ``h @ W_hh.T`` per step; the weight gradients are single matrix products
over the (T·B) rows after the backward loop.

Cache (:class:`GRUCache`): ``x`` (T, B, I); ``h`` (T+1, B, H) with ``h[0] = h0``
(and carried states past each length); ``gates`` (T, B, 3H), the activations
[r z n]; ``hn`` (T, B, H) = u_n = W_hn hₜ₋₁ + b_hn; ``lengths`` (B,) int64 or None
(every length is T; its ``mask`` (T, B, 1) bool or None is a property). Past a sequence's end ``gates`` and ``hn`` hold what the cell computed there,
which was then discarded.

Errors: x must be a 3-D float32/float64 array without NaN or inf (ValueError for
NaN/inf and wrong shapes, TypeError for integer x); params and h0 shapes are
checked against x.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit.cells._common import (check_one_state_grads, check_one_state_inputs, input_projection,
                                  mask_from_lengths, masked_outputs, param_grads, sigmoid_,
                                  state_or_zeros, trusted_params)

WHERE = "GRU"
G = 3


class GRUCache(NamedTuple):
    """What backward needs, stacked over time."""
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, H), h[0] = h0
    gates: np.ndarray             # (T, B, 3H): r, z, n after their nonlinearities
    hn: np.ndarray                # (T, B, H): W_hn h[t] + b_hn
    lengths: Optional[np.ndarray]     # (B,) int64, or None when every length is T

    @property
    def mask(self):
        """(T, B, 1) bool "step t is inside sequence b", or None when every length is T."""
        return mask_from_lengths(self.lengths, self.x.shape[0])


def check_inputs(params, x, h0, lengths, where: str = WHERE):
    """The public forward's checks, as the trusted :func:`_forward` takes them."""
    return check_one_state_inputs(params, x, h0, lengths, G, where)


def check_grads_in(params, cache, d_outputs, d_final_state, where: str = WHERE):
    """The public backward's checks, as the trusted :func:`_backward` takes them."""
    return check_one_state_grads(params, cache, d_outputs, d_final_state, G, where)


def forward(params, x, h0=None, lengths=None):
    """Run the GRU over a whole sequence.

    Args:
        params: dict with "weight_ih", "weight_hh" and optionally "bias_ih", "bias_hh".
        x: inputs, float32 or float64; the computation runs in x's dtype.
        h0: initial state, or None for zeros.
        lengths: per-sequence lengths in [1, T], or None (all T).

    Returns:
        (outputs, h_T, cache): outputs are zero past each length; h_T is each
        sequence's state at its own last step.

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,)
        -> outputs (T, B, H), h_T (B, H)
    """
    return _forward(*check_inputs(params, x, h0, lengths))


def _forward(params, x, h0, lengths):
    """:func:`forward` on checked arguments (``rnnkit.Recurrent`` checks them once): x
    (T, B, I) in the params' dtype, h0 None or (B, H), lengths from
    :func:`rnnkit.cells._common.lengths_arg`."""
    T, B, _ = x.shape
    dt = x.dtype
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    mask = mask_from_lengths(lengths, T)

    # (T, B, 3H): [a_r a_z a_n] for all t, with b_hr, b_hz folded in (b_hn must stay
    # inside r ⊙ (…)); each step turns its slice into the gates r, z, n
    gates = input_projection(x, w_ih, b_ih)
    if b_hh is not None:
        gates[:, :, :2 * H] += b_hh[:2 * H]
        b_hn = b_hh[2 * H:]
    w_hh_T = np.ascontiguousarray(w_hh.T)          # (H, 3H), reused every step
    h = np.empty((T + 1, B, H), dtype=dt)
    hn = np.empty((T, B, H), dtype=dt)
    h[0] = 0 if h0 is None else h0
    u = np.empty((B, G * H), dtype=dt)
    for t in range(T):
        np.matmul(h[t], w_hh_T, out=u)             # (1) hidden side
        a = gates[t]
        hn_t = hn[t]
        if b_hh is not None:
            np.add(u[:, 2 * H:], b_hn, out=hn_t)   # u_n = W_hn hₜ₋₁ + b_hn
        else:
            hn_t[...] = u[:, 2 * H:]
        rz = a[:, :2 * H]
        rz += u[:, :2 * H]                         # (2)
        sigmoid_(rz)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        n += r * hn_t                              # (3)
        np.tanh(n, out=n)
        np.subtract(h[t], n, out=h[t + 1])         # (4) as n + z ⊙ (hₜ₋₁ − n)
        h[t + 1] *= z
        h[t + 1] += n
        if mask is not None:                       # finished sequences keep their state
            np.copyto(h[t + 1], h[t], where=~mask[t])
    cache = GRUCache(x=x, h=h, gates=gates, hn=hn, lengths=lengths)
    return masked_outputs(h, mask), h[T].copy(), cache


def infer(params, x, h0=None, lengths=None):
    """:func:`forward` for inference: the same (outputs, h_T), no cache kept.

    The reference simply drops forward's cache; the compiled twin
    (``rnnkit.fast.gru.infer``) never writes one.
    """
    outputs, final, _ = forward(params, x, h0, lengths)
    return outputs, final


def _infer(params, x, h0, lengths):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    outputs, final, _ = _forward(params, x, h0, lengths)
    return outputs, final


def backward(params, cache: GRUCache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT through the whole sequence (see the module docstring for the equations).

    Args:
        params: the same dict given to forward.
        cache: forward's cache.
        d_outputs: ∂L/∂outputs, or None if the outputs are not used.
        d_final_state: ∂L/∂h_T, or None.
        return_dh: also return δh, the total ∂L/∂hₜ for t = 1..T.

    Returns:
        (dx, dh0, grads) or (dx, dh0, grads, dh); grads has the keys of params.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H)
        -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, GRUCache):
        raise TypeError(f"{WHERE}: expected the cache from gru.forward, got {type(cache).__name__}")
    return _backward(*check_grads_in(params, cache, d_outputs, d_final_state), cache, return_dh)


def _backward(params, d_outputs, d_final_state, cache: GRUCache, return_dh=False):
    """:func:`backward` on checked arguments (:func:`check_grads_in`'s; ``rnnkit.Recurrent``
    checks them once): d_outputs None or (T, B, H), d_final_state None or (B, H)."""
    x, h, gates, hn, lengths = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, w_ih, w_hh, _, _ = trusted_params(params)
    mask = mask_from_lengths(lengths, T)
    if d_outputs is None:
        d_out = np.zeros((T, B, H), dtype=dt)
    else:                                          # zero past lengths (those outputs are constant 0)
        d_out = d_outputs * mask if mask is not None else d_outputs
    # a copy: the loop adds into it and the caller's gradient is never written
    dh = state_or_zeros(d_final_state, B, H, dt).copy()

    da = np.empty((T, B, G * H), dtype=dt)         # input-side pre-activation gradients
    du = np.empty((T, B, G * H), dtype=dt)         # hidden-side pre-activation gradients
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    for t in range(T - 1, -1, -1):
        dh += d_out[t]                             # δhₜ: from the output and from step t+1
        if return_dh:
            dh_all[t] = dh
        if mask is not None:
            dh_cell = dh * mask[t]                 # only steps inside the sequence ran the cell
            dh_carry = dh - dh_cell                # past the end the state was copied through
        else:
            dh_cell = dh
        gt, dut = gates[t], du[t]
        r, z, n = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:]
        # through hₜ = (1 − z) ⊙ n + z ⊙ hₜ₋₁: into n, into z
        dn = dh_cell * (1 - z)
        dz_ = dh_cell * (h[t] - n)
        # through n = tanh(a_n + r ⊙ u_n): into a_n, u_n and r
        da_n = da[t, :, 2 * H:]
        np.multiply(dn, 1 - n * n, out=da_n)
        np.multiply(da_n, r, out=dut[:, 2 * H:])
        # through r = σ(·), z = σ(·): σ' = s(1 − s)
        np.multiply(da_n * hn[t], r * (1 - r), out=dut[:, :H])
        np.multiply(dz_, z * (1 - z), out=dut[:, H:2 * H])
        # into the previous state: through W_hh, and directly through z ⊙ hₜ₋₁
        dh = dut @ w_hh
        dh += dh_cell * z
        if mask is not None:
            dh += dh_carry
    da[:, :, :2 * H] = du[:, :, :2 * H]            # r, z pre-activations are shared by both sides
    dx, grads = param_grads(params, x, h[:-1], da, du, w_ih)
    if return_dh:
        return dx, dh, grads, dh_all
    return dx, dh, grads
