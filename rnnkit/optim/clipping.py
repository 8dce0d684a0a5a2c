r"""Gradient clipping, in place, on dicts name -> array (``model.grads``).

clip_grad_norm: N = √(Σ_params Σ g²); if N is finite and N > max_norm, every
g ← g · max_norm/(N + 10⁻⁶) (torch's formula). Returns N before clipping; a
non-finite N is returned and nothing is scaled, for the caller to report.
clip_grad_value: g ← clip(g, −v, v).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import check_number

__all__ = ["clip_grad_norm", "clip_grad_value", "grad_norms"]


def _check_grad_dict(grads, where: str) -> dict:
    if not isinstance(grads, dict):
        raise TypeError(f"{where}: grads must be a dict name -> array, got {type(grads).__name__}")
    for name, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            got = type(g).__name__ if not isinstance(g, np.ndarray) else f"dtype {g.dtype}"
            raise TypeError(f"{where}: gradient {name!r} must be a float numpy array, got {got}")
    return grads


def _sq_norm(g: np.ndarray) -> float:
    # float64 accumulation: a float32 sum of squares overflows at |g| ~ 1e19. einsum,
    # not np.dot: OpenBLAS splits a long dot product among its threads, which then
    # spin for a while beside the recurrent loops' own (a char LM step on 2 cores:
    # the loops kept to one thread, 150 ms instead of 120)
    flat = g.reshape(-1).astype(np.float64, copy=False)
    return float(np.einsum("i,i->", flat, flat))


def grad_norms(grads: dict) -> dict[str, float]:
    """The L2 norm of each gradient, by name (for logging and diagnostics)."""
    _check_grad_dict(grads, "grad_norms")
    return {name: math.sqrt(_sq_norm(g)) for name, g in grads.items()}


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    Returns the global norm *before* clipping (torch's ``clip_grad_norm_``). A NaN or
    inf norm is returned unchanged and no gradient is touched, so the caller can
    report the divergence instead of training on garbage.
    """
    where = "clip_grad_norm"
    _check_grad_dict(grads, where)
    max_norm = check_number(max_norm, "max_norm", where, low=0.0, low_open=True)
    total = math.sqrt(sum(_sq_norm(g) for g in grads.values()))
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)   # the 1e-6 keeps an all-zero gradient finite
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total


def clip_grad_value(grads: dict, clip_value: float) -> None:
    """Clip every gradient element into [−clip_value, clip_value], in place."""
    where = "clip_grad_value"
    _check_grad_dict(grads, where)
    v = check_number(clip_value, "clip_value", where, low=0.0, low_open=True)
    for g in grads.values():
        np.clip(g, -v, v, out=g)
