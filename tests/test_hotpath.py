"""The hot path checks each argument once, at the public boundary (issue 11, item 5).

Every reference to a check function inside rnnkit is replaced by a counter, so a
check made anywhere on the path (the layer, the compiled or NumPy cells, a model)
is counted; the errors a bad argument raises are the layer's, unchanged.
"""

from __future__ import annotations

import collections
import sys

import numpy as np
import pytest

import rnnkit as rk
import rnnkit.cells.lstm
import rnnkit.layers.recurrent
import rnnkit.models.tagger  # noqa: F401  (imported before the checks are counted)
from rnnkit import _checks, fast


@pytest.fixture
def counted(monkeypatch):
    """Counter of check calls: ("float", name) and ("float", name, caller) for
    check_float_array, ("lengths",) for check_lengths, wherever rnnkit imported them."""
    calls = collections.Counter()
    originals = {"check_float_array": _checks.check_float_array, "check_lengths": _checks.check_lengths}

    def float_array(a, name, where, *args, **kwargs):
        calls["float", name] += 1
        calls["float", name, where.split("(")[0]] += 1
        return originals["check_float_array"](a, name, where, *args, **kwargs)

    def lengths(*args, **kwargs):
        calls["lengths",] += 1
        return originals["check_lengths"](*args, **kwargs)

    wrappers = {"check_float_array": float_array, "check_lengths": lengths}
    for mod_name, module in list(sys.modules.items()):
        if mod_name.startswith("rnnkit.") and module is not _checks:
            for attr, original in originals.items():
                if getattr(module, attr, None) is original:
                    monkeypatch.setattr(module, attr, wrappers[attr])
    return calls


@pytest.mark.parametrize("compiled", [True, False], ids=["fast", "numpy"])
def test_stacked_bidirectional_lstm_checks_x_once(counted, monkeypatch, compiled):
    if compiled and not fast.available():
        pytest.skip("the compiled loops do not run here")
    if compiled:
        import rnnkit.fast.lstm  # noqa: F401
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "0" if compiled else "1")
    T, B, I, H = 6, 3, 4, 5
    rng = np.random.default_rng(0)
    layer = rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True, seed=1)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = tuple(rng.standard_normal((4, B, H)).astype(np.float32) for _ in range(2))
    y, _ = layer.forward(x, h0, lengths=np.array([6, 2, 4]))
    assert layer._cell.__name__ == ("rnnkit.fast.lstm" if compiled else "rnnkit.cells.lstm")
    assert counted["float", "x"] == 1                    # the layer's, not each cell's too
    assert counted["lengths",] == 1
    assert counted["float", "h0"] == 0 and counted["float", "h0[0] (h)"] == 1
    layer.backward(np.ones_like(y))
    assert counted["float", "dy"] == 1
    assert counted["float", "d_outputs"] == 0            # the cells trust the layer
    assert counted["float", "params['weight_hh']"] == 0  # the layer's own weights


def test_tagger_checks_lengths_once(counted):
    from rnnkit.models import SequenceTagger

    model = SequenceTagger("lstm", hidden_size=4, num_layers=2, vocab_size=7, num_classes=3,
                           bidirectional=True, seed=0)
    T, B = 5, 2
    rng = np.random.default_rng(1)
    batch = {"x": rng.integers(0, 7, (T, B)), "y": rng.integers(0, 3, (T, B)), "lengths": np.array([5, 3])}
    model.loss(batch)
    assert counted["lengths",] == 1
    assert counted["float", "x", "Recurrent"] == 0       # ids checked by the model; the embedding trusted
    assert counted["float", "x", "LSTM"] == 0


def test_errors_unchanged_on_the_checked_path():
    layer = rk.Recurrent("lstm", 4, 5, num_layers=2, bidirectional=True, seed=1)
    x = np.zeros((3, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"Recurrent\(lstm\): x contains NaN or inf"):
        layer.forward(np.full_like(x, np.nan))
    with pytest.raises(ValueError, match=r"Recurrent\(lstm\): lengths must lie in \[1, T=3\]"):
        layer.forward(x, lengths=[4, 1])
    with pytest.raises(ValueError, match=r"Recurrent\(lstm\): h0\[1\] \(c\) contains NaN or inf"):
        layer.forward(x, (np.zeros((4, 2, 5), np.float32), np.full((4, 2, 5), np.inf, np.float32)))
