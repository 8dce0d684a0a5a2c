r"""Classical forecasts in NumPy: the guard and the partners of the network in ``strategy="auto"``.

Each method is fitted on a training part (:meth:`Classical.fit`) and then forecasts from
any origin o of a longer series with those parameters, reading only ``y[:o]``
(:meth:`Classical.forecast`), so rolling-origin forecasts over a validation part are one
pass of the filter and never see the rows they forecast.

    naive           ŷ_{o+h} = y_{o−1}
    seasonal naive  ŷ_{o+h} = y_{o+h−m(⌊h/m⌋+1)}                     (needs a period m)
    ets             additive error, trend none / additive / damped, season none / additive
                    (Hyndman et al. 2008, error-correction form), state (ℓ, b, s):
                        ŷ_t = ℓ + φb + s_{t−m},  e = y_t − ŷ_t
                        ℓ ← ℓ + φb + αe,   b ← φb + βe,   s_t = s_{t−m} + γe
                        ŷ_{o+h} = ℓ_o + (φ + … + φ^{h+1}) b_o + s_{o+h−m(⌊h/m⌋+1)}
                    (α, β, γ, φ) on a grid, all at once; the trend and season kinds by
                    AICc = n·log(SSE/n) + 2k·n/(n − k − 1) (k: smoothing parameters and
                    initial states). "ets" fits a positive series on levels and on logs
                    (forecasting exp(·), the median, for series whose changes grow with
                    their level) and keeps the lower AICc, the log model's counted on the
                    scale of y: AICc_y = AICc_log + 2 Σ_t log y_t (the Jacobian of the
                    change of variable); "ets_log" is the log model alone.
    theta           the Theta method (Hyndman & Billah 2003): simple exponential smoothing
                    of the seasonally adjusted series plus half its linear-regression slope,
                        ŷ_{o+h} = ℓ_o + (b/2)(h + 1/α − (1 − α)^{o}/α − 1) (then reseasonalised)
                    seasonally adjusted by classical decomposition (multiplicative for a
                    positive series) when the lag-m autocorrelation is significant at 90 %
                    or the seasonal strength is real (:mod:`rnnkit.tasks.forecast.season`).
    arima           ARIMA(p, d, q)(P, D, Q)_m, d + D ≤ 1, by the Hannan–Rissanen regressions,
                    orders by AICc, stationary and invertible
                    (:mod:`rnnkit.tasks.forecast.arima`).

The default forecast is the mean of ets, theta and arima (M4's "comb" benchmark idea:
the mean of a few different methods is more accurate than the methods alone; Makridakis,
Spiliotis & Assimakopoulos 2020), joined by seasonal naive when the series has a period
(one kept only when its season is real, :mod:`rnnkit.tasks.forecast.season`): a member
that copies the last season exactly, where the smoothed seasons of the others lag
behind; :mod:`rnnkit.tasks.forecast.combine` chooses.

All are univariate: a multivariate target is forecast column by column.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Classical", "METHODS", "classical_methods", "seasonal_rows"]

METHODS = ("naive", "seasonal_naive", "ets", "ets_log", "theta", "arima")
#: the methods whose equal-weight mean is the default forecast (seasonal naive only with a
#: period: those of :func:`classical_methods`)
COMB = ("ets", "theta", "arima", "seasonal_naive")

_ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.99])
_BETA_FRACTIONS = (0.02, 0.1, 0.3)          # β = fraction · α keeps the filter stable
_PHIS = (0.8, 0.9, 0.98, 1.0)
_GAMMA_FRACTIONS = (0.0, 0.05, 0.15, 0.4)   # γ = fraction · (1 − α)


def classical_methods(y_train: np.ndarray, period: int | None) -> list[str]:
    """The methods that apply to a training part: seasonal naive needs a period with a
    full season of data (``ets`` itself chooses levels or logs for a positive series)."""
    y = np.asarray(y_train, dtype=np.float64)
    out = ["naive", "ets", "theta", "arima"]
    if period and len(y) > period:
        out.insert(1, "seasonal_naive")
    return out


def seasonal_rows(method: str, period: int | None) -> int | None:
    """The fewest rows on which ``method`` fits a season of ``period`` (None: it never
    does, or no period): ets 2m + 2 (initial states from two seasons), theta 2m + 1 (a
    centred moving average of a full season on both sides), arima 2m + 5 (seasonal
    differencing and lags), seasonal naive m + 1."""
    if not period or period < 2:
        return None
    m = int(period)
    return {"ets": 2 * m + 2, "ets_log": 2 * m + 2, "theta": 2 * m + 1, "arima": 2 * m + 5,
            "seasonal_naive": m + 1}.get(method)


def _ets_grid(seasonal: bool):
    """Rows (α, β, φ, γ, trend kind 0/1/2) of the grid; kind 0 none, 1 additive, 2 damped."""
    rows = []
    for a in _ALPHAS:
        trends = [(0.0, 1.0, 0)] + [(f * a, phi, 1 if phi == 1.0 else 2) for f in _BETA_FRACTIONS for phi in _PHIS]
        for b, phi, kind in trends:
            for g in (_GAMMA_FRACTIONS if seasonal else (0.0,)):
                rows.append((a, b, phi, g * (1 - a), kind))
    return np.array(rows)


def _ets_init(y: np.ndarray, m: int):
    """Initial level, trend and seasonal states from the first seasons (or first rows)."""
    if m > 1:
        l0 = y[:m].mean()
        b0 = (y[m:2 * m].mean() - l0) / m if len(y) >= 2 * m else 0.0
        s0 = y[:m] - (l0 + (np.arange(m) - (m - 1) / 2.0) * b0)
        return l0 - (m - 1) / 2.0 * b0 - b0, b0, s0 - s0.mean()
    k = min(len(y) - 1, 4)
    b0 = (y[k] - y[0]) / k if k > 0 else 0.0
    return y[0] - b0, b0, np.zeros(1)


def _ets_filter(y: np.ndarray, grid: np.ndarray, m: int, init, upto: int, origins=(), H: int = 0):
    """Run every grid row over y[:upto]; SSE (G,) and, for each origin, the H forecasts (n, G, H)."""
    a, b, phi, g, kind = grid.T
    G = len(grid)
    l0, b0, s0 = init
    lev = np.where(kind == 0, l0 + b0, l0)          # no trend: the level the first rows suggest
    tr = np.where(kind == 0, 0.0, b0)
    sea = np.tile(s0, (G, 1)) if m > 1 else np.zeros((G, 1))
    sse = np.zeros(G)
    want = {int(o): i for i, o in enumerate(origins)}
    out = np.zeros((len(want), G, H))
    steps = np.arange(1, H + 1)
    damp = np.cumsum(phi[:, None] ** steps[None, :], axis=1)                      # (G, H)
    ms = max(m, 1)
    for t in range(upto + 1):
        if t in want:
            idx = (t + np.arange(H)) % ms
            out[want[t]] = lev[:, None] + damp * tr[:, None] + sea[:, idx]
        if t == upto:
            break
        j = t % ms
        pred = lev + phi * tr + sea[:, j]
        e = y[t] - pred
        sse += e * e
        lev = lev + phi * tr + a * e
        tr = phi * tr + b * e
        if m > 1:
            sea[:, j] += g * e
    return sse, out


class Classical:
    """One classical method (module docstring) for one series column.

    ``Classical(method, period).fit(y_train)``, then ``forecast(y, origins, H)``.
    """

    def __init__(self, method: str, period: int | None = None):
        if method not in METHODS:
            raise ValueError(f"Classical: method must be one of {METHODS}, got {method!r}")
        self.method, self.period = method, period if period and period > 1 else None
        self.state = {}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, y) -> "Classical":
        y = np.asarray(y, dtype=np.float64).ravel()
        m = self.period if self.period and len(y) > self.period else None
        if self.method == "ets_log":
            self.state = self._fit_ets(np.log(y), m)
        elif self.method == "ets":
            self.state = self._fit_ets(y, m)
            if np.all(y > 0) and np.ptp(np.log(y)) > 0:
                logs = self._fit_ets(np.log(y), m)
                if logs["aicc"] + 2 * float(np.sum(np.log(y))) < self.state["aicc"]:
                    self.state = {**logs, "log": True}
        elif self.method == "arima":
            from rnnkit.tasks.forecast.arima import fit_arima
            from rnnkit.tasks.forecast.season import seasonal_strength

            self.state = fit_arima(y, m, seasonal_strength(y, m) if m else 0.0)
        elif self.method == "theta":
            self.state = self._fit_theta(y, m)
        else:
            self.state = {"m": m}
        return self

    @staticmethod
    def _fit_ets(y: np.ndarray, m: int | None) -> dict:
        n = len(y)
        seasonal = bool(m and n >= seasonal_rows("ets", m))
        mm = m if seasonal else 1
        grid = _ets_grid(seasonal)
        init = _ets_init(y, mm)
        sse, _ = _ets_filter(y, grid, mm, init, n)
        best, best_ic = 0, np.inf
        for kind, k_trend in ((0, 0), (1, 2), (2, 3)):
            for seas in ((False, True) if seasonal else (False,)):
                rows = np.flatnonzero((grid[:, 4] == kind) & ((grid[:, 3] > 0) == seas if seasonal else True))
                if not len(rows):
                    continue
                r = rows[np.argmin(sse[rows])]
                k = 2 + k_trend + (mm if seas else 0)
                s = max(sse[r], 1e-12 * n)
                ic = n * np.log(s / n) + (2 * k * n / (n - k - 1) if n - k - 1 > 0 else np.inf)
                if ic < best_ic:
                    best, best_ic = int(r), ic
        return {"m": mm, "grid": [float(v) for v in grid[best]], "init": [float(init[0]), float(init[1])],
                "season0": [float(v) for v in init[2]], "aicc": float(best_ic), "log": False}

    @staticmethod
    def _seasonal_index(y: np.ndarray, m: int | None):
        """Classical decomposition's seasonal indices (m,) and whether they multiply, or None."""
        n = len(y)
        if not m or n < seasonal_rows("theta", m):
            return None
        x = y - y.mean()
        r = np.array([np.dot(x[k:], x[:n - k]) for k in range(m + 1)]) / max(np.dot(x, x), 1e-300)
        if abs(r[m]) <= 1.645 * np.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / n):
            from rnnkit.tasks.forecast.season import MIN_STRENGTH, seasonal_strength

            # a smooth cycle (e.g. a daily one in half-hours) has large r_1 … r_{m−1}, which widen
            # the test's band past r_m: the decomposition's seasonal strength decides then
            if seasonal_strength(y, m) < MIN_STRENGTH:
                return None
        w = np.ones(m + 1) if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5]
        trend = np.convolve(y, w / m, mode="valid")                           # centred moving average
        off = m // 2
        mult = bool(np.all(y > 0))
        ratio = y[off:off + len(trend)] / trend if mult else y[off:off + len(trend)] - trend
        idx = np.array([ratio[(j - off) % m::m].mean() for j in range(m)])
        idx = idx / idx.mean() if mult else idx - idx.mean()
        return [float(v) for v in idx], mult

    def _fit_theta(self, y: np.ndarray, m: int | None) -> dict:
        season = self._seasonal_index(y, m)
        sa = self._adjust(y, 0, season)
        n = len(sa)
        t = np.arange(n, dtype=np.float64)
        slope = float(np.polyfit(t, sa, 1)[0]) if n > 1 else 0.0
        grid = np.array([(a, 0.0, 1.0, 0.0, 0) for a in _ALPHAS])
        sse, _ = _ets_filter(sa, grid, 1, (sa[0], 0.0, np.zeros(1)), n)
        return {"m": m, "season": season, "alpha": float(_ALPHAS[int(np.argmin(sse))]), "slope": slope}

    @staticmethod
    def _adjust(y: np.ndarray, start: int, season, inverse: bool = False) -> np.ndarray:
        """Seasonally adjust y (rows start, start+1, …), or reseasonalise with inverse=True."""
        if season is None:
            return y
        idx, mult = np.asarray(season[0]), season[1]
        s = idx[(start + np.arange(y.shape[-1])) % len(idx)]
        if mult:
            return y * s if inverse else y / s
        return y + s if inverse else y - s

    # -- forecasting -------------------------------------------------------------------------
    def forecast(self, y, origins, H: int) -> np.ndarray:
        """Forecasts of rows o … o+H−1 from y[:o] for every origin o.

        Shapes:
            y (N,), origins (n,) with 1 <= o <= N  ->  (n, H)
        """
        y = np.asarray(y, dtype=np.float64).ravel()
        origins = np.asarray(origins, dtype=int)
        st, h = self.state, np.arange(H)
        if self.method == "naive":
            return np.repeat(y[origins - 1][:, None], H, axis=1)
        if self.method == "seasonal_naive":
            m = st["m"]
            if not m:
                return np.repeat(y[origins - 1][:, None], H, axis=1)
            lag = origins[:, None] + h[None, :] - m * (h[None, :] // m + 1)
            return y[np.maximum(lag, 0)]
        if self.method == "arima":
            from rnnkit.tasks.forecast.arima import arima_forecast

            return arima_forecast(st, y, origins, H)
        if self.method in ("ets", "ets_log"):
            log = self.method == "ets_log" or st.get("log", False)
            z = np.log(np.maximum(y, 1e-300)) if log else y
            grid = np.asarray(st["grid"])[None]
            init = (st["init"][0], st["init"][1], np.asarray(st["season0"]))
            _, out = _ets_filter(z, grid, st["m"], init, int(origins.max()), origins, H)
            out = out[:, 0]
            return np.exp(np.clip(out, -700, 700)) if log else out
        # theta
        season, a = st["season"], st["alpha"]
        sa = self._adjust(y, 0, season)
        grid = np.array([[a, 0.0, 1.0, 0.0, 0]])
        _, lev = _ets_filter(sa, grid, 1, (sa[0], 0.0, np.zeros(1)), int(origins.max()), origins, 1)
        lev = lev[:, 0, 0]                                                                # (n,)
        drift = st["slope"] / 2 * (h[None, :] + 1 / a - (1 - a) ** origins[:, None] / a)  # (n, H)
        out = lev[:, None] + drift
        if season is not None:
            out = np.stack([self._adjust(row, o, season, inverse=True) for row, o in zip(out, origins)])
        return out

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"method": self.method, "period": self.period, "state": self.state}

    @classmethod
    def from_dict(cls, d: dict) -> "Classical":
        c = cls(d["method"], d.get("period"))
        c.state = dict(d["state"])
        return c
