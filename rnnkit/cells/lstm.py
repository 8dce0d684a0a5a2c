r"""LSTM cell over a whole sequence: forward and hand-derived BPTT.

Forward, for t = 1..T, gate order i, f, g, o as PyTorch (column vectors; the code
uses rows, ``x @ W.T``, and W_ih, W_hh stack the four gates' blocks in that order):

    zₜ = W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh,   zₜ = [z_i z_f z_g z_o]   (1)
    iₜ = σ(z_i),  fₜ = σ(z_f),  gₜ = tanh(z_g),  oₜ = σ(z_o)            (2)
    cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ                                           (3)
    hₜ = oₜ ⊙ tanh(cₜ)                                                  (4)
    yₜ = hₜ                                                             (5)

With ``lengths`` (packed-sequence semantics) let mₜ = 1 while t ≤ length, else 0:
the state (hₜ, cₜ) becomes mₜ·(3, 4) + (1 − mₜ)·(hₜ₋₁, cₜ₋₁) and yₜ = mₜ hₜ, so
past its end a sequence carries (h, c) unchanged and outputs zeros.

Backward. δhₜ = ∂L/∂hₜ is the *total* gradient w.r.t. the hidden state at step t
(what ``return_dh`` returns); δcₜ⁽ʳᵉᶜ⁾ is what reaches cₜ from step t+1, with
δh_T⁽ʳᵉᶜ⁾, δc_T⁽ʳᵉᶜ⁾ = d_final_state:

    δhₜ  = mₜ ∂L/∂yₜ + δhₜ⁽ʳᵉᶜ⁾                                from (5)
    doₜ  = mₜ δhₜ ⊙ tanh(cₜ)                                    from (4)
    δĉₜ  = mₜ [δcₜ⁽ʳᵉᶜ⁾ + δhₜ ⊙ oₜ ⊙ (1 − tanh²(cₜ))]            from (4): total ∂L/∂cₜ
    diₜ  = δĉₜ ⊙ gₜ,   dfₜ = δĉₜ ⊙ cₜ₋₁,   dgₜ = δĉₜ ⊙ iₜ         from (3)
    dzₜ  = [diₜ iₜ(1−iₜ),  dfₜ fₜ(1−fₜ),  dgₜ (1−gₜ²),  doₜ oₜ(1−oₜ)]   from (2)
    δhₜ₋₁⁽ʳᵉᶜ⁾ = W_hhᵀ dzₜ + (1 − mₜ) δhₜ                       from (1) and the carry
    δcₜ₋₁⁽ʳᵉᶜ⁾ = δĉₜ ⊙ fₜ + (1 − mₜ) δcₜ⁽ʳᵉᶜ⁾                   from (3) and the carry
    ∂L/∂h₀ = δh₀⁽ʳᵉᶜ⁾,  ∂L/∂c₀ = δc₀⁽ʳᵉᶜ⁾,  ∂L/∂xₜ = W_ihᵀ dzₜ
    ∂L/∂W_ih = Σₜ dzₜ xₜᵀ,  ∂L/∂W_hh = Σₜ dzₜ hₜ₋₁ᵀ,  ∂L/∂b_ih = ∂L/∂b_hh = Σₜ dzₜ

Both biases are folded into the input projection of all steps before the loop
(one matrix product); the loop does one ``h @ W_hh.T`` per step; the weight
gradients are single matrix products over the (T·B) rows after the backward loop.

States are tuples (h, c). ``h0`` may be None, or (h0, c0) with either None (zeros);
``d_final_state`` may be None or (dh_T, dc_T) with either None.

Cache (:class:`LSTMCache`): ``x`` (T, B, I); ``h``, ``c`` (T+1, B, H) with
``h[0], c[0] = h0, c0`` (and carried states past each length); ``gates``
(T, B, 4H), the activations [i f g o]; ``tanh_c`` (T, B, H) = tanh(cₜ);
``lengths`` (B,) int64 or None (every length is T), and its ``mask`` (T, B, 1)
bool or None as a property. Past a sequence's end ``gates`` and ``tanh_c``
hold what the cell computed there, which was then discarded.

Errors: x must be a 3-D float32/float64 array without NaN or inf (ValueError for
NaN/inf and wrong shapes, TypeError for integer x); params, h0 and c0 shapes are
checked against x.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit.cells._common import (check_d_outputs, checked_params, check_state, check_x, input_projection,
                                  lengths_arg, mask_from_lengths, masked_outputs, param_grads,
                                  sigmoid_, state_or_zeros, trusted_params)

WHERE = "LSTM"
G = 4


class LSTMCache(NamedTuple):
    """What backward needs, stacked over time."""
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, H), h[0] = h0
    c: np.ndarray                 # (T+1, B, H), c[0] = c0
    gates: np.ndarray             # (T, B, 4H): i, f, g, o after their nonlinearities
    tanh_c: np.ndarray            # (T, B, H): tanh(c[t+1])
    lengths: Optional[np.ndarray]     # (B,) int64, or None when every length is T

    @property
    def mask(self):
        """(T, B, 1) bool "step t is inside sequence b", or None when every length is T."""
        return mask_from_lengths(self.lengths, self.x.shape[0])


def check_inputs(params, x, h0, lengths, where: str = WHERE):
    """The public forward's checks: (params, x, (h0, c0), lengths) as the trusted
    :func:`_forward` takes them (the fast twin shares them)."""
    x = check_x(x, where)
    T, B, I = x.shape
    dt = x.dtype
    params = checked_params(params, G, I, dt, where)
    H = params["weight_hh"].shape[1]
    h_init, c_init = split_pair(h0, "h0")
    state = (check_state(h_init, "h0", B, H, dt, where), check_state(c_init, "c0", B, H, dt, where))
    return params, x, state, lengths_arg(lengths, T, B, where)


def split_pair(pair, name: str):
    """(h, c) tuple, or None meaning (None, None)."""
    if pair is None:
        return None, None
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{WHERE}: expected {name} to be a tuple (h, c) or None, "
                        f"got {type(pair).__name__}")
    return pair[0], pair[1]


def forward(params, x, h0=None, lengths=None):
    """Run the LSTM over a whole sequence.

    Args:
        params: dict with "weight_ih", "weight_hh" and optionally "bias_ih", "bias_hh".
        x: inputs, float32 or float64; the computation runs in x's dtype.
        h0: (h0, c0), or None for zeros (either element may be None).
        lengths: per-sequence lengths in [1, T], or None (all T).

    Returns:
        (outputs, (h_T, c_T), cache): outputs are zero past each length; (h_T, c_T)
        is each sequence's state at its own last step.

    Shapes:
        x (T, B, I), h0 and c0 (B, H), lengths (B,)
        -> outputs (T, B, H), h_T and c_T (B, H)
    """
    return _forward(*check_inputs(params, x, h0, lengths))


def _forward(params, x, h0, lengths):
    """:func:`forward` on checked arguments (``rnnkit.Recurrent`` checks them once): x
    (T, B, I) in the params' dtype, h0 None or a pair of (B, H) states or None, lengths
    from :func:`rnnkit.cells._common.lengths_arg`."""
    T, B, _ = x.shape
    dt = x.dtype
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    h_init, c_init = (None, None) if h0 is None else h0
    mask = mask_from_lengths(lengths, T)

    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    # (T, B, 4H): W_ih xₜ + b_ih + b_hh for all t; each step turns its slice into gates
    gates = input_projection(x, w_ih, bias)
    w_hh_T = np.ascontiguousarray(w_hh.T)          # (H, 4H), reused every step
    h = np.empty((T + 1, B, H), dtype=dt)
    c = np.empty((T + 1, B, H), dtype=dt)
    tanh_c = np.empty((T, B, H), dtype=dt)
    h[0] = 0 if h_init is None else h_init
    c[0] = 0 if c_init is None else c_init
    rec = np.empty((B, G * H), dtype=dt)
    for t in range(T):
        z = gates[t]
        z += np.matmul(h[t], w_hh_T, out=rec)      # (1)
        sigmoid_(z[:, :2 * H])                     # (2) i, f
        np.tanh(z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])   # g
        sigmoid_(z[:, 3 * H:])                     # o
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        np.multiply(f, c[t], out=c[t + 1])         # (3)
        c[t + 1] += i * g
        np.tanh(c[t + 1], out=tanh_c[t])           # (4)
        np.multiply(o, tanh_c[t], out=h[t + 1])
        if mask is not None:                       # finished sequences keep their state
            keep = ~mask[t]
            np.copyto(h[t + 1], h[t], where=keep)
            np.copyto(c[t + 1], c[t], where=keep)
    cache = LSTMCache(x=x, h=h, c=c, gates=gates, tanh_c=tanh_c, lengths=lengths)
    return masked_outputs(h, mask), (h[T].copy(), c[T].copy()), cache


def infer(params, x, h0=None, lengths=None):
    """:func:`forward` for inference: the same (outputs, (h_T, c_T)), no cache kept.

    The reference simply drops forward's cache; the compiled twin
    (``rnnkit.fast.lstm.infer``) never writes one.
    """
    outputs, final, _ = forward(params, x, h0, lengths)
    return outputs, final


def _infer(params, x, h0, lengths):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    outputs, final, _ = _forward(params, x, h0, lengths)
    return outputs, final


def backward(params, cache: LSTMCache, d_outputs, d_final_state=None, return_dh=False):
    """BPTT through the whole sequence (see the module docstring for the equations).

    Args:
        params: the same dict given to forward.
        cache: forward's cache.
        d_outputs: ∂L/∂outputs, or None if the outputs are not used.
        d_final_state: (∂L/∂h_T, ∂L/∂c_T) with either None, or None.
        return_dh: also return δh, the total ∂L/∂hₜ for t = 1..T.

    Returns:
        (dx, (dh0, dc0), grads) or (dx, (dh0, dc0), grads, dh); grads has the keys
        of params.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) each
        -> dx (T, B, I), dh0 and dc0 (B, H), dh (T, B, H)
    """
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"{WHERE}: expected the cache from lstm.forward, got {type(cache).__name__}")
    x = cache.x
    T, B, I = x.shape
    H = cache.h.shape[2]
    dt = x.dtype
    params = checked_params(params, G, I, dt, WHERE)
    d_out = check_d_outputs(d_outputs, (T, B, H), dt, None, WHERE)
    dh_T, dc_T = split_pair(d_final_state, "d_final_state")
    d_final = (check_state(dh_T, "d_final_state[0]", B, H, dt, WHERE, finite=False),
               check_state(dc_T, "d_final_state[1]", B, H, dt, WHERE, finite=False))
    return _backward(params, d_out, d_final, cache, return_dh)


def _backward(params, d_outputs, d_final_state, cache: LSTMCache, return_dh=False):
    """:func:`backward` on checked arguments (``rnnkit.Recurrent`` checks them once):
    d_outputs None or (T, B, H) in the cache's dtype, d_final_state None or a pair of
    (B, H) arrays or None."""
    x, h, c, gates, tanh_c, lengths = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, w_ih, w_hh, _, _ = trusted_params(params)
    mask = mask_from_lengths(lengths, T)
    if d_outputs is None:
        d_out = np.zeros((T, B, H), dtype=dt)
    else:                                          # zero past lengths (those outputs are constant 0)
        d_out = d_outputs * mask if mask is not None else d_outputs
    dh_T, dc_T = (None, None) if d_final_state is None else d_final_state
    # copies: the loop adds into them and the caller's gradients are never written
    dh = state_or_zeros(dh_T, B, H, dt).copy()
    dc = state_or_zeros(dc_T, B, H, dt).copy()

    dz = np.empty((T, B, G * H), dtype=dt)
    dh_all = np.empty((T, B, H), dtype=dt) if return_dh else None
    for t in range(T - 1, -1, -1):
        dh += d_out[t]                             # δhₜ: from the output and from step t+1
        if return_dh:
            dh_all[t] = dh
        if mask is not None:
            # only steps inside the sequence ran the cell; past the end (h, c) was copied through
            dh_cell, dc_cell = dh * mask[t], dc * mask[t]
            dh_carry, dc_carry = dh - dh_cell, dc - dc_cell
        else:
            dh_cell, dc_cell = dh, dc
        zt, dzt, tc = gates[t], dz[t], tanh_c[t]
        i, f, g, o = zt[:, :H], zt[:, H:2 * H], zt[:, 2 * H:3 * H], zt[:, 3 * H:]
        # through hₜ = oₜ ⊙ tanh(cₜ): into o, and into cₜ on top of what came from step t+1
        do = dh_cell * tc
        dc_hat = dc_cell + dh_cell * o * (1 - tc * tc)
        # through cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ, then through each gate's nonlinearity
        np.multiply(dc_hat * g, i * (1 - i), out=dzt[:, :H])                 # i: σ' = i(1−i)
        np.multiply(dc_hat * c[t], f * (1 - f), out=dzt[:, H:2 * H])         # f
        np.multiply(dc_hat * i, 1 - g * g, out=dzt[:, 2 * H:3 * H])          # g: tanh' = 1−g²
        np.multiply(do, o * (1 - o), out=dzt[:, 3 * H:])                     # o
        # into the previous state: h through W_hh, c through the forget gate
        dh = dzt @ w_hh
        dc = dc_hat * f
        if mask is not None:
            dh += dh_carry
            dc += dc_carry
    dx, grads = param_grads(params, x, h[:-1], dz, dz, w_ih)
    if return_dh:
        return dx, (dh, dc), grads, dh_all
    return dx, (dh, dc), grads
