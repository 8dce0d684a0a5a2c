"""Cells against torch.nn.RNN / LSTM / GRU with the same weights: values and gradients.

PyTorch is the oracle only here. Random (non-zero) initial states and distinct,
non-zero biases, so a bias or state bug cannot hide; ragged batches go through
pack_padded_sequence(enforce_sorted=False).
"""

import numpy as np
import pytest

from conftest import assert_close
from rnnkit.cells import CELLS

torch = pytest.importorskip("torch")

T, B, I, H = 6, 4, 3, 5
RAGGED = np.array([4, 6, 1, 3])      # unsorted, includes 1 and T
TOL = {np.float32: 1e-5, np.float64: 1e-10}
CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
CASE_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]


def torch_module(cell, nl, bias, dtype):
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    if cell == "rnn":
        return torch.nn.RNN(I, H, nonlinearity=nl, bias=bias, dtype=tdtype)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, bias=bias, dtype=tdtype)


def compare_with_torch(cell, nl, dtype, lengths, bias, seed=0):
    """Run both on one problem; return {tensor name: relative error} (each asserted)."""
    rng = np.random.default_rng(seed)
    mod = torch_module(cell, nl, bias, dtype)
    # our keys map to torch's *_l0 names; arrays copied as they are (no transposes)
    params = {k: rng.uniform(-0.6, 0.6, p.shape).astype(dtype)
              for k, p in ((n[:-3], p) for n, p in mod.named_parameters())}
    with torch.no_grad():
        for k, v in params.items():
            getattr(mod, f"{k}_l0").copy_(torch.from_numpy(v))
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = rng.normal(scale=0.5, size=(B, H)).astype(dtype)
    c0 = rng.normal(scale=0.5, size=(B, H)).astype(dtype)
    R = rng.normal(size=(T, B, H)).astype(dtype)
    S = rng.normal(size=(B, H)).astype(dtype)
    Sc = rng.normal(size=(B, H)).astype(dtype)

    # ours
    ours_mod = CELLS[cell]
    kwargs = {"nonlinearity": nl} if cell == "rnn" else {}
    init = (h0, c0) if cell == "lstm" else h0
    y, final, cache = ours_mod.forward(params, x, init, lengths, **kwargs)
    d_final = (S, Sc) if cell == "lstm" else S
    dx, dh0, grads = ours_mod.backward(params, cache, R, d_final)

    # torch
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    out, hn = mod(inp, (h0t, c0t) if cell == "lstm" else h0t)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    loss = (out * torch.from_numpy(R)).sum()
    if cell == "lstm":
        hn, cn = hn
        loss = loss + (cn[0] * torch.from_numpy(Sc)).sum()
    loss = loss + (hn[0] * torch.from_numpy(S)).sum()
    loss.backward()

    rtol = TOL[dtype]
    errs = {"outputs": assert_close("outputs", y, out, rtol),
            "h_T": assert_close("h_T", final[0] if cell == "lstm" else final, hn[0], rtol),
            "dx": assert_close("dx", dx, xt.grad, rtol),
            "dh0": assert_close("dh0", dh0[0] if cell == "lstm" else dh0, h0t.grad[0], rtol)}
    if cell == "lstm":
        errs["c_T"] = assert_close("c_T", final[1], cn[0], rtol)
        errs["dc0"] = assert_close("dc0", dh0[1], c0t.grad[0], rtol)
    assert set(grads) == set(params)
    for k in params:
        errs[k] = assert_close(f"grad {k}", grads[k], getattr(mod, f"{k}_l0").grad, rtol)
    return errs


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_matches_torch(cell, nl, dtype, lengths, bias):
    errs = compare_with_torch(cell, nl, dtype, lengths, bias)
    expected = {"outputs", "h_T", "dx", "dh0", "weight_ih", "weight_hh"}
    expected |= {"bias_ih", "bias_hh"} if bias else set()
    expected |= {"c_T", "dc0"} if cell == "lstm" else set()
    assert set(errs) == expected


def test_assert_close_names_the_tensor():
    with pytest.raises(AssertionError, match=r"grad weight_hh differs from torch: relative error 1\.000e-03"):
        assert_close("grad weight_hh", np.array([1.0, 0.999]), torch.tensor([1.0, 1.0], dtype=torch.float64),
                     1e-5)
