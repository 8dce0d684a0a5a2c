"""How the compiled time loop was chosen: Numba against rnnkit's C loop, LSTM inference.

The time loop (each step's recurrent product and the gate arithmetic, with no
Python in between) needs compiled code. Two candidates could ship with the
package: a small C file built by the machine's compiler (``rnnkit.fast``, what
rnnkit uses) and Numba, an optional dependency that compiles Python loops with
LLVM. This script times both on the benchmark's shapes (float32, forward
without caches, the input projection inside the timed call for every candidate)
next to the NumPy reference (``rnnkit.cells.lstm.infer``), after checking each
against it:

    numpy        rnnkit.cells.lstm.infer: one product for all steps' inputs, then
                 per step one product and a few vectorised NumPy calls
    numba-loops  one @njit(fastmath=True) function: the inputs' product by NumPy
                 first, then per step and row the product h W_hhᵀ as loops
                 (LLVM vectorises the inner one) and the gates, with rnnkit.fast's
                 rational tanh (math.tanh and math.exp are not vectorised)
    numba-blas   the same, with each step's (B, H) @ (H, 4H) product by np.dot
                 (SciPy's BLAS, as Numba calls it)
    rnnkit.fast  the C loop, as Recurrent runs it under rnnkit.no_grad()

Run ``python benchmarks/candidates.py`` (``pip install numba`` first; without
it only numpy and rnnkit.fast run). Prints the median and minimum over
interleaved rounds and each candidate's median over the C loop's. Threads: each
library's own; ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1``
compares one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import rnnkit as rk                      # first: it tunes OpenBLAS before NumPy loads it
import numpy as np

from rnnkit.cells import lstm as ref

SHAPES = {               # (T, B, I, H), as in rnnkit.bench
    "tiny": (200, 1, 1, 32),
    "small": (100, 16, 32, 64),
    "medium": (100, 32, 64, 128),
    "charlm": (100, 64, 65, 256),
}


def numba_candidates():
    """{name: run(params, x) -> y} for the two Numba loops, or {} without Numba."""
    try:
        import numba
    except ImportError:
        return {}

    f32 = np.float32
    lim = f32(7.90531110763549805)
    p_coef = tuple(f32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                    5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                    4.89352455891786e-03))
    q_coef = tuple(f32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                    4.89352518554385e-03))

    @numba.njit(fastmath=True, cache=False, inline="always")
    def tanh(v):
        """rnnkit.fast's float32 tanh (a rational function, so the loops vectorise)."""
        v = min(max(v, -lim), lim)
        v2 = v * v
        p = p_coef[0]
        for a in p_coef[1:]:
            p = p * v2 + a
        q = q_coef[0]
        for a in q_coef[1:]:
            q = q * v2 + a
        return p * v / q

    @numba.njit(fastmath=True, cache=False, inline="always")
    def sigmoid(v):
        return f32(0.5) * tanh(f32(0.5) * v) + f32(0.5)

    @numba.njit(fastmath=True, cache=False)
    def gates(z, c, h, y):
        """One row: z (4H) pre-activations -> c, h updated in place, y = h."""
        H = c.shape[0]
        for j in range(H):
            i = sigmoid(z[j])
            f = sigmoid(z[H + j])
            g = tanh(z[2 * H + j])
            o = sigmoid(z[3 * H + j])
            c[j] = f * c[j] + i * g
            h[j] = o * tanh(c[j])
            y[j] = h[j]

    @numba.njit(fastmath=True, cache=False)
    def loops(xw, w_hh_t, h, c, y):
        T, B, N = xw.shape
        H = N // 4
        z = np.empty(N, dtype=xw.dtype)
        for t in range(T):
            for b in range(B):
                z[:] = xw[t, b]
                for k in range(H):
                    hk = h[b, k]
                    for j in range(N):
                        z[j] += hk * w_hh_t[k, j]
                gates(z, c[b], h[b], y[t, b])

    @numba.njit(fastmath=True, cache=False)
    def blas(xw, w_hh_t, h, c, y):
        T, B, N = xw.shape
        for t in range(T):
            z = xw[t] + np.dot(h, w_hh_t)
            for b in range(B):
                gates(z[b], c[b], h[b], y[t, b])

    def wrap(loop):
        def run(params, x):
            T, B, I = x.shape
            H = params["weight_hh"].shape[1]
            xw = (x.reshape(T * B, I) @ params["weight_ih"].T).reshape(T, B, 4 * H)
            xw += params["bias_ih"] + params["bias_hh"]
            h, c = np.zeros((B, H), x.dtype), np.zeros((B, H), x.dtype)
            y = np.empty((T, B, H), x.dtype)
            loop(xw, np.ascontiguousarray(params["weight_hh"].T), h, c, y)
            return y
        return run

    return {"numba-loops": wrap(loops), "numba-blas": wrap(blas)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, from " + ",".join(SHAPES))
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    p.add_argument("--target", type=float, default=0.1, help="seconds each timing call lasts")
    args = p.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or args.rounds < 1 or args.target <= 0:
        p.error(f"--shapes must come from {', '.join(SHAPES)} (got {unknown}); --rounds >= 1, --target > 0")

    from rnnkit import fast
    if fast.get("lstm") is None:
        print(f"rnnkit.fast is not available here: {fast.status()}", file=sys.stderr)
        return 1
    cands = {"numpy": lambda params, x: ref.infer(params, x)[0]}
    nb = numba_candidates()
    cands.update(nb)
    if not nb:
        print("numba is not installed: timing numpy and rnnkit.fast only", file=sys.stderr)

    print(f"{'shape':8s} {'candidate':12s} {'median ms':>10s} {'min ms':>9s} {'vs C':>6s}")
    for name in shapes:
        T, B, I, H = SHAPES[name]
        layer = rk.Recurrent("lstm", I, H, dtype=np.float32, seed=0)
        params = {k[:-3]: v for k, v in layer.params.items()}          # weight_ih_l0 -> weight_ih
        x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)

        def c_loop(params, x, layer=layer):
            with rk.no_grad():
                return layer.forward(x)[0]

        runs = {**cands, "rnnkit.fast": c_loop}
        want = ref.infer(params, x)[0]
        reps = {}
        for cand, run in runs.items():
            got = run(params, x)                                 # compiles Numba's loops
            err = float(np.max(np.abs(got - want)))
            if err > 1e-4:
                print(f"{name} {cand}: differs from the reference by {err:.2e}", file=sys.stderr)
                return 1
            t0 = time.perf_counter()
            run(params, x)
            reps[cand] = max(1, int(args.target / max(time.perf_counter() - t0, 1e-9)))
        times = {cand: [] for cand in runs}
        for r in range(args.rounds):
            order = list(runs)[r % len(runs):] + list(runs)[:r % len(runs)]
            for cand in order:
                time.sleep(0.05)                 # the previous candidate's threads go idle
                for _ in range(reps[cand]):
                    t0 = time.perf_counter()
                    runs[cand](params, x)
                    times[cand].append((time.perf_counter() - t0) * 1e3)
        base = statistics.median(times["rnnkit.fast"])
        for cand, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:8s} {cand:12s} {med:10.3f} {min(ts):9.3f} {med / base:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
