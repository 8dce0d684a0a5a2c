"""The worker processes of ``rnnkit bench``: one per peer, serving timing requests on a pipe,
and :class:`Worker`, the coordinator's handle on one (see :mod:`rnnkit.bench`).

A worker is started as ``python -c`` that imports NumPy before anything of rnnkit, as
users' scripts do: the speed measured must not depend on rnnkit being imported first.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from rnnkit.bench.peers import RUNNERS, SETTLE_S, WARM_CALLS, Shape, _ort_session

def _gemm_peak(peer: str, n: int) -> float:
    """Best GFLOP/s of an (n, n) @ (n, n) float32 product with this peer's library."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    if peer == "torch":
        import torch
        ta = torch.from_numpy(a)
        fn = lambda: torch.mm(ta, ta)
    elif peer == "jax":
        import jax
        ja, mm = jax.device_put(a), jax.jit(lambda a, b: a @ b)
        fn = lambda: mm(ja, ja).block_until_ready()
    elif peer == "onnxruntime":
        from onnx import TensorProto, helper
        io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", io[:2], io[2:])
        opsets = [helper.make_opsetid("", 17)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        run, feed = _ort_session(model.SerializeToString()).run, {"a": a, "b": a}
        fn = lambda: run(None, feed)
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
    """Peak memory of one repetition: tracemalloc for NumPy peers, ru_maxrss for the others."""
    if RUNNERS[peer].memory == "maxrss":
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


def _limit_xla_threads(n: int) -> str:
    """Start JAX's CPU client with a pool of ``n`` threads; returns what was done, in words.

    XLA has no option for the size of its CPU thread pool: it takes the number of CPUs
    the process may run on when the client starts. So narrow this thread's CPU
    affinity to ``n`` CPUs, start the client, and give every thread all CPUs back
    (the pool keeps its ``n`` threads, which the kernel may then place anywhere).
    """
    if not hasattr(os, "sched_setaffinity"):
        return "not limited (no sched_setaffinity here)"
    cpus = sorted(os.sched_getaffinity(0))
    if n >= len(cpus):
        return f"{len(cpus)} (all CPUs this process may use)"
    os.sched_setaffinity(0, cpus[:n])
    try:
        import jax
        jax.devices()                  # starts the CPU client, which sizes its pool now
    finally:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:            # a thread that has exited since the listing
                pass
    return f"{n} (XLA's pool, sized by the CPU affinity at start)"


def _start_peer(peer: str) -> dict:
    """Import the peer's library in this worker, with ``--threads``; returns its info."""
    threads = os.environ.get("RNNKIT_BENCH_THREADS")
    info = {"peer": peer, "numpy": np.__version__}
    if peer == "torch":
        import torch
        if threads:
            torch.set_num_threads(int(threads))
        info.update(torch=torch.__version__, threads=torch.get_num_threads())
    elif peer == "jax":
        how = _limit_xla_threads(int(threads)) if threads else "default (all CPUs)"
        import jax
        import jaxlib
        info.update(jax=jax.__version__, jaxlib=jaxlib.__version__, threads=how,
                    devices=[str(d) for d in jax.devices()])
        if not all(d.platform == "cpu" for d in jax.devices()):
            raise RuntimeError(f"jax: expected CPU devices only, got {info['devices']}")
    elif peer == "onnxruntime":
        import onnx  # the export needs it
        import onnxruntime
        info.update(onnxruntime=onnxruntime.__version__, onnx=onnx.__version__,
                    threads=int(threads) if threads else "default")
    else:
        import rnnkit
        from rnnkit import fast
        info.update(rnnkit=rnnkit.__version__, fast=fast.status())
    from threadpoolctl import threadpool_info
    # the BLAS (and its kernel: OpenBLAS picks one per CPU) and OpenMP pools loaded now
    info["pools"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                     for p in threadpool_info()]
    return info


# NumPy first, then rnnkit: as users' scripts do
WORKER_MAIN = "import numpy, sys; from rnnkit.bench.worker import serve; sys.exit(serve(sys.argv[1]))"


def serve(peer: str) -> int:
    """The worker loop: one JSON request per line on stdin, one JSON reply per line out."""
    import traceback
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr            # nothing but replies may reach the protocol pipe
    runners: dict[str, object] = {}
    try:
        ready = {"ok": True, "info": _start_peer(peer)}
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
        time.sleep(SETTLE_S)               # the previous peer's idle threads stop spinning
        gc.disable()
        try:
            for _ in range(WARM_CALLS):    # untimed: this case's memory is in place again
                fn()
            times = [_timed(fn) for _ in range(req["reps"])]
        finally:
            gc.enable()
        return {"times": times}
    raise ValueError(f"unknown op {op!r}")


# ---------------------------------------------------------------- the coordinator

class Worker:
    """A peer's process and its request/reply pipe; ``wait_ready`` reads its hello."""

    def __init__(self, peer: str, threads):
        self.peer = peer
        env = dict(os.environ)
        if peer == "rnnkit-numpy":
            env["RNNKIT_NO_COMPILE"] = "1"
        if peer == "jax":
            env["JAX_PLATFORMS"] = "cpu"   # a CPU benchmark: no accelerator plugin, no probing
        if threads:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                        "RNNKIT_BENCH_THREADS"):
                env[var] = str(threads)
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER_MAIN, peer],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, text=True, bufsize=1)
        self.ok, self.info, self.error = False, {}, "not started"

    def wait_ready(self) -> None:
        """Wait for the worker's hello: it imported its library (ok) or says why not (error)."""
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
