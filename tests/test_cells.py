"""Cells: finite-difference gradient checks, dh, unrolled-step structure, bad input.

Every backward is checked against central differences in float64, recomputing the
whole forward for each perturbation, with the loss
    L = Σ y ⊙ R + Σ h_T ⊙ S  (+ Σ c_T ⊙ S_c for the LSTM)
so every output and the final state are used.
"""

import numpy as np
import pytest

from conftest import numeric_grad, rel_err
from rnnkit.cells import CELLS, GATES, gru, lstm, rnn

PARAM_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASE_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]
T, B, I, H = 5, 3, 3, 4
RAGGED = np.array([3, 5, 1])          # unsorted, includes 1 and T
EPS = 1e-6


def make_params(cell, rng, bias=True, dtype=np.float64, i=I, h=H):
    """PyTorch-like uniform(-1/√H, 1/√H) weights; non-zero biases, distinct ih vs hh."""
    G, k = GATES[cell], 1.0 / np.sqrt(h)
    p = {"weight_ih": rng.uniform(-k, k, (G * h, i)), "weight_hh": rng.uniform(-k, k, (G * h, h))}
    if bias:
        p["bias_ih"] = rng.uniform(-k, k, G * h)
        p["bias_hh"] = rng.uniform(-k, k, G * h)
    return {name: v.astype(dtype) for name, v in p.items()}


def run_forward(cell, nl, params, x, h0=None, lengths=None):
    if cell == "rnn":
        return rnn.forward(params, x, h0, lengths, nonlinearity=nl)
    return CELLS[cell].forward(params, x, h0, lengths)


def make_problem(cell, nl, bias, seed=0):
    """All inputs of a grad check as one dict of float64 arrays, plus R, S, S_c."""
    rng = np.random.default_rng(seed)
    inputs = make_params(cell, rng, bias)
    inputs["x"] = rng.normal(size=(T, B, I))
    inputs["h0"] = rng.normal(scale=0.5, size=(B, H))
    if cell == "lstm":
        inputs["c0"] = rng.normal(scale=0.5, size=(B, H))
    R = rng.normal(size=(T, B, H))
    S = rng.normal(size=(B, H))
    Sc = rng.normal(size=(B, H))
    return inputs, R, S, Sc


def parts(state):
    """A state as a tuple of arrays: (h, c) for the LSTM, (h,) otherwise."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def split_inputs(cell, inputs):
    params = {k: inputs[k] for k in PARAM_KEYS if k in inputs}
    h0 = (inputs["h0"], inputs["c0"]) if cell == "lstm" else inputs["h0"]
    return params, inputs["x"], h0


def loss_value(cell, nl, inputs, lengths, R, S, Sc):
    params, x, h0 = split_inputs(cell, inputs)
    y, final, _ = run_forward(cell, nl, params, x, h0, lengths)
    if cell == "lstm":
        return float(np.sum(y * R) + np.sum(final[0] * S) + np.sum(final[1] * Sc))
    return float(np.sum(y * R) + np.sum(final * S))


def analytic_grads(cell, nl, inputs, lengths, R, S, Sc, return_dh=False):
    params, x, h0 = split_inputs(cell, inputs)
    y, final, cache = run_forward(cell, nl, params, x, h0, lengths)
    d_final = (S, Sc) if cell == "lstm" else S
    out = CELLS[cell].backward(params, cache, R, d_final, return_dh=return_dh)
    dx, dh0, grads = out[:3]
    named = dict(grads, x=dx)
    if cell == "lstm":
        named["h0"], named["c0"] = dh0
    else:
        named["h0"] = dh0
    return (named, out[3], cache) if return_dh else named


def relu_margin(inputs, lengths):
    """Smallest |pre-activation| over the steps that ran, recomputed from the cached states."""
    params, x, h0 = split_inputs("rnn", inputs)
    _, _, cache = rnn.forward(params, x, h0, lengths, nonlinearity="relu")
    b = params.get("bias_ih", 0) + params.get("bias_hh", 0)
    pre = x @ params["weight_ih"].T + cache.h[:-1] @ params["weight_hh"].T + b
    valid = np.ones((T, B), bool) if lengths is None else np.arange(T)[:, None] < lengths[None, :]
    return np.abs(pre[valid]).min(), (cache.h[1:][valid] > 0).mean()


# -- finite differences -----------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(cell, nl, lengths, bias):
    inputs, R, S, Sc = make_problem(cell, nl, bias)
    if nl == "relu":
        # FD across the kink of relu is meaningless: the fixed seed keeps every
        # pre-activation far from 0 compared with the step, and enough units alive
        margin, alive = relu_margin(inputs, lengths)
        assert margin > 1e-3 and alive > 0.3, (margin, alive)
    analytic = analytic_grads(cell, nl, inputs, lengths, R, S, Sc)
    expected = set(PARAM_KEYS[:2 + 2 * bias]) | {"x", "h0"} | ({"c0"} if cell == "lstm" else set())
    assert set(analytic) == expected
    f = lambda: loss_value(cell, nl, inputs, lengths, R, S, Sc)  # noqa: E731
    for name in sorted(expected):
        numeric = numeric_grad(f, inputs[name])
        assert np.abs(numeric).max() > 1e-3, f"{name}: gradient unexpectedly ~0"
        err = rel_err(analytic[name], numeric)
        assert err < 1e-6, f"{cell}-{nl} d{name}: relative error {err:.2e}"


def suffix_loss_grad_h(cell, nl, inputs, lengths, R, S, Sc, cache, t):
    """FD of L w.r.t. the state hₜ (cache.h[t+1]): rerun each sequence's remaining steps.

    Sequences are independent, so for sequence b the part of L that depends on hₜ is
    R[t,b]·mₜ hₜ plus either the loss of forward on its remaining steps started from
    hₜ (and its cₜ), or, if it has ended, S_b·hₜ (hₜ is carried to the final state).
    """
    params = {k: inputs[k] for k in PARAM_KEYS if k in inputs}
    lens = np.full(B, T) if lengths is None else lengths
    out = np.empty((B, H))
    for b in range(B):
        remaining = lens[b] - (t + 1)
        c_t = cache.c[t + 1, b:b + 1] if cell == "lstm" else None

        def f(h):
            val = (t < lens[b]) * np.sum(R[t, b] * h)
            if remaining < 1:
                return val + np.sum(S[b] * h)
            h0 = (h[None], c_t) if cell == "lstm" else h[None]
            y, final, _ = run_forward(cell, nl, params, inputs["x"][t + 1:, b:b + 1], h0,
                                      np.array([remaining]))
            val += np.sum(y[:, 0] * R[t + 1:, b])
            if cell == "lstm":
                return val + np.sum(final[0][0] * S[b]) + np.sum(final[1][0] * Sc[b])
            return val + np.sum(final[0] * S[b])

        h = cache.h[t + 1, b].copy()
        out[b] = numeric_grad(lambda: f(h), h)
    return out


@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_return_dh_matches_finite_differences(cell, nl, lengths):
    inputs, R, S, Sc = make_problem(cell, nl, bias=True)
    plain = analytic_grads(cell, nl, inputs, lengths, R, S, Sc)
    named, dh, cache = analytic_grads(cell, nl, inputs, lengths, R, S, Sc, return_dh=True)
    assert dh.shape == (T, B, H)
    for name in plain:                        # return_dh changes nothing else
        np.testing.assert_array_equal(named[name], plain[name])
    # the last step: its output's gradient plus the final state's
    lens = np.full(B, T) if lengths is None else lengths
    last = R[-1] * (lens == T)[:, None] + S
    np.testing.assert_allclose(dh[-1], last, rtol=1e-14, atol=1e-14)
    for t in range(T):
        numeric = suffix_loss_grad_h(cell, nl, inputs, lengths, R, S, Sc, cache, t)
        err = rel_err(dh[t], numeric)
        assert err < 1e-6, f"{cell}-{nl} dh[{t}]: relative error {err:.2e}"
    if lengths is not None:                   # past its end a state is carried to h_T
        for b in range(B):
            np.testing.assert_allclose(dh[lengths[b]:, b], np.broadcast_to(S[b], (T - lengths[b], H)))


# -- structure --------------------------------------------------------------------------

def step_select(mask_b, new, old):
    return np.where(mask_b[:, None], new, old)


@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_sequence_forward_equals_unrolled_single_steps(cell, nl, lengths):
    inputs, _, _, _ = make_problem(cell, nl, bias=True, seed=1)
    params, x, h0 = split_inputs(cell, inputs)
    y, final, _ = run_forward(cell, nl, params, x, h0, lengths)
    lens = np.full(B, T) if lengths is None else lengths
    state = h0
    for t in range(T):
        y_t, new, _ = run_forward(cell, nl, params, x[t:t + 1], state)
        alive = t < lens                       # finished sequences keep their state, output 0
        if cell == "lstm":
            state = (step_select(alive, new[0], state[0]), step_select(alive, new[1], state[1]))
        else:
            state = step_select(alive, new, state)
        np.testing.assert_allclose(y[t], y_t[0] * alive[:, None], rtol=1e-12, atol=1e-14)
    for got, want in zip(parts(final), parts(state)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_sequence_backward_equals_unrolled_single_steps(cell, nl):
    inputs, R, S, Sc = make_problem(cell, nl, bias=True, seed=2)
    params, x, h0 = split_inputs(cell, inputs)
    mod = CELLS[cell]
    _, _, cache = run_forward(cell, nl, params, x, h0)
    dx, dh0, grads = mod.backward(params, cache, R, (S, Sc) if cell == "lstm" else S)
    # forward step by step keeping each step's cache, then backward step by step
    states, caches = [h0], []
    for t in range(T):
        _, new, c = run_forward(cell, nl, params, x[t:t + 1], states[-1])
        states.append(new)
        caches.append(c)
    d_state = (S, Sc) if cell == "lstm" else S
    total = {k: np.zeros_like(v) for k, v in params.items()}
    dx_steps = np.empty_like(x)
    for t in range(T - 1, -1, -1):
        dx_t, d_state, g = mod.backward(params, caches[t], R[t:t + 1], d_state)
        dx_steps[t] = dx_t[0]
        for k in total:
            total[k] += g[k]
    np.testing.assert_allclose(dx, dx_steps, rtol=1e-11, atol=1e-13)
    for got, want in zip(parts(dh0), parts(d_state)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    for k in params:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-11, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_lengths_semantics(cell, nl):
    """Zero outputs past each length; final state = running that sequence alone, truncated."""
    inputs, _, _, _ = make_problem(cell, nl, bias=True, seed=3)
    params, x, h0 = split_inputs(cell, inputs)
    y, final, _ = run_forward(cell, nl, params, x, h0, RAGGED)
    for b, n in enumerate(RAGGED):
        hb = (h0[0][b:b + 1], h0[1][b:b + 1]) if cell == "lstm" else h0[b:b + 1]
        y_b, final_b, _ = run_forward(cell, nl, params, x[:n, b:b + 1], hb)
        np.testing.assert_allclose(y[:n, b], y_b[:, 0], rtol=1e-12, atol=1e-14)
        assert not np.any(y[n:, b])
        for got, want in zip(parts(final), parts(final_b)):
            np.testing.assert_allclose(got[b], want[0], rtol=1e-12, atol=1e-14)
    # lengths that are all T take the unmasked path and give the same numbers
    y_full, _, cache_full = run_forward(cell, nl, params, x, h0, np.full(B, T))
    y_none, _, _ = run_forward(cell, nl, params, x, h0)
    assert cache_full.mask is None
    np.testing.assert_array_equal(y_full, y_none)


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_defaults_and_partial_gradients(cell, nl):
    """h0=None is zeros; d_outputs=None and None parts of d_final_state are zeros."""
    inputs, _, S, Sc = make_problem(cell, nl, bias=True, seed=4)
    params, x, _ = split_inputs(cell, inputs)
    mod = CELLS[cell]
    zeros = np.zeros((B, H))
    y0, _, cache0 = run_forward(cell, nl, params, x, None)
    y1, _, cache1 = run_forward(cell, nl, params, x, (zeros, zeros) if cell == "lstm" else zeros)
    np.testing.assert_array_equal(y0, y1)
    assert np.any(y0)
    d_final_variants = [((S, None), (S, zeros)), ((None, Sc), (zeros, Sc))] if cell == "lstm" \
        else [(S, S), (None, zeros)]
    for d_final, d_final_explicit in d_final_variants:
        a = mod.backward(params, cache0, None, d_final)
        b = mod.backward(params, cache1, np.zeros_like(y0), d_final_explicit)
        np.testing.assert_array_equal(a[0], b[0])
        for k in params:
            np.testing.assert_array_equal(a[2][k], b[2][k])
        assert np.any(a[2]["weight_hh"]) or d_final is None


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_nothing_is_mutated_and_outputs_are_not_cache_views(cell, nl):
    inputs, R, S, Sc = make_problem(cell, nl, bias=True, seed=5)
    params, x, h0 = split_inputs(cell, inputs)
    lengths = RAGGED.copy()
    d_final = (S, Sc) if cell == "lstm" else S
    watched = [*params.values(), x, *parts(h0), lengths, R, S, Sc]
    before = [a.copy() for a in watched]
    y, final, cache = run_forward(cell, nl, params, x, h0, lengths)
    ref = CELLS[cell].backward(params, cache, R, d_final, return_dh=True)
    for a, b in zip(before, watched):
        np.testing.assert_array_equal(a, b)
    # every returned gradient is its own array (in-place clipping of one leaves the others)
    returned = [ref[0], *parts(ref[1]), *ref[2].values(), ref[3]]
    for i, a in enumerate(returned):
        assert not any(np.shares_memory(a, b) for b in returned[i + 1:] + watched)
    # scribbling on the returned outputs/final state must not change a later backward
    y[...] = 7.0
    for s in parts(final):
        s[...] = -3.0
    again = CELLS[cell].backward(params, cache, R, d_final, return_dh=True)
    np.testing.assert_array_equal(ref[0], again[0])
    np.testing.assert_array_equal(ref[3], again[3])
    for k in params:
        np.testing.assert_array_equal(ref[2][k], again[2][k])


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_float32_computes_in_float32(cell, nl):
    rng = np.random.default_rng(6)
    params64 = make_params(cell, rng)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    # float64 params with float32 x: the computation follows x
    y, final, cache = run_forward(cell, nl, params64, x, None, RAGGED)
    assert y.dtype == np.float32
    for s in parts(final):
        assert s.dtype == np.float32
    dx, dh0, grads = CELLS[cell].backward(params64, cache, np.ones_like(y))
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert set(grads) == set(params64)
    y64, _, _ = run_forward(cell, nl, params64, x.astype(np.float64), None, RAGGED)
    assert rel_err(y, y64) < 1e-5


def test_cell_registry():
    assert set(CELLS) == {"rnn", "lstm", "gru"}
    assert GATES == {"rnn": 1, "lstm": 4, "gru": 3, "indrnn": 1, "mingru": 2, "minlstm": 3}
    for name, mod in CELLS.items():
        params = make_params(name, np.random.default_rng(7))
        y, _, cache = mod.forward(params, np.ones((2, 1, I)))
        assert y.shape == (2, 1, H)
        assert mod.backward(params, cache, np.ones_like(y))[0].shape == (2, 1, I)


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_bad_input(cell, nl):
    rng = np.random.default_rng(8)
    params = make_params(cell, rng)
    x = rng.normal(size=(T, B, I))
    name = cell.upper()
    h0_ok = np.zeros((B, H))

    def fwd(p=params, xx=x, h0=None, lengths=None):
        return run_forward(cell, nl, p, xx, h0, lengths)

    with pytest.raises(ValueError, match=rf"{name}: expected x with 3 dims \(T, B, I\), got 2"):
        fwd(xx=x[0])
    w_ih_shape = rf"\({GATES[cell] * H}, {I}\)"
    with pytest.raises(ValueError, match=rf"{name}: expected params\['weight_ih'\].*got {w_ih_shape}"):
        fwd(xx=rng.normal(size=(T, B, I + 1)))
    bad_h0 = np.zeros((B, H + 1))
    with pytest.raises(ValueError, match=rf"{name}: expected h0 of shape \({B}, {H}\), got \({B}, {H + 1}\)$"):
        fwd(h0=(bad_h0, h0_ok) if cell == "lstm" else bad_h0)
    if cell == "lstm":
        with pytest.raises(ValueError, match=r"LSTM: expected c0 of shape"):
            fwd(h0=(h0_ok, np.zeros((B + 1, H))))
        with pytest.raises(TypeError, match=r"LSTM: expected h0 to be a tuple \(h, c\)"):
            fwd(h0=h0_ok)
    with pytest.raises(ValueError, match=rf"{name}: lengths must lie in \[1, T={T}\]"):
        fwd(lengths=np.array([1, T + 1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: lengths must lie in \[1, T={T}\]"):
        fwd(lengths=np.array([0, 2, 2]))
    with pytest.raises(ValueError, match=rf"{name}: expected lengths of shape \({B},\)"):
        fwd(lengths=np.array([1, 2]))
    with pytest.raises(TypeError, match=rf"{name}: expected x to hold floats.*int64"):
        fwd(xx=np.ones((T, B, I), dtype=np.int64))
    with pytest.raises(TypeError, match=rf"{name}: expected x of dtype float32 or float64"):
        fwd(xx=x.astype(np.float16))
    x_nan = x.copy()
    x_nan[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=rf"{name}: x contains NaN or inf"):
        fwd(xx=x_nan)
    with pytest.raises(ValueError, match=rf"{name}: x contains NaN or inf"):
        fwd(xx=np.where(x > 1, np.inf, x))
    with pytest.raises(ValueError, match=rf"{name}: unknown params key\(s\) \['weight_ih_l0'\]"):
        fwd(p=dict(params, weight_ih_l0=params["weight_ih"]))
    with pytest.raises(ValueError, match=rf"{name}: params is missing 'weight_hh'"):
        fwd(p={k: v for k, v in params.items() if k != "weight_hh"})
    with pytest.raises(ValueError, match=rf"{name}: expected params\['bias_hh'\] of shape"):
        fwd(p=dict(params, bias_hh=params["bias_hh"][:-1]))
    with pytest.raises(ValueError, match=rf"{name}: expected params\['weight_hh'\] of shape"):
        fwd(p=dict(params, weight_hh=params["weight_hh"][:, :-1]))
    y, _, cache = fwd()
    with pytest.raises(ValueError, match=rf"{name}: expected d_outputs of shape \({T}, {B}, {H}\)"):
        CELLS[cell].backward(params, cache, y[:-1])
    other = lstm if cell != "lstm" else gru
    _, _, other_cache = other.forward(make_params("lstm" if cell != "lstm" else "gru", rng), x)
    with pytest.raises(TypeError, match=rf"{name}: expected the cache from {cell}.forward"):
        CELLS[cell].backward(params, other_cache, y)
    if cell == "rnn":
        with pytest.raises(ValueError, match=r"RNN: nonlinearity must be one of 'tanh', 'relu', got 'sigm"):
            rnn.forward(params, x, nonlinearity="sigmoid")
