"""The long-memory runner with the new cells: chrono initialisation, solve thresholds,
time limits, and every kind of the registry trainable on both tasks."""

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
    assert b_f.max() <= math.log(100 + 2 * COPY_LENGTH - 1) and b_f.max() > math.log(100 / 8)
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
    from rnnkit.diagnostics.memory import MEMORY_ADAM_LR, MEMORY_LAYERS

    model = make_memory_model(task, "indrnn", 8, seed=0, length=T)
    M = 2.0 ** (1.0 / t_in)
    assert model.rnn.num_layers == MEMORY_LAYERS["indrnn"] == 2
    assert model.rnn.variant["recurrent_max"] == pytest.approx(M)
    for layer in range(2):
        u = model.rnn.params[f"weight_hh_l{layer}"]
        assert u.min() >= 0.0 and u.max() <= M and u.max() > 0.5 * M
    assert MEMORY_ADAM_LR["indrnn"] == 2e-4
    assert make_memory_model(task, "indrnn", 8, seed=0, length=T, num_layers=1).rnn.num_layers == 1
    with pytest.raises(ValueError, match="needs length"):
        make_memory_model(task, "indrnn", 8)
