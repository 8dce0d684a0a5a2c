r"""A seasonal ARIMA(p, d, q)(P, D, Q)_m in NumPy, d + D ≤ 1.

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

ARMA on z, with autoregressive lags 1 … p and m, 2m … Pm and moving-average lags 1 … q
and m (Q = 1; seasonal and non-seasonal lags enter additively, the product terms of the
multiplicative form are left out):

    z_t = c + Σ_{i=1}^{p} φ_i z_{t−i} + Σ_{j=1}^{P} Φ_j z_{t−jm}
            + Σ_{i=1}^{q} θ_i e_{t−i} + Θ e_{t−m}[Q = 1] + e_t

fitted by the Hannan–Rissanen regressions (Hannan & Rissanen 1982): a long
autoregression of order k = min(⌊log² n_z⌋, n_z/4) (at least m + 1 with a seasonal MA
term) gives residuals ê_t, and the model is then ordinary least squares of z_t on its
lags and the lags of ê; the kept model's coefficients are then regressed twice more on the
lags of its own filtered residuals e_t (below), each round kept when it lowers their sum
of squares (Hannan & Kavalieris' refinement). The orders p ∈ {0 … 3}, q ∈ {0 … 2}, P ∈ {0, 1}, Q ∈ {0, 1}
(the seasonal ones only with a period and three seasons of data; the MA ones only when
30 rows are left past the long autoregression and the MA lags) and the constant c (a mean, or a drift after
differencing) are chosen by AICc on the same rows for every candidate:

    AICc = n·log(SSE/n) + 2k + 2k(k+1)/(n − k − 1),   k = p + q + P + Q + [c] + 1

A candidate whose autoregressive polynomial 1 − Σ φ_l B^l has a root on or inside the
unit circle (a forecast that grows without bound) or whose moving-average polynomial
1 + Σ θ_l B^l does (residuals that never forget their start) is not a candidate.

A fit reads the last 20,000 rows of a longer series (its orders and coefficients are
settled long before that; forecasts still filter the whole series). Forecasts read only y[:o]. The residuals are the model's own one-step errors, filtered
from the first row with e = 0 before the longest AR lag,

    e_t = z_t − c − Σ_l φ_l z_{t−l} − Σ_l θ_l e_{t−l},

the recursion then rolls forward with future e = 0 and undoes the differencing:
ŷ_{o+h} = ŷ_{o+h−1} + ẑ_{o+h} (d = 1) or ŷ_{o+h−m} + ẑ_{o+h} (D = 1), where ŷ of a row
before o is the observed y.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_arima", "arima_forecast", "kpss_statistic"]

KPSS_5PC = 0.463          # level stationarity, 5 % (Kwiatkowski et al. 1992, table 1)
SEASONAL_DIFF_STRENGTH = 0.64
MA_MIN_ROWS = 30          # rows the long autoregression must leave for MA candidates
ROOT_LIMIT = 0.995        # largest |1/root| of a kept AR or MA polynomial
FIT_ROWS = 20_000         # the last rows a fit reads (140,000 quarter-hours took 2 s a fit, 20,000 take 0.3)


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


def _lags(n: int, N: int, m: int) -> list[int]:
    """Lags 1 … n, then m, 2m … Nm."""
    return list(range(1, n + 1)) + [j * m for j in range(1, N + 1)]


def _shifted(v: np.ndarray, lags: list[int], start: int, stop: int) -> list[np.ndarray]:
    """Rows t = start … stop−1 of v_{t−l} for every l in lags."""
    return [v[start - l:stop - l] for l in lags]


def _design(z: np.ndarray, e: np.ndarray | None, ar: list[int], ma: list[int], const: bool,
            start: int) -> np.ndarray:
    """Rows t = start … len(z)−1 of [1, z_{t−l} for l in ar, e_{t−l} for l in ma]."""
    n = len(z)
    cols = [np.ones(n - start)] if const else []
    cols += _shifted(z, ar, start, n) + (_shifted(e, ma, start, n) if ma else [])
    return np.stack(cols, axis=1) if cols else np.zeros((n - start, 0))


def _radius(lags: list[int], coef: np.ndarray) -> float:
    """max |λ| over the roots λ of x^L − Σ_l a_l x^{L−l}: the inverse roots of 1 − Σ a_l B^l."""
    if not lags:
        return 0.0
    L = max(lags)
    poly = np.zeros(L + 1)
    poly[0] = 1.0
    for l, a in zip(lags, coef):
        poly[l] -= a
    return float(np.max(np.abs(np.roots(poly)))) if np.any(poly[1:]) else 0.0


def _residuals(z: np.ndarray, ar: list[int], ma: list[int], c: float, phi: np.ndarray,
               theta: np.ndarray) -> np.ndarray:
    """The one-step errors e_t of the module docstring's recursion (0 before the longest AR lag)."""
    n, L = len(z), max(ar or [0])
    a = np.zeros(n)
    a[L:] = z[L:] - c - sum(f * z[L - l:n - l] for l, f in zip(ar, phi))
    if not ma:
        a[:L] = 0.0
        return a
    e = np.zeros(n)
    for t in range(L, n):
        v = a[t]
        for l, th in zip(ma, theta):
            if t - l >= 0:
                v -= th * e[t - l]
        e[t] = v
    return e


def _split(coef: np.ndarray, ar: list[int], const: bool):
    c0 = int(const)
    return (coef[0] if const else 0.0), coef[c0:c0 + len(ar)], coef[c0 + len(ar):]


def _stable(coef: np.ndarray, ar: list[int], ma: list[int], const: bool) -> bool:
    _, phi, theta = _split(coef, ar, const)
    return _radius(ar, phi) < ROOT_LIMIT and _radius(ma, -theta) < ROOT_LIMIT


def _refine(z: np.ndarray, ar: list[int], ma: list[int], const: bool, coef: np.ndarray,
            rounds: int = 2) -> np.ndarray:
    """Regress z on its lags and the lags of the model's own filtered residuals, ``rounds``
    times; a round is kept only when it lowers the sum of squared residuals and stays stable."""
    s = max(ar + ma)
    sse = None
    for _ in range(rounds):
        e = _residuals(z, ar, ma, *_split(coef, ar, const))
        if sse is None:
            sse = float(np.dot(e[s:], e[s:]))
        new, *_ = np.linalg.lstsq(_design(z, e, ar, ma, const, s), z[s:], rcond=None)
        if not _stable(new, ar, ma, const):
            break
        e2 = _residuals(z, ar, ma, *_split(new, ar, const))
        sse2 = float(np.dot(e2[s:], e2[s:]))
        if sse2 >= sse:
            break
        coef, sse = new, sse2
    return coef


def fit_arima(y, m: int | None = None, strength: float = 0.0) -> dict:
    """Orders and coefficients of the module docstring's model for the series ``y``;
    ``strength`` is its seasonal strength for period ``m`` (the seasonal differencing rule).

    Returns {"d", "D", "m", "lags", "ma", "const", "coef"} (JSON-able; coef is
    [c if const] + φ for lags + θ for ma)."""
    y = np.asarray(y, dtype=np.float64).ravel()[-FIT_ROWS:]
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
    seasonal = bool(m and nz >= 3 * m + 4)
    # the long autoregression's residuals (Hannan–Rissanen's first regression)
    k = min(int(np.log(max(nz, 2)) ** 2), nz // 4)
    if seasonal:
        k = max(k, m + 1) if m + 1 <= nz // 4 else k
    ehat = None
    if k >= 1 and nz - k >= MA_MIN_ROWS + 2:
        X = _design(z, None, list(range(1, k + 1)), [], True, k)
        coef, *_ = np.linalg.lstsq(X, z[k:], rcond=None)
        ehat = np.zeros(nz)
        ehat[k:] = z[k:] - X @ coef
    cands = []
    for P in ((0, 1) if seasonal else (0,)):
        for Q in ((0, 1) if seasonal and ehat is not None and k > m else (0,)):
            for p in range(0, 4):
                for q in (range(0, 3) if ehat is not None else (0,)):
                    for const in (True, False):
                        cands.append((_lags(p, P, m), _lags(q, Q, m), const))

    def first_row(c):
        ar, ma, _ = c
        return max(max(ar or [0]), (k + max(ma)) if ma else 0)

    start = max(first_row(c) for c in cands)
    if any(c[1] for c in cands) and nz - start < MA_MIN_ROWS:   # too short for the MA terms
        cands = [c for c in cands if not c[1]]
        start = max(first_row(c) for c in cands)
    while start > 0 and nz - start < 6:           # a short series: drop the longest candidates
        cands = [c for c in cands if first_row(c) < start]
        start = max(first_row(c) for c in cands)
    rows = nz - start
    scored = []
    target = z[start:]
    for ar, ma, const in cands:
        X = _design(z, ehat, ar, ma, const, start)
        npar = X.shape[1] + 1
        if rows - npar - 1 <= 0:
            continue
        if X.shape[1]:
            coef, *_ = np.linalg.lstsq(X, target, rcond=None)
            sse = float(np.sum((target - X @ coef) ** 2))
        else:
            coef, sse = np.zeros(0), float(np.dot(target, target))
        sse = max(sse, 1e-12 * max(float(np.dot(target, target)), 1e-300))
        ic = rows * np.log(sse / rows) + 2 * npar + 2 * npar * (npar + 1) / (rows - npar - 1)
        scored.append((ic, len(scored), (ar, ma, const, coef)))
    # the lowest AICc among the stable fits (the roots are found in that order, for the first few)
    best = next((c for _, _, c in sorted(scored) if _stable(c[3], c[0], c[1], c[2])), None)
    if best is None:                                # too short for any regression: z's mean
        best = ([], [], True, np.array([float(z.mean()) if nz else 0.0]))
    ar, ma, const, coef = best
    # refit the kept orders on every row they can use, when that keeps them stationary and invertible
    s = max(max(ar or [0]), (k + max(ma)) if ma else 0)
    if nz - s > len(coef) and (ar or ma or const):
        refit, *_ = np.linalg.lstsq(_design(z, ehat, ar, ma, const, s), z[s:], rcond=None)
        if _stable(refit, ar, ma, const):
            coef = refit
    if ma:                                          # Hannan–Rissanen's third regression, twice
        coef = _refine(z, ar, ma, const, coef)
    return {"d": d, "D": D, "m": m, "lags": [int(v) for v in ar], "ma": [int(v) for v in ma],
            "const": bool(const), "coef": [float(v) for v in coef]}


def arima_forecast(state: dict, y, origins, H: int) -> np.ndarray:
    """Forecasts of rows o … o+H−1 from y[:o] for every origin o (module docstring).

    Shapes:
        y (N,), origins (n,) with 1 <= o <= N  ->  (n, H)
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    origins = np.asarray(origins, dtype=int)
    d, D, m, ar = state["d"], state["D"], state["m"], state["lags"]
    ma = state.get("ma", [])
    const, coef = state["const"], np.asarray(state["coef"], dtype=np.float64)
    c, phi, theta = _split(coef, ar, const)
    back = d + D * m                                 # rows of y the differencing reads
    L = max(ar + ma + [0])
    n = len(origins)
    z = _difference(y, d, D, m)                      # z[t − back] belongs to row t
    e = _residuals(z, ar, ma, c, phi, theta) if ma else None
    # the last L values of z (and e) before each origin (z padded with its first value where short)
    zt = np.empty((n, L + H))
    et = np.zeros((n, L + H))
    for i, o in enumerate(origins):
        upto = max(o - back, 0)
        hist = z[:upto]
        if L:
            tail = hist[-L:]
            pad = tail[0] if len(tail) else (z[0] if len(z) else 0.0)
            zt[i, :L] = np.r_[np.full(L - len(tail), pad), tail]
            if e is not None:
                etail = e[:upto][-L:]
                et[i, L - len(etail):L] = etail
    for h in range(H):
        val = np.full(n, c)
        for l, f in zip(ar, phi):
            val += f * zt[:, L + h - l]
        for l, th in zip(ma, theta):
            val += th * et[:, L + h - l]
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
