"""Forecasting context: dates, calendar features, known-future windows, long CSV files."""

import numpy as np
import pytest

from rnnkit.data import context as ctx
from rnnkit.errors import RnnkitError


def test_parse_dates_and_errors():
    d = ctx.parse_dates(["2021-05-01", "2021-05-01 13:30:00", "2021-05-02T00:30Z", "1995-02", "1960"])
    assert str(d[1]) == "2021-05-01T13:30:00" and str(d[3]) == "1995-02-01T00:00:00"
    assert str(d[4]) == "1960-01-01T00:00:00"
    with pytest.raises(RnnkitError, match=r"row 2: cannot read 'May 3'"):
        ctx.parse_dates(["2020-01-01", "May 3"])
    with pytest.raises(RnnkitError, match="row 1: '2021-02-30' is not a valid date"):
        ctx.parse_dates(["2021-02-30"])


def test_step_and_future_dates():
    hourly = ctx.parse_dates([f"2021-03-01 {h:02d}:00" for h in range(5)])
    assert ctx.infer_step(hourly) == np.timedelta64(3600, "s")
    assert str(ctx.future_dates(hourly, 2)[-1]) == "2021-03-01T06:00:00"
    monthly = ctx.parse_dates(["2020-11-01", "2020-12-01", "2021-01-01"])
    assert [str(x)[:10] for x in ctx.future_dates(monthly, 3)] == ["2021-02-01", "2021-03-01", "2021-04-01"]
    quarterly = ctx.parse_dates(["2020-01-01", "2020-04-01", "2020-07-01"])
    assert str(ctx.future_dates(quarterly, 2)[1])[:10] == "2021-01-01"
    with pytest.raises(RnnkitError, match="row 3"):
        ctx.infer_step(ctx.parse_dates(["2020-01-01", "2020-01-02", "2020-01-02"]))


def test_calendar_features_by_step():
    hourly = np.datetime64("2024-01-01T00:00") + np.arange(48) * np.timedelta64(1, "h")   # a Monday
    v, names = ctx.calendar_features(hourly)
    assert names == ["hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "month_sin", "month_cos"]
    np.testing.assert_allclose(v[6, :2], [1.0, 0.0], atol=1e-12)          # 06:00 is a quarter day
    np.testing.assert_allclose(v[0, :2], v[24, :2], atol=1e-12)           # the day repeats
    np.testing.assert_allclose(v[0, 2:4], [0.0, 1.0], atol=1e-12)         # Monday = 0
    np.testing.assert_allclose(v[24, 2:4], [np.sin(2 * np.pi / 7), np.cos(2 * np.pi / 7)], atol=1e-12)
    monthly = ctx.parse_dates([f"2020-{m:02d}-01" for m in range(1, 13)])
    v, names = ctx.calendar_features(monthly)
    assert names == ["month_sin", "month_cos"]
    np.testing.assert_allclose(v[3], [1.0, 0.0], atol=1e-12)              # April: a quarter year
    yearly = ctx.parse_dates(["2000", "2001", "2002"])
    assert ctx.calendar_features(yearly)[0].shape == (3, 0)


def test_context_windows_layout():
    values = np.arange(10.0)[:, None]
    past = 100 + np.arange(10.0)[:, None]
    fut = 1000 + np.arange(12.0)[:, None]
    w = ctx.context_windows(values, [3, 10], lookback=3, horizon=2, past_cov=past, future_cov=fut)
    assert w.shape == (2, 5, 4)
    np.testing.assert_array_equal(w[0, :, 0], [0, 1, 2, 0, 0])            # series, then zeros
    np.testing.assert_array_equal(w[0, :, 1], [100, 101, 102, 0, 0])      # past covariate
    np.testing.assert_array_equal(w[0, :, 2], [1000, 1001, 1002, 1003, 1004])
    np.testing.assert_array_equal(w[1, :, 3], [0, 0, 0, 1, 1])            # the future flag
    np.testing.assert_array_equal(w[1, :, 2], [1007, 1008, 1009, 1010, 1011])
    with pytest.raises(ValueError, match="future_cov has 12 rows"):
        ctx.context_windows(values, [10], 3, 3, future_cov=fut)


def test_read_long_csv(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("store,date,sales,temp\nA,2020-01-01,1,5\nB,2020-01-01,10,6\nA,2020-01-02,2,7\n"
                 "B,2020-01-02,20,8\nA,2020-01-03,3,9\n")
    data = ctx.read_long_csv(p, "store", ["sales", "temp"], "date")
    assert data.ids == ["A", "B"] and data.notes == []
    np.testing.assert_array_equal(data.values["A"], [[1, 5], [2, 7], [3, 9]])
    assert data.dates["B"] == ["2020-01-01", "2020-01-02"]
    # a date repeated within a series: its first row is kept (another series may share the date)
    p.write_text("store,date,sales\nA,2020-01-01,1\nB,2020-01-01,10\nA,2020-01-01,99\nA,2020-01-02,2\n"
                 "B,2020-01-02,20\n")
    data = ctx.read_long_csv(p, "store", ["sales"], "date")
    np.testing.assert_array_equal(data.values["A"][:, 0], [1, 2])
    assert data.dates["A"] == ["2020-01-01", "2020-01-02"] and len(data.values["B"]) == 2
    assert data.notes == [f"{p}: 1 row repeats the date of the row before in its series (the first on "
                          f"line 4, series 'A', 2020-01-01); the first row of each date is kept"]
    p.write_text("store,date,sales,temp\nA,2020-01-01,1,5\nB,2020-01-01,10,6\nA,2020-01-02,2,7\n"
                 "B,2020-01-02,20,8\nA,2020-01-03,3,9\n")
    with pytest.raises(RnnkitError, match="no series column 'shop'"):
        ctx.read_long_csv(p, "shop", ["sales"])
    p.write_text("store,sales\nA,1\nA,x\n")
    with pytest.raises(RnnkitError, match="line 3, column 'sales': non-numeric value 'x'"):
        ctx.read_long_csv(p, "store", ["sales"])


def test_read_long_csv_columns_of_labels(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("store,date,sales,weather,temp\nA,2020-01-01,1,Rain,5\nB,2020-01-01,10,Sun,6\n"
                 "A,2020-01-02,2,Sun,7\nB,2020-01-02,20,none,8\n")
    data = ctx.read_long_csv(p, "store", ["sales", "weather", "temp"], "date", labels={"weather": None, "temp": None})
    assert data.labels == {"weather": ["Rain", "Sun"]}
    assert data.columns == ["sales", "weather=Rain", "weather=Sun", "temp"]
    np.testing.assert_array_equal(data.values["A"], [[1, 1, 0, 5], [2, 0, 1, 7]])
    np.testing.assert_array_equal(data.values["B"], [[10, 0, 1, 6], [20, 0, 0, 8]])
    again = ctx.read_long_csv(p, "store", ["sales", "weather"], "date", labels={"weather": ["Sun"]})
    np.testing.assert_array_equal(again.values["A"][:, 1], [0, 1])
    p.write_text("store,sales,temp\nA,1,5\nA,2,\n")
    with pytest.raises(RnnkitError, match="line 3, column 'temp': empty value .series 'A'."):
        ctx.read_long_csv(p, "store", ["sales", "temp"], labels={"temp": None})


def test_read_long_csv_rows_ahead_per_series(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("id,date,sales,promo\n"
                 "a,1,5,0\na,2,6,1\na,3,,1\nb,1,7,1\nb,2,8,0\nb,3,9,0\nb,4,,0\nb,5,,1\n")
    d = ctx.read_long_csv(p, "id", ["sales", "promo"], "date", ahead=["promo"])
    assert [len(d.values[k]) for k in ("a", "b")] == [2, 3] and d.dates["b"] == ["1", "2", "3"]
    np.testing.assert_array_equal(d.ahead["a"], [[1]])
    np.testing.assert_array_equal(d.ahead["b"], [[0], [1]])
    p.write_text(p.read_text().replace("b,5,,1", "b,5,,"))
    with pytest.raises(RnnkitError, match=r"line 9, column 'promo': a row ahead"):
        ctx.read_long_csv(p, "id", ["sales", "promo"], "date", ahead=["promo"])
