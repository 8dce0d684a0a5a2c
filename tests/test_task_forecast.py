"""The Forecaster task: beats seasonal naive, strategies, intervals, backtest, files, errors."""

import json
import os

import numpy as np
import pytest

from conftest import assert_plots
from rnnkit import io as rkio
from rnnkit.data import seasonal_series
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.tasks.forecast import Forecaster, forecast_metrics, infer_period

H = 12
PERIOD = 24


@pytest.fixture(scope="module")
def series():
    # 600 rows of a period-24 seasonal signal (amplitude ~0.8 std) with N(0, 0.3²) noise
    return seasonal_series(600, period=PERIOD, noise=0.3, seed=0)


@pytest.fixture(scope="module")
def direct(series, tmp_path_factory):
    """The direct forecaster, fitted once with a run directory."""
    out = tmp_path_factory.mktemp("forecast_run")
    fc = Forecaster(horizon=H, strategy="direct", cell="gru", hidden_size=32, seed=0)
    fc.fit(series, out_dir=out, epochs=25, lr=1e-2, patience=None, test_fraction=0.15)
    return fc, out


def test_direct_beats_seasonal_naive_on_the_test_part(direct):
    fc, _ = direct
    assert fc.period_ == PERIOD                      # inferred from the training part
    assert fc.lookback_ == 2 * PERIOD
    res = fc.test_backtest_
    met = res["metrics"]
    # every origin whose whole horizon lies in the test part (rows 510..599)
    assert res["origins"][0] == 510 and res["origins"][-1] == 600 - H
    assert met["model"]["mase"] < met["seasonal_naive"]["mase"]
    assert met["model"]["mase"] < 0.5 * met["naive"]["mase"]
    for name in ("model", "naive", "seasonal_naive"):
        assert set(met[name]) == {"mae", "rmse", "mape", "smape", "mase"}


def test_backtest_baselines_and_mase_scale(direct, series):
    fc, _ = direct
    res = fc.backtest(series, n_origins=5, step=3)
    o = res["origins"]
    assert len(o) == 5 and np.all(np.diff(o) == 3) and o[-1] == len(series) - H
    for i, origin in enumerate(o):
        np.testing.assert_allclose(res["actual"][i, :, 0], series[origin:origin + H])
        np.testing.assert_allclose(res["naive"][i, :, 0], series[origin - 1])
        # H = 12 < period: one period back
        np.testing.assert_allclose(res["seasonal_naive"][i, :, 0], series[origin - PERIOD:origin - PERIOD + H])
    train = series[:fc.split_["train"]]
    scale = np.mean(np.abs(train[PERIOD:] - train[:-PERIOD]))
    assert fc.mase_lag_ == PERIOD
    np.testing.assert_allclose(fc.mase_scale_, [scale])
    mae = np.mean(np.abs(res["actual"] - res["forecast"]))
    np.testing.assert_allclose(res["metrics"]["model"]["mase"], mae / scale)


def test_run_directory_and_save_load_identical(direct, series, tmp_path):
    fc, out = direct
    for name in ("config.json", "model.npz", "train/metrics.jsonl", "metrics.json", "backtest.csv",
                 "predictions.csv", "report.html"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert_plots(out, "forecast.png", "training.png")
    with open(os.path.join(out, "config.json")) as f:
        header = json.load(f)
    assert header["meta"]["task"] == "forecast"
    lines = open(os.path.join(out, "train", "metrics.jsonl")).read().splitlines()
    assert any(json.loads(line)["event"] == "val" for line in lines)
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "Backtest on the test part" in html and "seasonal naive" in html

    loaded = Forecaster.load(out)
    np.testing.assert_array_equal(loaded.predict(series), fc.predict(series))
    assert loaded.predict(series).shape == (H,)
    fc.save(tmp_path / "again")
    again = Forecaster.load(tmp_path / "again")
    np.testing.assert_array_equal(again.predict(series[:300]), fc.predict(series[:300]))
    np.testing.assert_array_equal(again.backtest(series, n_origins=3)["forecast"],
                                  fc.backtest(series, n_origins=3)["forecast"])


def test_load_refuses_another_task(tmp_path):
    rkio.save_checkpoint(tmp_path, {"model": "SequenceTagger"}, {"w": np.zeros(2)}, None, meta={"task": "lm"})
    with pytest.raises(CheckpointError, match="was written by task 'lm', not 'forecast'"):
        Forecaster.load(tmp_path)


def test_recursive_rolls_its_one_step_model_forward(series):
    fc = Forecaster(horizon=6, strategy="recursive", lookback=24, cell="gru", hidden_size=16, seed=1)
    fc.fit(series, epochs=20, lr=1e-2, patience=None, test_fraction=0.15)
    met = fc.test_backtest_["metrics"]
    assert met["model"]["mase"] < met["seasonal_naive"]["mase"]
    hist = series[:250]
    path = fc.predict(hist)
    assert path.shape == (6,) and np.all(np.isfinite(path))
    # step 2 of the forecast is the step-1 forecast made after appending step 1
    nxt = fc.predict(np.append(hist, path[0]))
    np.testing.assert_allclose(nxt[:5], path[1:], rtol=1e-5, atol=1e-5)


def test_quantile_intervals_are_ordered_and_cover(series):
    fc = Forecaster(horizon=H, intervals="quantile", cell="gru", hidden_size=32, seed=0)
    fc.fit(series, epochs=25, lr=1e-2, patience=None, test_fraction=0.15)
    res = fc.test_backtest_
    # the raw quantile outputs (before any sorting) are ordered on most points
    zwin = fc._windows_for(series[:, None], None, res["origins"])
    raw = fc._forecast_scaled(zwin, None)                                # (n, H, 1, Q)
    ordered = (raw[..., 0] <= raw[..., 1]) & (raw[..., 1] <= raw[..., 2])
    assert ordered.mean() > 0.9
    band = fc.predict_interval(series)
    assert band["lower"].shape == band["upper"].shape == (H,) and band["quantiles"].shape == (H, 3)
    assert np.all(band["lower"] <= band["median"]) and np.all(band["median"] <= band["upper"])
    np.testing.assert_array_equal(band["median"], fc.predict(series))
    # an 80 % band: most test values inside, but not a useless, everything-covering one
    assert 0.6 <= res["coverage"] <= 0.97
    assert np.mean(res["upper"] - res["lower"]) < 4 * 0.3


def test_mc_dropout_intervals(series):
    fc = Forecaster(horizon=6, lookback=24, strategy="direct", intervals="mc_dropout", dropout=0.2,
                    hidden_size=16, seed=0)
    fc.fit(series[:400], epochs=3, patience=None, test_fraction=0.0)
    assert fc.test_backtest_ is None
    assert fc.noise_std_.shape == (6,) and np.all(fc.noise_std_ > 0)
    a = fc.predict_interval(series[:300], n_samples=50, seed=3)
    b = fc.predict_interval(series[:300], n_samples=50, seed=3)
    c = fc.predict_interval(series[:300], n_samples=50, seed=4)
    np.testing.assert_array_equal(a["upper"], b["upper"])
    assert not np.array_equal(a["upper"], c["upper"])
    assert np.all(a["lower"] < a["upper"])
    # the point forecast is the dropout-free network
    p1, p2 = fc.predict(series[:300]), fc.predict(series[:300])
    np.testing.assert_array_equal(p1, p2)
    plain = Forecaster(horizon=2, lookback=4, strategy="direct", hidden_size=4, intervals=None)
    plain.fit(series[:80], epochs=1)
    with pytest.raises(RnnkitError, match="without intervals"):
        plain.predict_interval(series[:80])


def test_csv_multivariate_with_covariates(tmp_path):
    rng = np.random.default_rng(0)
    n = 160
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n)
    b = np.cos(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n)
    cov = (t % 7).astype(float)
    path = tmp_path / "data.csv"
    with open(path, "w") as f:
        f.write("date,a,b,dow\n")
        for i in range(n):
            f.write(f"2020-01-{i:03d},{a[i]:.5f},{b[i]:.5f},{cov[i]:.0f}\n")
    fc = Forecaster(horizon=4, lookback=12, hidden_size=8, seed=0)
    fc.fit(path, targets="a", covariate_columns=["dow"], date_column="date", epochs=2)
    assert fc.columns_ == ["a", "b"] and fc.targets_ == [0] and fc.n_covariates_ == 1
    values = np.stack([a, b], axis=1)
    out = fc.predict(values, covariates=cov[:, None])
    assert out.shape == (4, 1) and np.all(np.isfinite(out))
    res = fc.backtest(path)
    assert res["forecast"].shape[1:] == (4, 1)
    with pytest.raises(ValueError, match="covariates"):
        fc.predict(values)
    # recursive must forecast every series column
    with pytest.raises(ValueError, match="every series column"):
        Forecaster(horizon=4, lookback=12, strategy="recursive").fit(path, targets="a", date_column="date")
    # a recursive forecaster with covariates needs their future values
    rec = Forecaster(horizon=3, lookback=12, strategy="recursive", hidden_size=8)
    rec.fit(path, covariate_columns="dow", date_column="date", epochs=1)
    with pytest.raises(ValueError, match="future_covariates"):
        rec.predict(values, covariates=cov[:, None])
    fut = rec.predict(values, covariates=cov[:, None], future_covariates=np.array([[1.0], [2.0], [3.0]]))
    assert fut.shape == (3, 2)


def test_clear_errors(tmp_path, series):
    # a lookback and horizon longer than the data allow shrink instead of failing
    short = Forecaster(lookback=48, horizon=60, strategy="direct", hidden_size=4).fit(series[:100], max_steps=5)
    assert short.lookback_ < 48 and short.predict(series[:100]).shape == (60,)
    with pytest.raises(RnnkitError, match="at least 14"):
        Forecaster(horizon=12, strategy="direct").fit(series[:10])
    gappy = series[:200].copy()
    gappy[17] = np.nan
    with pytest.raises(RnnkitError, match="missing values.*row 17"):
        Forecaster(horizon=4).fit(gappy)
    with pytest.raises(TypeError, match="must hold numbers"):
        Forecaster(horizon=4).fit(np.array(["1", "2", "3"]))
    bad = tmp_path / "bad.csv"
    bad.write_text("v\n1\n2\nhello\n4\n")
    with pytest.raises(RnnkitError, match="non-numeric value 'hello' on line 4"):
        Forecaster(horizon=1).fit(bad)
    holes = tmp_path / "holes.csv"
    holes.write_text("day,v\n" + "".join(f"d{i},{'' if i == 30 else i}\n" for i in range(60)))
    with pytest.raises(RnnkitError, match="empty cell on line 32, column 'v'.*interpolate"):
        Forecaster(horizon=1).fit(holes, columns="v", date_column="day", fill="error")
    filled = Forecaster(horizon=1, lookback=5, hidden_size=4).fit(holes, columns="v", date_column="day",
                                                                   fill="interpolate", epochs=1)
    assert filled.columns_ == ["v"]
    with pytest.raises(ValueError, match="intervals='quantile' needs strategy='direct'"):
        Forecaster(strategy="recursive", intervals="quantile")
    with pytest.raises(ValueError, match="needs dropout > 0"):
        Forecaster(intervals="mc_dropout")
    with pytest.raises(RnnkitError, match="not fitted"):
        Forecaster().predict(series)
    fc = Forecaster(horizon=2, lookback=10, hidden_size=4)
    fc.fit(series[:120], epochs=1)
    with pytest.raises(RnnkitError, match="history has 5 rows.*lookback=10"):
        fc.predict(series[:5])


def test_metrics_and_period_inference():
    y = np.array([[1.0], [2.0], [4.0]])
    f = np.array([[2.0], [2.0], [2.0]])
    m = forecast_metrics(y, f, scale=[2.0])
    np.testing.assert_allclose(m["mae"], 1.0)
    np.testing.assert_allclose(m["rmse"], np.sqrt(5 / 3))
    np.testing.assert_allclose(m["mape"], 100 * (1 + 0 + 0.5) / 3)
    np.testing.assert_allclose(m["smape"], 100 * (2 / 3 + 0 + 4 / 6) / 3)
    np.testing.assert_allclose(m["mase"], 0.5)
    assert infer_period(seasonal_series(400, period=17, noise=0.2, trend=0.01, seed=2)) == 17
    assert infer_period(np.random.default_rng(0).standard_normal(400)) is None


def test_a_series_never_negative_in_training_is_forecast_with_bands_at_zero_or_above(tmp_path):
    # half-sine "daylight" of period 24 with nights at exactly 0 and noise: a band of the
    # forecast plus residual quantiles would reach below 0 at night
    t = np.arange(480)
    rng = np.random.default_rng(1)
    y = np.maximum(np.sin(2 * np.pi * t / 24), 0) * (1 + 0.3 * rng.standard_normal(480))
    y = np.maximum(y, 0)
    fc = Forecaster(horizon=H, cell="gru", hidden_size=16, seed=0)
    fc.fit(y, epochs=3, patience=None, test_fraction=0.1, out_dir=tmp_path / "run")
    assert fc.floor_ == [0.0]
    band = fc.predict_interval(y)
    assert np.all(fc.predict(y) >= 0) and np.all(band["lower"] >= 0) and np.all(band["quantiles"] >= 0)
    res = fc.backtest(y, n_origins=30)
    assert np.all(res["forecast"] >= 0) and np.all(res["lower"] >= 0)
    assert np.any(res["lower"] == 0)                    # the floor binds at night
    loaded = Forecaster.load(tmp_path / "run")
    assert loaded.floor_ == [0.0]
    np.testing.assert_array_equal(loaded.predict_interval(y)["lower"], band["lower"])
    # the same series shifted below 0 somewhere gets no floor, and its bands may go below 0
    fc2 = Forecaster(horizon=H, cell="gru", hidden_size=16, seed=0)
    fc2.fit(y - 0.05, epochs=3, patience=None, test_fraction=0.1)
    assert fc2.floor_ == [None]
    assert np.any(fc2.predict_interval(y - 0.05)["lower"] < 0)


def test_a_long_series_is_scored_on_evenly_spread_origins(series, monkeypatch):
    from rnnkit.tasks.forecast import forecaster

    monkeypatch.setattr(forecaster, "MAX_ORIGINS", 20)
    fc = Forecaster(horizon=3, strategy="direct", lookback=12, hidden_size=8, seed=0)
    fc.fit(series, epochs=1, test_fraction=0.2, val_fraction=0.2)
    for res in (fc.val_backtest_, fc.test_backtest_):
        origins = np.asarray(res["origins"])
        steps = np.diff(origins)
        assert 10 < len(origins) <= 20 and (steps == steps[0]).all() and steps[0] > 1
        assert "time_limit_note" not in res
    monkeypatch.setattr(forecaster, "MAX_ORIGINS", 1000)      # a short part: every origin
    fc.fit(series, epochs=1, test_fraction=0.2, val_fraction=0.2)
    assert (np.diff(fc.test_backtest_["origins"]) == 1).all()
