"""Every job's run directory: one layout, kept usable while training, and `predict` / `evaluate`
for every saved model (the job read from config.json)."""

import csv
import io
import json
import math
import sys

import numpy as np
import pytest

from rnnkit import io as rkio
from rnnkit.cli import main
from rnnkit.report import have_matplotlib
from rnnkit.train import Callback

TEXT = ("the cat sat on the mat. the dog sat on the log. " * 30
        + "a cat and a dog met on a mat by the log.\n" * 8)
WORDS = ["abc", "bca", "cab", "aab", "bba", "ccb", "acb", "bac", "cba", "abb", "bcc", "caa"]
TINY = ["--hidden", "8", "--epochs", "2", "--quiet"]


def write_tsv(path, n, seed):
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            c = ("up", "down")[i % 2]
            v = (1 if c == "up" else -1) * np.sin(np.arange(16) / 2) + 0.1 * rng.standard_normal(16)
            f.write(c + "\t" + "\t".join(f"{x:.4f}" for x in v) + "\n")


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One small trained run of every job, trained through the command line."""
    d = tmp_path_factory.mktemp("runs")
    files = {"text": d / "cats.txt", "train": d / "train.tsv", "test": d / "test.tsv", "csv": d / "sales.csv",
             "pairs": d / "pairs.tsv", "inputs": d / "inputs.txt"}
    files["text"].write_text(TEXT, encoding="utf-8")
    write_tsv(files["train"], 270, 0)        # a validation part of 40 series: the best weights are chosen
    write_tsv(files["test"], 10, 1)
    t = np.arange(240)
    y = 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).standard_normal(240)
    files["csv"].write_text("date,units\n" + "".join(f"day{i},{v:.5f}\n" for i, v in enumerate(y)), encoding="utf-8")
    files["pairs"].write_text("".join(f"{w}\t{w[::-1]}\n" for w in WORDS * 3), encoding="utf-8")
    files["inputs"].write_text("abc\ncab\n\nbba\n", encoding="utf-8")
    out = {job: d / job for job in ("lm", "classify", "forecast", "seq2seq")}
    assert main(["train-lm", str(files["text"]), "--out", str(out["lm"]), "--cell", "gru", "--layers", "1",
                 "--embedding", "6", "--seq-len", "24", "--batch", "4", "--lr", "0.01", *TINY]) == 0
    assert main(["classify", str(files["train"]), "--test", str(files["test"]), "--out", str(out["classify"]),
                 "--pooling", "mean", *TINY]) == 0
    assert main(["forecast", str(files["csv"]), "--column", "units", "--horizon", "3", "--out", str(out["forecast"]),
                 "--test-fraction", "0.1", *TINY]) == 0
    assert main(["seq2seq", "--train", str(files["pairs"]), "--out", str(out["seq2seq"]), "--embedding", "4",
                 *TINY]) == 0
    return out, files


@pytest.mark.parametrize("job", ["lm", "classify", "forecast", "seq2seq"])
def test_every_job_writes_the_same_layout(runs, job):
    out = runs[0][job]
    names = ["config.json", "model.npz", "metrics.json", "report.html", "train/config.json", "train/model.npz",
             "train/trainer.json", "train/metrics.jsonl", "train/best/model.npz"]
    if have_matplotlib():
        names.append("training.png")
    for name in names:
        assert (out / name).is_file(), f"{job}: {name}"
    meta = json.loads((out / "config.json").read_text())["meta"]
    assert meta["task"] == job
    steps = json.loads((out / "train" / "trainer.json").read_text())["step"]
    training = meta["training"]
    assert training["finished"] is True and training["step"] == steps > 0
    assert training["stop_reason"] == "epochs" and 1 <= training["best_step"] <= steps
    assert isinstance(json.loads((out / "metrics.json").read_text()), dict)
    # the root model is the best one, readable with the task's class: the lowest validation
    # loss's (train/best), or for seq2seq the step whose validation outputs scored best
    # ("selected_step"; tests/test_task_translation.py checks those weights)
    ckpt = rkio.load_checkpoint(out)
    best = rkio.load_checkpoint(out / "train" / "best")
    assert best.meta["step"] == training["best_step"]
    selected = json.loads((out / "metrics.json").read_text()).get("selected_step", training["best_step"])
    assert 1 <= selected <= steps and (job == "seq2seq" or selected == training["best_step"])
    if selected == training["best_step"]:
        for k, v in best.arrays.items():
            np.testing.assert_array_equal(ckpt.arrays[k], v)


def test_classify_predict_and_evaluate(runs, tmp_path, capsys):
    out, files = runs
    assert main(["predict", str(out["classify"]), str(files["test"])]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert len(rows) == 10 and {r["label"] for r in rows} == {"up", "down"}
    for r in rows:
        p = {c: float(r[f"p({c})"]) for c in ("up", "down")}
        assert math.isclose(sum(p.values()), 1.0, rel_tol=1e-6)
        assert r["predicted"] == max(p, key=p.get) and float(r["probability"]) == p[r["predicted"]]
    # a folder of files: one row per sequence, with the file it came from; --out writes a file
    folder = tmp_path / "many"
    folder.mkdir()
    write_tsv(folder / "a.tsv", 4, 2)
    write_tsv(folder / "b.tsv", 6, 3)
    assert main(["predict", str(out["classify"]), str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    rows = csv_rows((tmp_path / "p.csv").read_text(encoding="utf-8"))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["a.tsv"] * 4 + ["b.tsv"] * 6
    assert main(["evaluate", str(out["classify"]), str(files["test"])]) == 0
    res = json.loads(capsys.readouterr().out)
    conf = np.array(res["confusion"])
    assert res["task"] == "classify" and conf.shape == (2, 2) and conf.sum() == 10
    assert res["accuracy"] == pytest.approx(np.trace(conf) / 10) and 0 <= res["macro_f1"] <= 1
    hits = sum(r["label"] == r["predicted"] for r in csv_rows((out["classify"] / "predictions.csv").read_text()))
    assert hits == np.trace(conf)                 # the run's test predictions agree with evaluate


def test_forecast_predict_and_evaluate(runs, capsys):
    out, files = runs
    assert main(["predict", str(out["forecast"]), str(files["csv"])]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and [int(r["row"]) for r in rows] == [240, 241, 242]
    assert all(8 < float(r["forecast"]) < 12 for r in rows)
    # the run's predictions.csv is the same forecast of the same file
    assert rows == csv_rows((out["forecast"] / "predictions.csv").read_text())
    assert main(["evaluate", str(out["forecast"]), str(files["csv"])]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["task"] == "forecast" and res["rows"] == 240 and res["horizon"] == 3
    lookback = json.loads((out["forecast"] / "metrics.json").read_text())["lookback"]
    assert res["period"] == 12 and res["origins"] == 240 - 3 + 1 - max(lookback, 12)
    for name in ("model", "naive", "seasonal_naive"):
        assert res["metrics"][name]["mae"] > 0 and res["metrics"][name]["mase"] > 0
    # a seasonal series: one period back beats the last value
    assert res["metrics"]["seasonal_naive"]["mae"] < res["metrics"]["naive"]["mae"]


def test_seq2seq_predict_and_evaluate(runs, capsys, monkeypatch):
    out, files = runs
    assert main(["predict", str(out["seq2seq"]), str(files["inputs"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["abc", "cab", "bba"]
    assert all(set(ln.split("\t")[1]) <= set("abc") for ln in lines)
    assert main(["predict", str(out["seq2seq"]), str(files["pairs"])]) == 0      # pairs: the sources
    assert len(capsys.readouterr().out.splitlines()) == 36
    # without sacrebleu: exact match, and a note that chrF and BLEU need it
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "sacrebleu", None)              # as if it were not installed
        assert main(["evaluate", str(out["seq2seq"]), str(files["pairs"])]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["task"] == "seq2seq" and plain["n"] == 36 and 0 <= plain["exact_match"] <= 1
    assert plain["chrf"] is None and plain["bleu"] is None and "sacrebleu" in plain["note"]
    pytest.importorskip("sacrebleu")
    assert main(["evaluate", str(out["seq2seq"]), str(files["pairs"])]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["exact_match"] == plain["exact_match"] and "note" not in res
    assert 0 <= res["chrf"] <= 100 and 0 <= res["bleu"] <= 100


def test_text_scores_match_sacrebleu_and_exact_match():
    sacrebleu = pytest.importorskip("sacrebleu")
    from rnnkit.tasks.metrics import text_scores

    pred, ref = ["2021-03-03", "1999-07-12", "2000-01-01"], ["2021-03-03", "1999-12-07", "2000-01-02"]
    s = text_scores(pred, ref)
    assert s["exact_match"] == pytest.approx(1 / 3) and s["n"] == 3
    assert s["chrf"] == pytest.approx(sacrebleu.corpus_chrf(pred, [ref]).score)
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(pred, [ref]).score)
    assert text_scores(ref, ref)["chrf"] == pytest.approx(100.0)


def test_lm_predict_and_evaluate(runs, capsys):
    from rnnkit.tasks.lm import CharLanguageModel

    out, files = runs
    prompts = files["text"].parent / "prompts.txt"
    prompts.write_text("the c\na dog\n", encoding="utf-8")
    assert main(["predict", str(out["lm"]), str(prompts)]) == 0
    rows = csv_rows(capsys.readouterr().out)
    lm = CharLanguageModel.load(out["lm"])
    assert [r["prompt"] for r in rows] == ["the c", "a dog"]
    assert [r["continuation"] for r in rows] == [lm.greedy("the c", 200), lm.greedy("a dog", 200)]
    assert main(["evaluate", str(out["lm"]), str(files["text"])]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["task"] == "lm" and res["chars"] == len(TEXT) - 1 and res["bits_per_char"] > 0


def test_predict_needs_a_run_directory(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing"), str(tmp_path / "x.csv")]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({"meta": {"task": "translate"}}), encoding="utf-8")
    assert main(["evaluate", str(tmp_path), str(tmp_path / "x.csv")]) == 1
    assert "'translate'" in capsys.readouterr().err


# -- the run directory while training --------------------------------------------------------

class InspectAtFirstCheckpoint(Callback):
    """At the first checkpoint: read the run directory as another process would, then stop."""

    def __init__(self, run_dir, read):
        self.run_dir, self.read, self.seen = run_dir, read, None

    def on_start(self, trainer):
        self.initial = trainer.model.state_dict()

    def on_checkpoint(self, trainer, info):
        if self.seen is not None:        # the final checkpoint, after the stop
            return
        ckpt = rkio.load_checkpoint(self.run_dir)
        expected = trainer.best_params if trainer.best_params is not None else trainer.model.state_dict()
        self.seen = {"training": ckpt.meta["training"], "step": trainer.step, "task": self.read(self.run_dir),
                     "trained": any(not np.array_equal(ckpt.arrays[k], self.initial[k]) for k in self.initial),
                     "best": all(np.array_equal(ckpt.arrays[k], expected[k]) for k in expected)}
        raise KeyboardInterrupt          # as if the run were killed here


def test_model_npz_holds_trained_weights_from_the_first_checkpoint(tmp_path):
    from rnnkit.data.synthetic import dna_motif_dataset
    from rnnkit.tasks.classify import SequenceClassifier

    X, y = dna_motif_dataset(60, length=20, seed=0)
    run = tmp_path / "run"
    spy = InspectAtFirstCheckpoint(run, lambda d: SequenceClassifier.load(d).predict(X[:5]))
    clf = SequenceClassifier(hidden_size=8, batch_size=8, seed=0)
    clf.fit(X, y, epochs=5, out_dir=run, callbacks=[spy])
    seen = spy.seen
    assert seen is not None and seen["trained"] and seen["best"] and len(seen["task"]) == 5
    assert seen["training"]["finished"] is False and seen["training"]["step"] == seen["step"] > 0
    assert clf.history_.interrupted
    meta = json.loads((run / "config.json").read_text())["meta"]
    assert meta["training"]["finished"] is False and meta["training"]["stop_reason"] == "interrupted"


def test_lm_run_directory_serves_generate_during_training(tmp_path, capsys):
    from rnnkit.tasks.lm import CharLanguageModel

    run = tmp_path / "lm"
    spy = InspectAtFirstCheckpoint(run, lambda d: main(["generate", str(d), "--length", "20", "--seed", "1"]))
    lm = CharLanguageModel(cell="gru", hidden_size=12, num_layers=1, embedding_dim=6, seq_len=24, batch_size=4)
    lm.fit(TEXT, epochs=3, lr=0.01, out_dir=run, callbacks=[spy])
    assert spy.seen["task"] == 0 and len(capsys.readouterr().out) == 21
    assert spy.seen["trained"] and spy.seen["best"] and spy.seen["training"]["finished"] is False


def test_without_validation_every_checkpoint_updates_the_model(tmp_path):
    from rnnkit.tasks.classify import SequenceClassifier

    class Steps(Callback):
        def __init__(self):
            self.seen = []

        def on_checkpoint(self, trainer, info):
            self.seen.append((trainer.step, rkio.load_checkpoint(tmp_path / "run").meta["training"]["step"]))

    X = [np.sin(np.arange(12) / (2 + i % 2)) for i in range(16)]
    y = [i % 2 for i in range(16)]
    spy = Steps()
    SequenceClassifier(hidden_size=4, batch_size=8).fit(X, y, val_fraction=0, epochs=3, out_dir=tmp_path / "run",
                                                        callbacks=[spy])
    steps = [s for s, _ in spy.seen]     # the first epoch's end, later ones as time allows, the end
    assert steps[0] == 2 and steps[-1] == 6 and set(steps) <= {2, 4, 6} and steps == sorted(steps)
    assert all(step == saved for step, saved in spy.seen)     # config.json + model.npz of that step


def test_a_replacement_cut_short_between_its_two_moves_is_finished_by_the_reader(tmp_path):
    """kill -9 after model.npz moved into place but before config.json followed: the next
    load finishes the move instead of refusing a mixed pair."""
    import os

    from rnnkit.errors import CheckpointError
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.run import PENDING_DIR

    X = [np.sin(np.arange(12) / (2 + i % 2)) for i in range(16)]
    y = [i % 2 for i in range(16)]
    clf = SequenceClassifier(hidden_size=4, batch_size=8, ensemble=1, kernels="off").fit(X, y, val_fraction=0,
                                                                                        epochs=1)
    run = tmp_path / "run"
    clf.save(run)
    assert sorted(os.listdir(run)) == ["config.json", "model.npz"]          # no .pending left behind
    newer = {k: v + 1.0 for k, v in clf.model_.state_dict().items()}
    rkio.save_checkpoint(run / PENDING_DIR, clf.model_.config(), newer, None, meta=clf._meta())
    os.replace(run / PENDING_DIR / "model.npz", run / "model.npz")         # ... and then the kill
    with pytest.raises(CheckpointError, match="SHA-256"):
        rkio.load_checkpoint(run)
    loaded = SequenceClassifier.load(run)
    for k, v in newer.items():
        np.testing.assert_array_equal(loaded.model_.state_dict()[k], v)
    rkio.load_checkpoint(run)                                             # the pair matches again


def test_kill_9_during_training_leaves_a_usable_run(runs, tmp_path, capsys):
    import os
    import signal
    import subprocess
    import time

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    _, files = runs
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(__import__("pathlib").Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "classify", str(files["train"]), "--out", str(run),
                             "--hidden", "8", "--epochs", "100000", "--patience", "100000", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                step = json.loads((run / "config.json").read_text())["meta"]["training"]["step"]
            except (OSError, ValueError, KeyError):
                step = 0
            if step >= 10:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.3)                       # somewhere in the middle of training and its writes
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert main(["predict", str(run), str(files["test"])]) == 0
    assert len(csv_rows(capsys.readouterr().out)) == 10
    assert main(["evaluate", str(run), str(files["test"])]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1
    assert json.loads((run / "config.json").read_text())["meta"]["training"]["finished"] is False
