"""The compiled fast path (rnnkit.fast) equals the reference cells (rnnkit.cells).

The reference is what the finite-difference and torch tests prove; here every fast
cell is compared with it value by value — outputs, final states, the whole cache,
dx, dh0, every weight gradient and δh — in float64 (to 1e-12) and float32 (to
1e-5), with ragged lengths, h0 given or None, d_final_state given or None, on one
thread and with the batch split among threads. Also: the build (cache,
concurrency, silence, no compiler), the switch-off variable and the errors.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit import fast
from rnnkit.cells import CELLS, GATES
from rnnkit.fast import _build
from rnnkit.fast import gru as fast_gru

if _build.find_compiler() is None:
    pytest.skip("no C compiler here: rnnkit.fast cannot be built", allow_module_level=True)

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
    flops = _build.set_flops_per_thread(0)
    threads = _build.set_max_threads(3)
    try:
        yield request.param
    finally:
        _build.set_flops_per_thread(flops)
        _build.set_max_threads(threads)


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


def use_build(build, tmp_path, monkeypatch):
    """Run the kernels of this machine's build, or of one without -march=native (on
    x86: SSE2 vectors, so other panel widths, row blocks and lanes per vector)."""
    if build == "portable":
        monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
        lib, why = _build._open_library(flag_sets=(("-O3",),))
        assert lib is not None, why
        for dt, suffix in ((np.float32, "f32"), (np.float64, "f64")):
            monkeypatch.setitem(_build._kernels, np.dtype(dt), _build.Kernels(lib, suffix))


@pytest.mark.parametrize("build", ["native", "portable"])
def test_odd_sizes_in_both_builds(build, tmp_path, monkeypatch):
    # sizes that leave a partial panel and partial row blocks
    use_build(build, tmp_path, monkeypatch)
    for cell, nl in CASES:
        for dtype in (np.float64, np.float32):
            ours, ref = run_both(cell, nl, dtype, np.array([6, 2, 5, 1, 6, 3, 4]), True, True,
                                 b=7, h=13, i=5)
            assert_same(ours, ref, TOL[dtype], f"{build} {cell} {np.dtype(dtype)}")


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


def test_the_kernels_build_where_there_is_a_compiler():
    # a compiler that cannot build _fastrnn.c is a bug, not a reason to skip
    assert fast.available(), fast.status()


def test_get_and_status():
    for cell in ("rnn", "lstm", "gru"):
        mod = fast.get(cell)
        assert mod.__name__ == f"rnnkit.fast.{cell}"
        assert callable(mod.forward) and callable(mod.backward)
    with pytest.raises(ValueError, match="cell must be one of"):
        fast.get("transformer")
    assert fast.status().startswith("loaded ")


def test_no_compile_variable_gives_the_reference(monkeypatch):
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    assert fast.get("lstm") is None and not fast.available()
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
    flops, threads = _build.set_flops_per_thread(0), _build.set_max_threads(2)
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
        _build.set_flops_per_thread(flops)
        _build.set_max_threads(threads)


def _child_forward(params, x, queue):
    queue.put(fast.get("lstm").forward(params, x)[0])


# ------------------------------------------------------------------------- the build

PROBE = textwrap.dedent("""
    import numpy as np
    from rnnkit import fast
    mod = fast.get("lstm")
    ok = mod is not None
    if ok:
        rng = np.random.default_rng(0)
        p = {"weight_ih": rng.normal(size=(8, 3)), "weight_hh": rng.normal(size=(8, 2))}
        y, _, _ = mod.forward(p, rng.normal(size=(4, 2, 3)))
        ok = bool(np.isfinite(y).all())
    open(OUT, "w").write(f"{ok}|{fast.status()}")
""")


def run_probe(tmp_path, name, env_extra):
    out = tmp_path / f"{name}.txt"
    env = {**os.environ, **env_extra}
    env.pop("RNNKIT_NO_COMPILE", None)
    proc = subprocess.Popen([sys.executable, "-c", PROBE.replace("OUT", repr(str(out)))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, out


def test_build_is_cached_silent_and_safe_when_concurrent(tmp_path):
    cache = tmp_path / "cache"
    procs = [run_probe(tmp_path, f"p{i}", {"RNNKIT_CACHE": str(cache)}) for i in range(3)]
    for proc, out in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr.decode()
        assert stdout == b"" and stderr == b"", "building must print nothing"
        ok, status = out.read_text().split("|", 1)
        assert ok == "True", status
    libs = sorted(p.name for p in cache.iterdir())
    assert len(libs) == 1 and libs[0].startswith("_fastrnn-") and libs[0].endswith(".so"), libs
    mtime = (cache / libs[0]).stat().st_mtime_ns
    proc, out = run_probe(tmp_path, "again", {"RNNKIT_CACHE": str(cache)})
    assert proc.wait(timeout=240) == 0
    assert out.read_text().startswith("True|")
    assert (cache / libs[0]).stat().st_mtime_ns == mtime, "the cached library must be reused"


@pytest.mark.parametrize("cc,reason", [("/nonexistent/cc", "no C compiler"), ("false", "failed")])
def test_without_a_working_compiler_the_numpy_path_runs(tmp_path, cc, reason):
    cache = tmp_path / "cache"
    proc, out = run_probe(tmp_path, "nocc", {"RNNKIT_CACHE": str(cache), "CC": cc})
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0 and stdout == b"" and stderr == b"", stderr.decode()
    ok, status = out.read_text().split("|", 1)
    assert ok == "False" and reason in status
    # nothing half-built stays; a failed build leaves only markers, so that later
    # processes do not pay for the same failure again
    left = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert all(name.endswith(".failed") for name in left), left
    if cc == "false":
        assert len(left) == len(_build.FLAG_SETS)
        proc, out = run_probe(tmp_path, "again", {"RNNKIT_CACHE": str(cache), "CC": cc})
        assert proc.wait(timeout=240) == 0
        assert out.read_text().startswith("False|") and "failed" in out.read_text()


def test_library_path_depends_on_source_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    cc = _build.find_compiler()
    a = _build.library_path(cc, ("-O3",))
    b = _build.library_path(cc, ("-O3", "-march=native"))
    assert a.parent == tmp_path and a != b
    assert _build.cache_dir() == tmp_path


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
    (a,), _ = _util.workspace(np.float32, shape)
    first = id(a.base)
    view = a[3:5]
    del a
    (b,), _ = _util.workspace(np.float32, shape)
    second = id(b.base)
    assert second != first                    # `view` still holds the first buffer
    del b
    (c,), _ = _util.workspace(np.float32, shape)
    assert id(c.base) == second               # freed: the same memory comes back
    del view
    (d,), _ = _util.workspace(np.float32, shape)
    assert id(d.base) == first and len(_util._POOL) == 2
    del c, d
    for i in range(2 * _util._POOL_FREE_MAX):  # free buffers: the newest few are kept
        _util.workspace(np.float32, (64, 1024 + i))
    assert len(_util._POOL) == _util._POOL_FREE_MAX + 1        # + the one just handed out
    held = [_util.workspace(np.float32, (64, 2048 + i))[0][0] for i in range(2 * _util._POOL_FREE_MAX)]
    assert all(any(buf is h.base for buf in _util._POOL) for h in held)   # in use: all kept
    again = _util.workspace(np.float32, (64, 2048))[0][0]
    assert again.base is not held[0].base                          # held[0] is still in use
    freed = id(held.pop(0).base)
    assert id(_util.workspace(np.float32, (64, 2048))[0][0].base) == freed   # freed: reused
    held += [_util.workspace(np.float32, (8, 1024 + i))[0][0] for i in range(2 * _util._POOL_MAX)]
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


@pytest.mark.parametrize("build", ["native", "portable"])
def test_short_calls_at_odd_sizes_in_both_builds(build, tmp_path, monkeypatch):
    # T·B < 4 reads W unpacked, a vector's width of columns at a time with their sums
    # across lanes done together: sizes (I = 19, H = 21) leave a partial vector of
    # depth and columns past the last whole group; 1 to 3 rows
    use_build(build, tmp_path, monkeypatch)
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


def test_importing_rnnkit_first_shortens_openblas_spinning():
    # OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy loads it: imported first,
    # rnnkit sets it (unless the user did); after NumPy it changes nothing
    probe = "import os, {first}; import {second}; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def run(code, **extra):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env, **extra}, check=True)
        return out.stdout.strip()

    assert run(probe.format(first="rnnkit", second="numpy")) == "20"
    assert run(probe.format(first="rnnkit", second="numpy"), OPENBLAS_THREAD_TIMEOUT="24") == "24"
    assert run(probe.format(first="numpy", second="rnnkit")) == "None"


def test_loading_the_kernels_shortens_openmp_spinning():
    # GNU OpenMP reads GOMP_SPINCOUNT when the kernels' library loads it: set unless
    # the user set it
    code = ("import os; from rnnkit import fast; fast.available(); "
            "print(os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "RNNKIT_NO_COMPILE")}
    for extra, want in (({}, str(_build.GOMP_SPINCOUNT)), ({"GOMP_SPINCOUNT": "7"}, "7")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env, **extra}, check=True)
        assert out.stdout.strip() == want
