"""Python overhead per call of rk.Recurrent at tiny shapes, two source trees interleaved.

    python benchmarks/hotpath.py BEFORE_TREE AFTER_TREE [--rounds 7] [--calls 400]

Each round runs one worker process per tree, in turn (one thread: OMP and BLAS
held to 1), which times ``--calls`` calls of each case and prints the median
per call. The table gives each tree's median over rounds and the after/before
ratio. Cases (float32): a 1-layer LSTM T=5, B=1, I=H=8 forward+backward, the
same as a 2-layer bidirectional LSTM, and a generation step (T=1, B=1, H=8,
under rnnkit.no_grad()).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import rnnkit as rk
calls = int(sys.argv[2])
def timed(fn):
    for _ in range(20):
        fn()
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e6
rng = np.random.default_rng(0)
out = {}
for name, layers, bidir in (("lstm T5 fwd+bwd", 1, False), ("lstm 2x bidir T5 fwd+bwd", 2, True)):
    m = rk.Recurrent("lstm", 8, 8, num_layers=layers, bidirectional=bidir, seed=0)
    x = rng.standard_normal((5, 1, 8)).astype(np.float32)
    dy = np.ones((5, 1, 8 * (2 if bidir else 1)), np.float32)
    def step(m=m, x=x, dy=dy):
        m.forward(x)
        m.backward(dy)
    out[name] = timed(step)
m = rk.Recurrent("lstm", 8, 8, seed=0)
x1 = rng.standard_normal((1, 1, 8)).astype(np.float32)
state = (np.zeros((1, 1, 8), np.float32), np.zeros((1, 1, 8), np.float32))
def gen():
    with rk.no_grad():
        m.forward(x1, state)
out["generation step"] = timed(gen)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    runs = {"before": [], "after": []}
    for _ in range(args.rounds):
        for label in ("before", "after"):
            tree = os.path.abspath(getattr(args, label))
            res = subprocess.run([sys.executable, "-c", WORKER, tree, str(args.calls)], env=env,
                                 capture_output=True, text=True, check=True, cwd=tree)
            runs[label].append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"{'case':28s} {'before µs':>10s} {'after µs':>10s} {'after/before':>13s}")
    for case in runs["before"][0]:
        b = statistics.median(r[case] for r in runs["before"])
        a = statistics.median(r[case] for r in runs["after"])
        print(f"{case:28s} {b:10.1f} {a:10.1f} {a / b:13.2f}")


if __name__ == "__main__":
    main()
