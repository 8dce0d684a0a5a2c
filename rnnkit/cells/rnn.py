r"""Vanilla (Elman) RNN cell over a whole sequence: forward and hand-derived BPTT.

Forward, for t = 1..T (column vectors; the code uses rows, ``x @ W.T``):

    aₜ = W_ih xₜ + b_ih + W_hh hₜ₋₁ + b_hh                      (1)
    hₜ = φ(aₜ),   φ = tanh  or  relu(a) = max(a, 0)              (2)
    yₜ = hₜ                                                       (3)

With ``lengths`` (packed-sequence semantics) let mₜ = 1 while t ≤ length, else 0:

    hₜ = mₜ φ(aₜ) + (1 − mₜ) hₜ₋₁,   yₜ = mₜ hₜ                 (2', 3')

so past its end a sequence carries its state unchanged, outputs zeros, and h_T is
the state at its own last step.

Backward. Write δhₜ = ∂L/∂hₜ, the *total* gradient of the loss w.r.t. the state
at step t (what ``return_dh`` returns), and δh_T⁽ʳᵉᶜ⁾ = ∂L/∂h_T (d_final_state):

    δhₜ   = mₜ ∂L/∂yₜ + δhₜ⁽ʳᵉᶜ⁾                         from (3')
    daₜ   = mₜ δhₜ ⊙ φ'(aₜ)                               from (2)
            φ'(aₜ) = 1 − hₜ²  (tanh)   or   [hₜ > 0]  (relu)
    δhₜ₋₁⁽ʳᵉᶜ⁾ = W_hhᵀ daₜ + (1 − mₜ) δhₜ                from (1) and the carry in (2')
    ∂L/∂h₀ = δh₀⁽ʳᵉᶜ⁾
    ∂L/∂xₜ = W_ihᵀ daₜ
    ∂L/∂W_ih = Σₜ daₜ xₜᵀ,  ∂L/∂W_hh = Σₜ daₜ hₜ₋₁ᵀ,  ∂L/∂b_ih = ∂L/∂b_hh = Σₜ daₜ

Both biases are folded into the input projection of all steps before the loop
(one matrix product); the loop does one ``h @ W_hh.T`` per step; the weight
gradients are single matrix products over the (T·B) rows after the backward loop.

Cache (:class:`RNNCache`): ``x`` (T, B, I), ``h`` (T+1, B, H) with ``h[0] = h0``
(and carried states past each length), ``lengths`` (B,) int64 or None (every length
is T; its ``mask`` (T, B, 1) bool or None is a property), ``nonlinearity``.

Errors: x must be a 3-D float32/float64 array without NaN or inf (ValueError for
NaN/inf and wrong shapes, TypeError for integer x); params and h0 shapes are
checked against x.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.cells._common import (check_one_state_grads, check_one_state_inputs, input_projection,
                                  mask_from_lengths, masked_outputs, param_grads, state_or_zeros,
                                  trusted_params)

WHERE = "RNN"
G = 1
NONLINEARITIES = ("tanh", "relu")


class RNNCache(NamedTuple):
    """What backward needs, stacked over time."""
    x: np.ndarray                 # (T, B, I)
    h: np.ndarray                 # (T+1, B, H), h[0] = h0
    lengths: Optional[np.ndarray]     # (B,) int64, or None when every length is T
    nonlinearity: str

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


def forward(params, x, h0=None, lengths=None, nonlinearity="tanh"):
    """Run the RNN over a whole sequence.

    Args:
        params: dict with "weight_ih", "weight_hh" and optionally "bias_ih", "bias_hh".
        x: inputs, float32 or float64; the computation runs in x's dtype.
        h0: initial state, or None for zeros.
        lengths: per-sequence lengths in [1, T], or None (all T).
        nonlinearity: "tanh" or "relu".

    Returns:
        (outputs, h_T, cache): outputs are zero past each length; h_T is each
        sequence's state at its own last step.

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,)
        -> outputs (T, B, H), h_T (B, H)
    """
    check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, WHERE)
    return _forward(*check_inputs(params, x, h0, lengths), nonlinearity)


def _forward(params, x, h0, lengths, nonlinearity="tanh"):
    """:func:`forward` on checked arguments (``rnnkit.Recurrent`` checks them once): x
    (T, B, I) in the params' dtype, h0 None or (B, H), lengths from
    :func:`rnnkit.cells._common.lengths_arg`."""
    T, B, _ = x.shape
    dt = x.dtype
    H, w_ih, w_hh, b_ih, b_hh = trusted_params(params)
    mask = mask_from_lengths(lengths, T)

    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    A = input_projection(x, w_ih, bias)            # (T, B, H): W_ih xₜ + b_ih + b_hh, all t
    w_hh_T = np.ascontiguousarray(w_hh.T)          # (H, H), reused every step
    h = np.empty((T + 1, B, H), dtype=dt)
    h[0] = 0 if h0 is None else h0
    for t in range(T):
        a = A[t]
        a += h[t] @ w_hh_T                         # (1)
        if nonlinearity == "tanh":                 # (2)
            np.tanh(a, out=h[t + 1])
        else:
            np.maximum(a, 0, out=h[t + 1])
        if mask is not None:                       # (2') finished sequences keep their state
            np.copyto(h[t + 1], h[t], where=~mask[t])
    cache = RNNCache(x=x, h=h, lengths=lengths, nonlinearity=nonlinearity)
    return masked_outputs(h, mask), h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, nonlinearity="tanh"):
    """:func:`forward` for inference: the same (outputs, h_T), no cache kept.

    The reference simply drops forward's cache; the compiled twin
    (``rnnkit.fast.rnn.infer``) never writes one.
    """
    outputs, final, _ = forward(params, x, h0, lengths, nonlinearity)
    return outputs, final


def _infer(params, x, h0, lengths, nonlinearity="tanh"):
    """:func:`infer` on checked arguments (see :func:`_forward`)."""
    outputs, final, _ = _forward(params, x, h0, lengths, nonlinearity)
    return outputs, final


def backward(params, cache: RNNCache, d_outputs, d_final_state=None, return_dh=False):
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
    if not isinstance(cache, RNNCache):
        raise TypeError(f"{WHERE}: expected the cache from rnn.forward, got {type(cache).__name__}")
    return _backward(*check_grads_in(params, cache, d_outputs, d_final_state), cache, return_dh)


def _backward(params, d_outputs, d_final_state, cache: RNNCache, return_dh=False):
    """:func:`backward` on checked arguments (:func:`check_grads_in`'s; ``rnnkit.Recurrent``
    checks them once): d_outputs None or (T, B, H), d_final_state None or (B, H)."""
    x, h = cache.x, cache.h
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, w_ih, w_hh, _, _ = trusted_params(params)
    mask = cache.mask
    if d_outputs is None:
        d_out = np.zeros((T, B, H), dtype=dt)
    else:                                          # zero past lengths (those outputs are constant 0)
        d_out = d_outputs * mask if mask is not None else d_outputs
    # a copy: the loop adds into it and the caller's gradient is never written
    dh = state_or_zeros(d_final_state, B, H, dt).copy()
    relu = cache.nonlinearity == "relu"

    da = np.empty((T, B, H), dtype=dt)
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
        # through hₜ = φ(aₜ)
        if relu:
            np.multiply(dh_cell, h[t + 1] > 0, out=da[t])
        else:
            np.multiply(dh_cell, 1 - h[t + 1] * h[t + 1], out=da[t])
        # into the previous state, through W_hh hₜ₋₁
        dh = da[t] @ w_hh
        if mask is not None:
            dh += dh_carry
    dx, grads = param_grads(params, x, h[:-1], da, da, w_ih)
    if return_dh:
        return dx, dh, grads, dh_all
    return dx, dh, grads
