"""Limit the threads of the BLAS library behind NumPy while a block runs.

:class:`blas_threads` is what ``rnnkit COMMAND --threads N`` uses; it is a library
function so any program (a notebook, a script) can do the same.
"""

from __future__ import annotations

import os

__all__ = ["blas_threads", "blas_thread_controls"]

# (set, get) thread-count functions of the BLAS libraries NumPy ships with or links against
_BLAS_THREAD_FUNCS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
    ("bli_thread_set_num_threads", "bli_thread_get_num_threads"),
)


def blas_thread_controls() -> list:
    """(set, get) ctypes functions of every BLAS loaded in this process (Linux; else [])."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in paths if ".so" in p and any(k in os.path.basename(p).lower()
                                                              for k in ("blas", "mkl", "blis"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _BLAS_THREAD_FUNCS:
            setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return found


class blas_threads:
    """Run a block with the BLAS library limited to ``n`` threads, then restore its setting.

    The matrices of a recurrent step are small (batch × hidden), so a multi-threaded
    BLAS spends more time starting and synchronising threads than multiplying, and far
    more when other processes compete for the cores (measured on a busy 2-core
    machine: an LSTM training step with B=32, H=128, T=64 took 0.07 s on one thread
    and 0.25–0.7 s on two). Best effort: Linux only (the loaded libraries are found in
    /proc/self/maps); elsewhere, or with ``n`` None, nothing changes.
    ``applied`` says whether a BLAS was found.
    """

    def __init__(self, n: int | None):
        self.n, self.saved, self.applied = n, [], False

    def __enter__(self):
        import ctypes

        if self.n is not None:
            for setter, getter in blas_thread_controls():
                self.saved.append((setter, int(getter())))
                setter(ctypes.c_int(int(self.n)))
            self.applied = bool(self.saved)
        return self

    def __exit__(self, *exc):
        import ctypes

        for setter, previous in self.saved:
            setter(ctypes.c_int(previous))
        return False
