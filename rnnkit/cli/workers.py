"""``--workers N``: run a training command as N MPI processes on this machine.

The command line is started again under ``mpiexec -n N`` (the one next to this Python,
which the ``mpich`` wheel of ``rnnkit[mpi]`` installs, else the one on PATH), without
``--workers``; the processes find each other through the launcher and train
data-parallel (:mod:`rnnkit.distributed`). Each process gets ⌊cores / N⌋ threads (at
least one) unless ``--threads`` or ``OMP_NUM_THREADS`` says otherwise. Ctrl-C here is
passed on to mpiexec once per press: the first makes every rank stop after its step and
write the checkpoint, a second aborts.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys

from rnnkit.errors import RnnkitError

__all__ = ["start_workers", "strip_workers"]


def strip_workers(argv: list[str]) -> list[str]:
    """``argv`` without ``--workers N`` / ``--workers=N``."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        out.append(a)
    return out


def start_workers(argv: list[str], workers: int, threads: int | None) -> int | None:
    """Run the command as ``workers`` MPI processes and return their exit status; None
    when this process is already one of them (or ``workers`` is 1): go on here."""
    from rnnkit.distributed import find_mpiexec, launched_size

    size = launched_size()
    if size > 1:
        if size != workers:
            raise RnnkitError(f"--workers {workers}: this command already runs as {size} MPI processes; "
                              f"leave --workers out under mpiexec (or give --workers {size})")
        return None
    if workers == 1:
        return None
    mpiexec = find_mpiexec()
    if mpiexec is None or importlib.util.find_spec("mpi4py") is None:
        raise RnnkitError(f"--workers {workers}: needs MPI (mpi4py and an mpiexec): pip install \"rnnkit[mpi]\"")
    env = dict(os.environ)
    if threads is None and "OMP_NUM_THREADS" not in env:
        per_rank = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, per_rank)
    cmd = [mpiexec, "-n", str(workers), sys.executable, "-m", "rnnkit", *strip_workers(argv)]
    # mpiexec in its own session: a Ctrl-C at the terminal reaches it once, through us
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def forward(signum, frame):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
