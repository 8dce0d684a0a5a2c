"""The compiled scan of minGRU and minLSTM (rnnkit.fast.minrnn, _minscan.c) equals the
NumPy reference (rnnkit.cells.minrnn), which the finite-difference tests prove.

Outputs, final states, dx, dh0, δh and every weight gradient, float64 to 1e-12 and
float32 to 1e-5 (relative to each tensor's largest entry), with ragged lengths: on one
thread, with the channels split among threads, and with time split too (the two-level
scan: few channels, several chunks); long sequences with steep decays; every
instruction set's build; through Recurrent (layers, bidirectional), where the compiled
scan is what runs; and the float64 finite-difference check of the compiled path itself.
Every test runs twice: with the input projection inside the scan (``min_fwd_x``, the
path for I <= FUSE_MAX_INPUT) and with NumPy's products around it; the two paths also
agree with each other to 1e-12 in float64, for every input size the C loops
special-case (1 to 4) and one past them.
"""

import shutil

import numpy as np
import pytest

from conftest import rel_err
from rnnkit import fast
from rnnkit.cells import minrnn as ref
from rnnkit.fast import minrnn as fm

HAVE_CC = any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))
if not fast.available() and not HAVE_CC:
    pytest.skip("no C compiler here: rnnkit.fast._fastrnn was not built", allow_module_level=True)

TOL = {np.float64: 1e-12, np.float32: 1e-5}
KINDS = ["mingru", "minlstm"]


@pytest.fixture(autouse=True)
def compiled(monkeypatch):
    monkeypatch.delenv("RNNKIT_NO_COMPILE", raising=False)


@pytest.fixture(autouse=True, params=["fused", "unfused"])
def path(request, monkeypatch):
    """The input projection inside the compiled scan (every test's I <= 4), or NumPy's."""
    if request.param == "unfused":
        monkeypatch.setattr(fm, "FUSE_MAX_INPUT", 0)
    return request.param


@pytest.fixture(params=["serial", "channels", "time"])
def threads(request):
    """One thread; three threads on many channels (each scans its own); three threads on
    few channels (time in chunks: the two-level scan). The size per case picks which."""
    if request.param == "serial":
        yield request.param
        return
    flops, n = fast.set_flops_per_thread(0), fast.set_max_threads(3)
    try:
        yield request.param
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(n)


def _inputs(kind, dtype, T, B, I, H, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    G = ref.GATES[kind]
    p = {"weight_ih": (scale * rng.normal(size=(G * H, I))).astype(dtype),
         "bias_ih": rng.normal(size=G * H).astype(dtype)}
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    dy = rng.normal(size=(T, B, H)).astype(dtype)
    dfinal = rng.normal(size=(B, H)).astype(dtype)
    return p, x, h0, dy, dfinal


def _both(kind, p, x, h0, lengths, dy, dfinal):
    out = []
    for impl in (fm, ref):
        y, final, cache = impl.forward(p, x, h0, lengths, kind)
        dx, dh0, grads, dh = impl.backward(p, cache, dy, dfinal, return_dh=True)
        out.append({"y": y, "final": final, "dx": dx, "dh0": dh0, "dh": dh, **grads})
    return out


def _assert_same(ours, theirs, tol):
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype and ours[name].shape == theirs[name].shape, name
        err = rel_err(ours[name], theirs[name])
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_compiled_scan_equals_the_reference(kind, ragged, dtype, threads):
    B, H = (4, 300) if threads == "channels" else (4, 5)      # 1200 channels >= 3 x 256, or 20
    T = 41
    p, x, h0, dy, dfinal = _inputs(kind, dtype, T, B, 3, H)
    lengths = np.array([17, 41, 1, 30]) if ragged else None
    ours, theirs = _both(kind, p, x, h0, lengths, dy, dfinal)
    _assert_same(ours, theirs, TOL[dtype])
    if ragged:                                      # zero past each end, the state carried
        alone = fm.forward(p, x[:17, :1], h0[:1], None, kind)[1][0]       # sequence 0 on its own
        assert not ours["y"][17:, 0].any() and rel_err(ours["final"][0], alone) <= TOL[dtype]


@pytest.mark.parametrize("kind", KINDS)
def test_unused_outputs_and_final_state(kind, threads):
    p, x, h0, _, _ = _inputs(kind, np.float64, 23, 2, 2, 4)
    for dy, dfinal in ((None, np.ones((2, 4))), (np.ones((23, 2, 4)), None), (None, None)):
        ours, theirs = _both(kind, p, x, h0, None, dy, dfinal)
        _assert_same(ours, theirs, 1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", KINDS)
def test_long_sequences_with_steep_decays(kind, dtype, threads):
    """|k| up to ~60: gates of 1 − 1e-26 and decays that underflow; nothing overflows."""
    p, x, h0, dy, dfinal = _inputs(kind, dtype, 3000, 2, 2, 3, scale=20.0, seed=1)
    ours, theirs = _both(kind, p, x, h0, np.array([3000, 2200]), dy, dfinal)
    assert all(np.isfinite(v).all() for v in ours.values())
    _assert_same(ours, theirs, 10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_that_decay_below_the_normal_range(kind, dtype, threads):
    """Only h_T reaches the loss (as in the adding problem): δh decays over the steps into
    the subnormal numbers, which the compiled passes flush to zero (FTZ/DAZ) and the
    reference keeps; both agree, and the calling thread makes subnormals again after."""
    p, x, h0, _, _ = _inputs(kind, dtype, 1500, 2, 2, 3, seed=2)
    dfinal = np.ones((2, 3), dtype=dtype)
    ours, theirs = _both(kind, p, x, h0, None, None, dfinal)
    tiny = np.finfo(dtype).tiny
    assert np.any((theirs["dh"] != 0) & (np.abs(theirs["dh"]) < tiny))     # the case arises
    _assert_same(ours, theirs, TOL[dtype])
    assert np.multiply(np.array(tiny, dtype=dtype), dtype(0.5)) != 0      # FTZ is off again


@pytest.mark.parametrize("kind", KINDS)
def test_every_build_and_either_cache(kind, path):
    p, x, h0, dy, dfinal = _inputs(kind, np.float64, 19, 3, 2, 5)
    _, _, ref_cache = ref.forward(p, x, h0, None, kind)
    expected = ref.backward(p, ref_cache, dy, dfinal, return_dh=True)
    old = fast.isa()
    try:
        for isa in fast._ext.ISAS:
            fast.set_isa(isa)
            y, _, cache = fm.forward(p, x, h0, None, kind)
            assert rel_err(y, ref.forward(p, x, h0, None, kind)[0]) < 1e-12, isa
            assert cache.z is None                          # the compiled forward's cache
            assert (cache.k is None) == (path == "fused"), isa      # k computed inside the scan
            for got in (fm.backward(p, cache, dy, dfinal, True), ref.backward(p, cache, dy, dfinal, True),
                        fm.backward(p, ref_cache, dy, dfinal, True)):
                assert rel_err(got[0], expected[0]) < 1e-12 and rel_err(got[3], expected[3]) < 1e-12, isa
                for name in expected[2]:
                    assert rel_err(got[2][name], expected[2][name]) < 1e-12, (isa, name)
    finally:
        fast.set_isa(old)


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("kind", KINDS)
def test_compiled_gradcheck(kind, ragged):
    """Central differences in float64 through rnnkit.fast.minrnn itself."""
    p, x, h0, R, S = _inputs(kind, np.float64, 5, 3, 3, 4, seed=2)
    lengths = np.array([3, 5, 1]) if ragged else None
    arrays = {**p, "x": x, "h0": h0}

    def loss():
        y, final, _ = fm.forward({k: arrays[k] for k in p}, arrays["x"], arrays["h0"], lengths, kind)
        return float(np.sum(y * R) + np.sum(final * S))

    _, _, cache = fm.forward(p, x, h0, lengths, kind)
    dx, dh0, grads = fm.backward(p, cache, R, S)
    analytic = {**grads, "x": dx, "h0": dh0}
    eps = 1e-6
    for name, a in arrays.items():
        num = np.empty_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            lp = loss()
            a[idx] = old - eps
            lm = loss()
            a[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        assert np.abs(num).max() > 0, name
        assert rel_err(analytic[name], num) < 1e-6, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_runs_the_compiled_scan(kind, dtype, monkeypatch):
    import rnnkit as rk

    rng = np.random.default_rng(4)
    T, B, I, H = 13, 3, 4, 6
    x = rng.normal(size=(B, T, I)).astype(dtype)
    lengths = np.array([13, 7, 2])
    dy = rng.normal(size=(B, T, 2 * H)).astype(dtype)
    dh_n = rng.normal(size=(4, B, H)).astype(dtype)
    h0 = rng.normal(size=(4, B, H)).astype(dtype)
    results = []
    for off in ("", "1"):
        monkeypatch.setenv("RNNKIT_NO_COMPILE", off)
        m = rk.Recurrent(kind, I, H, num_layers=2, bidirectional=True, batch_first=True, dtype=dtype, seed=3)
        y, h_n = m.forward(x, h0, lengths)
        assert m._cell.__name__ == ("rnnkit.fast.minrnn" if not off else "rnnkit.cells.minrnn")
        dx, dh0 = m.backward(dy, dh_n)
        results.append({"y": y, "h_n": h_n, "dx": dx, "dh0": dh0, **{k: v.copy() for k, v in m.grads.items()},
                        **{f"dh{l}{d}": m.hidden_grads[l][d] for l in range(2) for d in range(2)}})
    _assert_same(*results, TOL[dtype])


def test_a_build_without_the_scan_runs_the_reference(monkeypatch):
    """An extension built before the scan existed (no min_fwd): the NumPy cells run."""
    class Old:
        pass

    monkeypatch.setattr(fm, "_all_kernels", lambda: Old())
    p, x, h0, dy, dfinal = _inputs("mingru", np.float64, 7, 2, 2, 3)
    y, _, cache = fm.forward(p, x, h0, None, "mingru")
    assert cache.z is not None                              # the reference's cache
    assert np.array_equal(y, ref.forward(p, x, h0, None, "mingru")[0])


def _run(kind, p, x, h0, lengths, dy, dfinal):
    y, final, cache = fm.forward(p, x, h0, lengths, kind)
    dx, dh0, grads, dh = fm.backward(p, cache, dy, dfinal, return_dh=True)
    return {"y": y, "final": final, "dx": dx, "dh0": dh0, "dh": dh, **grads}, cache


@pytest.mark.parametrize("I", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("kind", KINDS)
def test_fused_and_unfused_paths_agree(kind, bias, I, threads, monkeypatch):
    """The projection inside the scan against NumPy's products around it, float64 to
    1e-12, ragged: I = 1 .. 4 (the sizes the C loops write out) and 6 (their loop over
    the inputs, which runs only when FUSE_MAX_INPUT is raised)."""
    B, H = (4, 300) if threads == "channels" else (4, 5)
    p, x, h0, dy, dfinal = _inputs(kind, np.float64, 29, B, I, H, seed=I)
    if not bias:
        del p["bias_ih"]
    lengths = np.array([11, 29, 1, 20])
    out = {}
    for name, limit in (("fused", 16), ("unfused", 0)):
        monkeypatch.setattr(fm, "FUSE_MAX_INPUT", limit)
        out[name], cache = _run(kind, p, x, h0, lengths, dy, dfinal)
        assert (cache.k is None) == (name == "fused")
    assert out["fused"].keys() == out["unfused"].keys() == {"y", "final", "dx", "dh0", "dh", *p}
    _assert_same(out["fused"], out["unfused"], 1e-12)
    assert not out["fused"]["dx"][11:, 0].any()             # nothing flows past a length


@pytest.mark.parametrize("kind", KINDS)
def test_fused_and_unfused_through_recurrent(kind, monkeypatch):
    """Two bidirectional layers with ragged lengths, float64: the first layer's input
    (I = 3) and the second's (2H = 4) both small enough to fuse, or neither fused."""
    import rnnkit as rk

    rng = np.random.default_rng(7)
    T, B, I, H = 17, 3, 3, 2
    x = rng.normal(size=(T, B, I))
    lengths = np.array([17, 9, 4])
    dy = rng.normal(size=(T, B, 2 * H))
    dh_n = rng.normal(size=(4, B, H))
    h0 = rng.normal(size=(4, B, H))
    results = []
    for limit in (4, 0):
        monkeypatch.setattr(fm, "FUSE_MAX_INPUT", limit)
        m = rk.Recurrent(kind, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=5)
        y, h_n = m.forward(x, h0, lengths)
        assert all((c.k is None) == (limit > 0) for layer in m.caches for c in layer)
        dx, dh0 = m.backward(dy, dh_n)
        results.append({"y": y, "h_n": h_n, "dx": dx, "dh0": dh0, **{k: v.copy() for k, v in m.grads.items()},
                        **{f"dh{l}{d}": m.hidden_grads[l][d] for l in range(2) for d in range(2)}})
    _assert_same(*results, 1e-12)


def test_a_build_without_the_fused_scan_runs_the_products(monkeypatch):
    """An extension with min_fwd but not min_fwd_x: the products around the scan; a
    fused forward's cache given to a backward without min_bwd_x: k computed again."""
    k = fast.kernels()
    monkeypatch.setattr(fm, "FUSE_MAX_INPUT", 4)

    class Old:
        min_fwd, min_bwd = k.min_fwd, k.min_bwd

    p, x, h0, dy, dfinal = _inputs("mingru", np.float64, 7, 2, 2, 3)
    expected, fused_cache = _run("mingru", p, x, h0, None, dy, dfinal)
    assert fused_cache.k is None
    monkeypatch.setattr(fm, "_all_kernels", lambda: Old())
    got, cache = _run("mingru", p, x, h0, None, dy, dfinal)
    assert cache.k is not None
    _assert_same(got, expected, 1e-12)
    dx, dh0, grads = fm.backward(p, fused_cache, dy, dfinal)
    _assert_same({"dx": dx, "dh0": dh0, **grads}, {k: expected[k] for k in ("dx", "dh0", *grads)}, 1e-12)
