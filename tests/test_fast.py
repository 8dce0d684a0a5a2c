"""The compiled fast path (rnnkit.fast) equals the reference cells (rnnkit.cells).

The reference is what the finite-difference and torch tests prove; here every fast
cell is compared with it value by value — outputs, final states, the whole cache,
dx, dh0, every weight gradient and δh — in float64 (to 1e-12) and float32 (to
1e-5), with ragged lengths, h0 given or None, d_final_state given or None, on one
thread and with the batch split among threads, in every instruction set's build
of the loops the CPU runs. Also: the NumPy fallback and its one warning, the
switch-off variable, the environment left alone, and the errors.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit import fast
from rnnkit.cells import CELLS, GATES
from rnnkit.fast import gru as fast_gru

HAVE_CC = any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))
if not fast.available() and not HAVE_CC:
    pytest.skip("no C compiler here: rnnkit.fast._fastrnn was not built", allow_module_level=True)
ISAS = fast._ext.ISAS if fast.available() else ()

CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASE_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
T, B, I, H = 6, 4, 3, 5
RAGGED = np.array([4, 6, 1, 3])        # unsorted, includes 1 and T


def make_params(cell, rng, dtype, bias="both", i=I, h=H):
    """uniform(-1/√H, 1/√H)·2 weights; non-zero, distinct biases (or some of them absent)."""
    G, k = GATES[cell], 2.0 / np.sqrt(h)
    p = {"weight_ih": rng.uniform(-k, k, (G * h, i)), "weight_hh": rng.uniform(-k, k, (G * h, h)),
         "bias_ih": rng.uniform(-k, k, G * h), "bias_hh": rng.uniform(-k, k, G * h)}
    if bias in ("none", "hh"):
        del p["bias_ih"]
    if bias in ("none", "ih"):
        del p["bias_hh"]
    return {name: v.astype(dtype) for name, v in p.items()}


def state(cell, rng, dtype, b=B, h=H):
    def s():
        return rng.normal(scale=0.5, size=(b, h)).astype(dtype)
    return (s(), s()) if cell == "lstm" else s()


def kw(cell, nl):
    return {"nonlinearity": nl} if cell == "rnn" else {}


def flat(obj, prefix=""):
    """Name -> array for every array in nested tuples, dicts and caches."""
    if obj is None or isinstance(obj, str):
        return {}
    if isinstance(obj, np.ndarray):
        return {prefix: obj}
    if hasattr(obj, "_asdict"):
        obj = obj._asdict()
    if isinstance(obj, dict):
        items = obj.items()
    else:
        items = enumerate(obj)
    out = {}
    for k, v in items:
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def assert_same(ours, ref, tol, what=""):
    """Every array equal to the reference within ``tol`` relative to its largest entry."""
    a, b = flat(ours), flat(ref)
    assert a.keys() == b.keys(), f"{what}: different structure {sorted(a.keys() ^ b.keys())}"
    for name in b:
        x, y = a[name], b[name]
        assert x.shape == y.shape and x.dtype == y.dtype, f"{what} {name}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
        if y.dtype == bool:
            assert np.array_equal(x, y), f"{what} {name}"
            continue
        err = np.abs(x - y).max(initial=0.0) / max(1.0, np.abs(y).max(initial=0.0))
        assert err <= tol, f"{what} {name}: relative error {err:.2e} > {tol:.0e}"


@pytest.fixture(autouse=True)
def compiled(monkeypatch):
    """The fast path on, whatever the environment says (one test turns it off itself)."""
    monkeypatch.delenv("RNNKIT_NO_COMPILE", raising=False)


@pytest.fixture(params=["serial", "threaded"])
def loop(request):
    """Run the kernels on one thread, or split every batch among three threads."""
    if request.param == "serial":
        yield request.param
        return
    flops = fast.set_flops_per_thread(0)
    threads = fast.set_max_threads(3)
    try:
        yield request.param
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)


def run_both(cell, nl, dtype, lengths, with_h0, with_dfinal, seed=0, t=T, b=B, i=I, h=H,
             bias="both", d_outputs=True):
    """Forward and backward (with return_dh) through the fast and the reference cell."""
    rng = np.random.default_rng(seed)
    params = make_params(cell, rng, dtype, bias, i, h)
    x = rng.normal(size=(t, b, i)).astype(dtype)
    h0 = state(cell, rng, dtype, b, h) if with_h0 else None
    dy = rng.normal(size=(t, b, h)).astype(dtype) if d_outputs else None
    dfinal = state(cell, rng, dtype, b, h) if with_dfinal else None
    results = []
    for impl in (fast.get(cell), CELLS[cell]):
        y, final, cache = impl.forward(params, x, h0, lengths, **kw(cell, nl))
        grads = impl.backward(params, cache, dy, dfinal, return_dh=True)
        results.append({"y": y, "final": final, "cache": cache, "backward": grads})
    return results


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no-h0"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_fast_equals_reference(cell, nl, dtype, lengths, with_h0, loop):
    ours, ref = run_both(cell, nl, dtype, lengths, with_h0, with_dfinal=with_h0)
    assert_same(ours, ref, TOL[dtype], f"{cell} {np.dtype(dtype)} {loop}")


@pytest.mark.parametrize("bias", ["none", "ih", "hh"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_fast_equals_reference_without_some_biases(cell, nl, bias, loop):
    ours, ref = run_both(cell, nl, np.float64, RAGGED, True, True, bias=bias)
    assert set(ours["backward"][2]) == set(ref["backward"][2])
    assert_same(ours, ref, 1e-12, f"{cell} bias={bias}")


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_unused_outputs_and_long_float32_sequence(cell, nl, loop):
    # d_outputs None (only the final state is used), and errors that could pile up
    # over many float32 steps with the rational tanh stay within 1e-5
    ours, ref = run_both(cell, nl, np.float32, None, True, True, d_outputs=False)
    assert_same(ours, ref, 1e-5, "d_outputs=None")
    ours, ref = run_both(cell, nl, np.float32, np.array([80, 37, 1]), True, True,
                         seed=3, t=80, b=3, i=7, h=24)
    assert_same(ours, ref, 1e-5, "T=80 float32")


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_caches_are_interchangeable(cell, nl):
    rng = np.random.default_rng(1)
    params = make_params(cell, rng, np.float64)
    x = rng.normal(size=(T, B, I))
    dy = rng.normal(size=(T, B, H))
    f, r = fast.get(cell), CELLS[cell]
    _, _, cache_f = f.forward(params, x, None, RAGGED, **kw(cell, nl))
    _, _, cache_r = r.forward(params, x, None, RAGGED, **kw(cell, nl))
    assert type(cache_f) is type(cache_r)
    assert_same(f.backward(params, cache_r, dy), r.backward(params, cache_r, dy), 1e-12, "fast on ref cache")
    assert_same(r.backward(params, cache_f, dy), r.backward(params, cache_r, dy), 1e-12, "ref on fast cache")


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_inputs_are_never_written(cell, nl, loop):
    rng = np.random.default_rng(2)
    params = make_params(cell, rng, np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    h0 = state(cell, rng, np.float32)
    dy = rng.normal(size=(T, B, H)).astype(np.float32)
    dfinal = state(cell, rng, np.float32)
    lengths = RAGGED.copy()
    before = [flat(a) for a in (params, x, h0, dy, dfinal, lengths)]
    impl = fast.get(cell)
    y, final, cache = impl.forward(params, x, h0, lengths, **kw(cell, nl))
    impl.backward(params, cache, dy, dfinal, return_dh=True)
    after = [flat(a) for a in (params, x, h0, dy, dfinal, lengths)]
    for b_, a_ in zip(before, after):
        for name in b_:
            assert np.array_equal(b_[name], a_[name]), name
    # the returned arrays are the caller's to change: writing them leaves the cache intact
    h_saved = cache.h.copy()
    y[...] = 7.0
    for s in (final if isinstance(final, tuple) else (final,)):
        s[...] = 7.0
    assert np.array_equal(cache.h, h_saved)


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_non_contiguous_inputs(cell, nl, loop):
    # batch-first views, Fortran-ordered weights and reversed gradients, as a layer passes them
    rng = np.random.default_rng(4)
    params = make_params(cell, rng, np.float64)
    params_f = {k: np.asfortranarray(v) for k, v in params.items()}
    x = rng.normal(size=(B, T, I)).swapaxes(0, 1)
    dy = rng.normal(size=(T, B, H))[::-1]
    f, r = fast.get(cell), CELLS[cell]
    yf, sf, cf = f.forward(params_f, x, None, RAGGED, **kw(cell, nl))
    yr, sr, cr = r.forward(params, np.ascontiguousarray(x), None, RAGGED, **kw(cell, nl))
    assert_same((yf, sf), (yr, sr), 1e-12, "forward")
    assert_same(f.backward(params_f, cf, dy), r.backward(params, cr, np.ascontiguousarray(dy)),
                1e-12, "backward")


def test_single_step_calls_carry_the_state(loop):
    # a generation loop: T = 1 per call (W_hh used transposed by the gemm), state carried
    rng = np.random.default_rng(5)
    for cell, nl in CASES:
        params = make_params(cell, rng, np.float64, h=H)
        xs = rng.normal(size=(9, 1, 2, I))
        s_f = s_r = None
        for x in xs:
            y_f, s_f, _ = fast.get(cell).forward(params, x, s_f, **kw(cell, nl))
            y_r, s_r, _ = CELLS[cell].forward(params, x, s_r, **kw(cell, nl))
        assert_same((y_f, s_f), (y_r, s_r), 1e-12, f"{cell} single steps")


@pytest.fixture(params=ISAS)
def build(request):
    """Run the loops built for each instruction set this CPU runs (on x86-64: SSE2,
    AVX2 and AVX-512 vectors, so other panel widths, row blocks and lanes per vector)."""
    old = fast.set_isa(request.param)
    try:
        yield request.param
    finally:
        fast.set_isa(old)


def test_odd_sizes_in_every_build(build):
    # sizes that leave a partial panel and partial row blocks
    for cell, nl in CASES:
        for dtype in (np.float64, np.float32):
            ours, ref = run_both(cell, nl, dtype, np.array([6, 2, 5, 1, 6, 3, 4]), True, True,
                                 b=7, h=13, i=5)
            assert_same(ours, ref, TOL[dtype], f"{build} {cell} {np.dtype(dtype)}")


def test_weight_gradients_on_the_loop_threads_in_every_build(build):
    # after a threaded backward loop, dW, db and dx come from the kernels' own blocked
    # products (rnnkit.fast._util.param_grads); narrow inputs leave dW_ih and dx to NumPy.
    # Sizes leave partial panels, partial row blocks and several depth slices.
    from rnnkit.cells._common import param_grads as numpy_grads
    from rnnkit.fast import _util

    k = fast.kernels()
    rng = np.random.default_rng(5)
    flops, threads = fast.set_flops_per_thread(0), fast.set_max_threads(2)
    try:
        for t, b, i, h, g, same, bias in [(9, 70, 37, 21, 4, True, "both"), (3, 5, 2, 7, 3, False, "both"),
                                          (40, 13, 33, 70, 3, False, "ih"), (7, 3, 40, 5, 1, True, "hh"),
                                          (1, 1, 64, 1, 4, True, "none"),
                                          (70, 70, 33, 9, 4, True, "both")]:   # depth in slices
            for dtype in (np.float64, np.float32):
                x = rng.normal(size=(t, b, i)).astype(dtype)
                hp = rng.normal(size=(t, b, h)).astype(dtype)
                dA = rng.normal(size=(t, b, g * h)).astype(dtype)
                dHH = dA if same else rng.normal(size=(t, b, g * h)).astype(dtype)
                params = make_params("gru" if g == 3 else "lstm" if g == 4 else "rnn", rng, dtype,
                                     bias, i, h)
                ours = _util.param_grads(k, params, x, hp, dA, dHH, params["weight_ih"],
                                         np.empty((t, b, i), dtype))
                ref = numpy_grads(params, x, hp, dA, dHH, params["weight_ih"])
                assert set(ours[1]) == set(params)
                assert_same(ours, ref, TOL[dtype], f"{build} {(t, b, i, h, g)} {np.dtype(dtype)}")
                if "bias_ih" in ours[1] and "bias_hh" in ours[1]:
                    assert not np.shares_memory(ours[1]["bias_ih"], ours[1]["bias_hh"])
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_wide_inputs_on_threads_equal_the_reference(cell, nl, loop):
    # inputs wide enough for the kernels' dW_ih and dx, ragged lengths
    ours, ref = run_both(cell, nl, np.float64, np.array([12, 3, 1, 9, 12]), True, True,
                         seed=4, t=12, b=5, i=40, h=19)
    assert_same(ours, ref, 1e-12, f"{cell} I=40 {loop}")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_errors_match_the_reference(cell):
    f, r = fast.get(cell), CELLS[cell]
    rng = np.random.default_rng(6)
    params = make_params(cell, rng, np.float64)
    bad = [
        (rng.normal(size=(T, I)), ValueError, "expected x with 3 dims"),
        (np.ones((T, B, I), dtype=np.int64), TypeError, "float"),
        (np.full((T, B, I), np.nan), ValueError, "NaN"),
    ]
    for x, exc, msg in bad:
        for impl in (f, r):
            with pytest.raises(exc, match=msg):
                impl.forward(params, x)
    with pytest.raises(ValueError, match="lengths"):
        f.forward(params, rng.normal(size=(T, B, I)), None, np.array([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="cache"):
        f.backward(params, ("not", "a", "cache"), None)
    with pytest.raises(ValueError, match="d_outputs"):
        _, _, cache = f.forward(params, rng.normal(size=(T, B, I)))
        f.backward(params, cache, np.zeros((T, B, H + 1)))


def test_the_loops_are_built_where_there_is_a_compiler():
    # a compiler that cannot build _fastrnn is a bug, not a reason to skip
    assert fast.available(), fast.status()
    ext = fast._ext
    assert ext.ISAS[0] == "baseline" and fast.isa() == ext.ISAS[-1]     # the best runs
    assert ext.ABI_VERSION >= 10 and ext.FLOPS_PER_THREAD > 0


def test_get_and_status():
    for cell in ("rnn", "lstm", "gru"):
        mod = fast.get(cell)
        assert mod.__name__ == f"rnnkit.fast.{cell}"
        assert callable(mod.forward) and callable(mod.backward)
    with pytest.raises(ValueError, match="cell must be one of"):
        fast.get("transformer")
    assert fast.status().startswith(f"C loops ({fast.isa()} of ")
    with pytest.raises(ValueError, match="not one of"):
        fast.set_isa("mmx")


def test_no_compile_variable_gives_the_reference(monkeypatch):
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    assert fast.get("lstm") is None and fast.kernels() is None
    assert "RNNKIT_NO_COMPILE" in fast.status()
    # the fast modules, called anyway, are then exactly the reference
    rng = np.random.default_rng(7)
    params = make_params("gru", rng, np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    y_f, h_f, _ = fast_gru.forward(params, x)
    y_r, h_r, _ = CELLS["gru"].forward(params, x)
    assert np.array_equal(y_f, y_r) and np.array_equal(h_f, h_r)
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "0")
    assert fast.get("lstm") is not None


@pytest.mark.skipif(sys.platform != "linux", reason="fork() as multiprocessing's start method")
def test_a_forked_child_runs_after_the_parent_used_threads():
    # GNU OpenMP's threads do not survive fork(): a child that starts them waits forever,
    # so the kernels run serially in children (as after a DataLoader-style fork)
    import multiprocessing as mp
    rng = np.random.default_rng(8)
    params = make_params("lstm", rng, np.float32, h=32)
    x = rng.normal(size=(5, 8, I)).astype(np.float32)
    assert fast.available()                        # loaded, so that the settings below apply
    flops, threads = fast.set_flops_per_thread(0), fast.set_max_threads(2)
    try:
        y, _, _ = fast.get("lstm").forward(params, x)
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_forward, args=(params, x, queue))
        child.start()
        child.join(20)
        hung = child.is_alive()
        if hung:
            child.kill()
        assert not hung, "the forked child hung in the kernels"
        assert np.array_equal(queue.get(timeout=10), y)
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)


def _child_forward(params, x, queue):
    queue.put(fast.get("lstm").forward(params, x)[0])


# ------------------------------------------------------------- without the loops

NO_LOOPS = textwrap.dedent("""
    import sys, warnings
    sys.modules["rnnkit.fast._fastrnn"] = None          # as if it had not been built
    import numpy as np
    import rnnkit
    from rnnkit import fast
    warnings.simplefilter("always")                     # a once-only warning must not need a filter
    with warnings.catch_warnings(record=True) as caught:
        layer = rnnkit.Recurrent("lstm", 3, 4, num_layers=2, dtype="float32")
        x = np.ones((5, 2, 3), dtype=np.float32)
        for _ in range(3):
            y, _ = layer.forward(x)
            layer.backward(np.ones_like(y))
    msgs = [str(w.message) for w in caught if issubclass(w.category, rnnkit.errors.PerformanceWarning)]
    print(len(msgs), fast.status(), sep="|")
    print(msgs[0] if msgs else "")
""")


def test_without_the_loops_numpy_runs_and_says_so_once():
    out = subprocess.run([sys.executable, "-c", NO_LOOPS], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "RNNKIT_NO_COMPILE"})
    first, message = out.stdout.strip().split("\n")
    count, status = first.split("|")
    assert count == "1", out.stdout
    assert status.startswith("NumPy cells: rnnkit.fast._fastrnn ")      # not built, or not loadable
    assert "NumPy cells run instead" in message


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_pooled_buffers_are_never_reused_while_an_array_from_them_lives(cell, nl):
    # sizes above the pool's threshold, so every workspace comes from the pool
    rng = np.random.default_rng(7)
    t, b, i, h = 40, 8, 24, 32
    params = make_params(cell, rng, np.float64, i=i, h=h)
    impl, ref = fast.get(cell), CELLS[cell]
    xs = [rng.normal(size=(t, b, i)) for _ in range(3)]
    dy = rng.normal(size=(t, b, h))
    kept = [impl.forward(params, x, None, None, **kw(cell, nl)) for x in xs]
    snapshot = [flat(k) for k in kept]
    dxs = [impl.backward(params, k[2], dy)[0] for k in kept]     # backward in any order
    for x, k, snap, dx in zip(xs, kept, snapshot, dxs):
        assert_same(flat(k), {n: a.copy() for n, a in snap.items()}, 0.0, "forward results")
        want = ref.backward(params, ref.forward(params, x, None, None, **kw(cell, nl))[2], dy)[0]
        assert_same(dx, want, TOL[np.float64], "dx")
    assert len({id(d.base) for d in dxs}) == 3                     # all alive: three buffers


def test_a_freed_workspace_is_reused_and_a_held_one_is_not():
    from rnnkit.fast import _util
    _util.release_pool()
    shape = (64, 1024)                       # 256 KiB of float32: pooled
    (a,) = _util.workspace(np.float32, shape)
    first = id(a.base)
    view = a[3:5]
    del a
    (b,) = _util.workspace(np.float32, shape)
    second = id(b.base)
    assert second != first                    # `view` still holds the first buffer
    del b
    (c,) = _util.workspace(np.float32, shape)
    assert id(c.base) == second               # freed: the same memory comes back
    del view
    (d,) = _util.workspace(np.float32, shape)
    assert id(d.base) == first and len(_util._POOL) == 2
    del c, d
    for i in range(2 * _util._POOL_FREE_MAX):  # free buffers: the newest few are kept
        _util.workspace(np.float32, (64, 1024 + i))
    assert len(_util._POOL) == _util._POOL_FREE_MAX + 1        # + the one just handed out
    held = [_util.workspace(np.float32, (64, 2048 + i))[0] for i in range(2 * _util._POOL_FREE_MAX)]
    assert all(any(buf is h.base for buf in _util._POOL) for h in held)   # in use: all kept
    again = _util.workspace(np.float32, (64, 2048))[0]
    assert again.base is not held[0].base                          # held[0] is still in use
    freed = id(held.pop(0).base)
    assert id(_util.workspace(np.float32, (64, 2048))[0].base) == freed   # freed: reused
    held += [_util.workspace(np.float32, (8, 1024 + i))[0] for i in range(2 * _util._POOL_MAX)]
    assert len(_util._POOL) <= _util._POOL_MAX                     # bounded even when all are in use
    _util.release_pool()
    assert _util._POOL == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_infer_equals_the_reference_forward(cell, nl, dtype, lengths, loop):
    rng = np.random.default_rng(11)
    params = make_params(cell, rng, dtype)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = state(cell, rng, dtype)
    h0_before = [a.copy() for a in (h0 if cell == "lstm" else (h0,))]
    for start in (h0, None):
        y, final = fast.get(cell).infer(params, x, start, lengths, **kw(cell, nl))
        want_y, want_final, _ = CELLS[cell].forward(params, x, start, lengths, **kw(cell, nl))
        assert_same({"y": y, "final": final}, {"y": want_y, "final": want_final}, TOL[dtype],
                    f"{cell} infer")
        assert y.flags.c_contiguous and y.dtype == dtype
    for a, b in zip(h0 if cell == "lstm" else (h0,), h0_before):
        assert np.array_equal(a, b)                  # the caller's state is never written


@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_infer_single_steps_carry_the_state(cell, nl):
    # a generation loop: T = 1 calls (the unpacked product) equal one whole-sequence call
    rng = np.random.default_rng(12)
    params = make_params(cell, rng, np.float64, i=4, h=9)
    x = rng.normal(size=(7, 2, 4))
    impl = fast.get(cell)
    want_y, want_final = impl.infer(params, x, None, None, **kw(cell, nl))
    s, ys = None, []
    for t in range(7):
        y, s = impl.infer(params, x[t:t + 1], s, None, **kw(cell, nl))
        ys.append(y)
    assert_same({"y": np.concatenate(ys), "final": s}, {"y": want_y, "final": want_final}, 1e-12)


def test_short_calls_at_odd_sizes_in_every_build(build):
    # T·B < 4 reads W unpacked, a vector's width of columns at a time with their sums
    # across lanes done together: sizes (I = 19, H = 21) leave a partial vector of
    # depth and columns past the last whole group; 1 to 3 rows
    rng = np.random.default_rng(14)
    for cell, nl in CASES:
        for dtype in (np.float64, np.float32):
            params = make_params(cell, rng, dtype, i=19, h=21)
            impl = fast.get(cell)
            for rows in (1, 2, 3):
                x = rng.normal(size=(3, rows, 19)).astype(dtype)
                want_y, want_final, _ = CELLS[cell].forward(params, x, **kw(cell, nl))
                s, ys = None, []
                for t in range(3):
                    y, s = impl.infer(params, x[t:t + 1], s, **kw(cell, nl))
                    ys.append(y)
                assert_same({"y": np.concatenate(ys), "final": s}, {"y": want_y, "final": want_final},
                            TOL[dtype], f"{build} {cell} {np.dtype(dtype)} B={rows}")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_infer_without_the_kernels_is_the_reference(cell, monkeypatch):
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    rng = np.random.default_rng(13)
    params = make_params(cell, rng, np.float64)
    x = rng.normal(size=(T, B, I))
    from rnnkit.fast import gru as fg, lstm as fl, rnn as fr
    y, final = {"rnn": fr, "lstm": fl, "gru": fg}[cell].infer(params, x)
    want_y, want_final, _ = CELLS[cell].forward(params, x)
    assert_same({"y": y, "final": final}, {"y": want_y, "final": want_final}, 0.0)


@pytest.mark.parametrize("where", ["in-loop", "numpy-first"])
@pytest.mark.parametrize("lengths", [None, RAGGED], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,nl", CASES, ids=CASE_IDS)
def test_both_ways_of_projecting_the_inputs(cell, nl, lengths, where, loop, monkeypatch):
    # the kernels project x_t inside the loop when W_ih is small, else NumPy projects
    # every step first: both must give the reference's results
    from rnnkit.fast import _util
    monkeypatch.setattr(_util, "IN_LOOP_MAX_BYTES", 1 << 40 if where == "in-loop" else -1)
    fast_run, ref_run = run_both(cell, nl, np.float64, lengths, True, True, seed=5)
    assert_same(fast_run, ref_run, TOL[np.float64], f"{cell} {where}")
    rng = np.random.default_rng(6)
    params = make_params(cell, rng, np.float64)
    x = rng.normal(size=(T, B, I))
    y, final = fast.get(cell).infer(params, x, None, lengths, **kw(cell, nl))
    want_y, want_final, _ = CELLS[cell].forward(params, x, None, lengths, **kw(cell, nl))
    assert_same({"y": y, "final": final}, {"y": want_y, "final": want_final}, TOL[np.float64])


def test_rnnkit_sets_no_environment_variables():
    # speed must not depend on import order: rnnkit changes nothing process-wide,
    # imported before or after NumPy, and running the loops changes nothing either
    code = ("import os; before = dict(os.environ); import {first}, {second}; "
            "from rnnkit import fast; import numpy as np; "
            "p = {{'weight_ih': np.ones((8, 3)), 'weight_hh': np.ones((8, 2))}}; "
            "fast.get('lstm').forward(p, np.ones((4, 2, 3))); "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT", "RNNKIT_NO_COMPILE")}
    for first, second in (("rnnkit", "numpy"), ("numpy", "rnnkit")):
        out = subprocess.run([sys.executable, "-c", code.format(first=first, second=second)],
                             capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == "[]", (first, out.stdout)


def test_blas_runs_on_one_thread_while_the_loops_run_on_several():
    from threadpoolctl import threadpool_limits
    from rnnkit.fast import _util
    libs = _util._blas_libraries()
    assert libs, "NumPy's BLAS is found"
    seen = []

    @_util.threads_for_call
    def probe(fail):
        seen.append([lib.get_num_threads() for lib in libs])
        if fail:
            raise RuntimeError("inside")

    threads, flops = fast.set_max_threads(2), fast.set_flops_per_thread(0)   # busy or not
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            probe(False)
            with pytest.raises(RuntimeError, match="inside"):
                probe(True)
            after = [lib.get_num_threads() for lib in libs]
            fast.set_max_threads(1)                   # one loop thread: BLAS keeps its own
            probe(False)
    finally:
        fast.set_max_threads(threads)
        fast.set_flops_per_thread(flops)
    assert seen[0] == seen[1] == [1] * len(libs)
    assert after == [2] * len(libs) and seen[2] == [2] * len(libs)


def test_a_lazy_call_holds_the_blas_from_its_first_product_to_its_end():
    from threadpoolctl import threadpool_limits
    from rnnkit.fast import _util
    libs = _util._blas_libraries()
    seen = []

    @_util.threads_for_call(blas="lazy")
    def probe(product, inner=None):
        seen.append(("before", [lib.get_num_threads() for lib in libs]))
        if inner is not None:
            inner()
        if product:
            _util.project(np.ones((2, 3, 4)), np.ones((5, 4)), np.empty((2, 3, 5)))
            seen.append(("after", [lib.get_num_threads() for lib in libs]))

    @_util.threads_for_call
    def eager():
        seen.append(("eager", [lib.get_num_threads() for lib in libs]))

    threads, flops = fast.set_max_threads(2), fast.set_flops_per_thread(0)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            probe(False)                                # no product: the BLAS is not touched
            probe(True)                                 # held from the product on
            probe(True, inner=eager)                    # an eager call inside: held for it, then lazy again
            after = [lib.get_num_threads() for lib in libs]
    finally:
        fast.set_max_threads(threads)
        fast.set_flops_per_thread(flops)
    two, one = [2] * len(libs), [1] * len(libs)
    assert seen == [("before", two), ("before", two), ("after", one), ("before", two), ("eager", one),
                    ("after", one)]
    assert after == two
    with threadpool_limits(limits=2, user_api="blas"):
        _util.hold_blas()                               # outside any call: nothing to hold
        assert [lib.get_num_threads() for lib in libs] == two


def test_a_busy_machine_gets_fewer_loop_threads(monkeypatch):
    from rnnkit.fast import _util
    seen = []

    @_util.threads_for_call
    def probe():
        seen.append(fast.max_threads())

    threads = fast.set_max_threads(2)
    try:
        for free in (1, 2, 8):
            monkeypatch.setattr(_util, "free_cpus", lambda: free)
            probe()
        assert fast.max_threads() == 2                  # the limit comes back after each call
        flops = fast.set_flops_per_thread(0)            # always split: the load is not asked
        monkeypatch.setattr(_util, "free_cpus", lambda: 1)
        probe()
        fast.set_flops_per_thread(flops)
    finally:
        fast.set_max_threads(threads)
    assert seen == [1, 2, 2, 2]
    assert 1 <= _util.free_cpus() <= (os.cpu_count() or 1)


def test_free_cpus_count_the_tasks_running_beside_this_one():
    from rnnkit.fast._util import cpus_free

    assert cpus_free(2, running=2, own_running=2) == 2      # two of this process's tasks: both free
    assert cpus_free(2, running=3, own_running=2) == 1      # one other process's task
    assert cpus_free(2, running=12, own_running=1) == 1     # a busy machine: one, never 0
    assert cpus_free(8, running=3, own_running=1) == 6
    assert cpus_free(4, running=1, own_running=3) == 4      # counts read at different moments


def test_running_loop_threads_are_not_counted_as_other_work():
    # the threads a loop runs on (the caller and OpenMP's workers, spinning after a
    # loop) are this process's own; another thread of the process that spins is not
    import threading

    from rnnkit.fast import _util

    me = threading.get_native_id()
    threads = fast.set_max_threads(2)
    try:
        ids = _util._loop_threads()
        assert me in ids
        if fast.loop_thread_ids():                  # Linux with OpenMP: the caller and one worker
            assert len(set(fast.loop_thread_ids())) == 2 and me in fast.loop_thread_ids()
    finally:
        fast.set_max_threads(threads)
    assert _util.running_among({me}) == 1           # this thread, reading /proc
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        counts = [(_util.running_among({me}), _util.running_among({me, spinner.native_id}))
                  for _ in range(50)]
    finally:
        stop.set()
        spinner.join()
    assert all(own == 1 for own, _ in counts)
    assert max(both for _, both in counts) == 2


def test_linear_on_the_loop_threads_in_every_build(build):
    # rnnkit.Linear's products run on the kernels' threads (linear_fwd, grads) when the
    # loops may use several; too small or too narrow ones stay with NumPy
    import rnnkit as rk
    from rnnkit.fast import linear

    rng = np.random.default_rng(6)
    flops, threads = fast.set_flops_per_thread(0), fast.set_max_threads(2)
    try:
        for shape, n_in, n_out, bias in [((7, 300), 70, 33, True), ((2000,), 40, 129, False),
                                         ((5, 4), 8, 3, True)]:
            assert (linear._kernels_for(int(np.prod(shape)), n_in, n_out, np.dtype(np.float32))
                    is not None) == (n_in >= 16 and n_out >= 16)
            for dtype in (np.float64, np.float32):
                layer = rk.Linear(n_in, n_out, bias=bias, dtype=dtype, seed=1)
                w = layer.params["weight"]
                x = rng.normal(size=shape + (n_in,)).astype(dtype)
                dy = rng.normal(size=shape + (n_out,)).astype(dtype)
                y = layer.forward(x)
                dx = layer.backward(dy)
                x2, dy2 = x.reshape(-1, n_in), dy.reshape(-1, n_out)
                ref = {"y": (x2 @ w.T + (layer.params["bias"] if bias else 0)).reshape(y.shape),
                       "dx": (dy2 @ w).reshape(x.shape), "weight": dy2.T @ x2}
                ours = {"y": y, "dx": dx, "weight": layer.grads["weight"]}
                if bias:
                    ref["bias"], ours["bias"] = dy2.sum(axis=0), layer.grads["bias"]
                assert_same(ours, ref, TOL[dtype], f"{build} Linear {shape} {n_in}->{n_out}")
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)


def test_linear_leaves_the_blas_alone_without_the_loops(monkeypatch):
    # with the compiled loops switched off nothing holds NumPy's BLAS
    import rnnkit as rk
    from rnnkit.fast import _util

    monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    held = []
    monkeypatch.setattr(_util, "_blas_libraries", lambda: held.append(1) or [])
    layer = rk.Linear(300, 200, seed=0)
    x = np.ones((40, 300), np.float32)
    layer.backward(layer.forward(x))
    assert held == []
