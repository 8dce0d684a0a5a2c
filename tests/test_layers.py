"""Layers: structure snapshots, behaviour, and clear errors for bad input.

Gradients are checked in test_layers_gradcheck.py (finite differences) and
test_layers_torch.py (PyTorch parity).
"""

import numpy as np
import pytest

import rnnkit as rk

T, B, I, H = 5, 2, 3, 4


def shapes(module) -> dict:
    return {k: v.shape for k, v in module.params.items()}


# -- parameter snapshots ---------------------------------------------------------------
def test_snapshot_lstm_two_layers_bidirectional():
    layer = rk.Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True)
    assert shapes(layer) == {
        "weight_ih_l0": (16, 3), "weight_hh_l0": (16, 4), "bias_ih_l0": (16,), "bias_hh_l0": (16,),
        "weight_ih_l0_reverse": (16, 3), "weight_hh_l0_reverse": (16, 4),
        "bias_ih_l0_reverse": (16,), "bias_hh_l0_reverse": (16,),
        "weight_ih_l1": (16, 8), "weight_hh_l1": (16, 4), "bias_ih_l1": (16,), "bias_hh_l1": (16,),
        "weight_ih_l1_reverse": (16, 8), "weight_hh_l1_reverse": (16, 4),
        "bias_ih_l1_reverse": (16,), "bias_hh_l1_reverse": (16,),
    }
    assert list(layer.grads) == list(layer.params)
    assert (layer.gates, layer.num_directions, layer.num_parameters()) == (4, 2, 2 * (48 + 64 + 32) + 2 * (128 + 64 + 32))
    assert all(layer.grads[k].shape == v.shape for k, v in layer.params.items())


def test_snapshot_gru_without_bias():
    assert shapes(rk.Recurrent("gru", 5, 2, bias=False)) == {"weight_ih_l0": (6, 5), "weight_hh_l0": (6, 2)}
    assert shapes(rk.Recurrent("gru", 2, 3, num_layers=2, bidirectional=True, bias=False)) == {
        "weight_ih_l0": (9, 2), "weight_hh_l0": (9, 3),
        "weight_ih_l0_reverse": (9, 2), "weight_hh_l0_reverse": (9, 3),
        "weight_ih_l1": (9, 6), "weight_hh_l1": (9, 3),
        "weight_ih_l1_reverse": (9, 6), "weight_hh_l1_reverse": (9, 3),
    }


def test_snapshot_rnn_three_layers():
    assert shapes(rk.Recurrent("rnn", 3, 4, num_layers=3, nonlinearity="relu")) == {
        "weight_ih_l0": (4, 3), "weight_hh_l0": (4, 4), "bias_ih_l0": (4,), "bias_hh_l0": (4,),
        "weight_ih_l1": (4, 4), "weight_hh_l1": (4, 4), "bias_ih_l1": (4,), "bias_hh_l1": (4,),
        "weight_ih_l2": (4, 4), "weight_hh_l2": (4, 4), "bias_ih_l2": (4,), "bias_hh_l2": (4,),
    }


def test_snapshot_linear_embedding_dropout():
    assert shapes(rk.Linear(3, 5)) == {"weight": (5, 3), "bias": (5,)}
    assert shapes(rk.Linear(3, 5, bias=False)) == {"weight": (5, 3)}
    assert shapes(rk.Embedding(10, 4)) == {"weight": (10, 4)}
    assert rk.Dropout(0.2).params == {} and rk.Dropout(0.2).grads == {}


def test_layers_are_modules_with_dtype():
    for m in (rk.Recurrent("gru", 2, 3, dtype=np.float64), rk.Linear(2, 3, dtype=np.float64),
              rk.Embedding(4, 3, dtype=np.float64)):
        assert isinstance(m, rk.Module)
        assert all(v.dtype == np.float64 for v in m.params.values())
    assert isinstance(rk.Dropout(0.1), rk.Module)
    assert rk.Recurrent("gru", 2, 3).params["weight_ih_l0"].dtype == np.float32


# -- Recurrent behaviour ---------------------------------------------------------------
def _x(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_end_to_end(cell):
    layer = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, seed=0)
    y, h_n = layer.forward(_x((T, B, I), np.float32))
    dx, dh0 = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32 and y.shape == (T, B, 2 * H)
    for s, ds in zip(h_n if cell == "lstm" else (h_n,), dh0 if cell == "lstm" else (dh0,)):
        assert s.shape == ds.shape == (4, B, H) and s.dtype == ds.dtype == np.float32
    assert all(g.dtype == np.float32 and np.abs(g).max() > 0 for g in layer.grads.values())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batch_first_is_a_transpose(cell):
    a = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    b = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64, seed=1)
    x, lengths = _x((T, B, I)), np.array([5, 3])
    ya, ha = a.forward(x, lengths=lengths)
    yb, hb = b.forward(x.swapaxes(0, 1).copy(), lengths=lengths)
    np.testing.assert_array_equal(yb, ya.swapaxes(0, 1))
    for s, t in zip(ha if cell == "lstm" else (ha,), hb if cell == "lstm" else (hb,)):
        np.testing.assert_array_equal(s, t)             # h_n is (L*D, B, H) either way
    dy = _x(ya.shape, seed=2)
    dxa, _ = a.backward(dy)
    dxb, _ = b.backward(dy.swapaxes(0, 1).copy())
    np.testing.assert_allclose(dxb, dxa.swapaxes(0, 1), rtol=1e-12)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_ragged_sequence_equals_running_it_alone(cell):
    """A short sequence in a padded batch gives what it gives alone, in both directions."""
    layer = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=2)
    x = _x((T, B, I))
    y, h_n = layer.forward(x, lengths=np.array([5, 2]))
    y1, h1 = layer.forward(x[:2, 1:2].copy())
    np.testing.assert_allclose(y[:2, 1:2], y1, rtol=1e-12)
    assert np.all(y[2:, 1] == 0)                           # padding outputs are zero
    for s, t in zip(h_n if cell == "lstm" else (h_n,), h1 if cell == "lstm" else (h1,)):
        np.testing.assert_allclose(s[:, 1:2], t, rtol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stack_equals_chained_single_layers(cell):
    """Layer l of the stack reads the [forward, reverse] outputs of layer l − 1."""
    stack = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    first = rk.Recurrent(cell, I, H, bidirectional=True, dtype=np.float64)
    second = rk.Recurrent(cell, 2 * H, H, bidirectional=True, dtype=np.float64)
    first.load_state_dict({k: v for k, v in stack.params.items() if "_l0" in k})
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in stack.params.items() if "_l1" in k})
    x, lengths = _x((T, B, I)), np.array([4, 5])
    y, h_n = stack.forward(x, lengths=lengths)
    y0, h0 = first.forward(x, lengths=lengths)
    y1, h1 = second.forward(y0, lengths=lengths)
    np.testing.assert_allclose(y, y1, rtol=1e-12)
    for s, a, b in zip(h_n if cell == "lstm" else (h_n,), h0 if cell == "lstm" else (h0,),
                       h1 if cell == "lstm" else (h1,)):
        np.testing.assert_allclose(s, np.concatenate([a, b]), rtol=1e-12)
    dy = _x(y.shape, seed=4)
    dx, _ = stack.backward(dy)
    dy0, _ = second.backward(dy)
    dx0, _ = first.backward(dy0)
    np.testing.assert_allclose(dx, dx0, rtol=1e-10)
    np.testing.assert_allclose(stack.grads["weight_hh_l0_reverse"], first.grads["weight_hh_l0_reverse"],
                               rtol=1e-10)
    np.testing.assert_allclose(stack.grads["weight_ih_l1"], second.grads["weight_ih_l0"], rtol=1e-10)


def test_hidden_grads_and_caches_per_layer_and_direction():
    layer = rk.Recurrent("rnn", I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x, lengths = _x((T, B, I)), np.array([5, 3])
    y, h_n = layer.forward(x, lengths=lengths)
    assert len(layer.caches) == 2 and all(len(c) == 2 for c in layer.caches)
    np.testing.assert_array_equal(layer.caches[0][0].x, x)
    dy, dh_n = _x(y.shape, seed=1), _x(h_n.shape, seed=2)
    layer.backward(dy, dh_n)
    assert len(layer.hidden_grads) == 2
    for b, n in enumerate(lengths):
        # the last valid step of each direction gets dy there plus dh_n, nothing from later steps
        fwd, rev = layer.hidden_grads[1]
        np.testing.assert_allclose(fwd[n - 1, b], dy[n - 1, b, :H] + dh_n[2, b], rtol=1e-12)
        np.testing.assert_allclose(rev[0, b], dy[0, b, H:] + dh_n[3, b], rtol=1e-12)
        assert fwd.shape == rev.shape == (T, B, H)


def test_inter_layer_dropout_masks_the_input_of_upper_layers_only():
    p = 0.5
    layer = rk.Recurrent("gru", I, 8, num_layers=3, dropout=p, dtype=np.float64, seed=0)
    x = _x((T, 16, I))
    y_train, _ = layer.forward(x)
    for upper in (1, 2):
        below = layer.caches[upper - 1][0].h[1:]            # outputs of the layer below (T, B, H)
        seen = layer.caches[upper][0].x                     # what the upper layer read
        kept = seen != 0
        np.testing.assert_allclose(seen[kept], below[kept] / (1 - p), rtol=1e-12)
        assert 0.35 < 1 - kept.mean() < 0.65
    np.testing.assert_array_equal(layer.caches[0][0].x, x)  # no dropout on the input itself
    assert not np.all(layer.caches[1][0].x == layer.caches[2][0].x)
    # eval mode: no dropout at all
    layer.eval()
    y_eval, _ = layer.forward(x)
    plain = rk.Recurrent("gru", I, 8, num_layers=3, dtype=np.float64)
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(y_eval, plain.forward(x)[0])
    assert not np.allclose(y_train, y_eval)


def test_dropout_is_not_applied_after_the_last_layer():
    layer = rk.Recurrent("lstm", I, H, dropout=0.5, dtype=np.float64, seed=0)
    x = _x((T, B, I))
    y_train, _ = layer.forward(x)
    np.testing.assert_array_equal(y_train, layer.eval().forward(x)[0])


def test_inter_layer_dropout_is_seeded():
    x = _x((T, B, I))
    ys = [rk.Recurrent("rnn", I, H, num_layers=2, dropout=0.5, dtype=np.float64, seed=s).forward(x)[0]
          for s in (4, 4, 5)]
    np.testing.assert_array_equal(ys[0], ys[1])
    assert not np.allclose(ys[0], ys[2])


def test_inputs_are_not_mutated():
    layer = rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True, batch_first=True,
                         dtype=np.float64, seed=0)
    x, h0, c0 = _x((B, T, I)), _x((4, B, H), seed=1), _x((4, B, H), seed=2)
    dy, dh, dc = _x((B, T, 2 * H), seed=3), _x((4, B, H), seed=4), _x((4, B, H), seed=5)
    lengths = np.array([2, 5])
    copies = [a.copy() for a in (x, h0, c0, dy, dh, dc, lengths)]
    layer.forward(x, (h0, c0), lengths)
    layer.backward(dy, (dh, dc))
    for a, c in zip((x, h0, c0, dy, dh, dc, lengths), copies):
        np.testing.assert_array_equal(a, c)


def test_lstm_final_state_gradient_may_be_partial():
    layer = rk.Recurrent("lstm", I, H, dtype=np.float64, seed=0)
    x, dh = _x((T, B, I)), _x((1, B, H), seed=1)
    layer.forward(x)
    dx_h, _ = layer.backward(None, (dh, None))
    layer.forward(x)
    dx_full, _ = layer.backward(np.zeros((T, B, H)), (dh, np.zeros((1, B, H))))
    np.testing.assert_allclose(dx_h, dx_full, rtol=1e-12)
    assert np.abs(dx_h).max() > 0


def test_state_dict_round_trip_and_config():
    a = rk.Recurrent("gru", I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    b = rk.Recurrent(**a.config(), seed=1)
    x = _x((T, B, I))
    assert not np.allclose(a.forward(x)[0], b.forward(x)[0])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])
    sd = a.state_dict()
    sd["weight_ih_l0"][...] = 0                          # a copy: the layer is untouched
    assert np.abs(a.params["weight_ih_l0"]).max() > 0


def test_backward_before_forward_is_an_error():
    for layer, dy in ((rk.Recurrent("rnn", I, H), np.zeros((T, B, H), np.float32)),
                      (rk.Linear(I, H), np.zeros((B, H), np.float32)),
                      (rk.Embedding(5, H), np.zeros((B, H), np.float32)),
                      (rk.Dropout(0.5), np.zeros((B, H), np.float32))):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(dy)


# -- Linear, Embedding, Dropout behaviour ----------------------------------------------
def test_linear_forward_any_leading_shape():
    layer = rk.Linear(3, 2, dtype=np.float64, seed=0)
    W, b = layer.params["weight"], layer.params["bias"]
    for shape in ((3,), (4, 3), (2, 4, 3)):
        x = _x(shape)
        y = layer.forward(x)
        assert y.shape == shape[:-1] + (2,)
        np.testing.assert_allclose(y, np.einsum("oi,...i->...o", W, x) + b, rtol=1e-12)
    assert np.all(np.abs(W) <= 1 / np.sqrt(3))
    dx = layer.backward(np.ones((2, 4, 2)))
    assert dx.shape == (2, 4, 3)


def test_embedding_lookup():
    layer = rk.Embedding(5, 3, dtype=np.float64, seed=0)
    ids = np.array([[4, 0], [4, 2]])
    y = layer.forward(ids)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y[0, 0], layer.params["weight"][4])
    y[...] = 0                                           # the output is a copy of the rows
    assert np.abs(layer.params["weight"][4]).max() > 0
    assert layer.forward([1, 2]).shape == (2, 3)         # lists of ints are fine


def test_dropout_train_scaling_and_eval_identity():
    p = 0.3
    layer = rk.Dropout(p, seed=0)
    x = np.ones((200, 500))
    y = layer.forward(x)
    assert set(np.unique(y)) == {0.0, 1 / (1 - p)}
    assert abs((y == 0).mean() - p) < 0.01
    assert abs(y.mean() - 1.0) < 0.01                   # inverted dropout keeps the expectation
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2.0 * y)           # the same mask as forward
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 2.0)), 2.0)
    assert rk.Dropout(0.0, seed=0).forward(x) is x       # p = 0: identity also in training
    x32 = np.ones((3, 3), np.float32)
    assert rk.Dropout(0.5, seed=0).forward(x32).dtype == np.float32


def test_dropout_is_seeded():
    x = np.ones((10, 10))
    a, b, c = rk.Dropout(0.5, seed=1), rk.Dropout(0.5, seed=1), rk.Dropout(0.5, seed=2)
    ya = a.forward(x)
    np.testing.assert_array_equal(ya, b.forward(x))
    assert not np.array_equal(ya, c.forward(x))
    assert not np.array_equal(ya, a.forward(x))          # a new mask on every call


# -- bad input -------------------------------------------------------------------------
def lstm():
    return rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True)


def rnn(**kw):
    return rk.Recurrent("rnn", I, H, **kw)


X32 = np.zeros((T, B, I), np.float32)
H32 = np.zeros((1, B, H), np.float32)
NAN_X = X32.copy()
NAN_X[1, 0, 2] = np.nan
INF_X = X32.copy()
INF_X[0, 1, 0] = -np.inf


@pytest.mark.parametrize("call,exc,match", [
    (lambda: rnn().forward(np.zeros((T, I), np.float32)), ValueError, r"expected x with 3 dims \(T, B, I\), got 2"),
    (lambda: rnn(batch_first=True).forward(np.zeros((T, I), np.float32)), ValueError, r"3 dims \(B, T, I\)"),
    (lambda: rnn().forward(np.zeros((T, B, 5), np.float32)), ValueError, "input_size = 3.*got \\(5, 2, 5\\)"),
    (lambda: rnn().forward(np.zeros((0, B, I), np.float32)), ValueError, "at least one time step"),
    (lambda: rnn().forward(np.zeros((T, B, I), np.int64)), TypeError, "x to hold floats.*int64"),
    (lambda: rnn().forward(np.zeros((T, B, I), object)), TypeError, "x to hold floats.*object"),
    (lambda: rnn().forward(np.zeros((T, B, I), bool)), TypeError, "x to hold floats.*bool"),
    (lambda: rnn().forward("x"), TypeError, "expected x to be a numpy array"),
    (lambda: rnn().forward(np.zeros((T, B, I))), TypeError, "x of dtype float32 .*got float64"),
    (lambda: rnn().forward(NAN_X), ValueError, "x contains NaN or inf"),
    (lambda: rnn().forward(INF_X), ValueError, "x contains NaN or inf"),
    (lambda: rnn().forward(X32, np.zeros((2, B, H), np.float32)), ValueError, r"h0 .*shape \(1, 2, 4\), got \(2, 2, 4\)"),
    (lambda: rnn().forward(X32, np.zeros((B, H), np.float32)), ValueError, r"expected h0 with 3 dims \(L\*D, B, H\)"),
    (lambda: rnn().forward(X32, np.zeros((1, B, H))), TypeError, "h0 of dtype float32"),
    (lambda: rnn().forward(X32, (H32, H32)), TypeError, "only LSTM takes an \\(h, c\\) pair"),
    (lambda: rnn().forward(X32, np.full((1, B, H), np.nan, np.float32)), ValueError, "h0 contains NaN"),
    (lambda: lstm().forward(X32, np.zeros((4, B, H), np.float32)), TypeError, r"h0 to be a pair \(h, c\)"),
    (lambda: lstm().forward(X32, (np.zeros((4, B, H), np.float32), None)), TypeError, r"h0\[1\] \(c\)"),
    (lambda: lstm().forward(X32, (np.zeros((4, B, H), np.float32), np.zeros((4, 3, H), np.float32))),
     ValueError, r"h0\[1\] \(c\).*shape \(4, 2, 4\), got \(4, 3, 4\)"),
    (lambda: rnn().forward(X32, lengths=[6, 2]), ValueError, r"lengths must lie in \[1, T=5\].*max 6"),
    (lambda: rnn().forward(X32, lengths=[0, 2]), ValueError, r"lengths must lie in \[1, T=5\].*min 0"),
    (lambda: rnn().forward(X32, lengths=[2, 2, 2]), ValueError, r"lengths of shape \(2,\)"),
    (lambda: rnn().forward(X32, lengths=[2.5, 2]), TypeError, "lengths to be integers"),
    (lambda: rk.Recurrent("transformer", I, H), ValueError, "cell must be one of 'rnn', 'lstm', 'gru'"),
    (lambda: rnn(nonlinearity="sigmoid"), ValueError, "nonlinearity must be one of 'tanh', 'relu'"),
    (lambda: rk.Recurrent("gru", I, H, nonlinearity="relu"), ValueError, "nonlinearity applies to cells 'rnn', 'indrnn' only"),
    (lambda: rnn(dropout=1.0), ValueError, r"dropout must lie in \[0, 1\), got 1.0"),
    (lambda: rnn(dropout=-0.1), ValueError, r"dropout must lie in \[0, 1\)"),
    (lambda: rnn(dropout="0.5"), TypeError, "dropout must be a number"),
    (lambda: rk.Recurrent("rnn", 0, H), ValueError, "input_size must be >= 1"),
    (lambda: rk.Recurrent("rnn", I, 2.5), TypeError, "hidden_size must be an integer"),
    (lambda: rnn(num_layers=0), ValueError, "num_layers must be >= 1"),
    (lambda: rnn(bias="yes"), TypeError, "bias must be True or False"),
    (lambda: rnn(bidirectional=1), TypeError, "bidirectional must be True or False"),
    (lambda: rnn(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: rk.Linear(3, 2).forward(np.zeros((4, 5), np.float32)), ValueError, r"shape \(\.\.\., 3\).*got \(4, 5\)"),
    (lambda: rk.Linear(3, 2).forward(np.zeros((4, 3), np.int32)), TypeError, "x to hold floats"),
    (lambda: rk.Linear(3, 2).forward(np.zeros((4, 3))), TypeError, "x of dtype float32"),
    (lambda: rk.Linear(3, 2).forward(np.full((4, 3), np.inf, np.float32)), ValueError, "NaN or inf"),
    (lambda: rk.Linear(0, 2), ValueError, "in_features must be >= 1"),
    (lambda: rk.Embedding(5, 3).forward(np.array([0.0, 1.0])), TypeError, "ids to be integers, got dtype float64"),
    (lambda: rk.Embedding(5, 3).forward(np.array([0, 5])), ValueError, r"ids must lie in \[0, num_embeddings=5\)"),
    (lambda: rk.Embedding(5, 3).forward(np.array([-1, 2])), ValueError, "min -1"),
    (lambda: rk.Dropout(1.0), ValueError, r"p must lie in \[0, 1\)"),
    (lambda: rk.Dropout(None), TypeError, "p must be a number"),
    (lambda: rk.Dropout(0.5).forward(np.zeros(3, np.int64)), TypeError, "x to hold floats"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_backward_arguments():
    layer = rk.Recurrent("lstm", I, H)
    y, _ = layer.forward(X32)
    with pytest.raises(ValueError, match=r"dy \(the shape of y\) of shape \(5, 2, 4\), got \(5, 2, 3\)"):
        layer.backward(np.zeros((T, B, 3), np.float32))
    with pytest.raises(TypeError, match="dy of dtype float32"):
        layer.backward(np.zeros((T, B, H)))
    with pytest.raises(ValueError, match=r"dh_n\[0\] \(h\).*shape \(1, 2, 4\)"):
        layer.backward(y, (np.zeros((2, B, H), np.float32), None))
    lin = rk.Linear(3, 2)
    lin.forward(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy of shape \(4, 2\), got \(4, 3\)"):
        lin.backward(np.zeros((4, 3), np.float32))
    emb = rk.Embedding(5, 3)
    emb.forward(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"dy of shape \(2, 3\)"):
        emb.backward(np.zeros((3, 3), np.float32))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("fast_path", ["compiled", "numpy"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_grad_forward_equals_forward_and_keeps_no_cache(cell, fast_path, bidirectional, monkeypatch):
    if fast_path == "numpy":
        monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    layer = rk.Recurrent(cell, 3, 5, num_layers=2, bidirectional=bidirectional, dtype=np.float64,
                         seed=1, nonlinearity="relu" if cell == "rnn" else "tanh")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4, 3))
    lengths = np.array([6, 2, 5, 1])
    shape = (4 if bidirectional else 2, 4, 5)
    h0 = (rng.normal(size=shape), rng.normal(size=shape)) if cell == "lstm" else rng.normal(size=shape)
    want_y, want_h = layer.forward(x, h0, lengths)
    assert rk.is_grad_enabled()
    with rk.no_grad():
        assert not rk.is_grad_enabled()
        y, h = layer.forward(x, h0, lengths)
    assert rk.is_grad_enabled()
    np.testing.assert_allclose(y, want_y, rtol=0, atol=1e-12)
    for a, b in zip(h if cell == "lstm" else (h,), want_h if cell == "lstm" else (want_h,)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert layer.caches == []
    with pytest.raises(RuntimeError, match="no_grad"):     # not the earlier forward's cache
        layer.backward(np.ones_like(y))


def test_no_grad_nests_restores_on_errors_and_is_per_thread():
    import threading
    seen = {}
    with rk.no_grad():
        with rk.no_grad():
            pass
        assert not rk.is_grad_enabled()                # the inner block restored False
        thread = threading.Thread(target=lambda: seen.update(other=rk.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen["other"] is True and rk.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with rk.no_grad():
            1 / 0
    assert rk.is_grad_enabled()

    @rk.no_grad()
    def predict():
        return rk.is_grad_enabled()
    assert predict() is False and rk.is_grad_enabled()


@pytest.mark.parametrize("change", ["non-contiguous weight", "no bias", "dropout in training", "float32"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_grad_forward_when_the_direct_path_does_not_apply(cell, change):
    # rnnkit.no_grad() runs unidirectional stacks straight through the compiled loops;
    # arrays the kernels cannot read as they are, no bias, training-mode dropout and
    # float32 must give the same results as a forward with caches
    dtype = np.float32 if change == "float32" else np.float64
    layer = rk.Recurrent(cell, 3, 5, num_layers=2, dtype=dtype, seed=2, bias=change != "no bias",
                         dropout=0.5 if change == "dropout in training" else 0.0)
    if change == "non-contiguous weight":
        w = layer.params["weight_hh_l1"]
        layer.params["weight_hh_l1"] = np.asfortranarray(w)          # same values, other layout
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 2, 3)).astype(dtype)
    if change != "dropout in training":
        layer.eval()
    layer._dropout_rng = np.random.default_rng(0)
    want_y, want_h = layer.forward(x, lengths=np.array([7, 3]))
    layer._dropout_rng = np.random.default_rng(0)
    with rk.no_grad():
        y, h = layer.forward(x, lengths=np.array([7, 3]))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want_y, rtol=0, atol=tol)
    for a, b in zip(h if cell == "lstm" else (h,), want_h if cell == "lstm" else (want_h,)):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_generation_steps_follow_the_weights_of_this_layer(cell):
    # the step path keeps the weights' addresses: new values loaded in place must be
    # used, and a deep copy (new arrays) must read its own, also once the original is gone
    import copy
    import gc

    def step_and_forward(layer, x):
        with rk.no_grad():
            y, _ = layer.forward(x)
        want, _ = layer.forward(x)
        return y, want

    rng = np.random.default_rng(8)
    layer = rk.Recurrent(cell, 3, 5, num_layers=2, dtype=np.float64, seed=1)
    x = rng.normal(size=(1, 1, 3))
    y0, want0 = step_and_forward(layer, x)
    np.testing.assert_allclose(y0, want0, rtol=0, atol=1e-12)
    layer.load_state_dict({k: rng.normal(size=v.shape) for k, v in layer.params.items()})
    y1, want1 = step_and_forward(layer, x)
    np.testing.assert_allclose(y1, want1, rtol=0, atol=1e-12)
    assert not np.allclose(y1, y0)
    twin = copy.deepcopy(layer)
    del layer
    gc.collect()
    junk = [np.full((5 * 4, 5), 1e3) for _ in range(50)]      # reuse the freed memory
    y2, want2 = step_and_forward(twin, x)
    np.testing.assert_allclose(y2, want2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(y2, y1, rtol=0, atol=1e-12)
    del junk


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,nl", [("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_generation_steps_on_several_threads_give_the_same_bits(cell, nl, dtype):
    # the stack's channels split among threads (a ragged last share: H = 40 is not whole
    # vectors of float32), one barrier per step: the same bits as on one thread
    from rnnkit import fast

    if not fast.available():
        pytest.skip("needs the compiled loops")
    layer = rk.Recurrent(cell, 5, 40, num_layers=3, nonlinearity=nl, dtype=dtype, seed=6)
    rng = np.random.default_rng(7)
    flops, threads = fast.set_flops_per_thread(0), fast.set_max_threads(3)
    try:
        for T, B in ((1, 1), (3, 1), (1, 3)):
            x = rng.normal(size=(T, B, 5)).astype(dtype)
            shape = (3, B, 40)
            h0 = tuple(rng.normal(size=shape).astype(dtype) for _ in range(2)) if cell == "lstm" else \
                rng.normal(size=shape).astype(dtype)
            fast.set_max_threads(3)
            with rk.no_grad():
                y_many, h_many = layer.forward(x, h0)
            fast.set_max_threads(1)
            with rk.no_grad():
                y_one, h_one = layer.forward(x, h0)
            want_y, _ = layer.forward(x, h0)
            np.testing.assert_array_equal(y_many, y_one)
            for a, b in zip(h_many if cell == "lstm" else (h_many,), h_one if cell == "lstm" else (h_one,)):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(y_many, want_y, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("cell,nl", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_generation_steps_under_no_grad_equal_forward(cell, nl, bias):
    # T·B < 4 runs the whole stack in one C call: step by step, with the state
    # carried, it must give what forward with caches gives
    layer = rk.Recurrent(cell, 3, 6, num_layers=3, nonlinearity=nl, bias=bias, dtype=np.float64, seed=4)
    rng = np.random.default_rng(5)
    for T, B in ((1, 1), (1, 3), (3, 1)):
        x = rng.normal(size=(T, B, 3))
        shape = (3, B, 6)
        h0 = (rng.normal(size=shape), rng.normal(size=shape)) if cell == "lstm" else rng.normal(size=shape)
        for start in (None, h0):
            want_y, want_h = layer.forward(x, start)
            with rk.no_grad():
                y, h = layer.forward(x, start)
            np.testing.assert_allclose(y, want_y, rtol=0, atol=1e-12)
            for a, b in zip(h if cell == "lstm" else (h,), want_h if cell == "lstm" else (want_h,)):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    if cell == "lstm":                     # the caller's state is not written
        before = [a.copy() for a in h0]
        with rk.no_grad():
            layer.forward(rng.normal(size=(1, B, 3)), h0)
        assert all(np.array_equal(a, b) for a, b in zip(h0, before))
