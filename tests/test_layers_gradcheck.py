"""Central finite differences in float64 for every layer's backward.

Every forward is recomputed from scratch for each perturbation (nothing is read
back from a cache), the loss uses every output through random weights R, S, and
the error is measured per tensor: max |numeric − analytic| / max |numeric|.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import numeric_grad, rel_err

EPS = 1e-6
TOL = 1e-6
T, B, I, H = 4, 3, 2, 3            # T >= 3, I != H, B >= 2
RAGGED = np.array([4, 2, 3])


def assert_grads(f, tensors: dict, analytic: dict) -> None:
    """Check every named tensor; the failure names the tensor."""
    assert sorted(tensors) == sorted(analytic)
    for name, a in tensors.items():
        num = numeric_grad(f, a, EPS)
        assert np.max(np.abs(num)) > 0, f"{name}: numeric gradient is zero, the check would be vacuous"
        err = rel_err(num, analytic[name])
        assert err < TOL, f"{name}: relative error {err:.3e} vs finite differences"


CELLS = {"rnn_tanh": ("rnn", "tanh"), "rnn_relu": ("rnn", "relu"), "lstm": ("lstm", "tanh"),
         "gru": ("gru", "tanh")}


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("name", list(CELLS))
def test_recurrent_gradcheck(name, ragged):
    cell, nonlinearity = CELLS[name]
    layer = rk.Recurrent(cell, I, H, num_layers=2, nonlinearity=nonlinearity, bidirectional=True,
                         dtype=np.float64, seed=3)
    rng = np.random.default_rng(4)
    # non-zero biases that differ between ih and hh, so a mixed-up bias gradient shows
    for k, v in layer.params.items():
        if k.startswith("bias"):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    LD = 4
    x = rng.standard_normal((T, B, I))
    lengths = RAGGED if ragged else None
    R = rng.standard_normal((T, B, 2 * H))
    if cell == "lstm":
        h0, c0 = rng.standard_normal((LD, B, H)), rng.standard_normal((LD, B, H))
        S, Sc = rng.standard_normal((LD, B, H)), rng.standard_normal((LD, B, H))

        def loss():
            y, (h_n, c_n) = layer.forward(x, (h0, c0), lengths)
            return np.sum(y * R) + np.sum(h_n * S) + np.sum(c_n * Sc)

        layer.forward(x, (h0, c0), lengths)
        dx, (dh0, dc0) = layer.backward(R, (S, Sc))
        tensors = {"x": x, "h0": h0, "c0": c0}
        analytic = {"x": dx, "h0": dh0, "c0": dc0}
    else:
        h0 = rng.standard_normal((LD, B, H))
        S = rng.standard_normal((LD, B, H))

        def loss():
            y, h_n = layer.forward(x, h0, lengths)
            return np.sum(y * R) + np.sum(h_n * S)

        layer.forward(x, h0, lengths)
        dx, dh0 = layer.backward(R, S)
        tensors = {"x": x, "h0": h0}
        analytic = {"x": dx, "h0": dh0}
    grads = {k: v.copy() for k, v in layer.grads.items()}
    tensors.update(layer.params)
    analytic.update(grads)
    assert_grads(loss, tensors, analytic)
    if ragged:  # padded steps of x do not reach the loss
        assert np.all(dx[RAGGED[1]:, 1] == 0)


def test_recurrent_gradcheck_with_inter_layer_dropout():
    """A fixed dropout mask: a fresh layer with the same seed draws the same masks."""
    def build():
        lay = rk.Recurrent("gru", I, H, num_layers=3, dropout=0.4, batch_first=True, dtype=np.float64, seed=9)
        lay.load_state_dict(params)
        return lay

    params = rk.Recurrent("gru", I, H, num_layers=3, dtype=np.float64, seed=9).state_dict()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, I))
    R = rng.standard_normal((B, T, H))
    S = rng.standard_normal((3, B, H))

    def loss():
        y, h_n = build().forward(x, None, RAGGED)
        return np.sum(y * R) + np.sum(h_n * S)

    layer = build()
    layer.forward(x, None, RAGGED)
    dx, _ = layer.backward(R, S)
    tensors = {"x": x, **params}
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    assert_grads(loss, tensors, analytic)
    # the masks really dropped something: the same layer in eval mode gives other outputs
    y_train = build().forward(x, None, RAGGED)[0]
    y_eval = build().eval().forward(x, None, RAGGED)[0]
    assert not np.allclose(y_train, y_eval)


def test_recurrent_gradients_accumulate():
    layer = rk.Recurrent("lstm", I, H, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    once = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    layer.backward(np.ones_like(y))
    for k, v in layer.grads.items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-12, err_msg=k)
    layer.zero_grad()
    assert all(np.all(v == 0) for v in layer.grads.values())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    layer = rk.Linear(I, H, bias=bias, dtype=np.float64, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, T, I))               # any leading shape
    R = rng.standard_normal((2, T, H))

    def loss():
        return np.sum(layer.forward(x) * R)

    layer.forward(x)
    dx = layer.backward(R)
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    assert_grads(loss, {"x": x, **layer.params}, analytic)


def test_embedding_gradcheck_with_repeated_ids():
    layer = rk.Embedding(6, 4, dtype=np.float64, seed=1)
    ids = np.array([[0, 3, 3], [5, 3, 0]])          # 3 three times: add.at must sum them all
    R = np.random.default_rng(2).standard_normal((2, 3, 4))

    def loss():
        return np.sum(layer.forward(ids) * R)

    layer.forward(ids)
    assert layer.backward(R) is None
    assert_grads(loss, layer.params, {"weight": layer.grads["weight"].copy()})
    np.testing.assert_allclose(layer.grads["weight"][3], R[0, 1] + R[0, 2] + R[1, 1])
    assert np.all(layer.grads["weight"][[1, 2, 4]] == 0)


def test_dropout_gradcheck_with_fixed_mask():
    x = np.random.default_rng(0).standard_normal((5, 6))
    R = np.random.default_rng(1).standard_normal((5, 6))

    def loss():  # a fresh layer with the same seed draws the same mask
        return np.sum(rk.Dropout(0.3, seed=4).forward(x) * R)

    layer = rk.Dropout(0.3, seed=4)
    layer.forward(x)
    dx = layer.backward(R)
    assert_grads(loss, {"x": x}, {"x": dx})
