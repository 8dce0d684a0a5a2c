"""The rnnkit command: exit codes, files written, output, and one-line errors for bad input."""

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import assert_plots
from rnnkit import __version__
from rnnkit.cli import build_parser, main
from rnnkit.errors import RnnkitError

TINY_LM = ["--cell", "gru", "--hidden", "12", "--layers", "1", "--embedding", "6", "--seq-len", "24",
           "--batch", "4", "--epochs", "2", "--lr", "0.01"]
TEXT = ("the cat sat on the mat. the dog sat on the log. " * 40
        + "a cat and a dog met on a mat by the log.\n" * 10)


def one_error_line(err: str) -> str:
    """The stderr of a failed command: exactly one line 'error: …', no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def parse_html(path):
    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.imgs, self.chunks = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])

        def handle_data(self, data):
            self.chunks.append(data)

    p = P()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    p.text = "".join(p.chunks)
    return p


def read_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def snapshot(directory):
    """Every file under ``directory`` with its bytes: to prove nothing was touched."""
    return {os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(directory) for name in names}


# -- the parser itself ------------------------------------------------------------------

def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rnnkit {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "train-lm", "generate", "evaluate", "activations", "forecast", "classify", "seq2seq",
                "gradients", "memory", "bench"):
        assert cmd in out
    assert main([]) == 0                          # no command: the help
    assert "usage: rnnkit" in capsys.readouterr().out


def test_python_dash_m_version():
    res = subprocess.run([sys.executable, "-m", "rnnkit", "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"rnnkit {__version__}"


def test_every_option_has_help_and_every_command_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = dict(sub.choices)
    assert len(commands) >= 11
    for name, p in commands.items():
        if name == "bench":                        # rnnkit.bench's own parser answers `rnnkit bench --help`
            continue
        assert p.epilog and p.epilog.startswith("example:\n  rnnkit " + name), name
        assert p.description, name
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and len(action.help) > 8, f"{name} {action.option_strings or action.dest}"
        # the help renders (every %(default)s resolves)
        assert "usage: rnnkit " + name in p.format_help()


def test_usage_errors_exit_2(capsys):
    assert main(["forecast", "x.csv", "--horizon", "0", "--out", "d"]) == 2
    assert "--horizon" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2
    assert main(["gradients", "--cell", "lstm,tree", "--out", "d"]) == 2
    assert "tree" in capsys.readouterr().err


# -- language model -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "cats.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lm_dir(text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "run"
    assert main(["train-lm", str(text_file), "--out", str(out), *TINY_LM, "--quiet"]) == 0
    return out


def test_train_lm_prints_samples_and_writes_the_run(text_file, tmp_path, capsys):
    out = tmp_path / "lm"
    code = main(["train-lm", str(text_file), "--out", str(out), *TINY_LM, "--prompt", "the ",
                 "--sample-length", "30"])
    assert code == 0
    captured = capsys.readouterr()
    # one sample per epoch, each starting with the prompt, on stdout
    assert len(re.findall(r"^epoch \d+, step \d+", captured.out, flags=re.M)) == 2
    assert re.search(r"^    the ", captured.out, flags=re.M)
    assert f"report: {out / 'report.html'}" in captured.out
    for name in ("config.json", "model.npz", "report.html", "train/config.json", "train/metrics.jsonl",
                 "train/best/model.npz"):
        assert (out / name).is_file(), name
    assert_plots(out)
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert "Samples during training" in html_text and "bits/char" in html_text


def test_a_run_stopped_before_validation_shows_its_last_weights(text_file, tmp_path, capsys):
    out = tmp_path / "lm"
    assert main(["train-lm", str(text_file), "--out", str(out), *TINY_LM, "--max-steps", "5",
                 "--sample-length", "10"]) == 0
    stdout = capsys.readouterr().out
    assert "end of training (weights of step 5)" in stdout
    assert not re.search(r"^epoch \d+, step", stdout, flags=re.M)       # no epoch finished
    assert "end of training (weights of step 5)" in (out / "report.html").read_text(encoding="utf-8")
    assert "stopped (max_steps) after 5 steps" in stdout


def test_generate_is_seeded_and_starts_with_the_prompt(lm_dir, capsys):
    assert main(["generate", str(lm_dir), "--prompt", "the c", "--length", "40", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("the c") and len(first) == len("the c") + 40 + 1
    assert main(["generate", str(lm_dir), "--prompt", "the c", "--length", "40", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    # greedy: temperature 0, top-k 1 and a beam of 1 agree, whatever the seed
    outs = []
    for extra in (["--temperature", "0", "--seed", "1"], ["--top-k", "1", "--seed", "2"], ["--beam", "1"]):
        assert main(["generate", str(lm_dir), "--prompt", "the ", "--length", "25", *extra]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] == outs[2]
    assert set(outs[0][:-1]) <= set(TEXT)


def test_evaluate_prints_nats_and_bits(lm_dir, text_file, capsys):
    assert main(["evaluate", str(lm_dir), str(text_file)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["chars"] == len(TEXT) - 1
    assert math.isclose(res["bits_per_char"], res["nats_per_char"] / math.log(2), rel_tol=1e-12)
    # trained: better than a uniform guess over the vocabulary
    assert res["bits_per_char"] < math.log2(len(set(TEXT)))


def test_lm_bad_input_is_one_line(lm_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text("XYZ!", encoding="utf-8")
    cases = [
        (["train-lm", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a")], "missing.txt"),
        (["train-lm", str(empty), "--out", str(tmp_path / "b")], "empty"),
        (["evaluate", str(lm_dir), str(other)], "has 0 character(s) the model can read"),
        (["generate", str(tmp_path / "nothing-here")], "not found"),
    ]
    for argv, needle in cases:
        assert main(argv) == 1, argv
        assert needle in one_error_line(capsys.readouterr().err), argv
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert main(["generate", str(lm_dir), "--top-p", "1.5"]) == 2      # checked by the parser
    assert "--top-p" in capsys.readouterr().err
    # characters training never saw are left out of a prompt, with a note, and generation goes on
    assert main(["generate", str(lm_dir), "--prompt", "QQ", "--length", "5"]) == 0
    assert "prompt: 2 characters never seen in training left out of what the model reads: 'Q' (2×)" in \
        capsys.readouterr().out


def test_out_that_is_a_file_or_holds_a_model_is_refused(lm_dir, text_file, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me", encoding="utf-8")
    assert main(["train-lm", str(text_file), "--out", str(a_file), *TINY_LM]) == 1
    assert "existing file" in one_error_line(capsys.readouterr().err)
    assert a_file.read_text(encoding="utf-8") == "keep me"
    before = snapshot(lm_dir)
    assert main(["train-lm", str(text_file), "--out", str(lm_dir), *TINY_LM, "--quiet"]) == 1
    assert "--force" in one_error_line(capsys.readouterr().err)
    assert main(["forecast", str(text_file), "--horizon", "2", "--out", str(lm_dir), "--quiet"]) == 1
    assert "already holds a trained model (task 'lm')" in one_error_line(capsys.readouterr().err)
    assert snapshot(lm_dir) == before


def test_force_removes_the_last_runs_results_and_nothing_else(tmp_path):
    """A forced run replaces a run: the old results (metrics, report, predictions) go at
    once, so a new run stopped before its own are written never shows the old ones."""
    from rnnkit.cli.common import guard_model_dir
    from rnnkit.tasks.run import RESULT_FILES

    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.npz", "notes.txt") + RESULT_FILES:
        (run / name).write_text("old", encoding="utf-8")
    with pytest.raises(RnnkitError, match="already holds"):
        guard_model_dir(run, force=False)
    assert all((run / name).exists() for name in RESULT_FILES)
    guard_model_dir(run, force=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "model.npz", "notes.txt"]


def test_resume_continues_and_checks_options(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train-lm", str(text_file), "--out", str(out), "--cell", "rnn", "--hidden", "8", "--embedding", "4",
            "--seq-len", "16", "--batch", "4", "--quiet"]
    assert main(base + ["--epochs", "1"]) == 0
    step1 = json.loads((out / "train" / "trainer.json").read_text())["step"]
    resume = ["train-lm", str(text_file), "--out", str(out), "--resume", "--quiet"]
    assert main(resume + ["--epochs", "2", "--hidden", "9"]) == 1
    assert "--hidden" in one_error_line(capsys.readouterr().err)
    assert main(resume + ["--epochs", "2"]) == 0
    step2 = json.loads((out / "train" / "trainer.json").read_text())["step"]
    assert step2 == 2 * step1
    assert main(["train-lm", str(text_file), "--out", str(tmp_path / "fresh"), "--resume"]) == 1
    assert "no training checkpoint" in one_error_line(capsys.readouterr().err)


def test_ctrl_c_saves_the_checkpoint_and_exits_130(text_file, tmp_path, monkeypatch, capsys):
    from rnnkit.models import SequenceTagger

    calls = {"n": 0}
    real_backward = SequenceTagger.backward

    def interrupted_backward(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_backward(self)

    monkeypatch.setattr(SequenceTagger, "backward", interrupted_backward)
    out = tmp_path / "run"
    assert main(["train-lm", str(text_file), "--out", str(out), *TINY_LM, "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 2" in err and "--resume" in err
    state = json.loads((out / "train" / "trainer.json").read_text())
    assert state["step"] == 2
    monkeypatch.setattr(SequenceTagger, "backward", real_backward)
    assert main(["train-lm", str(text_file), "--out", str(out), "--resume", "--epochs", "1", "--quiet"]) == 0


def test_activations_page(lm_dir, text_file, tmp_path, capsys):
    out = tmp_path / "units.html"
    assert main(["activations", str(lm_dir), str(text_file), "--out", str(out), "--max-chars", "200",
                 "--top", "3"]) == 0
    stdout = capsys.readouterr().out
    assert len(re.findall(r"^layer 0 [hc]\[\d+\]", stdout, flags=re.M)) == 3
    page = parse_html(out)
    assert "the cat sat" in page.text            # the passage, one coloured span per character
    assert all(s.startswith("data:image/png;base64,") for s in page.imgs)
    assert main(["activations", str(lm_dir), str(text_file), "--out", str(tmp_path)]) == 1
    assert "is a directory" in one_error_line(capsys.readouterr().err)


def test_blas_threads_are_set_and_restored():
    from threadpoolctl import threadpool_info

    from rnnkit.blas import blas_threads

    def blas_pools():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_pools()
    if not before:
        pytest.skip("no BLAS library found in this process")
    with blas_threads(1) as b:
        assert b.applied and blas_pools() == [1] * len(before)
    assert blas_pools() == before
    with blas_threads(None) as b:
        assert not b.applied and blas_pools() == before


def test_an_exception_that_is_not_rnnkit_error_is_shown_as_a_bug(lm_dir, monkeypatch, capsys):
    from rnnkit.tasks.lm import CharLanguageModel

    def broken(self, *args, **kwargs):
        return 1 // 0

    monkeypatch.setattr(CharLanguageModel, "iter_sample", broken)
    assert main(["generate", str(lm_dir), "--length", "5"]) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    assert "this is a bug in rnnkit" in err and not err.startswith("error:")


def test_debug_env_shows_the_exception(lm_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_DEBUG", "1")
    (tmp_path / "other.txt").write_text("XYZ!", encoding="utf-8")
    with pytest.raises(RnnkitError):
        main(["evaluate", str(lm_dir), str(tmp_path / "other.txt")])


# -- forecasting ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    t = np.arange(240)
    y = 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).standard_normal(240)
    good = d / "sales.csv"
    with good.open("w", encoding="utf-8") as f:
        f.write("date,units,store\n")
        for i, v in enumerate(y):
            f.write(f"day{i},{v:.5f},s{i % 3}\n")
    gaps = d / "gaps.csv"
    lines = good.read_text().splitlines()
    lines[8] = "day7,,s1"
    gaps.write_text("\n".join(lines) + "\n")
    return good, gaps, y


def test_forecast_writes_predictions_metrics_plot_and_report(series_csv, tmp_path, capsys):
    good, _, y = series_csv
    out = tmp_path / "fc"
    H = 6
    code = main(["forecast", str(good), "--column", "units", "--horizon", str(H), "--out", str(out), "--cell", "gru",
                 "--hidden", "8", "--epochs", "3", "--quantiles", "0.1,0.5,0.9", "--test-fraction", "0.15",
                 "--quiet"])
    assert code == 0
    assert capsys.readouterr().out == ""          # --quiet
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["horizon"] == H and metrics["period"] == 12      # inferred from the training part
    assert set(metrics["metrics"]) == {"model", "naive", "seasonal_naive"}
    assert set(metrics["metrics"]["model"]) == {"mae", "rmse", "mape", "smape", "mase"}
    rows = read_csv_rows(out / "backtest.csv")
    assert len(rows) == metrics["test_origins"] * H
    for r in rows[:3 * H]:
        o, row = int(r["origin_row"]), int(r["row"])
        assert r["date"] == f"day{row}" and r["target"] == "units"
        assert float(r["actual"]) == pytest.approx(y[row], abs=1e-5)
        assert float(r["naive"]) == pytest.approx(y[o - 1], abs=1e-5)          # the last observed value
        assert float(r["seasonal_naive"]) == pytest.approx(y[row - 12], abs=1e-5)
        assert float(r["lower"]) <= float(r["upper"])
    pred = read_csv_rows(out / "predictions.csv")
    assert [int(r["step"]) for r in pred] == list(range(1, H + 1))
    assert [int(r["row"]) for r in pred] == list(range(240, 240 + H))
    assert all(float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"]) for r in pred)
    assert_plots(out, "forecast.png")


def test_forecast_bad_input_fails_before_writing(series_csv, tmp_path, capsys):
    good, gaps, _ = series_csv
    out = tmp_path / "never"
    cases = [
        (["forecast", str(tmp_path / "nope.csv"), "--horizon", "3"], "not found"),
        (["forecast", str(good), "--column", "store", "--horizon", "3"], "non-numeric"),
        (["forecast", str(good), "--column", "price", "--horizon", "3"], "price"),
        (["forecast", str(gaps), "--column", "units", "--horizon", "3", "--fill", "error"], "--fill"),
        (["forecast", str(good), "--column", "units", "--horizon", "500"], "--horizon 500"),
        (["forecast", str(good), "--column", "units", "--horizon", "4", "--lookback", "300"], "--lookback 300"),
    ]
    for argv, needle in cases:
        assert main(argv + ["--out", str(out), "--quiet"]) == 1, argv
        assert needle in one_error_line(capsys.readouterr().err), argv
    assert not out.exists()


def test_forecast_passes_over_text_columns_and_fills_empty_cells(series_csv, tmp_path, capsys):
    _, gaps, _ = series_csv
    out = tmp_path / "fc"
    assert main(["forecast", str(gaps), "--horizon", "3", "--out", str(out), "--hidden", "4", "--epochs", "1"]) == 0
    said = capsys.readouterr().out
    assert f"{gaps}: column 'store' ('s0') holds text, not numbers: not read" in said
    assert f"{gaps}: 1 empty cell (the first on line 9, column 'units') filled by linear interpolation (--fill " \
           f"error, ffill or drop to choose)" in said
    assert json.loads((out / "metrics.json").read_text())["targets"] == ["units"]


def test_forecast_of_a_long_file_without_series_column_points_to_it(tmp_path, capsys):
    days = [str(np.datetime64("2020-01-01") + d) for d in range(30)]
    by_date = tmp_path / "by_date.csv"            # a row per store and date, sorted by date
    by_date.write_text("date,store,sales\n" + "".join(f"{d},{s},{i % 7 + s}\n" for i, d in enumerate(days)
                                                      for s in (1, 2)))
    by_store = tmp_path / "by_store.csv"          # sorted by store, then date
    by_store.write_text("date,store,sales\n" + "".join(f"{d},{s},{i % 7}\n" for s in "AB" for i, d in enumerate(days)))
    for path in (by_date, by_store):
        assert main(["forecast", str(path), "--horizon", "3", "--out", str(tmp_path / "x")]) == 1
        assert "--series-column NAME names the column that tells them apart" in one_error_line(capsys.readouterr().err)
    assert main(["forecast", str(by_store), "--horizon", "3", "--out", str(tmp_path / "ok"), "--series-column",
                 "store", "--column", "sales", "--hidden", "4", "--epochs", "1", "--quiet"]) == 0


def test_forecast_of_a_price_download_takes_its_close(tmp_path, capsys):
    from rnnkit.data.sniff import price_column

    rows, day, p = [], 0, 50.0
    rng = np.random.default_rng(0)
    while len(rows) < 80:
        day += 1
        if day % 7 in (5, 6):                         # weekends
            continue
        p *= float(np.exp(rng.normal(0, 0.01)))
        date = (np.datetime64("2024-01-01") + day).astype(str)
        rows.append(f"{date},{p * 0.99:.2f},{p * 1.01:.2f},{p * 0.98:.2f},{p:.2f},{p * 0.97:.2f},{1000 + day}")
    path = tmp_path / "prices.csv"
    path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(rows) + "\n")
    out = tmp_path / "fc"
    assert main(["forecast", str(path), "--horizon", "3", "--out", str(out), "--hidden", "4", "--epochs", "1"]) == 0
    assert f"{path}: prices (open, high, low, close columns): forecasting 'Adj Close'" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["targets"] == ["Adj Close"]
    assert main(["forecast", str(path), "--column", "Volume", "--horizon", "3", "--out", str(tmp_path / "v"),
                 "--hidden", "4", "--epochs", "1"]) == 0
    assert json.loads((tmp_path / "v" / "metrics.json").read_text())["targets"] == ["Volume"]
    assert "forecasting" not in capsys.readouterr().out
    assert price_column(["Date", "Price", "Open", "High", "Low", "Vol.", "Change %"]) == "Price"
    assert price_column(["date", "open", "high", "low", "close", "volume"]) == "close"
    assert price_column(["date", "high", "low", "temp"]) is None


def test_model_directory_from_another_task(series_csv, lm_dir, tmp_path, capsys):
    good, _, _ = series_csv
    out = tmp_path / "fc"
    assert main(["forecast", str(good), "--column", "units", "--horizon", "3", "--out", str(out), "--hidden", "4",
                 "--epochs", "1", "--test-fraction", "0.1"]) == 0
    # metrics.json and the command say what forecasts (the mean of the classical methods, the network, ...)
    # and why
    kept = json.loads((out / "metrics.json").read_text())
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("forecast with")]
    assert len(said) == 1 and f"validation MASE {kept['validation_mase']:.4f}" in said[0]
    assert said[0].startswith(f"forecast with {kept['method']}".replace("with network", "with the network"))
    scores = {r["forecast"]: r["val_mase"] for r in kept["validation"]}
    assert {"network", "ets", "naive", "ets+theta+arima+seasonal_naive"} <= set(scores)
    assert list(scores.values()) == sorted(scores.values())
    assert kept["validation_mase"] == pytest.approx(scores[kept["method"]])
    for argv in (["generate", str(out)], ["seq2seq", "--model", str(out), "x"],
                 ["activations", str(out), str(good), "--out", str(tmp_path / "u.html")]):
        assert main(argv) == 1
        assert "forecast" in one_error_line(capsys.readouterr().err), argv
    # predict and evaluate read the job from config.json: a forecaster scores a CSV
    assert main(["evaluate", str(out), str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "forecast"
    assert main(["evaluate", str(out), str(tmp_path / "nothing.csv")]) == 1
    assert "nothing.csv" in one_error_line(capsys.readouterr().err)
    assert main(["evaluate", str(tmp_path), str(good)]) == 1
    assert "config.json" in one_error_line(capsys.readouterr().err)


# -- classification and sequence to sequence --------------------------------------------------

def write_tsv(path, n, classes, seed):
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            c = classes[i % len(classes)]
            t = np.arange(16)
            v = (np.sin(t / 2) if c == classes[0] else -np.sin(t / 2)) + 0.1 * rng.standard_normal(16)
            f.write(c + "\t" + "\t".join(f"{x:.4f}" for x in v) + "\n")


def test_classify_writes_metrics_confusion_and_predictions(tmp_path, capsys):
    write_tsv(tmp_path / "train.tsv", 24, ["up", "down"], 0)
    write_tsv(tmp_path / "test.tsv", 10, ["up", "down"], 1)
    out = tmp_path / "clf"
    assert main(["classify", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv"), "--out", str(out),
                 "--hidden", "8", "--epochs", "2", "--pooling", "mean"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["classes"]) == ["down", "up"]
    conf = np.array(metrics["test"]["confusion"])
    assert conf.shape == (2, 2) and conf.sum() == 10
    assert metrics["test"]["accuracy"] == pytest.approx(np.trace(conf) / 10)
    preds = read_csv_rows(out / "predictions.csv")
    assert len(preds) == 10 and {p["label"] for p in preds} == {"up", "down"}
    hits = sum(p["label"] == p["predicted"] for p in preds)
    assert hits == np.trace(conf)
    assert_plots(out, "confusion_matrix_test.png", report=None)
    assert (out / "report.html").is_file()


def test_classify_refuses_workbooks_and_one_class(tmp_path, capsys):
    out = tmp_path / "clf"
    (tmp_path / "series.xlsx").write_text("1 2 3\n")
    assert main(["classify", str(tmp_path / "series.xlsx"), "--out", str(out)]) == 1
    assert "unsupported file type '.xlsx'" in one_error_line(capsys.readouterr().err)
    (tmp_path / "series.txt").write_text("1 2 3\n")          # the archive's .txt: a label, then values
    assert main(["classify", str(tmp_path / "series.txt"), "--out", str(out)]) == 1
    assert "one class only" in one_error_line(capsys.readouterr().err)


def test_seq2seq_trains_on_pairs_and_translates(tmp_path, capsys):
    words = ["abc", "bca", "cab", "aab", "bba", "ccb", "acb", "bac", "cba", "abb", "bcc", "caa"]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words * 3), encoding="utf-8")
    out = tmp_path / "rev"
    assert main(["seq2seq", "--out", str(out), "--train", str(pairs), "--test", str(pairs), "--hidden", "8",
                 "--embedding", "4", "--epochs", "2", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"] == 36 and metrics["test"]["n"] == 36
    assert 0.0 <= metrics["test"]["char_accuracy"] <= 1.0
    capsys.readouterr()
    assert main(["seq2seq", "--model", str(out), "abc", "cab", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["abc", "cab"]
    assert all(set(ln.split("\t")[1]) <= set("abc") for ln in lines)
    # characters training never saw read as the unknown token: translated, not refused
    assert main(["seq2seq", "--model", str(out), "xyz!"]) == 0
    assert capsys.readouterr().out.startswith("xyz!\t")
    bad = tmp_path / "bad.tsv"
    bad.write_text("abc cba\n", encoding="utf-8")
    for argv, needle in ((["seq2seq", "--out", str(tmp_path / "x"), "--train", str(bad)], "no tab"),
                         (["seq2seq", "--model", str(out), "--out", str(tmp_path / "y")], "not both"),
                         (["seq2seq", "--model", str(out)], "inputs")):
        assert main(argv) == 1, argv
        assert needle in one_error_line(capsys.readouterr().err), argv


def test_seq2seq_reads_a_corpus_in_two_parallel_files(tmp_path, capsys):
    from rnnkit.data.text import read_parallel

    words = ["abc", "bca", "cab", "aab", "bba", "ccb"]
    (tmp_path / "train.src").write_text("".join(f"{w}\n" for w in words * 4), encoding="utf-8")
    (tmp_path / "train.tgt").write_text("".join(f"{w[::-1]}\n" for w in words * 4), encoding="utf-8")
    assert read_parallel(tmp_path / "train.src", tmp_path / "train.tgt") == (words * 4, [w[::-1] for w in words * 4])
    out = tmp_path / "rev"
    assert main(["seq2seq", "--out", str(out), "--train", str(tmp_path / "train.src"), str(tmp_path / "train.tgt"),
                 "--test", str(tmp_path / "train.src"), str(tmp_path / "train.tgt"), "--hidden", "8",
                 "--embedding", "4", "--epochs", "1", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"] == 24 and metrics["test"]["n"] == 24
    (tmp_path / "short.tgt").write_text("cba\n\nacb\n", encoding="utf-8")
    (tmp_path / "three.src").write_text("abc\nbca\ncab\n", encoding="utf-8")
    x = str(tmp_path / "x")
    for argv, needle in ((["--train", str(tmp_path / "train.src"), str(tmp_path / "short.tgt")],
                          "train.src has 24 lines and"),
                         (["--train", str(tmp_path / "three.src"), str(tmp_path / "short.tgt")],
                          "short.tgt, line 2: empty, where"),
                         (["--train", str(tmp_path / "train.src")], "--train SOURCE TARGET"),
                         (["--train", "a", "b", "c"], "got 3 files")):
        assert main(["seq2seq", "--out", x, *argv]) == 1, argv
        assert needle in one_error_line(capsys.readouterr().err), argv


def test_seq2seq_builtin_dates(tmp_path, capsys):
    out = tmp_path / "dates"
    assert main(["seq2seq", "--out", str(out), "--dates", "40", "--hidden", "8", "--embedding", "4",
                 "--epochs", "1", "--unidirectional"]) == 0
    stdout = capsys.readouterr().out
    assert "built-in date pairs" in stdout and "validation: exact match" in stdout
    assert json.loads((out / "metrics.json").read_text())["validation"]["n"] == 4


# -- diagnostics and bench ----------------------------------------------------------------------

def test_gradients_command(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["gradients", "--cell", "rnn,gru", "--length", "12", "--hidden", "6", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert re.search(r"^rnn\s", stdout, flags=re.M) and re.search(r"^gru\s", stdout, flags=re.M)
    res = json.loads((out / "gradients.json").read_text())
    assert set(res["cells"]) == {"rnn", "gru"} and res["length"] == 12
    assert len(res["cells"]["rnn"]["grad_norm"]) == 13
    assert_plots(out, "gradients.png")
    assert main(["gradients", "--init", "radius=-1", "--out", str(tmp_path / "h")]) == 2   # a usage error
    err = capsys.readouterr().err
    assert "--init" in err and "radius" in err and not (tmp_path / "h").exists()


def test_memory_command(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["memory", "--task", "copy", "--length", "5", "--cell", "rnn,lstm", "--steps", "4", "--hidden", "6",
                 "--batch", "8", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert re.search(r"^rnn\s", stdout, flags=re.M) and re.search(r"^lstm\s", stdout, flags=re.M)
    res = json.loads((out / "memory.json").read_text())
    assert res["task"] == "copy" and set(res["cells"]) == {"rnn", "lstm"}
    assert (out / "report.html").is_file()
    (tmp_path / "file").write_text("x")
    assert main(["memory", "--out", str(tmp_path / "file")]) == 1
    assert "existing file" in one_error_line(capsys.readouterr().err)


def test_memory_command_resumes_a_stopped_run(tmp_path, capsys):
    out = tmp_path / "m"
    args = ["memory", "--task", "copy", "--length", "5", "--cell", "gru", "--hidden", "6", "--batch", "4",
            "--eval-size", "8", "--quiet", "--out", str(out)]
    assert main(args + ["--steps", "100"]) == 0
    whole = json.loads((out / "memory.json").read_text())["cells"]["gru"]["curve"]
    assert main(args + ["--steps", "100", "--time-limit", "1e-6"]) == 0   # afresh, stopped at the first evaluation
    assert json.loads((out / "memory.json").read_text())["cells"]["gru"]["steps_run"] == 2
    assert (out / "checkpoints" / "gru" / "config.json").is_file()
    assert main(args + ["--steps", "100", "--resume"]) == 0
    resumed = json.loads((out / "memory.json").read_text())["cells"]["gru"]["curve"]
    assert resumed["step"] == whole["step"] and resumed["eval_loss"] == whole["eval_loss"]
    assert main(args[:-2] + ["--hidden", "7", "--out", str(out), "--steps", "100", "--resume"]) == 1
    assert "cannot resume" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("length", [200, 2000])
def test_memory_command_new_cells_copy_at_long_lengths(tmp_path, capsys, length):
    out = tmp_path / "m"
    assert main(["memory", "--task", "copy", "--length", str(length), "--cell", "lstm-chrono,indrnn,mingru,minlstm",
                 "--steps", "50", "--hidden", "3", "--batch", "2", "--eval-size", "2", "--time-limit", "0.01",
                 "--stop-when-solved",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "memory.json").read_text())
    assert res["length"] == length and res["time_limit"] == 0.01 and set(res["cells"]) == {
        "lstm-chrono", "indrnn", "mingru", "minlstm"}
    for name, run in res["cells"].items():
        assert run["steps_run"] < 50                      # the time limit ended it
        assert run["layers"] == (2 if name == "indrnn" else 1)
    assert main(["memory", "--task", "adding", "--length", "20", "--cell", "indrnn", "--layers", "1", "--steps", "1",
                 "--hidden", "3", "--eval-size", "2", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert json.loads((tmp_path / "a" / "memory.json").read_text())["cells"]["indrnn"]["layers"] == 1


def test_memory_command_takes_each_cells_setup_unless_flags_say(tmp_path):
    common = ["memory", "--task", "adding", "--length", "12", "--cell", "indrnn,gru", "--steps", "1",
              "--eval-size", "2", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    cells = json.loads((tmp_path / "a" / "memory.json").read_text())["cells"]
    assert [cells["indrnn"][k] for k in ("hidden", "layers", "batch_size", "optimizer", "lr")] == \
        [128, 2, 50, "adam", 2e-4]
    assert [cells["gru"][k] for k in ("hidden", "layers", "batch_size", "optimizer")] == [64, 1, 32, "adam"]
    assert main(common + ["--hidden", "5", "--batch", "3", "--optimizer", "sgd", "--out", str(tmp_path / "b")]) == 0
    cells = json.loads((tmp_path / "b" / "memory.json").read_text())["cells"]
    for run in cells.values():
        assert (run["hidden"], run["batch_size"], run["optimizer"], run["lr"]) == (5, 3, "sgd", None)
    assert cells["indrnn"]["layers"] == 2


def test_bench_delegates(capsys):
    assert main(["bench", "--help"]) == 0
    assert "usage: rnnkit bench" in capsys.readouterr().out
    assert main(["bench", "--cells", "tree"]) == 1
    assert "--cells" in one_error_line(capsys.readouterr().err)


def test_threads_default_is_auto_and_takes_a_number():
    from rnnkit.cli.parser import build_parser

    parser = build_parser()
    for command in (["train-lm", "t.txt", "--out", "o"], ["generate", "d"], ["predict", "d", "i"]):
        assert parser.parse_args(command).threads == "auto"
        assert parser.parse_args(command + ["--threads", "3"]).threads == 3
        assert parser.parse_args(command + ["--threads", "AUTO"]).threads == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "d", "--threads", "0"])
