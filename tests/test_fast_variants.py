"""The compiled variants (rnnkit.fast.{lstm_variants,gru_variants,indrnn}) equal the reference.

Value by value against rnnkit.cells.{lstm_variants,gru_variants,indrnn} — outputs, final
states, the whole cache, dx, dh0, every gradient and δh, and inference — in float64
(1e-12) and float32 (1e-5), with ragged lengths, on one thread and split among threads,
in every instruction set's build; the layer (2 layers, bidirectional, ragged) against
the same layer with the loops switched off; that the layer actually calls the C loops
(and which options keep NumPy); the reference fallback for what is not compiled.
"""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import fast
from rnnkit.cells import gru_variants, indrnn, lstm_variants
from tests.test_fast import assert_same, build, loop  # noqa: F401  (fixtures)

if not fast.available():
    pytest.skip("rnnkit.fast._fastrnn was not built", allow_module_level=True)

TOL = {np.float64: 1e-12, np.float32: 1e-5}
T, B, I, H, P = 6, 4, 3, 5, 3
RAGGED = np.array([4, 6, 1, 3])

# name -> (fast module name, reference module, layout options, forward keyword arguments)
CASES = {
    "lstm-proj": ("lstm_variants", lstm_variants, dict(proj_size=P), {}),
    "lstm-ln": ("lstm_variants", lstm_variants, dict(layer_norm=True), {}),
    "lstm-proj-ln": ("lstm_variants", lstm_variants, dict(proj_size=P, layer_norm=True), {}),
    "gru-ln": ("gru_variants", gru_variants, dict(layer_norm=True), {}),
    "indrnn-relu": ("indrnn", indrnn, {}, dict(nonlinearity="relu")),
    "indrnn-tanh-bounded": ("indrnn", indrnn, {}, dict(nonlinearity="tanh", recurrent_max=0.9)),
}


@pytest.fixture(autouse=True)
def compiled(monkeypatch):
    monkeypatch.delenv("RNNKIT_NO_COMPILE", raising=False)


def make(case, rng, dtype, t=T, b=B, i=I, h=H, p=P, bias=True):
    """(fast module, reference module, params, x, h0, d_outputs, d_final, kwargs) with
    non-zero, distinct biases, layer-norm gains and biases, and random states."""
    name, ref, opts, kw = CASES[case]
    if ref is lstm_variants:
        shapes = lstm_variants.layout(i, h, bias, p if "proj_size" in opts else 0, "layer_norm" in opts)
        out = p if "proj_size" in opts else h
    elif ref is gru_variants:
        shapes, out = gru_variants.layout(i, h, bias, True), h
    else:
        shapes, out = indrnn.layout(i, h, bias), h
        shapes = {k: v for k, v in shapes.items()}
    params = {k: rng.uniform(-0.8, 0.8, s) for k, s in shapes.items()}
    if ref is indrnn:
        params["weight_hh"] = rng.uniform(-1.2, 1.2, h)         # some held by the bound
    for k in params:
        if k.startswith("ln_") and k.endswith("weight"):
            params[k] = rng.uniform(0.5, 1.5, params[k].shape)
    params = {k: v.astype(dtype) for k, v in params.items()}

    def arr(*shape):
        return rng.normal(size=shape).astype(dtype)
    lstm = ref is lstm_variants
    h0 = (arr(b, out), arr(b, h)) if lstm else np.abs(arr(b, h))
    d_final = (arr(b, out), arr(b, h)) if lstm else arr(b, h)
    return fast.get(name), ref, params, arr(t, b, i), h0, arr(t, b, out), d_final, kw


def run(module, params, x, h0, lengths, dy, d_final, kw):
    y, final, cache = module.forward(params, x, h0, lengths, **kw)
    grads = module.backward(params, cache, dy, d_final, return_dh=True)
    return {"y": y, "final": final, "cache": cache, "backward": grads,
            "infer": module.infer(params, x, h0, lengths, **kw)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_variant_equals_reference(case, dtype, lengths, loop):
    f, r, params, x, h0, dy, d_final, kw = make(case, np.random.default_rng(0), dtype)
    ours, ref = (run(m, params, x, h0, lengths, dy, d_final, kw) for m in (f, r))
    assert_same(ours, ref, TOL[dtype], f"{case} {np.dtype(dtype)} {loop}")


@pytest.mark.parametrize("case", list(CASES))
def test_no_initial_state_no_outputs_used_and_no_bias(case):
    rng = np.random.default_rng(1)
    for bias, dy_used in ((True, False), (False, True)):
        f, r, params, x, _, dy, d_final, kw = make(case, rng, np.float64, bias=bias)
        dy = dy if dy_used else None
        ours, ref = (run(m, params, x, None, RAGGED, dy, d_final, kw) for m in (f, r))
        assert set(ours["backward"][2]) == set(params)
        assert_same(ours, ref, 1e-12, f"{case} bias={bias}")


@pytest.mark.parametrize("case", list(CASES))
def test_caches_are_interchangeable(case):
    f, r, params, x, h0, dy, d_final, kw = make(case, np.random.default_rng(2), np.float64)
    cache_f = f.forward(params, x, h0, RAGGED, **kw)[2]
    cache_r = r.forward(params, x, h0, RAGGED, **kw)[2]
    assert type(cache_f) is type(cache_r)
    want = r.backward(params, cache_r, dy, d_final)
    assert_same(f.backward(params, cache_r, dy, d_final), want, 1e-12, "fast on the reference's cache")
    assert_same(r.backward(params, cache_f, dy, d_final), want, 1e-12, "reference on the fast cache")


def test_odd_sizes_and_single_steps_in_every_build(build):
    # partial panels and row blocks (B = 7, H = 13, P = 6); T = 1 calls with 1 to 3 rows
    # read the weights unpacked and carry the state from call to call
    rng = np.random.default_rng(3)
    for case in CASES:
        for dtype in (np.float64, np.float32):
            f, r, params, x, h0, dy, d_final, kw = make(case, rng, dtype, t=5, b=7, i=5, h=13, p=6)
            lengths = np.array([5, 2, 4, 1, 5, 3, 4])
            ours, ref = (run(m, params, x, h0, lengths, dy, d_final, kw) for m in (f, r))
            assert_same(ours, ref, TOL[dtype], f"{build} {case} {np.dtype(dtype)}")
            for rows in (1, 3):
                s, ys = None, []
                for t in range(3):
                    y, s = f.infer(params, x[t:t + 1, :rows], s, **kw)
                    ys.append(y)
                want_y, want_s, _ = r.forward(params, x[:3, :rows], **kw)
                assert_same({"y": np.concatenate(ys), "s": s}, {"y": want_y, "s": want_s}, TOL[dtype],
                            f"{build} {case} single steps B={rows}")


@pytest.mark.parametrize("where", ["in-loop", "numpy-first"])
def test_both_ways_of_projecting_the_inputs(where, loop, monkeypatch):
    # without layer norm the LSTM kernel projects x_t itself when W_ih is small
    from rnnkit.fast import _util
    monkeypatch.setattr(_util, "IN_LOOP_MAX_BYTES", 1 << 40 if where == "in-loop" else -1)
    monkeypatch.setattr(fast, "max_threads", lambda: 1)      # the size alone decides
    f, r, params, x, h0, dy, d_final, kw = make("lstm-proj", np.random.default_rng(4), np.float64)
    ours, ref = (run(m, params, x, h0, RAGGED, dy, d_final, kw) for m in (f, r))
    assert_same(ours, ref, 1e-12, where)


def test_what_is_not_compiled_runs_the_reference():
    rng = np.random.default_rng(5)
    shapes = lstm_variants.layout(I, H, True, P, True, peephole=True)
    params = {k: rng.uniform(-0.5, 0.5, s) for k, s in shapes.items()}
    x = rng.normal(size=(T, B, I))
    f = fast.get("lstm_variants")
    assert not f.compiled(params) and f.compiled({"weight_hh": 0}, zoneout=0.5)    # no rng: no masks
    np.testing.assert_array_equal(f.forward(params, x)[0], lstm_variants.forward(params, x)[0])
    del params["weight_ci"], params["weight_cf"], params["weight_co"]
    runs = [m.forward(params, x, None, RAGGED, zoneout=0.3, recurrent_dropout=0.3, rng=np.random.default_rng(6))
            for m in (f, lstm_variants)]
    assert runs[0][2].zone is not None
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    dy = rng.normal(size=(T, B, P))
    assert_same(f.backward(params, runs[0][2], dy), lstm_variants.backward(params, runs[1][2], dy), 0.0)
    g = fast.get("gru_variants")
    gp = {k: rng.uniform(-0.5, 0.5, s) for k, s in gru_variants.layout(I, H).items()}
    assert not g.compiled(gp)                           # no layer norm: not this module's loop
    np.testing.assert_array_equal(g.forward(gp, x)[0], gru_variants.forward(gp, x)[0])


@pytest.mark.parametrize("case", list(CASES))
def test_errors_match_the_reference(case):
    f, r, params, x, _, _, _, kw = make(case, np.random.default_rng(7), np.float64)
    bad = [(x[0], ValueError, "3 dims"), (x.astype(np.int64), TypeError, "float"),
           (np.full_like(x, np.nan), ValueError, "NaN")]
    for xb, exc, msg in bad:
        for impl in (f, r):
            with pytest.raises(exc, match=msg):
                impl.forward(params, xb, **kw)
    for impl in (f, r):
        with pytest.raises(ValueError, match="lengths"):
            impl.forward(params, x, None, np.array([0, 1, 2, 3]), **kw)
        with pytest.raises(TypeError, match="cache"):
            impl.backward(params, ("not", "a", "cache"), None)
        with pytest.raises(ValueError, match="unknown params"):
            impl.forward({**params, "weight_xx": x}, x, **kw)


# ---------------------------------------------------------------- through the layer

LAYERS = {
    "lstm-proj": ("lstm", dict(proj_size=2), "lstm_variants"),
    "lstm-ln": ("lstm", dict(layer_norm=True), "lstm_variants"),
    "lstm-proj-ln": ("lstm", dict(proj_size=2, layer_norm=True), "lstm_variants"),
    "gru-ln": ("gru", dict(layer_norm=True), "gru_variants"),
    "indrnn": ("indrnn", {}, "indrnn"),
    "indrnn-tanh-bounded": ("indrnn", dict(nonlinearity="tanh", recurrent_max=0.95), "indrnn"),
}


def layer_run(cell, kw, dtype, numpy):
    """Forward, backward and no_grad inference of a 2-layer bidirectional layer with ragged
    lengths, and the layer's implementation; ``numpy`` switches the C loops off."""
    import os
    old = os.environ.get("RNNKIT_NO_COMPILE")
    os.environ["RNNKIT_NO_COMPILE"] = "1" if numpy else "0"
    try:
        rng = np.random.default_rng(8)
        layer = rk.Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, dtype=dtype, seed=9, **kw)
        for k, v in layer.params.items():           # non-zero biases and LN biases
            if "bias" in k:
                v[...] = rng.uniform(-0.5, 0.5, v.shape)
        x = rng.standard_normal((T, B, 3)).astype(dtype)
        lengths = np.array([6, 2, 5, 1])
        # a random h0: with h0 = 0 layer norm's first W_hh h0 is 0, its scale 1/√ε, and
        # float32 rounding (NumPy's and C's alike) grows 300-fold in the gradients
        h0 = tuple(rng.standard_normal(shape).astype(dtype) for shape in
                   ((4, B, layer.output_size), (4, B, 5))) if cell == "lstm" else \
            rng.standard_normal((4, B, 5)).astype(dtype)
        y, h_n = layer.forward(x, h0, lengths)
        impl = layer._cell.__name__
        dy = rng.standard_normal(y.shape).astype(dtype)
        dh_n = tuple(rng.standard_normal(a.shape).astype(dtype) for a in h_n) if cell == "lstm" \
            else rng.standard_normal(h_n.shape).astype(dtype)
        dx, dh0 = layer.backward(dy, dh_n)
        layer.eval()
        with rk.no_grad():
            y_inf, h_inf = layer.forward(x, h0, lengths)
        return impl, {"y": y, "h_n": h_n, "dx": dx, "dh0": dh0, "grads": dict(layer.grads),
                      "y_inf": y_inf, "h_inf": h_inf}
    finally:
        if old is None:
            del os.environ["RNNKIT_NO_COMPILE"]
        else:
            os.environ["RNNKIT_NO_COMPILE"] = old


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_runs_compiled_and_equals_numpy(name, dtype):
    cell, kw, module = LAYERS[name]
    impl_c, ours = layer_run(cell, kw, dtype, numpy=False)
    impl_n, theirs = layer_run(cell, kw, dtype, numpy=True)
    assert impl_c == f"rnnkit.fast.{module}" and impl_n == f"rnnkit.cells.{module}"
    assert_same(ours, theirs, TOL[dtype], name)


def test_the_layer_calls_the_c_loops(monkeypatch):
    calls = []
    for loop_name in ("lstmv_fwd", "lstmv_bwd", "lstmv_inf", "gruln_fwd", "gruln_bwd", "gruln_inf",
                      "indrnn_fwd", "indrnn_bwd", "indrnn_inf"):
        original = getattr(fast._ext, loop_name)
        monkeypatch.setattr(fast._ext, loop_name,
                            lambda *a, _f=original, _n=loop_name: (calls.append(_n), _f(*a))[1])
    x = np.zeros((T, B, 3), np.float32)
    for cell, kw, _ in LAYERS.values():
        layer = rk.Recurrent(cell, 3, 4, **kw)
        y, _ = layer.forward(x)
        layer.backward(np.ones_like(y))
        with rk.no_grad():
            layer.forward(x)
    assert sorted(set(calls)) == sorted(["lstmv_fwd", "lstmv_bwd", "lstmv_inf", "gruln_fwd", "gruln_bwd",
                                         "gruln_inf", "indrnn_fwd", "indrnn_bwd", "indrnn_inf"])
    assert calls.count("lstmv_fwd") == 3 and calls.count("indrnn_bwd") == 2


@pytest.mark.parametrize("cell,kw,training,module", [
    ("lstm", dict(proj_size=2, peephole=True), True, "rnnkit.cells.lstm_variants"),
    ("lstm", dict(layer_norm=True, zoneout=0.2), True, "rnnkit.cells.lstm_variants"),
    ("lstm", dict(layer_norm=True, zoneout=0.2), False, "rnnkit.fast.lstm_variants"),
    ("gru", dict(layer_norm=True, recurrent_dropout=0.2), True, "rnnkit.cells.gru_variants"),
    ("gru", dict(layer_norm=True, recurrent_dropout=0.2), False, "rnnkit.fast.gru_variants"),
    ("gru", dict(zoneout=0.2), False, "rnnkit.fast.gru"),
    ("indrnn", dict(recurrent_max=2.0), True, "rnnkit.fast.indrnn"),
    ("mingru", {}, True, "rnnkit.fast.minrnn"),
    ("minlstm", {}, False, "rnnkit.fast.minrnn"),
])
def test_which_implementation_runs(cell, kw, training, module):
    from rnnkit.cells import variants
    layer = rk.Recurrent(cell, 3, 4, **kw)
    layer.train(training)
    layer.forward(np.zeros((T, B, 3), np.float32))
    assert layer._cell.__name__ == module
    assert (variants.fast_module(cell, layer.variant, training) is None) == module.startswith("rnnkit.cells")
