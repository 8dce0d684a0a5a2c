"""The applications from the command line on generated example files (seconds each)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data.examples import write_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*argv):
    return main([str(a) for a in argv])


def test_classify_intent_text(tmp_path, capsys):
    d = write_example("intent", tmp_path / "data")
    # accuracy is the task's test (test_task_classify_files); here: the command and its files
    code = run_cli("classify", f"{d}/train.tsv", "--test", f"{d}/test.tsv", "--out", tmp_path / "run",
                   "--hidden", "8", "--epochs", "2", "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sorted(metrics["classes"]) == ["booking", "music", "weather"] and metrics["test"]["support"]
    predictions = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv", encoding="utf-8")))
    assert len(predictions) == 60
    test_lines = [line.split("\t") for line in open(f"{d}/test.tsv", encoding="utf-8").read().splitlines()]
    assert [(r["label"], r["text"]) for r in predictions] == [tuple(f) for f in test_lines]   # each row's text
    # the n-gram model joins the networks by default; each half's test accuracy is kept
    parts = metrics["test"]["parts"]
    assert set(parts) == {"networks", "ngrams", "ngram_weight"} and all(0 <= v <= 1 for v in parts.values())
    assert (tmp_path / "run" / "ngrams" / "config.json").is_file()
    # a test label that training never saw is said, and its row counts as wrong
    with open(tmp_path / "more.tsv", "w", encoding="utf-8") as f:
        f.write(open(f"{d}/test.tsv", encoding="utf-8").read() + "alarm\twake me up at seven\n")
    capsys.readouterr()
    code = run_cli("classify", f"{d}/train.tsv", "--test", tmp_path / "more.tsv", "--out", tmp_path / "off",
                   "--hidden", "8", "--epochs", "2", "--ngrams", "off")
    assert code == 0 and not (tmp_path / "off" / "ngrams").exists()
    assert "label never seen in training: 'alarm' (1 row); those rows count as wrong" in capsys.readouterr().out
    test = json.loads((tmp_path / "off" / "metrics.json").read_text())["test"]
    assert "parts" not in test and test["classes"][-1] == "alarm" and test["support"][-1] == 1
    assert test["recall"][-1] == 0.0 and sum(map(sum, test["confusion"])) == 61


def test_classify_speech_folders(tmp_path):
    d = write_example("speech", tmp_path / "data")
    code = run_cli("classify", f"{d}/train", "--test", f"{d}/test", "--out", tmp_path / "run", "--hidden", "8",
                   "--epochs", "2", "--augment", "0", "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["test"]["support"]) == 12
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["meta"]["state"]["audio"] == {"features": "mfcc"}


def test_classify_bad_wav_is_one_line_naming_the_file(tmp_path, capsys):
    d = write_example("speech", tmp_path / "data")
    (tmp_path / "data" / "train" / "ah" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    code = run_cli("classify", f"{d}/train", "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0
    assert "broken.wav" in err and err.startswith("error:")


def test_classify_text_errors(tmp_path, capsys):
    p = tmp_path / "train.tsv"
    p.write_text("greet\thello there\n\thi\n", encoding="utf-8")
    code = run_cli("classify", p, "--input", "text", "--out", tmp_path / "run", "--quiet")
    err = capsys.readouterr().err
    assert code == 1 and "train.tsv, line 2: the label (before the tab) is empty" in err


def test_seq2seq_translation_pairs(tmp_path, capsys):
    pytest.importorskip("sacrebleu")
    d = write_example("translation", tmp_path / "data")
    code = run_cli("seq2seq", "--train", f"{d}/pairs_train.tsv", "--test", f"{d}/pairs_test.tsv", "--out",
                   tmp_path / "run", "--tokens", "word", "--hidden", "32", "--embedding", "16", "--lr", "0.01",
                   "--batch", "32", "--epochs", "10", "--beam", "2", "--quiet")
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["bleu"] > metrics["baseline"]["translation_memory"]["bleu"]
    assert {"bleu", "chrf", "exact_match"} <= set(metrics["test"])
    assert (tmp_path / "run" / "attention.png").exists()
    capsys.readouterr()
    assert run_cli("seq2seq", "--model", tmp_path / "run", "I see the red car") == 0
    assert capsys.readouterr().out.startswith("I see the red car\tje vois la voiture rouge")


def test_forecast_with_context_many_series(tmp_path):
    d = write_example("stores", tmp_path / "data")
    code = run_cli("forecast", f"{d}/stores.csv", "--series-column", "store", "--column", "sales",
                   "--covariate", "temp", "--future-covariate", "promo", "--horizon", "6", "--period", "24",
                   "--hidden", "24", "--epochs", "8", "--out", tmp_path / "run", "--quiet")
    assert code == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["series"] == 3 and m["calendar"][:2] == ["hour_sin", "hour_cos"]
    assert m["test"]["model"]["mase"] < m["test"]["seasonal_naive"]["mase"]
    assert "Test backtest" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")


def test_forecast_covariates_of_labels_from_the_command_line(tmp_path, capsys):
    """The help's traffic example on a file laid out like real traffic logs: weather words and
    holiday names ('None' on ordinary hours) are covariates of labels, said before training."""
    rows = ["holiday,temp,weather_main,date_time,traffic_volume"]
    for h in range(200):
        stamp = str(np.datetime64("2016-01-01T00:00") + np.timedelta64(h, "h")).replace("T", " ")
        rows.append(f"{'New Years Day' if h == 0 else 'None'},{270 + h % 5},{['Clouds', 'Rain'][h // 9 % 2]},"
                    f"{stamp},{3000 + 1000 * np.sin(h / 24 * 2 * np.pi):.0f}")
    # the rows ahead: the date and the holiday known, every other cell empty
    ahead = [f"{'Memorial Day' if h == 201 else 'None'},,,"
             f"{str(np.datetime64('2016-01-01T00:00') + np.timedelta64(h, 'h')).replace('T', ' ')},"
             for h in range(200, 206)]
    p = tmp_path / "traffic.csv"
    p.write_text("\n".join(rows + ahead) + "\n")
    code = run_cli("forecast", p, "--column", "traffic_volume", "--covariate", "temp", "--covariate", "weather_main",
                   "--future-covariate", "holiday", "--horizon", "6", "--hidden", "8", "--epochs", "2",
                   "--out", tmp_path / "run")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "weather_main: 2 labels (Clouds, Rain), read as one 0/1 input each" in out
    assert "holiday: 2 labels (Memorial Day, New Years Day)" in out
    assert "the last 6 rows give only holiday: the rows ahead, forecast in predictions.csv" in out
    predictions = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 6 and predictions[1].startswith(",1,traffic_volume,")
    assert predictions[0].endswith(",date") and predictions[1].endswith(",2016-01-09 08:00:00")     # row 200
    assert run_cli("evaluate", tmp_path / "run", p) == 0
    assert run_cli("predict", tmp_path / "run", p, "--out", tmp_path / "again.csv") == 0
    assert (tmp_path / "again.csv").read_text().splitlines() == predictions


def test_forecast_calendar_on_request_and_flag_errors(tmp_path, capsys):
    p = tmp_path / "daily.csv"
    rows = ["date,y"] + [f"2020-{1 + i // 28:02d}-{1 + i % 28:02d},{(i % 7) + 0.1 * i}" for i in range(28 * 8)]
    p.write_text("\n".join(rows) + "\n")
    assert run_cli("forecast", p, "--horizon", "7", "--epochs", "3", "--calendar", "on", "--out", tmp_path / "run",
                   "--quiet") == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["calendar"] == ["weekday_sin", "weekday_cos", "month_sin", "month_cos"]
    # auto: a single series without covariates goes to strategy auto (no calendar features)
    assert run_cli("forecast", p, "--horizon", "7", "--epochs", "2", "--out", tmp_path / "auto", "--quiet") == 0
    assert "calendar" not in json.loads((tmp_path / "auto" / "metrics.json").read_text())
    code = run_cli("forecast", p, "--horizon", "7", "--covariate", "y", "--quantiles", "0.1,0.9",
                   "--out", tmp_path / "run2", "--quiet")
    assert code == 1 and "--covariate" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["classify", "seq2seq", "forecast"])
def test_help_examples(command):
    out = subprocess.run([sys.executable, "-m", "rnnkit", command, "--help"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), check=True).stdout
    assert "example" in out
    flags = {"classify": ["--tokens", "--features", "--input"], "seq2seq": ["--attention", "--tokens", "--beam"],
             "forecast": ["--covariate", "--future-covariate", "--series-column", "--calendar"]}[command]
    assert all(f in out for f in flags)


def test_example_command_writes_every_example(tmp_path, capsys):
    expected = {"intent": "train.tsv", "dna": "test.tsv", "speech": "train/ah/s0.wav", "activity": "train.csv",
                "translation": "pairs_test.tsv", "stores": "stores.csv"}
    for name, path in expected.items():
        assert run_cli("example", name, tmp_path / name) == 0
        assert (tmp_path / name / path).is_file()
    (tmp_path / "file").write_text("x")
    assert run_cli("example", "dna", tmp_path / "file") == 1
    assert "is a file" in capsys.readouterr().err
