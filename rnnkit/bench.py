"""Benchmark rnnkit's recurrent layers against torch.nn.RNN/LSTM/GRU on the CPU.

    python benchmarks/bench.py [--quick] [--json out.json]     (or: rnnkit bench ...)

What is measured. For each cell (LSTM, GRU, RNN), shape and mode, float32:

    shape   T    B   I    H    layers
    tiny    200  1   1    32   1
    small   100  16  32   64   1
    medium  100  32  64   128  1
    charlm  100  64  65   256  1      (one-hot inputs, a character language model)
    large   50   64  256  512  1
    gen     500 single-step calls (T = 1), B = 1, I = 64, H = 256, 2 layers, state carried

modes ``fwd`` (forward only; torch under ``no_grad``) and ``fwdbwd`` (forward, then
backward of L = Σ y ⊙ dy for a fixed random dy; gen is forward only).

Peers, each in its own worker process (so one's threads, caches and allocator do
not disturb another, and each can get its own environment):

    rnnkit        rk.Recurrent, the public layer, as shipped
    rnnkit.fast   the compiled cells of rnnkit.fast called directly (the kernel)
    rnnkit-numpy  rk.Recurrent with RNNKIT_NO_COMPILE=1 (the NumPy reference path)
    torch         torch.nn.RNN/LSTM/GRU (skipped when torch is not installed)

JAX and onnxruntime are reported as skipped: this benchmark has no peer for them.

How. Every worker builds the same weights and inputs from one seed. Before any
timing, each peer's outputs (fwd: y and h_n; fwdbwd: dx and every weight gradient)
are compared with torch's (or, without torch, with the first rnnkit peer's); a
peer that disagrees is not timed and the run exits with status 1. Timing runs in
interleaved rounds — every round visits every case and, within it, every peer in
a rotated order — so slow drifts of the machine (other processes, clock changes)
fall on all peers alike. Each timing call repeats the case enough times to last
about ``--target`` seconds; the table reports the median and minimum over all
repetitions, the ratio rnnkit/torch of medians (< 1: rnnkit is faster), the
matrix-product GFLOP/s achieved (2·rows·cols·inner for the input and recurrent
products; backward counts twice the forward's) against this machine's GEMM peak
(the best of a large float32 matmul in NumPy and in torch), and peak memory:
tracemalloc's peak for the NumPy peers (what one repetition allocates), the
worker's maximum resident set size (ru_maxrss) for torch, which allocates outside
Python's view.

On a machine other processes are busy on, wall-clock times of threaded code say
more about the neighbours than about the code: ``--threads 1 --clock cpu`` times
every peer on one thread by the CPU time it used, which stays steady.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

CELLS = ("lstm", "gru", "rnn")
MODES = ("fwd", "fwdbwd")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ALL_PEERS = ("rnnkit", "rnnkit.fast", "rnnkit-numpy", "torch")
DEFAULT_PEERS = ("rnnkit", "rnnkit.fast", "torch")
ABSENT_PEERS = ("jax", "onnxruntime")


@dataclass(frozen=True)
class Shape:
    """One benchmark shape; ``calls`` > 0 means that many single-step forward calls."""
    name: str
    T: int
    B: int
    I: int
    H: int
    layers: int = 1
    calls: int = 0
    onehot: bool = False


SHAPES = (
    Shape("tiny", 200, 1, 1, 32),
    Shape("small", 100, 16, 32, 64),
    Shape("medium", 100, 32, 64, 128),
    Shape("charlm", 100, 64, 65, 256, onehot=True),
    Shape("large", 50, 64, 256, 512),
    Shape("gen", 1, 1, 64, 256, layers=2, calls=500),
)
QUICK_SHAPES = (
    Shape("tiny", 12, 1, 1, 8),
    Shape("charlm", 10, 4, 7, 16, onehot=True),
    Shape("gen", 1, 1, 6, 8, layers=2, calls=8),
)


def matmul_flops(cell: str, s: Shape, mode: str) -> float:
    """FLOPs of the matrix products: 2·m·n·k each; backward does twice the forward's."""
    G = GATES[cell]
    steps = s.T * max(s.calls, 1)
    total = 0.0
    for layer in range(s.layers):
        inp = s.I if layer == 0 else s.H
        total += 2.0 * steps * s.B * G * s.H * (inp + s.H)
    return total * (3.0 if mode == "fwdbwd" else 1.0)


# ------------------------------------------------------------------ the workers

def _make_data(cell: str, s: Shape, seed: int):
    """Weights (PyTorch names), inputs and the output gradient, the same in every worker.

    Shapes:
        params weight_ih_l{k} (G*H, I_k) ...; xs (calls or 1, T, B, I); dy (T, B, H)
    """
    rng = np.random.default_rng(seed)
    G, H = GATES[cell], s.H
    k = 1.0 / math.sqrt(H)
    params = {}
    for layer in range(s.layers):
        inp = s.I if layer == 0 else H
        params[f"weight_ih_l{layer}"] = rng.uniform(-k, k, (G * H, inp)).astype(np.float32)
        params[f"weight_hh_l{layer}"] = rng.uniform(-k, k, (G * H, H)).astype(np.float32)
        params[f"bias_ih_l{layer}"] = rng.uniform(-k, k, G * H).astype(np.float32)
        params[f"bias_hh_l{layer}"] = rng.uniform(-k, k, G * H).astype(np.float32)
    n = max(s.calls, 1)
    if s.onehot:
        ids = rng.integers(0, s.I, (n, s.T, s.B))
        xs = np.eye(s.I, dtype=np.float32)[ids]
    else:
        xs = rng.standard_normal((n, s.T, s.B, s.I)).astype(np.float32)
    dy = rng.standard_normal((s.T, s.B, H)).astype(np.float32)
    return params, xs, dy


class _RnnkitLayer:
    """rk.Recurrent, the layer users run."""

    def __init__(self, cell, s: Shape, seed):
        import rnnkit as rk
        self.s, self.cell = s, cell
        params, self.xs, self.dy = _make_data(cell, s, seed)
        self.layer = rk.Recurrent(cell, s.I, s.H, num_layers=s.layers, dtype=np.float32, seed=0)
        for name, value in params.items():
            self.layer.params[name][...] = value

    def fwd(self):
        return self.layer.forward(self.xs[0])

    def fwdbwd(self):
        self.layer.forward(self.xs[0])
        return self.layer.backward(self.dy)

    def gen(self):
        h = None
        for t in range(self.s.calls):
            y, h = self.layer.forward(self.xs[t], h)
        return y, h

    def outputs(self, mode):
        if mode == "gen":
            y, h = self.gen()
            return _state_outputs(self.cell, y, h)
        if mode == "fwd":
            y, h = self.fwd()
            return _state_outputs(self.cell, y, h)
        self.layer.zero_grad()
        dx, _ = self.fwdbwd()
        out = {"dx": dx}
        out.update({f"grad.{k}": v.copy() for k, v in self.layer.grads.items()})
        return out


class _RnnkitCells:
    """The cells of rnnkit.fast called directly, layer by layer (the kernel, no layer around it)."""

    def __init__(self, cell, s: Shape, seed):
        from rnnkit import fast
        self.impl = fast.get(cell)
        if self.impl is None:
            raise RuntimeError(f"rnnkit.fast is not available: {fast.status()}")
        self.s, self.cell = s, cell
        params, self.xs, self.dy = _make_data(cell, s, seed)
        self.params = [{key: params[f"{key}_l{layer}"]
                        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                       for layer in range(s.layers)]

    def _forward(self, x, states=None):
        caches, finals = [], []
        for layer, p in enumerate(self.params):
            x, final, cache = self.impl.forward(p, x, None if states is None else states[layer])
            caches.append(cache)
            finals.append(final)
        return x, finals, caches

    def fwd(self):
        return self._forward(self.xs[0])[:2]

    def fwdbwd(self):
        _, _, caches = self._forward(self.xs[0])
        d, grads = self.dy, []
        for layer in reversed(range(len(self.params))):
            d, _, g = self.impl.backward(self.params[layer], caches[layer], d)
            grads.append((layer, g))
        return d, grads

    def gen(self):
        states = None
        for t in range(self.s.calls):
            y, states, _ = self._forward(self.xs[t], states)
        return y, states

    def outputs(self, mode):
        if mode in ("fwd", "gen"):
            y, finals = self.gen() if mode == "gen" else self.fwd()
            if self.cell == "lstm":
                h = (np.stack([f[0] for f in finals]), np.stack([f[1] for f in finals]))
            else:
                h = np.stack(finals)
            return _state_outputs(self.cell, y, h)
        dx, grads = self.fwdbwd()
        out = {"dx": dx}
        for layer, g in grads:
            out.update({f"grad.{k}_l{layer}": v for k, v in g.items()})
        return out


class _Torch:
    """torch.nn.RNN/LSTM/GRU with the same weights."""

    def __init__(self, cell, s: Shape, seed):
        import torch
        self.torch, self.s, self.cell = torch, s, cell
        params, xs, dy = _make_data(cell, s, seed)
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.m = cls(s.I, s.H, num_layers=s.layers)
        self.m.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
        self.xs = torch.from_numpy(xs)
        self.x = self.xs[0]
        self.dy = torch.from_numpy(dy)

    def fwd(self):
        with self.torch.no_grad():
            return self.m(self.x)

    def fwdbwd(self):
        self.m.zero_grad(set_to_none=True)
        x = self.x.detach().requires_grad_(True)
        y, _ = self.m(x)
        y.backward(self.dy)
        return x.grad

    def gen(self):
        with self.torch.no_grad():
            h = None
            for t in range(self.s.calls):
                y, h = self.m(self.xs[t], h)
        return y, h

    def outputs(self, mode):
        if mode in ("fwd", "gen"):
            y, h = self.gen() if mode == "gen" else self.fwd()
            h = tuple(a.numpy() for a in h) if self.cell == "lstm" else h.numpy()
            return _state_outputs(self.cell, y.numpy(), h)
        dx = self.fwdbwd()
        out = {"dx": dx.numpy()}
        out.update({f"grad.{k}": p.grad.numpy() for k, p in self.m.named_parameters()})
        return out


def _state_outputs(cell, y, h):
    if cell == "lstm":
        return {"y": np.asarray(y), "h_n": np.asarray(h[0]), "c_n": np.asarray(h[1])}
    return {"y": np.asarray(y), "h_n": np.asarray(h)}


RUNNERS = {"rnnkit": _RnnkitLayer, "rnnkit-numpy": _RnnkitLayer, "rnnkit.fast": _RnnkitCells,
           "torch": _Torch}


def _gemm_peak(peer: str, n: int) -> float:
    """Best GFLOP/s of an (n, n) @ (n, n) float32 product with this peer's library."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    if peer == "torch":
        import torch
        ta = torch.from_numpy(a)
        fn = lambda: torch.mm(ta, ta)
    else:
        fn = lambda: a @ a
    fn()
    best = min(_timed(fn) for _ in range(5))
    return 2.0 * n ** 3 / best / 1e9


_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _set_clock(name: str) -> None:
    global _clock
    _clock = _CLOCKS[name]


def _timed(fn) -> float:
    t0 = _clock()
    fn()
    return _clock() - t0


def _memory_mb(peer: str, fn) -> tuple[float, str]:
    """Peak memory of one repetition: tracemalloc for NumPy peers, ru_maxrss for torch."""
    if peer == "torch":
        import resource
        fn()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10), "maxrss"
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / 2 ** 20, "tracemalloc"


def _worker_info(peer: str) -> dict:
    info = {"peer": peer, "numpy": np.__version__}
    if peer == "torch":
        import torch
        info.update(torch=torch.__version__, threads=torch.get_num_threads())
    else:
        import rnnkit
        from rnnkit import fast
        info.update(rnnkit=rnnkit.__version__, fast=fast.status())
    return info


def _serve(peer: str) -> int:
    """The worker loop: one JSON request per line on stdin, one JSON reply per line out."""
    import traceback
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr            # nothing but replies may reach the protocol pipe
    runners: dict[str, object] = {}
    try:
        if peer == "torch":
            import torch
            threads = os.environ.get("RNNKIT_BENCH_THREADS")
            if threads:
                torch.set_num_threads(int(threads))
        ready = {"ok": True, "info": _worker_info(peer)}
    except Exception as exc:           # e.g. torch not installed: the peer is skipped
        ready = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    proto.write(json.dumps(ready) + "\n")
    if not ready["ok"]:
        return 0
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = _handle(peer, runners, req)
            reply["ok"] = True
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")
        if req["op"] == "quit":
            break
    return 0


def _handle(peer, runners, req) -> dict:
    op = req["op"]
    if op == "quit":
        return {}
    if op == "peak":
        return {"gflops": _gemm_peak(peer, req["n"])}
    if op == "clock":
        _set_clock(req["clock"])
        return {}
    key = req["key"]
    if op == "setup":
        runner = RUNNERS[peer](req["cell"], Shape(**req["shape"]), req["seed"])
        runners[key] = runner
        return {}
    runner = runners[key]
    fn = getattr(runner, req["mode"])
    if op == "check":
        np.savez(req["path"], **runner.outputs(req["mode"]))
        return {}
    if op == "warmup":
        fn()
        return {"seconds": min(_timed(fn) for _ in range(2))}
    if op == "memory":
        mb, how = _memory_mb(peer, fn)
        return {"mb": mb, "how": how}
    if op == "time":
        gc.collect()
        gc.disable()
        try:
            times = [_timed(fn) for _ in range(req["reps"])]
        finally:
            gc.enable()
        return {"times": times}
    raise ValueError(f"unknown op {op!r}")


# ---------------------------------------------------------------- the coordinator

class Worker:
    """A peer's process and its request/reply pipe."""

    def __init__(self, peer: str, threads):
        self.peer = peer
        env = dict(os.environ)
        if peer == "rnnkit-numpy":
            env["RNNKIT_NO_COMPILE"] = "1"
        if threads:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                        "RNNKIT_BENCH_THREADS"):
                env[var] = str(threads)
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "rnnkit.bench", "--worker", peer],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, text=True, bufsize=1)
        hello = self._read()
        self.ok, self.info, self.error = hello["ok"], hello.get("info", {}), hello.get("error")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._err.seek(0)
            tail = self._err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"bench worker {self.peer!r} exited: {tail}")
        return json.loads(line)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        reply = self._read()
        if not reply["ok"]:
            raise RuntimeError(f"{self.peer}: {req['op']} failed: {reply['error']}\n"
                               f"{reply.get('traceback', '')}")
        return reply

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def compare(got: dict, want: dict) -> float:
    """Largest error over all arrays, each relative to the largest magnitude in ``want``."""
    if set(got) != set(want):
        raise ValueError(f"outputs differ in names: {sorted(set(got) ^ set(want))}")
    worst = 0.0
    for k in want:
        a, b = np.asarray(got[k], dtype=np.float64), np.asarray(want[k], dtype=np.float64)
        if a.shape != b.shape:
            return math.inf
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)
                                 / max(1.0, float(np.max(np.abs(b), initial=0.0)))))
    return worst


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes, one round: a smoke test that runs in seconds")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated: lstm,gru,rnn")
    p.add_argument("--shapes", default=None,
                   help=f"comma-separated shape names (default all: "
                        f"{','.join(s.name for s in SHAPES)})")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: fwd,fwdbwd")
    p.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                   help=f"comma-separated, from {','.join(ALL_PEERS)}")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved timing rounds (default 5, or 1 with --quick)")
    p.add_argument("--target", type=float, default=None,
                   help="seconds each timing call should last (default 0.2, or 0.005 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS/OpenMP in every worker (default: the libraries' own; "
                        "1 with --quick)")
    p.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                   help="wall: elapsed time (default); cpu: the worker's CPU time, steadier on a "
                        "busy machine but only comparable with --threads 1")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="largest relative difference from the reference peer that passes")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument("--worker", metavar="PEER", help=argparse.SUPPRESS)
    return p


def _split(value: str, allowed, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise ValueError(f"bench: {what} must be a comma-separated list from "
                         f"{', '.join(allowed)}; got {value!r}")
    return items


def main(argv=None) -> int:
    """Run the benchmark; return 0, or 1 when a peer's outputs disagree with the reference."""
    args = build_parser().parse_args(argv)
    if args.worker:
        return _serve(args.worker)
    shapes_all = QUICK_SHAPES if args.quick else SHAPES
    names = [s.name for s in shapes_all]
    shapes = [s for s in shapes_all if s.name in _split(args.shapes or ",".join(names), names, "--shapes")]
    cells = _split(args.cells, CELLS, "--cells")
    modes = _split(args.modes, MODES, "--modes")
    peers = _split(args.peers, ALL_PEERS, "--peers")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    target = args.target if args.target is not None else (0.005 if args.quick else 0.2)
    if rounds < 1 or target <= 0:
        raise ValueError(f"bench: --rounds must be >= 1 and --target > 0, got {rounds} and {target}")

    # one thread in quick mode: a smoke test must not stall on threads that spin
    # while a busy machine has descheduled their partner
    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    started = time.time()
    workers = {p: Worker(p, threads) for p in peers}
    try:
        return _run(args, workers, cells, shapes, modes, rounds, target, threads, started)
    finally:
        for w in workers.values():
            w.close()


def _run(args, workers, cells, shapes, modes, rounds, target, threads, started) -> int:
    live = [p for p, w in workers.items() if w.ok]
    skipped = {p: w.error for p, w in workers.items() if not w.ok}
    for name in ABSENT_PEERS:
        skipped[name] = "no peer for it in this benchmark" if _importable(name) else "not installed"
    ref_peer = "torch" if "torch" in live else (live[0] if live else None)
    for p in live:
        workers[p].ask(op="clock", clock=args.clock)
    n_peak = 256 if args.quick else 2048
    peaks = {p: workers[p].ask(op="peak", n=n_peak)["gflops"] for p in live}
    peak = max(peaks.values()) if peaks else float("nan")

    cases = []
    for cell in cells:
        for s in shapes:
            for mode in modes:
                if s.calls and mode == "fwdbwd":
                    continue               # generation is inference only
                cases.append({"cell": cell, "shape": s, "mode": "gen" if s.calls else mode})
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            case["key"] = key = f"{case['cell']}-{case['shape'].name}"
            case["peers"] = {}
            for p in live:
                if i == 0 or cases[i - 1]["key"] != key:
                    workers[p].ask(op="setup", key=key, cell=case["cell"],
                                   shape=asdict(case["shape"]), seed=args.seed)
                path = os.path.join(tmp, f"{p}.npz")
                workers[p].ask(op="check", key=key, mode=case["mode"], path=path)
            ref_out = _load(os.path.join(tmp, f"{ref_peer}.npz"))
            for p in live:
                err = compare(_load(os.path.join(tmp, f"{p}.npz")), ref_out)
                ok = err <= args.tol
                entry = {"max_rel_err": err, "check_ok": ok, "times": []}
                if not ok:
                    failed.append(f"{case['cell']} {case['shape'].name} {case['mode']}: {p} "
                                  f"differs from {ref_peer} by {err:.2e}")
                else:
                    w = workers[p].ask(op="warmup", key=key, mode=case["mode"])
                    entry["reps"] = max(1, min(200, int(target / max(w["seconds"], 1e-9))))
                    m = workers[p].ask(op="memory", key=key, mode=case["mode"])
                    entry["mem_mb"], entry["mem_how"] = m["mb"], m["how"]
                case["peers"][p] = entry

        for r in range(rounds):
            for case in cases:
                order = [p for p in live if case["peers"][p]["check_ok"]]
                order = order[r % len(order):] + order[:r % len(order)] if order else order
                for p in order:
                    e = case["peers"][p]
                    e["times"] += workers[p].ask(op="time", key=case["key"], mode=case["mode"],
                                                 reps=e["reps"])["times"]

    results = [_summarise(c, peak) for c in cases]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "threads": threads, "gemm_peak_gflops": peak, "gemm_peak_by_peer": peaks,
                    "workers": {p: workers[p].info for p in live}},
        "config": {"quick": args.quick, "rounds": rounds, "target_s": target, "seed": args.seed,
                   "reference": ref_peer, "tol": args.tol, "clock": args.clock, "dtype": "float32"},
        "skipped": skipped,
        "failed_checks": failed,
        "results": results,
        "seconds": time.time() - started,
    }
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 1 if failed else 0


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def _load(path: str) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _summarise(case, peak) -> dict:
    s = case["shape"]
    flops = matmul_flops(case["cell"], s, "fwdbwd" if case["mode"] == "fwdbwd" else "fwd")
    out = {"cell": case["cell"], "shape": s.name, "mode": case["mode"],
           "dims": {"T": s.T, "B": s.B, "I": s.I, "H": s.H, "layers": s.layers, "calls": s.calls},
           "gflop": flops / 1e9, "peers": {}, "ratios": {}}
    for p, e in case["peers"].items():
        d = {"max_rel_err": e["max_rel_err"], "check_ok": e["check_ok"]}
        if e["times"]:
            med, best = statistics.median(e["times"]), min(e["times"])
            d.update(median_ms=med * 1e3, min_ms=best * 1e3, n=len(e["times"]),
                     gflops=flops / med / 1e9, pct_peak=100.0 * flops / med / 1e9 / peak,
                     mem_mb=e["mem_mb"], mem_how=e["mem_how"])
        out["peers"][p] = d
    torch_ms = out["peers"].get("torch", {}).get("median_ms")
    for p, d in out["peers"].items():
        if p != "torch" and torch_ms and "median_ms" in d:
            out["ratios"][f"{p}/torch"] = d["median_ms"] / torch_ms
    return out


def format_table(report) -> str:
    """The results as a fixed-width table, one row per cell, shape, mode and peer."""
    m = report["machine"]
    c = report["config"]
    lines = [f"rnnkit bench: {m['cpus']} CPUs, threads {m['threads'] or 'default'}, "
             f"{c['clock']} clock, GEMM peak {m['gemm_peak_gflops']:.1f} GFLOP/s (float32 "
             f"matmul), reference for checks: {c['reference']}"]
    for p, why in report["skipped"].items():
        lines.append(f"  skipped {p}: {why}")
    head = (f"{'cell':5} {'shape':7} {'mode':6} {'peer':12} {'median ms':>10} {'min ms':>10} "
            f"{'vs torch':>8} {'GFLOP/s':>8} {'%peak':>6} {'mem MB':>8} {'max err':>8}")
    lines += [head, "-" * len(head)]
    for r in report["results"]:
        for p, d in r["peers"].items():
            ratio = r["ratios"].get(f"{p}/torch")
            if "median_ms" in d:
                mem = f"{d['mem_mb']:.2f}" + ("r" if d["mem_how"] == "maxrss" else "")
                lines.append(
                    f"{r['cell']:5} {r['shape']:7} {r['mode']:6} {p:12} {d['median_ms']:10.3f} "
                    f"{d['min_ms']:10.3f} {'' if ratio is None else f'{ratio:.2f}':>8} "
                    f"{d['gflops']:8.2f} {d['pct_peak']:6.1f} {mem:>8} {d['max_rel_err']:8.1e}")
            else:
                lines.append(f"{r['cell']:5} {r['shape']:7} {r['mode']:6} {p:12} "
                             f"{'CHECK FAILED':>10} err {d['max_rel_err']:.2e}")
    lines.append("vs torch: median time / torch's median (< 1: faster than torch). mem: tracemalloc "
                 "peak of one run; 'r': the worker's max RSS (torch).")
    for f in report["failed_checks"]:
        lines.append(f"FAILED: {f}")
    lines.append(f"({report['seconds']:.0f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
