r"""Losses: each returns ``(loss, d)``, the *mean* over valid items and its gradient.

Every loss is a plain function ``loss, d = f(input, target, ..., mask=None)`` where
``d`` has the input's shape and dtype and is dL/d(input) for the returned mean, so a
model's backward starts from ``d`` with no rescaling.

Valid items and the mask (the same rule in every loss)
    An *item* is one class decision for cross-entropy (one position of ``targets``)
    and one element of ``pred`` for the regression losses. ``mask`` is boolean (or 0/1)
    with the shape of the items or a leading prefix of it, e.g. ``(T, B)`` for items
    ``(T, B, D)``; it is broadcast over the trailing axes. ``mask == False`` drops an
    item from the loss, from the count ``N`` of the mean and from the gradient (its
    gradient is exactly 0). Targets at dropped items are never read, so padding may
    hold anything (ids out of range, NaN for missing values). A mask that drops every
    item is a ValueError, never a NaN.

Softmax cross-entropy over C classes (logits ``z`` (..., C), integer targets ``y``)
    log_softmax(z)_k = z_k − m − log Σ_j exp(z_j − m),   m = max_j z_j   (log-sum-exp,
                                                          no overflow for large z)
    L = −(1/N) Σ_{valid n} log_softmax(z_n)_{y_n}
    dL/dz_n = (softmax(z_n) − onehot(y_n)) / N          for valid n, 0 otherwise
    ``ignore_index`` drops items whose target equals it (like a mask).

    With per-class weights ``weight`` = (w_1..w_C), all > 0 (as torch's
    CrossEntropyLoss(weight=...)), the mean is weighted by each item's class:
    L = −Σ_{valid n} w_{y_n} log_softmax(z_n)_{y_n} / W,   W = Σ_{valid n} w_{y_n}
    dL/dz_n = w_{y_n} (softmax(z_n) − onehot(y_n)) / W   (W does not depend on z)
    Equal weights give the unweighted mean.

    Label smoothing ε (``label_smoothing``, as torch's ``label_smoothing``; unweighted):
    the target distribution is q_n = (1 − ε) onehot(y_n) + ε/C, so
    L = −(1/N) Σ_{valid n} Σ_k q_nk log_softmax(z_n)_k
      = (1 − ε)·(the loss above) + ε·(1/N) Σ_{valid n} (−(1/C) Σ_k log_softmax(z_n)_k)
    dL/dz_n = (softmax(z_n) − q_n) / N    (Σ_k q_nk = 1, as for the one-hot target)

Regression, e = pred − target, over the N valid elements
    MSE      L = (1/N) Σ e²                       dL/dpred = 2e / N
    MAE      L = (1/N) Σ |e|                      dL/dpred = sign(e) / N   (0 at e = 0)
    Huber    ℓ(e) = ½e² if |e| ≤ δ else δ(|e| − ½δ)
             L = (1/N) Σ ℓ(e)                     dL/dpred = clip(e, −δ, δ) / N

Quantile (pinball) loss for prediction intervals, pred (..., Q) for quantiles q_1..q_Q,
target (...), u = target − pred_q:
    ρ_q(u) = max(q·u, (q − 1)·u)
    L = (1/N) Σ_{valid items} Σ_q ρ_q(u)   with N = (valid items) · Q
    dL/dpred_q = (−q if u > 0, 1 − q if u < 0, ½ − q at u = 0) / N
The minimiser of E[ρ_q] is the q-quantile of the target, so quantiles (0.1, 0.5, 0.9)
give a median forecast inside an 80% interval. At q = ½, ρ is half the MAE (and the
tie subgradient ½ − q = 0 agrees with MAE's sign(0) = 0).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import NonFiniteError, check_number, check_prob

__all__ = [
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "mse",
    "mae",
    "huber",
    "quantile_loss",
]


# -- helpers -----------------------------------------------------------------------

def _float_input(a, name: str, where: str) -> np.ndarray:
    """Predictions/logits: a float32/float64 ndarray. NaN is allowed (a diverged model
    should produce a NaN loss for the trainer to report, not an argument error)."""
    if isinstance(a, (list, tuple)):
        a = np.asarray(a, dtype=np.float64)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{where}: expected {name} to be a numpy array, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: expected {name} to hold float32 or float64, got dtype {a.dtype}")
    return a


def _real_target(a, shape: tuple, name: str, where: str, dtype) -> np.ndarray:
    """Regression targets: ints or floats of exactly ``shape``, returned in ``dtype``."""
    a = np.asarray(a)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{where}: expected {name} to hold numbers, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{where}: expected {name} of shape {tuple(shape)}, got {a.shape}")
    return a.astype(dtype, copy=False)


def _valid_mask(mask, item_shape: tuple, where: str) -> np.ndarray | None:
    """Turn ``mask`` into a boolean array of ``item_shape`` (None when no mask).

    The mask may have the items' shape or a leading prefix of it; it is broadcast over
    the remaining trailing axes.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind == "b":
        pass
    elif m.dtype.kind in "iuf":
        if not np.all((m == 0) | (m == 1)):
            raise ValueError(f"{where}: mask must be boolean or hold only 0 and 1")
        m = m != 0
    else:
        raise TypeError(f"{where}: expected mask to be boolean, got dtype {m.dtype}")
    k = m.ndim
    if k > len(item_shape) or tuple(m.shape) != tuple(item_shape[:k]):
        raise ValueError(
            f"{where}: expected mask of shape {tuple(item_shape)} or a leading part of it, "
            f"got {m.shape}")
    return np.broadcast_to(m.reshape(m.shape + (1,) * (len(item_shape) - k)), item_shape)


def _count(valid: np.ndarray | None, size: int, where: str, why: str) -> int:
    n = size if valid is None else int(np.count_nonzero(valid))
    if n == 0:
        if size == 0:
            raise ValueError(f"{where}: got no items (empty input)")
        raise ValueError(f"{where}: no valid items: after applying {why}, none of the {size} "
                         "items is left, so the mean is undefined")
    return n


def _check_finite_targets(target: np.ndarray, valid: np.ndarray | None, where: str, name: str):
    bad = ~np.isfinite(target)
    if valid is not None:
        bad &= valid
    if bad.any():
        raise NonFiniteError(f"{where}: {name} contains NaN or inf at {int(bad.sum())} valid "
                         "position(s); mask them out or fix the data")


# -- softmax -----------------------------------------------------------------------

def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis`` (default: the last).

    Shapes:
        x: (..., C) -> (..., C), same dtype
    """
    x = _float_input(x, "x", "log_softmax")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    # after the shift the largest term is exp(0) = 1, so the sum is in [1, C]
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (rows sum to 1, no overflow).

    Shapes:
        x: (..., C) -> (..., C), same dtype
    """
    x = _float_input(x, "x", "softmax")
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray, mask=None,
                          ignore_index: int | None = None, weight=None,
                          label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the valid positions and its gradient.

    A position is valid when ``mask`` is true there (or no mask) and its target is not
    ``ignore_index``. Valid targets must lie in [0, C). ``weight`` (C positive numbers)
    makes it the class-weighted mean; ``label_smoothing`` ε in [0, 1) spreads ε of each
    target's probability evenly over the C classes (module docstring; not with ``weight``).

    Shapes:
        logits:  (..., C) float32/float64
        targets: (...)    integers
        mask:    (...) or a leading part of it, boolean
        weight:  (C,) or None
        returns: (loss: float, dlogits (..., C) in logits' dtype)
    """
    where = "softmax_cross_entropy"
    logits = _float_input(logits, "logits", where)
    if logits.ndim < 1:
        raise ValueError(f"{where}: expected logits with at least 1 dim (..., C), got 0")
    C = logits.shape[-1]
    if C < 1:
        raise ValueError(f"{where}: expected at least one class in logits (..., C), got C = 0")
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected targets to hold integer class ids, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"{where}: expected targets of shape {logits.shape[:-1]} (logits' shape "
                         f"without the class axis), got {targets.shape}")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"{where}: ignore_index must be an integer or None, "
                        f"got {type(ignore_index).__name__}")
    w = None if weight is None else check_class_weights(weight, C, where, "weight")
    eps = check_prob(label_smoothing, "label_smoothing", where)
    if eps and w is not None:
        raise ValueError(f"{where}: label_smoothing goes without weight (class weights); got both")

    valid = _valid_mask(mask, targets.shape, where)
    if ignore_index is not None:
        keep = targets != ignore_index
        valid = keep if valid is None else (valid & keep)
    why = " and ".join(w for w, on in (("mask", mask is not None),
                                       (f"ignore_index={ignore_index}", ignore_index is not None)) if on)
    n = _count(valid, targets.size, where, why or "mask")

    t = targets.astype(np.int64)
    out_of_range = (t < 0) | (t >= C)
    if valid is not None:
        out_of_range &= valid
    if out_of_range.any():
        bad = t[out_of_range]
        raise ValueError(f"{where}: targets must lie in [0, {C}) (C = {C} classes), got values "
                         f"from {bad.min()} to {bad.max()} at valid positions")
    if valid is not None:
        t = np.where(valid, t, 0)   # masked targets may be anything; index a safe class

    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, t[..., None], axis=-1)[..., 0]   # (...)
    if valid is not None:
        picked = np.where(valid, picked, 0)

    d = np.exp(logp)                                                    # softmax
    if eps:
        d -= logits.dtype.type(eps / C)                                 # − q_n: its uniform part
    np.put_along_axis(d, t[..., None], np.take_along_axis(d, t[..., None], axis=-1) - (1 - eps), axis=-1)
    if valid is not None:
        d = np.where(valid[..., None], d, logits.dtype.type(0))
    if w is None:
        loss = -float(np.sum(picked, dtype=np.float64)) / n
        if eps:
            spread = logp.mean(axis=-1, dtype=np.float64)
            if valid is not None:
                spread = np.where(valid, spread, 0.0)
            loss = (1 - eps) * loss - eps * float(np.sum(spread)) / n
        d *= logits.dtype.type(1.0 / n)
        return loss, d
    wy = w[t]                                                           # (...) float64
    if valid is not None:
        wy = np.where(valid, wy, 0.0)
    total = float(np.sum(wy))
    loss = -float(np.sum(wy * picked, dtype=np.float64)) / total
    d *= (wy / total).astype(logits.dtype)[..., None]
    return loss, d


def check_class_weights(weight, num_classes: int, where: str, name: str = "class_weights") -> np.ndarray:
    """``weight`` as a float64 (C,) array of positive finite numbers, one per class.

    Shapes:
        weight: C numbers  ->  (C,) float64
    """
    try:
        w = np.asarray(weight, dtype=np.float64)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != (num_classes,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"{where}: {name} must be {num_classes} positive numbers (one per class), "
                         f"got {weight!r}")
    return w


# -- regression --------------------------------------------------------------------

def _residual(pred, target, mask, where):
    """Shared front half of the regression losses: e = pred − target on valid elements."""
    pred = _float_input(pred, "pred", where)
    target = _real_target(target, pred.shape, "target", where, pred.dtype)
    valid = _valid_mask(mask, pred.shape, where)
    n = _count(valid, pred.size, where, "mask")
    _check_finite_targets(target, valid, where, "target")
    e = pred - target
    if valid is not None:
        e = np.where(valid, e, pred.dtype.type(0))   # dropped items: no loss, no gradient
    return e, n


def mse(pred: np.ndarray, target: np.ndarray, mask=None) -> tuple[float, np.ndarray]:
    """Mean squared error over the valid elements and its gradient.

    Shapes:
        pred, target: (...) the same shape; mask: (...) or a leading part of it
        returns: (loss: float, dpred (...) in pred's dtype)
    """
    e, n = _residual(pred, target, mask, "mse")
    loss = float(np.sum(np.square(e), dtype=np.float64)) / n
    return loss, e * e.dtype.type(2.0 / n)


def mae(pred: np.ndarray, target: np.ndarray, mask=None) -> tuple[float, np.ndarray]:
    """Mean absolute error over the valid elements and its (sub)gradient, 0 at a tie.

    Shapes:
        pred, target: (...) the same shape; mask: (...) or a leading part of it
        returns: (loss: float, dpred (...) in pred's dtype)
    """
    e, n = _residual(pred, target, mask, "mae")
    loss = float(np.sum(np.abs(e), dtype=np.float64)) / n
    return loss, np.sign(e) * e.dtype.type(1.0 / n)


def huber(pred: np.ndarray, target: np.ndarray, delta: float = 1.0,
          mask=None) -> tuple[float, np.ndarray]:
    """Mean Huber loss (quadratic within ``delta``, linear beyond) and its gradient.

    Shapes:
        pred, target: (...) the same shape; mask: (...) or a leading part of it
        returns: (loss: float, dpred (...) in pred's dtype)
    """
    where = "huber"
    delta = check_number(delta, "delta", where, 0.0, low_open=True)
    e, n = _residual(pred, target, mask, where)
    dt = e.dtype.type
    a = np.abs(e)
    quad = a <= delta
    per = np.where(quad, dt(0.5) * e * e, dt(delta) * (a - dt(0.5 * delta)))
    loss = float(np.sum(per, dtype=np.float64)) / n
    return loss, np.clip(e, -dt(delta), dt(delta)) * dt(1.0 / n)


def quantile_loss(pred: np.ndarray, target: np.ndarray, quantiles,
                  mask=None) -> tuple[float, np.ndarray]:
    """Mean pinball loss for the quantile forecasts in ``pred``'s last axis.

    Shapes:
        pred:      (..., Q) one forecast per quantile
        target:    (...)
        quantiles: Q numbers in (0, 1)
        mask:      (...) or a leading part of it
        returns:   (loss: float, dpred (..., Q) in pred's dtype)
    """
    where = "quantile_loss"
    pred = _float_input(pred, "pred", where)
    try:
        q = np.asarray(quantiles, dtype=np.float64)
    except (TypeError, ValueError):
        q = None
    if q is None or q.ndim != 1 or q.size == 0:
        raise ValueError(f"{where}: quantiles must be a non-empty list of numbers, got {quantiles!r}")
    if not np.all((q > 0) & (q < 1)):
        raise ValueError(f"{where}: every quantile must lie strictly between 0 and 1, got {q.tolist()}")
    if pred.ndim < 1 or pred.shape[-1] != q.size:
        raise ValueError(f"{where}: expected pred of shape (..., Q) with Q = {q.size} "
                         f"(one per quantile), got {pred.shape}")
    target = _real_target(target, pred.shape[:-1], "target", where, pred.dtype)
    valid = _valid_mask(mask, pred.shape, where)
    n = _count(valid, pred.size, where, "mask")
    _check_finite_targets(target, None if valid is None else valid[..., 0], where, "target")

    dt = pred.dtype.type
    qd = q.astype(pred.dtype)
    u = target[..., None] - pred                                        # (..., Q)
    if valid is not None:
        u = np.where(valid, u, dt(0))
    per = np.maximum(qd * u, (qd - dt(1)) * u)
    loss = float(np.sum(per, dtype=np.float64)) / n
    # dρ/dpred = −dρ/du; at a tie take the midpoint of the subgradient interval
    d = np.where(u > 0, -qd, np.where(u < 0, dt(1) - qd, dt(0.5) - qd))
    if valid is not None:
        d = np.where(valid, d, dt(0))
    return loss, (d * dt(1.0 / n)).astype(pred.dtype, copy=False)
