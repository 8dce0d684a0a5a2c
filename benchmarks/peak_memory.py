"""Peak memory of one LSTM forward+backward, rnnkit against torch, each in its own process.

    python benchmarks/peak_memory.py            # T=1000, B=64, I=256, H=512, float32

Prints the growth of the process's peak resident set size (ru_maxrss) over the
forward and backward pass, and the wall time, for each implementation.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np


def measure(which: str, T: int, B: int, I: int, H: int) -> str:
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    if which == "torch":
        import torch

        torch.set_num_threads(1)
        m = torch.nn.LSTM(I, H)
        xt = torch.from_numpy(x).requires_grad_(True)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        y, _ = m(xt)
        y.backward(torch.ones_like(y))
    else:
        import rnnkit as rk

        layer = rk.Recurrent("lstm", I, H, seed=0)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        y, _ = layer.forward(x)
        layer.backward(np.ones_like(y))
    elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
    return f"{which}: peak RSS growth {(peak - base) / 1024:.0f} MiB, {elapsed:.1f} s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="1000,64,256,512", help="T,B,I,H (default: 1000,64,256,512)")
    p.add_argument("--only", choices=["rnnkit", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    T, B, I, H = (int(v) for v in args.shape.split(","))
    if args.only:
        print(measure(args.only, T, B, I, H))
        return 0
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for which in ("rnnkit", "torch"):
        subprocess.run([sys.executable, __file__, "--shape", args.shape, "--only", which], env=env, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
