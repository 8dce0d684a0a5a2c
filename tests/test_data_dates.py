"""Dates as CSV files write them: ISO, and one other format per column."""

import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.dates import is_date, next_weekdays, parse_dates, weekdays_only
from rnnkit.data.sniff import choose_date_column
from rnnkit.errors import RnnkitError
from rnnkit.tasks.forecast.season import period_from_dates


@pytest.mark.parametrize("labels, first, second", [
    (["1991 Jul", "1991 Aug"], "1991-07-01", "1991-08-01"),
    (["Jul 1991", "Aug 1991"], "1991-07-01", "1991-08-01"),
    (["July 1991", "August 1991"], "1991-07-01", "1991-08-01"),
    (["Jul-91", "Aug-91"], "1991-07-01", "1991-08-01"),
    (["Jan-1-1995", "Feb-1-1995"], "1995-01-01", "1995-02-01"),
    (["01-Jan-1995", "01-Feb-1995"], "1995-01-01", "1995-02-01"),
    (["Jul 4, 1991", "Jul 5, 1991"], "1991-07-04", "1991-07-05"),
    (["2011/01/31", "2011/02/28"], "2011-01-31", "2011-02-28"),
    (["2011.01", "2011.02"], "2011-01-01", "2011-02-01"),
    (["1990M01", "1990M02"], "1990-01-01", "1990-02-01"),
    (["19580329", "19580405"], "1958-03-29", "1958-04-05"),
    (["31.01.2011", "01.02.2011"], "2011-01-31", "2011-02-01"),
    (["14-08-2018", "15-08-2018"], "2018-08-14", "2018-08-15"),
    (["1990Q1", "1990 Q2"], "1990-01-01", "1990-04-01"),
    (["Q3 1990", "q4-1990"], "1990-07-01", "1990-10-01"),
])
def test_one_format_for_the_column(labels, first, second):
    d = parse_dates(labels)
    assert [str(x)[:10] for x in d] == [first, second]


def test_times_in_24_and_12_hours():
    assert str(parse_dates(["31.01.2011 13:05", "31.01.2011 14:05"])[0]) == "2011-01-31T13:05:00"
    d = parse_dates(["1/31/2011 11:00 AM", "1/31/2011 1:00 PM", "1/31/2011 3:00 PM"])
    assert [str(x)[11:] for x in d] == ["11:00:00", "13:00:00", "15:00:00"]
    assert str(parse_dates(["2011/01/31 23:59:30", "2011/02/01 00:00:30"])[1]) == "2011-02-01T00:00:30"


def test_day_and_month_order_follow_the_step_of_the_column():
    # the first of each month for two years, written day first: read month first, the dates
    # would step by days, then jump a year
    monthly = [f"01/{m:02d}/{y}" for y in (2011, 2012) for m in range(1, 13)]
    assert [str(x)[:10] for x in parse_dates(monthly)][:3] == ["2011-01-01", "2011-02-01", "2011-03-01"]
    # days of January, written month first
    daily = [f"01/{d:02d}/2011" for d in range(1, 13)]
    assert [str(x)[:10] for x in parse_dates(daily)][:3] == ["2011-01-01", "2011-01-02", "2011-01-03"]
    # a day over 12 settles it whatever the step
    assert str(parse_dates(["12/13/2011", "12/14/2011"])[0])[:10] == "2011-12-13"
    assert str(parse_dates(["13/12/2011", "14/12/2011"])[0])[:10] == "2011-12-13"


def test_iso_rows_may_sit_among_one_other_format():
    d = parse_dates(["01/30/2011", "2011-01-31", "02/01/2011"])
    assert [str(x)[:10] for x in d] == ["2011-01-30", "2011-01-31", "2011-02-01"]


def test_an_unreadable_label_is_named_with_its_row():
    with pytest.raises(RnnkitError, match=r"f\.csv: row 3: cannot read 'soon' as a date; expected ISO"):
        parse_dates(["Jan 1991", "Feb 1991", "soon", "Apr 1991"], "f.csv")
    with pytest.raises(RnnkitError, match=r"row 2: cannot read '1991 Feb'"):      # two formats in one column
        parse_dates(["Jan 1991", "1991 Feb"])
    with pytest.raises(RnnkitError, match="row 1: '2021-02-30' is not a valid date"):
        parse_dates(["2021-02-30", "Jan 1991"])


def test_numbers_are_values_not_dates():
    assert is_date("Jul 1991") and is_date("1990Q1") and is_date("31/01/2011") and is_date("2011-01-31")
    assert not is_date("2011") and not is_date("2011.5") and not is_date("3.25") and not is_date("abc")
    assert not is_date("") and not is_date("2021-02-30")


def test_period_and_date_column_from_other_formats(tmp_path):
    months = [f"{m} {y}" for y in range(1990, 1993) for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                                "Aug", "Sep", "Oct", "Nov", "Dec")]
    assert period_from_dates(months) == 12
    assert period_from_dates([f"{y}Q{q}" for y in range(1990, 1995) for q in range(1, 5)]) == 4
    assert period_from_dates([f"{d:02d}.03.2020" for d in range(1, 29)]) == 7
    path = tmp_path / "sales.csv"
    path.write_text("units,when\n3,Jan 1990\n4,Feb 1990\n")
    assert choose_date_column(path, None, None) == "when"
    path.write_text("units,price\n3,2011.5\n4,2011.6\n")
    assert choose_date_column(path, ["units"], None) is None
    # a month column before the year: the year is the date column, and the month joins it
    path.write_text("Month,Year,Sales\n" + "".join(f"{m},{y},{m + y}\n" for y in (2010, 2011) for m in range(1, 13)))
    assert choose_date_column(path, None, None) == "Year"
    path.write_text("date,year,month,sales\n2010-01-01,2010,1,5\n2010-01-02,2010,1,6\n")   # features beside a date
    assert choose_date_column(path, None, None) == "date"


def test_forecast_reads_named_months_and_dates_its_predictions(tmp_path):
    t = np.arange(72)
    y = 100 + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).standard_normal(72)
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    path = tmp_path / "monthly.csv"
    path.write_text("month,units\n" + "".join(f"{names[i % 12]} {2000 + i // 12},{v:.3f}\n" for i, v in enumerate(y)))
    out = tmp_path / "fc"
    assert main(["forecast", str(path), "--horizon", "3", "--out", str(out), "--hidden", "8", "--epochs", "2",
                 "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["period"] == 12
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0].split(",")[-1] == "date"
    assert [r.split(",")[-1] for r in rows[1:]] == ["2006-01-01", "2006-02-01", "2006-03-01"]


def test_unix_time_in_seconds_or_milliseconds(tmp_path):
    hours = [1609459200 + 3600 * i for i in range(3)]
    expect = np.array(["2021-01-01T00:00", "2021-01-01T01:00", "2021-01-01T02:00"], dtype="datetime64[s]")
    np.testing.assert_array_equal(parse_dates([str(t) for t in hours]), expect)
    np.testing.assert_array_equal(parse_dates([str(t * 1000) for t in hours]), expect)
    with pytest.raises(RnnkitError, match="row 1: cannot read '1609459200'"):
        parse_dates(["1609459200", "1609462800000"])         # seconds and milliseconds mixed
    # digits that also read as a compact date and hour: the reading that steps regularly
    np.testing.assert_array_equal(parse_dates(["2011013122", "2011013123", "2011020100"]),
                                  np.array(["2011-01-31T22", "2011-01-31T23", "2011-02-01T00"], dtype="datetime64[s]"))
    np.testing.assert_array_equal(parse_dates(["201101312200", "201101312230"]),
                                  np.array(["2011-01-31T22:00", "2011-01-31T22:30"], dtype="datetime64[s]"))
    assert not is_date("1609459200")                          # a number alone is a value
    # a column named like a date holding Unix time dates the predictions
    path = tmp_path / "sensor.csv"
    y = 10 + np.sin(np.arange(120) * 2 * np.pi / 24)
    path.write_text("timestamp,reading\n" + "".join(f"{1609459200 + 3600 * i},{v:.3f}\n" for i, v in enumerate(y)))
    out = tmp_path / "fc"
    assert main(["forecast", str(path), "--horizon", "2", "--out", str(out), "--hidden", "4", "--epochs", "1",
                 "--quiet"]) == 0
    rows = (out / "predictions.csv").read_text().splitlines()
    assert [r.split(",")[-1] for r in rows[1:]] == ["2021-01-06 00:00:00", "2021-01-06 01:00:00"]


def test_utc_offsets_are_read_as_utc_so_summer_time_keeps_the_step():
    # Europe's spring change: 01:00+01:00, then 03:00+02:00 is one hour later
    d = parse_dates(["2021-03-28 01:00:00+01:00", "2021-03-28 03:00:00+02:00", "2021-03-28T04:00+0200"])
    assert [str(x) for x in d] == ["2021-03-28T00:00:00", "2021-03-28T01:00:00", "2021-03-28T02:00:00"]
    assert str(parse_dates(["2021-05-01T01:00:00-05:00", "2021-05-01T02:00:00Z"])[0]) == "2021-05-01T06:00:00"
    utc = np.datetime64("2021-03-27T00:00") + np.arange(48) * np.timedelta64(1, "h")
    switch = np.datetime64("2021-03-28T01:00")          # clocks go from 02:00 to 03:00 local
    local = [f"{str(t + np.timedelta64(1 + (t >= switch), 'h')).replace('T', ' ')}:00+0{1 + (t >= switch)}:00"
             for t in utc]
    assert "2021-03-28 01:00:00+01:00" in local and "2021-03-28 03:00:00+02:00" in local
    assert (np.diff(parse_dates(local)) == np.timedelta64(3600, "s")).all()
    assert period_from_dates(local) == 24


# -- business days ---------------------------------------------------------------------

def _weekdays(start, end, skip=()):
    days = np.arange(np.datetime64(start), np.datetime64(end))
    return [str(d) for d in days if np.is_busday(d) and str(d) not in skip]


def test_weekdays_only_tells_trading_days_from_calendar_days():
    trading = parse_dates(_weekdays("2021-03-01", "2021-05-01", skip=("2021-04-02",)))
    assert weekdays_only(trading)
    every_day = parse_dates([str(d) for d in np.arange(np.datetime64("2021-03-01"), np.datetime64("2021-05-01"))])
    assert not weekdays_only(every_day)                                 # weekends are rows
    assert not weekdays_only(parse_dates(["2021-03-01", "2021-03-02", "2021-03-03"]))   # no weekend crossed
    assert not weekdays_only(parse_dates(["2021-03-01 09:00", "2021-03-01 10:00", "2021-03-02 09:00"]))
    assert not weekdays_only(parse_dates(["2021-03-01", "2021-03-08", "2021-03-15", "2021-03-22"]))  # weekly


def test_next_weekdays_skip_the_weekend():
    ahead = next_weekdays(np.datetime64("2021-04-29"), 4)                # a Thursday
    assert [str(d)[:10] for d in ahead] == ["2021-04-30", "2021-05-03", "2021-05-04", "2021-05-05"]


def test_business_days_period_gaps_fill_and_forecast_dates(tmp_path):
    from rnnkit.data.series import read_csv
    from rnnkit.tasks.forecast.report import future_labels

    days = _weekdays("2021-01-04", "2021-07-01", skip=("2021-04-02", "2021-05-31"))
    assert period_from_dates(days) == 5
    assert future_labels(days, 3) == ["2021-07-01", "2021-07-02", "2021-07-05"]
    p = tmp_path / "close.csv"
    p.write_text("Date,Close\n" + "".join(f"{d},{100 + i}\n" for i, d in enumerate(days)))
    data = read_csv(p, ["Close"], "Date")
    assert len(data.values) == len(days)
    assert any("weekdays only: read as business days" in n for n in data.notes)
    gaps = [n for n in data.notes if "skip" in n]
    assert len(gaps) == 1 and "skip 2 weekdays (holidays?) in 2 gaps" in gaps[0]
    filled = read_csv(p, ["Close"], "Date", fill="interpolate")
    assert len(filled.values) == len(days) + 2
    good = filled.dates.index("2021-04-02")                             # Good Friday, filled between
    assert filled.dates[good - 1:good + 2] == ["2021-04-01", "2021-04-02", "2021-04-05"]
    assert filled.values[good, 0] == pytest.approx((filled.values[good - 1, 0] + filled.values[good + 1, 0]) / 2)
