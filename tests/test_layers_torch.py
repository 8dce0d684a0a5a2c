"""Recurrent against torch.nn.RNN/LSTM/GRU with the same weights: outputs, final
states, dx, dh0 (dc0) and every parameter gradient, float32 and float64.

Ragged batches go through pack_padded_sequence(enforce_sorted=False) and
pad_packed_sequence on the torch side (padded outputs are zero there, as ours).
The loss is sum(y·R) + sum(h_n·S) (+ sum(c_n·S_c)) with random R, S, so every
output is used, including the padded positions, whose gradient must be ignored.
"""

import itertools

import numpy as np
import pytest

import rnnkit as rk
from conftest import assert_all_close

torch = pytest.importorskip("torch")

T, B, I, H = 5, 3, 3, 4
RAGGED = np.array([5, 1, 3])          # includes the full length and length 1
RTOL = {np.float32: 1e-5, np.float64: 1e-10}
CELLS = {"rnn_tanh": ("rnn", "tanh"), "rnn_relu": ("rnn", "relu"), "lstm": ("lstm", "tanh"),
         "gru": ("gru", "tanh")}


def make_torch(cell, nonlinearity, num_layers, bidirectional, batch_first, bias, dtype):
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    kw = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
              dropout=0.0, dtype=tdtype)
    if cell == "rnn":
        return torch.nn.RNN(I, H, nonlinearity=nonlinearity, **kw)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, **kw)


def make_inputs(cell, layer, batch_first, ragged, dtype, seed):
    """x, h0 (a pair for LSTM), lengths, R, S (a pair for LSTM), all random and non-zero."""
    rng = np.random.default_rng(seed)
    LD = layer.num_layers * layer.num_directions
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    y_shape = x.shape[:2] + (layer.num_directions * H,)
    R = rng.standard_normal(y_shape).astype(dtype)
    if cell == "lstm":
        h0 = tuple(rng.standard_normal((LD, B, H)).astype(dtype) for _ in range(2))
        S = tuple(rng.standard_normal((LD, B, H)).astype(dtype) for _ in range(2))
    else:
        h0 = rng.standard_normal((LD, B, H)).astype(dtype)
        S = rng.standard_normal((LD, B, H)).astype(dtype)
    return x, h0, (RAGGED.copy() if ragged else None), R, S


def run_ours(cell, layer, x, h0, lengths, R, S) -> dict:
    layer.zero_grad()
    y, h_n = layer.forward(x, h0, lengths)
    dx, dh0 = layer.backward(R, S)
    out = {"y": y, "dx": dx}
    if cell == "lstm":
        out.update(h_n=h_n[0], c_n=h_n[1], dh0=dh0[0], dc0=dh0[1])
    else:
        out.update(h_n=h_n, dh0=dh0)
    out.update({f"grad {k}": v for k, v in layer.grads.items()})
    return out


def run_torch(cell, module, x, h0, lengths, R, S, batch_first) -> dict:
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    xt = torch.tensor(x, requires_grad=True)
    if cell == "lstm":
        hx = tuple(torch.tensor(a, requires_grad=True) for a in h0)
    else:
        hx = torch.tensor(h0, requires_grad=True)
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, h_n = module(inp, hx)
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    loss = (y * torch.tensor(R)).sum()
    if cell == "lstm":
        loss = loss + (h_n[0] * torch.tensor(S[0])).sum() + (h_n[1] * torch.tensor(S[1])).sum()
    else:
        loss = loss + (h_n * torch.tensor(S)).sum()
    loss.backward()
    out = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
    if cell == "lstm":
        out.update(h_n=h_n[0].detach().numpy(), c_n=h_n[1].detach().numpy(),
                   dh0=hx[0].grad.numpy(), dc0=hx[1].grad.numpy())
    else:
        out.update(h_n=h_n.detach().numpy(), dh0=hx.grad.numpy())
    out.update({f"grad {k}": p.grad.numpy() for k, p in module.named_parameters()})
    return out


GRID = list(itertools.product(CELLS, [1, 2, 3], [False, True], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,num_layers,bidirectional,batch_first,bias,ragged", GRID,
                         ids=[f"{c}-L{n}-{'bi' if bd else 'uni'}-{'bf' if bf else 'tm'}-"
                              f"{'bias' if b else 'nobias'}-{'ragged' if r else 'full'}"
                              for c, n, bd, bf, b, r in GRID])
def test_parity_ours_loaded_into_torch(name, num_layers, bidirectional, batch_first, bias, ragged, dtype):
    cell, nonlinearity = CELLS[name]
    layer = rk.Recurrent(cell, I, H, num_layers=num_layers, nonlinearity=nonlinearity, bias=bias,
                         batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, seed=7)
    module = make_torch(cell, nonlinearity, num_layers, bidirectional, batch_first, bias, dtype)
    # our weights INTO torch, through torch's own load_state_dict (strict: names and shapes must match)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    if bias:  # the oracle is only meaningful with non-zero biases that differ between ih and hh
        assert all(np.all(layer.params[k] != 0) for k in layer.params if k.startswith("bias"))
        assert not np.allclose(layer.params["bias_ih_l0"], layer.params["bias_hh_l0"])
    args = make_inputs(cell, layer, batch_first, ragged, dtype, seed=11)
    assert_all_close(run_ours(cell, layer, *args), run_torch(cell, module, *args, batch_first), RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(CELLS))
def test_parity_torch_state_dict_loaded_into_ours(name, dtype):
    cell, nonlinearity = CELLS[name]
    torch.manual_seed(3)
    module = make_torch(cell, nonlinearity, 2, True, True, True, dtype)
    layer = rk.Recurrent(cell, I, H, num_layers=2, nonlinearity=nonlinearity, batch_first=True,
                         bidirectional=True, dtype=dtype, seed=0)
    before = layer.state_dict()
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(layer.params[k], v.numpy())
        assert not np.array_equal(before[k], layer.params[k])
    args = make_inputs(cell, layer, True, True, dtype, seed=5)
    assert_all_close(run_ours(cell, layer, *args), run_torch(cell, module, *args, True), RTOL[dtype])


def test_parity_without_initial_state_or_final_state_gradient():
    """h0=None means zeros and dh_n=None means h_n is unused, as torch without hx."""
    layer = rk.Recurrent("lstm", I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    module = make_torch("lstm", "tanh", 2, True, False, True, np.float64)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I))
    R = rng.standard_normal((T, B, 2 * H))
    y, (h_n, c_n) = layer.forward(x)
    dx, (dh0, dc0) = layer.backward(R)
    xt = torch.tensor(x, requires_grad=True)
    yt, (ht, ct) = module(xt)
    (yt * torch.tensor(R)).sum().backward()
    ours = {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, **{f"grad {k}": v for k, v in layer.grads.items()}}
    theirs = {"y": yt.detach().numpy(), "h_n": ht.detach().numpy(), "c_n": ct.detach().numpy(),
              "dx": xt.grad.numpy(), **{f"grad {k}": p.grad.numpy() for k, p in module.named_parameters()}}
    assert_all_close(ours, theirs, 1e-10)
    assert dh0.shape == dc0.shape == (4, B, H)
    assert np.abs(dh0).max() > 0 and np.abs(dc0).max() > 0
