r"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs
All We Needed?"): gates that read only xₜ, so the whole sequence is one linear
recurrence hₜ = aₜ ⊙ hₜ₋₁ + bₜ, solved by a scan in log space instead of a time loop.

Forward (rows in the code; k are pre-activations, all from one product x W_ihᵀ + b_ih):

    minGRU   [k_z k_h] = W_ih xₜ + b_ih
             zₜ = σ(qₜ),  qₜ = k_z                                            (1g)
    minLSTM  [k_f k_i k_h] = W_ih xₜ + b_ih
             fₜ = σ(k_f), iₜ = σ(k_i);  zₜ = iₜ / (fₜ + iₜ) = σ(qₜ),
             qₜ = log iₜ − log fₜ = softplus(−k_f) − softplus(−k_i)           (1l)
    both     h̃ₜ = g(k_h),  g(k) = k + ½ (k ≥ 0),  σ(k) (k < 0)   (positive)  (2)
             hₜ = aₜ ⊙ hₜ₋₁ + bₜ,   aₜ = 1 − zₜ,  bₜ = zₜ ⊙ h̃ₜ               (3)
             yₜ = hₜ

(minLSTM's normalised gates f' = f/(f+i) = 1 − z and i' = z: the two cells differ only
in how z is computed.) The scan: with A*ₜ = Σ_{s≤t} log aₛ (log aₜ = −softplus(qₜ)),

    hₜ = exp(A*ₜ) h₀ + Σ_{s≤t} exp(A*ₜ − A*ₛ) bₛ                                (4)

i.e. log hₜ = A*ₜ + logcumsumexp(log b − A*)ₜ for h₀ = 0 (Heinsen 2023). The sum is
taken in chunks of ``CHUNK`` steps (:func:`linear_scan`): in a chunk the decays
exp(A*ₜ − A*ₛ) come from the chunk's running sums of log a (log space; factored
through the chunk's start, which stays far from overflow: a chunk whose decay passes
e^−600 is summed term by term instead), and one multiply-add per chunk carries the
state from chunk to chunk. Every step of a chunk is computed at once, as are all
chunks; no Python loop runs over time. In x's dtype; float32 uses chunks of
``CHUNK // 2`` steps and the limit e^−60 (float32's range ends near e^88). With
``lengths``, past a sequence's end log aₜ = 0 and bₜ = 0 (the state is carried), yₜ = 0.

Backward. δhₜ = ∂L/∂hₜ total = eₜ + aₜ₊₁ δhₜ₊₁, eₜ = mₜ ∂L/∂yₜ (+ ∂L/∂h_T at t = T):

    δhₜ = Σ_{s≥t} exp(A*ₛ − A*ₜ) eₛ                                              (5)

the same chunked scan run backwards in time. Then, for steps inside the sequence,

    ∂L/∂aₜ = δhₜ ⊙ hₜ₋₁,   ∂L/∂bₜ = δhₜ,   ∂L/∂h₀ = a₁ ⊙ δh₁
    ∂L/∂zₜ = −∂L/∂aₜ + ∂L/∂bₜ ⊙ h̃ₜ,  ∂L/∂qₜ = ∂L/∂zₜ ⊙ zₜ(1 − zₜ)              from (3)
    minLSTM: ∂L/∂k_f = −∂L/∂q ⊙ (1 − fₜ),  ∂L/∂k_i = ∂L/∂q ⊙ (1 − iₜ)       from (1l)
    ∂L/∂k_h = ∂L/∂bₜ ⊙ zₜ ⊙ g'(k_h),  g' = 1 (k ≥ 0), σ(k)(1 − σ(k)) (k < 0)   from (2)
    ∂L/∂W_ih = Σₜ dkₜ xₜᵀ,  ∂L/∂b_ih = Σₜ dkₜ,  ∂L/∂xₜ = W_ihᵀ dkₜ

Parameters: ``weight_ih`` (G·H, I) with G = 2 (z, h) for minGRU and 3 (f, i, h) for
minLSTM, and with bias ``bias_ih`` (G·H,); there is no recurrent weight. The ONNX
standard has no operator for these cells.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.cells._common import check_d_outputs, check_state, check_x, length_mask
from rnnkit.cells._params import check_params, get_array, input_grads

KINDS = ("mingru", "minlstm")
GATES = {"mingru": 2, "minlstm": 3}
CHUNK = 32          # steps per chunk of the scan (float64; float32: CHUNK // 2)
#: a chunk whose decay passes exp(−limit) is summed term by term (exp(limit) must not overflow)
_DECAY_LIMIT = {np.dtype(np.float64): 600.0, np.dtype(np.float32): 60.0}


def layout(kind: str, I: int, H: int, bias: bool = True) -> dict:
    """Parameter shapes."""
    G = GATES[kind]
    return {"weight_ih": (G * H, I), **({"bias_ih": (G * H,)} if bias else {})}


class MinCache(NamedTuple):
    kind: str
    x: np.ndarray                 # (T, B, I)
    k: np.ndarray                 # (T, B, G*H): the pre-activations
    z: np.ndarray                 # (T, B, H): the update gate z
    htilde: np.ndarray            # (T, B, H): g(k_h)
    log_a: np.ndarray             # (T, B, H): log aₜ, 0 past each length
    h: np.ndarray                 # (T+1, B, H): h[0] = h0
    mask: Optional[np.ndarray]    # (T, B, 1) bool or None


def _softplus(v):
    """log(1 + eᵛ) = max(v, 0) + log1p(e^−|v|), without overflow."""
    return np.maximum(v, 0.0) + np.log1p(np.exp(-np.abs(v)))


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _unpack(kind, params, I, dt):
    where = kind
    w = get_array(params, "weight_ih", where, 2)
    G = GATES[kind]
    if w.shape[0] % G or w.shape[0] == 0:
        raise ValueError(f"{where}: expected params['weight_ih'] of shape ({G}*H, I), got {w.shape}")
    H = w.shape[0] // G
    return H, check_params(params, layout(kind, I, H, "bias_ih" in params), dt, where)


def linear_scan(log_a: np.ndarray, b: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """hₜ = exp(log aₜ) hₜ₋₁ + bₜ for t = 0..T−1 from h₋₁ = h0, by the chunked scan (4).

    Within a chunk (C = :data:`CHUNK` steps, all chunks at once): Dⱼ = Σ_{i≤j} log aᵢ,
    the local solution from a zero start Lⱼ = exp(Dⱼ) Σ_{i≤j} exp(−Dᵢ) bᵢ and the decay
    exp(Dⱼ); then the chunks' starts, one multiply-add per chunk; then hⱼ = Lⱼ + exp(Dⱼ)·start.
    A chunk with some D below −600 (exp(−D) would overflow) gets L term by term.

    Shapes:
        log_a, b (T, N) float32 or float64 (log_a <= 0), h0 (N,) -> h (T, N)
    """
    T, N = b.shape
    dt = b.dtype
    C = _chunk(T, CHUNK if dt == np.float64 else CHUNK // 2)
    K = -(-T // C)
    if K * C != T:                                # pad with steps that carry the state
        log_a = np.concatenate([log_a, np.zeros((K * C - T, N), dt)])
        b = np.concatenate([b, np.zeros((K * C - T, N), dt)])
    la, bb = log_a.reshape(K, C, N), b.reshape(K, C, N)
    D = np.empty_like(la)                         # (K, C, N): decay from each chunk's start, in logs
    D[:, 0] = la[:, 0]
    for j in range(1, C):                         # C steps inside every chunk at once
        np.add(D[:, j - 1], la[:, j], out=D[:, j])
    safe = D[:, -1].min(axis=1) > -_DECAY_LIMIT[dt]   # (K,)
    local = np.negative(D)
    with np.errstate(over="ignore", invalid="ignore"):    # unsafe chunks are redone below
        np.exp(local, out=local)                  # exp(−Dᵢ) <= e^limit in a safe chunk
        local *= bb
        for j in range(1, C):
            local[:, j] += local[:, j - 1]
        decay = np.exp(D, out=D)
        local *= decay                            # Lⱼ
    if not safe.all():                            # steep decay: the recurrence itself, from zero
        a_u, b_u = np.exp(la[~safe]), bb[~safe]
        L = np.empty_like(b_u)
        L[:, 0] = b_u[:, 0]
        for j in range(1, C):
            L[:, j] = a_u[:, j] * L[:, j - 1] + b_u[:, j]
        local[~safe] = L
    starts = np.empty((K, 1, N), dt)
    s = np.asarray(h0, dtype=dt).reshape(N)
    for c in range(K):                            # one multiply-add per chunk
        starts[c, 0] = s
        s = decay[c, -1] * s + local[c, -1]
    decay *= starts
    local += decay
    return local.reshape(K * C, N)[:T]


def _chunk(T: int, size: int) -> int:
    """The chunk length: ``size``, or a length in [size/2, 3·size/2] that divides T (no padding)."""
    if T <= size:
        return T
    for c in sorted(range(size // 2, 3 * size // 2 + 1), key=lambda c: abs(c - size)):
        if T % c == 0:
            return c
    return size


def forward(params, x, h0=None, lengths=None, kind="mingru"):
    """Run minGRU or minLSTM (``kind``) over a whole sequence by the scan (4).

    Returns:
        (outputs, h_T, cache); outputs are zero past each length.

    Shapes:
        x (T, B, I), h0 (B, H), lengths (B,) -> outputs (T, B, H), h_T (B, H)
    """
    check_choice(kind, "kind", KINDS, "minrnn")
    x = check_x(x, kind)
    T, B, I = x.shape
    dt = x.dtype
    H, p = _unpack(kind, params, I, dt)
    h0 = check_state(h0, "h0", B, H, dt, kind)
    mask = length_mask(lengths, T, B, kind)

    k = (x.reshape(T * B, I) @ p["weight_ih"].T).reshape(T, B, -1)     # (T, B, G*H)
    if "bias_ih" in p:
        k += p["bias_ih"]
    kh = k[:, :, -H:]
    if kind == "mingru":
        q = k[:, :, :H]                                                 # (1g)
    else:
        q = _softplus(-k[:, :, :H]) - _softplus(-k[:, :, H:2 * H])      # (1l)
    z = _sigmoid(q)
    htilde = np.where(kh >= 0, kh + 0.5, _sigmoid(kh))                  # (2)
    log_a = -_softplus(q)
    b = z * htilde
    if mask is not None:                         # past the end: aₜ = 1, bₜ = 0
        log_a *= mask
        b *= mask
    h = np.empty((T + 1, B, H), dtype=dt)
    h[0] = h0
    h[1:] = linear_scan(log_a.reshape(T, B * H), b.reshape(T, B * H), h[0]).reshape(T, B, H)   # (3, 4)
    out = h[1:] * mask if mask is not None else h[1:].copy()
    cache = MinCache(kind, x, k, z, htilde, log_a, h, mask)
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
    if not isinstance(cache, MinCache):
        raise TypeError(f"minrnn: expected the cache from minrnn.forward, got {type(cache).__name__}")
    kind, x, k, z, htilde, log_a, h, mask = cache
    T, B, I = x.shape
    H = h.shape[2]
    dt = x.dtype
    _, p = _unpack(kind, params, I, dt)
    e = check_d_outputs(d_outputs, (T, B, H), dt, mask, kind).copy()
    e[T - 1] += check_state(d_final_state, "d_final_state", B, H, dt, kind, finite=False)

    # (5): δhₜ = eₜ + aₜ₊₁ δhₜ₊₁, the forward scan on the reversed sequence
    la_next = np.zeros((T, B * H), dt)
    la_next[1:] = log_a[:0:-1].reshape(T - 1, B * H)     # reversed step u uses log a of step T − u
    dh = linear_scan(la_next, e[::-1].reshape(T, B * H), np.zeros(B * H, dt))[::-1].reshape(T, B, H)
    dh0 = np.exp(log_a[0]) * dh[0]
    # through hₜ = (1 − zₜ) hₜ₋₁ + zₜ h̃ₜ, only where the cell ran
    d_b = dh if mask is None else dh * mask
    d_q = d_b * (htilde - h[:-1]) * z * (1.0 - z)
    kh = k[:, :, -H:]
    s = _sigmoid(kh)
    d_kh = d_b * z * np.where(kh >= 0, 1.0, s * (1.0 - s))
    if kind == "mingru":
        dk = np.concatenate([d_q, d_kh], axis=2)
    else:
        f, i = _sigmoid(k[:, :, :H]), _sigmoid(k[:, :, H:2 * H])
        dk = np.concatenate([-d_q * (1.0 - f), d_q * (1.0 - i), d_kh], axis=2)
    grads = {}
    dx = input_grads(x, dk, p["weight_ih"], grads, ("bias_ih",) if "bias_ih" in p else ())
    if return_dh:
        return dx, dh0, grads, dh
    return dx, dh0, grads
