"""IndRNN's bound |u| <= M: the projection after each optimizer step
(Module.constrain), and the gradient of a weight that sits exactly at the bound."""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.cells import indrnn
from rnnkit.diagnostics.memory import make_memory_model, train_memory_model
from rnnkit.optim import make_optimizer

T, B, I, H = 6, 3, 2, 4


def _layer(M, dtype=np.float64, layers=1):
    return rk.Recurrent("indrnn", I, H, num_layers=layers, recurrent_max=M, dtype=dtype, seed=0)


def test_constrain_projects_onto_the_bound_after_a_huge_step():
    M = 1.1
    layer = _layer(M, layers=2)
    x = np.random.default_rng(0).normal(size=(T, B, I))
    opt = make_optimizer("sgd", layer.params, lr=1.0)
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    grads = {k: g * 1e6 if k.startswith("weight_hh") else g for k, g in layer.grads.items()}
    opt.step(grads)
    before = np.concatenate([layer.params[f"weight_hh_l{k}"] for k in range(2)])
    assert np.abs(before).max() > 100 * M            # the step threw u far outside
    layer.constrain()
    for k in range(2):
        u = layer.params[f"weight_hh_l{k}"]
        assert np.abs(u).max() <= M
        np.testing.assert_array_equal(u, np.clip(before[k * H:(k + 1) * H], -M, M))


def test_constrain_leaves_unbounded_layers_and_other_cells_alone():
    free = rk.Recurrent("indrnn", I, H, seed=0, dtype=np.float64)
    free.params["weight_hh_l0"][...] = [5.0, -5.0, 0.5, 2.0]
    free.constrain()
    np.testing.assert_array_equal(free.params["weight_hh_l0"], [5.0, -5.0, 0.5, 2.0])
    lstm = rk.Recurrent("lstm", I, H, seed=0)
    before = {k: v.copy() for k, v in lstm.params.items()}
    lstm.constrain()
    for k, v in lstm.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_a_weight_at_the_bound_keeps_its_gradient():
    """u = M exactly: the forward is the same with or without the bound, and so is the
    gradient (a strict |u| < M mask would zero it and freeze the weight there)."""
    M = 0.9
    rng = np.random.default_rng(1)
    p = {"weight_ih": rng.normal(size=(H, I)), "weight_hh": np.array([M, -M, 0.3, 1.5]),
         "bias_ih": np.full(H, 0.5), "bias_hh": np.zeros(H)}
    x, R = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))
    _, _, bounded = indrnn.forward(p, x, nonlinearity="tanh", recurrent_max=M)
    g = indrnn.backward(p, bounded, R)[2]["weight_hh"]
    inside = dict(p, weight_hh=np.array([M, -M, 0.3, M]))     # 1.5 is held at M by the clip
    _, _, free = indrnn.forward(inside, x, nonlinearity="tanh")
    g_free = indrnn.backward(inside, free, R)[2]["weight_hh"]
    assert g[0] != 0.0 and g[1] != 0.0
    np.testing.assert_allclose(g[:3], g_free[:3], rtol=1e-12)
    assert g[3] == 0.0                                         # beyond the bound: the clip's zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_layer_passes_the_gradient_at_the_bound(dtype):
    """Through rnnkit.Recurrent (the compiled loop where it runs here)."""
    M = 1.05
    layer = _layer(M, dtype)
    layer.params["weight_hh_l0"][...] = [M, -M, 0.2, 0.7]
    layer.params["bias_ih_l0"][...] = 0.3
    x = np.random.default_rng(2).normal(size=(T, B, I)).astype(dtype)
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    g = layer.grads["weight_hh_l0"]
    assert np.all(g[:2] != 0.0)


def test_training_keeps_the_memory_model_inside_the_bound():
    model = make_memory_model("adding", "indrnn", 8, seed=0, length=20)
    M = model.rnn.variant["recurrent_max"]
    train_memory_model(model, "adding", 20, 5, lr=1.0, clip=None, eval_every=5, eval_size=8)
    for k in range(model.rnn.num_layers):
        assert np.abs(model.rnn.params[f"weight_hh_l{k}"]).max() <= M


def test_the_trainer_projects_after_each_step():
    from rnnkit.models import SequenceRegressor
    from rnnkit.train import TrainConfig, Trainer

    M = 1.01
    model = SequenceRegressor(output_size=1, cell="indrnn", hidden_size=8, input_size=2, seed=0,
                              dtype="float64")
    model.rnn.variant["recurrent_max"] = M
    rng = np.random.default_rng(3)
    batches = [{"x": rng.normal(size=(10, 4, 2)), "y": rng.normal(size=(4, 1)) * 50} for _ in range(3)]
    trainer = Trainer(model, TrainConfig(optimizer="sgd", lr=5.0, max_steps=3, clip_norm=None))
    trainer.fit(batches)
    assert trainer.step == 3
    assert np.abs(model.rnn.params["weight_hh_l0"]).max() <= M
