"""``rnnkit demo``: two small runs on data already on this machine, and one report.

1. A character LSTM language model on the source code of Python's own standard
   library (:func:`rnnkit.data.builtin.stdlib_text`), trained by truncated BPTT
   with a sample printed after every epoch, so the text can be watched going from
   noise to indented, Python-shaped lines.
2. A forecaster on a built-in daily series (:func:`rnnkit.data.builtin.builtin_series`:
   matplotlib's sample stock prices, or a synthetic temperature series), backtested
   on the last part of the series against the naive (last value) and seasonal-naive
   forecasts.

Each run keeps its own directory (``char-lm/``, ``forecast/``: model, metrics,
plots, ``report.html``) and ``report.html`` at the top shows both and links them.
``demo.json`` records what was run and how long each part took.

The demo fits a wall-time budget (``time_limit``: seconds, or the command's
:class:`rnnkit.deadline.Deadline`; about two minutes by default on a two-core
machine): the language model, its run directory included, takes a fixed share of
it, the forecaster (which stops early on its own within seconds) what is left but
the time of the demo's own page. ``quick=True`` is a seconds-long version with tiny
models, for tests.
"""

from __future__ import annotations

import csv
import html
import io
import math
import time
from pathlib import Path

from rnnkit.deadline import Deadline
from rnnkit.errors import RnnkitError

__all__ = ["run_demo", "DEFAULT_TIME_LIMIT", "QUICK_TIME_LIMIT"]

DEFAULT_TIME_LIMIT = 110.0
QUICK_TIME_LIMIT = 8.0
LM_DIR, FORECAST_DIR, SUMMARY = "char-lm", "forecast", "demo.json"
PROMPT = "def "

# the language model's share of the budget; the rest is the forecaster (seconds) and
# what follows training: a validation score, samples, plots and three reports
LM_SHARE = 0.80
REPORT_RESERVE = 1.5      # the demo's page: the runs' numbers and their PNG files

SETTINGS = {
    False: {"text_chars": 500_000,
            "lm": dict(cell="lstm", hidden_size=128, num_layers=1, embedding_dim=32, seq_len=64, batch_size=32,
                       dropout=0.0),
            "lm_fit": dict(lr=4e-3, clip=5.0, epochs=1000, patience=None),
            "sample_length": 160, "final_length": 300,
            "forecast": dict(horizon=10, lookback=30, cell="lstm", hidden_size=32),
            "forecast_fit": dict(lr=3e-3, test_fraction=0.15)},
    True: {"text_chars": 3_000,
           "lm": dict(cell="lstm", hidden_size=24, num_layers=1, embedding_dim=8, seq_len=24, batch_size=8,
                      dropout=0.0),
           "lm_fit": dict(lr=1e-2, clip=5.0, epochs=2, patience=None),
           "sample_length": 40, "final_length": 60,
           "forecast": dict(horizon=5, lookback=10, cell="gru", hidden_size=8, strategy="direct"),
           "forecast_fit": dict(epochs=2, patience=None, lr=1e-2, max_steps=20, test_fraction=0.15)},
}


def _check_out(out: Path, force: bool) -> None:
    """``out`` may be new, empty, an earlier demo's, or anything with ``force``."""
    if out.exists() and not out.is_dir():
        raise RnnkitError(f"--out {out}: is an existing file, not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY).is_file() and not force:
        raise RnnkitError(f"--out {out}: the directory holds files that are not from an rnnkit demo; "
                          f"choose another --out, or pass --force to write into it")


def _series_csv(series) -> str:
    """The built-in series as the CSV a user would give ``rnnkit forecast``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["date", *series.columns])
    for d, row in zip(series.dates, series.values):
        w.writerow([d, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def _png(path: Path):
    return path.read_bytes() if path.is_file() else None


def _verdict(met: dict, series_name: str) -> str:
    """One honest sentence on the model against the best baseline."""
    if not met.get("model") or not met.get("naive"):
        return ""
    base = min((met[k]["mase"], k) for k in ("naive", "seasonal_naive") if met.get(k))
    name = base[1].replace("_", "-")
    if met["model"]["mase"] < base[0]:
        return f"the network beats the {name} forecast by {100 * (1 - met['model']['mase'] / base[0]):.0f} % (MASE)"
    why = (": day-to-day prices are close to a random walk, where the last value is the forecast to beat"
           if series_name == "stock-close" else "")
    return f"the {name} forecast is as good or better here{why}"


def _link(rel: str, label: str) -> str:
    return f'<p><a href="{html.escape(rel)}">{html.escape(label)}</a></p>'


def run_demo(out="rnnkit-demo", time_limit: float | None = None, quick: bool = False, seed: int = 0,
             echo=print, force: bool = False) -> dict:
    """Run the demo into ``out``; returns a summary (also written to ``out/demo.json``).

    ``echo`` gets the progress lines (None: silent). The summary has "report" (the
    top-level report.html), "lm" and "forecast" (each run's directory, numbers and
    seconds) and "seconds" (the whole demo); "interrupted" is True when Ctrl-C
    stopped a run (its checkpoint is saved; no report is written then).
    """
    from rnnkit.tasks.lm_report import SamplePrinter
    from rnnkit.tasks.run import a_cell, jsonable
    from rnnkit.data.builtin import builtin_series, stdlib_text
    from rnnkit.data.text import split_text
    from rnnkit.io import atomic_write, save_json
    from rnnkit.report import Section, write_report
    from rnnkit.tasks.forecast import Forecaster
    from rnnkit.tasks.lm import CharLanguageModel

    def say(*lines):
        if echo is not None:
            for line in lines:
                echo(line)

    cfg = SETTINGS[bool(quick)]
    if isinstance(time_limit, Deadline):        # the command's clock, started before this call
        deadline = time_limit
    else:
        limit = time_limit if time_limit is not None else (QUICK_TIME_LIMIT if quick else DEFAULT_TIME_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (math.isfinite(limit) and limit > 0):
            raise ValueError(f"demo: time_limit must be a number of seconds > 0, got {time_limit!r}")
        deadline = Deadline(float(limit))
    budget = deadline.seconds
    out = Path(out)
    _check_out(out, force)
    start = deadline.start
    out.mkdir(parents=True, exist_ok=True)
    summary = {"out": str(out.resolve()), "quick": bool(quick), "seed": seed, "time_limit": budget}

    # -- 1. the character language model ----------------------------------------------------
    text = stdlib_text(max_chars=cfg["text_chars"])
    lm_dir = out / LM_DIR
    # the language model's share of the time left, its own report included
    lm_limit = max(1.0, LM_SHARE * deadline.left() if not quick else min(3.0, 0.4 * deadline.left()))
    say(f"[1/2] character language model: {a_cell(cfg['lm']['cell'])} with {cfg['lm']['hidden_size']} units "
        f"reads {len(text.text):,} characters of Python's standard library",
        f"      ({', '.join(text.files)}), trained for up to {lm_limit:.0f} s; a sample after each epoch:")
    val_fraction = 0.1
    train_text, val_text = split_text(text.text, val_fraction)

    def show(head, sample):
        say(f"  {head} ({time.perf_counter() - start:.0f} s):", "\n".join("    | " + ln for ln in sample.split("\n")))

    callback = SamplePrinter(PROMPT, cfg["sample_length"], 0.8, seed, show=show)
    samples = callback.collected
    t0 = time.perf_counter()
    lm = CharLanguageModel(**cfg["lm"], seed=seed)
    lm.fit(text.text, val_fraction=val_fraction, time_limit=lm_limit, out_dir=lm_dir, quiet=True,
           callback=callback, source=text.description, **cfg["lm_fit"],
           report={"final_temperatures": (0.7, 1.0), "sample_length": cfg["final_length"],
                   "title": "rnnkit demo: character language model"})
    lm_train_s = time.perf_counter() - t0
    if lm.history_.interrupted:
        say(f"interrupted; the language model's checkpoint is in {lm_dir / 'train'}")
        return {**summary, "interrupted": True, "report": None}
    lm_summary = lm.report_
    lm_s = time.perf_counter() - t0
    bits = lm_summary["val_bits_per_char"]
    say(f"  stopped after {lm.history_.step} steps ({lm_train_s:.0f} s)"
        + ("" if bits is None else f": {bits:.2f} bits/char on held-out source, against "
           f"{lm_summary['unigram_bits_per_char']:.2f} for character frequencies alone"),
        f"  run: {lm_dir}")

    # -- 2. the forecaster --------------------------------------------------------------------
    series = builtin_series()
    fc_dir = out / FORECAST_DIR
    fc_dir.mkdir(parents=True, exist_ok=True)
    csv_path = fc_dir / "data.csv"
    data = _series_csv(series).encode("utf-8")
    atomic_write(csv_path, lambda f: f.write(data))
    # stock prices have no season; a trading week makes the seasonal-naive baseline "a week ago"
    period = 5 if series.name == "stock-close" else (365 if len(series.values) > 2 * 365 else "auto")
    # the forecaster's time: what is left but the demo's own report (its fit covers its run directory)
    fc_limit = max(1.0, min(deadline.left() - REPORT_RESERVE, 30.0))
    fc_cfg = dict(cfg["forecast"])
    say(f"[2/2] forecaster: {series.description}",
        f"      {fc_cfg['cell'].upper()}, {fc_cfg['horizon']} steps ahead from the last {fc_cfg['lookback']}, "
        f"trained for up to {fc_limit:.0f} s, backtested on the last 15 %")
    t0 = time.perf_counter()
    fc = Forecaster(**fc_cfg, period=period, seed=seed)
    fc.fit(csv_path, date_column="date", time_limit=fc_limit, out_dir=fc_dir, quiet=True, **cfg["forecast_fit"])
    if fc.history_.interrupted:
        say(f"interrupted; the forecaster trained so far is in {fc_dir}")
        return {**summary, "interrupted": True, "report": None}
    fc_s = time.perf_counter() - t0
    test = fc.test_backtest_
    met = {} if test is None else test["metrics"]
    origins = 0 if test is None else len(test["origins"])
    lines = []
    for name, label in (("model", "LSTM forecaster" if fc.cell == "lstm" else "RNN forecaster"),
                        ("naive", "naive (last value)"), ("seasonal_naive", f"seasonal naive ({period} back)")):
        if met.get(name):
            lines.append(f"  {label:<26} MAE {met[name]['mae']:10.4g}   MASE {met[name]['mase']:.3f}")
    verdict = _verdict(met, series.name)
    say(f"  backtest over {origins} forecast origins (lower is better):", *lines,
        *([f"  {verdict}"] if verdict else []), f"  run: {fc_dir}")

    # -- the report over both ----------------------------------------------------------------
    intro = ("<p>Two runs on data that was already on this machine: a character language model on "
             "Python's standard-library source and a forecaster of a daily series. Each run has its "
             "own directory with the model, metrics, plots and a full report.</p>"
             + _link(f"{LM_DIR}/report.html", f"{LM_DIR}/report.html — the language model run")
             + _link(f"{FORECAST_DIR}/report.html", f"{FORECAST_DIR}/report.html — the forecaster run"))
    lm_rows = [["steps", lm.history_.step], ["stopped by", lm.history_.stop_reason],
               ["validation bits/char", "-" if bits is None else bits],
               ["unigram baseline bits/char", lm_summary["unigram_bits_per_char"]],
               ["uniform baseline bits/char", lm_summary["uniform_bits_per_char"]]]
    lm_text = text.description + "\n\n" + "\n\n".join(
        f"--- sample at temperature {s['temperature']:g}\n{s['text']}" for s in lm_summary["final_samples"])
    if samples:
        lm_text += "\n\n--- the first sample printed during training (epoch {}):\n{}".format(
            samples[0]["epoch"], samples[0]["sample"])
    lm_png = _png(lm_dir / "training.png")
    fc_png = _png(fc_dir / "forecast.png")
    fc_rows = []
    for name, label in (("model", "rnn forecaster"), ("naive", "naive (last value)"),
                        ("seasonal_naive", f"seasonal naive (period {period})")):
        if met.get(name):
            fc_rows.append([label] + [met[name][k] for k in ("mae", "rmse", "mape", "smape", "mase")])
    sections = [
        Section("rnnkit demo", html=intro),
        Section("Character language model", text=lm_text, table=lm_rows, header=["", ""],
                figures=[lm_png] if lm_png else []),
        Section("Forecaster", text=f"{series.description}\nhorizon {fc.horizon}, lookback {fc.lookback_}; "
                                   f"{origins} origins in the test part\n{verdict}",
                table=fc_rows, header=["forecaster", "MAE", "RMSE", "MAPE %", "sMAPE %", "MASE"],
                figures=[fc_png] if fc_png else []),
    ]
    total = time.perf_counter() - start
    timing = {"language model (train + report)": lm_s, "forecaster (train + backtest + report)": fc_s,
              "whole demo": total}
    report = write_report(out / "report.html", "rnnkit demo", sections, timing=timing,
                          config={"settings": {k: v for k, v in cfg.items()}, "seed": seed, "time_limit": budget})
    total = time.perf_counter() - start
    summary.update({
        "report": str(report.resolve()),
        "lm": {"dir": str(lm_dir), "steps": lm.history_.step, "stop_reason": lm.history_.stop_reason,
               "val_bits_per_char": bits, "unigram_bits_per_char": lm_summary["unigram_bits_per_char"],
               "train_seconds": lm_train_s, "seconds": lm_s},
        "forecast": {"dir": str(fc_dir), "series": series.name, "metrics": met, "seconds": fc_s},
        "seconds": total,
    })
    save_json(out / SUMMARY, jsonable(summary))
    say(f"done in {total:.0f} s")
    return summary
