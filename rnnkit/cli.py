"""The ``rnnkit`` command: thin subcommands over the library.

    rnnkit demo                               train a character model and a forecaster, offline
    rnnkit train-lm TEXT... --out DIR         character language model (truncated BPTT)
    rnnkit generate DIR --prompt ...          sample from a trained language model
    rnnkit evaluate DIR TEXT                  nats and bits per character of a text (JSON)
    rnnkit activations DIR TEXT --out FILE    what the units of a language model track
    rnnkit forecast CSV --horizon H --out DIR forecaster, backtested against naive baselines
    rnnkit classify TRAIN --out DIR           sequence classifier (UCR .tsv / .ts / CSV)
    rnnkit seq2seq --out DIR                  encoder-decoder (tab-separated pairs or dates)
    rnnkit seq2seq --model DIR INPUT...       translate with a trained encoder-decoder
    rnnkit gradients --out DIR                vanishing/exploding gradients through time
    rnnkit memory --task adding --out DIR     long-range memory benchmarks
    rnnkit bench                              speed against other implementations

Every command is a function ``cmd_*(args) -> int`` that reads its input, calls one
library task and writes its files; task modules are imported inside the command, so
``rnnkit --help`` starts fast. :func:`main` is the one place that turns the
library's errors (:class:`~rnnkit.errors.RnnkitError`, ``ValueError``,
``TypeError``, ``OSError``) into one line ``error: …`` on stderr and exit status 1
(set ``RNNKIT_DEBUG=1`` to get the traceback instead). Ctrl-C during training lets
the Trainer save its checkpoint first; the command then says where and exits 130.

Exit status: 0 done, 1 an error of the input or the run (one line on stderr), 2 a
usage error (argparse's message), 130 interrupted, 141 stdout closed early.

Input is checked before anything is written, so a bad file, column or option never
costs a model that is already on disk: training into a directory that holds a
trained model needs ``--force`` (or ``--resume`` for ``train-lm``).

``--threads N`` (every command; the demo defaults to 1) limits the BLAS library
behind NumPy to N threads while the command runs: see :class:`blas_threads`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

from rnnkit._version import __version__
from rnnkit.errors import RnnkitError

__all__ = ["main", "build_parser", "blas_threads", "write_lm_report", "write_forecast_outputs", "lm_sample_callback"]

CELLS = ("lstm", "gru", "rnn", "rnn-relu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
DIAGNOSTIC_CELLS = ("rnn", "rnn-relu", "irnn", "lstm", "gru")
# header names read as the date/time column of a CSV when --date-column is not given
DATE_NAMES = ("date", "datetime", "time", "timestamp", "day", "ds", "month", "week", "year", "period")


# -- argument types: errors here are argparse usage errors (exit status 2) -------------------

def _whole_number(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {v}")
        return v
    return parse


_positive_int = _whole_number(1)
_nonneg_int = _whole_number(0)


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _fraction(text: str) -> float:
    v = _float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return v


def _clip(text: str):
    """A gradient-norm bound, or 0/"none" for no clipping."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    return _positive_float(text)


def _quantiles(text: str) -> list[float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        qs = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated levels like 0.1,0.5,0.9, got {text!r}") from None
    if len(qs) < 2 or any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs):
        raise argparse.ArgumentTypeError(f"expected at least 2 distinct levels in (0, 1), got {text!r}")
    return sorted(qs)


def _period(text: str):
    """'auto', 'none' or a whole number >= 2."""
    key = text.strip().lower()
    if key == "auto":
        return "auto"
    if key in ("none", "0"):
        return None
    try:
        v = int(key)
    except ValueError:
        v = 0
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'none' or a whole number >= 2, got {text!r}")
    return v


def _cell_list(allowed):
    def parse(text: str) -> list[str]:
        cells = [c.strip().lower() for c in text.split(",") if c.strip()]
        bad = [c for c in cells if c not in allowed]
        if not cells or bad:
            raise argparse.ArgumentTypeError(f"expected comma-separated cells from {','.join(allowed)}, "
                                             f"got {text!r}")
        if len(set(cells)) != len(cells):
            raise argparse.ArgumentTypeError(f"a cell is repeated in {text!r}")
        return cells
    return parse


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description/epilog layout and appends a default where it says something."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" not in text and action.option_strings
                and action.default not in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


# -- BLAS threads -----------------------------------------------------------------------------

# (set, get) thread-count functions of the BLAS libraries NumPy ships with or links against
_BLAS_THREAD_FUNCS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
    ("bli_thread_set_num_threads", "bli_thread_get_num_threads"),
)


def _blas_thread_controls() -> list:
    """(set, get) ctypes functions of every BLAS loaded in this process (Linux; else [])."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in paths if ".so" in p and any(k in os.path.basename(p).lower()
                                                              for k in ("blas", "mkl", "blis"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _BLAS_THREAD_FUNCS:
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return found


class blas_threads:
    """Run a block with the BLAS library limited to ``n`` threads, then restore its setting.

    The matrices of a recurrent step are small (batch × hidden), so a multi-threaded
    BLAS spends more time starting and synchronising threads than multiplying, and far
    more when other processes compete for the cores (measured on a busy 2-core
    machine: an LSTM training step with B=32, H=128, T=64 took 0.07 s on one thread
    and 0.25–0.7 s on two). Best effort: Linux only (the loaded libraries are found in
    /proc/self/maps); elsewhere, or with ``n`` None, nothing changes.
    ``applied`` says whether a BLAS was found.
    """

    def __init__(self, n: int | None):
        self.n, self.saved, self.applied = n, [], False

    def __enter__(self):
        import ctypes

        if self.n is not None:
            for setter, getter in _blas_thread_controls():
                self.saved.append((setter, int(getter())))
                setter(ctypes.c_int(int(self.n)))
            self.applied = bool(self.saved)
        return self

    def __exit__(self, *exc):
        import ctypes

        for setter, previous in self.saved:
            setter(ctypes.c_int(previous))
        return False


# -- small helpers shared by the commands ------------------------------------------------------

def _echo(args, *lines) -> None:
    """Progress for people, on stdout, unless --quiet."""
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line, flush=True)


def _check_out_dir(path, option: str = "--out") -> Path:
    """``path`` as a directory to write into; an existing file there is an error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RnnkitError(f"{option} {path}: is an existing file, not a directory; choose another {option}")
    return p


def _check_out_file(path, option: str = "--out") -> Path:
    p = Path(path)
    if p.is_dir():
        raise RnnkitError(f"{option} {path}: is a directory; give a file name such as {p / 'units.html'}")
    return p


def _saved_task(directory) -> str | None:
    """The task recorded in a checkpoint's config.json (None when unreadable)."""
    try:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            meta = json.load(f).get("meta", {})
        return meta.get("task") if isinstance(meta, dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def _guard_model_dir(path: Path, force: bool, option: str = "--out", extra: str = "") -> None:
    """Refuse to train into a directory that already holds a trained model, unless forced."""
    if force or not (path / "config.json").is_file():
        return
    task = _saved_task(path)
    what = f"a trained model (task {task!r})" if task else "a model checkpoint"
    raise RnnkitError(f"{option} {path}: already holds {what}; pass --force to replace it{extra}, "
                      f"or choose another {option}")


def _read_texts(paths) -> str:
    """The files' texts joined by a newline; each missing or empty file is an error."""
    from rnnkit.data.text import read_text

    parts = [read_text(p) for p in paths]
    # a file without a final newline would run into the next one's first line
    return "".join(t if t.endswith("\n") or i == len(parts) - 1 else t + "\n" for i, t in enumerate(parts))


def _a_cell(cell: str) -> str:
    """'an LSTM', 'a GRU', 'an RNN', 'an RNN (ReLU)': for messages."""
    name = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN", "rnn-relu": "an RNN (ReLU)"}
    return name.get(cell, f"a {cell}")


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def _write_text(path, text: str) -> None:
    from rnnkit.io import atomic_write

    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _write_json(path, obj) -> None:
    from rnnkit.io import save_json

    save_json(path, _jsonable(obj))


def _jsonable(obj):
    """Arrays to lists, NumPy scalars to numbers, NaN/inf to None: strict JSON."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -- language model: the report and the sample printer (also used by the demo) -------------------

def lm_sample_callback(prompt: str, length: int = 200, temperature: float = 0.8, seed: int = 0,
                       echo=print, collected: list | None = None, show=None):
    """A ``CharLanguageModel.fit`` callback that prints a sample after every epoch.

    ``fit`` calls it once more when training has ended, with the best weights
    restored: that sample is shown only if those weights were not sampled already
    (when the run stopped before any validation, or in the middle of an epoch after
    a better one). Each sample shown (epoch, step, validation bits per character,
    text, whether it is the final one) is appended to ``collected`` for the report.
    ``show(head, text)``, when given, prints a sample instead of ``echo``.
    """
    seen_steps = set()

    def callback(lm, info):
        bits = info.get("val_bits_per_char")
        step = info["step"]
        final = False
        hist = lm.history_                    # set by fit only after the Trainer returned
        if hist is not None:
            if hist.best_step is not None:
                if hist.best_step in seen_steps:
                    return                    # the restored best weights were sampled at their epoch's end
                if hist.best_step != step:    # stopped after the best epoch: its weights are back
                    step, bits, final = hist.best_step, hist.best_val_loss / math.log(2.0), True
            elif hist.stop_reason != "epochs":
                final = True                  # stopped within an epoch, without validation
        seen_steps.add(step)
        text = (prompt or "") + lm.sample(prompt or None, length, temperature=temperature, seed=seed)
        head = (f"end of training (weights of step {step})" if final else f"epoch {info['epoch']}, step {step}")
        if bits is not None:
            head += f", validation {bits:.3f} bits/char"
        if collected is not None:
            collected.append({"epoch": info["epoch"], "step": step, "val_bits_per_char": bits, "sample": text,
                              "final": final, "head": head})
        if show is not None:
            show(head, text)
        elif echo is not None:
            echo(f"{head}; sample at temperature {temperature:g}:")
            echo(_indent(text))
    return callback


def _entropy_bits(p) -> float:
    import numpy as np

    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def write_lm_report(lm, out_dir, *, source: str, train_chars: int, val_text: str | None,
                    samples: list | None = None, prompt: str = "", final_temperatures=(0.5, 0.8, 1.0),
                    sample_length: int = 300, seed: int = 0, timing: dict | None = None,
                    title: str = "rnnkit character language model") -> dict:
    """Write ``out_dir/report.html`` (and ``training.png``) for a trained language model.

    The report holds the data, the validation bits per character against the
    unigram and uniform baselines, the samples printed during training, fresh
    samples at a few temperatures, the training curves (from ``out_dir/train``) and
    the configuration. Returns the numbers it reports (also for the demo's page).
    """
    from rnnkit.report import Section, have_matplotlib, read_metrics, save_figure, training_figure, write_report

    out_dir = Path(out_dir)
    records = read_metrics(out_dir / "train" / "metrics.jsonl")
    hist = lm.history_
    val_bits = None
    if hist is not None and hist.best_val_loss is not None:
        val_bits = hist.best_val_loss / math.log(2.0)
    elif val_text:
        # no validation pass finished (a short time limit): score the start of the held-out text
        val_bits = lm.evaluate(val_text[:20_000])["bits_per_char"]
    V = len(lm.vocab_)
    unigram_bits = _entropy_bits(lm.unigram_)
    summary = {"source": source, "train_chars": train_chars, "val_chars": len(val_text or ""),
               "vocab_size": V, "val_bits_per_char": val_bits, "unigram_bits_per_char": unigram_bits,
               "uniform_bits_per_char": math.log2(V), "steps": None if hist is None else hist.step,
               "stop_reason": None if hist is None else hist.stop_reason}
    final = []
    for t in final_temperatures:
        final.append((t, prompt + lm.sample(prompt or None, sample_length, temperature=t, seed=seed)))
    summary["final_samples"] = [{"temperature": t, "text": s} for t, s in final]
    summary["samples_during_training"] = list(samples or [])

    sections = [Section("Data", table=[["source", source], ["training characters", train_chars],
                                       ["validation characters", len(val_text or "")],
                                       ["vocabulary", f"{V} characters"]], header=["", ""])]
    rows = [["this model (validation)", "-" if val_bits is None else val_bits],
            ["unigram: character frequencies only", unigram_bits],
            [f"uniform over {V} characters", math.log2(V)]]
    sections.append(Section("Bits per character (lower is better)", table=rows, header=["model", "bits/char"]))
    if samples:
        lines = []
        for s in samples:
            lines.append(f"--- {s['head']}\n{s['sample']}")
        sections.append(Section("Samples during training", text="\n\n".join(lines)))
    sections.append(Section("Samples from the final model",
                            text="\n\n".join(f"--- temperature {t:g}\n{s}" for t, s in final)))
    figures = {}
    if records and have_matplotlib():
        fig = training_figure(records)
        if fig is not None:
            figures["training"] = save_figure(fig, out_dir / "training.png")
    config = {"task": "lm", "params": lm.get_params(), "model": lm.model_.config()}
    path = write_report(out_dir / "report.html", title, sections, config=config, records=records, timing=timing)
    summary["report"] = str(path)
    summary["training_png"] = figures.get("training")
    return summary


# -- forecasting: the files beside the report (also used by the demo) ------------------------------

def _sniff_csv(path) -> tuple[list[str], list[str]]:
    """(header names, first data row) of a CSV file, for choosing the date column."""
    from rnnkit.data._util import read_file_text

    _, text = read_file_text(path, "utf-8", "CSV file")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)
            and not r[0].lstrip().startswith("#")]
    if not rows:
        raise RnnkitError(f"{path}: the file is empty")
    return [h.strip() for h in rows[0]], (rows[1] if len(rows) > 1 else [])


def _choose_date_column(path, columns, date_column):
    """--date-column as given, else a column named like a date, else a non-numeric first column."""
    if date_column is not None:
        return date_column
    header, first = _sniff_csv(path)
    wanted = set(columns or [])
    for name in header:
        if name.lower() in DATE_NAMES and name not in wanted:
            return name
    if not columns and first and header:
        try:
            float(first[0])
        except ValueError:
            return header[0]
    return None


def _csv_hint(message: str, columns) -> str:
    """The reader's advice in command-line terms (--fill, --date-column, --column)."""
    message = message.replace("pass fill='interpolate', 'ffill' or 'drop'", "pass --fill interpolate, ffill or drop")
    message = message.replace("pass it as date_column", "pass it as --date-column")
    if "non-numeric" in message and not columns:
        message += "; choose the series with --column NAME"
    return message


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
    _write_json(out_dir / "metrics.json", metrics)

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
    _write_text(out_dir / "backtest.csv", buf.getvalue())

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
    _write_text(out_dir / "predictions.csv", buf.getvalue())
    return metrics


def _metrics_table(metrics: dict | None) -> list[list]:
    if not metrics:
        return []
    rows = []
    for name, label in (("model", "rnn forecaster"), ("naive", "naive (last value)"),
                        ("seasonal_naive", "seasonal naive")):
        m = metrics.get(name)
        if m is not None:
            rows.append([label] + [m[k] for k in ("mae", "rmse", "mape", "smape", "mase")])
    return rows


# -- the commands ---------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from rnnkit.demo import run_demo

    result = run_demo(out=args.out, time_limit=args.time_limit, quick=args.quick, seed=args.seed,
                      echo=None if args.quiet else print, force=args.force)
    if result.get("interrupted"):
        print(f"interrupted; what was finished is in {result['out']}", file=sys.stderr)
        return 130
    print(f"report: {result['report']}")
    return 0


def _lm_params(args, saved: dict | None) -> dict:
    """The CharLanguageModel arguments: the options given, else the saved run's, else the defaults."""
    from rnnkit.tasks.lm import CharLanguageModel

    defaults = CharLanguageModel().get_params()
    options = {"cell": "--cell", "hidden_size": "--hidden", "num_layers": "--layers",
               "embedding_dim": "--embedding", "dropout": "--dropout", "seq_len": "--seq-len",
               "batch_size": "--batch", "seed": "--seed"}
    given = {"cell": args.cell, "hidden_size": args.hidden, "num_layers": args.layers,
             "embedding_dim": args.embedding, "dropout": args.dropout, "seq_len": args.seq_len,
             "batch_size": args.batch, "seed": args.seed}
    if saved is not None:
        for k, v in given.items():
            if v is not None and k in saved and v != saved[k]:
                raise RnnkitError(f"--resume: {options[k]} {v} differs from the saved run's {saved[k]!r}; "
                                  f"leave {options[k]} out to continue the run as it was")
        return {**defaults, **{k: v for k, v in saved.items() if k in defaults}}
    return {**defaults, **{k: v for k, v in given.items() if v is not None}}


def cmd_train_lm(args) -> int:
    from rnnkit import io as rkio
    from rnnkit.data.text import split_text
    from rnnkit.tasks.lm import CharLanguageModel

    out = _check_out_dir(args.out)
    text = _read_texts(args.text)
    saved = None
    if args.resume:
        if not rkio.is_checkpoint(out / "train"):
            raise RnnkitError(f"--resume: {out} holds no training checkpoint ({out / 'train' / 'config.json'} "
                              f"is missing); train without --resume first")
        task = _saved_task(out)
        if task != "lm":
            raise RnnkitError(f"--resume: {out} holds a model of task {task!r}, not a character language model")
        saved = rkio.load_json(out / "config.json").get("meta", {}).get("params")
    else:
        _guard_model_dir(out, args.force, extra=" (or --resume to continue training it)")
    params = _lm_params(args, saved)
    lm = CharLanguageModel(**params)
    train_text, val_text = split_text(text, args.val_fraction) if args.val_fraction else (text, None)
    samples = []
    callback = None
    if not args.quiet:
        callback = lm_sample_callback(args.prompt, args.sample_length, args.temperature, params["seed"],
                                      collected=samples)
    source = ", ".join(os.fspath(p) for p in args.text) + f" ({len(text):,} characters)"
    _echo(args, f"training {_a_cell(params['cell'])} character language model on {source}")
    lm.fit(text, val_fraction=args.val_fraction, epochs=args.epochs, time_limit=args.time_limit,
           max_steps=args.max_steps, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
           patience=args.patience, out_dir=out, quiet=args.quiet, resume=args.resume, callback=callback)
    hist = lm.history_
    if hist.interrupted:
        print(f"interrupted at step {hist.step}; the checkpoint in {out / 'train'} is saved: continue with "
              f"`rnnkit train-lm {' '.join(os.fspath(p) for p in args.text)} --out {out} --resume`",
              file=sys.stderr)
        return 130
    summary = write_lm_report(lm, out, source=source, train_chars=len(train_text), val_text=val_text,
                              samples=samples, prompt=args.prompt, seed=params["seed"])
    bits = summary["val_bits_per_char"]
    _echo(args, f"stopped ({hist.stop_reason}) after {hist.step} steps"
          + ("" if bits is None else f"; validation {bits:.3f} bits/char"),
          f"model: {out}", f"report: {summary['report']}")
    return 0


def _load_lm(directory):
    from rnnkit.tasks.lm import CharLanguageModel

    return CharLanguageModel.load(directory)


def cmd_generate(args) -> int:
    lm = _load_lm(args.model)
    prompt = args.prompt
    if args.beam is not None:
        text = lm.beam(prompt or None, args.length, width=args.beam)
    else:
        text = lm.sample(prompt or None, args.length, temperature=args.temperature, top_k=args.top_k,
                         top_p=args.top_p, seed=args.seed)
    sys.stdout.write(prompt + text + "\n")
    return 0


def cmd_evaluate(args) -> int:
    from rnnkit.data.text import read_text

    lm = _load_lm(args.model)
    text = read_text(args.text)
    result = lm.evaluate(text)
    print(json.dumps({"model": os.fspath(args.model), "text": os.fspath(args.text), **result}, indent=2))
    return 0


def cmd_activations(args) -> int:
    from rnnkit.data.text import read_text
    from rnnkit.diagnostics import write_activation_report

    out = _check_out_file(args.out)
    lm = _load_lm(args.model)
    text = read_text(args.text, max_chars=args.max_chars)
    res = write_activation_report(out, lm.model_, text, lm.vocab_, top=args.top,
                                  title=f"What the units of {os.fspath(args.model)} see")
    lines = [f"{'unit':<16} {'feature':<18} {'correlation':>11}"]
    for u in res["units"]:
        lines.append(_unit_line(u))
    _echo(args, *lines, f"report: {res['path']}")
    return 0


def _unit_line(u) -> str:
    if isinstance(u, dict):
        name = f"layer {u.get('layer')} {u.get('part')}[{u.get('unit')}]"
        return f"{name:<16} {str(u.get('feature')):<18} {float(u.get('corr', float('nan'))):>11.3f}"
    return str(u)


def cmd_forecast(args) -> int:
    from rnnkit.data.series import read_csv
    from rnnkit.tasks.forecast import Forecaster

    out = _check_out_dir(args.out)
    _guard_model_dir(out, args.force)
    columns = args.column
    date_column = _choose_date_column(args.csv, columns, args.date_column)
    # read once here: a missing file, a non-numeric column or a gap fails before anything is written
    try:
        data = read_csv(args.csv, columns, date_column, fill=args.fill)
    except RnnkitError as exc:
        raise RnnkitError(_csv_hint(str(exc), columns)) from exc
    N = len(data.values)
    if args.horizon >= N:
        raise RnnkitError(f"--horizon {args.horizon}: {args.csv} has only {N} rows")
    if args.lookback is not None and args.lookback + args.horizon > N:
        raise RnnkitError(f"--lookback {args.lookback} + --horizon {args.horizon} = "
                          f"{args.lookback + args.horizon} rows is longer than {args.csv} ({N} rows)")
    fc = Forecaster(lookback=args.lookback, horizon=args.horizon, strategy=args.strategy, cell=args.cell,
                    hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
                    intervals="quantile" if args.quantiles else None,
                    quantiles=args.quantiles or (0.1, 0.5, 0.9), period=args.period, seed=args.seed)
    _echo(args, f"training {_a_cell(args.cell)} forecaster of {', '.join(data.columns)} ({N} rows) "
                f"{args.horizon} step{'' if args.horizon == 1 else 's'} ahead")
    fc.fit(args.csv, columns=columns, date_column=date_column, fill=args.fill,
           val_fraction=args.val_fraction, test_fraction=args.test_fraction, epochs=args.epochs,
           time_limit=args.time_limit, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
           patience=args.patience, out_dir=out, quiet=args.quiet)
    metrics = write_forecast_outputs(fc, out, data.values, data.dates)
    if fc.history_.interrupted:
        print(f"interrupted at step {fc.history_.step}; the model trained so far and its report are in {out}",
              file=sys.stderr)
        return 130
    lines = []
    if metrics["metrics"]:
        lines.append(f"backtest on the test part ({metrics['test_origins']} origins), MASE (lower is better):")
        for row in _metrics_table(metrics["metrics"]):
            lines.append(f"  {row[0]:<22} {row[-1]:.4f}")
    else:
        lines.append("no test part long enough for a backtest (raise --test-fraction)")
    _echo(args, *lines, f"model and predictions: {out}", f"report: {out / 'report.html'}")
    return 0


def _read_labelled(path, missing: str):
    from rnnkit.data.ucr import read_labeled_sequences

    X, y = read_labeled_sequences(path, missing=missing)
    if y is None:
        raise RnnkitError(f"{path}: the file has no class labels")
    return X, y


def cmd_classify(args) -> int:
    import numpy as np

    from rnnkit.tasks.classify import SequenceClassifier

    out = _check_out_dir(args.out)
    _guard_model_dir(out, args.force)
    # read and compare both files first: a test class never seen in training fails before training
    X, y = _read_labelled(args.train, args.missing)
    test = None
    if args.test is not None:
        Xt, yt = _read_labelled(args.test, args.missing)
        known = set(y)
        unknown = sorted({c for c in yt if c not in known}, key=str)
        if unknown:
            raise RnnkitError(f"--test {args.test}: classes {', '.join(map(repr, unknown[:10]))} are not in the "
                              f"training file {args.train} (its classes: {', '.join(map(repr, sorted(known, key=str)[:20]))})")
        test = (Xt, yt)
    clf = SequenceClassifier(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
                             bidirectional=args.bidirectional, pooling=args.pooling, dropout=args.dropout,
                             class_weight="balanced" if args.balanced else None, batch_size=args.batch,
                             seed=args.seed)
    _echo(args, f"training {_a_cell(args.cell)} classifier on {len(X)} sequences of {len(set(y))} classes from {args.train}")
    clf.fit_files(args.train, args.test, missing=args.missing, val_fraction=args.val_fraction, epochs=args.epochs,
                  time_limit=args.time_limit, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
                  patience=args.patience, out_dir=out, quiet=args.quiet)
    metrics = {"classes": list(clf.classes_), "train_file": os.fspath(args.train),
               "test_file": None if args.test is None else os.fspath(args.test),
               "steps": clf.history_.step, "stop_reason": clf.history_.stop_reason,
               "validation": clf.val_evaluation_, "test": clf.test_evaluation_}
    _write_json(out / "metrics.json", metrics)
    if test is not None:
        proba = clf.predict_proba(test[0])
        pred = np.argmax(proba, axis=1)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", "label", "predicted", "probability"])
        for i, (label, k) in enumerate(zip(test[1], pred)):
            w.writerow([i, label, clf.classes_[int(k)], repr(float(proba[i, k]))])
        _write_text(out / "predictions.csv", buf.getvalue())
    if clf.history_.interrupted:
        print(f"interrupted at step {clf.history_.step}; the model trained so far and its report are in {out}",
              file=sys.stderr)
        return 130
    lines = []
    for name, ev in (("validation", clf.val_evaluation_), ("test", clf.test_evaluation_)):
        if ev is not None:
            lines.append(f"{name} accuracy {float(ev['accuracy']):.4f}, macro F1 {float(ev['macro_f1']):.4f}")
    _echo(args, *lines, f"model and metrics: {out}", f"report: {out / 'report.html'}")
    return 0


def _read_pairs(path) -> tuple[list[str], list[str]]:
    """Tab-separated ``source<TAB>target`` lines (blank lines skipped)."""
    from rnnkit.data._util import read_file_text

    path, text = read_file_text(path, "utf-8", "pairs file")
    sources, targets = [], []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise RnnkitError(f"{path}, line {n}: expected 'source<TAB>target', found no tab in {line[:60]!r}")
        src, tgt = line.split("\t", 1)
        if not src:
            raise RnnkitError(f"{path}, line {n}: the source (before the tab) is empty")
        sources.append(src)
        targets.append(tgt)
    if not sources:
        raise RnnkitError(f"{path}: no 'source<TAB>target' lines")
    return sources, targets


def cmd_seq2seq(args) -> int:
    if (args.model is None) == (args.out is None):
        raise RnnkitError("seq2seq: give --out DIR to train a model, or --model DIR with inputs to "
                          "translate (not both)")
    if args.model is not None:
        return _seq2seq_predict(args)
    if args.inputs:
        raise RnnkitError(f"seq2seq: inputs to translate ({args.inputs[0]!r}, …) need --model DIR; "
                          f"train first with --out DIR")
    return _seq2seq_train(args)


def _seq2seq_train(args) -> int:
    from rnnkit.tasks.seq2seq import Seq2Seq

    out = _check_out_dir(args.out)
    _guard_model_dir(out, args.force)
    if args.train is not None:
        sources, targets = _read_pairs(args.train)
        what = f"{len(sources)} pairs from {args.train}"
    else:
        from rnnkit.data.synthetic import date_dataset

        sources, targets = date_dataset(args.dates, seed=args.seed)
        what = f"{len(sources)} built-in date pairs (e.g. {sources[0]!r} -> {targets[0]!r})"
    test = _read_pairs(args.test) if args.test is not None else None
    if test is not None:
        # the model reads only characters of the training sources: say so before training
        seen = set("".join(sources))
        unseen = sorted(set("".join(test[0])) - seen)
        if unseen:
            raise RnnkitError(f"--test {args.test}: sources hold characters that no training source has: "
                              f"{', '.join(map(repr, unseen[:20]))}")
    s2s = Seq2Seq(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, embedding_dim=args.embedding,
                  bidirectional=not args.unidirectional, dropout=args.dropout, batch_size=args.batch,
                  seed=args.seed)
    _echo(args, f"training {_a_cell(args.cell)} encoder-decoder on {what}")
    s2s.fit(sources, targets, val_fraction=args.val_fraction, epochs=args.epochs, time_limit=args.time_limit,
            optimizer=args.optimizer, lr=args.lr, clip=args.clip, patience=args.patience, out_dir=out,
            quiet=args.quiet)
    metrics = {"pairs": len(sources), "steps": s2s.history_.step, "stop_reason": s2s.history_.stop_reason,
               "validation": s2s.val_scores_, "test": None}
    if test is not None:
        metrics["test"] = s2s.evaluate(test[0], test[1], beam_width=args.beam)
    _write_json(out / "metrics.json", metrics)
    if s2s.history_.interrupted:
        print(f"interrupted at step {s2s.history_.step}; the model trained so far and its report are in {out}",
              file=sys.stderr)
        return 130
    lines = []
    for name in ("validation", "test"):
        sc = metrics[name]
        if sc is not None:
            lines.append(f"{name}: exact match {sc['exact_match']:.4f}, character accuracy "
                         f"{sc['char_accuracy']:.4f} ({sc['n']} pairs)")
    _echo(args, *lines, f"model: {out}", f"report: {out / 'report.html'}",
          f"translate with: rnnkit seq2seq --model {out} 'INPUT'")
    return 0


def _seq2seq_predict(args) -> int:
    from rnnkit.data._util import read_file_text
    from rnnkit.tasks.seq2seq import Seq2Seq

    inputs = list(args.inputs)
    if args.input_file is not None:
        _, text = read_file_text(args.input_file, "utf-8", "input file")
        inputs += [line for line in text.split("\n") if line.strip()]
    if not inputs:
        raise RnnkitError("seq2seq --model: give the inputs to translate (arguments or --input-file FILE)")
    s2s = Seq2Seq.load(args.model)
    for src, pred in zip(inputs, s2s.predict(inputs, beam_width=args.beam)):
        print(f"{src}\t{pred}")
    return 0


def _diagnostic_report(out: Path, title: str, table: str, png, note: str | None = None) -> Path:
    from rnnkit.report import Section, write_report

    figures = [Path(png).read_bytes()] if png else []
    sec = Section(title, text=table + (f"\n\n{note}" if note else ""), figures=figures)
    return write_report(out / "report.html", f"rnnkit {title}", [sec])


def cmd_gradients(args) -> int:
    from rnnkit.diagnostics import run_gradients

    out = _check_out_dir(args.out)
    res = run_gradients(out, cells=args.cell, length=args.length, init=args.init, hidden=args.hidden,
                        seed=args.seed, forget_bias=args.forget_bias, norm=args.norm)
    report = _diagnostic_report(out, "gradient flow through time", res["table"], res["png"], res.get("note"))
    _echo(args, res["table"], f"wrote {res['json']}" + (f", {res['png']}" if res["png"] else ""),
          f"report: {report}")
    return 0


def cmd_memory(args) -> int:
    from rnnkit.diagnostics import format_memory_table, run_memory

    out = _check_out_dir(args.out)
    log = None
    if not args.quiet:
        print(f"{args.task} task, T = {args.length}: training {', '.join(args.cell)} for {args.steps} steps each",
              flush=True)
        print(f"{'cell':<10} {'best loss':>10} {'steps to beat':>14} {'seconds':>9}", flush=True)
        log = lambda line: print(line, flush=True)  # noqa: E731
    res = run_memory(task=args.task, length=args.length, cells=args.cell, steps=args.steps, out_dir=out,
                     hidden=args.hidden, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                     clip=args.clip, seed=args.seed, log=log)
    report = _diagnostic_report(out, f"memory: {args.task} task", format_memory_table(res), res.get("png"),
                                res.get("note"))
    # the rows were printed as each cell finished; the table's first line says what they mean
    _echo(args, res["table"].split("\n")[0], f"wrote {res['json']}" + (f", {res['png']}" if res.get("png") else ""),
          f"report: {report}")
    return 0


def cmd_bench(argv) -> int:
    from rnnkit import bench

    return int(bench.main(argv) or 0)


# -- the parser -----------------------------------------------------------------------------------

def _sub(subparsers, name: str, summary: str, description: str, example: str):
    return subparsers.add_parser(name, help=summary, description=description,
                                 epilog="example:\n" + _indent(example.strip(), "  "),
                                 formatter_class=_HelpFormatter)


def _add_threads_option(p, default: int | None) -> None:
    p.add_argument("--threads", type=_positive_int, default=default,
                   help="threads of the BLAS behind NumPy's matrix products (unset: the BLAS's own choice); "
                        "1 is usually fastest for recurrent models this size, and much faster on a busy machine")


def _add_training_options(p, epochs: int, lr: float, clip, patience) -> None:
    p.add_argument("--epochs", type=_positive_int, default=epochs, help="passes over the training data at most")
    p.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop training after this many seconds (the best weights so far are kept)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="the optimizer")
    p.add_argument("--lr", type=_positive_float, default=lr, help="learning rate")
    p.add_argument("--clip", type=_clip, default=clip, metavar="NORM",
                   help="bound on the global gradient norm; 'none' turns clipping off")
    p.add_argument("--patience", type=_positive_int, default=patience,
                   help="stop after this many epochs without a better validation loss")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", formatter_class=_HelpFormatter,
        description="Recurrent neural networks (RNN, LSTM, GRU) trained by hand-written BPTT in NumPy.\n"
                    "Start with `rnnkit demo`: it needs no download and takes about two minutes.",
        epilog="example:\n  rnnkit demo\n  rnnkit train-lm book.txt --out runs/book --time-limit 600\n"
               "  rnnkit generate runs/book --prompt 'The ' --length 300\n\n"
               "`rnnkit COMMAND --help` describes a command.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # demo
    p = _sub(sub, "demo", "train a character model and a forecaster on data already on this machine",
             "Train a small character LSTM on Python's own standard-library source, printing samples\n"
             "as it learns; then a forecaster on a built-in daily series, backtested against naive and\n"
             "seasonal-naive baselines. Writes one report.html linking both runs. Nothing is downloaded.",
             "rnnkit demo --out rnnkit-demo --time-limit 120")
    p.add_argument("--out", default="rnnkit-demo", metavar="DIR", help="directory for the runs and report.html")
    p.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="wall-time budget of the whole demo (default 110, or 8 with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny models for a few seconds: a smoke test")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights, data order and samples")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files that "
                                                        "are not from a demo")
    p.add_argument("--quiet", action="store_true", help="print only where the report is")
    p.set_defaults(func=cmd_demo)

    # train-lm
    p = _sub(sub, "train-lm", "train a character language model on text files",
             "Train a character-level language model by truncated BPTT. The last --val-fraction of\n"
             "the text validates (early stopping, best weights). After every epoch a sample is printed.\n"
             "DIR receives the model (config.json, model.npz), train/ (resumable checkpoints,\n"
             "metrics.jsonl, best/), report.html and training.png. Ctrl-C saves a checkpoint;\n"
             "--resume continues from it.",
             "rnnkit train-lm book.txt --out runs/book --cell lstm --hidden 256 --time-limit 600\n"
             "rnnkit train-lm book.txt --out runs/book --resume --epochs 40")
    p.add_argument("text", nargs="+", metavar="TEXT", help="UTF-8 text file(s), joined in order")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    p.add_argument("--cell", choices=CELLS, default=None, help="recurrent cell (default lstm)")
    p.add_argument("--hidden", type=_positive_int, default=None, help="hidden units per layer (default 128)")
    p.add_argument("--layers", type=_positive_int, default=None, help="stacked recurrent layers (default 2)")
    p.add_argument("--embedding", type=_positive_int, default=None,
                   help="character embedding size (default 32)")
    p.add_argument("--dropout", type=_fraction, default=None, help="dropout between layers (default 0)")
    p.add_argument("--seq-len", type=_positive_int, default=None,
                   help="truncated-BPTT window in characters (default 64)")
    p.add_argument("--batch", type=_positive_int, default=None, help="parallel text streams (default 32)")
    _add_training_options(p, epochs=20, lr=2e-3, clip=5.0, patience=3)
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, help="held-out end of the text")
    p.add_argument("--seed", type=_nonneg_int, default=None, help="seed of weights and data order (default 0)")
    p.add_argument("--prompt", default="", help="text the printed samples start from")
    p.add_argument("--sample-length", type=_positive_int, default=200, help="characters per printed sample")
    p.add_argument("--temperature", type=_nonneg_float, default=0.8, help="temperature of the printed samples")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress, no samples")
    p.set_defaults(func=cmd_train_lm)

    # generate
    p = _sub(sub, "generate", "sample text from a trained language model",
             "Print --prompt followed by --length generated characters. Temperature 0 (or --top-k 1)\n"
             "is greedy; --top-k / --top-p restrict the draw; --beam searches for the most likely text.",
             "rnnkit generate runs/book --prompt 'Once upon' --length 300 --temperature 0.7 --seed 1")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("--prompt", default="", help="text to continue (its characters must be in the vocabulary)")
    p.add_argument("--length", type=_positive_int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=_nonneg_float, default=1.0, help="0 is greedy, higher is more random")
    p.add_argument("--top-k", type=_positive_int, default=None, help="draw only among the k likeliest characters")
    p.add_argument("--top-p", type=_positive_float, default=None,
                   help="draw only among the likeliest characters whose probability reaches P (in (0, 1])")
    p.add_argument("--beam", type=_positive_int, default=None, metavar="WIDTH",
                   help="beam search of this width instead of sampling")
    p.add_argument("--seed", type=_nonneg_int, default=None, help="seed of the draw (default: random)")
    p.set_defaults(func=cmd_generate)

    # evaluate
    p = _sub(sub, "evaluate", "nats and bits per character of a text under a trained language model",
             "Score TEXT as one stream from the zero state and print JSON with nats_per_char,\n"
             "bits_per_char and chars (the number of predicted characters).",
             "rnnkit evaluate runs/book held-out.txt")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("text", metavar="TEXT", help="UTF-8 text file (its characters must be in the vocabulary)")
    p.set_defaults(func=cmd_evaluate)

    # activations
    p = _sub(sub, "activations", "show which units of a language model track quotes, lines, brackets",
             "Run a trained language model over TEXT, rank its units by correlation with simple\n"
             "properties of the text (inside quotes, position in the line, inside brackets, spaces)\n"
             "and write an HTML page with the text coloured by the best units and gate heat maps.",
             "rnnkit activations runs/book sample.txt --out units.html")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("text", metavar="TEXT", help="UTF-8 text file to read with the model")
    p.add_argument("--out", required=True, metavar="FILE", help="HTML file to write")
    p.add_argument("--top", type=_positive_int, default=6, help="units to show")
    p.add_argument("--max-chars", type=_positive_int, default=2000, help="read at most this much of TEXT")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_activations)

    # forecast
    p = _sub(sub, "forecast", "train a forecaster on a CSV column and backtest it against baselines",
             "Train a recurrent forecaster of the next --horizon rows. Rows are split in time order\n"
             "into train | validation | test; scaling uses the training part only. The test part is\n"
             "backtested (rolling origin) against the naive and seasonal-naive forecasts.\n"
             "DIR receives the model, metrics.json, backtest.csv (test forecasts vs actual),\n"
             "predictions.csv (the horizon after the data), forecast.png, training.png, report.html.",
             "rnnkit forecast sales.csv --column units --horizon 14 --out runs/sales --quantiles 0.1,0.5,0.9")
    p.add_argument("csv", metavar="CSV", help="CSV file with a header row")
    p.add_argument("--column", action="append", default=None, metavar="NAME",
                   help="series column to forecast (repeat for several; default every numeric column)")
    p.add_argument("--date-column", default=None, metavar="NAME",
                   help="column of date labels (default: one named date/time/..., or a non-numeric first column)")
    p.add_argument("--fill", choices=("error", "interpolate", "ffill", "drop"), default="error",
                   help="what to do with empty cells")
    p.add_argument("--horizon", type=_positive_int, required=True, help="rows to forecast")
    p.add_argument("--lookback", type=_positive_int, default=None,
                   help="rows the network reads (default: 2 periods, or max(2*horizon, 24))")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    p.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell")
    p.add_argument("--hidden", type=_positive_int, default=64, help="hidden units per layer")
    p.add_argument("--layers", type=_positive_int, default=1, help="stacked recurrent layers")
    p.add_argument("--dropout", type=_fraction, default=0.0, help="dropout between layers and before the head")
    p.add_argument("--strategy", choices=("direct", "recursive"), default="direct",
                   help="direct: all horizon steps at once; recursive: one step rolled forward")
    p.add_argument("--quantiles", type=_quantiles, default=None, metavar="Q1,Q2,...",
                   help="train quantile outputs (pinball loss) for prediction bands, e.g. 0.1,0.5,0.9")
    p.add_argument("--period", type=_period, default="auto",
                   help="seasonal period in rows for the seasonal-naive baseline, 'auto' or 'none'")
    p.add_argument("--val-fraction", type=_fraction, default=0.15, help="validation part (early stopping)")
    p.add_argument("--test-fraction", type=_fraction, default=0.15, help="test part (backtest)")
    _add_training_options(p, epochs=100, lr=3e-3, clip=1.0, patience=10)
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights and data order")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_forecast)

    # classify
    p = _sub(sub, "classify", "train a sequence classifier on labelled series (UCR .tsv, UEA .ts, CSV)",
             "Train a many-to-one classifier (recurrent layer, attention/mean/last pooling, softmax).\n"
             "Files: UCR .tsv (label, then values), UEA .ts, or CSV (one series per row, label first),\n"
             "chosen by suffix. A stratified --val-fraction of TRAIN validates; --test is scored at the end.\n"
             "DIR receives the model, metrics.json, confusion_matrix.png (and _test), predictions.csv\n"
             "(with --test), training.png and report.html.",
             "rnnkit classify GunPoint_TRAIN.tsv --test GunPoint_TEST.tsv --out runs/gunpoint --time-limit 120")
    p.add_argument("train", metavar="TRAIN", help="labelled training file (.tsv, .ts or .csv)")
    p.add_argument("--test", default=None, metavar="TEST", help="labelled test file of the same format")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    p.add_argument("--cell", choices=CELLS, default="gru", help="recurrent cell")
    p.add_argument("--hidden", type=_positive_int, default=64, help="hidden units per layer")
    p.add_argument("--layers", type=_positive_int, default=1, help="stacked recurrent layers")
    p.add_argument("--bidirectional", action="store_true", help="read the series in both directions")
    p.add_argument("--pooling", choices=("attention", "mean", "last"), default="attention",
                   help="how the states over time become one vector")
    p.add_argument("--dropout", type=_fraction, default=0.0, help="dropout between layers and before the head")
    p.add_argument("--balanced", action="store_true", help="weight classes inversely to their frequency")
    p.add_argument("--missing", choices=("error", "trim", "interpolate"), default="trim",
                   help="missing values: error, trim the padding at the end, or interpolate")
    p.add_argument("--val-fraction", type=_fraction, default=0.15, help="stratified validation part of TRAIN")
    p.add_argument("--batch", type=_positive_int, default=32, help="sequences per step")
    _add_training_options(p, epochs=50, lr=5e-3, clip=1.0, patience=8)
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights, split and data order")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_classify)

    # seq2seq
    p = _sub(sub, "seq2seq", "train an encoder-decoder on text pairs, or translate with one",
             "Train: --out DIR with --train FILE (lines 'source<TAB>target') or, without --train, the\n"
             "built-in task of reading dates written by people ('3 March 2021', 'Mar 3, 21') as ISO\n"
             "dates. DIR receives the model, metrics.json, char_accuracy.png, training.png, report.html.\n"
             "Translate: --model DIR followed by the inputs (or --input-file); prints 'input<TAB>output'.",
             "rnnkit seq2seq --out runs/dates --time-limit 300\n"
             "rnnkit seq2seq --model runs/dates 'March 3, 2021' '12.07.99'")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="with --model: texts to translate")
    p.add_argument("--out", default=None, metavar="DIR", help="train and write the run here")
    p.add_argument("--model", default=None, metavar="DIR", help="translate with the model in DIR")
    p.add_argument("--input-file", default=None, metavar="FILE", help="with --model: one input per line")
    p.add_argument("--train", default=None, metavar="FILE", help="training pairs, 'source<TAB>target' per line "
                                                                  "(default: the built-in dates task)")
    p.add_argument("--test", default=None, metavar="FILE", help="test pairs of the same format, scored at the end")
    p.add_argument("--dates", type=_positive_int, default=2000, help="pairs of the built-in dates task")
    p.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell")
    p.add_argument("--hidden", type=_positive_int, default=128, help="hidden units per layer")
    p.add_argument("--layers", type=_positive_int, default=1, help="stacked recurrent layers")
    p.add_argument("--embedding", type=_positive_int, default=32, help="character embedding size")
    p.add_argument("--unidirectional", action="store_true", help="read the source left to right only")
    p.add_argument("--dropout", type=_fraction, default=0.0, help="dropout between layers")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, help="held-out pairs for validation")
    p.add_argument("--batch", type=_positive_int, default=32, help="pairs per step")
    _add_training_options(p, epochs=30, lr=5e-3, clip=1.0, patience=5)
    p.add_argument("--beam", type=_positive_int, default=1, metavar="WIDTH",
                   help="beam width for translating and the test score (1: greedy)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights, split, data order and dates")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_seq2seq)

    # gradients
    p = _sub(sub, "gradients", "measure vanishing and exploding gradients through time",
             "For freshly initialised cells, run one random sequence of --length steps and measure\n"
             "||dL/dh_t|| for every t with L read at the last step, and the Jacobian norms\n"
             "||dh_T/dh_t||. Prints a table and writes gradients.json, gradients.png, report.html.",
             "rnnkit gradients --cell rnn,rnn-relu,lstm,gru --length 200 --out runs/grad\n"
             "rnnkit gradients --cell rnn --init radius=1.1 --out runs/explode")
    p.add_argument("--cell", type=_cell_list(DIAGNOSTIC_CELLS), default=["rnn", "rnn-relu", "lstm", "gru"],
                   help=f"comma-separated cells from {','.join(DIAGNOSTIC_CELLS)} (default rnn,rnn-relu,lstm,gru)")
    p.add_argument("--length", type=_positive_int, default=200, help="time steps T (at least 2)")
    p.add_argument("--init", default="default",
                   help="weights: default, xavier_orthogonal or radius=R (W_hh scaled to spectral radius R)")
    p.add_argument("--hidden", type=_positive_int, default=64, help="hidden units")
    p.add_argument("--forget-bias", type=_float, default=None, help="LSTM forget-gate bias")
    p.add_argument("--norm", choices=("spectral", "frobenius"), default="spectral", help="matrix norm of Jacobians")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights and inputs")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_gradients)

    # memory
    p = _sub(sub, "memory", "train cells on long-range memory tasks against a no-memory baseline",
             "Train each cell on the adding problem, copy memory or sequential digits and report\n"
             "the best loss and how many steps it took to get below 0.9 x the no-memory baseline.\n"
             "Writes memory.json, memory.png and report.html.",
             "rnnkit memory --task adding --length 100 --cell rnn,irnn,lstm,gru --steps 2000 --out runs/adding")
    p.add_argument("--task", choices=("adding", "copy", "digits"), default="adding", help="the benchmark")
    p.add_argument("--length", type=_positive_int, default=100, help="sequence length T (digits: always 8)")
    p.add_argument("--cell", type=_cell_list(DIAGNOSTIC_CELLS), default=["rnn", "irnn", "lstm", "gru"],
                   help=f"comma-separated cells from {','.join(DIAGNOSTIC_CELLS)} (default rnn,irnn,lstm,gru)")
    p.add_argument("--steps", type=_positive_int, default=2000, help="optimizer steps per cell")
    p.add_argument("--hidden", type=_positive_int, default=64, help="hidden units")
    p.add_argument("--batch", type=_positive_int, default=32, help="sequences per step")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="the optimizer")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: with adam 2e-3 for rnn/irnn and 1e-2 for lstm/gru, "
                   "else the optimizer's default)")
    p.add_argument("--clip", type=_clip, default=1.0, metavar="NORM",
                   help="bound on the global gradient norm; 'none' turns clipping off")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of weights and data")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write")
    p.add_argument("--quiet", action="store_true", help="print nothing while training")
    p.set_defaults(func=cmd_memory)

    # bench: its own parser (rnnkit.bench); listed here for `rnnkit --help`
    p = sub.add_parser("bench", add_help=False, help="time forward/BPTT against other implementations "
                                                     "(`rnnkit bench --help` for options)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of rnnkit bench")
    p.set_defaults(func=lambda a: cmd_bench(a.args))
    for name, p in sub.choices.items():
        if name != "bench":          # bench has its own --threads (for every worker it starts)
            _add_threads_option(p, 1 if name == "demo" else None)
    return parser


# -- the entry point --------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run the ``rnnkit`` command; returns the exit status (0 ok, 1 error, 2 usage, 130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("RNNKIT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    try:
        if argv and argv[0] == "bench":
            # bench parses its own options (and its own --help)
            return cmd_bench(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        with blas_threads(getattr(args, "threads", None)):
            return int(args.func(args) or 0)
    except SystemExit as exc:            # argparse: --help, --version, usage errors
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (`rnnkit generate … | head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except (RnnkitError, ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


if __name__ == "__main__":
    sys.exit(main())
