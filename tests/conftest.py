"""Test-session set-up (single-threaded BLAS) and the helpers the tests share.

The tests use small matrices, where BLAS threads cost more than they save and
make timings (and, under load, run time) erratic. Set before NumPy is imported.

Helpers, imported by the test modules (``from conftest import rel_err``):

* :func:`rel_err` — the relative error of two arrays, the one measure every
  comparison uses (finite differences, torch, ONNX Runtime, optimizers);
* :func:`numeric_grad` — central finite differences of a scalar function;
* :func:`assert_close` / :func:`assert_all_close` — compare tensors by name
  against an oracle (torch, ONNX Runtime), the failure naming the tensor;
* :func:`load_benchmark` — a script of ``benchmarks/`` imported as a module;
* :func:`assert_plots` — a run's PNG plots and the report's embedded images, present
  with matplotlib and absent without it (:data:`HAVE_MATPLOTLIB`), so the tests
  pass either way and check what each case must do.
"""

import base64
import importlib.util
import os
import re
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402  (after the thread settings)


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` imported as a module (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel_err(a, b) -> float:
    """max |a − b| / max(max |a|, max |b|), computed in float64.

    Symmetric, so the order of the arguments does not matter; two all-zero (or
    empty) arrays are equal (0.0). Shapes must agree: a comparison never broadcasts.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"rel_err: shapes {a.shape} and {b.shape} differ"
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-300)
    return float(np.abs(a - b).max()) / scale


def numeric_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂arr by central differences (f() − f()) / 2ε, entry by entry.

    ``f`` takes no arguments and recomputes the whole loss from scratch; ``arr``
    (float64, one of f's inputs) is perturbed in place and restored afterwards.
    """
    assert arr.dtype == np.float64, f"numeric_grad needs float64, got {arr.dtype}"
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        orig = arr[idx]
        arr[idx] = orig + eps
        f_plus = f()
        arr[idx] = orig - eps
        f_minus = f()
        arr[idx] = orig
        g[idx] = (f_plus - f_minus) / (2 * eps)
    return g


def assert_close(name: str, ours, theirs, rtol: float, peer: str = "torch") -> float:
    """Assert one named tensor equals the oracle's (same shape and dtype, :func:`rel_err`
    below ``rtol``); returns the error. ``theirs`` may be a torch tensor."""
    if hasattr(theirs, "detach"):
        theirs = theirs.detach().numpy()
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs {peer}'s {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype} vs {peer}'s {theirs.dtype}"
    err = rel_err(ours, theirs)
    assert err < rtol, f"{name} differs from {peer}: relative error {err:.3e} (tolerance {rtol:.0e})"
    return err


def assert_all_close(ours: dict, theirs: dict, rtol: float, peer: str = "torch") -> dict:
    """:func:`assert_close` for every name of two dicts with the same keys; returns the errors."""
    assert sorted(ours) == sorted(theirs), f"different tensors: {sorted(ours)} vs {peer}'s {sorted(theirs)}"
    return {name: assert_close(name, ours[name], theirs[name], rtol, peer) for name in sorted(ours)}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def embedded_pngs(html: str) -> list[bytes]:
    """The images a report embeds as PNG data URIs, decoded."""
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def assert_plots(directory, *names: str, report: str | None = "report.html") -> None:
    """With matplotlib: the PNG files ``names`` in ``directory`` and at least one PNG
    embedded in its ``report``. Without: neither (a run never fails for want of plots)."""
    directory = Path(directory)
    images = embedded_pngs((directory / report).read_text(encoding="utf-8")) if report else None
    if HAVE_MATPLOTLIB:
        for name in names:
            assert (directory / name).read_bytes().startswith(PNG_SIGNATURE), name
        if images is not None:
            assert images and all(png.startswith(PNG_SIGNATURE) for png in images), report
    else:
        for name in names:
            assert not (directory / name).exists(), f"{name} without matplotlib"
        if images is not None:
            assert images == [], f"{report} embeds images without matplotlib"
