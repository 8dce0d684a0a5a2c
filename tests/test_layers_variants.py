"""Recurrent with the variants and the new cells: finite differences across layers,
directions and ragged lengths (float64), torch parity for proj_size, training-only
zoneout and recurrent dropout, which implementation runs, errors, and every cell name
usable by the models and the tasks.
"""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.cells import registry

T, B, I, H, P = 4, 3, 2, 3, 2
RAGGED = np.array([4, 2, 3])
EPS, TOL = 1e-6, 1e-6

# each option alone is checked entry by entry at the cell level (test_cells_variants.py);
# here they run together through the stack (lstm-proj, lstm-proj-ln, gru-ln and indrnn through
# the compiled loops where rnnkit.fast runs: test_fast_variants.py checks which runs)
CONFIGS = {
    "lstm-proj": ("lstm", dict(proj_size=P)),
    "lstm-proj-ln": ("lstm", dict(proj_size=P, layer_norm=True)),
    "gru-ln": ("gru", dict(layer_norm=True)),
    "lstm-all": ("lstm", dict(proj_size=P, layer_norm=True, peephole=True, zoneout=0.2, recurrent_dropout=0.2)),
    "gru-all": ("gru", dict(layer_norm=True, zoneout=0.3, recurrent_dropout=0.3)),
    "indrnn": ("indrnn", dict()),
    "indrnn-tanh-bounded": ("indrnn", dict(nonlinearity="tanh", recurrent_max=0.95)),
    "mingru": ("mingru", dict()),
    "minlstm": ("minlstm", dict()),
}


def build(cell, kw, params=None, seed=3):
    """A fresh float64 layer (2 layers, bidirectional): the same seed draws the same masks."""
    layer = rk.Recurrent(cell, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=seed, **kw)
    if params is not None:
        layer.load_state_dict(params)
    return layer


def sampled_indices(shape, rng, most=4):
    """Every entry of a small tensor, else ``most`` distinct entries drawn at random (the
    cell-level tests check every entry; here each tensor of every layer and direction)."""
    idx = list(np.ndindex(shape))
    if len(idx) <= most:
        return idx
    return [idx[i] for i in rng.choice(len(idx), size=most, replace=False)]


def numeric_grad(f, a, indices):
    g = {}
    for idx in indices:
        old = a[idx]
        a[idx] = old + EPS
        fp = f()
        a[idx] = old - EPS
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * EPS)
    return g


@pytest.mark.parametrize("name", list(CONFIGS))
def test_recurrent_variant_gradcheck(name):
    cell, kw = CONFIGS[name]
    rng = np.random.default_rng(4)
    params = build(cell, kw).state_dict()
    for k, v in params.items():       # non-zero, distinct biases and layer-norm gains and biases
        if "bias" in k or k.startswith("ln_") or k.startswith("weight_c"):
            v[...] = rng.uniform(0.5, 1.5, v.shape) if k.startswith("ln_") and "weight" in k else \
                rng.uniform(-0.5, 0.5, v.shape)
    layer = build(cell, kw, params)
    out, LD = layer.output_size, 4
    x = rng.standard_normal((T, B, I))
    R = rng.standard_normal((T, B, 2 * out))
    lstm = cell == "lstm"
    h0 = (rng.standard_normal((LD, B, out)), rng.standard_normal((LD, B, H))) if lstm else \
        np.abs(rng.standard_normal((LD, B, H)))
    S = (rng.standard_normal((LD, B, out)), rng.standard_normal((LD, B, H))) if lstm else \
        rng.standard_normal((LD, B, H))

    def loss():
        y, h_n = build(cell, kw, params).forward(x, h0, RAGGED)
        return float(np.sum(y * R) + sum(np.sum(a * s) for a, s in zip(h_n, S)) if lstm
                     else np.sum(y * R) + np.sum(h_n * S))

    layer.forward(x, h0, RAGGED)
    dx, dh0 = layer.backward(R, S)
    tensors = {"x": x, **params}
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    if lstm:
        tensors.update(h0=h0[0], c0=h0[1])
        analytic.update(h0=dh0[0], c0=dh0[1])
    else:
        tensors["h0"], analytic["h0"] = h0, dh0
    pick = np.random.default_rng(0)
    for key, a in tensors.items():
        indices = sampled_indices(a.shape, pick)
        num = numeric_grad(loss, a, indices)
        num_a = np.array([num[i] for i in indices])
        ana_a = np.array([analytic[key][i] for i in indices])
        scale = max(np.abs(num_a).max(), np.abs(analytic[key]).max())
        assert scale > 0, f"{key}: zero gradient, the check would be vacuous"
        err = float(np.abs(num_a - ana_a).max() / scale)
        assert err < TOL, f"{name} {key}: relative error {err:.2e}"
    assert np.all(dx[RAGGED[1]:, 1] == 0)       # padded steps do not reach the loss


def test_parameter_names_and_shapes():
    layer = rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True, proj_size=P, layer_norm=True,
                         peephole=True)
    shapes = {k: v.shape for k, v in layer.params.items()}
    assert shapes["weight_hh_l0"] == (4 * H, P) and shapes["weight_hr_l1_reverse"] == (P, H)
    assert shapes["weight_ih_l1"] == (4 * H, 2 * P)
    assert shapes["ln_c_weight_l0"] == (H,) and shapes["ln_hh_bias_l1_reverse"] == (4 * H,)
    assert shapes["weight_co_l1"] == (H,)
    assert np.all(layer.params["ln_ih_weight_l0"] == 1) and np.all(layer.params["ln_ih_bias_l0"] == 0)
    assert rk.Recurrent("indrnn", I, H).params["weight_hh_l0"].shape == (H,)
    assert sorted(rk.Recurrent("mingru", I, H).params) == ["bias_ih_l0", "weight_ih_l0"]
    assert rk.Recurrent("minlstm", I, H).params["weight_ih_l0"].shape == (3 * H, I)
    assert rk.Recurrent("gru", I, H, layer_norm=True).config()["layer_norm"] is True


def _torch_parity(dtype, rtol):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    layer = rk.Recurrent("lstm", I, 5, num_layers=2, bidirectional=True, proj_size=P, dtype=dtype, seed=7)
    module = torch.nn.LSTM(I, 5, num_layers=2, bidirectional=True, proj_size=P, dtype=tdtype)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})   # strict
    assert not np.allclose(layer.params["bias_ih_l0"], layer.params["bias_hh_l0"])
    rng = np.random.default_rng(11)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((4, B, P)).astype(dtype), rng.standard_normal((4, B, 5)).astype(dtype)
    R = rng.standard_normal((T, B, 2 * P)).astype(dtype)
    S = rng.standard_normal((4, B, P)).astype(dtype), rng.standard_normal((4, B, 5)).astype(dtype)
    y, (h_n, c_n) = layer.forward(x, h0, RAGGED)
    dx, (dh0, dc0) = layer.backward(R, S)
    ours = {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0,
            **{f"grad {k}": v for k, v in layer.grads.items()}}
    xt = torch.tensor(x, requires_grad=True)
    hx = tuple(torch.tensor(a, requires_grad=True) for a in h0)
    yt, (ht, ct) = module(pack_padded_sequence(xt, torch.tensor(RAGGED), enforce_sorted=False), hx)
    yt, _ = pad_packed_sequence(yt, total_length=T)
    ((yt * torch.tensor(R)).sum() + (ht * torch.tensor(S[0])).sum() + (ct * torch.tensor(S[1])).sum()).backward()
    theirs = {"y": yt.detach().numpy(), "h_n": ht.detach().numpy(), "c_n": ct.detach().numpy(),
              "dx": xt.grad.numpy(), "dh0": hx[0].grad.numpy(), "dc0": hx[1].grad.numpy(),
              **{f"grad {k}": p.grad.numpy() for k, p in module.named_parameters()}}
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key].shape == theirs[key].shape, key
        err = float(np.abs(ours[key] - theirs[key]).max() / np.abs(theirs[key]).max())
        assert err < rtol, f"{key}: relative error {err:.2e} vs torch"


def test_proj_size_matches_torch_float64():
    _torch_parity(np.float64, 1e-10)


def test_proj_size_matches_torch_float32():
    _torch_parity(np.float32, 1e-5)


@pytest.mark.parametrize("cell,kw", [("lstm", dict(zoneout=0.5, recurrent_dropout=0.5)),
                                     ("gru", dict(zoneout=0.5, recurrent_dropout=0.5))])
def test_zoneout_and_recurrent_dropout_act_in_training_only(cell, kw):
    plain = rk.Recurrent(cell, I, H, num_layers=2, dtype=np.float64, seed=5)
    layer = rk.Recurrent(cell, I, H, num_layers=2, dtype=np.float64, seed=5, **kw)
    layer.load_state_dict(plain.state_dict())
    x = np.random.default_rng(6).standard_normal((T, B, I))
    y_plain, _ = plain.forward(x)
    y_train, _ = layer.forward(x)
    assert not np.allclose(y_train, y_plain)             # the masks act in training
    assert layer._cell.__name__.endswith("_variants")
    layer.eval()
    y_eval, _ = layer.forward(x)
    np.testing.assert_array_equal(y_eval, plain.forward(x)[0])   # eval: the plain cell, same path
    with rk.no_grad():
        np.testing.assert_array_equal(layer.forward(x)[0], y_eval)
    assert layer._cell is plain._cell                  # the plain cell's implementation (C where it runs)


def test_each_cell_keeps_its_implementation():
    # compiled where rnnkit.fast runs: the plain cells, projection, layer norm, IndRNN
    # (tests/test_fast_variants.py checks those against NumPy); minGRU in NumPy
    from rnnkit import fast

    layer = rk.Recurrent("gru", I, H)
    layer.forward(np.zeros((T, B, I), np.float32))
    assert layer._cell is (fast.get("gru") or rk.cells.CELLS["gru"])
    package = "fast" if fast.get("lstm") is not None else "cells"
    for cell, kw, module, where in [("lstm", dict(layer_norm=True), "lstm_variants", package),
                                    ("lstm", dict(proj_size=P), "lstm_variants", package),
                                    ("gru", dict(layer_norm=True), "gru_variants", package),
                                    ("indrnn", {}, "indrnn", package),
                                    ("mingru", {}, "minrnn", "fast" if fast.get("minrnn") else "cells")]:
        layer = rk.Recurrent(cell, I, H, **kw)
        layer.forward(np.zeros((T, B, I), np.float32))
        assert layer._cell.__name__ == f"rnnkit.{where}.{module}"
        layer.eval()
        with rk.no_grad():
            layer.forward(np.zeros((T, B, I), np.float32))
        assert layer._cell.__name__ == f"rnnkit.{where}.{module}"


@pytest.mark.parametrize("call,match", [
    (lambda: rk.Recurrent("gru", I, H, proj_size=2), "proj_size applies to cell 'lstm'"),
    (lambda: rk.Recurrent("lstm", I, H, proj_size=H), r"proj_size must be 0 .* in \[1, hidden_size=3\)"),
    (lambda: rk.Recurrent("rnn", I, H, layer_norm=True), "layer_norm applies to cell 'lstm' or 'gru'"),
    (lambda: rk.Recurrent("gru", I, H, peephole=True), "peephole applies to cell 'lstm'"),
    (lambda: rk.Recurrent("lstm", I, H, zoneout=1.0), r"zoneout must lie in \[0, 1\)"),
    (lambda: rk.Recurrent("mingru", I, H, recurrent_dropout=0.2), "recurrent_dropout applies to"),
    (lambda: rk.Recurrent("lstm", I, H, recurrent_max=1.0), "recurrent_max applies to cell 'indrnn'"),
    (lambda: rk.Recurrent("indrnn", I, H, recurrent_max=-1.0), "recurrent_max must be a finite number > 0"),
    (lambda: rk.Recurrent("mingru", I, H, nonlinearity="relu"), "nonlinearity applies to cells"),
    (lambda: rk.Recurrent("lstm", I, H, layer_norm=1), "layer_norm must be True or False"),
])
def test_bad_variant_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_proj_state_shapes_are_checked():
    layer = rk.Recurrent("lstm", I, H, proj_size=P)
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(ValueError, match=r"h0\[0\] \(h\) .* \(1, 3, 2\)"):
        layer.forward(x, (np.zeros((1, B, H), np.float32), np.zeros((1, B, H), np.float32)))
    y, (h, c) = layer.forward(x, (np.zeros((1, B, P), np.float32), np.zeros((1, B, H), np.float32)))
    assert y.shape == (T, B, P) and h.shape == (1, B, P) and c.shape == (1, B, H)


@pytest.mark.parametrize("cell", registry.MODEL_CELLS)
def test_every_cell_name_works_in_the_models(cell):
    from rnnkit.models import SequenceRegressor, build
    from rnnkit.tasks._common import check_cell

    assert check_cell(cell, "test") == cell
    model = SequenceRegressor(output_size=1, input_size=2, cell=cell, hidden_size=4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3, 2)).astype(np.float32)
    loss, _, _ = model.loss({"x": x, "y": np.zeros((3, 1), np.float32)})
    model.backward()
    assert np.isfinite(loss) and any(np.abs(g).sum() > 0 for k, g in model.grads.items() if k.startswith("rnn."))
    again = build(model.config())
    again.load_state_dict(model.state_dict())
    assert again.config() == model.config()


def test_cli_cell_choices_come_from_the_registry(capsys):
    from rnnkit.cli import common, main

    assert tuple(common.CELLS) == registry.MODEL_CELLS
    assert set(registry.MODEL_CELLS) >= {"indrnn", "mingru", "minlstm"}
    assert "lstm-chrono" in common.MEMORY_CELLS
    assert main(["memory", "--cell", "lstm,bogus", "--out", "unused"]) == 2   # a usage error
    assert "--cell" in capsys.readouterr().err
