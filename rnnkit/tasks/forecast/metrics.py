"""Forecast scores and the baselines: period inference, error metrics, seasonal naive.

Formulas in :mod:`rnnkit.tasks.forecast`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["infer_period", "forecast_metrics", "seasonal_naive"]


def infer_period(values, max_lag: int | None = None, threshold: float = 0.3) -> int | None:
    """The dominant seasonal period of a series by autocorrelation (module docstring).

    Shapes:
        values: (N,) numbers  ->  int period in [2, N/3], or None when no clear one
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    n = y.size
    if n < 8:
        return None
    t = np.arange(n, dtype=np.float64)
    y = y - np.polyval(np.polyfit(t, y, 1), t)                       # remove a linear trend
    denom = float(np.dot(y, y))
    if denom <= 0:
        return None
    K = n // 3 if max_lag is None else min(int(max_lag), n - 2)
    if K < 3:
        return None
    # all lags at once through the FFT (zero-padded: a linear, not circular, correlation)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, size)
    r = np.fft.irfft(f * np.conj(f), size)[: K + 2] / denom
    best, best_r = None, threshold
    for k in range(2, K + 1):
        if r[k] > r[k - 1] and r[k] >= r[k + 1] and r[k] > best_r:
            best, best_r = k, float(r[k])
    return best


def forecast_metrics(actual, forecast, scale=None) -> dict:
    """MAE, RMSE, MAPE (%), sMAPE (%) and, with ``scale``, MASE (module docstring).

    Shapes:
        actual, forecast: (..., n_targets) the same shape; scale: (n_targets,) or None
    """
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"forecast_metrics: actual {y.shape} and forecast {f.shape} differ in shape")
    e = y - f
    ae = np.abs(e)
    nz = y != 0
    den = np.abs(y) + np.abs(f)
    smape_terms = np.where(den > 0, 2.0 * ae / np.where(den > 0, den, 1.0), 0.0)
    out = {
        "mae": float(ae.mean()),
        "rmse": float(np.sqrt((e * e).mean())),
        # undefined (None) when every actual value is 0
        "mape": float(100.0 * (ae[nz] / np.abs(y[nz])).mean()) if nz.any() else None,
        "smape": float(100.0 * smape_terms.mean()),
    }
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64)
        out["mase"] = float((ae / s).mean())
    return out


def seasonal_naive(values: np.ndarray, origin: int, horizon: int, m: int) -> np.ndarray:
    """ŷ_{o+h} = y_{o+h−m(⌊h/m⌋+1)}.  Shapes: values (N, T) -> (horizon, T)"""
    h = np.arange(horizon)
    return values[origin + h - m * (h // m + 1)]
