"""The benchmark: its quick mode runs end to end, checks correctness, and reports every number."""

import json
import math
import os
import sys

import numpy as np
import pytest

from rnnkit import bench
from rnnkit.bench import peers, tables


def run_quick(tmp_path, *extra):
    path = tmp_path / "out.json"
    rc = bench.main(["--quick", "--json", str(path), *extra])
    return rc, json.loads(path.read_text())


def expected_ratios(r):
    """The ratios and best peer of one result, recomputed from its medians."""
    ms = {p: d["median_ms"] for p, d in r["peers"].items() if "median_ms" in d}
    targets = [p for p in bench.TARGET_PEERS[r["mode"]] if p in ms]
    best = min(targets, key=ms.get) if targets else None
    ratios = {}
    for p, t in ms.items():
        for other, name in (("torch", "torch"), ("jax", "jax"), (best, "best")):
            if other in ms and other != p:
                ratios[f"{p}/{name}"] = t / ms[other]
    return ratios, best


def assert_ratios(r):
    ratios, best = expected_ratios(r)
    assert r["best_peer"] == best, r
    assert r["ratios"].keys() == ratios.keys(), r
    for k, v in ratios.items():
        assert math.isclose(r["ratios"][k], v, rel_tol=1e-12), (k, r)


def test_quick_numpy_peers(tmp_path, capsys):
    rc, report = run_quick(tmp_path, "--peers", "rnnkit,rnnkit.fast", "--modes", "fwd,fwdbwd")
    assert rc == 0 and report["failed_checks"] == []
    assert report["config"]["reference"] == "rnnkit"
    assert report["machine"]["gemm_peak_gflops"] > 0
    cases = {(r["cell"], r["shape"], r["mode"]) for r in report["results"]}
    want = {(c, s.name, m) for c in bench.CELLS for s in bench.QUICK_SHAPES
            for m in (("gen",) if s.calls else bench.MODES)}
    assert cases == want
    for r in report["results"]:
        assert r["gflop"] == pytest.approx(bench.matmul_flops(
            r["cell"], next(s for s in bench.QUICK_SHAPES if s.name == r["shape"]),
            "fwdbwd" if r["mode"] == "fwdbwd" else "fwd") / 1e9)
        for peer in ("rnnkit", "rnnkit.fast"):
            d = r["peers"][peer]
            assert d["check_ok"] and d["max_rel_err"] < 1e-4
            assert d["n"] >= 1 and 0 < d["min_ms"] <= d["median_ms"]
            assert d["gflops"] > 0 and d["mem_how"] == "tracemalloc" and d["mem_mb"] > 0
        assert r["ratios"] == {} and r["best_peer"] is None     # no target peer, no ratios
    assert report["skipped"] == {}
    assert report["summary"]["peer"] is None
    out = capsys.readouterr().out
    assert "median ms" in out and "lstm  charlm" in out


def test_quick_against_torch(tmp_path):
    pytest.importorskip("torch")
    rc, report = run_quick(tmp_path, "--cells", "lstm,gru", "--peers", "rnnkit.fast,torch")
    assert rc == 0 and report["config"]["reference"] == "torch"
    assert report["machine"]["workers"]["torch"]["torch"]
    for r in report["results"]:
        assert r["peers"]["rnnkit.fast"]["check_ok"], r
        assert r["peers"]["rnnkit.fast"]["max_rel_err"] < 1e-4
        ratio = r["ratios"]["rnnkit.fast/torch"]
        assert math.isclose(ratio, r["peers"]["rnnkit.fast"]["median_ms"] / r["peers"]["torch"]["median_ms"])
        assert r["peers"]["torch"]["mem_how"] == "maxrss"


def test_a_failed_check_is_not_timed_and_fails_the_run(tmp_path, capsys):
    # a negative tolerance fails every comparison, even the reference with itself
    rc, report = run_quick(tmp_path, "--peers", "rnnkit.fast", "--cells", "rnn", "--shapes", "tiny",
                           "--modes", "fwd", "--tol", "-1")
    assert rc == 1
    assert len(report["failed_checks"]) == 1
    assert "median_ms" not in report["results"][0]["peers"]["rnnkit.fast"]
    assert "FAILED" in capsys.readouterr().out


def test_compare_names_and_shapes():
    a = {"y": np.ones((2, 3)), "h_n": np.zeros(3)}
    assert bench.compare(a, {k: v.copy() for k, v in a.items()}) == 0.0
    assert bench.compare({"y": np.ones((2, 3)) * 1.5, "h_n": np.zeros(3)}, a) == pytest.approx(0.5)
    assert bench.compare({"y": np.ones((3, 2)), "h_n": np.zeros(3)}, a) == math.inf
    with pytest.raises(ValueError, match="names"):
        bench.compare({"y": np.ones((2, 3))}, a)


def test_flops_of_a_two_layer_lstm():
    s = bench.Shape("x", T=10, B=2, I=3, H=4, layers=2)
    per_step = 2 * 2 * 16 * (3 + 4) + 2 * 2 * 16 * (4 + 4)
    assert bench.matmul_flops("lstm", s, "fwd") == 10 * per_step
    assert bench.matmul_flops("lstm", s, "fwdbwd") == 30 * per_step


@pytest.mark.parametrize("argv,match", [
    (["--peers", "numba"], "--peers"),
    (["--cells", "lstm,transformer"], "--cells"),
    (["--shapes", "huge"], "--shapes"),
    (["--rounds", "0"], "--rounds"),
    (["--threads", "0"], "--threads"),
    (["--load", "-1"], "--load"),
])
def test_bad_arguments(argv, match):
    with pytest.raises(ValueError, match=match):
        bench.main(["--quick", *argv])


def test_quick_jax_peer(tmp_path, capsys):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    # LSTM and GRU, whose gate order and b_hn are easy to get wrong; every JAX program
    # compiles for about a second, so no more shapes than needed (rnn: the test below)
    rc, report = run_quick(tmp_path, "--peers", "rnnkit,torch,jax", "--cells", "lstm,gru",
                           "--shapes", "tiny,gen")
    assert rc == 0 and report["failed_checks"] == [] and report["skipped"] == {}
    info = report["machine"]["workers"]["jax"]
    assert info["jax"] and info["devices"] and info["threads"].startswith("1")   # --quick: 1 thread
    modes = set()
    for r in report["results"]:
        modes.add(r["mode"])
        d = r["peers"]["jax"]
        assert r["reference"] == "torch"
        assert d["check_ok"] and d["max_rel_err"] < 1e-5, r          # PyTorch's equations, float32
        assert d["n"] >= 1 and 0 < d["min_ms"] <= d["median_ms"] and d["mem_how"] == "maxrss"
        assert_ratios(r)
        assert r["best_peer"] in bench.TARGET_PEERS[r["mode"]]
        assert "rnnkit/jax" in r["ratios"] and "rnnkit/best" in r["ratios"]
        if r["mode"] == "fwdbwd":
            assert "jax/torch" in r["ratios"] and ("jax/best" in r["ratios"]) == (r["best_peer"] != "jax")
        else:
            assert r["best_peer"] == "torch"                          # jax is no target there
    assert modes == {"fwd", "fwdbwd", "gen"}
    assert set(report["summary"]["rows"]) == {"lstm", "gru"}
    assert "vs best" in capsys.readouterr().out


@pytest.mark.parametrize("cell", bench.CELLS)
def test_jax_forward_of_two_layers_equals_rnnkit_and_its_steps(cell):
    pytest.importorskip("jax")
    s = bench.Shape("two", T=4, B=2, I=3, H=5, layers=2)
    jx, rk = peers._Jax(cell, s, seed=1), peers._RnnkitLayer(cell, s, seed=1)
    got, want = jx.outputs("fwd"), rk.outputs("fwd")
    assert bench.compare(got, want) < 1e-5
    # the scan over the sequence is the single-step program unrolled
    h, c = jx.state0
    for t in range(s.T):
        y, h, c = jx._step(jx.params, jx.x[t], h, c)
        np.testing.assert_allclose(np.asarray(y), got["y"][t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), got["h_n"], rtol=1e-5, atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(np.asarray(c), got["c_n"], rtol=1e-5, atol=1e-6)


def test_quick_onnxruntime_peer(tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rc, report = run_quick(tmp_path, "--peers", "rnnkit,onnxruntime")
    assert rc == 0 and report["failed_checks"] == [] and report["skipped"] == {}
    assert report["machine"]["workers"]["onnxruntime"]["threads"] == 1
    for r in report["results"]:
        d = r["peers"]["onnxruntime"]
        if r["mode"] == "fwdbwd":
            # forward only: recorded as not applicable, neither timed nor a failure
            assert d["applicable"] is False and "median_ms" not in d and "check_ok" not in d
            assert r["best_peer"] is None and r["ratios"] == {}
        else:
            assert r["reference"] == "rnnkit"
            assert d["check_ok"] and d["max_rel_err"] < 1e-5, r
            assert d["n"] >= 1 and 0 < d["min_ms"] <= d["median_ms"] and d["mem_how"] == "maxrss"
            assert r["best_peer"] == "onnxruntime" and set(r["ratios"]) == {"rnnkit/best"}
        assert_ratios(r)
    summary = report["summary"]
    assert summary["peer"] == "rnnkit"
    for row in summary["rows"].values():
        assert set(row) == {"tiny fwd", "charlm fwd", "gen"}         # no target peer for fwdbwd
        assert all(v["best_peer"] == "onnxruntime" for v in row.values())
    out = capsys.readouterr().out
    assert "n/a" in out and " ort" in out and "tiny f+b" in out


def test_reference_is_a_peer_that_runs_the_mode(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rc, report = run_quick(tmp_path, "--peers", "onnxruntime,rnnkit.fast", "--cells", "gru",
                           "--shapes", "tiny")
    assert rc == 0 and report["config"]["reference"] == "onnxruntime"
    refs = {r["mode"]: r["reference"] for r in report["results"]}
    assert refs == {"fwd": "onnxruntime", "fwdbwd": "rnnkit.fast"}
    assert all(r["peers"]["rnnkit.fast"]["check_ok"] for r in report["results"])


def test_a_peer_that_does_not_import_is_skipped(tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    for name in ("onnx", "onnxruntime"):     # the peer imports both; each fails, installed or not
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake) + os.pathsep + os.pathsep.join(sys.path))
    rc, report = run_quick(tmp_path, "--peers", "rnnkit,onnxruntime", "--cells", "rnn",
                           "--shapes", "tiny", "--modes", "fwd")
    assert rc == 0
    assert report["skipped"]["onnxruntime"].startswith("ImportError: no onnx")
    assert list(report["results"][0]["peers"]) == ["rnnkit"]


def fake_case(mode, medians):
    """A timed case as _run leaves it, each peer with the given median (in seconds)."""
    peers = {p: {"applicable": True, "max_rel_err": 0.0, "check_ok": True, "times": [t, t / 2, t * 2],
                 "mem_mb": 1.0, "mem_how": "maxrss"} for p, t in medians.items()}
    return {"cell": "lstm", "shape": bench.QUICK_SHAPES[0], "mode": mode, "reference": "torch",
            "peers": peers}


@pytest.mark.parametrize("mode,medians,best", [
    ("fwd", {"rnnkit": 3.0, "torch": 2.0, "jax": 0.5, "onnxruntime": 1.0}, "onnxruntime"),
    ("fwd", {"rnnkit": 3.0, "torch": 0.9, "jax": 0.5, "onnxruntime": 1.0}, "torch"),
    ("gen", {"rnnkit": 3.0, "jax": 0.5}, None),
    ("fwdbwd", {"rnnkit": 3.0, "torch": 2.0, "jax": 1.5, "onnxruntime": 0.1}, "jax"),
    ("fwdbwd", {"rnnkit": 3.0, "torch": 1.0, "jax": 1.5}, "torch"),
])
def test_best_peer_is_the_fastest_target_of_the_mode(mode, medians, best):
    r = tables._summarise(fake_case(mode, medians), peak=100.0)
    assert r["best_peer"] == best
    assert_ratios(r)
    if best is not None:
        assert r["ratios"]["rnnkit/best"] == pytest.approx(3.0 / medians[best])
        assert f"{best}/best" not in r["ratios"]
    assert r["ratios"]["rnnkit/jax"] == pytest.approx(3.0 / medians["jax"])
    assert ("rnnkit/torch" in r["ratios"]) == ("torch" in medians)


def test_summary_has_one_row_per_cell_and_one_column_per_shape_and_mode():
    results = []
    for cell in ("lstm", "gru"):
        for shape, mode in ((bench.QUICK_SHAPES[0], "fwd"), (bench.QUICK_SHAPES[0], "fwdbwd"),
                            (bench.QUICK_SHAPES[2], "gen")):
            case = fake_case(mode, {"rnnkit": 1.0, "torch": 2.0, "onnxruntime": 4.0})
            case.update(cell=cell, shape=shape)
            results.append(tables._summarise(case, peak=100.0))
    summary = bench.summarise_targets(results)
    assert summary["peer"] == "rnnkit"
    assert summary["columns"] == ["tiny fwd", "tiny fwdbwd", "gen"]
    assert summary["rows"]["gru"]["gen"] == {"ratio": 0.5, "best_peer": "torch"}
    assert summary["rows"]["lstm"]["tiny fwdbwd"] == {"ratio": 0.5, "best_peer": "torch"}
    text = bench.format_summary(summary).splitlines()
    assert len(text) == 3 + 2                                        # title, header, rule, 2 cells
    assert text[1].split() == ["cell", "tiny", "fwd", "tiny", "f+b", "gen"]
    assert text[3].split() == ["lstm", "0.50", "torch", "0.50", "torch", "0.50", "torch"]


def _children() -> list[str]:
    """Command lines of this process's live children (Linux /proc)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid():
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            pass
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_load_runs_busy_processes_beside_it_and_stops_them(tmp_path, capsys):
    rc, report = run_quick(tmp_path, "--peers", "rnnkit", "--cells", "lstm", "--modes", "fwd",
                           "--load", "2")
    assert rc == 0 and report["config"]["load"] == 2
    assert not [c for c in _children() if "while True" in c], "the busy processes must be stopped"
    pools = report["machine"]["workers"]["rnnkit"]["pools"]
    assert any(p["internal_api"] in ("openblas", "mkl", "blis", "accelerate", "flexiblas")
               for p in pools), pools


def test_int8_peer_is_checked_loosely_and_compared_with_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rc, report = run_quick(tmp_path, "--peers", "rnnkit,rnnkit-int8,onnxruntime", "--cells", "lstm",
                           "--shapes", "gen")
    assert rc == 0
    (r,) = report["results"]
    e = r["peers"]["rnnkit-int8"]
    assert e["check_ok"] and 0 < e["max_rel_err"] <= peers.RUNNERS["rnnkit-int8"].TOL
    v = report["int8"]["lstm gen gen"]
    assert math.isclose(v["ratio"], e["median_ms"] / r["peers"]["onnxruntime"]["median_ms"])
    assert tables.format_int8(report["int8"]).splitlines()[1].split()[:3] == ["lstm", "gen", "gen"]


def test_an_int8_peer_listed_first_is_not_the_yardstick_of_the_float_peers(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rc, report = run_quick(tmp_path, "--peers", "rnnkit-int8,onnxruntime,rnnkit", "--cells", "gru",
                           "--shapes", "gen")
    assert rc == 0 and report["config"]["reference"] == "onnxruntime"
    (r,) = report["results"]
    assert r["reference"] == "onnxruntime"
    assert r["peers"]["rnnkit"]["max_rel_err"] < 1e-5              # float against float: tight
    assert 0 < r["peers"]["rnnkit-int8"]["max_rel_err"] <= peers.RUNNERS["rnnkit-int8"].TOL
