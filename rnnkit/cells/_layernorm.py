r"""Layer normalisation over the last axis (Ba, Kiros & Hinton 2016), as torch.nn.LayerNorm:

    μ = mean(a),  s = 1 / √(var(a) + ε)   (biased variance, ε = 1e-5)
    n = (a − μ) s,   y = γ ⊙ n + β

Backward, with ĝ = γ ⊙ ∂L/∂y and means over the normalised axis:

    ∂L/∂a = s (ĝ − mean(ĝ) − n ⊙ mean(ĝ ⊙ n)),   ∂L/∂γ = Σ ∂L/∂y ⊙ n,   ∂L/∂β = Σ ∂L/∂y
"""

from __future__ import annotations

import numpy as np

EPS = 1e-5


def forward(a: np.ndarray, gamma: np.ndarray, beta: np.ndarray):
    """Returns (y, n, s): the output and what backward needs.

    Shapes:
        a (..., N), gamma and beta (N,) -> y and n (..., N), s (..., 1)
    """
    mu = a.mean(axis=-1, keepdims=True)
    d = a - mu
    s = 1.0 / np.sqrt((d * d).mean(axis=-1, keepdims=True) + EPS)
    n = d * s
    return n * gamma + beta, n, s


def backward(dy: np.ndarray, n: np.ndarray, s: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """∂L/∂a (the gain and bias gradients are ``param_grads``: sums over many steps).

    Shapes:
        dy, n (..., N), s (..., 1), gamma (N,) -> (..., N)
    """
    g = dy * gamma
    return s * (g - g.mean(axis=-1, keepdims=True) - n * (g * n).mean(axis=-1, keepdims=True))


def param_grads(dy: np.ndarray, n: np.ndarray):
    """(∂L/∂γ, ∂L/∂β) summed over every leading position.

    Shapes:
        dy, n (..., N) -> (N,), (N,)
    """
    N = dy.shape[-1]
    return (dy * n).reshape(-1, N).sum(axis=0), dy.reshape(-1, N).sum(axis=0)
