"""--time-limit covers the whole command: reading the data, training, evaluation and the report.

Every training command runs in this process with a limit of a few seconds on small data;
the wall time from ``main`` to its return stays within the limit plus a small slack (the
model's files and the HTML), and the run directory is complete. The Deadline's pieces
(training time, chunked evaluation, partial-score notes) are checked on their own.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.deadline import Deadline, after_training, as_deadline, chunks_in_time, partial_note

LIMIT = 2.5
SLACK = 2.0          # writing the model, metrics.json and report.html once the deadline is near


def test_deadline_counts_from_its_start_and_keeps_training_a_share():
    d = Deadline(10.0, start=time.perf_counter() - 4.0)
    assert 5.9 < d.left() <= 6.0 and not d.expired() and d.expired(margin=7.0)
    assert 3.9 < d.for_training(2.0) <= 4.0            # what is left less the reserve
    assert d.for_training(100.0) == pytest.approx(0.6 * d.left(), rel=1e-3)   # but a share at least
    assert Deadline(None).left() is None and Deadline(None).for_training(5.0) is None
    assert not Deadline(None).expired(1e9)
    past = Deadline(1.0, start=time.perf_counter() - 5.0)
    assert past.expired() and past.for_training(0.0) == 0.0
    assert as_deadline(None, "f").limited is False and as_deadline(past, "f") is past
    assert as_deadline(3, "f").seconds == 3.0
    with pytest.raises(ValueError, match="time_limit"):
        as_deadline(0, "fit")
    assert after_training(0.1, 10, 100, figures=2) > after_training(None, 10, 100, figures=2)


def test_chunks_in_time_cover_everything_or_stop_after_one_chunk():
    every = np.concatenate(list(chunks_in_time(1000, Deadline(None), seed=3)))
    assert sorted(every.tolist()) == list(range(1000)) and every.tolist() != list(range(1000))
    sizes = [len(c) for c in chunks_in_time(1000, Deadline(None), first=8, most=64)]
    assert sizes[:4] == [8, 16, 32, 64] and max(sizes) == 64
    past = Deadline(1.0, start=time.perf_counter() - 5.0)
    assert [len(c) for c in chunks_in_time(1000, past, first=32)] == [32]     # at least one chunk
    assert [len(c) for c in chunks_in_time(1000, Deadline(60.0), margin=61.0)] == [32]
    assert partial_note(32, 1000, "test rows") == "evaluated on 32 of 1000 test rows because of the time limit"
    assert partial_note(5, 5) is None


def test_chunks_in_time_end_near_the_deadline_not_a_large_chunk_past_it():
    deadline, done = Deadline(0.6), 0
    for chunk in chunks_in_time(100_000, deadline, first=4, most=100_000):
        time.sleep(0.002 * len(chunk))         # the caller's work: 2 ms an item
        done += len(chunk)
    assert deadline.elapsed() < 0.6 + 0.2 and 50 < done < 100_000


def test_a_partial_evaluation_says_so(tmp_path):
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.classify_run import score_in_time

    rng = np.random.default_rng(0)
    X = [rng.standard_normal(12) + (i % 2) for i in range(100)]
    y = [i % 2 for i in range(100)]
    clf = SequenceClassifier(hidden_size=4, bidirectional=False).fit(X, y, max_steps=2, val_fraction=0.0)
    enc, ids = clf._encode(X, "test"), clf._labels(y, 100, "test")
    past = Deadline(1.0, start=time.perf_counter() - 5.0)
    rep, (idx, proba) = score_in_time(clf, enc, ids, past, 0.0, "test sequences")
    assert rep["n"] == len(idx) == 32 and rep["of"] == 100 and sum(rep["support"]) == 32
    assert rep["time_limit_note"] == "evaluated on 32 of 100 test sequences because of the time limit"
    np.testing.assert_allclose(proba, clf.predict_proba([X[i] for i in idx]), rtol=1e-6)
    full, _ = score_in_time(clf, enc, ids, Deadline(None), 0.0, "test sequences")
    assert full["n"] == 100 and "time_limit_note" not in full
    assert full["accuracy"] == clf.evaluate(X, y)["accuracy"]


def _series_tsv(path, n=40, length=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = [[c] + list(np.sin(np.arange(length) * (c + 1) / 4 + rng.random()) + 0.2 * rng.random(length))
            for c in (1, 2) for _ in range(n // 2)]
    path.write_text("\n".join("\t".join(f"{v:.5g}" for v in r) for r in rows) + "\n")
    return path


def _forecast_csv(path, dates: bool, n=300):
    t = np.arange(n)
    v = 10 + np.sin(2 * np.pi * t / 12) + 0.05 * t + 0.1 * np.random.default_rng(1).standard_normal(n)
    if dates:
        lines = ["date,value"] + [f"{1990 + i // 12}-{i % 12 + 1:02d}-01,{x:.4f}" for i, x in enumerate(v)]
    else:
        lines = ["value"] + [f"{x:.4f}" for x in v]
    path.write_text("\n".join(lines) + "\n")
    return path


def _pairs(path, n=300):
    words = ["red", "green", "blue", "cat", "dog", "sun", "moon", "tree"]
    rng = np.random.default_rng(2)
    lines = []
    for _ in range(n):
        src = " ".join(rng.choice(words, size=3))
        lines.append(f"{src}\t{src[::-1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _commands(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("call me ishmael. some years ago, never mind how long precisely. " * 400)
    train = _series_tsv(tmp_path / "train.tsv")
    test = _series_tsv(tmp_path / "test.tsv", n=400, seed=1)
    return {
        "classify": ["classify", train, "--test", test],
        "forecast": ["forecast", _forecast_csv(tmp_path / "plain.csv", False), "--horizon", "6",
                     "--test-fraction", "0.2"],
        "forecast-context": ["forecast", _forecast_csv(tmp_path / "dated.csv", True), "--horizon", "6"],
        "seq2seq": ["seq2seq", "--train", _pairs(tmp_path / "p.tsv"), "--test", _pairs(tmp_path / "q.tsv", 400)],
        "train-lm": ["train-lm", text],
    }


FILES = {"classify": ["predictions.csv", "confusion_matrix_test.png"], "forecast": ["backtest.csv"],
         "forecast-context": ["predictions.csv"], "seq2seq": [], "train-lm": []}


@pytest.mark.parametrize("command", list(FILES))
def test_time_limit_covers_the_whole_command(tmp_path, command, capsys):
    argv = [str(a) for a in _commands(tmp_path)[command]]
    out = tmp_path / "run"
    start = time.perf_counter()
    code = main(argv + ["--out", str(out), "--time-limit", str(LIMIT), "--quiet"])
    wall = time.perf_counter() - start
    assert code == 0, capsys.readouterr().err
    assert wall < LIMIT + SLACK, f"{command}: {wall:.2f} s for --time-limit {LIMIT}"
    for name in ["config.json", "model.npz", "metrics.json", "report.html"] + \
            [f for f in FILES[command] if not f.endswith(".png")]:
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] > 0
    for part in ("validation", "test"):
        ev = metrics.get(part)
        if isinstance(ev, dict) and "of" in ev and ev["n"] < ev["of"]:
            # a random part was scored, and the files say so
            assert ev["time_limit_note"].startswith(f"evaluated on {ev['n']} of {ev['of']} ")
            assert ev["time_limit_note"] in (out / "report.html").read_text()


def test_demo_time_limit_covers_both_runs_and_the_page(tmp_path):
    start = time.perf_counter()
    assert main(["demo", "--quick", "--time-limit", "4", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert time.perf_counter() - start < 4 + SLACK
    assert (tmp_path / "d" / "report.html").is_file() and (tmp_path / "d" / "demo.json").is_file()


def test_the_report_is_written_without_the_plots_time_left_out(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnkit.report import NO_TIME_FOR_PLOTS, render, write_run_report

    records = [{"event": "train", "step": s, "train_loss": 1.0 / s, "lr": 0.01} for s in range(1, 5)]
    past = Deadline(1.0, start=time.perf_counter() - 5.0)
    late = render("run", [], records=records, deadline=past, notes=["evaluated on 3 of 9 test rows because of "
                                                                   "the time limit"])
    assert NO_TIME_FOR_PLOTS in late and "<img" not in late and "evaluated on 3 of 9 test rows" in late
    on_time = render("run", [], records=records, deadline=Deadline(60.0))
    assert "<img" in on_time and NO_TIME_FOR_PLOTS not in on_time
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    write_run_report(tmp_path, "run", deadline=past)
    assert (tmp_path / "report.html").is_file() and not (tmp_path / "training.png").exists()
