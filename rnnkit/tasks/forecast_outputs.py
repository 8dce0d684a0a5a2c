"""The forecaster's files beside its report: metrics.json, backtest.csv, predictions.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rnnkit.tasks.run import write_json, write_text

__all__ = ["write_forecast_outputs", "metrics_table"]


def write_forecast_outputs(fc, out_dir, values, dates=None) -> dict:
    """Write ``metrics.json``, ``backtest.csv`` and ``predictions.csv`` next to a fitted
    forecaster's report; returns the metrics dict.

    ``backtest.csv`` has one row per test-part origin, step and target: the actual
    value, the model's forecast, the naive and seasonal-naive forecasts (and the
    band with intervals). ``predictions.csv`` is the forecast of the ``horizon`` rows
    after the end of ``values``.

    Shapes:
        values (N, F) as the forecaster read them; dates: N labels or None
    """
    import numpy as np

    out_dir = Path(out_dir)
    names = [fc.columns_[t] for t in fc.targets_]
    res = fc.test_backtest_
    metrics = {"horizon": fc.horizon, "lookback": fc.lookback_, "period": fc.period_, "mase_lag": fc.mase_lag_,
               "strategy": fc.strategy, "targets": names, "split": dict(fc.split_),
               "steps": fc.history_.step if fc.history_ is not None else None,
               "stop_reason": fc.history_.stop_reason if fc.history_ is not None else None,
               "test_origins": 0 if res is None else int(len(res["origins"])),
               "metrics": None if res is None else res["metrics"]}
    if res is not None and "coverage" in res:
        metrics["coverage"] = res["coverage"]
        metrics["band"] = [fc.quantiles[0], fc.quantiles[-1]]
    write_json(out_dir / "metrics.json", metrics)

    def label(row):
        return dates[row] if dates is not None and 0 <= row < len(dates) else ""

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    bands = res is not None and "lower" in res
    w.writerow(["origin_row", "origin_date", "step", "row", "date", "target", "actual", "forecast", "naive",
                "seasonal_naive"] + (["lower", "upper"] if bands else []))
    if res is not None:
        snaive = res.get("seasonal_naive")
        for i, o in enumerate(res["origins"]):
            o = int(o)
            for h in range(fc.horizon):
                for j, name in enumerate(names):
                    row = [o, label(o), h + 1, o + h, label(o + h), name, repr(float(res["actual"][i, h, j])),
                           repr(float(res["forecast"][i, h, j])), repr(float(res["naive"][i, h, j])),
                           "" if snaive is None else repr(float(snaive[i, h, j]))]
                    if bands:
                        row += [repr(float(res["lower"][i, h, j])), repr(float(res["upper"][i, h, j]))]
                    w.writerow(row)
    write_text(out_dir / "backtest.csv", buf.getvalue())

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if fc.intervals is not None:
        band = fc.predict_interval(values, seed=fc.seed)
        point = band["median"] if fc.intervals == "quantile" else fc.predict(values)
        lower, upper = band["lower"], band["upper"]
    else:
        point, lower, upper = fc.predict(values), None, None

    def per_target(a):
        return None if a is None else np.asarray(a, dtype=np.float64).reshape(fc.horizon, len(names))

    point, lower, upper = per_target(point), per_target(lower), per_target(upper)
    w.writerow(["step", "row", "target", "forecast"] + (["lower", "upper"] if lower is not None else []))
    n = len(values)
    for h in range(fc.horizon):
        for j, name in enumerate(names):
            row = [h + 1, n + h, name, repr(float(point[h, j]))]
            if lower is not None:
                row += [repr(float(lower[h, j])), repr(float(upper[h, j]))]
            w.writerow(row)
    write_text(out_dir / "predictions.csv", buf.getvalue())
    return metrics


def metrics_table(metrics: dict | None) -> list[list]:
    if not metrics:
        return []
    rows = []
    for name, label in (("model", "rnn forecaster"), ("naive", "naive (last value)"),
                        ("seasonal_naive", "seasonal naive")):
        m = metrics.get(name)
        if m is not None:
            rows.append([label] + [m[k] for k in ("mae", "rmse", "mape", "smape", "mase")])
    return rows
