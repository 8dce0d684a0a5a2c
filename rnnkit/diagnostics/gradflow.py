r"""Gradient flow through time: how much of the loss at the last step reaches step t.

Take a loss L that reads only the last output, L = ℓ(h_T) (an MSE against a target,
or L = ⟨g, h_T⟩ for a given d_output g at step T). The chain rule through the
recurrence hₜ = F(hₜ₋₁, xₜ) gives, for t < T (row vectors),

    ∂L/∂hₜ = ∂L/∂h_T · J_T J_{T−1} ⋯ J_{t+1},        J_s = ∂h_s/∂h_{s−1}         (1)
    ∂h_T/∂hₜ = J_T J_{T−1} ⋯ J_{t+1}    (H × H; the identity at t = T)           (2)

For the vanilla RNN J_s = diag(φ'(a_s)) W_hh, so with |φ'| ≤ 1 (tanh)

    ‖∂h_T/∂hₜ‖₂ ≤ ‖W_hh‖₂^{T−t}                                                  (3)

and a spectral radius below 1 makes the gradient of a distant step vanish
geometrically, one above 1 lets it explode (Bengio, Simard & Frasconi 1994; Pascanu,
Mikolov & Bengio 2013). The LSTM's cell path cₜ = fₜ ⊙ cₜ₋₁ + … has the Jacobian
diag(fₜ), which a forget gate near 1 keeps near the identity; the GRU's
hₜ = zₜ ⊙ hₜ₋₁ + … does the same through zₜ (Hochreiter & Schmidhuber 1997;
Cho et al. 2014).

How the numbers are computed (exactly, no finite differences, no second BPTT)
    Every gradient here comes from the cells' own backward pass with
    ``return_dh=True``, which returns δhₜ = the total ∂L/∂hₜ for t = 1..T, plus
    ∂L/∂h₀. Feeding d_outputs that are zero except at step T turns that into (1).

    For the Jacobian products (2) we backpropagate basis vectors: with
    d_outputs = e_k at step T and zero elsewhere, δhₜ is row k of ∂h_T/∂hₜ. Each
    example is repeated H times in one batch (row b·H + k carries e_k), so one
    forward and one backward give every ∂h_T/∂hₜ for every example, as a
    (T+1, B, H, H) array. Cost: a batch H times larger, once.

    For the LSTM the state is (h, c); ∂/∂hₜ perturbs hₜ with cₜ held fixed (hₜ only
    feeds the next step's gates), so the paths through the cell states cₛ, s > t,
    are included. That is also what a finite difference that nudges hₜ and reruns
    the cell from (hₜ + ε, cₜ) measures.

Norms
    ‖∂L/∂hₜ‖ is the Euclidean norm of one example's (H,) gradient, averaged over the
    batch. ‖∂h_T/∂hₜ‖ is the spectral norm (largest singular value, ``norm=
    "spectral"``) or the Frobenius norm (``norm="fro"``; √H at t = T) of one example's
    H × H matrix, averaged over the batch. Time index t runs 0..T: t = 0 is the
    initial state h₀, t = T the last step.

Saturation
    A unit is saturated when its local derivative is (nearly) zero, so it blocks the
    gradient: |hₜ| > 0.99 for a tanh RNN, hₜ = 0 for a ReLU RNN, and for the gates
    σ < 0.01 or σ > 0.99 (LSTM i, f, o; GRU r, z) and |tanh| > 0.99 (LSTM g and
    tanh(c), GRU n). The headline fraction uses h for the RNN and the sigmoid gates for
    the LSTM and GRU; every part is reported on its own too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from rnnkit import losses
from rnnkit._checks import check_choice, check_float_array, check_number, check_positive_int
from rnnkit.cells import CELLS, GATES
from rnnkit.cells.gru import GRUCache
from rnnkit.cells.lstm import LSTMCache
from rnnkit.cells.rnn import RNNCache
from rnnkit.diagnostics._cellspec import (parse_cells, parse_init, rescale_recurrent,
                                          spectral_radius)
from rnnkit.init import make_rng
from rnnkit.layers import Recurrent

NORMS = ("spectral", "fro")

__all__ = [
    "hidden_gradients",
    "hidden_grad_norms",
    "jacobian_products",
    "jacobian_norms",
    "recurrent_jacobian_norms",
    "cell_params",
    "saturation",
    "recurrent_saturation",
    "clipped_grad_norms",
    "gradient_flow_experiment",
    "format_gradient_table",
    "run_gradients",
]


# -- helpers ---------------------------------------------------------------------------

def _recurrent_of(model, where: str) -> Recurrent:
    """``model`` itself if it is a Recurrent, else its one Recurrent child (a ready model)."""
    if isinstance(model, Recurrent):
        return model
    found = [c for c in getattr(model, "_children", {}).values() if isinstance(c, Recurrent)]
    if len(found) != 1:
        raise TypeError(f"{where}: expected an rnnkit Recurrent layer or a model holding exactly one, "
                        f"got {type(model).__name__} with {len(found)}")
    return found[0]


def _check_unidirectional(layer, where: str) -> Recurrent:
    layer = _recurrent_of(layer, where)
    if layer.bidirectional:
        raise ValueError(f"{where}: gradient flow through time is measured forward in time; "
                         f"expected a Recurrent with bidirectional=False, got bidirectional=True")
    return layer


def _time_major(layer: Recurrent, a: np.ndarray) -> np.ndarray:
    return a.swapaxes(0, 1) if layer.batch_first else a


def _random_unit_rows(rng: np.random.Generator, B: int, H: int, dtype) -> np.ndarray:
    """B random directions in R^H, each of Euclidean norm 1.

    Shapes:
        returns (B, H)
    """
    g = rng.standard_normal((B, H))
    return (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(dtype)


def cell_params(layer: Recurrent, index: int = 0) -> dict[str, np.ndarray]:
    """The cell-level params dict (``weight_ih``, …) of layer ``index`` of a Recurrent
    (forward direction), as views of the layer's live arrays."""
    if not isinstance(layer, Recurrent):
        raise TypeError(f"cell_params: expected an rnnkit Recurrent layer, got {type(layer).__name__}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < layer.num_layers:
        raise ValueError(f"cell_params: index must be an int in [0, {layer.num_layers}), got {index!r}")
    keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if layer.bias else ("weight_ih", "weight_hh")
    params = layer.params
    return {k: params[f"{k}_l{index}"] for k in keys}


def _finite_list(a) -> list:
    """A float array as a JSON-able list; inf and NaN (an exploded run) become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, dtype=np.float64).ravel()]


def _finite_or_none(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


# -- ∂L/∂hₜ for a Recurrent stack ------------------------------------------------------

def hidden_gradients(layer: Recurrent, x: np.ndarray, d_last=None, target=None, h0=None,
                     seed=0) -> list[np.ndarray]:
    """∂L/∂hₜ, t = 0..T, for every layer of a unidirectional Recurrent, where L reads
    only the top layer's output at the last step.

    ``layer`` may also be a model holding one Recurrent (e.g. a SequenceRegressor);
    ``x`` is then that layer's input (embedded ids, for a model with an embedding).

    L is ⟨d_last, y_T⟩ (``d_last`` given: it is ∂L/∂y_T), or the MSE between y_T and
    ``target`` (rnnkit.losses.mse, mean over B·H), or — with neither — ⟨g, y_T⟩ for
    random unit vectors g drawn from ``seed`` (one per example, so ‖∂L/∂h_T‖ = 1 for
    the top layer). The gradients come from ``layer.backward`` (the cells' BPTT with
    ``return_dh``), run in eval mode (no dropout); the layer's ``grads`` and mode are
    left as they were.

    Returns one (T+1, B, H) array per layer, bottom first; entry [t] is ∂L/∂hₜ of that
    layer (entry [0] the initial state h₀).

    Shapes:
        x (T, B, I) (or (B, T, I) with batch_first), d_last and target (B, H),
        h0 as for layer.forward -> [ (T+1, B, H) ] * num_layers
    """
    where = "hidden_gradients"
    layer = _check_unidirectional(layer, where)
    if d_last is not None and target is not None:
        raise ValueError(f"{where}: give d_last or target, not both")
    was_training = layer.training
    saved = {k: g.copy() for k, g in layer.grads.items()}
    layer.eval()
    try:
        y, _ = layer.forward(x, h0=h0)
        y_tm = _time_major(layer, y)                       # (T, B, H)
        T, B, H = y_tm.shape
        if target is not None:
            target = check_float_array(target, "target", where, ndim=2, dims="(B, H)")
            if target.shape != (B, H):
                raise ValueError(f"{where}: expected target of shape {(B, H)}, got {target.shape}")
            _, d_T = losses.mse(y_tm[-1], target.astype(y_tm.dtype))
        elif d_last is not None:
            d_T = check_float_array(d_last, "d_last", where, ndim=2, dims="(B, H)")
            if d_T.shape != (B, H):
                raise ValueError(f"{where}: expected d_last of shape {(B, H)}, got {d_T.shape}")
            d_T = d_T.astype(y_tm.dtype)
        else:
            d_T = _random_unit_rows(make_rng(seed, where), B, H, y_tm.dtype)
        dy_tm = np.zeros_like(y_tm)
        dy_tm[-1] = d_T                                    # the loss reads step T only
        _, dh0 = layer.backward(_time_major(layer, dy_tm))
        dh0 = dh0[0] if layer.cell == "lstm" else dh0     # (L, B, H): the h part of (h, c)
        out = []
        for index in range(layer.num_layers):
            dh = layer.hidden_grads[index][0]              # (T, B, H), t = 1..T
            out.append(np.concatenate([dh0[index][None], dh], axis=0))
        return out
    finally:
        for k, g in layer.grads.items():
            np.copyto(g, saved[k])
        layer.train(was_training)


def hidden_grad_norms(layer: Recurrent, x: np.ndarray, d_last=None, target=None, h0=None,
                      seed=0) -> np.ndarray:
    """‖∂L/∂hₜ‖ for t = 0..T and every layer: the per-example Euclidean norm, averaged
    over the batch (see :func:`hidden_gradients` for L).

    Shapes:
        x (T, B, I) -> (num_layers, T+1)
    """
    grads = hidden_gradients(layer, x, d_last=d_last, target=target, h0=h0, seed=seed)
    return np.stack([np.linalg.norm(g, axis=2).mean(axis=1) for g in grads])


# -- ∂h_T/∂hₜ for one cell -------------------------------------------------------------

def _check_cell(cell, where: str) -> str:
    return check_choice(cell, "cell", tuple(CELLS), where)


def jacobian_products(cell: str, params: dict, x: np.ndarray, h0=None,
                      nonlinearity: str = "tanh") -> np.ndarray:
    """The exact Jacobians ∂h_T/∂hₜ, t = 0..T, of one cell over one sequence batch.

    Computed by backpropagating the H basis vectors e_k from step T through the cell's
    backward (``return_dh``): every example is repeated H times in one batch, row
    b·H + k carrying e_k, so entry [t, b, k, j] = ∂h_T[b, k]/∂hₜ[b, j]. For the LSTM hₜ
    is perturbed with cₜ fixed; ``h0`` is then (h0, c0). Time and memory are those of
    one forward and backward over a batch of B·H sequences: the result alone holds
    (T+1)·B·H² numbers (26 MB for T = 200, B = 4, H = 64 in float64).

    Shapes:
        x (T, B, I), h0 (B, H) or (h0, c0) -> (T+1, B, H, H); [T] is the identity
    """
    where = "jacobian_products"
    cell = _check_cell(cell, where)
    x = check_float_array(x, "x", where, ndim=3, dims="(T, B, I)")
    if "weight_hh" not in params:
        raise ValueError(f"{where}: params is missing 'weight_hh'")
    T, B, _ = x.shape
    H = np.shape(params["weight_hh"])[1]
    mod = CELLS[cell]
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}

    def repeat(a):                                        # (B, ·) -> (B*H, ·), row b*H + k
        return None if a is None else np.repeat(np.asarray(a), H, axis=0)

    if cell == "lstm" and h0 is not None:
        if not isinstance(h0, (tuple, list)) or len(h0) != 2:
            raise TypeError(f"{where}: expected h0 to be a pair (h0, c0) for the LSTM, got {type(h0).__name__}")
        h0_rep = (repeat(h0[0]), repeat(h0[1]))
    else:
        h0_rep = repeat(h0)
    x_rep = np.repeat(x, H, axis=1)                       # (T, B*H, I)
    _, _, cache = mod.forward(params, x_rep, h0_rep, **kwargs)
    d_out = np.zeros((T, B * H, H), dtype=x.dtype)
    d_out[-1] = np.tile(np.eye(H, dtype=x.dtype), (B, 1))  # row b*H + k is e_k
    _, dh0, _, dh = mod.backward(params, cache, d_out, return_dh=True)
    if cell == "lstm":
        dh0 = dh0[0]
    P = np.concatenate([dh0[None], dh], axis=0)           # (T+1, B*H, H)
    return P.reshape(T + 1, B, H, H)


def _matrix_norms(P: np.ndarray, norm: str) -> np.ndarray:
    """Spectral or Frobenius norm of each trailing H × H matrix."""
    if norm == "spectral":
        if not np.isfinite(P).all():                       # SVD refuses inf/NaN: an exploded run
            out = np.full(P.shape[:-2], np.inf)
            ok = np.isfinite(P).all(axis=(-2, -1))
            out[ok] = np.linalg.norm(P[ok], ord=2, axis=(-2, -1))
            return out
        return np.linalg.norm(P, ord=2, axis=(-2, -1))
    return np.linalg.norm(P, ord="fro", axis=(-2, -1))


def jacobian_norms(cell: str, params: dict, x: np.ndarray, h0=None, nonlinearity: str = "tanh",
                   norm: str = "spectral") -> np.ndarray:
    """‖∂h_T/∂hₜ‖ for t = 0..T, the norm of each example's H × H Jacobian product
    averaged over the batch. ``norm``: "spectral" (largest singular value) or "fro".

    Shapes:
        x (T, B, I) -> (T+1,)
    """
    check_choice(norm, "norm", NORMS, "jacobian_norms")
    P = jacobian_products(cell, params, x, h0=h0, nonlinearity=nonlinearity)
    with np.errstate(over="ignore", invalid="ignore"):
        return _matrix_norms(P, norm).mean(axis=1)


def recurrent_jacobian_norms(layer: Recurrent, x: np.ndarray, h0=None, norm: str = "spectral") -> np.ndarray:
    """:func:`jacobian_norms` for every layer of a unidirectional Recurrent: layer l's
    ∂h_T/∂hₜ within that layer, on the inputs it sees (the outputs of the layer below,
    read from the layer's caches after an eval-mode forward).

    Shapes:
        x (T, B, I) -> (num_layers, T+1)
    """
    where = "recurrent_jacobian_norms"
    layer = _check_unidirectional(layer, where)
    check_choice(norm, "norm", NORMS, where)
    was_training = layer.training
    layer.eval()
    try:
        layer.forward(x, h0=h0)
    finally:
        layer.train(was_training)
    rows = []
    for index in range(layer.num_layers):
        cache = layer.caches[index][0]
        start = (cache.h[0], cache.c[0]) if layer.cell == "lstm" else cache.h[0]
        rows.append(jacobian_norms(layer.cell, cell_params(layer, index), cache.x, h0=start,
                                   nonlinearity=layer.nonlinearity, norm=norm))
    return np.stack(rows)


# -- saturation -----------------------------------------------------------------------

def saturation(cache, threshold: float = 0.99) -> dict:
    """Fractions of saturated units in one cell cache (see the module docstring).

    Returns a dict with ``"saturated"`` (the headline fraction: h for the RNN, the
    sigmoid gates for LSTM and GRU), ``"parts"`` (fraction per part: "h", "i", "f",
    "g", "o", "tanh_c", "r", "z", "n") and ``"per_step"`` (the headline fraction at
    each step t = 1..T, a (T,) array). Steps past a sequence's length are not counted.
    """
    where = "saturation"
    threshold = check_number(threshold, "threshold", where, 0.5, 1.0, low_open=True, high_open=True)
    lo = 1.0 - threshold

    def sig(a):
        return (a < lo) | (a > threshold)

    def tanh_(a):
        return np.abs(a) > threshold

    if isinstance(cache, RNNCache):
        h = cache.h[1:]
        blocked = (h <= 0) if cache.nonlinearity == "relu" else tanh_(h)
        parts = {"h": blocked}
        headline = [blocked]
    elif isinstance(cache, LSTMCache):
        H = cache.h.shape[2]
        i, f, g, o = (cache.gates[..., k * H:(k + 1) * H] for k in range(4))
        parts = {"i": sig(i), "f": sig(f), "g": tanh_(g), "o": sig(o), "tanh_c": tanh_(cache.tanh_c)}
        headline = [parts["i"], parts["f"], parts["o"]]
    elif isinstance(cache, GRUCache):
        H = cache.h.shape[2]
        r, z, n = (cache.gates[..., k * H:(k + 1) * H] for k in range(3))
        parts = {"r": sig(r), "z": sig(z), "n": tanh_(n)}
        headline = [parts["r"], parts["z"]]
    else:
        raise TypeError(f"{where}: expected a cache from rnnkit.cells (rnn, lstm or gru) forward, "
                        f"got {type(cache).__name__}")
    mask = cache.mask                                       # (T, B, 1) or None
    T = cache.h.shape[0] - 1
    w = np.ones((T, cache.h.shape[1], 1)) if mask is None else mask.astype(np.float64)
    count_t = w.sum(axis=(1, 2)) * cache.h.shape[2]         # valid (b, unit) pairs per step

    def frac(a):
        return float((a * w).sum() / max(count_t.sum(), 1.0))

    stacked = np.stack(headline)                            # (n, T, B, H)
    per_step = (stacked * w).sum(axis=(0, 2, 3)) / np.maximum(count_t * len(headline), 1.0)
    return {"saturated": float(np.mean([frac(a) for a in headline])),
            "parts": {k: frac(v) for k, v in parts.items()},
            "per_step": per_step}


def recurrent_saturation(layer: Recurrent, threshold: float = 0.99) -> list[dict]:
    """:func:`saturation` of every layer (forward direction) of a Recurrent, read from
    the caches of its last ``forward``."""
    layer = _recurrent_of(layer, "recurrent_saturation")
    if not layer.caches:
        raise ValueError("recurrent_saturation: the layer holds no caches; call layer.forward(x) first")
    return [saturation(layer.caches[index][0], threshold) for index in range(layer.num_layers)]


# -- clipping -------------------------------------------------------------------------

def clipped_grad_norms(grads: dict, max_norm: float) -> dict:
    """Per-parameter gradient norms before and after clipping by global norm.

    Clips a copy with :func:`rnnkit.optim.clip_grad_norm` (``grads`` is not touched).
    Returns ``{"max_norm", "total_before", "total_after", "clipped", "before": {name:
    norm}, "after": {name: norm}}``; a non-finite total is reported as None and nothing
    is scaled (clip_grad_norm's rule).
    """
    from rnnkit.optim import clip_grad_norm

    where = "clipped_grad_norms"
    if not isinstance(grads, dict) or not grads:
        raise TypeError(f"{where}: expected grads to be a non-empty dict of arrays, got {type(grads).__name__}")
    max_norm = check_number(max_norm, "max_norm", where, 0.0, low_open=True)
    work = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}
    before = {k: float(np.linalg.norm(v)) for k, v in work.items()}
    total = clip_grad_norm(work, max_norm)
    after = {k: float(np.linalg.norm(v)) for k, v in work.items()}
    total_after = math.sqrt(sum(v * v for v in after.values()))
    return {"max_norm": float(max_norm), "total_before": _finite_or_none(total),
            "total_after": _finite_or_none(total_after),
            "clipped": bool(math.isfinite(total) and total > max_norm),
            "before": {k: _finite_or_none(v) for k, v in before.items()},
            "after": {k: _finite_or_none(v) for k, v in after.items()}}


# -- the experiment -------------------------------------------------------------------

def gradient_flow_experiment(cells=("rnn", "rnn-relu", "lstm", "gru"), length: int = 200,
                             hidden: int = 64, init: str = "default", seed: int = 0,
                             batch: int = 4, input_size: int = 8, forget_bias: float | None = None,
                             norm: str = "spectral") -> dict:
    """Gradient flow of freshly initialised cells over one random input sequence batch.

    For each cell name (see :mod:`rnnkit.diagnostics._cellspec`: "rnn", "rnn-relu",
    "irnn", "lstm", "gru") a one-layer float64 Recurrent is built with ``seed`` and
    ``init`` ("default", "xavier_orthogonal" or "radius=R"), run on the same inputs
    xₜ ~ N(0, I) of shape (length, batch, input_size), and L = ⟨g, h_T⟩ with random
    unit vectors g (the same for every cell). ``forget_bias`` goes to the LSTM. The
    "irnn" cell keeps its identity W_hh under "default" and "xavier_orthogonal";
    "radius=R" makes it R·I.

    Returns a JSON-able dict: the settings, ``"t"`` = [0..T], and per cell
    ``"grad_norm"`` (‖∂L/∂hₜ‖, t = 0..T), ``"jacobian_norm"`` (‖∂h_T/∂hₜ‖),
    ``"ratio_first_last"`` = ‖∂L/∂h₁‖ / ‖∂L/∂h_T‖ and ``"per_step_factor"`` = its
    (T−1)-th root (the average shrink per step), ``"saturation"`` and
    ``"saturation_parts"``, ``"spectral_radius"`` (of each W_hh gate block) and
    ``"seconds"``. Values that overflowed are None.
    """
    where = "gradient_flow_experiment"
    specs = parse_cells(list(cells) if not isinstance(cells, str) else cells, where)
    T = check_positive_int(length, "length", where, minimum=2)
    H = check_positive_int(hidden, "hidden", where)
    B = check_positive_int(batch, "batch", where)
    I = check_positive_int(input_size, "input_size", where)
    check_choice(norm, "norm", NORMS, where)
    scheme, radius = parse_init(init, where)
    rng = make_rng(seed, where)
    x = rng.standard_normal((T, B, I))                     # the same inputs for every cell
    g = _random_unit_rows(rng, B, H, np.float64)           # the same ∂L/∂h_T for every cell

    result = {"length": T, "hidden": H, "batch": B, "input_size": I, "init": init, "seed": seed,
              "forget_bias": forget_bias, "norm": norm, "t": list(range(T + 1)), "cells": {}}
    for spec in specs:
        start = time.perf_counter()
        layer = Recurrent(spec.cell, I, H, nonlinearity=spec.nonlinearity, dtype=np.float64,
                          seed=seed, init="irnn" if spec.scheme == "irnn" else scheme,
                          forget_bias=forget_bias if spec.cell == "lstm" else None)
        if radius is not None:
            w = layer.params["weight_hh_l0"]
            np.copyto(w, rescale_recurrent(w, GATES[spec.cell], radius))
        with np.errstate(over="ignore", invalid="ignore"):
            grad = hidden_grad_norms(layer, x, d_last=g)[0]
            sat = recurrent_saturation(layer)[0]           # caches of the forward just run
            jac = recurrent_jacobian_norms(layer, x, norm=norm)[0]
        ratio = _finite_or_none(grad[1] / grad[T]) if grad[T] != 0 else None
        w = layer.params["weight_hh_l0"]
        radii = [spectral_radius(w[k * H:(k + 1) * H]) for k in range(GATES[spec.cell])]
        result["cells"][spec.name] = {
            "cell": spec.cell, "nonlinearity": spec.nonlinearity,
            "init": "irnn" if spec.scheme == "irnn" else init,
            "grad_norm": _finite_list(grad),
            "jacobian_norm": _finite_list(jac),
            "ratio_first_last": ratio,
            # the geometric-mean shrink (< 1) or growth (> 1) per step from h_T back to h_1
            "per_step_factor": None if ratio is None else (ratio ** (1.0 / (T - 1)) if ratio > 0 else 0.0),
            "jacobian_first": _finite_or_none(jac[1]),
            "saturation": sat["saturated"],
            "saturation_parts": sat["parts"],
            "spectral_radius": radii,
            "seconds": time.perf_counter() - start,
        }
    return result


def format_gradient_table(result: dict) -> str:
    """A plain-text table of :func:`gradient_flow_experiment`'s result, one row per cell."""
    T = result["length"]
    head = (f"{'cell':<10} {'‖∂L/∂h_1‖/‖∂L/∂h_T‖':>20} {'per step':>9} {'‖∂h_T/∂h_1‖':>14} "
            f"{'saturated':>10} {'radius(W_hh)':>13}")
    lines = [f"gradient flow over T = {T} steps, H = {result['hidden']}, init = {result['init']}", head,
             "-" * len(head)]

    def fmt(v):
        return "overflow" if v is None else f"{v:.3e}"

    for name, r in result["cells"].items():
        step = "-" if r["per_step_factor"] is None else f"{r['per_step_factor']:.3f}"
        lines.append(f"{name:<10} {fmt(r['ratio_first_last']):>20} {step:>9} {fmt(r['jacobian_first']):>14} "
                     f"{r['saturation']:>10.3f} {max(r['spectral_radius']):>13.3f}")
    return "\n".join(lines)


def run_gradients(out_dir, cells=("rnn", "rnn-relu", "lstm", "gru"), length: int = 200,
                  init: str = "default", hidden: int = 64, seed: int = 0, batch: int = 4,
                  input_size: int = 8, forget_bias: float | None = None,
                  norm: str = "spectral", plot: bool = True) -> dict:
    """Run :func:`gradient_flow_experiment` and write ``gradients.json`` (its result) and
    ``gradients.png`` (:func:`rnnkit.diagnostics.plots.plot_gradient_flow`) into
    ``out_dir`` (created if missing).

    Returns ``{"result": …, "table": str, "json": path, "png": path or None}``; png is
    None when ``plot`` is False or matplotlib is not installed (``"note"`` says which).
    """
    from rnnkit.io import save_json

    result = gradient_flow_experiment(cells=cells, length=length, hidden=hidden, init=init, seed=seed,
                                      batch=batch, input_size=input_size, forget_bias=forget_bias,
                                      norm=norm)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "gradients.json"
    save_json(json_path, result)
    report = {"result": result, "table": format_gradient_table(result), "json": str(json_path), "png": None}
    if plot:
        from rnnkit.report import have_matplotlib

        if have_matplotlib():
            from rnnkit.diagnostics.plots import plot_gradient_flow

            report["png"] = str(plot_gradient_flow(result, out / "gradients.png"))
        else:
            report["note"] = 'gradients.png not written: plots need matplotlib (pip install "rnnkit[plot]")'
    return report
