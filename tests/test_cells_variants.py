"""The cells beyond PyTorch's three and the LSTM/GRU variants, at the cell level.

Finite differences in float64 (every forward recomputed, masks redrawn from the same
seed), the loss Σ y ⊙ R + Σ h_T ⊙ S (+ Σ c_T ⊙ S_c) so every output is used; the
scans of minGRU/minLSTM against the plain recurrence over many chunks; the variants
with no option on against the plain cells.
"""

import numpy as np
import pytest

from rnnkit.cells import gru, gru_variants, indrnn, lstm, lstm_variants, minrnn

T, B, I, H, P = 5, 3, 3, 4, 2
RAGGED = np.array([3, 5, 1])
EPS = 1e-6
TOL = 1e-6


def rel_err(a, b):
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    return float(np.abs(a - b).max() / scale)


def parts(s):
    return tuple(s) if isinstance(s, tuple) else (s,)


def check_grads(fwd, bwd, arrays, R, S):
    """fwd(arrays) -> (y, final, cache); bwd(cache) -> {name: gradient}. Every name checked."""
    def loss():
        y, final, _ = fwd(arrays)
        return float(np.sum(y * R) + sum(np.sum(f * s) for f, s in zip(parts(final), S)))

    _, _, cache = fwd(arrays)
    analytic = bwd(cache)
    assert sorted(analytic) == sorted(arrays)
    for name, g in analytic.items():
        a = arrays[name]
        num = np.empty_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + EPS
            lp = loss()
            a[idx] = old - EPS
            lm = loss()
            a[idx] = old
            num[idx] = (lp - lm) / (2 * EPS)
        assert np.abs(num).max() > 0, f"{name}: zero numeric gradient, the check would be vacuous"
        err = rel_err(g, num)
        assert err < TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("nonlinearity,bound", [("relu", None), ("relu", 0.9), ("tanh", 0.9)])
def test_indrnn_gradcheck(nonlinearity, bound, lengths):
    rng = np.random.default_rng(0)
    arrays = {"weight_ih": rng.normal(size=(H, I)), "weight_hh": np.array([0.5, -0.7, 1.3, 0.2]),
              "bias_ih": rng.normal(scale=0.3, size=H), "bias_hh": rng.normal(scale=0.3, size=H),
              "x": rng.normal(size=(T, B, I)), "h0": np.abs(rng.normal(size=(B, H)))}
    keys = list(indrnn.layout(I, H))
    R, S = rng.normal(size=(T, B, H)), [rng.normal(size=(B, H))]

    def fwd(a):
        return indrnn.forward({k: a[k] for k in keys}, a["x"], a["h0"], lengths, nonlinearity, bound)

    def bwd(cache):
        dx, dh0, g = indrnn.backward({k: arrays[k] for k in keys}, cache, R, S[0])
        return {**g, "x": dx, "h0": dh0}

    check_grads(fwd, bwd, arrays, R, S)
    if bound is not None:       # 1.3 is held at the bound: no gradient flows into it
        _, _, cache = fwd(arrays)
        assert bwd(cache)["weight_hh"][2] == 0.0


def test_indrnn_bound_holds_the_recurrent_weight():
    rng = np.random.default_rng(1)
    p = {"weight_ih": np.zeros((H, I)), "weight_hh": np.array([3.0, 0.5, -3.0, 1.0])}
    x = np.zeros((6, 1, I))
    h0 = np.ones((1, H))
    y, _, _ = indrnn.forward(p, x, h0, nonlinearity="tanh", recurrent_max=1.0)
    h = np.ones(H)
    for t in range(6):                       # the unrolled cell with |u| clipped to 1
        h = np.tanh(np.clip(p["weight_hh"], -1, 1) * h)
        assert np.allclose(y[t, 0], h)
    assert rng is not None


@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_min_gradcheck(kind, lengths):
    rng = np.random.default_rng(2)
    G = minrnn.GATES[kind]
    arrays = {"weight_ih": rng.normal(size=(G * H, I)), "bias_ih": rng.normal(scale=0.3, size=G * H),
              "x": rng.normal(size=(T, B, I)), "h0": rng.normal(size=(B, H))}
    R, S = rng.normal(size=(T, B, H)), [rng.normal(size=(B, H))]

    def fwd(a):
        return minrnn.forward({"weight_ih": a["weight_ih"], "bias_ih": a["bias_ih"]}, a["x"], a["h0"],
                              lengths, kind)

    def bwd(cache):
        dx, dh0, g = minrnn.backward({"weight_ih": arrays["weight_ih"], "bias_ih": arrays["bias_ih"]},
                                     cache, R, S[0])
        return {**g, "x": dx, "h0": dh0}

    check_grads(fwd, bwd, arrays, R, S)


def _sequential(kind, p, x, h):
    """The minGRU/minLSTM recurrence step by step (the paper's sequential mode)."""
    Hh = h.shape[1]
    k = x @ p["weight_ih"].T + p["bias_ih"]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    ys = []
    for t in range(x.shape[0]):
        kh = k[t, :, -Hh:]
        g = np.where(kh >= 0, kh + 0.5, sig(kh))
        if kind == "mingru":
            z = sig(k[t, :, :Hh])
        else:
            f, i = sig(k[t, :, :Hh]), sig(k[t, :, Hh:2 * Hh])
            z = i / (f + i)
        h = (1 - z) * h + z * g
        ys.append(h)
    return np.array(ys)


@pytest.mark.parametrize("steps", [37, 64, 101])        # several chunks, with and without padding
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_min_scan_equals_the_recurrence(kind, steps):
    rng = np.random.default_rng(3)
    G = minrnn.GATES[kind]
    p = {"weight_ih": rng.normal(size=(G * H, I)), "bias_ih": rng.normal(size=G * H)}
    x = rng.normal(size=(steps, B, I))
    h0 = rng.normal(size=(B, H))
    y, h_T, cache = minrnn.forward(p, x, h0, None, kind)
    ref = _sequential(kind, p, x, h0)
    assert rel_err(y, ref) < 1e-12
    assert rel_err(h_T, ref[-1]) < 1e-12
    # backward over many chunks against the transposed recurrence δhₜ = eₜ + aₜ₊₁ δhₜ₊₁
    e = rng.normal(size=(steps, B, H))
    _, dh0, _, dh = minrnn.backward(p, cache, e, None, return_dh=True)
    a = np.exp(-cache.decay)
    d = np.zeros((B, H))
    for t in range(steps - 1, -1, -1):
        d = e[t] + (a[t + 1] * d if t + 1 < steps else 0)
        assert rel_err(dh[t], d) < 1e-10
    assert rel_err(dh0, a[0] * d) < 1e-10


def test_min_scan_survives_steep_decay():
    """Gates near 1 for many steps: a chunk decays past e^−600 and is summed term by term."""
    steps = 80
    rng = np.random.default_rng(4)
    p = {"weight_ih": np.zeros((2 * H, I)), "bias_ih": np.concatenate([np.full(H, 40.0), rng.normal(size=H)])}
    x = rng.normal(size=(steps, B, I))
    h0 = rng.normal(size=(B, H))
    y, _, cache = minrnn.forward(p, x, h0, None, "mingru")
    assert np.all(np.isfinite(y))
    assert rel_err(y, _sequential("mingru", p, x, h0)) < 1e-12
    assert cache.decay.sum(axis=0).max() > 1000      # the case the fallback is for
    _, dh0, _ = minrnn.backward(p, cache, np.ones_like(y))
    assert np.all(np.isfinite(dh0))


# each variant alone, pairs that share code paths, and all of them at once
LSTM_CASES = [(P, False, False, 0.0, 0.0), (0, True, False, 0.0, 0.0), (0, False, True, 0.0, 0.0),
              (0, False, False, 0.3, 0.0), (0, False, False, 0.0, 0.4), (P, True, True, 0.0, 0.0),
              (P, False, False, 0.3, 0.4), (P, True, True, 0.3, 0.4)]


@pytest.mark.parametrize("proj,layer_norm,peephole,zoneout,rec_drop", LSTM_CASES)
def test_lstm_variants_gradcheck(proj, layer_norm, peephole, zoneout, rec_drop):
    rng = np.random.default_rng(5)
    shapes = lstm_variants.layout(I, H, True, proj, layer_norm, peephole)
    arrays = {k: rng.normal(scale=0.5, size=s) + (1.0 if k.startswith("ln_") and k.endswith("weight") else 0.0)
              for k, s in shapes.items()}
    Pp = proj or H
    arrays.update(x=rng.normal(size=(T, B, I)), h0=rng.normal(scale=0.5, size=(B, Pp)),
                  c0=rng.normal(scale=0.5, size=(B, H)))
    R, S = rng.normal(size=(T, B, Pp)), [rng.normal(size=(B, Pp)), rng.normal(size=(B, H))]
    keys = list(shapes)
    masks = zoneout > 0 or rec_drop > 0

    def fwd(a):                              # the same masks for every forward: the same seed
        return lstm_variants.forward({k: a[k] for k in keys}, a["x"], (a["h0"], a["c0"]), RAGGED,
                                     zoneout, rec_drop, np.random.default_rng(6) if masks else None)

    def bwd(cache):
        dx, (dh0, dc0), g = lstm_variants.backward({k: arrays[k] for k in keys}, cache, R, tuple(S))
        return {**g, "x": dx, "h0": dh0, "c0": dc0}

    check_grads(fwd, bwd, arrays, R, S)


@pytest.mark.parametrize("layer_norm,zoneout,rec_drop", [(True, 0.0, 0.0), (False, 0.3, 0.4), (True, 0.3, 0.4)])
def test_gru_variants_gradcheck(layer_norm, zoneout, rec_drop):
    rng = np.random.default_rng(7)
    shapes = gru_variants.layout(I, H, True, layer_norm)
    arrays = {k: rng.normal(scale=0.5, size=s) + (1.0 if k.startswith("ln_") and k.endswith("weight") else 0.0)
              for k, s in shapes.items()}
    arrays.update(x=rng.normal(size=(T, B, I)), h0=rng.normal(scale=0.5, size=(B, H)))
    R, S = rng.normal(size=(T, B, H)), [rng.normal(size=(B, H))]
    keys = list(shapes)
    masks = zoneout > 0 or rec_drop > 0

    def fwd(a):
        return gru_variants.forward({k: a[k] for k in keys}, a["x"], a["h0"], RAGGED, zoneout, rec_drop,
                                    np.random.default_rng(8) if masks else None)

    def bwd(cache):
        dx, dh0, g = gru_variants.backward({k: arrays[k] for k in keys}, cache, R, S[0])
        return {**g, "x": dx, "h0": dh0}

    check_grads(fwd, bwd, arrays, R, S)


def test_variants_without_options_are_the_plain_cells():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(T, B, I))
    p = {k: rng.normal(scale=0.5, size=s) for k, s in lstm_variants.layout(I, H).items()}
    y1, (h1, c1), _ = lstm_variants.forward(p, x, None, RAGGED)
    y2, (h2, c2), _ = lstm.forward(p, x, None, RAGGED)
    assert rel_err(y1, y2) < 1e-14 and rel_err(c1, c2) < 1e-14
    p = {k: rng.normal(scale=0.5, size=s) for k, s in gru_variants.layout(I, H).items()}
    y1, h1, _ = gru_variants.forward(p, x, None, RAGGED)
    y2, h2, _ = gru.forward(p, x, None, RAGGED)
    assert rel_err(y1, y2) < 1e-14 and rel_err(h1, h2) < 1e-14


def test_zoneout_keeps_states_and_dropout_scales():
    """zoneout 0.999: (almost) every unit keeps h0, c0; the masks really act."""
    rng = np.random.default_rng(10)
    p = {k: rng.normal(size=s) for k, s in lstm_variants.layout(I, H).items()}
    x = rng.normal(size=(T, B, I))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    y, (h, c), _ = lstm_variants.forward(p, x, (h0, c0), None, 0.999, 0.0, np.random.default_rng(0))
    assert np.allclose(h, h0) and np.allclose(c, c0)
    y_plain, _, _ = lstm_variants.forward(p, x, (h0, c0), None, 0.999, 0.0, None)
    assert not np.allclose(y_plain[-1], h0)


def test_variant_params_are_checked():
    p = {k: np.zeros(s) for k, s in lstm_variants.layout(I, H, proj_size=P).items()}
    p["weight_hr"] = np.zeros((P, H + 1))
    with pytest.raises(ValueError, match=r"params\['weight_hr'\]"):
        lstm_variants.forward(p, np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="unknown params key"):
        minrnn.forward({"weight_ih": np.zeros((2 * H, I)), "weight_hh": np.zeros((H, H))}, np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="params is missing 'weight_hh'"):
        indrnn.forward({"weight_ih": np.zeros((H, I))}, np.zeros((T, B, I)))
