r"""Attention: additive pooling of one sequence (Bahdanau, Cho & Bengio 2015), and
:class:`CrossAttention` of decoder queries over encoder states (additive or multiplicative).

Pooling (:class:`AdditiveAttention`):

Forward, for each sequence (b omitted), valid steps t (mₜ = 1 while t < length):

    uₜ = tanh(W hₜ + b)                  W (A, D), b (A,)                    (1)
    sₜ = v · uₜ                          v (A,)                              (2)
    aₜ = mₜ exp(sₜ) / Σ_τ m_τ exp(s_τ)   softmax over the valid steps only   (3)
    c  = Σₜ aₜ hₜ                        the context (pooled) vector          (4)

Backward, given dc = ∂L/∂c (and optionally da = ∂L/∂a from a loss on the weights):

    from (4)  ∂L/∂hₜ ⊇ aₜ dc,              daₜ += dc · hₜ
    from (3)  dsₜ = aₜ (daₜ − Σ_τ a_τ da_τ)         (softmax Jacobian; 0 where mₜ = 0,
                                                       since aₜ = 0 there)
    from (2)  dv = Σₜ dsₜ uₜ,              duₜ = dsₜ v
    from (1)  dzₜ = duₜ ⊙ (1 − uₜ²),       dW = Σₜ dzₜ hₜᵀ,   db = Σₜ dzₜ,
              ∂L/∂hₜ += Wᵀ dzₜ

so hₜ gets two gradients: the direct one through the weighted sum and the one
through its own score.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import check_dtype, check_float_array, check_positive_int, check_shape
from rnnkit.init import make_rng, uniform
from rnnkit.module import Module


class AdditiveAttention(Module):
    """Attention pooling: c = Σₜ softmax_t(v · tanh(W hₜ + b)) hₜ over the valid steps.

    Parameters ``weight`` (A, D), ``bias`` (A,), ``v`` (A,), all ~ U(−1/√fan_in, 1/√fan_in).

    Shapes:
        h (T, B, D), mask (T, B) bool or None  ->  context (B, D), weights (T, B)
    """

    def __init__(self, input_size: int, attention_size: int, dtype=np.float32, seed=None):
        super().__init__()
        where = "AdditiveAttention"
        self.input_size = check_positive_int(input_size, "input_size", where)
        self.attention_size = check_positive_int(attention_size, "attention_size", where)
        self.dtype = check_dtype(dtype, where)
        rng = make_rng(seed, where)
        D, A = self.input_size, self.attention_size
        self.register("weight", uniform(rng, (A, D), 1.0 / math.sqrt(D), self.dtype))
        self.register("bias", uniform(rng, (A,), 1.0 / math.sqrt(D), self.dtype))
        self.register("v", uniform(rng, (A,), 1.0 / math.sqrt(A), self.dtype))
        self._cache = None

    def forward(self, h: np.ndarray, mask=None):
        """Pool ``h`` over its valid steps; every sequence needs at least one.

        Shapes:
            h (T, B, D), mask (T, B) -> (context (B, D), weights (T, B), zero where masked)
        """
        where = "AdditiveAttention"
        h = check_float_array(h, "h", where, ndim=3, dims="(T, B, D)")
        if h.dtype != self.dtype:
            raise TypeError(f"{where}: expected h of dtype {self.dtype}, got {h.dtype}")
        T, B, D = h.shape
        if D != self.input_size:
            raise ValueError(f"{where}: expected h of shape (T, B, {self.input_size}), got {h.shape}")
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            check_shape(mask, (T, B), "mask (T, B)", where)
            if not mask.any(axis=0).all():
                raise ValueError(f"{where}: every sequence needs at least one valid step in mask")
        u = np.tanh(h @ self._params["weight"].T + self._params["bias"])      # (T, B, A)
        s = u @ self._params["v"]                                              # (T, B)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        # shift by the max over valid steps: exp never overflows, masked steps give exp(-inf) = 0
        e = np.exp(s - s.max(axis=0, keepdims=True))
        a = e / e.sum(axis=0, keepdims=True)                                   # (T, B)
        context = np.einsum("tb,tbd->bd", a, h)
        self._cache = (h, u, a)
        return context, a

    def backward(self, dcontext: np.ndarray, dweights=None) -> np.ndarray:
        """Return dh and add dW, db, dv into ``grads`` (derivation in the module docstring).

        Shapes:
            dcontext (B, D), dweights (T, B) or None  ->  dh (T, B, D)
        """
        where = "AdditiveAttention"
        if self._cache is None:
            raise RuntimeError(f"{where}: backward called before forward")
        h, u, a = self._cache
        check_shape(dcontext, h.shape[1:], "dcontext (B, D)", where)
        dh = a[:, :, None] * dcontext[None]                                    # through c = Σ a h
        da = np.einsum("tbd,bd->tb", h, dcontext)
        if dweights is not None:
            check_shape(dweights, a.shape, "dweights (T, B)", where)
            da = da + dweights
        ds = a * (da - (a * da).sum(axis=0, keepdims=True))                   # softmax Jacobian
        self._grads["v"] += np.einsum("tb,tba->a", ds, u)
        dz = ds[:, :, None] * self._params["v"] * (1.0 - u * u)               # (T, B, A)
        dz2 = dz.reshape(-1, self.attention_size)
        self._grads["weight"] += dz2.T @ h.reshape(-1, self.input_size)
        self._grads["bias"] += dz2.sum(axis=0)
        dh += dz @ self._params["weight"]
        return dh.astype(self.dtype, copy=False)


ATTENTION_KINDS = ("additive", "multiplicative")


def _mm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w for x (..., K) and w (K, N) as one 2-D BLAS product: NumPy multiplies a
    strided (transposed) 3-D x by a matrix without BLAS, about 50x slower.

    Shapes:
        x (..., K), w (K, N) -> (..., N)
    """
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[1],))


class CrossAttention(Module):
    r"""Attention of each query over all memory states (an encoder–decoder's source).

    For query q_t (T, B, Q) and memory m_s (S, B, M), valid where mask[s, b]:

        additive        e_ts = v · tanh(W_q q_t + W_k m_s + b)     W_q (A, Q), W_k (A, M), b, v (A,)
        multiplicative  e_ts = q_t · (W_a m_s) / √Q                 W_a (Q, M)   (scaled "general")
        a_ts = softmax_s(e_ts) over the valid s;     c_t = Σ_s a_ts m_s

    Backward, given dc_t: da_ts = dc_t · m_s, dm_s ⊇ Σ_t a_ts dc_t, de = a ⊙ (da − Σ_s a da);
    additive: dz = de v (1 − u²) with u = tanh(·), dW_q = Σ (Σ_s dz)ᵀ q, dW_k = Σ (Σ_t dz)ᵀ m,
    dq = (Σ_s dz) W_q, dm ⊇ (Σ_t dz) W_k; multiplicative: with k_s = W_a m_s / √Q,
    dq_t = Σ_s de_ts k_s, dk_s = Σ_t de_ts q_t, dW_a = Σ dkᵀ m / √Q, dm ⊇ dk W_a / √Q.

    Shapes:
        query (T, B, Q), memory (S, B, M), mask (S, B) -> context (T, B, M), weights (T, B, S)
    """

    def __init__(self, query_size: int, memory_size: int, kind: str = "additive",
                 attention_size: int | None = None, dtype=np.float32, seed=None):
        super().__init__()
        where = "CrossAttention"
        self.query_size = Q = check_positive_int(query_size, "query_size", where)
        self.memory_size = M = check_positive_int(memory_size, "memory_size", where)
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(ATTENTION_KINDS)}, got {kind!r}")
        self.kind = kind
        self.dtype = check_dtype(dtype, where)
        rng = make_rng(seed, where)
        if kind == "additive":
            A = self.attention_size = check_positive_int(attention_size or Q, "attention_size", where)
            self.register("weight_q", uniform(rng, (A, Q), 1.0 / math.sqrt(Q), self.dtype))
            self.register("weight_k", uniform(rng, (A, M), 1.0 / math.sqrt(M), self.dtype))
            self.register("bias", uniform(rng, (A,), 1.0 / math.sqrt(M), self.dtype))
            self.register("v", uniform(rng, (A,), 1.0 / math.sqrt(A), self.dtype))
        else:
            self.attention_size = None
            self.register("weight", uniform(rng, (Q, M), 1.0 / math.sqrt(M), self.dtype))
        self._cache = None

    def forward(self, query: np.ndarray, memory: np.ndarray, mask=None):
        """Contexts and weights; every memory column needs at least one valid step."""
        where = "CrossAttention"
        T, B, Q = query.shape
        if Q != self.query_size or memory.shape[1:] != (B, self.memory_size):
            raise ValueError(f"{where}: expected query (T, B, {self.query_size}) and memory (S, B, "
                             f"{self.memory_size}), got {query.shape} and {memory.shape}")
        p = self._params
        # batch-major inside, so every contraction is a batched BLAS product
        qb, mb = query.transpose(1, 0, 2), memory.transpose(1, 0, 2)            # (B, T, Q), (B, S, M)
        if self.kind == "additive":
            qp = _mm(qb, p["weight_q"].T)                                         # (B, T, A)
            kp = _mm(mb, p["weight_k"].T) + p["bias"]                             # (B, S, A)
            u = np.tanh(qp[:, :, None, :] + kp[:, None, :, :])                   # (B, T, S, A)
            e = u @ p["v"]                                                        # (B, T, S)
            k = None
        else:
            u = None
            k = _mm(mb, p["weight"].T / math.sqrt(Q))                            # (B, S, Q)
            e = qb @ k.transpose(0, 2, 1)                                         # (B, T, S)
        if mask is not None:
            e = np.where(np.asarray(mask, dtype=bool).T[:, None, :], e, -np.inf)
        e = e - e.max(axis=2, keepdims=True)
        a = np.exp(e)
        a /= a.sum(axis=2, keepdims=True)                                         # (B, T, S)
        context = (a @ mb).transpose(1, 0, 2)                                     # (T, B, M)
        self._cache = (qb, mb, u, k, a)
        return np.ascontiguousarray(context, dtype=self.dtype), a.transpose(1, 0, 2)

    def backward(self, dcontext: np.ndarray):
        """Return (dquery, dmemory) and add the parameter gradients into ``grads``.

        Shapes:
            dcontext (T, B, M) -> dquery (T, B, Q), dmemory (S, B, M)
        """
        if self._cache is None:
            raise RuntimeError("CrossAttention: backward called before forward")
        qb, mb, u, k, a = self._cache
        p, g = self._params, self._grads
        Q, M = self.query_size, self.memory_size
        dcb = dcontext.transpose(1, 0, 2)                                         # (B, T, M)
        da = dcb @ mb.transpose(0, 2, 1)                                          # (B, T, S)
        dmb = a.transpose(0, 2, 1) @ dcb                                          # through c = Σ a m
        de = a * (da - (a * da).sum(axis=2, keepdims=True))                      # softmax Jacobian
        if self.kind == "additive":
            A = self.attention_size
            g["v"] += np.tensordot(de, u, axes=([0, 1, 2], [0, 1, 2]))
            dz = (de[..., None] * p["v"]) * (1.0 - u * u)                         # (B, T, S, A)
            dqp, dkp = dz.sum(axis=2), dz.sum(axis=1)                             # (B, T, A), (B, S, A)
            g["weight_q"] += dqp.reshape(-1, A).T @ qb.reshape(-1, Q)
            g["weight_k"] += dkp.reshape(-1, A).T @ mb.reshape(-1, M)
            g["bias"] += dkp.sum(axis=(0, 1))
            dqb = _mm(dqp, p["weight_q"])
            dmb += _mm(dkp, p["weight_k"])
        else:
            dqb = de @ k                                                          # (B, T, Q)
            dk = de.transpose(0, 2, 1) @ qb / math.sqrt(Q)                        # (B, S, Q)
            g["weight"] += dk.reshape(-1, Q).T @ mb.reshape(-1, M)
            dmb += _mm(dk, p["weight"])
        dquery, dmemory = dqb.transpose(1, 0, 2), dmb.transpose(1, 0, 2)
        return (np.ascontiguousarray(dquery, dtype=self.dtype),
                np.ascontiguousarray(dmemory, dtype=self.dtype))
