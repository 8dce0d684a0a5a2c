"""Training-step time of minGRU/minLSTM (compiled scan and NumPy) against the compiled GRU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/minscan.py [--rounds 15]

One step is what training does per batch: ``Recurrent.forward`` and ``backward`` (the
input product, the scan or the time loop, the weight and input gradients) at T=1000,
B=32, I=2, float32, for H=64 and H=128. The cases run in turn within every round
(interleaved, so a shared machine's load falls on all of them alike); the table gives
each case's median over rounds and the GRU's median over the case's. BLAS runs on one
thread, as ``rnnkit memory`` runs it; the loops take the threads the machine has free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

CASES = (("gru", "C"), ("mingru", "C"), ("mingru", "NumPy"), ("minlstm", "C"))


def step(cell: str, impl: str, T: int, B: int, I: int, H: int):
    """A function running one training step of a one-layer ``cell``, and the layer."""
    import rnnkit as rk

    m = rk.Recurrent(cell, I, H, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    dy = rng.normal(size=(T, B, H)).astype(np.float32)

    def run():
        if impl == "NumPy":
            os.environ["RNNKIT_NO_COMPILE"] = "1"      # read at every forward
        try:
            m.zero_grad()
            m.forward(x)
            m.backward(dy)
        finally:
            os.environ.pop("RNNKIT_NO_COMPILE", None)
    return run, m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", default="64,128", help="comma-separated H")
    a = p.parse_args(argv)
    from rnnkit import fast

    print(f"T={a.length} B={a.batch} I=2 float32; {fast.status()}; load {os.getloadavg()[0]:.1f}")
    print(f"{'H':>4} {'cell':8} {'impl':6} {'ms/step':>9} {'GRU / this':>11}")
    for H in (int(v) for v in a.hidden.split(",")):
        runs = {c: step(*c, a.length, a.batch, 2, H) for c in CASES}
        times = {c: [] for c in CASES}
        for r in range(a.rounds + 1):
            for c, (run, _) in runs.items():
                t0 = time.perf_counter()
                run()
                if r:                                  # the first round warms up
                    times[c].append(time.perf_counter() - t0)
        for (cell, impl), (_, m) in runs.items():       # what each case ran
            ran = m._cell.__name__
            assert ran.startswith("rnnkit.fast" if impl == "C" else "rnnkit.cells"), (cell, impl, ran)
        gru = statistics.median(times[("gru", "C")])
        for (cell, impl), ts in times.items():
            med = statistics.median(ts)
            print(f"{H:>4} {cell:8} {impl:6} {med * 1e3:9.1f} {gru / med:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
