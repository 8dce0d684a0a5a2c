r"""Choosing the forecast on validation (the default mean of ETS, Theta, ARIMA and, with a
period, seasonal naive, with the network or replaced) and conformal prediction bands from
rolling-origin residuals.

Choice (:func:`choose_forecast`). The default is "comb", the equal-weight mean of the
classical ETS, Theta and ARIMA, and seasonal naive when the series has a period
(:data:`rnnkit.tasks.forecast.classical.COMB`, those of them among the forecasts): in the M4
competition such a mean of a few different methods beat each of them and most
learned forecasters (Makridakis, Spiliotis & Assimakopoulos 2020; Bates & Granger 1969).
On the rolling validation origins every candidate forecasts the same rows: comb,
comb + the network (their mean), the network alone, each classical method alone and,
with seasonal naive in comb, the mean of the others (ETS, Theta and ARIMA: a trending
seasonal series, whose copied last season lags behind the trend). Validation with few origins is noisy, so the default moves only for a clear gain:

    comb + rnn   kept when MASE(comb + rnn) < (1 − margin_rnn) · MASE(comb)
    any other c  kept when MASE(c) < (1 − margin) · MASE(what is kept so far)

(margin_rnn = 0.05, margin = 0.10: a candidate must forecast the held-out rows 5 or 10 %
better than the default to replace it).

Bands (:func:`conformal_offsets`), split conformal on the rolling validation origins
(Vovk et al. 2005; Stankeviciute et al. 2021 for multi-step series). For the chosen
forecast's residuals e_{o,h,j} = y − ŷ at the n validation origins, step h, target j:

    σ_{h,j}   = sqrt(mean_o e²_{o,h,j}), made non-decreasing in h
    u         = e / σ  pooled over origins and steps (target j apart)
    offset_q  = σ_{h,j} · Q_u(q')   with the finite-sample level
                q' = q·(n_u + 1)/n_u for q > 0.5 and 1 − (1 − q)(n_u + 1)/n_u below,
                clipped to [0, 1] (n_u pooled scores)

and the band at level q is ŷ + offset_q. With fewer than ``min_per_step`` origins there
are too few scores for their quantiles: neighbouring origins share H − 1 of their rows, so
n origins hold about ν = ⌈n / H⌉ independent ones. Then the spread grows like a random
walk's and the quantile is Student's t with ν degrees of freedom:

    σ_{h,j}   = s_j·sqrt(h + 1),   s_j² = mean_{o,h} e²_{o,h,j} / (h + 1)
    offset_q  = σ_{h,j} · t_ν(q)

For a target positive in every training row the scores are relative (:func:`band_scale`):
e / ŷ, and the offset at a forecast ŷ is ŷ · offset_q, so the band grows with the level.
A growing positive series (sales, passengers, traffic) has errors that grow with it:
absolute offsets from its earlier, lower origins made bands too narrow at the end.
ŷ enters as |ŷ|, at least half the target's smallest training value.

The scores are exchangeable only roughly (series drift, overlapping horizons), so
coverage is checked by backtests, not assumed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["choose_forecast", "blend", "conformal_offsets", "student_t_quantile", "relative_scales", "band_scale"]

MARGIN_RNN = 0.05
MARGIN = 0.10


def _normal_quantile(q: float) -> float:
    """Φ⁻¹(q) by bisection on erf (to 1e-12; no SciPy)."""
    from math import erf, sqrt

    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + erf(mid / sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def student_t_quantile(q: float, nu: int) -> float:
    """The q-quantile of Student's t with ``nu`` degrees of freedom: exact for ν = 1
    (Cauchy) and 2, else the Cornish–Fisher expansion in 1/ν (Abramowitz & Stegun 26.7.5;
    error < 1 % for ν ≥ 3 and 0.01 ≤ q ≤ 0.99)."""
    from math import pi, sqrt, tan

    if nu == 1:
        return tan(pi * (q - 0.5))
    if nu == 2:
        return (2 * q - 1) / sqrt(2 * q * (1 - q))
    z = _normal_quantile(q)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / nu + g2 / nu ** 2 + g3 / nu ** 3 + g4 / nu ** 4


def _mase(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> float:
    return float((np.abs(actual - forecast) / scale).mean())


def blend(weights: dict, forecasts: dict) -> np.ndarray:
    """Σ_k w_k · forecast_k over the names in ``weights``, summed in the names' sorted order:
    the same bits whatever the order of ``weights`` (a saved run's config.json sorts them)."""
    out = None
    for name in sorted(weights):
        w = weights[name]
        part = w * np.asarray(forecasts[name], dtype=np.float64)
        out = part if out is None else out + part
    return out


def choose_forecast(actual, singles: dict, scale, margin_rnn: float = MARGIN_RNN,
                    margin: float = MARGIN) -> tuple[dict, list]:
    """The default mean of the classical methods, moved only by a clear validation gain
    (module docstring).

    Shapes:
        actual (n, H, T); singles name -> (n, H, T) forecasts of the same origins (ets,
        theta and arima at least, seasonal_naive with a period: the mean of those of
        ``COMB`` present is the default; "rnn" optional); scale (T,)
        -> weights {name: w}, scores [{"forecast": "ets+theta+arima", "val_mase": float}, ...]
        (best first)
    """
    from rnnkit.tasks.forecast.classical import COMB

    actual = np.asarray(actual, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    comb = [k for k in COMB if k in singles]
    if not comb:
        raise ValueError(f"choose_forecast: singles must hold some of the classical methods {COMB}, "
                         f"got {list(singles)}")
    cands = [{k: 1.0 / len(comb) for k in comb}]
    if "rnn" in singles:
        cands.append({**{k: 1.0 / (len(comb) + 1) for k in comb}, "rnn": 1.0 / (len(comb) + 1)})
    cands += [{name: 1.0} for name in singles if [name] != comb]
    if "seasonal_naive" in comb and len(comb) > 1:      # e.g. a trend that a copied season lags behind
        rest = [k for k in comb if k != "seasonal_naive"]
        cands.append({k: 1.0 / len(rest) for k in rest})
    scores = [_mase(actual, blend(w, singles), scale) for w in cands]
    kept, kept_score = cands[0], scores[0]
    if "rnn" in singles and scores[1] < (1 - margin_rnn) * kept_score:
        kept, kept_score = cands[1], scores[1]
    rest = sorted(range(len(cands)), key=lambda i: (round(scores[i], 12), i))
    if scores[rest[0]] < (1 - margin) * kept_score:
        kept = cands[rest[0]]
    table = [{"forecast": "+".join(cands[i]), "val_mase": scores[i]} for i in rest]
    return kept, table


def relative_scales(train) -> list:
    """Per target column of ``train`` (n, T): half its smallest value when every value is
    positive (its conformal scores are relative: :func:`band_scale`), else None."""
    train = np.asarray(train, dtype=np.float64)
    return [0.5 * float(train[:, j].min()) if len(train) and train[:, j].min() > 0 else None
            for j in range(train.shape[1])]


def band_scale(point, min_scales) -> np.ndarray:
    """What each target's conformal scores are divided by at the forecast ``point``
    (..., T): |ŷ|, at least the target's ``min_scales`` entry, or 1 where that is None
    (absolute scores; also for every target when ``min_scales`` is None)."""
    p = np.abs(np.asarray(point, dtype=np.float64))
    out = np.ones_like(p)
    for j, s in enumerate(min_scales or ()):
        if s is not None:
            out[..., j] = np.maximum(p[..., j], s)
    return out


def conformal_offsets(resid, levels, min_per_step: int = 20) -> np.ndarray:
    """Offsets to add to a point forecast for each quantile level (module docstring).

    Shapes:
        resid (n, H, T) validation residuals y − ŷ; levels (Q,) in (0, 1)  ->  (H, T, Q)
    """
    e = np.asarray(resid, dtype=np.float64)
    n, H, T = e.shape
    steps = np.arange(1, H + 1, dtype=np.float64)[:, None]                   # (H, 1)
    if n < min_per_step:
        s2 = (e ** 2 / steps[None]).mean(axis=(0, 1))                        # (T,)
        sigma = np.sqrt(s2[None, :] * steps)                                 # (H, T)
        nu = max(1, -(-n // H))
        return sigma[:, :, None] * np.array([student_t_quantile(q, nu) for q in levels])
    sigma = np.maximum.accumulate(np.sqrt((e ** 2).mean(axis=0)), axis=0)    # (H, T)
    sigma = np.where(sigma > 0, sigma, 1e-12)
    u = (e / sigma[None]).reshape(n * H, T)
    n_u = u.shape[0]
    out = np.empty((H, T, len(levels)))
    for k, q in enumerate(levels):
        adj = q * (n_u + 1) / n_u if q > 0.5 else 1 - (1 - q) * (n_u + 1) / n_u
        out[:, :, k] = sigma * np.quantile(u, float(np.clip(adj, 0.0, 1.0)), axis=0)[None, :]
    return out
