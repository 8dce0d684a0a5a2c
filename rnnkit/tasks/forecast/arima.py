r"""A least-squares seasonal ARIMA(p, d, 0)(P, D, 0)_m in NumPy, d + D ≤ 1.

Differencing (at most one, so a forecast never extrapolates a double trend):

    z_t = y_t                  (d = D = 0)
    z_t = y_t − y_{t−1}        (d = 1)
    z_t = y_t − y_{t−m}        (D = 1)

D = 1 when the series has a period m and its seasonal strength (on the training rows,
:func:`rnnkit.tasks.forecast.season.seasonal_strength`) is at least 0.64, the rule of
Wang, Smith & Hyndman (2006) that ``nsdiffs`` uses; otherwise d = 1 when the KPSS
statistic of level stationarity (Kwiatkowski et al. 1992)

    η = Σ_t S_t² / (n² σ̂²_ℓ),   S_t = Σ_{s≤t} (y_s − ȳ),
    σ̂²_ℓ = γ_0 + 2 Σ_{k=1}^{ℓ} (1 − k/(ℓ+1)) γ_k,   ℓ = ⌊3√n / 13⌋

exceeds its 5 % critical value 0.463; else none.

Autoregression on z, with lags 1 … p and m, 2m … Pm (the seasonal and non-seasonal lags
enter additively; the product terms of the multiplicative form are left out):

    z_t = c + Σ_{i=1}^{p} φ_i z_{t−i} + Σ_{j=1}^{P} Φ_j z_{t−jm} + e_t

fitted by ordinary least squares. The orders p ∈ {0 … 3}, P ∈ {0, 1} (P = 1 only with a
period and three seasons of data) and the constant c (a mean, or a drift after
differencing) are chosen by AICc on the same rows for every candidate:

    AICc = n·log(SSE/n) + 2k + 2k(k+1)/(n − k − 1),   k = p + P + [c] + 1

Forecasts roll the regression forward from the last rows before each origin (reading only
y[:o]) and undo the differencing: ŷ_{o+h} = ŷ_{o+h−1} + ẑ_{o+h} (d = 1) or
ŷ_{o+h−m} + ẑ_{o+h} (D = 1), where ŷ of a row before o is the observed y.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_arima", "arima_forecast", "kpss_statistic"]

KPSS_5PC = 0.463          # level stationarity, 5 % (Kwiatkowski et al. 1992, table 1)
SEASONAL_DIFF_STRENGTH = 0.64


def kpss_statistic(y) -> float:
    """The KPSS level-stationarity statistic η (module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    e = y - y.mean()
    s = np.cumsum(e)
    lags = int(3 * np.sqrt(n) / 13)
    var = float(np.dot(e, e)) / n
    for k in range(1, lags + 1):
        var += 2 * (1 - k / (lags + 1)) * float(np.dot(e[k:], e[:-k])) / n
    if var <= 0:
        return 0.0
    return float(np.dot(s, s) / (n * n * var))


def _difference(y: np.ndarray, d: int, D: int, m: int) -> np.ndarray:
    if d:
        return y[1:] - y[:-1]
    if D:
        return y[m:] - y[:-m]
    return y


def _lags(p: int, P: int, m: int) -> list[int]:
    return list(range(1, p + 1)) + [j * m for j in range(1, P + 1)]


def _design(z: np.ndarray, lags: list[int], const: bool, start: int) -> np.ndarray:
    """Rows t = start … len(z)−1 of [1, z_{t−l} for l in lags]."""
    cols = [np.ones(len(z) - start)] if const else []
    cols += [z[start - l:len(z) - l] for l in lags]
    return np.stack(cols, axis=1) if cols else np.zeros((len(z) - start, 0))


def fit_arima(y, m: int | None = None, strength: float = 0.0) -> dict:
    """Orders and coefficients of the module docstring's model for the series ``y``;
    ``strength`` is its seasonal strength for period ``m`` (the seasonal differencing rule).

    Returns {"d", "D", "m", "lags", "const", "coef"} (JSON-able)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    n = len(y)
    m = int(m) if m and m > 1 and n >= 2 * m + 5 else 0     # classical.seasonal_rows("arima", m)
    if m and strength >= SEASONAL_DIFF_STRENGTH:
        d, D = 0, 1
    elif n >= 8 and kpss_statistic(y) > KPSS_5PC:
        d, D = 1, 0
    else:
        d, D = 0, 0
    z = _difference(y, d, D, m)
    nz = len(z)
    cands = []
    for P in ((0, 1) if m and nz >= 3 * m + 4 else (0,)):
        for p in range(0, 4):
            for const in (True, False):
                cands.append((p, P, const))
    start = max(max(_lags(p, P, m) or [0]) for p, P, _ in cands)
    while start > 0 and nz - start < 6:           # a short series: drop the longest candidates
        cands = [c for c in cands if max(_lags(c[0], c[1], m) or [0]) < start]
        start = max(max(_lags(p, P, m) or [0]) for p, P, _ in cands)
    rows = nz - start
    best, best_ic = None, np.inf
    target = z[start:]
    for p, P, const in cands:
        lags = _lags(p, P, m)
        X = _design(z, lags, const, start)
        k = X.shape[1] + 1
        if X.shape[1]:
            coef, *_ = np.linalg.lstsq(X, target, rcond=None)
            sse = float(np.sum((target - X @ coef) ** 2))
        else:
            coef, sse = np.zeros(0), float(np.dot(target, target))
        if rows - k - 1 <= 0:
            continue
        sse = max(sse, 1e-12 * max(float(np.dot(target, target)), 1e-300))
        ic = rows * np.log(sse / rows) + 2 * k + 2 * k * (k + 1) / (rows - k - 1)
        if ic < best_ic:
            best_ic, best = ic, (lags, const, coef)
    if best is None:                                # too short for any regression: z's mean
        best = ([], True, np.array([float(z.mean()) if nz else 0.0]))
    lags, const, coef = best
    # refit the kept orders on every row they can use
    s = max(lags or [0])
    if nz - s > len(coef):
        X = _design(z, lags, const, s)
        coef, *_ = np.linalg.lstsq(X, z[s:], rcond=None)
    return {"d": d, "D": D, "m": m, "lags": [int(v) for v in lags], "const": bool(const),
            "coef": [float(v) for v in coef]}


def arima_forecast(state: dict, y, origins, H: int) -> np.ndarray:
    """Forecasts of rows o … o+H−1 from y[:o] for every origin o (module docstring).

    Shapes:
        y (N,), origins (n,) with 1 <= o <= N  ->  (n, H)
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    origins = np.asarray(origins, dtype=int)
    d, D, m, lags = state["d"], state["D"], state["m"], state["lags"]
    const, coef = state["const"], np.asarray(state["coef"], dtype=np.float64)
    c = coef[0] if const else 0.0
    phi = coef[1:] if const else coef
    back = d + D * m                                 # rows of y the differencing reads
    L = max(lags or [0])
    n = len(origins)
    z = _difference(y, d, D, m)                      # z[t − back] belongs to row t
    # the last L values of z before each origin (padded with z's first value where short)
    zt = np.empty((n, L + H))
    for i, o in enumerate(origins):
        hist = z[:max(o - back, 0)]
        if L:
            tail = hist[-L:]
            pad = tail[0] if len(tail) else (z[0] if len(z) else 0.0)
            zt[i, :L] = np.r_[np.full(L - len(tail), pad), tail]
    for h in range(H):
        val = np.full(n, c)
        for l, f in zip(lags, phi):
            val += f * zt[:, L + h - l]
        zt[:, L + h] = val
    zhat = zt[:, L:]                                 # (n, H)
    if d:
        return y[origins - 1][:, None] + np.cumsum(zhat, axis=1)
    if D:
        out = np.empty((n, H))
        for h in range(H):
            prev = out[:, h - m] if h >= m else y[np.maximum(origins + h - m, 0)]
            out[:, h] = prev + zhat[:, h]
        return out
    return zhat
