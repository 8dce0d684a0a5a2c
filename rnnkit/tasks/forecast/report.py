"""The forecaster's run directory: backtest plot, report and the forecast files."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.tasks.forecast.windows import as_values
from rnnkit.tasks.run import write_json, write_text

__all__ = ["plot_backtest", "metrics_rows", "write_forecast_report", "write_forecast_outputs", "metrics_table",
           "forecast_csv"]


def plot_backtest(fc, result: dict, series=None, target: int = 0, max_paths: int = 12):
    """Forecast against actual: the series, forecasts from non-overlapping origins of a
    backtest ``result`` and their bands. Returns a matplotlib figure."""
    from rnnkit.report import pyplot

    plt = pyplot()
    H = result["horizon"]
    origins = np.asarray(result["origins"])
    keep, last = [], -H
    for i, o in enumerate(origins):           # non-overlapping forecast paths read best
        if o >= last + H:
            keep.append(i)
            last = o
    keep = keep[-max_paths:]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    if series is not None:
        vals = as_values(series, "series", "Forecaster.plot_backtest")
        lo = max(0, int(origins[keep[0]]) - 2 * H)
        ax.plot(np.arange(lo, len(vals)), vals[lo:, fc.targets_[target]], color="0.3", lw=1,
                label="actual")
    else:
        for j, i in enumerate(keep):
            ax.plot(origins[i] + np.arange(H), result["actual"][i, :, target], color="0.3", lw=1,
                    label="actual" if j == 0 else None)
    for j, i in enumerate(keep):
        t = origins[i] + np.arange(H)
        if "lower" in result:
            ax.fill_between(t, result["lower"][i, :, target], result["upper"][i, :, target],
                            color="tab:blue", alpha=0.2, lw=0,
                            label=f"{int(round(100 * (fc.quantiles[-1] - fc.quantiles[0])))} % band"
                            if j == 0 else None)
        ax.plot(t, result["forecast"][i, :, target], color="tab:blue", lw=1.5,
                label="forecast" if j == 0 else None)
        ax.axvline(origins[i], color="0.85", lw=0.8, zorder=0)
    name = fc.columns_[fc.targets_[target]]
    ax.set_title(f"forecast vs actual ({name}, horizon {H})")
    ax.set_xlabel("row")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

def metrics_rows(fc, result: dict) -> list[list]:
    rows = []
    for name, label in (("model", "rnn " + fc.strategy), ("naive", "naive (last value)"),
                        ("seasonal_naive", f"seasonal naive (period {result['period']})")):
        met = result["metrics"].get(name)
        if met is not None:
            rows.append([label] + [met[k] for k in ("mae", "rmse", "mape", "smape", "mase")])
    return rows


def write_forecast_report(fc, out_dir, values, cov, dates, deadline=None) -> None:
    """``report.html``, ``forecast.png`` and ``training.png`` of a fitted forecaster's run
    (the plots while ``deadline``, the command's time limit, allows)."""
    from rnnkit.report import Section, plots_in_time, save_figure, write_run_report

    out_dir = os.fspath(out_dir)
    sections = []
    split = fc.split_
    data_rows = [["rows", len(values)], ["series columns", ", ".join(fc.columns_)],
                 ["targets", ", ".join(fc.columns_[t] for t in fc.targets_)],
                 ["covariates", fc.n_covariates_],
                 ["train / validation / test rows", f"{split['train']} / {split['validation']} / {split['test']}"],
                 ["lookback / horizon", f"{fc.lookback_} / {fc.horizon}"],
                 ["strategy", fc.strategy], ["period", fc.period_ if fc.period_ else "none"],
                 ["MASE scale", f"mean |y_t − y_(t−{fc.mase_lag_})| over the training part"],
                 ["scaler", f"{fc.scaler} (fitted on the training part), relative={fc.relative}"]]
    if dates:
        data_rows.insert(1, ["dates", f"{dates[0]} … {dates[-1]}"])
    sections.append(Section("Data", table=data_rows, header=["", ""]))
    res = fc.test_backtest_
    if res is not None:
        text = (f"{len(res['origins'])} origins in the test part, horizon {fc.horizon}; "
                f"MASE divides by the training part's lag-{fc.mase_lag_} naive MAE.")
        if res.get("time_limit_note"):
            text += f"\n{res['time_limit_note']}."
        if "coverage" in res:
            text += (f"\nBand {fc.quantiles[0]}–{fc.quantiles[-1]}: {100 * res['coverage']:.1f} % of the "
                     f"actual values inside (nominal {100 * (fc.quantiles[-1] - fc.quantiles[0]):.0f} %).")
        figs = []
        if plots_in_time(deadline):
            figs.append(save_figure(plot_backtest(fc, res, values), os.path.join(out_dir, "forecast.png")))
        sections.append(Section("Backtest on the test part", text=text, table=metrics_rows(fc, res),
                                header=["forecaster", "MAE", "RMSE", "MAPE %", "sMAPE %", "MASE"],
                                figures=figs))
    else:
        sections.append(Section("Backtest on the test part",
                                text=f"No test part of at least horizon={fc.horizon} rows "
                                     "(test_fraction); nothing was scored."))
    # the forecast past the end of the data
    hist_cov = cov
    if not (fc.n_covariates_ and fc.strategy == "recursive"):
        if fc.intervals is not None:
            band = fc.predict_interval(values, hist_cov, seed=fc.seed)
            point = band["median"] if fc.intervals == "quantile" else fc.predict(values, hist_cov)
            rows = [[h + 1, *np.atleast_1d(point[h]).tolist(), *np.atleast_1d(band["lower"][h]).tolist(),
                     *np.atleast_1d(band["upper"][h]).tolist()] for h in range(fc.horizon)]
            names = [fc.columns_[t] for t in fc.targets_]
            header = ["step"] + names + [f"{c} lower" for c in names] + [f"{c} upper" for c in names]
        else:
            point = fc.predict(values, hist_cov)
            rows = [[h + 1, *np.atleast_1d(point[h]).tolist()] for h in range(fc.horizon)]
            header = ["step"] + [fc.columns_[t] for t in fc.targets_]
        sections.append(Section("Forecast past the end of the data", table=rows, header=header))
    notes = [res["time_limit_note"]] if res is not None and res.get("time_limit_note") else []
    write_run_report(out_dir, "rnnkit forecast", sections,
                     config={"task": "forecast", "params": fc.get_params(), "model": fc.model_.config()},
                     deadline=deadline, notes=notes)


def _forecast_name(name: str) -> str:
    """A validation table's name of a forecast ("ets+theta+arima+rnn") as the user reads it."""
    return "+".join("network" if part == "rnn" else part for part in name.split("+"))


def kept_forecast(fc) -> dict:
    """What the fitted forecaster ``fc`` forecasts with and why: {"method": the forecasts
    averaged ("network" or e.g. "ets+theta+arima"), "validation_mase": its MASE on the
    validation origins (None without), "validation": every candidate's, best first (only
    when strategy="auto" chose on validation)}."""
    out = {"method": "+".join(_forecast_name(k) for k in fc.blend_),
           "validation_mase": getattr(fc, "val_mase_", None)}
    table = getattr(fc, "guard_", None)
    if table:
        out["validation"] = [{"forecast": _forecast_name(r["forecast"]), "val_mase": float(r["val_mase"])}
                             for r in table]
    return out


def write_forecast_outputs(fc, out_dir, values, cov=None, dates=None) -> dict:
    """Write ``metrics.json``, ``backtest.csv`` and ``predictions.csv`` of a fitted
    forecaster's run; returns the metrics dict.

    ``backtest.csv`` has one row per test-part origin, step and target: the actual
    value, the model's forecast, the naive and seasonal-naive forecasts (and the
    band with intervals). ``predictions.csv`` (:func:`forecast_csv`) is the forecast of
    the ``horizon`` rows after the end of ``values`` (not written for a recursive
    forecaster with covariates, which needs their future values).

    Shapes:
        values (N, F) as the forecaster read them; cov (N, C) or None; dates: N labels or None
    """
    out_dir = Path(out_dir)
    names = [fc.columns_[t] for t in fc.targets_]
    res = fc.test_backtest_
    h = fc.history_
    metrics = {"horizon": fc.horizon, "lookback": fc.lookback_, "period": fc.period_, "mase_lag": fc.mase_lag_,
               "strategy": fc.strategy, "targets": names, "split": dict(fc.split_),
               "steps": None if h is None else h.step, "stop_reason": None if h is None else h.stop_reason,
               "test_origins": 0 if res is None else int(len(res["origins"])),
               "metrics": None if res is None else res["metrics"]}
    metrics.update(kept_forecast(fc))
    if res is not None and res.get("time_limit_note"):
        metrics["time_limit_note"] = res["time_limit_note"]
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
            for k in range(fc.horizon):
                for j, name in enumerate(names):
                    row = [o, label(o), k + 1, o + k, label(o + k), name, repr(float(res["actual"][i, k, j])),
                           repr(float(res["forecast"][i, k, j])), repr(float(res["naive"][i, k, j])),
                           "" if snaive is None else repr(float(snaive[i, k, j]))]
                    if bands:
                        row += [repr(float(res["lower"][i, k, j])), repr(float(res["upper"][i, k, j]))]
                    w.writerow(row)
    write_text(out_dir / "backtest.csv", buf.getvalue())
    if not (fc.n_covariates_ and fc.strategy == "recursive"):
        write_text(out_dir / "predictions.csv", forecast_csv(fc, values, cov, dates))
    return metrics


def future_labels(dates, horizon: int) -> list | None:
    """ISO labels of the ``horizon`` dates after ``dates`` (one step on, months as calendar
    months), or None when the labels are not dates (:mod:`rnnkit.data.dates`)."""
    if dates is None or len(dates) < 2:
        return None
    from rnnkit.data.context import future_dates, parse_dates

    try:
        ahead = future_dates(parse_dates(list(dates)), horizon)
    except RnnkitError:          # labels that are not dates, or that do not increase
        return None
    timed = (ahead - ahead.astype("datetime64[D]")).astype(np.int64).any()
    return [str(d).replace("T", " ") if timed else str(d)[:10] for d in ahead]


def forecast_csv(fc, values, cov=None, dates=None) -> str:
    """The forecast of the ``horizon`` rows after ``values`` as CSV: step, row (counted on
    from the history's rows), target, forecast and, with intervals, lower and upper; then,
    when the history's ``dates`` read as dates, the date of each row (ISO)."""
    names = [fc.columns_[t] for t in fc.targets_]
    if fc.intervals is not None:
        band = fc.predict_interval(values, cov, seed=fc.seed)
        point = band["median"] if fc.intervals == "quantile" else fc.predict(values, cov)
        lower, upper = band["lower"], band["upper"]
    else:
        point, lower, upper = fc.predict(values, cov), None, None

    def per_target(a):
        return None if a is None else np.asarray(a, dtype=np.float64).reshape(fc.horizon, len(names))

    point, lower, upper = per_target(point), per_target(lower), per_target(upper)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ahead = future_labels(dates, fc.horizon)
    w.writerow(["step", "row", "target", "forecast"] + (["lower", "upper"] if lower is not None else [])
               + (["date"] if ahead else []))
    n = len(values)
    for k in range(fc.horizon):
        for j, name in enumerate(names):
            row = [k + 1, n + k, name, repr(float(point[k, j]))]
            if lower is not None:
                row += [repr(float(lower[k, j])), repr(float(upper[k, j]))]
            w.writerow(row + ([ahead[k]] if ahead else []))
    return buf.getvalue()


def metrics_table(metrics: dict | None) -> list[list]:
    """Rows (name, MAE, RMSE, MAPE, sMAPE, MASE) of the model and the baselines in ``metrics``."""
    if not metrics:
        return []
    rows = []
    for name, label in (("model", "kept forecast"), ("naive", "naive (last value)"),
                        ("seasonal_naive", "seasonal naive")):
        m = metrics.get(name)
        if m is not None:
            rows.append([label] + [m[k] for k in ("mae", "rmse", "mape", "smape", "mase")])
    return rows
