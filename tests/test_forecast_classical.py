"""The NumPy classical forecasters of the default forecast: ARIMA, seasonal periods, ETS on levels or logs."""

import numpy as np

from rnnkit.tasks.forecast.arima import arima_forecast, fit_arima, kpss_statistic
from rnnkit.tasks.forecast.season import choose_period, period_from_dates, seasonal_strength


def _ar1(n, phi, seed=0, c=0.0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = c + phi * y[t - 1] + rng.standard_normal()
    return y


def test_arima_recovers_a_known_ar_coefficient():
    st = fit_arima(_ar1(3000, 0.6, seed=0))
    assert (st["d"], st["D"]) == (0, 0) and st["lags"][0] == 1
    phi = st["coef"][1] if st["const"] else st["coef"][0]
    assert abs(phi - 0.6) < 0.05
    # the forecast decays toward the mean like phi^h, reading only y[:o]
    y = _ar1(500, 0.6, seed=2)
    f = arima_forecast(fit_arima(y), y, [400], 5)[0]
    assert np.all(np.abs(f) <= abs(y[399]) * 0.8 + 0.3)
    y2 = y.copy()
    y2[400:] = 1e6
    np.testing.assert_array_equal(arima_forecast(fit_arima(y), y2, [400], 5)[0], f)


def test_arima_moving_average_terms_forecast_like_the_true_model_reading_only_the_past():
    e = np.random.default_rng(0).standard_normal(2001)
    y = 2.0 + e[1:] + 0.9 * e[:-1]                       # MA(1), θ = 0.9
    st = fit_arima(y[:1500])
    assert (st["d"], st["D"]) == (0, 0) and 1 in st["ma"]
    # one step ahead on rows it never saw, within 0.03 of the true model's squared error
    # (autoregressions alone, which this ARIMA had before, are 0.12–0.18 worse on this series)
    o = np.arange(1500, 2000)
    f = arima_forecast(st, y, o, 1)[:, 0]
    assert np.mean((f - y[o]) ** 2) - np.mean(e[1:][o] ** 2) < 0.03
    y2 = y.copy()
    y2[1700:] = -1e6
    np.testing.assert_array_equal(arima_forecast(st, y2, [1700], 4), arima_forecast(st, y[:1700], [1700], 4))


def test_arima_never_keeps_an_explosive_autoregression():
    # 33 yearly values of a series (rice production) that grows geometrically, then breaks:
    # least squares fits its differences with an AR(3) whose roots lie inside the unit circle
    y = np.array([0.311405, 0.32518, 0.339565, 0.35458, 0.370265, 0.38664, 0.40374, 0.4216, 0.44025,
                  0.45972, 0.480055, 0.50129, 0.52346, 0.54661, 0.57079, 0.596035, 0.622395, 0.649925,
                  0.67867, 0.70869, 0.740035, 0.772765, 0.806945, 0.842635, 0.879905, 0.918825, 0.95946,
                  1.0019, 1.04622, 1.09249, 1.14081, 1.03352, 1.08867])
    st = fit_arima(y)
    f = arima_forecast(st, y, [33], 5)[0]
    assert np.all(np.abs(f - y[-1]) < 0.5), f
    phi = np.asarray(st["coef"][int(st["const"]):int(st["const"]) + len(st["lags"])])
    if st["lags"]:
        poly = np.zeros(max(st["lags"]) + 1)
        poly[0] = 1.0
        poly[st["lags"]] -= phi
        assert np.max(np.abs(np.roots(poly))) < 1.0


def test_arima_differences_a_random_walk_and_a_strong_season():
    rw = np.cumsum(np.random.default_rng(3).standard_normal(300)) + 50
    assert kpss_statistic(rw) > 0.463 and fit_arima(rw)["d"] == 1
    t = np.arange(240)
    y = 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(4).standard_normal(240)
    st = fit_arima(y, 12, seasonal_strength(y, 12))
    assert st["D"] == 1 and st["d"] == 0
    f = arima_forecast(st, y, [228], 12)[0]
    assert np.mean(np.abs(f - 10 * np.sin(2 * np.pi * t[228:] / 12))) < 2.0


def test_seasonal_period_from_iso_dates():
    months = [f"{1990 + k // 12}-{k % 12 + 1:02d}-01" for k in range(40)]
    quarters = [f"{2000 + k // 4}-{3 * (k % 4) + 1:02d}-01" for k in range(20)]
    halfhours = [f"2021-05-01 {k // 2:02d}:{30 * (k % 2):02d}:00" for k in range(40)]
    days = [f"2021-05-{k + 1:02d}" for k in range(20)]
    hours = [f"2021-05-01T{k:02d}:00:00" for k in range(20)]
    assert period_from_dates(months) == 12 and period_from_dates(quarters) == 4
    assert period_from_dates(halfhours) == 48 and period_from_dates(days) == 7 and period_from_dates(hours) == 24
    assert period_from_dates([f"{1950 + k}-01-01" for k in range(30)]) is None
    assert period_from_dates(["a", "b", "c"]) is None


def test_a_period_is_kept_only_when_the_season_is_real():
    rng = np.random.default_rng(5)
    months = [f"{1990 + k // 12}-{k % 12 + 1:02d}-01" for k in range(120)]
    seasonal = 100 + 10 * np.sin(2 * np.pi * np.arange(120) / 12) + rng.standard_normal(120)
    noise = 100 + np.cumsum(rng.standard_normal(120))
    assert choose_period(seasonal, months)[0] == 12
    m, strength = choose_period(noise, months)
    assert m is None and strength < 0.4


def test_arima_fits_the_last_rows_of_a_long_series():
    from rnnkit.tasks.forecast.arima import FIT_ROWS

    y = np.cumsum(np.random.default_rng(6).standard_normal(FIT_ROWS + 5000))
    y[:5000] += 1e3 * np.sin(np.arange(5000))         # rows before the last FIT_ROWS change nothing
    assert fit_arima(y) == fit_arima(y[-FIT_ROWS:])
