"""Long-range memory benchmarks: generators, baselines, models and the runner."""

import json
import math

import numpy as np
import pytest

from rnnkit.diagnostics import memory as mem
from rnnkit.models import base as models_base

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_adding_problem_structure_and_baseline():
    n, T = 20000, 50
    d = mem.adding_problem(n, T, seed=0, dtype=np.float64)
    x, y = d["x"], d["y"]
    assert x.shape == (T, n, 2) and y.shape == (n, 1)
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=0) == 2)
    assert np.all(markers[: T // 2].sum(axis=0) == 1) and np.all(markers[T // 2:].sum(axis=0) == 1)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] <= 1))
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=0), rtol=1e-12)
    # y is the sum of two U[0,1]: mean 1, variance 1/6; (y − 1)² has variance 1/15 − 1/36
    assert abs(y.mean() - 1.0) < 4 * math.sqrt(1 / 6 / n)
    mse_of_one = np.mean((y - 1.0) ** 2)
    assert abs(mse_of_one - mem.ADDING_BASELINE) < 4 * math.sqrt((1 / 15 - 1 / 36) / n)
    assert mem.ADDING_BASELINE == pytest.approx(1 / 6)


def test_adding_problem_is_seeded():
    a = mem.adding_problem(5, 10, seed=3)
    b = mem.adding_problem(5, 10, seed=3)
    c = mem.adding_problem(5, 10, seed=4)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"], c["x"])
    assert a["x"].dtype == np.float32
    rng = np.random.default_rng(0)
    first, second = mem.adding_problem(5, 10, seed=rng), mem.adding_problem(5, 10, seed=rng)
    assert not np.array_equal(first["x"], second["x"])          # a Generator is drawn from


def test_copy_memory_structure_and_baseline():
    n, T = 8000, 15
    d = mem.copy_memory(n, T, seed=1)
    x, y = d["x"], d["y"]
    assert x.shape == y.shape == (T + 20, n)
    symbols = x[:10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert np.all(x[10:T + 9] == 0) and np.all(x[T + 9] == 9) and np.all(x[T + 10:] == 0)
    assert np.all(y[:T + 10] == 0)
    np.testing.assert_array_equal(y[T + 10:], symbols)
    freq = np.bincount(symbols.ravel(), minlength=9)[1:] / symbols.size
    assert np.all(np.abs(freq - 1 / 8) < 4 * math.sqrt((1 / 8) * (7 / 8) / symbols.size))
    # the best memoryless predictor uses each step's marginal; its cross-entropy is the
    # mean per-step entropy, which must match 10 ln 8 / (T + 20) up to sampling error
    entropies = []
    for t in range(T + 20):
        p = np.bincount(y[t], minlength=9) / n
        p = p[p > 0]
        entropies.append(-np.sum(p * np.log(p)))
    assert np.mean(entropies) == pytest.approx(mem.copy_baseline(T), rel=2e-3)
    assert mem.copy_baseline(T) == pytest.approx(10 * math.log(8) / (T + 20))


def test_generators_reject_bad_arguments():
    with pytest.raises(ValueError, match="length"):
        mem.adding_problem(3, 1)
    with pytest.raises(ValueError, match="n"):
        mem.copy_memory(0, 5)
    with pytest.raises(TypeError, match="length"):
        mem.copy_baseline(2.5)
    with pytest.raises(ValueError, match="task"):
        mem.run_memory("parity", 10, steps=1)
    with pytest.raises(ValueError, match="cell"):
        mem.make_memory_model("adding", "lstmx")


def test_memory_models_follow_the_model_contract():
    for task in ("adding", "copy", "digits"):
        for cell in ("rnn", "irnn", "lstm", "gru"):
            model = mem.make_memory_model(task, cell, hidden_size=5, seed=1)
            rebuilt = models_base.build(json.loads(json.dumps(model.config())))
            assert {k: v.shape for k, v in rebuilt.params.items()} == {k: v.shape for k, v in model.params.items()}
            for k, v in model.params.items():
                np.testing.assert_array_equal(rebuilt.params[k], v)
    irnn = mem.make_memory_model("adding", "irnn", hidden_size=4)
    np.testing.assert_array_equal(irnn.params["rnn.weight_hh_l0"], np.eye(4))
    assert irnn.rnn.nonlinearity == "relu"


def test_adding_model_is_many_to_one_on_the_last_state():
    model = mem.make_memory_model("adding", "gru", hidden_size=6, seed=0, dtype="float64")
    data = mem.adding_problem(4, 7, seed=2, dtype=np.float64)
    loss, count, _ = model.loss({"x": data["x"], "y": data["y"]})
    pred = model.predict(data["x"])
    assert count == 4 and pred.shape == (4, 1)
    assert loss == pytest.approx(np.mean((pred - data["y"]) ** 2), rel=1e-12)
    h, _ = model.rnn.forward(data["x"])
    np.testing.assert_allclose(pred, model.head.forward(h[-1]), rtol=1e-12)   # the head reads h_T


def test_lstm_beats_the_adding_baseline_at_small_T():
    model = mem.make_memory_model("adding", "lstm", hidden_size=16, seed=0, forget_bias=1.0)
    run = mem.train_memory_model(model, "adding", 20, 400, batch_size=32, lr=1e-2, eval_every=25,
                                 eval_size=256, seed=0, baseline=mem.ADDING_BASELINE, stop_below=0.01)
    assert not run["diverged"]
    assert run["steps_to_beat"] is not None
    assert run["best_loss"] < 0.1 * mem.ADDING_BASELINE           # solved, not just nudged below
    assert run["curve"]["eval_loss"][0] > 0.9 * mem.ADDING_BASELINE   # and it started at the baseline


def test_run_memory_copy_writes_json_png_and_table(tmp_path):
    pytest.importorskip("matplotlib")
    lines = []
    res = mem.run_memory("copy", 5, cells=["rnn", "lstm"], steps=12, out_dir=tmp_path, hidden=6,
                         batch_size=8, eval_every=4, eval_size=16, seed=0, log=lines.append)
    data = json.loads((tmp_path / "memory.json").read_text())
    assert data["baseline"] == pytest.approx(mem.copy_baseline(5))
    assert set(data["cells"]) == {"rnn", "lstm"}
    for name, r in data["cells"].items():
        assert r["curve"]["step"] == [0, 4, 8, 12]
        assert r["curve"]["train_loss"][0] is None and r["curve"]["train_loss"][1] > 0
        assert r["best_loss"] == min(r["curve"]["eval_loss"])
        assert r["seconds"] > 0
        assert r["beat_baseline"] == (r["steps_to_beat"] is not None)
        if r["steps_to_beat"] is not None:
            i = r["curve"]["step"].index(r["steps_to_beat"])
            assert r["curve"]["eval_loss"][i] < 0.9 * data["baseline"]
    assert data["cells"]["lstm"]["lr"] == mem.MEMORY_ADAM_LR["lstm"]
    assert data["cells"]["rnn"]["lr"] == mem.MEMORY_ADAM_LR["rnn"]
    assert (tmp_path / "memory.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "rnn" in res["table"] and "lstm" in res["table"] and len(lines) == 2


def test_train_memory_model_reports_divergence():
    model = mem.make_memory_model("adding", "rnn-relu", hidden_size=4, seed=0)
    model.params["rnn.weight_hh_l0"][:] = 50 * np.eye(4)       # every step multiplies the state by 50
    run = mem.train_memory_model(model, "adding", 200, 3, batch_size=4, eval_every=1, eval_size=4,
                                 clip=None, lr=1e-3, baseline=1 / 6)
    assert run["diverged"] is True
    assert run["diverged_at_step"] == run["steps_run"] and 0 <= run["diverged_at_step"] <= 3
    assert f"(diverged at step {run['diverged_at_step']})" in mem._row("rnn-relu", run)


def test_sequential_digits_task():
    data = mem.sequential_digits(seed=0)
    assert data["train"]["x"].shape == (8, 1500, 8) and data["test"]["x"].shape == (8, 500, 8)
    assert data["baseline"] == pytest.approx(math.log(10), abs=0.01)
    res = mem.run_memory("digits", 8, cells=["gru"], steps=100, hidden=16, batch_size=32, lr=1e-2,
                         eval_every=50, seed=0)
    run = res["cells"]["gru"]
    assert run["best_loss"] < 0.9 * data["baseline"]
    assert run["curve"]["accuracy"][-1] > 0.5                   # ten classes: chance is 0.1


@pytest.mark.parametrize("cell", ["lstm-chrono", "gru"])
def test_a_resumed_memory_run_continues_step_for_step(tmp_path, cell):
    """Stopped after 10 steps and resumed to 25, a run ends with the weights, optimizer and
    curve of the same run trained in one go: the batches and the model's generators go on
    from where they stopped."""
    def run(steps, resume, ckpt):
        model = mem.make_memory_model("copy", cell, 8, seed=3, length=12)
        out = mem.train_memory_model(model, "copy", 12, steps, batch_size=4, optimizer="rmsprop", lr=3e-3,
                                     eval_every=5, eval_size=8, seed=3, checkpoint_dir=ckpt, resume=resume)
        return model, out

    whole, once = run(25, False, None)
    _, first = run(10, False, tmp_path / "ck")
    assert first["steps_run"] == 10
    resumed, second = run(25, True, tmp_path / "ck")
    assert second["curve"]["step"] == [0, 5, 10, 15, 20, 25]
    assert second["curve"]["eval_loss"] == once["curve"]["eval_loss"]
    assert second["curve"]["train_loss"] == once["curve"]["train_loss"]
    for k in whole.params:
        np.testing.assert_array_equal(resumed.params[k], whole.params[k], err_msg=k)
    assert second["seconds"] > first["seconds"]                  # the wall time of both parts
    # without resume the same directory starts afresh (and is overwritten)
    _, fresh = run(5, False, tmp_path / "ck")
    assert fresh["curve"]["eval_loss"] == once["curve"]["eval_loss"][:2]


def test_resume_refuses_a_checkpoint_of_another_setup(tmp_path):
    from rnnkit.errors import CheckpointError

    model = mem.make_memory_model("copy", "lstm", 8, seed=0, length=12)
    mem.train_memory_model(model, "copy", 12, 4, batch_size=4, eval_every=2, eval_size=8,
                           checkpoint_dir=tmp_path / "ck")
    other = mem.make_memory_model("copy", "lstm", 8, seed=0, length=12)
    with pytest.raises(CheckpointError, match="batch_size=4.*batch_size=6"):
        mem.train_memory_model(other, "copy", 12, 8, batch_size=6, eval_every=2, eval_size=8,
                               checkpoint_dir=tmp_path / "ck", resume=True)
    bigger = mem.make_memory_model("copy", "lstm", 10, seed=0, length=12)
    with pytest.raises(CheckpointError, match="model"):
        mem.train_memory_model(bigger, "copy", 12, 8, batch_size=4, eval_every=2, eval_size=8,
                               checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_dir"):
        mem.train_memory_model(other, "copy", 12, 8, batch_size=4, resume=True)
