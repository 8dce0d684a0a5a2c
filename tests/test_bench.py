"""The benchmark: its quick mode runs end to end, checks correctness, and reports every number."""

import json
import math

import numpy as np
import pytest

from rnnkit import bench


def run_quick(tmp_path, *extra):
    path = tmp_path / "out.json"
    rc = bench.main(["--quick", "--json", str(path), *extra])
    return rc, json.loads(path.read_text())


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
        assert r["ratios"] == {}                     # no torch, no ratios
    assert report["skipped"]["jax"] and report["skipped"]["onnxruntime"]
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
])
def test_bad_arguments(argv, match):
    with pytest.raises(ValueError, match=match):
        bench.main(["--quick", *argv])
