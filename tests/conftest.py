"""Test-session set-up: single-threaded BLAS.

The tests use small matrices, where BLAS threads cost more than they save and
make timings (and, under load, run time) erratic. Set before NumPy is imported.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
