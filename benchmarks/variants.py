"""The compiled variants against their NumPy path (and torch where it has the feature).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/variants.py [--reps 15]
        [--threads N] [--clock cpu]

One process, rounds interleaved: per round each case runs once through the C loops
and once through NumPy (``RNNKIT_NO_COMPILE``, read at every call), and torch's
``nn.LSTM(proj_size=P)`` for the projection. Times are medians over the rounds of
one forward + backward of ``rk.Recurrent`` (and of a forward under
``rk.no_grad()``), float32, T=100, B=32, I=64, H=128 (P=64), default threads;
``--threads 1 --clock cpu`` (every pool held to one thread, the process's CPU time)
is the steady way on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # this checkout's rnnkit
import rnnkit as rk  # noqa: E402
from rnnkit import fast  # noqa: E402

T, B, I, H, P = 100, 32, 64, 128, 64
CASES = {
    "lstm proj_size=64": ("lstm", dict(proj_size=P)),
    "lstm layer_norm": ("lstm", dict(layer_norm=True)),
    "lstm proj+layer_norm": ("lstm", dict(proj_size=P, layer_norm=True)),
    "gru layer_norm": ("gru", dict(layer_norm=True)),
    "indrnn relu": ("indrnn", {}),
    "lstm (plain, for scale)": ("lstm", {}),
}


CLOCK = time.perf_counter


def timed(fn) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15, help="rounds (the median of each is reported)")
    ap.add_argument("--threads", type=int, default=0, help="hold every pool (C loops, BLAS, torch) to N")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time or the process's CPU time")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
        fast.set_max_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    layers = {name: rk.Recurrent(cell, I, H, seed=0, **kw) for name, (cell, kw) in CASES.items()}
    try:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        tlstm = torch.nn.LSTM(I, H, proj_size=P)
        tx = torch.from_numpy(x)
    except ImportError:
        torch = None

    def train_step(layer):
        y, _ = layer.forward(x)
        layer.backward(np.ones_like(y))

    def infer_step(layer):
        with rk.no_grad():
            layer.forward(x)

    def torch_step():
        tx.requires_grad_(True)
        y, _ = tlstm(tx)
        y.sum().backward()

    def torch_infer():
        with torch.no_grad():
            tlstm(tx)

    times: dict = {}
    for _ in range(args.reps + 1):                  # the first round warms up
        for name, layer in layers.items():
            for path in ("C", "NumPy"):
                os.environ["RNNKIT_NO_COMPILE"] = "0" if path == "C" else "1"
                times.setdefault((name, path, "train"), []).append(timed(lambda: train_step(layer)))
                times.setdefault((name, path, "infer"), []).append(timed(lambda: infer_step(layer)))
                assert layer._cell.__name__.startswith("rnnkit.fast" if path == "C" else "rnnkit.cells")
        if torch is not None:
            times.setdefault(("torch", "train"), []).append(timed(torch_step))
            times.setdefault(("torch", "infer"), []).append(timed(torch_infer))
    os.environ.pop("RNNKIT_NO_COMPILE")

    def med(key):
        return statistics.median(times[key][1:]) * 1e3

    print(f"T={T} B={B} I={I} H={H} P={P} float32, {args.reps} rounds, medians in ms ({args.clock} clock); "
          f"{fast.status()}"
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else ""))
    print(f"{'case':26s} {'fwd+bwd C':>10s} {'NumPy':>8s} {'NumPy/C':>8s} {'infer C':>8s} {'NumPy':>8s} "
          f"{'NumPy/C':>8s}{'  torch fwd+bwd, infer (torch/C)' if torch else ''}")
    for name in CASES:
        tc, tn, ic, inn = med((name, "C", "train")), med((name, "NumPy", "train")), \
            med((name, "C", "infer")), med((name, "NumPy", "infer"))
        extra = ""
        if torch is not None and "proj_size" in name and "layer_norm" not in name:
            tt, ti = med(("torch", "train")), med(("torch", "infer"))
            extra = f"  {tt:7.1f} ({tt / tc:.2f}x), {ti:6.1f} ({ti / ic:.2f}x)"
        print(f"{name:26s} {tc:10.1f} {tn:8.1f} {tn / tc:7.1f}x {ic:8.1f} {inn:8.1f} {inn / ic:7.1f}x{extra}")


if __name__ == "__main__":
    main()
