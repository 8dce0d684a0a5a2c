"""Limit the threads of the BLAS library behind NumPy while a block runs.

:class:`blas_threads` is what ``rnnkit COMMAND --threads N`` uses; it is a library
function so any program (a notebook, a script) can do the same. threadpoolctl finds
the BLAS libraries loaded in the process (OpenBLAS, MKL, BLIS) and sets their pools.
"""

from __future__ import annotations

__all__ = ["blas_threads"]


class blas_threads:
    """Run a block with the BLAS libraries limited to ``n`` threads, then restore them.

    The matrices of a recurrent step are small (batch × hidden), so a multi-threaded
    BLAS spends more time starting and synchronising threads than multiplying, and far
    more when other processes compete for the cores. With ``n`` None nothing changes.
    ``applied`` says whether a BLAS library was found and limited.
    """

    def __init__(self, n: int | None):
        self.n, self._limits, self.applied = n, None, False

    def __enter__(self):
        if self.n is not None:
            import numpy  # noqa: F401  (loads the BLAS to limit, if the block has not yet)
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=int(self.n), user_api="blas")
            self.applied = self._limits.get_original_num_threads().get("blas") is not None
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        return False
