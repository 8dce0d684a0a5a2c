"""strategy="auto"'s classical guard, the means of forecasts, the seed ensemble and conformal bands."""

import numpy as np
import pytest

from rnnkit.data import seasonal_series
from rnnkit.tasks.forecast import Forecaster
from rnnkit.tasks.forecast.classical import Classical, classical_methods
from rnnkit.tasks.forecast.combine import choose_forecast, conformal_offsets

TINY = dict(cell="gru", hidden_size=8)


def _mase(actual, forecast, y_train, m):
    return np.mean(np.abs(actual - forecast)) / np.mean(np.abs(y_train[m:] - y_train[:-m]))


def test_ets_follows_trend_and_season_that_seasonal_naive_misses():
    y = 10 + 0.05 * np.arange(240) + seasonal_series(240, period=12, noise=0.0, seed=0)
    train, test = y[:228], y[228:]
    ets = Classical("ets", 12).fit(train).forecast(y, [228], 12)[0]
    snaive = Classical("seasonal_naive", 12).fit(train).forecast(y, [228], 12)[0]
    assert _mase(test, ets, train, 12) < 0.1 < _mase(test, snaive, train, 12)
    # the forecast from an origin reads only the rows before it
    y2 = y.copy()
    y2[228:] = -100.0
    np.testing.assert_array_equal(Classical("ets", 12).fit(train).forecast(y2, [228], 12)[0], ets)
    theta = Classical("theta", 12).fit(train).forecast(y, [228], 12)[0]
    assert _mase(test, theta, train, 12) < _mase(test, snaive, train, 12)


def test_classical_methods_need_a_period_and_ets_chooses_levels_or_logs():
    assert classical_methods(np.arange(1.0, 30.0), None) == ["naive", "ets", "theta", "arima"]
    assert classical_methods(np.arange(-5.0, 30.0), 12) == ["naive", "seasonal_naive", "ets", "theta", "arima"]
    c = Classical("ets_log", 12).fit(np.exp(0.01 * np.arange(60)) * 5)
    back = Classical.from_dict(c.to_dict())
    np.testing.assert_array_equal(back.forecast(np.ones(70), [70], 5), c.forecast(np.ones(70), [70], 5))
    with pytest.raises(ValueError, match="method must be one of"):
        Classical("prophet")
    rng = np.random.default_rng(0)
    growth = 10 * np.exp(np.cumsum(0.03 + 0.05 * rng.standard_normal(150)))    # changes grow with the level
    steady = 100 + np.cumsum(rng.standard_normal(150))                        # changes of one size
    assert Classical("ets").fit(growth).state["log"] is True
    assert Classical("ets").fit(steady).state["log"] is False
    for y in (growth, steady):
        a = Classical("arima").fit(y[:140])
        back = Classical.from_dict(a.to_dict())
        np.testing.assert_array_equal(back.forecast(y, [140], 10), a.forecast(y, [140], 10))


def test_conformal_bands_cover_an_ar_series_at_their_level():
    rng = np.random.default_rng(1)
    n, H = 3000, 6
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.8 * y[t - 1] + rng.standard_normal()
    origins = np.arange(50, n - H)
    fc = Classical("ets").fit(y[:50]).forecast(y, origins, H)                 # (n_o, H)
    actual = y[origins[:, None] + np.arange(H)]
    resid = (actual - fc)[:, :, None]
    cal, new = slice(0, len(origins) // 2), slice(len(origins) // 2, None)
    off = conformal_offsets(resid[cal], [0.1, 0.5, 0.9])                      # (H, 1, 3)
    inside = (resid[new] >= off[None, :, :, 0]) & (resid[new] <= off[None, :, :, -1])
    assert abs(inside.mean() - 0.8) < 0.05
    assert np.all(np.diff(off[:, 0, -1] - off[:, 0, 0]) >= 0)               # wider further ahead
    # with few origins the spread grows like sqrt(h) and still covers roughly
    off_few = conformal_offsets(resid[:10], [0.1, 0.9])
    inside = (resid[new] >= off_few[None, :, :, 0]) & (resid[new] <= off_few[None, :, :, -1])
    assert 0.6 < inside.mean() < 0.97


def test_constant_series_forecasts_the_constant():
    fc = Forecaster(horizon=4, **TINY).fit(np.full(40, 7.5), max_steps=5)
    np.testing.assert_array_equal(fc.predict(np.full(40, 7.5)), np.full(4, 7.5))
    band = fc.predict_interval(np.full(40, 7.5))
    assert np.all(band["lower"] <= 7.5) and np.all(band["upper"] >= 7.5)


def test_the_mean_of_ets_theta_and_arima_is_the_default_and_moves_only_for_a_clear_gain():
    rng = np.random.default_rng(2)
    actual = rng.standard_normal((20, 4, 1))
    near = {k: actual + 0.5 * rng.standard_normal(actual.shape) for k in ("ets", "theta", "arima", "naive")}
    w, table = choose_forecast(actual, {**near, "rnn": actual + 3.0}, np.ones(1))
    assert w == {"ets": 1 / 3, "theta": 1 / 3, "arima": 1 / 3}
    assert {row["forecast"] for row in table} >= {"ets+theta+arima", "ets+theta+arima+rnn", "rnn", "naive"}
    # a network that forecasts the held-out rows much better joins the mean, or replaces it
    w, _ = choose_forecast(actual, {**near, "rnn": actual.copy()}, np.ones(1))
    assert "rnn" in w
    # a single method only slightly better than the mean does not replace it
    comb = (near["ets"] + near["theta"] + near["arima"]) / 3
    w, _ = choose_forecast(actual, {**near, "naive": actual + 0.97 * (comb - actual)}, np.ones(1))
    assert w == {"ets": 1 / 3, "theta": 1 / 3, "arima": 1 / 3}


def test_auto_uses_the_classical_mean_by_default_and_scores_it_on_validation():
    y = seasonal_series(150, period=12, noise=0.2, seed=3) + 0.02 * np.arange(150)
    fc = Forecaster(horizon=6, ensemble=2, **TINY).fit(y, max_steps=15)      # a barely trained network
    assert fc.period_ == 12
    names = {row["forecast"]: row["val_mase"] for row in fc.guard_}
    # a real season: seasonal naive is a member of the mean
    comb = "ets+theta+arima+seasonal_naive"
    assert {"rnn", "seasonal_naive", "ets", "theta", "arima", "naive", comb} <= set(names)
    assert set(fc.blend_) >= {"ets", "theta", "arima", "seasonal_naive"}
    assert fc.val_mase_ <= names[comb]
    assert fc.conformal_.shape == (6, 1, 3)
    out = fc.predict(y)
    assert out.shape == (6,) and np.all(np.isfinite(out))


def test_short_series_is_not_refused():
    y = 100 + np.cumsum(np.random.default_rng(0).standard_normal(20))
    fc = Forecaster(horizon=6, **TINY).fit(y, max_steps=5)
    band = fc.predict_interval(y)
    assert band["median"].shape == (6,) and np.all(band["lower"] <= band["upper"])


def test_a_series_shorter_than_two_horizons_forecasts_with_the_classical_mean():
    y = 50 + np.cumsum(np.random.default_rng(7).standard_normal(11))
    fc = Forecaster(horizon=6, **TINY).fit(y, max_steps=5)
    assert fc.blend_ == {"ets": 1 / 3, "theta": 1 / 3, "arima": 1 / 3}
    band = fc.predict_interval(y)
    assert band["median"].shape == (6,) and np.all(np.isfinite(band["median"]))
    assert np.all(band["lower"] < band["median"]) and np.all(band["median"] < band["upper"])


def test_bands_from_every_backtest_origin_hold_their_level():
    """80 % bands of the default forecast cover about 80 % of the rows after the fit."""
    rng = np.random.default_rng(11)
    inside = []
    for k in range(12):
        n = 160
        y = np.zeros(n)
        for t in range(1, n):
            y[t] = 0.7 * y[t - 1] + rng.standard_normal()
        y += 20
        fc = Forecaster(horizon=4, **TINY).fit(y[:140], max_steps=5)
        for o in range(140, n - 4 + 1, 4):
            band = fc.predict_interval(y[:o])
            inside += list((y[o:o + 4] >= band["lower"]) & (y[o:o + 4] <= band["upper"]))
    assert 0.7 <= np.mean(inside) <= 0.92


def test_bands_of_a_growing_positive_series_grow_with_its_level(tmp_path):
    """Relative scores: the errors of a series growing 3x over the rows scale with it, and
    bands from its earlier, lower origins still cover the rows after the fit (absolute
    offsets: 0.28)."""
    rng = np.random.default_rng(2)
    inside = []
    for k in range(4):
        e = np.zeros(240)
        for t in range(1, 240):
            e[t] = 0.6 * e[t - 1] + 0.05 * rng.standard_normal()
        y = 100 * np.exp(0.012 * np.arange(240) + e)
        fc = Forecaster(horizon=4, **TINY).fit(y[:160], max_steps=5)
        assert fc.relative_bands_[0] == pytest.approx(0.5 * y[:fc.split_["train"]].min())
        for o in range(160, 240 - 4 + 1, 4):
            band = fc.predict_interval(y[:o])
            inside += list((y[o:o + 4] >= band["lower"]) & (y[o:o + 4] <= band["upper"]))
    assert 0.65 <= np.mean(inside) <= 0.92
    # the width follows the forecast: twice the level, twice the band
    point = fc.predict(y[:200])[:, None]
    np.testing.assert_allclose(np.diff(fc._conformal_bands(2 * point)[..., [0, -1]], axis=-1),
                               2 * np.diff(fc._conformal_bands(point)[..., [0, -1]], axis=-1))
    fc.save(tmp_path / "m")
    back = Forecaster.load(tmp_path / "m")
    assert back.relative_bands_ == fc.relative_bands_
    np.testing.assert_allclose(back.predict_interval(y)["upper"], fc.predict_interval(y)["upper"], rtol=1e-6)
    # a series that crosses zero keeps absolute offsets: the same band at any level
    z = y - y[:100].mean()
    fz = Forecaster(horizon=4, **TINY).fit(z[:100], max_steps=5)
    assert fz.relative_bands_ == [None]
    point = fz.predict(z[:100])[:, None]
    np.testing.assert_allclose(np.diff(fz._conformal_bands(point + 50)[..., [0, -1]], axis=-1),
                               np.diff(fz._conformal_bands(point)[..., [0, -1]], axis=-1))


def test_seed_ensemble_is_the_median_and_survives_save_load(tmp_path):
    y = seasonal_series(120, period=12, noise=0.2, seed=4)
    fc = Forecaster(horizon=6, strategy="direct", intervals=None, **TINY).fit(y, max_steps=10)
    fc.members_ = [fc._build_model(seed) for seed in (5, 6)]                 # three different networks
    x, _ = fc._inputs(fc._windows_for(y[:, None], None, [100, 110]))
    outs = np.stack([net.predict(x) for net in [fc.model_, *fc.members_]])
    assert not np.allclose(outs[0], outs[1])
    np.testing.assert_allclose(fc._forward(x, sample=False), np.median(outs, axis=0))
    fc.save(tmp_path / "m")
    back = Forecaster.load(tmp_path / "m")
    assert len(back.members_) == 2
    np.testing.assert_allclose(back.predict(y), fc.predict(y), rtol=1e-6)


def test_seasonal_naive_joins_the_mean_when_the_series_has_a_period():
    rng = np.random.default_rng(5)
    actual = rng.standard_normal((20, 4, 1))
    near = {k: actual + 0.5 * rng.standard_normal(actual.shape)
            for k in ("ets", "theta", "arima", "seasonal_naive", "naive")}
    w, table = choose_forecast(actual, near, np.ones(1))
    assert w == {"ets": 0.25, "theta": 0.25, "arima": 0.25, "seasonal_naive": 0.25}
    assert table[0]["forecast"] == "ets+theta+arima+seasonal_naive"
    # a seasonal naive far off (a trend it lags behind): the mean of the others replaces the default
    e = rng.standard_normal(actual.shape)
    lagging = {"ets": actual + e, "theta": actual - e, "arima": actual + 0.1 * e, "seasonal_naive": actual - 2.0}
    w, table = choose_forecast(actual, lagging, np.ones(1))
    assert w == {"ets": 1 / 3, "theta": 1 / 3, "arima": 1 / 3}
    assert {"ets+theta+arima", "ets+theta+arima+seasonal_naive"} <= {row["forecast"] for row in table}
    # a series too short to validate on forecasts with the mean, seasonal naive included
    y = 10 + seasonal_series(17, period=4, noise=0.1, seed=6)
    fc = Forecaster(horizon=6, period=4, **TINY).fit(y, max_steps=5)
    assert fc.blend_ == {"ets": 0.25, "theta": 0.25, "arima": 0.25, "seasonal_naive": 0.25}
    assert np.all(np.isfinite(fc.predict(y)))


def test_validation_scores_the_classical_methods_with_the_season_they_forecast_with():
    """24 training rows of period 12 are too few for a seasonal ETS or Theta (2m + 2 and
    2m + 1 rows), the 36 rows of the refit are not: validation fits them on the rows seen,
    so they are scored with their season (fitted on the training part they forecast a
    clean season as badly as naive)."""
    y = 20 + seasonal_series(36, period=12, noise=0.05, seed=4)
    fc = Forecaster(horizon=6, period=12, ensemble=1, **TINY).fit(y, max_steps=5)
    assert fc.split_["train"] == 24 and fc.period_ == 12
    names = {row["forecast"]: row["val_mase"] for row in fc.guard_}
    assert names["ets"] < names["naive"] / 4 and names["theta"] < names["naive"] / 4
