"""The long-memory runner with the new cells: chrono initialisation, solve thresholds,
time limits, and every kind of the registry trainable on both tasks."""

import json
import math

import numpy as np
import pytest

from rnnkit.cells.registry import DIAGNOSTIC_CELLS
from rnnkit.diagnostics.memory import (COPY_LENGTH, make_memory_model, run_memory, solve_threshold,
                                       train_memory_model)
from rnnkit.init import chrono_init


def test_chrono_init_sets_forget_and_input_biases():
    H, t_max = 50, 300
    params = {"bias_ih_l0": np.ones(4 * H), "bias_hh_l0": np.ones(4 * H)}
    chrono_init(params, H, t_max, np.random.default_rng(0))
    b_f = params["bias_ih_l0"][H:2 * H]
    assert np.all(b_f >= 0) and np.all(b_f <= math.log(t_max - 1))
    assert b_f.max() > math.log(t_max / 4)                 # spread over the range, not one value
    np.testing.assert_array_equal(params["bias_ih_l0"][:H], -b_f)
    np.testing.assert_array_equal(params["bias_hh_l0"][:2 * H], 0)
    np.testing.assert_array_equal(params["bias_ih_l0"][2 * H:], 1)   # g and o untouched
    with pytest.raises(ValueError, match="t_max must be a number > 2"):
        chrono_init(params, H, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="expected bias_ih_l0 of shape"):
        chrono_init({"bias_ih_l0": np.ones(3 * H), "bias_hh_l0": np.ones(3 * H)}, H, 10, np.random.default_rng(0))


def test_lstm_chrono_model_uses_the_input_length():
    model = make_memory_model("copy", "lstm-chrono", 16, seed=0, length=100)
    b_f = model.rnn.params["bias_ih_l0"][16:32]
    assert b_f.max() <= math.log(1.5 * 100 - 1) and b_f.max() > math.log(100 / 8)
    plain = make_memory_model("copy", "lstm", 16, seed=0, length=100)
    assert not np.allclose(plain.rnn.params["bias_ih_l0"][16:32], b_f)
    with pytest.raises(ValueError, match="needs length"):
        make_memory_model("adding", "lstm-chrono", 16)


def test_solve_thresholds():
    assert solve_threshold("adding", 1000) == 0.01
    assert solve_threshold("copy", 80) == pytest.approx(0.1 * 10 / 100)
    with pytest.raises(ValueError, match="task must be"):
        solve_threshold("digits", 8)


@pytest.mark.parametrize("cell", DIAGNOSTIC_CELLS)
def test_every_kind_trains_on_adding(cell):
    model = make_memory_model("adding", cell, 8, seed=0, length=12)
    run = train_memory_model(model, "adding", 12, 3, eval_every=1, eval_size=16, solve_below=1e9)
    assert run["steps_to_solve"] == 0 and run["seconds_to_solve"] == 0.0   # trivially below 1e9
    assert len(run["curve"]["train_seconds"]) == 4 and run["curve"]["train_seconds"][-1] > 0


def test_run_memory_records_solving_and_stops(tmp_path):
    res = run_memory("copy", length=6, cells=["mingru", "indrnn"], steps=4, hidden=8, eval_every=1,
                     eval_size=16, plot=False, stop_when_solved=True, time_limit=0.0)
    assert res["solved_below"] == pytest.approx(solve_threshold("copy", 6))
    for run in res["cells"].values():
        assert run["steps_run"] == 1          # time_limit 0: stops at the first evaluation after a step
        assert run["steps_to_solve"] is None


def test_chrono_forget_biases_are_log_uniform():
    """b_f = log u, u ~ U(1, T_max − 1): exp(b_f) fills [1, T_max − 1] evenly."""
    H, t_max = 4000, 1000
    params = {"bias_ih_l0": np.zeros(4 * H), "bias_hh_l0": np.zeros(4 * H)}
    chrono_init(params, H, t_max, np.random.default_rng(5))
    u = np.exp(params["bias_ih_l0"][H:2 * H])
    assert u.min() >= 1.0 and u.max() <= t_max - 1
    counts, _ = np.histogram(u, bins=4, range=(1.0, t_max - 1.0))
    assert counts.min() > 0.8 * H / 4 and counts.max() < 1.2 * H / 4   # uniform in u, not in log u


@pytest.mark.parametrize("task, T, t_in", [("adding", 300, 300), ("copy", 80, 100)])
def test_indrnn_memory_model_follows_its_paper(task, T, t_in):
    from rnnkit.diagnostics.memory import MEMORY_ADAM_LR, memory_setup

    model = make_memory_model(task, "indrnn", 8, seed=0, length=T)
    M = 2.0 ** (1.0 / t_in)
    assert model.rnn.num_layers == memory_setup("indrnn")["layers"] == 2
    assert model.rnn.variant["recurrent_max"] == pytest.approx(M)
    low = 2.0 ** (-1.0 / t_in)
    u0, u1 = model.rnn.params["weight_hh_l0"], model.rnn.params["weight_hh_l1"]
    assert u0.min() >= 0.0 and u0.max() <= M and u0.min() < 0.5 * M < u0.max()     # U(0, M)
    assert u1.min() >= low and u1.max() <= M                                        # last: U(2^(-1/T), M)
    for layer in range(2):
        w = model.rnn.params[f"weight_ih_l{layer}"]
        assert 0.003 < w.std() < 0.02 and abs(w.mean()) < 0.005                     # N(0, 0.01²)
        np.testing.assert_array_equal(model.rnn.params[f"bias_ih_l{layer}"], 0)
        np.testing.assert_array_equal(model.rnn.params[f"bias_hh_l{layer}"], 0)
    if task == "adding":
        np.testing.assert_array_equal(model.head.params["bias"], 1.0)                # E[y]
    assert MEMORY_ADAM_LR["indrnn"] == 2e-4
    assert make_memory_model(task, "indrnn", 8, seed=0, length=T, num_layers=1).rnn.num_layers == 1
    with pytest.raises(ValueError, match="needs length"):
        make_memory_model(task, "indrnn", 8)


def test_indrnn_adding_model_starts_small_and_flat():
    """Tiny input weights: at T = 1000 the first outputs are almost the same for every
    input and of order 1 (ReLU units integrating inputs of the default scale over 1000
    steps gave outputs of 10⁴)."""
    from rnnkit.diagnostics.memory import adding_problem

    model = make_memory_model("adding", "indrnn", 128, seed=0, length=1000)
    pred = model.predict(adding_problem(256, 1000, seed=1)["x"])
    assert pred.std() < 0.1 and np.abs(pred).max() < 3.0


def test_memory_setup_gives_each_cell_its_papers_and_flags_override():
    from rnnkit.diagnostics.memory import DEFAULT_SETUP, MEMORY_ADAM_LR, MEMORY_SETUP, memory_setup

    s = memory_setup("indrnn")
    assert (s["hidden"], s["layers"], s["batch"], s["optimizer"], s["lr"]) == (128, 2, 50, "adam", 2e-4)
    c = memory_setup("lstm-chrono")
    assert (c["hidden"], c["batch"], c["optimizer"], c["lr"]) == (128, 50, "rmsprop", 1e-3)
    g = memory_setup("gru")
    assert (g["hidden"], g["layers"], g["batch"], g["optimizer"]) == \
        (DEFAULT_SETUP["hidden"], 1, DEFAULT_SETUP["batch"], "adam")
    assert g["lr"] == MEMORY_ADAM_LR["gru"]
    o = memory_setup("indrnn", hidden=16, layers=3, batch=7, lr=0.5)
    assert (o["hidden"], o["layers"], o["batch"], o["optimizer"], o["lr"]) == (16, 3, 7, "adam", 0.5)
    assert memory_setup("lstm-chrono", optimizer="adam")["lr"] == MEMORY_ADAM_LR["lstm-chrono"]
    assert memory_setup("indrnn", optimizer="sgd")["lr"] is None           # the optimizer's default
    assert set(MEMORY_SETUP) <= set(DIAGNOSTIC_CELLS)
    with pytest.raises(ValueError, match="hidden"):
        memory_setup("indrnn", hidden=0)


def test_run_memory_trains_each_cell_in_its_setup():
    """The setup reaches the models and the optimizer; given arguments override it."""
    res = run_memory("adding", length=12, cells=["indrnn", "lstm-chrono", "gru"], steps=1, eval_every=1,
                     eval_size=8, plot=False)
    got = {name: (r["hidden"], r["layers"], r["batch_size"], r["optimizer"], r["lr"])
           for name, r in res["cells"].items()}
    assert got == {"indrnn": (128, 2, 50, "adam", 2e-4), "lstm-chrono": (128, 1, 50, "rmsprop", 1e-3),
                   "gru": (64, 1, 32, "adam", 1e-2)}
    res = run_memory("adding", length=12, cells=["indrnn"], steps=1, eval_every=1, eval_size=8, plot=False,
                     hidden=8, num_layers=1, batch_size=4, lr={"indrnn": 0.1})
    assert res["cells"]["indrnn"]["hidden"] == 8 and res["cells"]["indrnn"]["layers"] == 1
    assert res["cells"]["indrnn"]["batch_size"] == 4 and res["cells"]["indrnn"]["lr"] == 0.1


def test_chrono_t_max_is_three_halves_of_the_copy_length():
    """Copy: T_max = 3T/2 (Tallec & Ollivier), so b_f reaches toward log(3T/2 − 1)."""
    T, H = 400, 512
    b_f = make_memory_model("copy", "lstm-chrono", H, seed=0, length=T).rnn.params["bias_ih_l0"][H:2 * H]
    assert b_f.max() <= math.log(1.5 * T - 1) and b_f.max() > math.log(T + 2 * COPY_LENGTH)


def _memory_table():
    from conftest import load_benchmark

    return load_benchmark("memory_table")


def test_memory_table_orders_its_runs():
    mt = _memory_table()
    tasks, lengths, cells = ["copy", "adding"], [1000, 200], ["indrnn", "lstm-chrono"]
    by_length = mt.jobs(tasks, lengths, cells, extra=False)
    assert [j[1] for j in by_length] == [200] * 4 + [1000] * 4
    assert by_length[:2] == [("copy", 200, "indrnn"), ("copy", 200, "lstm-chrono")]
    by_cell = mt.jobs(tasks, lengths, cells, extra=False, order="cell")
    assert [j[2] for j in by_cell] == ["indrnn"] * 4 + ["lstm-chrono"] * 4
    assert by_cell[:2] == [("copy", 200, "indrnn"), ("copy", 1000, "indrnn")]
    by_task = mt.jobs(tasks, lengths, cells, extra=False, order="task")
    assert [j[0] for j in by_task] == ["copy"] * 4 + ["adding"] * 4
    given = mt.jobs(tasks, lengths, cells, extra=False, order="given")
    assert given[:3] == [("copy", 1000, "indrnn"), ("copy", 200, "indrnn"), ("copy", 1000, "lstm-chrono")]
    assert sorted(given) == sorted(by_length) == sorted(by_cell)
    assert ("adding", 5000, "indrnn") in mt.jobs(["adding"], [200], ["indrnn"], extra=True)
    with pytest.raises(ValueError, match="order must be one of"):
        mt.jobs(tasks, lengths, cells, extra=False, order="random")


def test_memory_table_keeps_each_runs_learning_curve(tmp_path):
    mt = _memory_table()
    args = {"out": str(tmp_path), "steps": 4, "hidden": 4, "batch": 3, "eval_every": 2, "eval_size": 8,
            "seed": 0, "layers": 1, "time_limit": None}
    line = mt.run_one(("adding", 20, "gru"), args)
    assert line.startswith("adding T=20")
    record = json.loads((tmp_path / "adding_T20_gru.json").read_text())
    assert record["curve"]["step"] == [0, 2, 4]
    assert len(record["curve"]["eval_loss"]) == 3 and record["best_loss"] == min(record["curve"]["eval_loss"])
    assert mt.run_one(("adding", 20, "gru"), args) == "adding_T20_gru.json: already done"
    (tmp_path / "speed_T20_threads1.json").write_text(json.dumps({"gru": 0.01}))   # --speed's, beside
    assert mt.table(tmp_path).splitlines()[2].startswith("| gru | ")


def test_memory_table_marks_lengths_a_cell_is_not_run_at(tmp_path):
    mt = _memory_table()
    base = {"task": "adding", "steps_to_solve": 10, "seconds_to_solve": 1.0, "diverged": False,
            "best_loss": 0.005, "steps_run": 10, "seconds": 1.0}
    for cell, T in (("indrnn", 5000), ("gru", 200)):
        (tmp_path / f"adding_T{T}_{cell}.json").write_text(json.dumps({**base, "cell": cell, "length": T}))
    rows = {line.split(" | ")[0]: line for line in mt.table(tmp_path).splitlines()[2:]}
    assert rows["| gru"].endswith("| 10 steps, 1 s | — |")          # 5000 is IndRNN's length only
    assert rows["| indrnn"].endswith("| not run | 10 steps, 1 s |")  # 200 is every cell's
