"""The fast path: the recurrent time loop (forward and BPTT) compiled from C.

``rnnkit.cells.{rnn,lstm,gru}`` are the readable reference that the gradient
checks prove. This package holds drop-in twins, ``rnnkit.fast.{rnn,lstm,gru}``,
with exactly the same ``forward``/``backward`` contract and cache (and ``infer``,
forward without a cache), whose time loop runs in C (``_kernels.c``), and the
same for the variants people train with (``_variants.c``):
``rnnkit.fast.lstm_variants`` (projection and/or layer norm),
``rnnkit.fast.gru_variants`` (layer norm) and ``rnnkit.fast.indrnn``, which run
the reference for what they do not compile (peepholes, zoneout and recurrent
dropout masks; ``rnnkit.cells.variants.fast_module`` is the rule), and
``rnnkit.fast.minrnn``, whose scan of minGRU and minLSTM runs in C (``_minscan.c``,
a parallel scan: see there). Per step
the products by W_ih (when it is small enough to stay in the cache) and W_hh,
from copies packed once per call for the CPU's vector units, and one fused pass
of the gate arithmetic, with no Python and no temporaries in between. OpenMP
threads (``OMP_NUM_THREADS``) share each step's products by columns and its
element-wise work by rows. The once-per-sequence products (a large input
projection, dx and the weight gradients) run on the same threads when a call
gets several (``grads`` in ``_kernels.c``), else in NumPy. The tests prove the fast
cells equal to the reference (float64 to 1e-12, float32 to 1e-5).

Choose an implementation with :func:`get`::

    cell = rnnkit.fast.get("lstm") or rnnkit.cells.CELLS["lstm"]

The loops are the extension module ``rnnkit.fast._fastrnn``, compiled when
rnnkit is installed (``setup.py``): one build holds them for several
instruction sets and runs the best the CPU has (:func:`isa`). Where it could
not be built (no C compiler at install time), :func:`get` returns None, the
NumPy reference runs and the first call says so (one :class:`PerformanceWarning`
per process). The environment variable ``RNNKIT_NO_COMPILE=1`` switches the
compiled loops off, silently; :func:`status` says which runs and why.
"""

from __future__ import annotations

import importlib
import os
import warnings
from importlib.machinery import EXTENSION_SUFFIXES

from rnnkit.errors import PerformanceWarning

try:
    from rnnkit.fast import _fastrnn as _ext
    _MISSING = ""
except ImportError as _exc:            # installed without a compiler: the NumPy cells run
    _ext = None
    _here = os.path.dirname(os.path.abspath(__file__))
    if any(name.startswith("_fastrnn.") and name.endswith(tuple(EXTENSION_SUFFIXES))
           for name in os.listdir(_here)):
        _MISSING = f"rnnkit.fast._fastrnn could not be loaded ({_exc})"
    else:
        _MISSING = ("rnnkit.fast._fastrnn is not built (no working C compiler was found when "
                    "rnnkit was installed)")

CELL_NAMES = ("rnn", "lstm", "gru")
#: The twins of the variants' reference modules (``rnnkit.cells.<name>``).
VARIANT_NAMES = ("lstm_variants", "gru_variants", "indrnn")
#: The twin of the min cells' reference module: their scan.
SCAN_NAMES = ("minrnn",)
MODULE_NAMES = CELL_NAMES + VARIANT_NAMES + SCAN_NAMES
_MODULES: dict = {}
_warned = False
_always_split = False                  # set_flops_per_thread(0): every loop on every thread


def enabled() -> bool:
    """False when the environment variable RNNKIT_NO_COMPILE is set to a true value."""
    value = os.environ.get("RNNKIT_NO_COMPILE")       # read at every call: tests and users flip it
    return value is None or value.strip().lower() in ("", "0", "false", "no")


def available() -> bool:
    """Whether the compiled loops were built (whatever RNNKIT_NO_COMPILE says)."""
    return _ext is not None


def kernels():
    """The extension module whose functions are the C loops, or None when they cannot run.

    None when the switch is off, or when they were not built: then the first call
    warns (once per process) that the NumPy cells run instead.
    """
    if not enabled():
        return None
    if _ext is None:
        _warn_missing()
    return _ext


def _warn_missing() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"rnnkit.fast: the compiled loops cannot run: {_MISSING}; the NumPy cells "
                      f"run instead, several times slower (reinstall rnnkit where a C compiler "
                      f"is found to build them)", PerformanceWarning, stacklevel=3)


def get(cell: str):
    """The fast module for ``cell`` ("rnn", "lstm" or "gru", or a variant's module name:
    "lstm_variants", "gru_variants", "indrnn", "minrnn"), or None if it cannot run.

    The module has the reference's ``forward`` and ``backward`` (same arguments,
    results, errors and cache). None means: use ``rnnkit.cells.CELLS[cell]`` (or
    ``rnnkit.cells.<name>``).
    """
    return pick(cell)[0]


def pick(cell: str):
    """``(module, kernels)``: :func:`get`'s module and :func:`kernels`, the switch read once,
    or ``(None, None)``. ``rnnkit.Recurrent`` chooses so once per call and hands the
    kernels to the module's trusted functions (``_forward(..., k)``)."""
    module = _MODULES.get(cell) if isinstance(cell, str) else None
    if module is None and cell not in MODULE_NAMES:
        raise ValueError(f"fast.get: cell must be one of {', '.join(map(repr, MODULE_NAMES))}, "
                         f"got {cell!r}")
    k = kernels()
    if k is None:
        return None, None
    if module is None:
        module = _MODULES[cell] = importlib.import_module(f"rnnkit.fast.{cell}")
    return module, k


def status() -> str:
    """One line on the fast path: what runs (C loops and how, or NumPy) and why."""
    if _ext is None:
        return f"NumPy cells: {_MISSING}"
    if not enabled():
        return "NumPy cells: the C loops are switched off by RNNKIT_NO_COMPILE"
    openmp = f"OpenMP, up to {max_threads()} threads" if _ext.OPENMP else "no OpenMP, 1 thread"
    return f"C loops ({isa()} of {', '.join(_ext.ISAS)}; {openmp})"


def isa() -> str:
    """The instruction set whose loops run ("avx512", "avx2", "baseline"), or "" without them."""
    return "" if _ext is None else _ext.isa()


def set_isa(name: str) -> str:
    """Run the loops built for the instruction set ``name`` (one of ``_fastrnn.ISAS`` that this
    CPU runs); return the one that ran. For tests and comparisons: the best runs by default."""
    if _ext is None:
        raise RuntimeError(f"rnnkit.fast.set_isa: {_MISSING}")
    return _ext.set_isa(name)


def max_threads() -> int:
    """How many threads the loops may use now (1 without the loops or OpenMP)."""
    return 1 if _ext is None else _ext.max_threads()


def loop_thread_ids() -> tuple:
    """The kernel's thread ids (Linux) of the threads this thread's loops run on now: itself
    and OpenMP's workers, the same from loop to loop; () where they cannot be known."""
    return () if _ext is None else _ext.loop_thread_ids()


def set_max_threads(n: int) -> int:
    """Let later calls from this thread use up to ``n`` threads; return the old limit (or 1)."""
    return 1 if _ext is None else _ext.set_max_threads(int(n))


def set_flops_per_thread(flops: int) -> int:
    """Set the products (FLOPs per step) each thread needs; return the old value.

    0 uses all threads whatever the size and however busy the machine is (the
    tests use it to run the threaded loops on small problems). No effect without
    the loops.
    """
    global _always_split
    _always_split = int(flops) == 0
    return 0 if _ext is None else _ext.set_flops_per_thread(int(flops))


def always_split() -> bool:
    """Whether set_flops_per_thread(0) asked for every loop on every thread (the tests do),
    whatever its size and however busy the machine is."""
    return _always_split


__all__ = ["get", "pick", "available", "enabled", "kernels", "status", "isa", "set_isa", "max_threads",
           "set_max_threads", "set_flops_per_thread", "always_split", "CELL_NAMES", "VARIANT_NAMES",
           "SCAN_NAMES", "MODULE_NAMES"]
