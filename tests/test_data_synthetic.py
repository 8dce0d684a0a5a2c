"""Seeded synthetic data sets: reproducible, with the properties the demos rely on."""

import datetime as dt

import numpy as np
import pytest

from rnnkit.data import (
    DATE_FORMATS,
    date_dataset,
    digit_images,
    dna_motif_dataset,
    encode_strings,
    make_windows,
    seasonal_series,
    temperature_series,
)


def test_seasonal_series_reproducible_and_periodic():
    a = seasonal_series(n=480, period=24, noise=0.1, seed=1)
    b = seasonal_series(n=480, period=24, noise=0.1, seed=1)
    c = seasonal_series(n=480, period=24, noise=0.1, seed=2)
    assert a.shape == (480,) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    clean = seasonal_series(n=96, period=24, noise=0.0)
    np.testing.assert_allclose(clean[24:], clean[:-24], atol=1e-12)  # exactly periodic
    # seasonal-naive error is about the noise level, far below the series' spread
    naive_err = np.sqrt(np.mean((a[24:] - a[:-24]) ** 2))
    assert naive_err < 0.2 < a.std()
    trend = seasonal_series(n=240, period=24, noise=0.0, trend=0.5)
    np.testing.assert_allclose(trend[24:] - trend[:-24], 12.0, atol=1e-9)
    with pytest.raises(ValueError, match="period must be >= 2"):
        seasonal_series(period=1)
    with pytest.raises(ValueError, match="noise"):
        seasonal_series(noise=-1.0)


def test_temperature_series_dates_and_annual_cycle():
    v, dates = temperature_series(n_days=730, seed=0)
    v2, _ = temperature_series(n_days=730, seed=0)
    np.testing.assert_array_equal(v, v2)
    assert v.shape == (730,) and len(dates) == 730
    assert dates[0] == "2000-01-01" and dates[59] == "2000-02-29" and dates[-1] == "2001-12-30"
    months = np.array([int(d[5:7]) for d in dates])
    summer, winter = v[(months >= 6) & (months <= 8)].mean(), v[(months <= 2) | (months == 12)].mean()
    assert summer - winter > 10  # northern-hemisphere-like annual cycle
    with pytest.raises(ValueError, match="ISO date"):
        temperature_series(start="01/01/2000")


def test_dna_motif_dataset_labels_follow_the_motif():
    seqs, labels = dna_motif_dataset(n=60, length=80, motif="TATAGGCA", early=0.25, seed=3)
    assert len(seqs) == 60 and labels.shape == (60,) and labels.dtype == np.int64
    assert labels.sum() == 30  # balanced
    assert all(len(s) == 80 and set(s) <= set("ACGT") for s in seqs)
    for s, y in zip(seqs, labels):
        pos = s.find("TATAGGCA")
        if y == 1:
            assert 0 <= pos <= 20  # placed early, far from the end
        else:
            assert pos == -1
    again, labels2 = dna_motif_dataset(n=60, length=80, motif="TATAGGCA", early=0.25, seed=3)
    assert again == seqs and np.array_equal(labels, labels2)
    ids = encode_strings(seqs, "ACGT")
    assert ids[0].shape == (80,) and ids[0].max() <= 3
    with pytest.raises(ValueError, match="over 'ACGT'"):
        dna_motif_dataset(motif="TAXA")
    with pytest.raises(ValueError, match="does not fit"):
        dna_motif_dataset(length=10, motif="ACGTACGT", early=0.5)


def test_date_dataset_targets_are_the_iso_dates_of_the_sources():
    src, tgt = date_dataset(n=300, seed=0)
    assert len(src) == len(tgt) == 300
    assert (src, tgt) == date_dataset(n=300, seed=0)
    assert src != date_dataset(n=300, seed=1)[0]
    parse = {  # independent parsers for a few formats
        "%d %B %Y": None, "%Y/%m/%d": None, "%d.%m.%Y": None, "%B %d, %Y": None,
        "%d %b %Y": None, "%m/%d/%Y": None, "%Y%m%d": None, "%d-%b-%Y": None, "%b %d %Y": None,
    }
    parsed = 0
    for s, t in zip(src, tgt):
        date = dt.date.fromisoformat(t)
        assert 1950 <= date.year <= 2049
        for fmt in parse:
            try:
                got = dt.datetime.strptime(s, fmt).date()
            except ValueError:
                continue
            assert got == date, (s, t, fmt)
            parsed += 1
            break
    assert parsed > 100  # most samples checked by a parser written independently
    assert len({len(s) for s in src}) > 5  # many formats, many lengths


def test_date_formats_each_and_two_digit_years():
    day = dt.date(2021, 3, 3)
    rendered = {name: f(day) for name, f in DATE_FORMATS.items()}
    assert rendered["d Month yyyy"] == "3 March 2021"
    assert rendered["yyyy/mm/dd"] == "2021/03/03"
    assert rendered["Mon d, yy"] == "Mar 3, 21"
    assert rendered["dd.mm.yyyy"] == "03.03.2021"
    assert rendered["Weekday, d Month yyyy"] == "Wednesday, 3 March 2021"
    assert rendered["dth of Month yyyy"] == "3rd of March 2021"
    assert DATE_FORMATS["dth of Month yyyy"](dt.date(2021, 3, 11)) == "11th of March 2021"
    src, tgt = date_dataset(n=200, seed=4, formats=["Mon d, yy"])
    for s, t in zip(src, tgt):
        yy = int(s[-2:])
        assert int(t[:4]) == (1900 + yy if yy >= 50 else 2000 + yy)
    with pytest.raises(ValueError, match="unknown formats"):
        date_dataset(formats=["yyyy"])
    with pytest.raises(ValueError, match="100 years"):
        date_dataset(start_year=1900, end_year=2049)


def test_seasonal_series_feeds_windows():
    s = seasonal_series(n=100, period=10, seed=0)
    X, Y = make_windows(s, lookback=20, horizon=10)
    assert X.shape == (71, 20, 1) and Y.shape == (71, 10, 1)


def test_digit_images_are_balanced_seeded_and_need_several_rows():
    x, y = digit_images(600, seed=3)
    assert x.shape == (600, 8, 8) and x.dtype == np.float64 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.array_equal(np.bincount(y), np.full(10, 60))
    x2, y2 = digit_images(600, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(digit_images(600, seed=4)[0], x)

    def ridge_accuracy(cols):          # a linear classifier, fitted on 500 images, scored on 100
        a = np.c_[x.reshape(600, 64)[:, cols], np.ones(600)]
        w = np.linalg.solve(a[:500].T @ a[:500] + 0.1 * np.eye(a.shape[1]), a[:500].T @ np.eye(10)[y[:500]])
        return float(np.mean((a[500:] @ w).argmax(axis=1) == y[500:]))

    assert ridge_accuracy(slice(0, 64)) > 0.5          # the digits can be told apart (chance 0.1) ...
    assert ridge_accuracy(slice(48, 64)) < 0.4         # ... but not from the last two rows alone
    with pytest.raises(ValueError, match="digit_images: n must be >= 1"):
        digit_images(0)
