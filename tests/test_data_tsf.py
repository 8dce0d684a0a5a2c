"""Monash forecasting archive files (.tsf): reading them and forecasting them from the command line."""

import csv
import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.tsf import read_tsf
from rnnkit.errors import RnnkitError

HEADER = ["# from the Monash forecasting archive's layout", "@relation test",
          "@attribute series_name string", "@attribute state string", "@attribute start_timestamp date",
          "@frequency {freq}", "@horizon 4", "@missing true", "@equallength false", "@data"]


def write_tsf(path, series, freq="monthly", starts=None):
    lines = [h.format(freq=freq) for h in HEADER]
    for k, values in enumerate(series):
        start = (starts or {}).get(k, f"{1990 + k}-01-01 00-00-00")
        lines.append(f"T{k + 1}:NSW:{start}:" + ",".join(v if isinstance(v, str) else f"{v:.3f}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_series_dates_and_gaps(tmp_path):
    path = write_tsf(tmp_path / "a.tsf", [[1.0, 2.0, "?", 4.0, 5.0], ["?", "?", 3.0, 4.5, 6.0, "?"]])
    d = read_tsf(path)
    assert d.ids == ["T1", "T2"] and d.frequency == "monthly" and d.horizon == 4 and d.period == 12
    np.testing.assert_array_equal(d.values["T1"], [1, 2, 3, 4, 5])            # the '?' inside, interpolated
    np.testing.assert_array_equal(d.values["T2"], [3, 4.5, 6])                # those at the ends, dropped
    assert d.dates["T1"] == ["1990-01", "1990-02", "1990-03", "1990-04", "1990-05"]
    assert d.dates["T2"] == ["1991-03", "1991-04", "1991-05"]                 # its first value is its third month
    assert any("1 missing value ('?') inside" in n for n in d.notes)
    assert any("3 missing values ('?') at the ends" in n for n in d.notes)
    q = read_tsf(write_tsf(tmp_path / "q.tsf", [[1, 2, 3]], "quarterly", {0: "2000-04-01 00-00-00"}))
    assert q.dates["T1"] == ["2000-04", "2000-07", "2000-10"] and q.period == 4
    h = read_tsf(write_tsf(tmp_path / "h.tsf", [[1, 2, 3]], "half_hourly", {0: "2015-06-30 23-30-00"}))
    assert h.dates["T1"] == ["2015-06-30 23:30:00", "2015-07-01 00:00:00", "2015-07-01 00:30:00"]
    y = read_tsf(write_tsf(tmp_path / "y.tsf", [[1, 2]], "yearly"))
    assert y.dates["T1"] == ["1990", "1991"] and y.period is None


@pytest.mark.parametrize("body, needle", [
    ("@relation x\n@attribute series_name string\n", "no '@data' line"),
    ("@attribute series_name string\n@data\nT1:1,2\nT1:3,4\n", "line 4: series 'T1' appears twice"),
    ("@attribute series_name string\n@data\nT1:1,2,abc\n", "line 3: non-numeric value 'abc' in series 'T1'"),
    ("@attribute series_name string\n@attribute start_timestamp date\n@frequency daily\n@data\nT1:1990/01/01:1,2\n",
     "line 5: start timestamp '1990/01/01' is not 'YYYY-MM-DD HH-MM-SS'"),
    ("@attribute series_name string\n@data\nT1:?,2,?\n", "series 'T1' has 1 values"),
    ("@attribute series_name text\n@data\nT1:1,2\n", "line 1: attribute type 'text'"),
    ("@attribute series_name string\n@data\nT1\n", "line 3: expected 1 attributes and the values"),
])
def test_bad_files_name_the_line(tmp_path, body, needle):
    path = tmp_path / "bad.tsf"
    path.write_text(body)
    with pytest.raises(RnnkitError, match=None) as err:
        read_tsf(path)
    assert needle in str(err.value) and "bad.tsf" in str(err.value)


def test_forecast_a_tsf_file_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    series = []
    for k in range(4):
        t = np.arange(48 + 6 * k)
        series.append(50 + 5 * k + 0.3 * t + 6 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, len(t)))
    series[1] = list(series[1])
    series[1][7] = "?"
    path = write_tsf(tmp_path / "tourism.tsf", series)
    out = tmp_path / "run"
    assert main(["forecast", str(path), "--out", str(out), "--hidden", "4", "--epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert f"{path}: 4 series of 48–66 rows, monthly; horizon 4 (the file's)" in said
    assert "1 missing value ('?') inside the series filled" in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["period"] == 12 and metrics["horizon"] == 4
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["series"] for r in rows] == [f"T{k}" for k in range(1, 5) for _ in range(4)]
    assert [r["date"] for r in rows[:4]] == ["1994-01-01", "1994-02-01", "1994-03-01", "1994-04-01"]
    assert main(["evaluate", str(out), str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["series"] == 4
    # a flag the file answers itself, or no horizon anywhere, is a one-line error
    assert main(["forecast", str(path), "--out", str(tmp_path / "x"), "--series-column", "id"]) == 1
    assert "--series-column: " in capsys.readouterr().err
    path.write_text(path.read_text().replace("@horizon 4\n", ""))
    assert main(["forecast", str(path), "--out", str(tmp_path / "x")]) == 1
    assert "--horizon is required: " in capsys.readouterr().err


def test_a_csv_of_one_series_per_row_as_m4_ships_it(tmp_path, capsys):
    from rnnkit.data.tsf import read_series_rows, series_rows_layout

    rng = np.random.default_rng(1)
    width = 40
    lines = ['"V1",' + ",".join(f'"V{k}"' for k in range(2, width + 2))]
    for i, n in enumerate((40, 31, 36, 28)):
        t = np.arange(n)
        v = 100 + 10 * i + t + 5 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.3, n)
        lines.append(f'"Q{i + 1}",' + ",".join(f"{x:.3f}" for x in v) + "," * (width - n))
    path = tmp_path / "Quarterly-train.csv"
    path.write_text("\n".join(lines) + "\n")
    assert series_rows_layout(path)
    d = read_series_rows(path)
    assert d.ids == ["Q1", "Q2", "Q3", "Q4"] and [len(d.values[k]) for k in d.ids] == [40, 31, 36, 28]
    assert d.frequency == "quarterly" and d.period == 4 and d.horizon == 8          # M4's quarterly horizon
    out = tmp_path / "run"
    assert main(["forecast", str(path), "--out", str(out), "--hidden", "4", "--epochs", "1"]) == 0
    assert f"{path}: 4 series of 28–40 rows, quarterly, without dates; horizon 8 (the file's)" in \
        capsys.readouterr().out
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and rows[0]["series"] == "Q1" and "date" not in rows[0]
    # not this layout: a wide file of a date and many columns, or an empty cell inside a series
    wide = tmp_path / "wide.csv"
    wide.write_text("date," + ",".join(f"MT_{k}" for k in range(12)) + "\n" + "".join(
        f"2011-01-{d:02d}," + ",".join("1.5" for _ in range(12)) + "\n" for d in range(1, 6)))
    assert not series_rows_layout(wide)
    holes = tmp_path / "holes.csv"
    holes.write_text("\n".join(lines[:2] + [lines[2].replace(",", ",,", 1).rsplit(",", 1)[0]]) + "\n")
    assert not series_rows_layout(holes)
