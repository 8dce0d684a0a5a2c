r"""The seasonal period of a series: from its dates, kept only when the season is real.

Period from dates (:func:`period_from_dates`; ISO, or one other format for the column:
:mod:`rnnkit.data.dates`): the median step between consecutive dates names the calendar
cycle a value repeats over,

    monthly 12, quarterly 4, weekly 52, daily 7, business days 5 (weekdays only:
    :func:`rnnkit.data.dates.weekdays_only`), hourly 24,
    k minutes (k < 60, k dividing a day) 1440 / k     (a daily cycle: half-hourly 48)

and yearly (or irregular) dates have none.

Seasonal strength (:func:`seasonal_strength`; Wang, Smith & Hyndman 2006) of period m by
classical decomposition: the trend T is a centred moving average of length m (2×m for an
even m), the seasonal part S the mean of y − T at each phase (centred), the remainder
R = y − T − S, and

    F_s = max(0, 1 − Var(R) / Var(S + R))

on log y for a positive series (a season that grows with the level is then additive).
:func:`choose_period` keeps a period when F_s ≥ ``MIN_STRENGTH`` (0.4: the season holds
clearly more of the detrended variation than the noise) with at least two full seasons
of training rows; otherwise the series is treated as not seasonal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["period_from_dates", "seasonal_strength", "choose_period", "MIN_STRENGTH"]

MIN_STRENGTH = 0.4


def _as_datetimes(dates):
    """Date labels (:func:`rnnkit.data.dates.parse_dates`) or datetime64 values ->
    datetime64[s] array, or None if a label is not a date."""
    from rnnkit.data.dates import parse_dates
    from rnnkit.errors import RnnkitError

    arr = np.asarray(dates)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[s]")
    try:
        return parse_dates([str(d) for d in arr])
    except RnnkitError:
        return None


def period_from_dates(dates) -> int | None:
    """The calendar period of regularly spaced ``dates`` (module docstring), or None."""
    if dates is None or len(dates) < 3:
        return None
    d = _as_datetimes(dates)
    if d is None:
        return None
    from rnnkit.data.dates import weekdays_only

    if weekdays_only(d):
        return 5
    step = float(np.median(np.diff(d).astype(np.int64)))          # seconds
    day = 86400.0
    if step <= 0:
        return None
    if 27 * day <= step <= 32 * day:
        return 12
    if 88 * day <= step <= 93 * day:
        return 4
    if abs(step - 7 * day) < 0.5 * day:
        return 52
    if abs(step - day) < 0.05 * day:
        return 7
    if abs(step - 3600) < 1:
        return 24
    if step < 3600 and day % step == 0:
        return int(day // step)
    return None


def seasonal_strength(y, m: int | None) -> float:
    """F_s of period ``m`` (module docstring); 0 without a period or two full seasons."""
    y = np.asarray(y, dtype=np.float64).ravel()
    n = len(y)
    if not m or m < 2 or n < 2 * m + 1:
        return 0.0
    if np.all(y > 0):
        y = np.log(y)
    w = np.ones(m) if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5]
    trend = np.convolve(y, w / m, mode="valid")
    off = (len(w) - 1) // 2
    det = y[off:off + len(trend)] - trend
    phase = (np.arange(len(det)) + off) % m
    means = np.array([det[phase == j].mean() for j in range(m)])
    s = (means - means.mean())[phase]
    r = det - s
    total = np.var(s + r)
    if total <= 0:
        return 0.0
    return float(max(0.0, 1.0 - np.var(r) / total))


def choose_period(y_train, dates=None, fallback=None) -> tuple[int | None, float]:
    """(period or None, its strength): the dates' period, else ``fallback`` (e.g. the
    autocorrelation peak), kept when its seasonal strength on ``y_train`` is real."""
    m = period_from_dates(dates) if dates is not None else None
    if m is None:
        m = fallback
    if not m:
        return None, 0.0
    s = seasonal_strength(y_train, m)
    return (int(m), s) if s >= MIN_STRENGTH else (None, s)
