"""Initialisation schemes: reproducible, with the distributions and structure they promise."""

import math

import numpy as np
import pytest

import rnnkit as rk


def test_same_seed_same_weights_other_seed_other_weights():
    a = rk.Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=5)
    b = rk.Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=5)
    c = rk.Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=6)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
        assert not np.array_equal(a.params[k], c.params[k]), k
    for cls, args in ((rk.Linear, (3, 4)), (rk.Embedding, (7, 3))):
        np.testing.assert_array_equal(cls(*args, seed=1).params["weight"], cls(*args, seed=1).params["weight"])
        assert not np.array_equal(cls(*args, seed=1).params["weight"], cls(*args, seed=2).params["weight"])


def test_float32_weights_are_the_float64_weights_rounded():
    a = rk.Recurrent("gru", 3, 4, dtype=np.float64, seed=2, init="xavier_orthogonal")
    b = rk.Recurrent("gru", 3, 4, dtype=np.float32, seed=2, init="xavier_orthogonal")
    for k in a.params:
        assert b.params[k].dtype == np.float32
        np.testing.assert_array_equal(b.params[k], a.params[k].astype(np.float32), err_msg=k)


def test_default_is_pytorch_uniform_for_every_weight_and_bias():
    H = 16
    layer = rk.Recurrent("lstm", 5, H, num_layers=2, dtype=np.float64, seed=0)
    bound = 1 / math.sqrt(H)
    for k, v in layer.params.items():
        assert np.all(np.abs(v) <= bound), k
        # a uniform sample fills its interval: the extremes come close to ±bound
        assert v.max() > 0.8 * bound and v.min() < -0.8 * bound, k


def test_xavier_orthogonal_blocks():
    I, H = 6, 5
    layer = rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=1,
                         init="xavier_orthogonal", init_gain=1.5)
    for k, v in layer.params.items():
        if k.startswith("weight_hh"):
            for g in range(4):                       # each gate block is 1.5 × an orthogonal matrix
                block = v[g * H:(g + 1) * H]         # (H, H)
                np.testing.assert_allclose(block @ block.T, 2.25 * np.eye(H), atol=1e-12, err_msg=k)
            assert not np.allclose(v[:H], v[H:2 * H])  # blocks are drawn independently
        elif k.startswith("weight_ih"):
            fan_in = I if "_l0" in k else 2 * H
            assert np.all(np.abs(v) <= math.sqrt(6 / (fan_in + H))), k
        else:
            assert np.all(v == 0), k


def test_orthogonal_rectangular_and_gain():
    rng = np.random.default_rng(0)
    tall = rk.init.orthogonal(rng, 7, 3, gain=2.0)
    wide = rk.init.orthogonal(rng, 3, 7)
    np.testing.assert_allclose(tall.T @ tall, 4 * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)


def test_orthogonal_is_sign_corrected_haar():
    """Without the sign fix, QR's diag(R) > 0 convention biases the diagonal of Q."""
    rng = np.random.default_rng(1)
    diag = np.array([rk.init.orthogonal(rng, 2, 2)[0, 0] for _ in range(2000)])
    assert abs(diag.mean()) < 0.05         # Haar: E[Q_00] = 0


def test_irnn_is_identity_with_zero_biases():
    layer = rk.Recurrent("rnn", 3, 4, num_layers=2, nonlinearity="relu", init="irnn", init_gain=0.9,
                         dtype=np.float64, seed=0)
    for k, v in layer.params.items():
        if k.startswith("weight_hh"):
            np.testing.assert_array_equal(v, 0.9 * np.eye(4))
        elif k.startswith("bias"):
            assert np.all(v == 0), k
        else:
            assert np.abs(v).max() > 0, k
    # with zero input the state is carried, scaled by the gain, step after step
    h0 = np.abs(np.random.default_rng(0).standard_normal((2, 1, 4)))
    _, h_n = layer.forward(np.zeros((3, 1, 3)), h0)
    np.testing.assert_allclose(h_n[0], 0.9 ** 3 * h0[0])


@pytest.mark.parametrize("init", ["default", "xavier_orthogonal"])
def test_forget_bias(init):
    H = 3
    layer = rk.Recurrent("lstm", 2, H, num_layers=2, bidirectional=True, init=init, forget_bias=1.0,
                         dtype=np.float64, seed=0)
    for k, v in layer.params.items():
        if k.startswith("bias_ih"):
            np.testing.assert_array_equal(v[H:2 * H], 1.0)
        if k.startswith("bias_hh"):
            np.testing.assert_array_equal(v[H:2 * H], 0.0)
    # the other gates keep their scheme's biases
    assert np.any(layer.params["bias_ih_l0"][:H] != 0) == (init == "default")


def test_init_draws_do_not_depend_on_dropout():
    a = rk.Recurrent("rnn", 3, 4, num_layers=2, dropout=0.5, seed=3)
    b = rk.Recurrent("rnn", 3, 4, num_layers=2, dropout=0.0, seed=3)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_param_names_order_is_pytorchs():
    assert rk.init.param_names(2, True, False) == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse"]
    layer = rk.Recurrent("gru", 2, 3, num_layers=2, bidirectional=True)
    assert list(layer.params) == rk.init.param_names(2, True, True)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(init="glorot"), ValueError, "init must be one of"),
    (dict(init="irnn"), ValueError, "cell='rnn' and nonlinearity='relu'"),
    (dict(cell="lstm", init="irnn"), ValueError, "init='irnn'"),
    (dict(cell="gru", forget_bias=1.0), ValueError, "forget_bias sets the LSTM forget gate"),
    (dict(cell="lstm", forget_bias=1.0, bias=False), ValueError, "forget_bias needs bias=True"),
    (dict(cell="lstm", forget_bias="1"), TypeError, "forget_bias must be None or a number"),
    (dict(cell="lstm", forget_bias=float("nan")), ValueError, "forget_bias must be finite"),
    (dict(init="xavier_orthogonal", init_gain=0.0), ValueError, "init_gain must be > 0, got 0.0"),
    (dict(init="xavier_orthogonal", init_gain=None), TypeError, "init_gain must be a number"),
    (dict(init_gain=2.0), ValueError, "init='default' takes none"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(seed=1.5), TypeError, "seed must be None or an integer"),
])
def test_bad_init_arguments(kwargs, exc, match):
    kw = dict(cell="rnn", input_size=3, hidden_size=4)
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        rk.Recurrent(**kw)
