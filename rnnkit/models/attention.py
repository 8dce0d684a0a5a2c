r"""Additive attention pooling (Bahdanau, Cho & Bengio 2015) over a sequence of states.

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
