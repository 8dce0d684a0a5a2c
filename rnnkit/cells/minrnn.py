r"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs
All We Needed?"): gates that read only xₜ, so the whole sequence is one linear
recurrence hₜ = aₜ ⊙ hₜ₋₁ + bₜ, solved by a scan in log space instead of a time loop.

Forward (k are pre-activations, all from one product per gate block x W_gᵀ + b_g):

    minGRU   [k_z k_h] = W_ih xₜ + b_ih
             zₜ = σ(qₜ),  qₜ = k_z                                            (1g)
    minLSTM  [k_f k_i k_h] = W_ih xₜ + b_ih
             fₜ = σ(k_f), iₜ = σ(k_i);  zₜ = iₜ / (fₜ + iₜ) = σ(qₜ),
             qₜ = log iₜ − log fₜ = softplus(−k_f) − softplus(−k_i)           (1l)
    both     h̃ₜ = g(k_h),  g(k) = k + ½ (k ≥ 0),  σ(k) (k < 0)   (positive)  (2)
             hₜ = aₜ ⊙ hₜ₋₁ + bₜ,   aₜ = 1 − zₜ,  bₜ = zₜ ⊙ h̃ₜ               (3)
             yₜ = hₜ

(minLSTM's normalised gates f' = f/(f+i) = 1 − z and i' = z: the two cells differ only
in how z is computed.) In logs, dₜ = −log aₜ = softplus(qₜ) and log zₜ = qₜ − dₜ, so
one softplus gives both the gate and the decay; g is computed without a branch as
g(k) = σ(min(k, 0)) + max(k, 0).

The scan (Heinsen 2023): with the cumulative decay Dₜ = Σ_{s≤t} dₛ = −log Πₛ aₛ,

    hₜ = e^−Dₜ h₀ + e^−Dₜ Σ_{s≤t} e^{Dₛ} bₛ                                     (4)

i.e. log hₜ = −Dₜ + logcumsumexp(log b + D)ₜ for h₀ = 0. Computed in blocks of C steps
(:func:`linear_scan`, a two-level parallel scan): within every block at once, D counted
from the block's start, the local solution Lⱼ = e^−Dⱼ Σ_{i≤j} e^{Dᵢ} bᵢ and the decay
e^−Dⱼ; then one multiply-add per block carries the state across blocks, and
hⱼ = Lⱼ + e^−Dⱼ · start. Counting D from each block's start keeps e^{Dᵢ} far from
overflow (a block whose decay passes ``_DECAY_LIMIT`` is solved step by step instead).
Every step of a block and every block is computed at once: no Python loop runs over
time, only over the C steps of a block and the T/C blocks. (NumPy's
``logaddexp.accumulate`` along time gives the same numbers, but ran 190 ms for one
(1000, 2048) float32 array here, longer than this whole forward and backward.) In x's
dtype; float32 uses blocks of ``CHUNK // 2`` steps and the limit 60 (float32's range ends
near e^88). With ``lengths``, past a sequence's end dₜ = 0 and bₜ = 0 (the state is
carried) and yₜ = 0.

Backward. δhₜ = ∂L/∂hₜ total = eₜ + aₜ₊₁ δhₜ₊₁, eₜ = mₜ ∂L/∂yₜ, δh_T⁽ʳᵉᶜ⁾ = ∂L/∂h_T:

    δhₜ = Σ_{s≥t} e^{−(Dₛ − Dₜ)} eₛ + e^{−(D_T − Dₜ)} ∂L/∂h_T                      (5)

the same scan run backwards in time (decays shifted by one step, ∂L/∂h_T its start).
Then, for steps inside the sequence,

    ∂L/∂aₜ = δhₜ ⊙ hₜ₋₁,   ∂L/∂bₜ = δhₜ,   ∂L/∂h₀ = a₁ ⊙ δh₁
    ∂L/∂zₜ = −∂L/∂aₜ + ∂L/∂bₜ ⊙ h̃ₜ,  ∂L/∂qₜ = ∂L/∂zₜ ⊙ zₜ(1 − zₜ)              from (3)
    minLSTM: ∂L/∂k_f = −∂L/∂q ⊙ (1 − fₜ),  ∂L/∂k_i = ∂L/∂q ⊙ (1 − iₜ)       from (1l)
    ∂L/∂k_h = ∂L/∂bₜ ⊙ zₜ ⊙ g'(k_h),  g' = 1 (k ≥ 0), σ(k)(1 − σ(k)) (k < 0)   from (2)
    ∂L/∂W_g = Σₜ dk_gₜ xₜᵀ,  ∂L/∂b_g = Σₜ dk_gₜ,  ∂L/∂xₜ = Σ_g W_gᵀ dk_gₜ

Parameters: ``weight_ih`` (G·H, I) with G = 2 (z, h) for minGRU and 3 (f, i, h) for
minLSTM, and with bias ``bias_ih`` (G·H,); there is no recurrent weight. The ONNX
standard has no operator for these cells.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit._checks import check_choice, check_float_array, check_shape
from rnnkit.cells._common import (check_d_outputs, check_state, check_x, lengths_arg, mask_from_lengths,
                                  sigmoid_)
from rnnkit.cells._params import check_params, get_array

KINDS = ("mingru", "minlstm")
GATES = {"mingru": 2, "minlstm": 3}
CHUNK = 32          # steps per block of the scan (float64; float32: CHUNK // 2)
#: a block whose decay passes exp(−limit) is solved step by step (exp(limit) must not overflow)
_DECAY_LIMIT = {np.dtype(np.float64): 600.0, np.dtype(np.float32): 60.0}


def layout(kind: str, I: int, H: int, bias: bool = True) -> dict:
    """Parameter shapes."""
    G = GATES[kind]
    return {"weight_ih": (G * H, I), **({"bias_ih": (G * H,)} if bias else {})}


class MinCache(NamedTuple):
    kind: str
    x: np.ndarray                 # (T, B, I)
    k: Optional[np.ndarray]       # (G, T, B, H): the pre-activations, one block per gate
    #   (None where rnnkit.fast.minrnn's scan computed them from x: the backward does again)
    # z, s, htilde, decay: None in rnnkit.fast.minrnn's cache (its backward needs only k, h)
    z: Optional[np.ndarray]       # (T, B, H): the update gate z
    s: Optional[np.ndarray]       # (T, B, H): σ(min(k_h, 0)), the sigmoid part of g
    htilde: Optional[np.ndarray]  # (T, B, H): g(k_h)
    decay: Optional[np.ndarray]   # (T, B, H): dₜ = −log aₜ >= 0, 0 past each length
    h: np.ndarray                 # (T+1, B, H): h[0] = h0
    mask: Optional[np.ndarray]    # (T, B, 1) bool or None


def _softplus(v):
    """log(1 + eᵛ) = max(v, 0) + log1p(e^−|v|), without overflow."""
    return np.maximum(v, 0.0) + np.log1p(np.exp(-np.abs(v)))


def _unpack(kind, params, I, dt):
    where = kind
    w = get_array(params, "weight_ih", where, 2)
    G = GATES[kind]
    if w.shape[0] % G or w.shape[0] == 0:
        raise ValueError(f"{where}: expected params['weight_ih'] of shape ({G}*H, I), got {w.shape}")
    H = w.shape[0] // G
    return H, check_params(params, layout(kind, I, H, "bias_ih" in params), dt, where)


def linear_scan(log_a: np.ndarray, b: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """hₜ = exp(log aₜ) hₜ₋₁ + bₜ for t = 0..T−1 from h₋₁ = h0, by the block scan (4).

    Shapes:
        log_a, b (T, N) float32 or float64 (log_a <= 0), h0 (N,) -> h (T, N)
    """
    out = np.empty(b.shape, b.dtype)
    _scan(np.negative(log_a), b.copy(), np.asarray(h0, dtype=b.dtype).reshape(b.shape[1]), out)
    return out


def _scan(d: np.ndarray, w: np.ndarray, h0: np.ndarray, out: np.ndarray) -> None:
    """out[t] = e^−d[t] out[t−1] + w[t] with out[−1] = h0: the blocks of C steps, then the
    T mod C steps left as one more block. ``w`` holds bₜ and is overwritten (scratch);
    any of the arrays may be a reversed view.

    Shapes:
        d, w, out (T, N) with d >= 0, h0 (N,)
    """
    T, N = w.shape
    C = min(T, CHUNK if w.dtype == np.float64 else CHUNK // 2)
    K, rest = divmod(T, C)
    s = _blocks(d[:K * C].reshape(K, C, N), w[:K * C].reshape(K, C, N), h0, out[:K * C].reshape(K, C, N))
    if rest:
        _blocks(d[K * C:].reshape(1, rest, N), w[K * C:].reshape(1, rest, N), s, out[K * C:].reshape(1, rest, N))


def _blocks(d, w, h0, out):
    """The scan (4) on K blocks of C steps at once, written into ``out`` (``w``: bₜ, then
    scratch); returns the last state.

    Shapes:
        d, w, out (K, C, N), h0 (N,) -> (N,)
    """
    K, C, N = w.shape
    D = out                                       # the decay from each block's start, in logs
    D[:, 0] = d[:, 0]
    for j in range(1, C):
        np.add(D[:, j - 1], d[:, j], out=D[:, j])
    unsafe = ~(D[:, -1].max(axis=1) < _DECAY_LIMIT[w.dtype])   # (K,)
    steep = unsafe.any()
    if steep:                                     # steep decay: the recurrence itself, from zero
        a_u, b_u = np.exp(-d[unsafe]), w[unsafe]
        Lu = np.empty_like(b_u)
        Lu[:, 0] = b_u[:, 0]
        for j in range(1, C):
            Lu[:, j] = a_u[:, j] * Lu[:, j - 1] + b_u[:, j]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):  # unsafe: redone
        np.negative(D, out=D)
        np.exp(D, out=D)                          # e^−Dⱼ, the decay of each step from the block's start
        np.divide(w, D, out=w)                    # e^{Dᵢ} bᵢ, at most e^limit bᵢ in a safe block
        for j in range(1, C):                     # Σ_{i<=j} e^{Dᵢ} bᵢ
            w[:, j] += w[:, j - 1]
        w *= D                                    # Lⱼ
    if steep:
        w[unsafe] = Lu
    starts = np.empty((K, 1, N), w.dtype)
    s = h0
    for c in range(K):                            # one multiply-add per block
        starts[c, 0] = s
        s = D[c, -1] * s + w[c, -1]
    D *= starts
    D += w
    return s


def _project(x, w, bias, H: int, G: int):
    """The pre-activations of every gate block, each contiguous: k[g] = x W_gᵀ + b_g.

    Shapes:
        x (T, B, I), w (G*H, I), bias (G*H,) or None -> (G, T, B, H)
    """
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    k = np.empty((G, T * B, H), dtype=x.dtype)
    for g in range(G):
        np.matmul(x2, w[g * H:(g + 1) * H].T, out=k[g])
        if bias is not None:
            k[g] += bias[g * H:(g + 1) * H]
    return k.reshape(G, T, B, H)


def check_inputs(params, x, h0, lengths, kind):
    """Every check of :func:`forward`'s arguments: ``(params, x, h0, lengths)`` with the
    params in x's dtype, h0 (B, H) (zeros for None) and the lengths as
    :func:`~rnnkit.cells._common.lengths_arg` gives them (None when every one is T)."""
    check_choice(kind, "kind", KINDS, "minrnn")
    x = check_x(x, kind)
    T, B, I = x.shape
    H, p = _unpack(kind, params, I, x.dtype)
    h0 = check_state(h0, "h0", B, H, x.dtype, kind)
    return p, x, h0, lengths_arg(lengths, T, B, kind)


def _gates(kind, k, mask):
    """The gate z, the parts of g, the decay and bₜ of every step from the pre-activations
    (1)-(3): ``(z, s, htilde, decay, b)``, decay and b zero past each length.

    Shapes:
        k (G, T, B, H), mask (T, B, 1) or None -> five (T, B, H)
    """
    kh = k[-1]
    q = k[0] if kind == "mingru" else _softplus(-k[0]) - _softplus(-k[1])   # (1g), (1l)
    decay = np.abs(q)                             # dₜ = softplus(qₜ) = max(q, 0) + log1p(e^−|q|)
    np.negative(decay, out=decay)
    np.exp(decay, out=decay)
    np.log1p(decay, out=decay)
    z = np.maximum(q, 0)
    decay += z
    np.subtract(q, decay, out=z)                  # log zₜ = qₜ − dₜ
    np.exp(z, out=z)
    s = np.minimum(kh, 0)                         # (2): g(k) = σ(min(k, 0)) + max(k, 0)
    np.exp(s, out=s)
    htilde = np.add(s, 1)
    np.divide(s, htilde, out=s)
    np.maximum(kh, 0, out=htilde)
    htilde += s
    b = np.multiply(z, htilde)                    # bₜ (3)
    if mask is not None:                          # past the end: aₜ = 1, bₜ = 0
        decay *= mask
        b *= mask
    return z, s, htilde, decay, b


def forward(params, x, h0=None, lengths=None, kind="mingru"):
    """Run minGRU or minLSTM (``kind``) over a whole sequence by the scan (4).

    Returns:
        (outputs, h_T, cache); outputs are zero past each length.

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    p, x, h0, lens = check_inputs(params, x, h0, lengths, kind)
    T, B, _ = x.shape
    H = h0.shape[1]
    mask = mask_from_lengths(lens, T)
    k = _project(x, p["weight_ih"], p.get("bias_ih"), H, GATES[kind])     # (G, T, B, H)
    z, s, htilde, decay, out = _gates(kind, k, mask)    # out: bₜ, the scan's scratch, then the outputs
    h = np.empty((T + 1, B, H), dtype=x.dtype)
    h[0] = h0
    _scan(decay.reshape(T, B * H), out.reshape(T, B * H), h[0].reshape(B * H), h[1:].reshape(T, B * H))   # (4)
    np.copyto(out, h[1:])
    if mask is not None:
        out *= mask
    cache = MinCache(kind, x, k, z, s, htilde, decay, h, mask)
    return out, h[T].copy(), cache


def infer(params, x, h0=None, lengths=None, kind="mingru"):
    """:func:`forward` without the cache: (outputs, h_T)."""
    outputs, final, _ = forward(params, x, h0, lengths, kind)
    return outputs, final


def backward(params, cache: MinCache, d_outputs, d_final_state=None, return_dh=False):
    """Backward by the scan (5) run backwards in time (equations in the module docstring).

    Returns:
        (dx, dh0, grads) or (dx, dh0, grads, dh) with ``return_dh``.

    Shapes:
        d_outputs (T, B, H), d_final_state (B, H) -> dx (T, B, I), dh0 (B, H), dh (T, B, H)
    """
    p, d_outputs, d_final = check_grads_in(params, cache, d_outputs, d_final_state)
    kind, x, k, z, s, htilde, decay, h, mask = cache
    T, B, I = x.shape
    H = h.shape[2]
    G = GATES[kind]
    if k is None:                                 # rnnkit.fast.minrnn's fused scan: the product again
        k = _project(x, p["weight_ih"], p.get("bias_ih"), H, G)
    if z is None:                                 # a cache of rnnkit.fast.minrnn: the gates again
        z, s, htilde, decay, _ = _gates(kind, k, mask)
    dt = x.dtype
    e = check_d_outputs(d_outputs, (T, B, H), dt, mask, kind)
    d_final = np.zeros((B, H), dt) if d_final is None else d_final

    # (5): δhₜ = eₜ + aₜ₊₁ δhₜ₊₁, the scan (4) backwards in time from δh_{T−1} = e_{T−1} + δh_T⁽ʳᵉᶜ⁾
    N = B * H
    dh = np.empty((T, B, H), dt)
    dk = np.empty((G, T, B, H), dt)
    np.add(e[T - 1], d_final, out=dh[T - 1])
    if T > 1:
        w = dk[-1, :T - 1].reshape(T - 1, N)        # scratch until ∂L/∂k_h
        np.copyto(w, e[:T - 1].reshape(T - 1, N))
        _scan(decay[1:].reshape(T - 1, N)[::-1], w[::-1], dh[T - 1].reshape(N), dh[:T - 1].reshape(T - 1, N)[::-1])
    dh0 = np.exp(-decay[0]) * dh[0]
    # through hₜ = (1 − zₜ) hₜ₋₁ + zₜ h̃ₜ, only where the cell ran
    dbz = np.multiply(dh, z, out=dk[-1])          # ∂L/∂bₜ ⊙ zₜ (in ∂L/∂k_h's block)
    if mask is not None:
        dbz *= mask
    d_q = dk[0] if kind == "mingru" else np.empty((T, B, H), dt)
    np.subtract(htilde, h[:-1], out=d_q)
    d_q *= dbz
    tmp = np.subtract(1, z)
    d_q *= tmp                                    # ∂L/∂q = ∂L/∂b ⊙ (h̃ − hₜ₋₁) ⊙ z(1 − z)
    np.multiply(s, s, out=tmp)                    # g' = max(s(1 − s), [k_h >= 0])
    np.subtract(s, tmp, out=tmp)
    np.maximum(tmp, k[-1] >= 0, out=tmp)
    dbz *= tmp                                    # ∂L/∂k_h
    if kind == "minlstm":
        for g in (0, 1):                          # ∂q/∂k_f = −(1 − f), ∂q/∂k_i = 1 − i
            one_minus = sigmoid_(np.negative(k[g], out=tmp))       # 1 − σ(k) = σ(−k)
            np.multiply(d_q, one_minus, out=dk[g])
        np.negative(dk[0], out=dk[0])
    dx, grads = _input_grads(x, dk, p["weight_ih"], "bias_ih" in p)
    if return_dh:
        return dx, dh0, grads, dh
    return dx, dh0, grads


def check_grads_in(params, cache, d_outputs, d_final_state):
    """Every check of :func:`backward`'s arguments: ``(params, d_outputs, d_final_state)``
    in the cache's dtype, each gradient None when it was (not used)."""
    if not isinstance(cache, MinCache):
        raise TypeError(f"minrnn: expected the cache from minrnn.forward, got {type(cache).__name__}")
    kind, x, h = cache.kind, cache.x, cache.h
    T, B, I = x.shape
    H = h.shape[2]
    _, p = _unpack(kind, params, I, x.dtype)
    if d_outputs is not None:
        d_outputs = check_float_array(d_outputs, "d_outputs", kind, ndim=3, dims="(T, B, H)", finite=False)
        check_shape(d_outputs, (T, B, H), "d_outputs", kind)
        d_outputs = np.asarray(d_outputs, dtype=x.dtype)
    if d_final_state is not None:
        d_final_state = check_state(d_final_state, "d_final_state", B, H, x.dtype, kind, finite=False)
    return p, d_outputs, d_final_state


def _input_grads(x, dk, w, bias: bool):
    """∂L/∂W_ih, ∂L/∂b_ih and ∂L/∂x from the gate blocks' gradients (one product each).

    Shapes:
        x (T, B, I), dk (G, T, B, H), w (G*H, I) -> dx (T, B, I), grads
    """
    G, T, B, H = dk.shape
    I = x.shape[2]
    x2 = x.reshape(T * B, I)
    d2 = dk.reshape(G, T * B, H)
    grads = {"weight_ih": np.concatenate([d2[g].T @ x2 for g in range(G)])}
    if bias:
        grads["bias_ih"] = d2.sum(axis=1).reshape(G * H)
    dx = d2[0] @ w[:H]
    for g in range(1, G):
        dx += d2[g] @ w[g * H:(g + 1) * H]
    return dx.reshape(T, B, I), grads
