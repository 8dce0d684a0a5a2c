"""Series data: CSV reading and its errors, scalers, windows and time-ordered splits."""

import json

import numpy as np
import pytest

from rnnkit.data import (
    MinMaxScaler,
    SeriesData,
    StandardScaler,
    make_scaler,
    make_windows,
    read_csv,
    scaler_from_dict,
    split_series,
    split_sizes,
)
from rnnkit.errors import CheckpointError, DataNote, RnnkitError


def write(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- read_csv --------------------------------------------------------------------------

def test_read_csv_column_by_name_and_index_with_dates(tmp_path):
    p = write(tmp_path, "date,temp,rain\n2021-01-01,1.5,0\n2021-01-02,2.5,3\n\n2021-01-03,-1,0.5\n")
    s = read_csv(p, columns="temp", date_column="date")
    assert isinstance(s, SeriesData) and len(s) == 3
    assert s.values.shape == (3, 1) and s.values.dtype == np.float64
    np.testing.assert_array_equal(s.values[:, 0], [1.5, 2.5, -1.0])
    assert s.columns == ["temp"] and s.dates == ["2021-01-01", "2021-01-02", "2021-01-03"]
    s2 = read_csv(p, columns=2, date_column=0)
    np.testing.assert_array_equal(s2.values[:, 0], [0, 3, 0.5])
    assert s2.columns == ["rain"]


def test_read_csv_keeps_the_first_row_of_a_repeated_date_and_counts_gaps(tmp_path):
    p = write(tmp_path, "when,v,sky\n2016-01-01 00:00:00,1,Clouds\n2016-01-01 00:00:00,9,Mist\n"
                        "2016-01-01 01:00:00,2,Rain\n2016-01-01 04:00:00,5,Rain\n2016-01-01 05:00:00,6,Sun\n"
                        "2016-01-01 07:00:00,8,Sun\n")
    s = read_csv(p, "v", "when")
    np.testing.assert_array_equal(s.values[:, 0], [1, 2, 5, 6, 8])
    assert s.dates[:2] == ["2016-01-01 00:00:00", "2016-01-01 01:00:00"]
    repeated, gaps = s.notes
    assert "1 row repeats the date of the row before (the first on line 3" in repeated
    assert "skip 3 steps of 1 hour in 2 gaps (the longest, 2 steps, after line 4, 2016-01-01 01:00:00)" in gaps
    # filling: the missing hours become rows, filled like empty cells, dates written alike
    s = read_csv(p, "v", "when", fill="interpolate")
    np.testing.assert_array_equal(s.values[:, 0], [1, 2, 3, 4, 5, 6, 7, 8])
    assert s.dates[2:4] == ["2016-01-01 02:00:00", "2016-01-01 03:00:00"]
    assert s.notes[1].endswith("their rows are filled (interpolate)")
    days = write(tmp_path, "d,v\n2020-01-01,1\n2020-01-02,2\n2020-01-05,5\n", "days.csv")
    s = read_csv(days, "v", "d", fill="ffill")
    assert s.dates == ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"]
    np.testing.assert_array_equal(s.values[:, 0], [1, 2, 2, 2, 5])
    assert len(read_csv(days, "v", "d", fill="drop")) == 3          # drop: the rows as they are
    # regular dates, month steps and labels that are not dates: nothing to say
    assert read_csv(write(tmp_path, "d,v\n2021-01-31,1\n2021-02-28,2\n2021-03-31,3\n2021-04-30,4\n"),
                    "v", "d").notes == []
    assert read_csv(write(tmp_path, "d,v\nQ1,1\nQ2,2\nQ3,3\n"), "v", "d").notes == []


def test_read_csv_multivariate_and_default_columns(tmp_path):
    p = write(tmp_path, "date,a,b,c\nd1,1,2,3\nd2,4,5,6\n")
    s = read_csv(p, columns=["c", "a"], date_column="date")
    np.testing.assert_array_equal(s.values, [[3, 1], [6, 4]])
    assert s.columns == ["c", "a"]
    s_all = read_csv(p, date_column="date")
    assert s_all.columns == ["a", "b", "c"] and s_all.values.shape == (2, 3)


def test_read_csv_skips_comment_lines(tmp_path):
    p = write(tmp_path, "# source: a sensor\nt,v\n# calibrated\n1,2.0\n2,3.0\n")
    s = read_csv(p, columns="v", date_column="t")
    np.testing.assert_array_equal(s.values[:, 0], [2.0, 3.0])
    with pytest.raises(RnnkitError, match="no column 't'"):
        read_csv(p, columns="v", date_column="t", comment=None)  # the comment became the header


def test_read_csv_without_header_and_other_delimiter(tmp_path):
    p = write(tmp_path, "1;10\n2;20\n3;30\n")
    s = read_csv(p, columns=1, header=False, delimiter=";")
    np.testing.assert_array_equal(s.values[:, 0], [10, 20, 30])
    assert s.dates is None


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(RnnkitError, match="not found.*none.csv"):
        read_csv(tmp_path / "none.csv")


def test_read_csv_unknown_column_lists_available(tmp_path):
    p = write(tmp_path, "date,temp,rain\nx,1,2\ny,2,3\n")
    with pytest.raises(RnnkitError, match=r"no column 'tmp'; available columns: 'date', 'temp', 'rain'"):
        read_csv(p, columns="tmp", date_column="date")
    with pytest.raises(RnnkitError, match="index 7 is out of range"):
        read_csv(p, columns=7)
    with pytest.raises(TypeError, match="column name or index"):
        read_csv(p, columns=[1.5])


def test_read_csv_non_numeric_names_line_column_and_value(tmp_path):
    p = write(tmp_path, "date,temp\nd1,1.0\nd2,warm\nd3,3\n")
    with pytest.raises(RnnkitError, match=r"non-numeric value 'warm' on line 3, column 'temp'"):
        read_csv(p, columns="temp", date_column="date")
    # without columns, a column of text is not read (a note names it), stray text in numbers is an error
    with pytest.raises(RnnkitError, match=r"non-numeric value 'warm' on line 3, column 'temp'"):
        read_csv(p)
    t = write(tmp_path, "station,v,vol,k\nA1,1.5,3.1B,7\nA1,.,2.9B,9\nA1,2.5,3.0B,4\n", "text.csv")
    data = read_csv(t)
    assert data.columns == ["v", "k"] and data.values[:, 0].tolist() == [1.5, 2.0, 2.5]     # '.' is a gap
    assert data.notes[0].endswith("columns 'station' ('A1'), 'vol' ('3.1B') hold text, not numbers: not read")
    assert "1 empty cell (the first on line 3, column 'v') filled by linear interpolation" in data.notes[1]
    with pytest.raises(RnnkitError, match=r"empty cell on line 3, column 'v'"):
        read_csv(t, fill="error")
    with pytest.raises(RnnkitError, match=r"no column holds numbers: 'day' \('d1'\) holds text \(if one holds "
                                          r"the dates, name it as date_column\)"):
        read_csv(write(tmp_path, "day\nd1\nd2\n", "days.csv"))
    q = write(tmp_path, "v\n1\ninf\n", "inf.csv")
    with pytest.raises(RnnkitError, match="'inf' on line 3.*not finite"):
        read_csv(q)


def test_read_csv_columns_of_labels_become_indicator_columns(tmp_path):
    """A column named in ``labels`` that holds words is one 0/1 column per label, in its
    place; "None" and empty cells are no label; a fitted model's labels are used as given
    (a label first seen later is 0 everywhere); a column of numbers stays numbers."""
    p = tmp_path / "traffic.csv"
    p.write_text("date,holiday,temp,weather,volume\n2020-01-01,New Year,1.5,Rain,10\n2020-01-02,None,2.5,Clear,20\n"
                 "2020-01-03,,3.5,Rain,30\n2020-01-04,None,,Fog,40\n")
    data = read_csv(p, ["volume", "temp", "weather", "holiday"], "date", fill="interpolate",
                    labels={"temp": None, "weather": None, "holiday": None})
    assert data.labels == {"weather": ["Clear", "Fog", "Rain"], "holiday": ["New Year"]}
    assert data.columns == ["volume", "temp", "weather=Clear", "weather=Fog", "weather=Rain", "holiday=New Year"]
    np.testing.assert_array_equal(data.values, [[10, 1.5, 0, 0, 1, 1], [20, 2.5, 1, 0, 0, 0],
                                                [30, 3.5, 0, 0, 1, 0], [40, 3.5, 0, 1, 0, 0]])
    later = read_csv(p, ["volume", "weather"], "date", labels={"weather": ["Clear", "Rain"]})
    assert later.columns == ["volume", "weather=Clear", "weather=Rain"]
    np.testing.assert_array_equal(later.values[:, 1:], [[0, 1], [1, 0], [0, 1], [0, 0]])   # Fog: unseen
    with pytest.raises(RnnkitError, match="non-numeric value 'Rain' on line 2, column 'weather'"):
        read_csv(p, ["volume", "weather"], "date")                 # not named in labels: numbers only
    many = tmp_path / "many.csv"
    many.write_text("x,code\n" + "".join(f"{i},c{i}\n" for i in range(60)))
    with pytest.raises(RnnkitError, match="column 'code' holds 60 distinct labels .*at most 50"):
        read_csv(many, ["x", "code"], labels={"code": None})
    with pytest.raises(ValueError, match="labels names \\['wind'\\]"):
        read_csv(p, ["volume"], "date", labels={"wind": None})


def test_read_csv_gap_errors_and_fills(tmp_path):
    p = write(tmp_path, "t,v,w\n1,1.0,10\n2,,20\n3,NA,30\n4,4.0,40\n5,5.0,\n")
    with pytest.raises(RnnkitError, match=r"empty cell on line 3, column 'v' \(3 empty cells in all\)"):
        read_csv(p, columns=["v", "w"], fill="error")
    a = read_csv(p, columns=["v", "w"])                  # auto: interpolated, and said
    assert a.notes == [f"{p}: 3 empty cells (the first on line 3, column 'v') filled by linear interpolation "
                       f"(fill='error', 'ffill' or 'drop' to choose)"]
    s = read_csv(p, columns=["v", "w"], fill="interpolate")
    np.testing.assert_array_equal(a.values, s.values)
    np.testing.assert_allclose(s.values[:, 0], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(s.values[:, 1], [10, 20, 30, 40, 40])  # trailing edge: nearest
    f = read_csv(p, columns=["v", "w"], fill="ffill")
    np.testing.assert_allclose(f.values[:, 0], [1, 1, 1, 4, 5])
    np.testing.assert_allclose(f.values[:, 1], [10, 20, 30, 40, 40])
    d = read_csv(p, columns=["v", "w"], date_column="t", fill="drop")
    np.testing.assert_allclose(d.values, [[1, 10], [4, 40]])
    assert d.dates == ["1", "4"]
    with pytest.raises(ValueError, match="fill must be one of"):
        read_csv(p, fill="zero")


def test_read_csv_ffill_cannot_fill_a_leading_gap(tmp_path):
    p = write(tmp_path, "v,w\n,1\n2,2\n3,3\n", "lead.csv")
    with pytest.raises(RnnkitError, match=r"column 'v' starts with an empty cell on line 2"):
        read_csv(p, fill="ffill")
    s = read_csv(p, fill="interpolate")
    np.testing.assert_allclose(s.values[:, 0], [2, 2, 3])
    q = write(tmp_path, "v,w\n,1\n,2\n", "allgap.csv")
    with pytest.raises(RnnkitError, match="column 'v' has no values"):
        read_csv(q, fill="interpolate")


def test_read_csv_too_few_rows_and_short_rows(tmp_path):
    p = write(tmp_path, "v\n1\n")
    with pytest.raises(RnnkitError, match="1 usable rows, need at least 2"):
        read_csv(p)
    assert len(read_csv(p, min_rows=1)) == 1
    q = write(tmp_path, "a,b\n1,2\n3\n", "short.csv")
    with pytest.raises(RnnkitError, match="line 3 has 1 fields, expected at least 2"):
        read_csv(q, columns="b")
    e = write(tmp_path, "", "empty.csv")
    with pytest.raises(RnnkitError, match="empty"):
        read_csv(e)
    h = write(tmp_path, "a,b\n", "header_only.csv")
    with pytest.raises(RnnkitError, match="no data rows"):
        read_csv(h)


def test_read_csv_undecodable_bytes(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"v\n1\n\xff\xfe\n")
    with pytest.raises(RnnkitError, match="bin.csv: bytes at offset"):
        read_csv(p, encoding="utf-8")
    with pytest.raises(RnnkitError, match="bin.csv: non-numeric value 'ÿþ' on line 3"), \
            pytest.warns(DataNote, match="bin.csv: not UTF-8; read as Windows-1252"):
        read_csv(p)                 # the guess, Windows-1252, decodes every byte
    p.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
    with pytest.raises(RnnkitError, match=r"bin.csv: a zip archive \(an .xlsx workbook\? save it as CSV\), "
                                          r"not a CSV file"):
        read_csv(p)
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(RnnkitError, match=r"bin.csv: a binary file \(it holds NUL bytes\), not a CSV file"):
        read_csv(p)


# -- scalers ---------------------------------------------------------------------------

def test_standard_scaler_fitted_on_train_only():
    rng = np.random.default_rng(0)
    series = np.concatenate([rng.normal(0, 1, (80, 2)), rng.normal(50, 5, (20, 2))])
    train, _, _ = split_series(series, 0.1, 0.1)
    sc = StandardScaler().fit(train)
    np.testing.assert_allclose(sc.mean, train.mean(axis=0))
    np.testing.assert_allclose(sc.std, train.std(axis=0))
    assert not np.allclose(sc.mean, series.mean(axis=0))  # the later rows did not leak in
    z = sc.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(series)), series)


def test_minmax_scaler_range_and_inverse():
    x = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]])
    sc = MinMaxScaler(feature_range=(-1, 1))
    z = sc.fit_transform(x)
    np.testing.assert_allclose(z, [[-1, -1], [0, 0], [1, 1]])
    np.testing.assert_allclose(sc.inverse_transform(z), x)
    # values outside the training range extrapolate linearly
    np.testing.assert_allclose(sc.transform(np.array([[20.0, 40.0]])), [[3, 2]])


def test_scaler_columns_and_shapes():
    rng = np.random.default_rng(1)
    x = rng.normal([1.0, 100.0, -5.0], [1.0, 10.0, 2.0], size=(50, 3))
    sc = StandardScaler().fit(x)
    y = rng.normal(size=(4, 6, 1)).astype(np.float32)  # e.g. predictions of column 1 only
    back = sc.inverse_transform(y, columns=[1])
    assert back.shape == y.shape and back.dtype == np.float32
    np.testing.assert_allclose(back, y * sc.std[1] + sc.mean[1], rtol=1e-6)
    np.testing.assert_allclose(sc.transform(back, columns=1), y, rtol=1e-5, atol=1e-5)
    # windows (n, T, F) transform feature-wise
    w = x[:30].reshape(5, 6, 3)
    np.testing.assert_allclose(sc.transform(w).reshape(30, 3), sc.transform(x[:30]))
    one = StandardScaler().fit(np.arange(10.0))  # a 1-D series is one feature
    assert one.n_features == 1
    np.testing.assert_allclose(one.inverse_transform(one.transform(np.arange(10.0))), np.arange(10.0))


def test_scaler_constant_column_and_errors():
    x = np.array([[1.0, 3.0], [1.0, 5.0]])
    sc = StandardScaler().fit(x)
    assert sc.std[0] == 1.0 and np.isfinite(sc.transform(x)).all()
    mm = MinMaxScaler().fit(x)
    np.testing.assert_allclose(mm.transform(x)[:, 0], 0.0)
    with pytest.raises(RnnkitError, match="not fitted"):
        StandardScaler().transform(x)
    with pytest.raises(ValueError, match="2 features"):
        sc.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="1-D x is one feature"):
        sc.transform(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        StandardScaler().fit(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="columns must be indices"):
        sc.transform(np.zeros((2, 1)), columns=[5])
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaler(feature_range=(1, 0))
    with pytest.raises(TypeError, match="numeric"):
        sc.transform(np.array([["a", "b"]]))


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_scaler_dict_round_trip(kind):
    x = np.random.default_rng(2).normal(size=(20, 3)) * [1, 10, 100]
    sc = make_scaler(kind).fit(x)
    d = json.loads(json.dumps(sc.to_dict()))
    assert d["kind"] == kind
    back = scaler_from_dict(d)
    assert type(back) is type(sc)
    np.testing.assert_allclose(back.transform(x), sc.transform(x))
    assert type(sc).from_dict(d).n_features == 3


def test_scaler_from_dict_rejects_malformed():
    with pytest.raises(CheckpointError, match="unknown scaler kind"):
        scaler_from_dict({"kind": "robust"})
    with pytest.raises(CheckpointError, match="'std'"):
        scaler_from_dict({"kind": "standard", "mean": [0.0]})
    with pytest.raises(CheckpointError, match="different lengths"):
        scaler_from_dict({"kind": "standard", "mean": [0.0, 1.0], "std": [1.0]})
    with pytest.raises(CheckpointError):
        scaler_from_dict({"kind": "standard", "mean": [0.0], "std": [0.0]})
    with pytest.raises(CheckpointError):
        scaler_from_dict({"kind": "minmax", "data_min": [0.0], "data_max": [1.0], "feature_range": [1, 0]})
    with pytest.raises(CheckpointError, match="expected a dict with kind 'minmax'"):
        MinMaxScaler.from_dict({"kind": "standard"})
    with pytest.raises(ValueError, match="kind must be one of"):
        make_scaler("robust")
    with pytest.raises(RnnkitError, match="not fitted"):
        StandardScaler().to_dict()


# -- windows ---------------------------------------------------------------------------

def test_make_windows_shapes_and_contents():
    N, F = 20, 3
    s = np.arange(N * F, dtype=np.float64).reshape(N, F)
    X, Y, idx = make_windows(s, lookback=5, horizon=2, target_cols=[2, 0], return_index=True)
    n = N - 5 - 2 + 1
    assert X.shape == (n, 5, F) and Y.shape == (n, 2, 2) and idx.shape == (n,)
    for i in (0, 7, n - 1):
        np.testing.assert_array_equal(X[i], s[i:i + 5])
        np.testing.assert_array_equal(Y[i], s[i + 5:i + 7][:, [2, 0]])
        assert idx[i] == i + 5
    X[0, 0, 0] = -1.0
    assert s[0, 0] == 0.0  # windows are copies


def test_make_windows_univariate_stride_and_covariates():
    s = np.arange(12.0)
    X, Y = make_windows(s, lookback=3, horizon=1, stride=2)
    assert X.shape == (5, 3, 1) and Y.shape == (5, 1, 1)
    np.testing.assert_array_equal(X[1, :, 0], [2, 3, 4])
    np.testing.assert_array_equal(Y[:, 0, 0], [3, 5, 7, 9, 11])
    cov = np.stack([np.arange(12) % 7, np.arange(12) % 2], axis=1).astype(float)
    Xc, Yc = make_windows(s, lookback=4, horizon=2, covariates=cov)
    assert Xc.shape == (7, 4, 3) and Yc.shape == (7, 2, 1)
    np.testing.assert_array_equal(Xc[2, :, 1:], cov[2:6])
    np.testing.assert_array_equal(Xc[2, :, 0], s[2:6])
    x32 = make_windows(s.astype(np.float32), 3)[0]
    assert x32.dtype == np.float32


def test_make_windows_errors():
    s = np.zeros((10, 2))
    with pytest.raises(RnnkitError, match=r"10 rows, too short for lookback=8 \+ horizon=3 = 11"):
        make_windows(s, lookback=8, horizon=3)
    assert make_windows(s, lookback=8, horizon=2)[0].shape == (1, 8, 2)
    with pytest.raises(ValueError, match=r"target_cols must be column indices in \[0, 1\]"):
        make_windows(s, 3, target_cols=[2])
    with pytest.raises(ValueError, match="repeats"):
        make_windows(s, 3, target_cols=[0, 0])
    with pytest.raises(ValueError, match="one row per series row"):
        make_windows(s, 3, covariates=np.zeros((9, 1)))
    with pytest.raises(ValueError, match="NaN"):
        make_windows(np.array([1.0, np.nan, 2.0, 3.0]), 2)
    with pytest.raises(ValueError, match="1 or 2 dims"):
        make_windows(np.zeros((4, 2, 2)), 2)
    with pytest.raises(ValueError, match="lookback must be >= 1"):
        make_windows(s, 0)


# -- splits ----------------------------------------------------------------------------

def test_split_series_time_ordered():
    s = np.arange(100.0).reshape(50, 2)
    train, val, test = split_series(s, 0.2, 0.1)
    assert (len(train), len(val), len(test)) == (35, 10, 5) == split_sizes(50, 0.2, 0.1)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), s)  # order kept, nothing shuffled
    assert train[-1, 0] < val[0, 0] < test[0, 0]


def test_split_series_context_and_lists():
    s = np.arange(20.0)
    train, val, test = split_series(s, 0.25, 0.25, context=3)
    np.testing.assert_array_equal(train, np.arange(10.0))
    np.testing.assert_array_equal(val, np.arange(7.0, 15.0))
    np.testing.assert_array_equal(test, np.arange(12.0, 20.0))
    # with context=lookback, every target of the validation windows lies in the validation part
    _, Y = make_windows(val, lookback=3)
    np.testing.assert_array_equal(Y[:, 0, 0], np.arange(10.0, 15.0))
    dates = [f"d{i}" for i in range(20)]
    dtr, dva, dte = split_series(dates, 0.25, 0.25)
    assert dtr[-1] == "d9" and dva == [f"d{i}" for i in range(10, 15)] and dte[0] == "d15"
    tr, va, te = split_series(s, 0.0, 0.2, context=2)
    assert len(tr) == 16 and len(va) == 0 and len(te) == 6


def test_split_fraction_validation():
    with pytest.raises(ValueError, match=r"val_fraction must lie in \[0, 1\)"):
        split_sizes(100, -0.1, 0.1)
    with pytest.raises(ValueError, match="must be < 1"):
        split_sizes(100, 0.6, 0.5)
    with pytest.raises(TypeError, match="test_fraction must be a number"):
        split_sizes(100, 0.1, None)
    with pytest.raises(RnnkitError, match="empty test part"):
        split_sizes(10, 0.2, 0.01)
    with pytest.raises(RnnkitError, match="no training rows"):
        split_sizes(2, 0.4, 0.4)


def test_read_csv_rows_ahead_hold_the_columns_known_ahead(tmp_path):
    p = tmp_path / "traffic.csv"
    p.write_text("date,volume,temp,holiday,promo\n"
                 "2020-01-01,10,5,None,0\n2020-01-02,12,6,Xmas,1\n2020-01-03,11,7,None,0\n"
                 "2020-01-04,,,Xmas,1\n2020-01-05,NA,,,0\n")
    d = read_csv(p, ["volume", "temp", "holiday", "promo"], "date", labels={"holiday": None},
                 ahead=["holiday", "promo"])
    assert len(d) == 3 and d.dates == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert d.columns == ["volume", "temp", "holiday=Xmas", "promo"]
    assert d.ahead_columns == ["holiday=Xmas", "promo"] and d.ahead_dates == ["2020-01-04", "2020-01-05"]
    np.testing.assert_array_equal(d.ahead, [[1, 1], [0, 0]])
    # a row ahead must give every column known ahead
    p.write_text(p.read_text().replace("2020-01-05,NA,,,0", "2020-01-05,,,None,"))
    with pytest.raises(RnnkitError, match=r"line 6, column 'promo': a row ahead"):
        read_csv(p, ["volume", "temp", "holiday", "promo"], "date", labels={"holiday": None},
                 ahead=["holiday", "promo"])
    # without ahead, the empty cells are gaps as always
    with pytest.raises(RnnkitError, match="empty cell on line 5"):
        read_csv(p, ["volume", "temp", "holiday", "promo"], "date", labels={"holiday": None}, fill="error")


def test_read_csv_sniffs_semicolons_tabs_and_decimal_commas(tmp_path):
    semi = tmp_path / "semi.csv"
    semi.write_text("Monat;Umsatz;Preis\nJan 2020;1,5;10\nFeb 2020;-2,25;11\nMar 2020;3;12,5\n")
    d = read_csv(semi, date_column="Monat")
    assert d.columns == ["Umsatz", "Preis"]
    np.testing.assert_array_equal(d.values, [[1.5, 10.0], [-2.25, 11.0], [3.0, 12.5]])
    assert any("separated by ';'" in n for n in d.notes)
    tab = tmp_path / "tab.tsv"
    tab.write_text("date\tvalue\n2020-01-01\t1.5\n2020-01-02\t2\n")
    assert read_csv(tab, date_column="date").values[:, 0].tolist() == [1.5, 2.0]
    # in a comma-separated file a quoted comma separates thousands
    thousands = tmp_path / "k.csv"
    thousands.write_text('date,value\n2020-01-01,"1,234.5"\n2020-01-02,"-12,000"\n2020-01-03,7\n')
    assert read_csv(thousands, date_column="date").values[:, 0].tolist() == [1234.5, -12000.0, 7.0]
    bad = tmp_path / "bad.csv"
    bad.write_text('date,value\n2020-01-01,"1,2345"\n2020-01-02,3\n')
    with pytest.raises(RnnkitError, match=r"non-numeric value '1,2345' on line 2"):
        read_csv(bad, date_column="date")


def test_read_csv_without_a_header_row_names_the_columns(tmp_path):
    path = tmp_path / "nohead.csv"
    path.write_text("31/01/2020,1.5,7\n29/02/2020,2.5,8\n31/03/2020,3.5,9\n")
    d = read_csv(path, date_column="date")
    assert d.columns == ["value1", "value2"] and d.dates[0] == "31/01/2020" and len(d.values) == 3
    assert any("no header row" in n for n in d.notes)
    values = tmp_path / "values.csv"
    values.write_text("1.5\n2.5\n3.5\n")
    d = read_csv(values)
    assert d.columns == ["value"] and d.values[:, 0].tolist() == [1.5, 2.5, 3.5]
    named = tmp_path / "named.csv"                  # a header of names stays a header
    named.write_text("when,value\n2020-01-01,1\n2020-01-02,2\n")
    assert read_csv(named, date_column="when").columns == ["value"]


def test_read_csv_skips_a_data_frame_row_index(tmp_path):
    path = tmp_path / "frame.csv"                   # pandas' to_csv: an unnamed index column first
    path.write_text(",Quarter,Consumption\n0,1970 Q1,0.6\n1,1970 Q2,0.5\n2,1970 Q3,0.9\n")
    d = read_csv(path, date_column="Quarter")
    assert d.columns == ["Consumption"] and any("row index, not read" in n for n in d.notes)
    years = tmp_path / "years.csv"                  # an index of years, and a column named 0
    years.write_text(",0\n1821,269\n1822,321\n1823,585\n")
    d = read_csv(years)
    assert d.columns == ["0"] and d.values[:, 0].tolist() == [269.0, 321.0, 585.0]
    kept = tmp_path / "kept.csv"                    # an unnamed column that does not count rows is data
    kept.write_text(",b\n5,1\n3,2\n")
    assert read_csv(kept).columns == ["", "b"]
    numbered = tmp_path / "numbered.csv"            # a 'No' column numbering the rows (UCI tables)
    numbered.write_text("No,pm,id\n1,80,7\n2,75,3\n3,90,9\n")
    d = read_csv(numbered)
    assert d.columns == ["pm", "id"]                # 'id' does not count the rows: data
    assert any("column 1 ('No') counts the rows (1, 2, …): a row index, not read" in n for n in d.notes)


def test_read_csv_fills_missing_dates_of_another_format_in_iso(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("date,v\n01/01/2011,1\n01/02/2011,2\n01/04/2011,4\n01/13/2011,5\n")
    d = read_csv(path, date_column="date", fill="interpolate")
    assert d.dates[:4] == ["01/01/2011", "01/02/2011", "2011-01-03", "01/04/2011"]
    assert d.values[2, 0] == 3.0 and len(d.values) == 13


def test_read_csv_ignores_empty_unnamed_columns_and_refuses_a_total_row(tmp_path):
    sheet = tmp_path / "sheet.csv"                  # a spreadsheet's trailing commas
    sheet.write_text("date,value,,\n2020-01-01,1,,\n2020-02-01,2,,\n2020-03-01,3\n")
    d = read_csv(sheet, date_column="date")
    assert d.columns == ["value"] and d.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    total = tmp_path / "total.csv"
    total.write_text("Month,Sales\n2020-01,5\n2020-02,6\n2020-03,7\n2020-04,8\nTotal,26\n")
    with pytest.raises(RnnkitError, match=r"line 6: 'Total' is not a date like the rows above it"):
        read_csv(total, date_column="Month")
    labels = tmp_path / "labels.csv"                # labels that are not dates at all stay labels
    labels.write_text("day,v\nday1,1\nday2,2\nday3,3\nday4,4\n")
    assert read_csv(labels, date_column="day").dates == ["day1", "day2", "day3", "day4"]


def test_read_csv_joins_year_and_quarter_columns_into_dates(tmp_path):
    path = tmp_path / "macro.csv"                   # statsmodels' macrodata layout
    path.write_text('"year","quarter","realgdp"\n' + "".join(f"{1959 + i // 4},{i % 4 + 1},{100 + i}\n"
                                                           for i in range(10)))
    d = read_csv(path, date_column="year")
    assert d.columns == ["realgdp"] and len(d.values) == 10
    assert d.dates[:5] == ["1959Q1", "1959Q2", "1959Q3", "1959Q4", "1960Q1"]
    monthly = tmp_path / "monthly.csv"
    monthly.write_text("Year,Month,v\n2020,11,1\n2020,12,2\n2021,1,3\n")
    assert read_csv(monthly, date_column="Year").dates == ["2020-11", "2020-12", "2021-01"]
    # a date column that repeats on most rows is not one date per row: an error, not most rows dropped
    years = tmp_path / "years.csv"
    years.write_text("year,kind,v\n" + "".join(f"{2000 + i // 3},{i % 3},{i}\n" for i in range(9)))
    with pytest.raises(RnnkitError, match=r"6 of 9 rows repeat the date of the row before .* not hold one date"):
        read_csv(years, date_column="year")
    # two series interleaved (half the rows repeat a date) is an error too; a log's few repeats are dropped
    two = tmp_path / "two.csv"
    two.write_text("date,store,v\n" + "".join(f"2020-01-{1 + i // 2:02d},{i % 2},{i}\n" for i in range(12)))
    with pytest.raises(RnnkitError, match=r"6 of 12 rows repeat the date of the row before"):
        read_csv(two, date_column="date")
    log = tmp_path / "log.csv"
    log.write_text("date,v\n" + "".join(f"2020-01-{1 + i - (i > 4):02d},{i}\n" for i in range(12)))
    assert len(read_csv(log, date_column="date").values) == 11


def test_read_csv_passes_over_excels_sep_line_keeping_line_numbers(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("sep=;\r\nDatum;Wert\r\n01.01.2020;10,5\r\n02.01.2020;11,5\r\n03.01.2020;x\r\n".encode("cp1252"))
    with pytest.raises(RnnkitError, match=r"excel.csv: non-numeric value 'x' on line 5, column 'Wert'"):
        read_csv(path, date_column="Datum")
    path.write_text("sep=;\nDatum;Wert\n01.01.2020;10,5\n02.01.2020;11,5\n03.01.2020;12\n")
    d = read_csv(path, date_column="Datum")
    assert d.columns == ["Wert"] and d.values[:, 0].tolist() == [10.5, 11.5, 12.0]
    assert d.dates == ["01.01.2020", "02.01.2020", "03.01.2020"]
    # a download's source link alone on the first line is not the header either
    link = tmp_path / "Bitstamp_BTCUSD_1h.csv"
    link.write_text("https://www.CryptoDataDownload.com\nunix,date,close\n1609462800,2021-01-01 01:00:00,2\n"
                    "1609459200,2021-01-01 00:00:00,x\n")
    with pytest.raises(RnnkitError, match=r"non-numeric value 'x' on line 4, column 'close'"):
        read_csv(link, ["close"], date_column="date")
    single = tmp_path / "single.csv"                 # one column: its first line is its name
    single.write_text("www.example.org\n1\n2\n")
    assert read_csv(single).columns == ["www.example.org"]


def test_read_csv_joins_a_day_column_and_a_time_column(tmp_path):
    path = tmp_path / "household_power_consumption.txt"      # UCI's layout: Date;Time;values, '?' missing
    path.write_text("Date;Time;Global_active_power;Voltage\n16/12/2006;23:58:00;4.2;234.8\n"
                    "16/12/2006;23:59:00;?;233.6\n17/12/2006;00:00:00;4.4;233.3\n17/12/2006;00:01:00;4.5;235.0\n")
    d = read_csv(path, date_column="Date")
    assert d.columns == ["Global_active_power", "Voltage"]           # the time column is part of the date
    assert d.dates == ["16/12/2006 23:58:00", "16/12/2006 23:59:00", "17/12/2006 00:00:00", "17/12/2006 00:01:00"]
    assert any("the dates are columns 'Date' and 'Time' together" in n for n in d.notes)
    np.testing.assert_allclose(d.values[:, 0], [4.2, 4.3, 4.4, 4.5])
    # a time column that does not hold times of day, or a date column that has its own time, stays apart
    other = tmp_path / "other.csv"
    other.write_text("date,time,v\n2020-01-01,1,5\n2020-01-02,2,6\n2020-01-03,3,7\n")
    assert read_csv(other, date_column="date").columns == ["time", "v"]
    both = tmp_path / "both.csv"
    both.write_text("date,time,v\n2020-01-01 10:00,10:00,5\n2020-01-01 11:00,11:00,6\n2020-01-01 12:00,12:00,7\n")
    assert read_csv(both, date_column="date").dates[0] == "2020-01-01 10:00"


def test_read_csv_joins_year_month_day_and_hour_columns(tmp_path):
    daily = tmp_path / "daily.csv"
    daily.write_text("Year,Month,Day,Temp\n2020,2,28,1.5\n2020,2,29,2.5\n2020,3,1,3.5\n")
    d = read_csv(daily, date_column="Year")
    assert d.columns == ["Temp"] and d.dates == ["2020-02-28", "2020-02-29", "2020-03-01"]
    assert any("the dates are columns 'Year', 'Month' and 'Day' together" in n for n in d.notes)
    hourly = tmp_path / "pm.csv"                    # the layout of hourly sensor logs (UCI Beijing PM2.5)
    hourly.write_text("No,year,month,day,hour,pm2.5,TEMP\n"
                      + "".join(f"{k + 1},2010,1,{1 + (22 + k) // 24},{(22 + k) % 24},{10 + k},-{k}\n"
                                for k in range(4)))
    h = read_csv(hourly, ["pm2.5"], date_column="year")
    assert h.dates == ["2010-01-01 22:00", "2010-01-01 23:00", "2010-01-02 00:00", "2010-01-02 01:00"]
    np.testing.assert_array_equal(h.values[:, 0], [10, 11, 12, 13])
    odd = tmp_path / "odd.csv"                      # a 'day' column that is not a day of the month
    odd.write_text("year,month,day,v\n2020,1,40,1\n2020,2,41,2\n2020,3,42,3\n")
    assert read_csv(odd, ["v"], date_column="year").dates == ["2020-01", "2020-02", "2020-03"]


def test_read_csv_reads_a_year_by_month_table_as_one_monthly_series(tmp_path):
    path = tmp_path / "wide.csv"                    # statsmodels' elnino layout; this year not over yet
    months = ",".join(f'"{m}"' for m in ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                          "NOV", "DEC"))
    path.write_text(f'"YEAR",{months}\n' + "1950," + ",".join(str(k) for k in range(1, 13)) + "\n"
                    + "1951,13,14,15,,,,,,,,,\n")
    d = read_csv(path, date_column="YEAR")
    assert d.columns == ["value"] and d.values[:, 0].tolist() == list(range(1, 16))
    assert d.dates[0] == "1950-01" and d.dates[-1] == "1951-03"
    assert any("a column per month" in n for n in d.notes)


def test_read_csv_reverses_newest_first_rows_and_refuses_rows_out_of_order(tmp_path):
    desc = tmp_path / "prices.csv"                  # as price downloads list them: newest first
    desc.write_text("Date,Price\n04/03/2024,13\n04/02/2024,12\n04/01/2024,11\n03/31/2024,10\n")
    d = read_csv(desc, date_column="Date")
    assert d.values[:, 0].tolist() == [10.0, 11.0, 12.0, 13.0] and d.dates[0] == "03/31/2024"
    assert any("newest date (04/03/2024) to the oldest" in n for n in d.notes)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("date,v\n2020-01-01,1\n2020-01-03,3\n2020-01-02,2\n2020-01-04,4\n")
    with pytest.raises(RnnkitError, match=r"line 4: the date '2020-01-02' is before the row above it"):
        read_csv(mixed, date_column="date")


def test_read_csv_reads_percent_and_currency_cells(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text('date,rate,price\n2020-01-01,5.1%,"$1,234.50"\n2020-02-01,-0.5%,€12\n')
    d = read_csv(path, date_column="date")
    assert d.values.tolist() == [[5.1, 1234.5], [-0.5, 12.0]]
