"""Do rnnkit's jobs learn real data with their defaults? Each job next to classical baselines.

Every job runs as a user runs it: ``python -m rnnkit <command> FILE --out DIR`` with no
tuning flag (``--quick`` adds only a ``--time-limit`` so the run stays short), and the
baselines are computed in the same run on the same splits (``quality_baselines.py``):

    classify   UCR/UEA problems in DATA/classify, official train/test splits: test accuracy
               of ``rnnkit classify TRAIN --test TEST`` against 1-NN Euclidean and 1-NN DTW
               (full window).
    forecast   the series of DATA/forecast at rolling origins (the last h rows, then h and
               2h earlier with the full run): rnnkit sees the rows before the origin as a CSV
               (``rnnkit forecast prefix.csv --column C --horizon h``; its predictions.csv
               is the forecast) and so does every baseline: naive, seasonal naive, ETS,
               ARIMA, Theta. MASE with the seasonal lag (M4 definition), mean over origins.
    lm         moby_dick: first 90 % of the characters to train, last 10 % to test.
               ``rnnkit train-lm train.txt --time-limit T`` then ``rnnkit evaluate``, against
               a Kneser–Ney character n-gram (order chosen on validation) and a hand-tuned
               torch 2-layer LSTM trained for the same T seconds. Bits per character.
    seq2seq    translation pairs: ``rnnkit seq2seq --train --test`` against retrieval of
               the training pair whose source shares the most character trigrams.

Run from the repository root (``pip install -e ".[quality]"`` for statsmodels and torch):

    python benchmarks/quality.py --quick          # a few minutes
    python benchmarks/quality.py                  # the full run, under an hour
    python benchmarks/quality.py --only lm --lm-time 1800 --lm-side-by-side

Writes JSON (``--json``, default quality.json) and prints a table. Timings and the
time-limited results depend on the machine's load: note it when comparing runs.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import quality_baselines as qb  # noqa: E402

CLASSIFY = [("UnitTest", "tsv"), ("ACSF1", "tsv"), ("PLAID", "ts")]
#: (file, column, horizon, seasonal period)
FORECAST = [("shampoo_sales.csv", None, 6, 12), ("elec_equip.csv", None, 12, 12),
            ("seatbelts_ksi.csv", "ksi", 12, 12), ("elnino_sst.csv", None, 12, 12),
            ("uschange.csv", "consumption", 8, 4), ("macrodata.csv", "realgdp", 8, 4),
            ("solar_gb.csv", None, 48, 48)]


def default_data() -> str | None:
    """The development data folder: ../shared/data beside the checkout, else /work/shared/data."""
    for cand in (os.path.join(ROOT, "..", "shared", "data"), "/work/shared/data"):
        if os.path.isdir(cand):
            return cand
    return None


def rnnkit_cli(args: list, timeout: float) -> dict:
    """Run ``python -m rnnkit ARGS`` from this checkout; {"ok", "seconds", "error"}."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": time.perf_counter() - t0, "error": f"timeout after {timeout:.0f}s",
                "stdout": ""}
    err = None
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
        err = lines[-1] if lines else f"exit status {p.returncode}"
    return {"ok": p.returncode == 0, "seconds": time.perf_counter() - t0, "error": err, "stdout": p.stdout}


def _limit(opts, seconds) -> list:
    return ["--time-limit", str(seconds)] if seconds else []


# -- classification ----------------------------------------------------------------------------

def bench_classify(opts, tmp) -> list:
    from rnnkit.data.ucr import read_labeled_sequences

    rows = []
    folder = opts.classify_dir or os.path.join(opts.data, "classify")
    found = CLASSIFY if not opts.classify_dir else sorted(
        (f[:-len("_TRAIN." + e)], e) for f in os.listdir(folder) for e in ("ts", "tsv")
        if f.endswith("_TRAIN." + e) and os.path.isfile(os.path.join(folder, f.replace("_TRAIN.", "_TEST."))))
    names = found[:2] if opts.quick else found
    if opts.classify_sets:
        names = [(n, e) for n, e in found if n in opts.classify_sets.split(",")]
    for name, ext in names:
        tr = os.path.join(folder, f"{name}_TRAIN.{ext}")
        te = os.path.join(folder, f"{name}_TEST.{ext}")
        X, y = read_labeled_sequences(tr)
        Xt, yt = read_labeled_sequences(te)
        yt = np.asarray(yt)
        row = {"dataset": name, "train": len(X), "test": len(Xt), "classes": len(set(y)),
               "length": [int(min(len(s) for s in X)), int(max(len(s) for s in X))]}
        accs, seconds, row["rnnkit_error"] = [], [], None
        for seed in range(opts.classify_seeds):
            out = os.path.join(tmp, f"clf_{name}_{seed}")
            run = rnnkit_cli(["classify", tr, "--test", te, "--out", out, "--quiet",
                              *(["--seed", str(seed)] if seed else []), *_limit(opts, opts.job_time)], opts.timeout)
            seconds.append(run["seconds"])
            if not run["ok"]:
                row["rnnkit_error"] = run["error"]
                break
            m = json.load(open(os.path.join(out, "metrics.json")))
            accs.append(m["test"]["accuracy"])
            row["rnnkit_steps"] = m.get("steps")
            # each part of the average alone (networks, second model) and the second model's weight
            row.setdefault("rnnkit_parts", []).append(m["test"].get("parts"))
        # the mean over seeds 0 … N−1 (one run of the defaults per seed)
        row["rnnkit"] = float(np.mean(accs)) if accs and not row["rnnkit_error"] else None
        row["rnnkit_runs"], row["rnnkit_seconds"] = accs, float(np.mean(seconds))
        t0 = time.perf_counter()
        row["1nn_ed"] = float(np.mean(np.asarray(qb.one_nn_euclidean(X, y, Xt)) == yt))
        row["1nn_dtw"] = float(np.mean(np.asarray(qb.one_nn_dtw(X, y, Xt)) == yt))
        row["baseline_seconds"] = time.perf_counter() - t0
        _say(f"classify {name}: rnnkit {_f(row['rnnkit'])} ({row['rnnkit_seconds']:.0f}s"
             f"{', ' + row['rnnkit_error'] if row['rnnkit_error'] else ''}; parts {row.get('rnnkit_parts')}), "
             f"1-NN ED {row['1nn_ed']:.3f}, "
             f"1-NN DTW {row['1nn_dtw']:.3f}")
        rows.append(row)
    return rows


# -- forecasting -----------------------------------------------------------------------------------

def _read_series(path, column):
    with open(path, newline="") as f:
        r = list(csv.reader(f))
    header, body = r[0], r[1:]
    col = 1 if column is None else header.index(column)
    return header[0], header[col], [b[0] for b in body], np.array([float(b[col]) for b in body])


def _forecast_csv(text):
    """--forecast-csv PATH:H:M[:COLUMN] -> (path, column or None, H, M)."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not parts[1].isdigit() or not parts[2].isdigit() or int(parts[1]) < 1 \
            or int(parts[2]) < 1:
        raise argparse.ArgumentTypeError(f"expected PATH:H:M[:COLUMN] with integers H, M >= 1, got {text!r}")
    if not os.path.isfile(parts[0]):
        raise argparse.ArgumentTypeError(f"no such file {parts[0]!r}")
    return parts[0], (parts[3] if len(parts) == 4 else None), int(parts[1]), int(parts[2])


def bench_forecast(opts, tmp) -> list:
    rows = []
    series = [(os.path.join(opts.data, "forecast", f), c, h, m) for f, c, h, m in FORECAST
              if not opts.series or f[:-4] in opts.series.split(",")]
    if opts.forecast_csv:                       # other files only, when given
        series = opts.forecast_csv
    for path_in, column, h, m in series:
        fname = os.path.basename(path_in)
        date_name, col, dates, y = _read_series(path_in, column)
        N = len(y)
        origins = [N - h - k * h for k in range(1 if opts.quick else 3)]
        scores = {k: [] for k in ("rnnkit", "naive", "seasonal_naive", "ets", "arima", "theta")}
        errors, seconds, inside = [], 0.0, []
        for o in origins:
            hist, actual = y[:o], y[o:o + h]
            path = os.path.join(tmp, f"fc_{fname}_{o}.csv")
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow([date_name, col])
                w.writerows([[d, repr(float(v))] for d, v in zip(dates[:o], hist)])
            out = os.path.join(tmp, f"fc_{fname}_{o}")
            run = rnnkit_cli(["forecast", path, "--column", col, "--horizon", str(h), "--out", out, "--quiet",
                              *_limit(opts, opts.job_time and max(10, opts.job_time // 3))], opts.timeout)
            seconds += run["seconds"]
            if run["ok"]:
                with open(os.path.join(out, "predictions.csv"), newline="") as f:
                    pred = list(csv.DictReader(f))
                fc = np.array([float(r["forecast"]) for r in pred])
                scores["rnnkit"].append(qb.mase(actual, fc, hist, m))
                if pred and "lower" in pred[0]:     # the default 80 % band (quantiles 0.1, 0.9)
                    lo, hi = (np.array([float(r[k]) for r in pred]) for k in ("lower", "upper"))
                    inside += list((actual >= lo) & (actual <= hi))
            else:
                errors.append(run["error"])
            scores["naive"].append(qb.mase(actual, np.repeat(hist[-1], h), hist, m))
            scores["seasonal_naive"].append(qb.mase(actual, qb.seasonal_naive(hist, h, m), hist, m))
            scores["ets"].append(qb.mase(actual, qb.ets_forecast(hist, h, m), hist, m))
            scores["arima"].append(qb.mase(actual, qb.arima_forecast(hist, h, m, quick=opts.quick), hist, m))
            scores["theta"].append(qb.mase(actual, qb.theta_forecast(hist, h, m), hist, m))
        row = {"series": f"{fname[:-4]}:{col}", "rows": N, "horizon": h, "period": m, "origins": origins,
               "rnnkit_seconds": seconds, "rnnkit_error": errors[0] if errors else None}
        for k, v in scores.items():
            row[k] = float(np.mean(v)) if v and len(v) == len(origins) else None
        row["best_classical"] = min(row["ets"], row["arima"], row["theta"])
        row["coverage80"] = float(np.mean(inside)) if inside else None
        _say(f"forecast {row['series']}: MASE rnnkit {_f(row['rnnkit'])} (80% band covers {_f(row['coverage80'])}, "
             f"{seconds:.0f}s"
             f"{', ' + errors[0] if errors else ''}), snaive {row['seasonal_naive']:.3f}, ets {row['ets']:.3f}, "
             f"arima {row['arima']:.3f}, theta {row['theta']:.3f}")
        rows.append(row)
    return rows


# -- language model ------------------------------------------------------------------------------------

def bench_lm(opts, tmp) -> dict:
    text = gzip.open(os.path.join(opts.data, "text", "moby_dick.txt.gz"), "rt", encoding="utf-8").read()
    cut = int(len(text) * 0.9)
    train, test = text[:cut], text[cut:]
    tr, te = os.path.join(tmp, "lm_train.txt"), os.path.join(tmp, "lm_test.txt")
    for p, s in ((tr, train), (te, test)):
        with open(p, "w", encoding="utf-8") as f:
            f.write(s)
    T = opts.lm_time
    res = {"train_chars": len(train), "test_chars": len(test), "time_limit": T}
    out = os.path.join(tmp, "lm")
    lm_args = ["train-lm", tr, "--out", out, "--time-limit", str(T), "--quiet"]
    torch_res = None
    if opts.lm_side_by_side:      # both models train at once: the same machine load for each
        with ThreadPoolExecutor(1) as pool:
            rnnkit_job = pool.submit(rnnkit_cli, lm_args, T * 3 + 600)
            torch_res = _torch_lm(train, test, T)
            run = rnnkit_job.result()
    else:
        run = rnnkit_cli(lm_args, T * 3 + 600)
    res["side_by_side"] = bool(opts.lm_side_by_side)
    res["rnnkit_seconds"], res["rnnkit_error"], res["rnnkit"] = run["seconds"], run["error"], None
    if run["ok"]:
        ev = rnnkit_cli(["evaluate", out, te], 1800)
        if ev["ok"]:
            res["rnnkit"] = json.loads(ev["stdout"])["bits_per_char"]
        else:
            res["rnnkit_error"] = ev["error"]
    _say(f"lm rnnkit: {_f(res['rnnkit'])} bits/char ({res['rnnkit_seconds']:.0f}s"
         f"{', ' + res['rnnkit_error'] if res['rnnkit_error'] else ''})")
    t = torch_res if opts.lm_side_by_side else _torch_lm(train, test, T)
    res["torch_lstm"], res["torch_lstm_info"] = (t["test_bits"], t) if t else (None, None)
    _say(f"lm torch LSTM: {_f(res['torch_lstm'])} bits/char")
    ng = qb.ngram_bits(train, test, max_order=8 if opts.quick else 10)
    res["ngram"], res["ngram_order"] = ng["test_bits"], ng["order"]
    _say(f"lm Kneser-Ney {ng['order']}-gram: {ng['test_bits']:.3f} bits/char")
    return res


def _torch_lm(train, test, seconds):
    """The hand-tuned torch LSTM's result, or None without torch."""
    try:
        return qb.torch_lstm_bits(train, test, seconds)
    except ImportError:
        return None


# -- seq2seq ---------------------------------------------------------------------------------------------

def _pairs(path):
    out = []
    for line in open(path, encoding="utf-8"):
        if line.strip():
            s, t = line.rstrip("\n").split("\t", 1)
            out.append((s, t))
    return out


def retrieval_baseline(train, test) -> list:
    """Each test source gets the target of the training source with the highest cosine
    similarity of character-trigram counts (lower-cased, padded with spaces)."""
    from collections import Counter

    def grams(s):
        s = f"  {s.lower()} "
        return Counter(s[i:i + 3] for i in range(len(s) - 2))

    index, norms = {}, []
    for k, (s, _) in enumerate(train):
        g = grams(s)
        norms.append(math.sqrt(sum(v * v for v in g.values())))
        for key, v in g.items():
            index.setdefault(key, []).append((k, v))
    out = []
    for s, _ in test:
        g = grams(s)
        score = np.zeros(len(train))
        for key, v in g.items():
            for k, w in index.get(key, ()):
                score[k] += v * w
        out.append(train[int(np.argmax(score / np.asarray(norms)))][1])
    return out


def bench_seq2seq(opts, tmp) -> dict:
    from rnnkit.tasks.seq2seq import char_accuracy, exact_match

    tr = os.path.join(opts.data, "translation", "pairs_train.tsv")
    te = os.path.join(opts.data, "translation", "pairs_test.tsv")
    test = _pairs(te)
    out = os.path.join(tmp, "s2s")
    run = rnnkit_cli(["seq2seq", "--train", tr, "--test", te, "--out", out, "--quiet",
                      *_limit(opts, opts.job_time)], opts.timeout)
    res = {"rnnkit_seconds": run["seconds"], "rnnkit_error": run["error"], "rnnkit": None}
    if run["ok"]:
        m = json.load(open(os.path.join(out, "metrics.json")))["test"]
        res["rnnkit"], res["rnnkit_exact"] = m["char_accuracy"], m["exact_match"]
    pred = retrieval_baseline(_pairs(tr), test)
    targets = [t for _, t in test]
    res["retrieval"], res["retrieval_exact"] = char_accuracy(pred, targets), exact_match(pred, targets)
    _say(f"seq2seq: rnnkit char accuracy {_f(res['rnnkit'])} ({run['seconds']:.0f}s"
         f"{', ' + run['error'] if run['error'] else ''}), retrieval {res['retrieval']:.3f}")
    return res


# -- output ----------------------------------------------------------------------------------------------

def _f(v, spec=".3f") -> str:
    return "fail" if v is None else format(v, spec)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def table(results: dict) -> str:
    lines = []
    if "classify" in results:
        lines += ["| classify (test accuracy) | rnnkit (mean; per seed) | 1-NN ED | 1-NN DTW | rnnkit s (mean) |",
                  "|---|---|---|---|---|"]
        for r in results["classify"]:
            runs = ", ".join(f"{a:.3f}" for a in r.get("rnnkit_runs", []))
            lines.append(f"| {r['dataset']} ({r['train']}/{r['test']}, K={r['classes']}, T={r['length'][0]}–"
                         f"{r['length'][1]}) | {_f(r['rnnkit'])} ({runs}) | {r['1nn_ed']:.3f} | {r['1nn_dtw']:.3f} | "
                         f"{r['rnnkit_seconds']:.0f} |")
        lines.append("")
    if "forecast" in results:
        lines += ["| forecast (MASE, mean over origins) | rnnkit | naive | seas. naive | ETS | ARIMA | Theta | "
                  "rnnkit 80% band coverage | rnnkit s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in results["forecast"]:
            lines.append(f"| {r['series']} (N={r['rows']}, h={r['horizon']}, m={r['period']}, "
                         f"{len(r['origins'])} origin{'s' if len(r['origins']) > 1 else ''}) | {_f(r['rnnkit'])} | "
                         f"{r['naive']:.3f} | {r['seasonal_naive']:.3f} | {r['ets']:.3f} | {r['arima']:.3f} | "
                         f"{r['theta']:.3f} | {_f(r.get('coverage80'))} | {r['rnnkit_seconds']:.0f} |")
        lines.append("")
    if "lm" in results:
        r = results["lm"]
        lines += [f"| language model (test bits/char, {r['time_limit']:.0f} s) | rnnkit | torch 2-layer LSTM | "
                  f"Kneser–Ney n-gram |", "|---|---|---|---|",
                  f"| moby_dick 90/10 | {_f(r['rnnkit'])} | {_f(r['torch_lstm'])} | {r['ngram']:.3f} "
                  f"(order {r['ngram_order']}) |", ""]
    if "seq2seq" in results:
        r = results["seq2seq"]
        lines += ["| seq2seq (test char accuracy / exact match) | rnnkit | trigram retrieval |", "|---|---|---|",
                  f"| translation en→fr | {_f(r['rnnkit'])} / {_f(r.get('rnnkit_exact'))} | "
                  f"{r['retrieval']:.3f} / {r['retrieval_exact']:.3f} |", ""]
    failures = [f"{k}: {r.get('dataset') or r.get('series') or k}: {r['rnnkit_error']}"
                for k, v in results.items() if k in ("classify", "forecast", "lm", "seq2seq")
                for r in (v if isinstance(v, list) else [v]) if r.get("rnnkit_error")]
    if failures:
        lines += ["rnnkit failures:"] + [f"- {x}" for x in failures]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer data sets and origins, short time limits")
    ap.add_argument("--data", default=None, help="the data folder (default: ../shared/data, /work/shared/data)")
    ap.add_argument("--only", default="classify,forecast,lm,seq2seq", help="comma-separated jobs to run")
    ap.add_argument("--lm-time", type=float, default=None, help="seconds for each language model "
                                                               "(default 60, 600 for the full run)")
    ap.add_argument("--lm-side-by-side", action="store_true",
                    help="train rnnkit's and torch's language models at the same time (one core each), "
                         "so a busy machine slows both alike; default: one after the other")
    ap.add_argument("--job-time", type=int, default=None,
                    help="--time-limit given to classify/forecast/seq2seq (default: none, or 60 with --quick)")
    ap.add_argument("--classify-sets", default=None, metavar="NAMES",
                    help=f"classify: only these data sets (comma-separated, of {', '.join(n for n, _ in CLASSIFY)})")
    ap.add_argument("--classify-dir", default=None, metavar="DIR",
                    help="classify: the data sets of this folder (NAME_TRAIN.ts|tsv beside NAME_TEST.ts|tsv) "
                         "instead of the data folder's")
    ap.add_argument("--classify-seeds", type=int, default=1, metavar="N",
                    help="classify: run the defaults with seeds 0 … N−1 and report the mean accuracy")
    ap.add_argument("--series", default=None, metavar="NAMES",
                    help=f"forecast: only these series (comma-separated file stems, of "
                         f"{', '.join(f[:-4] for f, *_ in FORECAST)})")
    ap.add_argument("--forecast-csv", action="append", type=_forecast_csv, metavar="PATH:H:M[:COLUMN]",
                    help="forecast: this CSV instead of the data folder's series (date column first; "
                         "horizon H, seasonal period M for MASE and the baselines, 1 for none; the second "
                         "column unless COLUMN); repeatable")
    ap.add_argument("--json", default="quality.json", help="where to write the results")
    opts = ap.parse_args(argv)
    opts.data = opts.data or default_data()
    if opts.data is None or not os.path.isdir(opts.data):
        ap.error("--data: no data folder found; give --data DIR")
    opts.lm_time = opts.lm_time or (60.0 if opts.quick else 600.0)
    if opts.job_time is None and opts.quick:
        opts.job_time = 60
    opts.timeout = 3600
    jobs = {"classify": bench_classify, "forecast": bench_forecast, "lm": bench_lm, "seq2seq": bench_seq2seq}
    wanted = [j.strip() for j in opts.only.split(",") if j.strip()]
    bad = [j for j in wanted if j not in jobs]
    if bad:
        ap.error(f"--only: unknown job(s) {bad}; choose from {', '.join(jobs)}")
    t0 = time.perf_counter()
    results = {"quick": opts.quick, "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="rnnkit_quality_") as tmp:
        for j in wanted:
            results[j] = jobs[j](opts, tmp)
    results["seconds"] = time.perf_counter() - t0
    with open(opts.json, "w") as f:
        json.dump(results, f, indent=1, default=float)
    print(table(results))
    print(f"\n{results['seconds']:.0f} s in all; load average at start {results['load_average']:.1f}; "
          f"results in {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
