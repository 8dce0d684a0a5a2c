"""Gradient flow diagnostics: analytic cases, finite differences, saturation, clipping,
the experiment and its files."""

import json

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.cells import CELLS
from rnnkit.diagnostics import gradflow as gf
from rnnkit.models import SequenceRegressor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


def _rnn_params_scaled_identity(a, I, H, rng):
    return {"weight_ih": rng.standard_normal((H, I)), "weight_hh": a * np.eye(H)}


# -- the analytic case: W_hh = a·I at the origin --------------------------------------

@pytest.mark.parametrize("a", [0.8, 1.15])
def test_jacobian_products_of_scaled_identity_are_powers(a):
    # zero input and zero h0 keep every pre-activation at exactly 0, where tanh' = 1,
    # so J_s = a·I and ∂h_T/∂h_t = a^(T−t)·I
    rng = np.random.default_rng(0)
    T, B, I, H = 15, 2, 3, 4
    params = _rnn_params_scaled_identity(a, I, H, rng)
    x = np.zeros((T, B, I))
    P = gf.jacobian_products("rnn", params, x)
    assert P.shape == (T + 1, B, H, H)
    expected = np.array([a ** (T - t) for t in range(T + 1)])
    np.testing.assert_allclose(P, np.broadcast_to(expected[:, None, None, None] * np.eye(H), P.shape),
                               rtol=1e-10, atol=0)
    spectral = gf.jacobian_norms("rnn", params, x, norm="spectral")
    np.testing.assert_allclose(spectral, expected, rtol=1e-10, atol=0)
    fro = gf.jacobian_norms("rnn", params, x, norm="fro")
    np.testing.assert_allclose(fro, expected * np.sqrt(H), rtol=1e-10, atol=0)


def test_hidden_grad_norms_of_scaled_identity_recurrent():
    a, T, B, I, H = 0.9, 12, 3, 2, 5
    layer = rk.Recurrent("rnn", I, H, bias=False, dtype=np.float64, seed=1)
    np.copyto(layer.params["weight_hh_l0"], a * np.eye(H))
    norms = gf.hidden_grad_norms(layer, np.zeros((T, B, I)), seed=3)   # random unit ∂L/∂h_T
    assert norms.shape == (1, T + 1)
    np.testing.assert_allclose(norms[0], [a ** (T - t) for t in range(T + 1)], rtol=1e-10)


# -- finite differences ---------------------------------------------------------------

def _cell_run(kind, nl, params, x, state):
    kwargs = {"nonlinearity": nl} if kind == "rnn" else {}
    return CELLS[kind].forward(params, x, state, **kwargs)


def _stack_forward(kind, nl, layer_params, x, h0s):
    """Per-layer outputs and caches of a unidirectional stack, run with the cells directly."""
    outs, caches, inp = [], [], x
    for params, h0 in zip(layer_params, h0s):
        out, _, cache = _cell_run(kind, nl, params, inp, h0)
        outs.append(out)
        caches.append(cache)
        inp = out
    return outs, caches


def _state_at(kind, cache, k, dh=None):
    h = cache.h[k] if dh is None else cache.h[k] + dh
    return (h, cache.c[k]) if kind == "lstm" else h


def _perturbed_top(kind, nl, layer_params, outs, caches, layer, t, dh):
    """The top layer's outputs after adding ``dh`` to state index t of ``layer`` and
    rerunning everything it feeds (hₜ is also the output of step t, read by the layer above)."""
    T = outs[0].shape[0]
    new = outs[layer].copy()
    if t >= 1:
        new[t - 1] += dh
    if t < T:
        x_l = caches[layer].x
        new[t:] = _cell_run(kind, nl, layer_params[layer], x_l[t:], _state_at(kind, caches[layer], t, dh))[0]
    k = max(t - 1, 0)                         # the first output that changed
    for up in range(layer + 1, len(layer_params)):
        above = outs[up].copy()
        above[k:] = _cell_run(kind, nl, layer_params[up], new[k:], _state_at(kind, caches[up], k))[0]
        new = above
    return new


@pytest.mark.parametrize("kind,nl", KINDS)
def test_hidden_gradients_match_finite_differences(kind, nl):
    rng = np.random.default_rng(7)
    T, B, I, H, L = 5, 2, 3, 4, 2
    layer = rk.Recurrent(kind, I, H, num_layers=L, nonlinearity=nl, dtype=np.float64, seed=2)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((L, B, H)) * 0.5
    h0 = (h0, rng.standard_normal((L, B, H)) * 0.5) if kind == "lstm" else h0
    d_last = rng.standard_normal((B, H))
    grads = gf.hidden_gradients(layer, x, d_last=d_last, h0=h0)
    assert [g.shape for g in grads] == [(T + 1, B, H)] * L

    layer_params = [gf.cell_params(layer, i) for i in range(L)]
    h0s = [(h0[0][i], h0[1][i]) if kind == "lstm" else h0[i] for i in range(L)]
    outs, caches = _stack_forward(kind, nl, layer_params, x, h0s)
    eps = 1e-6
    for li in range(L):
        fd = np.zeros((T + 1, B, H))
        for t in range(T + 1):
            for b in range(B):
                for j in range(H):
                    dh = np.zeros((B, H))
                    dh[b, j] = eps
                    up = _perturbed_top(kind, nl, layer_params, outs, caches, li, t, dh)
                    down = _perturbed_top(kind, nl, layer_params, outs, caches, li, t, -dh)
                    fd[t, b, j] = np.sum(d_last * (up[-1] - down[-1])) / (2 * eps)
        err = np.max(np.abs(grads[li] - fd)) / np.max(np.abs(fd))
        assert err < 1e-7, f"layer {li}: relative error {err:.2e}"


@pytest.mark.parametrize("kind,nl", KINDS)
def test_jacobian_products_match_finite_differences(kind, nl):
    rng = np.random.default_rng(11)
    T, B, I, H = 5, 2, 3, 4
    layer = rk.Recurrent(kind, I, H, nonlinearity=nl, dtype=np.float64, seed=5)
    params = gf.cell_params(layer)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H)) * 0.5
    h0 = (h0, rng.standard_normal((B, H)) * 0.5) if kind == "lstm" else h0
    P = gf.jacobian_products(kind, params, x, h0=h0, nonlinearity=nl)
    outs, caches = _stack_forward(kind, nl, [params], x, [h0])
    eps = 1e-6
    fd = np.zeros_like(P)
    for t in range(T + 1):
        for j in range(H):
            dh = np.zeros((B, H))
            dh[:, j] = eps                    # every example at once: they do not interact
            up = _perturbed_top(kind, nl, [params], outs, caches, 0, t, dh)[-1]
            down = _perturbed_top(kind, nl, [params], outs, caches, 0, t, -dh)[-1]
            fd[t, :, :, j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(P[T], np.broadcast_to(np.eye(H), (B, H, H)), atol=1e-12)
    assert np.max(np.abs(P - fd)) / np.max(np.abs(fd)) < 1e-7
    norms = gf.jacobian_norms(kind, params, x, h0=h0, nonlinearity=nl)
    manual = np.mean([[np.linalg.norm(fd[t, b], 2) for b in range(B)] for t in range(T + 1)], axis=1)
    np.testing.assert_allclose(norms, manual, rtol=1e-6)


def test_recurrent_jacobian_norms_per_layer_use_the_layer_inputs():
    rng = np.random.default_rng(3)
    layer = rk.Recurrent("gru", 3, 4, num_layers=2, dtype=np.float64, seed=8)
    x = rng.standard_normal((6, 2, 3))
    norms = gf.recurrent_jacobian_norms(layer, x, norm="fro")
    assert norms.shape == (2, 7)
    y0, _, _ = CELLS["gru"].forward(gf.cell_params(layer, 0), x)
    expected_top = gf.jacobian_norms("gru", gf.cell_params(layer, 1), y0, norm="fro")
    np.testing.assert_allclose(norms[1], expected_top, rtol=1e-12)
    np.testing.assert_allclose(norms[0], gf.jacobian_norms("gru", gf.cell_params(layer, 0), x, norm="fro"),
                               rtol=1e-12)


def test_tanh_rnn_gradient_respects_the_spectral_norm_bound():
    # ‖∂L/∂h_t‖ ≤ ‖W_hh‖₂^(T−t) ‖∂L/∂h_T‖ since |tanh'| ≤ 1, per example
    rng = np.random.default_rng(4)
    T, B, H = 20, 3, 6
    layer = rk.Recurrent("rnn", 2, H, dtype=np.float64, seed=4)
    dh = gf.hidden_gradients(layer, rng.standard_normal((T, B, 2)), seed=1)[0]
    w = np.linalg.norm(layer.params["weight_hh_l0"], 2)
    per = np.linalg.norm(dh, axis=2)                             # (T+1, B)
    bound = w ** (T - np.arange(T + 1))[:, None] * per[T]
    assert np.all(per <= bound * (1 + 1e-12))
    assert per[0].max() < per[T].max()                          # it did shrink


def test_hidden_gradients_with_mse_target_and_layer_left_as_it_was():
    rng = np.random.default_rng(5)
    layer = rk.Recurrent("lstm", 2, 3, dtype=np.float64, seed=0, dropout=0.0)
    layer.train()
    before = {k: g.copy() for k, g in layer.grads.items()}
    x = rng.standard_normal((4, 2, 2))
    target = rng.standard_normal((2, 3))
    dh = gf.hidden_gradients(layer, x, target=target)[0]
    y, _ = layer.forward(x)
    np.testing.assert_allclose(dh[-1], 2 * (y[-1] - target) / target.size, rtol=1e-12)   # mse's gradient
    assert layer.training
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, before[k])


def test_hidden_gradients_of_a_ready_model_use_its_recurrent_layer():
    model = SequenceRegressor(output_size=1, cell="lstm", hidden_size=4, input_size=3, dtype="float64", seed=0)
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    d = np.ones((2, 4))
    np.testing.assert_array_equal(gf.hidden_grad_norms(model, x, d_last=d),
                                  gf.hidden_grad_norms(model.rnn, x, d_last=d))
    with pytest.raises(TypeError, match="Recurrent"):
        gf.hidden_grad_norms(rk.Linear(3, 4), x)


def test_hidden_gradients_batch_first_matches_time_major():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 2, 3))
    a = rk.Recurrent("gru", 3, 4, dtype=np.float64, seed=1)
    b = rk.Recurrent("gru", 3, 4, dtype=np.float64, seed=1, batch_first=True)
    d = rng.standard_normal((2, 4))
    np.testing.assert_allclose(gf.hidden_gradients(a, x, d_last=d)[0],
                               gf.hidden_gradients(b, x.swapaxes(0, 1), d_last=d)[0], rtol=1e-12)


def test_gradient_flow_errors_are_clear():
    layer = rk.Recurrent("rnn", 2, 3, bidirectional=True, dtype=np.float64)
    with pytest.raises(ValueError, match="bidirectional"):
        gf.hidden_grad_norms(layer, np.zeros((3, 1, 2)))
    uni = rk.Recurrent("rnn", 2, 3, dtype=np.float64)
    with pytest.raises(ValueError, match="d_last or target"):
        gf.hidden_gradients(uni, np.zeros((3, 1, 2)), d_last=np.zeros((1, 3)), target=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="d_last of shape"):
        gf.hidden_gradients(uni, np.zeros((3, 1, 2)), d_last=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cell"):
        gf.jacobian_products("transformer", gf.cell_params(uni), np.zeros((3, 1, 2)))
    with pytest.raises(ValueError, match="norm"):
        gf.jacobian_norms("rnn", gf.cell_params(uni), np.zeros((3, 1, 2)), norm="nuclear")
    with pytest.raises(ValueError, match="init"):
        gf.gradient_flow_experiment(cells=["rnn"], length=5, hidden=2, init="radius=-1")
    with pytest.raises(ValueError, match="init"):
        gf.gradient_flow_experiment(cells=["rnn"], length=5, hidden=2, init="spiky")
    with pytest.raises(ValueError, match="cell"):
        gf.gradient_flow_experiment(cells=["rnn", "elman"], length=5, hidden=2)
    with pytest.raises(ValueError, match="repeat"):
        gf.gradient_flow_experiment(cells="rnn,gru,rnn", length=5, hidden=2)
    with pytest.raises(ValueError, match="forward"):
        gf.recurrent_saturation(rk.Recurrent("rnn", 2, 3))


# -- saturation ------------------------------------------------------------------------

def test_saturation_of_tanh_rnn_follows_weight_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 4, 3))
    params = {"weight_ih": rng.standard_normal((5, 3)), "weight_hh": rng.standard_normal((5, 5))}
    big = {k: 100 * v for k, v in params.items()}
    small = {k: 1e-3 * v for k, v in params.items()}
    _, _, cache_big = CELLS["rnn"].forward(big, x)
    _, _, cache_small = CELLS["rnn"].forward(small, x)
    s_big = gf.saturation(cache_big)
    assert s_big["saturated"] == pytest.approx(np.mean(np.abs(cache_big.h[1:]) > 0.99))
    assert s_big["saturated"] > 0.9
    assert gf.saturation(cache_small)["saturated"] == 0.0
    assert s_big["per_step"].shape == (10,)


def test_saturation_of_gates_and_relu_and_lengths():
    rng = np.random.default_rng(1)
    T, B, I, H = 6, 3, 2, 4
    x = rng.standard_normal((T, B, I))
    small = {"weight_ih": 0.01 * rng.standard_normal((4 * H, I)), "weight_hh": 0.01 * rng.standard_normal((4 * H, H)),
             "bias_ih": np.zeros(4 * H), "bias_hh": np.zeros(4 * H)}
    small["bias_ih"][H:2 * H] = 20.0                            # forget gate pinned at 1
    _, _, cache = CELLS["lstm"].forward(small, x)
    s = gf.saturation(cache)
    assert s["parts"]["f"] == 1.0 and s["parts"]["i"] == 0.0 and s["parts"]["o"] == 0.0
    assert s["saturated"] == pytest.approx(1 / 3)                # i, f, o: one of three saturated

    gru = {"weight_ih": 0.01 * rng.standard_normal((3 * H, I)), "weight_hh": 0.01 * rng.standard_normal((3 * H, H)),
           "bias_ih": np.zeros(3 * H), "bias_hh": np.zeros(3 * H)}
    gru["bias_hh"][H:2 * H] = -20.0                             # update gate pinned at 0
    _, _, cache = CELLS["gru"].forward(gru, x)
    s = gf.saturation(cache)
    assert s["parts"]["z"] == 1.0 and s["parts"]["r"] == 0.0 and s["saturated"] == pytest.approx(0.5)

    relu = {"weight_ih": rng.standard_normal((H, I)), "weight_hh": 0.5 * rng.standard_normal((H, H))}
    lengths = np.array([6, 2, 4])
    _, _, cache = CELLS["rnn"].forward(relu, x, lengths=lengths, nonlinearity="relu")
    valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
    zero = (cache.h[1:] <= 0) & valid
    s = gf.saturation(cache)
    assert s["saturated"] == pytest.approx(zero.sum() / (valid.sum() * H))
    with pytest.raises(TypeError, match="cache"):
        gf.saturation({"h": cache.h})


def test_recurrent_saturation_reads_every_layer():
    layer = rk.Recurrent("lstm", 2, 3, num_layers=2, dtype=np.float64, seed=0)
    layer.params["weight_ih_l1"] *= 200                          # drive the top layer's gates to 0 or 1
    layer.forward(np.random.default_rng(0).standard_normal((4, 2, 2)))
    sats = gf.recurrent_saturation(layer)
    assert len(sats) == 2
    assert sats[0]["saturated"] < 0.2 < sats[1]["saturated"]
    for index in range(2):
        direct = gf.saturation(layer.caches[index][0])
        assert sats[index]["parts"] == direct["parts"]
        np.testing.assert_array_equal(sats[index]["per_step"], direct["per_step"])


# -- clipping --------------------------------------------------------------------------

def test_clipped_grad_norms_before_and_after():
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([[0.0, 12.0]])}      # norms 5 and 12, total 13
    out = gf.clipped_grad_norms(grads, 6.5)
    assert out["total_before"] == pytest.approx(13.0)
    assert out["clipped"] is True
    assert out["before"] == {"a": pytest.approx(5.0), "b": pytest.approx(12.0)}
    assert out["after"]["a"] == pytest.approx(2.5, rel=1e-6) and out["after"]["b"] == pytest.approx(6.0, rel=1e-6)
    assert out["total_after"] == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_array_equal(grads["a"], [3.0, 4.0])                 # the caller's arrays untouched
    same = gf.clipped_grad_norms(grads, 100.0)
    assert same["clipped"] is False and same["after"] == same["before"]
    bad = gf.clipped_grad_norms({"a": np.array([np.inf, 1.0])}, 1.0)
    assert bad["total_before"] is None and bad["clipped"] is False
    json.dumps(bad, allow_nan=False)
    with pytest.raises(ValueError, match="max_norm"):
        gf.clipped_grad_norms(grads, 0)


def test_clipped_grad_norms_of_a_real_model():
    layer = rk.Recurrent("gru", 2, 3, dtype=np.float64, seed=0)
    y, _ = layer.forward(np.random.default_rng(0).standard_normal((5, 2, 2)))
    layer.backward(np.ones_like(y) * 10)
    out = gf.clipped_grad_norms(layer.grads, 0.1)
    assert set(out["before"]) == set(layer.params)
    assert out["total_after"] == pytest.approx(0.1, rel=1e-4)


# -- the experiment --------------------------------------------------------------------

def test_gradient_flow_experiment_vanishing_and_exploding():
    T = 30
    vanish = gf.gradient_flow_experiment(cells=["rnn", "lstm"], length=T, hidden=8, batch=2,
                                         init="radius=0.5", seed=0)
    explode = gf.gradient_flow_experiment(cells="rnn-relu,irnn", length=T, hidden=8, batch=2,
                                          init="radius=3", seed=0)
    for res in (vanish, explode):
        json.dumps(res, allow_nan=False)
        assert res["t"] == list(range(T + 1))
        for r in res["cells"].values():
            assert len(r["grad_norm"]) == T + 1
            assert r["grad_norm"][T] == pytest.approx(1.0)                # ∂L/∂h_T: random unit vectors
            assert r["jacobian_norm"][T] == pytest.approx(1.0)            # the identity
    rnn = vanish["cells"]["rnn"]
    assert max(rnn["spectral_radius"]) == pytest.approx(0.5)
    assert rnn["ratio_first_last"] < 1e-4
    assert rnn["ratio_first_last"] == pytest.approx(rnn["grad_norm"][1] / rnn["grad_norm"][T])
    assert rnn["per_step_factor"] ** (T - 1) == pytest.approx(rnn["ratio_first_last"])
    relu = explode["cells"]["rnn-relu"]
    assert max(relu["spectral_radius"]) == pytest.approx(3.0)
    assert relu["ratio_first_last"] > 10
    assert explode["cells"]["irnn"]["init"] == "irnn"
    again = gf.gradient_flow_experiment(cells=["rnn", "lstm"], length=T, hidden=8, batch=2,
                                        init="radius=0.5", seed=0)
    assert again["cells"]["lstm"]["grad_norm"] == vanish["cells"]["lstm"]["grad_norm"]
    table = gf.format_gradient_table(vanish)
    assert "rnn" in table and "lstm" in table and f"{rnn['ratio_first_last']:.3e}" in table


def test_run_gradients_writes_json_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = gf.run_gradients(tmp_path / "g", cells=["rnn", "gru"], length=12, hidden=4, batch=2)
    data = json.loads((tmp_path / "g" / "gradients.json").read_text())
    assert data["cells"]["gru"]["grad_norm"] == out["result"]["cells"]["gru"]["grad_norm"]
    assert (tmp_path / "g" / "gradients.png").read_bytes()[:8] == PNG_SIGNATURE
    assert out["png"] == str(tmp_path / "g" / "gradients.png")


def test_plot_gradient_flow_survives_overflowed_values(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnkit.diagnostics.plots import plot_gradient_flow

    res = gf.gradient_flow_experiment(cells=["rnn"], length=6, hidden=3, batch=1)
    res["cells"]["rnn"]["grad_norm"][2] = None
    res["cells"]["rnn"]["jacobian_norm"] = [None] * 7
    path = plot_gradient_flow(res, tmp_path / "x.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
