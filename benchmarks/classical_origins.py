"""rnnkit's classical forecasts (ETS, Theta, ARIMA and their mean) over many rolling origins.

``quality.py`` runs the whole ``rnnkit forecast`` at three origins a series, which takes
minutes and leaves each score to three forecasts. This script times nothing and trains
no network: it refits each classical member of ``rnnkit.tasks.forecast.classical`` at up
to 12 origins a series (the last h rows, then every ⌊h/2⌋ rows earlier, keeping at least
60 % of the rows before the first), so a change to one of them can be judged on many
forecasts in seconds. ``comb`` is the default forecast's classical mean (with seasonal
naive when the series has a period). ``--statsmodels`` adds ``quality_baselines``' ETS and
auto-ARIMA at the same origins (minutes).

    python benchmarks/classical_origins.py                       # the series of DATA/forecast
    python benchmarks/classical_origins.py --csv a10.csv:12:12 --csv austa.csv:5:1 --json out.json

MASE with the seasonal lag (M4 definition), mean over origins.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import quality_baselines as qb  # noqa: E402
from quality import FORECAST, _forecast_csv, default_data  # noqa: E402

from rnnkit.tasks.forecast.classical import Classical  # noqa: E402

MEMBERS = ("ets", "theta", "arima")


def origins_of(n: int, h: int, most: int = 12) -> list[int]:
    step = max(1, h // 2)
    return [n - h - k * step for k in range(most) if n - h - k * step >= max(0.6 * n, 2 * h + 4)]


def score(y: np.ndarray, h: int, m: int, statsmodels: bool) -> dict:
    period = m if m > 1 else None
    scores = {}
    for o in origins_of(len(y), h):
        hist, actual = y[:o], y[o:o + h]
        fc = {name: Classical(name, period).fit(hist).forecast(y, np.array([o]), h)[0] for name in MEMBERS}
        fc["comb"] = np.mean([fc[k] for k in MEMBERS] + ([qb.seasonal_naive(hist, h, m)] if period else []), axis=0)
        if statsmodels:
            fc["sm_ets"] = qb.ets_forecast(hist, h, period)
            fc["sm_arima"] = qb.arima_forecast(hist, h, period)
        for k, v in fc.items():
            scores.setdefault(k, []).append(qb.mase(actual, v, hist, m))
    return {"origins": len(next(iter(scores.values()))), **{k: float(np.mean(v)) for k, v in scores.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="the data folder (default: ../shared/data, /work/shared/data)")
    ap.add_argument("--csv", action="append", type=_forecast_csv, metavar="PATH:H:M[:COLUMN]",
                    help="this CSV instead of the data folder's series (date column first; repeat)")
    ap.add_argument("--statsmodels", action="store_true", help="add statsmodels' ETS and auto-ARIMA (slow)")
    ap.add_argument("--json", default=None, help="write the results here")
    opts = ap.parse_args(argv)
    data = opts.data or default_data()
    if not opts.csv and (data is None or not os.path.isdir(data)):
        ap.error("--data: no data folder found; give --data DIR or --csv")
    series = opts.csv or [(os.path.join(data, "forecast", f), c, h, m) for f, c, h, m in FORECAST]
    results = {}
    for path, column, h, m in series:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        col = 1 if column is None else rows[0].index(column)
        y = np.array([float(r[col]) for r in rows[1:]])
        name = f"{os.path.basename(path)[:-4]}:{rows[0][col]}"
        results[name] = score(y, h, m, opts.statsmodels)
        print(f"{name:36s} " + " ".join(f"{k} {v:.3f}" if k != "origins" else f"{k} {v:2d}"
                                        for k, v in results[name].items()), flush=True)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
