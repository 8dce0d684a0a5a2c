"""The fast path: the recurrent time loop (forward and BPTT) compiled from C.

``rnnkit.cells.{rnn,lstm,gru}`` are the readable reference that the gradient
checks prove. This package holds drop-in twins, ``rnnkit.fast.{rnn,lstm,gru}``,
with exactly the same ``forward``/``backward`` contract and cache (and ``infer``,
forward without a cache), whose time loop runs in ``_fastrnn.c``: per step the
products by W_ih (when it is small enough to stay in the cache) and W_hh, from
copies packed once per call for the CPU's vector units, and one fused pass of
the gate arithmetic, with no Python and no temporaries in between. OpenMP
threads (``OMP_NUM_THREADS``) share each step's products by columns and its
element-wise work by rows. NumPy still does the once-per-sequence products (a
large input projection, dx and the weight gradients). The tests prove the fast
cells equal to the reference (float64 to 1e-12, float32 to 1e-5).

Choose an implementation with :func:`get`::

    cell = rnnkit.fast.get("lstm") or rnnkit.cells.CELLS["lstm"]

The C file is compiled on first use with the machine's C compiler into a
per-user cache (``$RNNKIT_CACHE``, else ``~/.cache/rnnkit``; see
``rnnkit.fast._build``). With no compiler, a failed build, or the environment
variable ``RNNKIT_NO_COMPILE=1``, :func:`get` returns None and the NumPy
reference runs; :func:`status` says why. Importing this package compiles nothing.
"""

from __future__ import annotations

import importlib
import os

CELL_NAMES = ("rnn", "lstm", "gru")
_MODULES: dict = {}


def enabled() -> bool:
    """False when the environment variable RNNKIT_NO_COMPILE is set to a true value."""
    value = os.environ.get("RNNKIT_NO_COMPILE")       # read at every call: tests and users flip it
    return value is None or value.strip().lower() in ("", "0", "false", "no")


def available() -> bool:
    """Whether the compiled kernels can run here (compiles them on the first call)."""
    if not enabled():
        return False
    from rnnkit.fast._build import kernels
    return kernels("float32") is not None


def get(cell: str):
    """The fast module for ``cell`` ("rnn", "lstm" or "gru"), or None if it cannot run.

    The module has the reference cell's ``forward`` and ``backward`` (same
    arguments, results, errors and cache). None means: use ``rnnkit.cells.CELLS[cell]``.
    """
    module = _MODULES.get(cell) if isinstance(cell, str) else None
    if module is not None:              # the kernels loaded before: only the switch can say no
        return module if enabled() else None
    if cell not in CELL_NAMES:
        raise ValueError(f"fast.get: cell must be one of {', '.join(map(repr, CELL_NAMES))}, "
                         f"got {cell!r}")
    if not available():
        return None
    module = _MODULES[cell] = importlib.import_module(f"rnnkit.fast.{cell}")
    return module


def status() -> str:
    """One line on the fast path: disabled, unavailable (and why), or loaded (and how)."""
    if not enabled():
        return "disabled by RNNKIT_NO_COMPILE"
    from rnnkit.fast import _build
    available()
    return _build.status()


__all__ = ["get", "available", "enabled", "status", "CELL_NAMES"]
