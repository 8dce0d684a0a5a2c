"""Benchmark rnnkit's recurrent layers against PyTorch, JAX and ONNX Runtime on the CPU.

    python benchmarks/bench.py [--quick] [--json out.json]     (or: rnnkit bench ...)

What is measured. For each cell (LSTM, GRU, RNN), shape and mode, float32:

    shape   T    B   I    H    layers
    tiny    200  1   1    32   1
    small   100  16  32   64   1
    medium  100  32  64   128  1
    charlm  100  64  65   256  1      (one-hot inputs, a character language model)
    large   50   64  256  512  1
    gen     500 single-step calls (T = 1), B = 1, I = 64, H = 256, 2 layers, state carried

modes ``fwd`` (forward only) and ``fwdbwd`` (forward, then the gradients of
L = Σ y ⊙ dy for a fixed random dy with respect to x and every weight); gen is
forward only (mode ``gen``).

Peers, each in its own worker process (so one's threads, caches and allocator do
not disturb another, and each can get its own environment):

    rnnkit        rk.Recurrent, the public layer, as shipped; fwd and gen under
                  rk.no_grad() (inference: no caches for backward)
    rnnkit.fast   the compiled cells of rnnkit.fast called directly (the kernel;
                  ``infer`` for fwd and gen)
    rnnkit-numpy  rk.Recurrent with RNNKIT_NO_COMPILE=1 (the NumPy reference path)
    torch         torch.nn.RNN/LSTM/GRU; fwd and gen under no_grad
    jax           the same equations in JAX under jax.jit: the input projection of
                  all steps is one matrix product, jax.lax.scan runs the recurrent
                  part; fwdbwd is forward and jax.vjp in one jitted program; gen
                  calls a jitted one-step function (every layer) once per step;
                  the weights are held transposed, (in, out) as Flax keeps them
    onnxruntime   the layer exported by rnnkit.export.export_onnx (one ONNX LSTM/
                  GRU/RNN node per layer) run by a raw onnxruntime.InferenceSession,
                  default graph optimisations; forward only, so its fwdbwd is
                  recorded as not applicable ("n/a"), not as a failure

The default peers are rnnkit, rnnkit.fast, torch, jax and onnxruntime; one whose
library does not import in its worker is skipped with the reason. JAX compiles and
ONNX Runtime optimises its program before any timing (the correctness check and
the warmup run it), never inside a timed repetition. Every timed JAX call waits for
its result (block_until_ready); gen waits at every step, as a generator that reads
each output before it chooses the next input must.

How. Every worker builds the same weights and inputs from one seed. Before any
timing, each peer's outputs (fwd, gen: y and h_n[, c_n]; fwdbwd: dx and every
weight gradient) are compared with torch's (or, without torch, with the first
peer's that runs the mode); a peer that disagrees is not timed and the run exits
with status 1. Timing runs in interleaved rounds — every round visits every case
and, within it, every peer in a rotated order — so slow drifts of the machine
(other processes, clock changes) fall on all peers alike; each timing call first
waits ``SETTLE_S`` idle, so the thread pools of the peer that ran before (they
spin for a while after their last call) are asleep and do not take its cores, and
runs the case ``WARM_CALLS`` times untimed, so what is timed is the steady state of
a loop that repeats one shape. A worker runs every case, and the first calls after
other cases' find their memory gone (a layer's caches and the next forward's
alternate between two buffers, so it takes two calls to map both again): on a
2-core VM, LSTM B=64 H=512 forward+backward took 180-380 ms in those calls and
160-170 after them. Each timing call repeats
the case enough times to last about ``--target`` seconds; the table reports the
median and minimum over all repetitions, the ratio of medians to torch ("vs torch",
< 1: faster than torch) and to the best target peer ("vs best"), the
matrix-product GFLOP/s achieved (2·rows·cols·inner for the input and recurrent
products; backward counts twice the forward's) against this machine's GEMM peak
(the best of a large float32 matmul in each peer's library), and peak memory:
tracemalloc's peak for the NumPy peers (what one repetition allocates), the
worker's maximum resident set size (ru_maxrss, its libraries included) for torch,
jax and onnxruntime, which allocate outside Python's view.

The targets. rnnkit should be no slower than torch and JAX at fwdbwd, and no
slower than the faster of torch and onnxruntime at fwd and gen. So a case's "best"
peer is the fastest of its mode's target peers that ran — torch and jax for
fwdbwd, torch and onnxruntime for fwd and gen — and ``ratios`` holds
``"{peer}/torch"``, ``"{peer}/jax"`` and ``"{peer}/best"`` (median over the best
peer's median; ``best_peer`` names it). A summary table follows the long one: one
row per cell, one column per shape and mode, rnnkit's ratio to the best target
peer and that peer's name (also ``summary`` in the JSON).

Threads. ``--threads N`` sets OMP/OpenBLAS/MKL threads in every worker,
torch.set_num_threads(N), ONNX Runtime's intra_op_num_threads, and the size of
XLA's CPU thread pool. XLA has no option for the latter (XLA_FLAGS'
``--xla_cpu_multi_thread_eigen=false`` leaves jaxlib 0.10's matrix products on
every core); it sizes the pool from the CPUs the process may run on when its
client starts, so the jax worker narrows its CPU affinity to N CPUs while the
client starts and then gives every thread all of them back. On a machine other
processes are busy on, wall-clock times of threaded code say more about the
neighbours than about the code: ``--threads 1 --clock cpu`` times every peer on
one thread by the CPU time it used, which stays steady.
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
ALL_PEERS = ("rnnkit", "rnnkit.fast", "rnnkit-numpy", "torch", "jax", "onnxruntime")
DEFAULT_PEERS = ("rnnkit", "rnnkit.fast", "torch", "jax", "onnxruntime")
# the peers rnnkit must not be slower than, per mode (see the module docstring)
TARGET_PEERS = {"fwd": ("torch", "onnxruntime"), "gen": ("torch", "onnxruntime"),
                "fwdbwd": ("torch", "jax")}
SHORT_NAMES = {"onnxruntime": "ort"}
WARM_CALLS = 2            # untimed calls before each timing call's repetitions
SETTLE_S = 0.1           # idle before each timing call: thread pools spin 10-20 ms after their work


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


def _recurrent(cell: str, s: Shape, params: dict):
    """An rk.Recurrent holding the bench weights."""
    import rnnkit as rk
    layer = rk.Recurrent(cell, s.I, s.H, num_layers=s.layers, dtype=np.float32, seed=0)
    for name, value in params.items():
        layer.params[name][...] = value
    return layer


class _RnnkitLayer:
    """rk.Recurrent, the layer users run."""
    modes = ("fwd", "fwdbwd", "gen")
    memory = "tracemalloc"

    def __init__(self, cell, s: Shape, seed):
        self.s, self.cell = s, cell
        params, self.xs, self.dy = _make_data(cell, s, seed)
        self.layer = _recurrent(cell, s, params)

    def fwd(self):
        import rnnkit as rk
        with rk.no_grad():                 # inference, as torch's under its no_grad
            return self.layer.forward(self.xs[0])

    def fwdbwd(self):
        self.layer.forward(self.xs[0])
        return self.layer.backward(self.dy)

    def gen(self):
        import rnnkit as rk
        h = None
        with rk.no_grad():
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
    modes = ("fwd", "fwdbwd", "gen")
    memory = "tracemalloc"

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

    def _infer(self, x, states=None):
        finals = []
        for layer, p in enumerate(self.params):
            x, final = self.impl.infer(p, x, None if states is None else states[layer])
            finals.append(final)
        return x, finals

    def fwd(self):
        return self._infer(self.xs[0])

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
            y, states = self._infer(self.xs[t], states)
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
    modes = ("fwd", "fwdbwd", "gen")
    memory = "maxrss"

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


def _jax_programs(cell: str):
    """The jitted JAX programs of one cell: (fwd, fwdbwd, step), PyTorch's equations.

    Per step, with xw = x W_ihᵀ + b_ih and hw = h W_hhᵀ + b_hh (gate blocks of H):

        RNN   h' = tanh(xw + hw)
        LSTM  [i f g o] = xw + hw;  c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')
        GRU   r = σ(xw_r + hw_r);  z = σ(xw_z + hw_z);  n = tanh(xw_n + r ⊙ hw_n)
              (b_hn inside r ⊙ (…));  h' = (1 − z) ⊙ n + z ⊙ h

    The input projection xw of all T steps is one matrix product outside the scan;
    jax.lax.scan runs only the recurrent part. ``params`` holds, per layer k,
    ``kernel_ih_l{k}`` = W_ihᵀ, ``kernel_hh_l{k}`` = W_hhᵀ, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (:func:`_jax_params`): the weights in Flax's (in, out) layout,
    because XLA's CPU compiler copies a transposed operand of a product into a
    fresh array on every call (for a generation step, most of its time).

    Shapes:
        fwd(params, x (T, B, I)) -> y (T, B, H), h_n (L, B, H)[, c_n (L, B, H)]
        fwdbwd(params, x, dy (T, B, H)) -> dx (T, B, I), {name: gradient} like params
        step(params, x (B, I), h (L, B, H), c (L, B, H) or None) -> y (B, H), h, c
    """
    import jax
    import jax.numpy as jnp
    lstm = cell == "lstm"

    def recur(xw, h, c, k_hh, b_hh):
        """One step given its input projection. Shapes: xw (B, G·H), h, c (B, H) -> h, c"""
        hw = h @ k_hh + b_hh                                                   # (B, G·H)
        if cell == "rnn":
            return jnp.tanh(xw + hw), None
        if lstm:
            i, f, g, o = jnp.split(xw + hw, 4, axis=-1)                         # (B, H) each
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            return jax.nn.sigmoid(o) * jnp.tanh(c), c
        xr, xz, xn = jnp.split(xw, 3, axis=-1)                                  # (B, H) each
        hr, hz, hn = jnp.split(hw, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h, c

    def layers(params):
        n = sum(k.startswith("kernel_ih_l") for k in params)
        return [tuple(params[f"{w}_l{k}"] for w in ("kernel_ih", "kernel_hh", "bias_ih", "bias_hh"))
                for k in range(n)]

    def forward(params, x):
        ws = layers(params)
        B, H = x.shape[1], ws[0][1].shape[0]
        hs, cs = [], []
        for k_ih, k_hh, b_ih, b_hh in ws:
            xw = x @ k_ih + b_ih                                                # (T, B, G·H)
            zero = jnp.zeros((B, H), x.dtype)

            def body(carry, xw_t, k_hh=k_hh, b_hh=b_hh):
                h, c = recur(xw_t, *carry, k_hh, b_hh)
                return (h, c), h

            (h, c), x = jax.lax.scan(body, (zero, zero if lstm else None), xw)  # x (T, B, H)
            hs.append(h)
            cs.append(c)
        if lstm:
            return x, jnp.stack(hs), jnp.stack(cs)
        return x, jnp.stack(hs)

    def forward_backward(params, x, dy):
        # L = Σ y ⊙ dy, so the vector-Jacobian product of y with dy is its gradient
        _, vjp = jax.vjp(lambda p, x: forward(p, x)[0], params, x)
        dparams, dx = vjp(dy)
        return dx, dparams

    def step(params, x, h, c):
        hs, cs = [], []
        for k, (k_ih, k_hh, b_ih, b_hh) in enumerate(layers(params)):
            x, c_k = recur(x @ k_ih + b_ih, h[k], c[k] if lstm else None, k_hh, b_hh)
            hs.append(x)
            cs.append(c_k)
        return x, jnp.stack(hs), jnp.stack(cs) if lstm else None

    return jax.jit(forward), jax.jit(forward_backward), jax.jit(step)


def _jax_params(params: dict) -> dict:
    """PyTorch's parameters in the layout of :func:`_jax_programs`: weight_* -> kernel_* = weightᵀ.

    The same function maps the programs' gradients back (kernel_* -> weight_*).

    Shapes:
        weight_ih_l{k} (G·H, I_k) <-> kernel_ih_l{k} (I_k, G·H); biases (G·H,) as they are
    """
    out = {}
    for name, value in params.items():
        for a, b in (("weight_", "kernel_"), ("kernel_", "weight_")):
            if name.startswith(a):
                name, value = b + name[len(a):], np.ascontiguousarray(np.asarray(value).T)
                break
        out[name] = value
    return out


class _Jax:
    """The cells in JAX (jax.lax.scan under jax.jit), the same weights."""
    modes = ("fwd", "fwdbwd", "gen")
    memory = "maxrss"

    def __init__(self, cell, s: Shape, seed):
        import jax
        self.jax, self.s, self.cell = jax, s, cell
        params, xs, dy = _make_data(cell, s, seed)
        self._fwd, self._fwdbwd, self._step = _jax_programs(cell)
        self.params = jax.device_put(_jax_params(params))
        self.x, self.dy = jax.device_put(xs[0]), jax.device_put(dy)
        self.steps = [jax.device_put(xs[t, 0]) for t in range(s.calls)]         # (B, I) each
        zero = jax.device_put(np.zeros((s.layers, s.B, s.H), np.float32))
        self.state0 = (zero, zero if cell == "lstm" else None)

    def fwd(self):
        return self.jax.block_until_ready(self._fwd(self.params, self.x))

    def fwdbwd(self):
        return self.jax.block_until_ready(self._fwdbwd(self.params, self.x, self.dy))

    def gen(self):
        h, c = self.state0
        for x in self.steps:
            y, h, c = self._step(self.params, x, h, c)
            y.block_until_ready()
        return (y[None], h) if c is None else (y[None], h, c)                  # y (1, B, H)

    def outputs(self, mode):
        if mode in ("fwd", "gen"):
            out = self.gen() if mode == "gen" else self.fwd()
            return _state_outputs(self.cell, out[0], out[1] if len(out) == 2 else out[1:])
        dx, grads = self.fwdbwd()
        out = {"dx": np.asarray(dx)}
        out.update({f"grad.{k}": np.asarray(v) for k, v in _jax_params(grads).items()})
        return out


class _OnnxRuntime:
    """rnnkit's ONNX export of the layer, run by a raw onnxruntime.InferenceSession."""
    modes = ("fwd", "gen")
    memory = "maxrss"

    def __init__(self, cell, s: Shape, seed):
        from rnnkit.export.onnx import export_onnx
        self.s, self.cell = s, cell
        params, xs, _ = _make_data(cell, s, seed)
        gen = s.calls > 0
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(_recurrent(cell, s, params), os.path.join(tmp, f"{cell}.onnx"),
                               initial_state=gen, lengths=False)
            self.session = _ort_session(path)
        names = [o.name for o in self.session.get_outputs()]
        want = ["y", "h_n", "c_n"] if cell == "lstm" else ["y", "h_n"]
        if names != want:
            raise RuntimeError(f"onnxruntime: expected the exported graph's outputs {want}, got {names}")
        self.feed = {"x": xs[0]}                                                # (T, B, I)
        self.steps = [xs[t] for t in range(s.calls)]                            # (1, B, I) each
        zero = np.zeros((s.layers, s.B, s.H), np.float32)
        self.state0 = {"h0": zero, "c0": zero} if cell == "lstm" else {"h0": zero}

    def fwd(self):
        return self.session.run(None, self.feed)

    def gen(self):
        state, run = self.state0, self.session.run
        for x in self.steps:
            out = run(None, {"x": x, **state})
            state = {"h0": out[1], "c0": out[2]} if len(out) == 3 else {"h0": out[1]}
        return out

    def outputs(self, mode):
        out = self.gen() if mode == "gen" else self.fwd()
        return _state_outputs(self.cell, out[0], out[1] if len(out) == 2 else out[1:])


def _ort_session(path_or_bytes):
    """An InferenceSession on the CPU, default optimisations, ``--threads`` intra-op threads."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    threads = os.environ.get("RNNKIT_BENCH_THREADS")
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(path_or_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def _state_outputs(cell, y, h):
    if cell == "lstm":
        return {"y": np.asarray(y), "h_n": np.asarray(h[0]), "c_n": np.asarray(h[1])}
    return {"y": np.asarray(y), "h_n": np.asarray(h)}


RUNNERS = {"rnnkit": _RnnkitLayer, "rnnkit-numpy": _RnnkitLayer, "rnnkit.fast": _RnnkitCells,
           "torch": _Torch, "jax": _Jax, "onnxruntime": _OnnxRuntime}


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
    return info


def _serve(peer: str) -> int:
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
        self.proc = subprocess.Popen([sys.executable, "-m", "rnnkit.bench", "--worker", peer],
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
                   help=f"comma-separated, from {','.join(ALL_PEERS)} (default "
                        f"{','.join(DEFAULT_PEERS)}); one that does not import is skipped")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved timing rounds (default 5, or 1 with --quick)")
    p.add_argument("--target", type=float, default=None,
                   help="seconds each timing call should last (default 0.2, or 0.005 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads of every peer: BLAS/OpenMP, torch.set_num_threads, ONNX Runtime's "
                        "intra-op threads, XLA's CPU pool (default: the libraries' own; 1 with --quick)")
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
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"bench: --threads must be >= 1 (leave it out for the libraries' own), "
                         f"got {args.threads}")

    # one thread in quick mode: a smoke test must not stall on threads that spin
    # while a busy machine has descheduled their partner
    threads = args.threads if args.threads is not None else (1 if args.quick else None)
    started = time.time()
    workers = {p: Worker(p, threads) for p in peers}     # they import their libraries at once
    try:
        for w in workers.values():
            w.wait_ready()
        return _run(args, workers, cells, shapes, modes, rounds, target, threads, started)
    finally:
        for w in workers.values():
            w.close()


def _run(args, workers, cells, shapes, modes, rounds, target, threads, started) -> int:
    live = [p for p, w in workers.items() if w.ok]
    skipped = {p: w.error for p, w in workers.items() if not w.ok}
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
            runs = [p for p in live if case["mode"] in RUNNERS[p].modes]
            # torch, else the overall reference, else the first peer that runs this mode
            case["reference"] = ref = ref_peer if ref_peer in runs else (runs[0] if runs else None)
            for p in live:
                if i == 0 or cases[i - 1]["key"] != key:
                    workers[p].ask(op="setup", key=key, cell=case["cell"],
                                   shape=asdict(case["shape"]), seed=args.seed)
                if p in runs:
                    path = os.path.join(tmp, f"{p}.npz")
                    workers[p].ask(op="check", key=key, mode=case["mode"], path=path)
            ref_out = _load(os.path.join(tmp, f"{ref}.npz")) if ref else None
            for p in live:
                if p not in runs:
                    case["peers"][p] = {"applicable": False,
                                        "why": f"{p} runs {', '.join(RUNNERS[p].modes)} only"}
                    continue
                err = compare(_load(os.path.join(tmp, f"{p}.npz")), ref_out)
                ok = err <= args.tol
                entry = {"applicable": True, "max_rel_err": err, "check_ok": ok, "times": []}
                if not ok:
                    failed.append(f"{case['cell']} {case['shape'].name} {case['mode']}: {p} "
                                  f"differs from {ref} by {err:.2e}")
                else:
                    w = workers[p].ask(op="warmup", key=key, mode=case["mode"])
                    entry["reps"] = max(1, min(200, int(target / max(w["seconds"], 1e-9))))
                    m = workers[p].ask(op="memory", key=key, mode=case["mode"])
                    entry["mem_mb"], entry["mem_how"] = m["mb"], m["how"]
                case["peers"][p] = entry

        for r in range(rounds):
            for case in cases:
                order = [p for p in live if case["peers"][p].get("check_ok")]
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
                   "reference": ref_peer, "tol": args.tol, "clock": args.clock, "dtype": "float32",
                   "target_peers": TARGET_PEERS},
        "skipped": skipped,
        "failed_checks": failed,
        "results": results,
        "summary": summarise_targets(results),
        "seconds": time.time() - started,
    }
    print(format_table(report))
    print()
    print(format_summary(report["summary"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 1 if failed else 0


def _load(path: str) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _summarise(case, peak) -> dict:
    """One case's numbers per peer, its best target peer and the ratios of medians to torch,
    jax and that peer (see the module docstring)."""
    s = case["shape"]
    mode = case["mode"]
    flops = matmul_flops(case["cell"], s, "fwdbwd" if mode == "fwdbwd" else "fwd")
    out = {"cell": case["cell"], "shape": s.name, "mode": mode,
           "dims": {"T": s.T, "B": s.B, "I": s.I, "H": s.H, "layers": s.layers, "calls": s.calls},
           "gflop": flops / 1e9, "reference": case["reference"], "peers": {}, "ratios": {},
           "best_peer": None}
    for p, e in case["peers"].items():
        if not e["applicable"]:
            out["peers"][p] = dict(e)
            continue
        d = {"applicable": True, "max_rel_err": e["max_rel_err"], "check_ok": e["check_ok"]}
        if e["times"]:
            med, best = statistics.median(e["times"]), min(e["times"])
            d.update(median_ms=med * 1e3, min_ms=best * 1e3, n=len(e["times"]),
                     gflops=flops / med / 1e9, pct_peak=100.0 * flops / med / 1e9 / peak,
                     mem_mb=e["mem_mb"], mem_how=e["mem_how"])
        out["peers"][p] = d
    ms = {p: d["median_ms"] for p, d in out["peers"].items() if "median_ms" in d}
    targets = [p for p in TARGET_PEERS[mode] if p in ms]
    best_peer = min(targets, key=ms.get) if targets else None
    out["best_peer"] = best_peer
    for p, t in ms.items():
        for other, name in (("torch", "torch"), ("jax", "jax"), (best_peer, "best")):
            if other in ms and p != other:
                out["ratios"][f"{p}/{name}"] = t / ms[other]
    return out


def summarise_targets(results, peers=("rnnkit", "rnnkit.fast", "rnnkit-numpy")) -> dict:
    """rnnkit's ratio to the best target peer: one row per cell, one column per shape and mode.

    The row peer is the first of ``peers`` with a ratio to the best peer in any case
    (rnnkit, the public layer, when it ran). Returns {"peer", "columns", "rows"} with
    rows[cell][column] = {"ratio", "best_peer"}, column "<shape> <mode>" ("gen" for gen).
    """
    peer = next((p for p in peers if any(f"{p}/best" in r["ratios"] for r in results)), None)
    columns, rows = [], {}
    for r in results:
        col = "gen" if r["mode"] == "gen" else f"{r['shape']} {r['mode']}"
        if col not in columns:
            columns.append(col)
        row = rows.setdefault(r["cell"], {})
        if peer and f"{peer}/best" in r["ratios"]:
            row[col] = {"ratio": r["ratios"][f"{peer}/best"], "best_peer": r["best_peer"]}
    return {"peer": peer, "columns": columns, "rows": rows}


def _ratio_text(v) -> str:
    """``0.83 ort`` from {"ratio": 0.83, "best_peer": "onnxruntime"}; "-" for None."""
    if v is None:
        return "-"
    return f"{v['ratio']:.2f} {SHORT_NAMES.get(v['best_peer'], v['best_peer'])}"


def format_summary(summary) -> str:
    """The summary as a table that fits a screen: ``0.83 ort`` = 0.83 × the time of ONNX Runtime."""
    if summary["peer"] is None:
        return "summary: no rnnkit peer was timed against a target peer (torch, jax, onnxruntime)"
    cols = summary["columns"]
    heads = [c.replace(" fwdbwd", " f+b") for c in cols]
    rows = {cell: [_ratio_text(row.get(c)) for c in cols] for cell, row in summary["rows"].items()}
    width = [max([len(h)] + [len(texts[j]) for texts in rows.values()]) for j, h in enumerate(heads)]
    lines = [(f"summary: {summary['peer']} median / the fastest target peer's (torch, jax for "
              f"fwdbwd; torch, ort for fwd, gen); < 1: rnnkit is faster"),
             f"{'cell':5}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, width))]
    lines.append("-" * len(lines[-1]))
    for cell, texts in rows.items():
        lines.append(f"{cell:5}  " + "  ".join(f"{t:>{w}}" for t, w in zip(texts, width)))
    return "\n".join(lines)


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
            f"{'vs torch':>8} {'vs best':>7} {'GFLOP/s':>8} {'%peak':>6} {'mem MB':>8} {'max err':>8}")
    lines += [head, "-" * len(head)]
    for r in report["results"]:
        for p, d in r["peers"].items():
            row = f"{r['cell']:5} {r['shape']:7} {r['mode']:6} {p:12}"
            if not d["applicable"]:
                lines.append(f"{row} {'n/a':>10}  ({d['why']})")
            elif "median_ms" in d:
                ratio = r["ratios"].get(f"{p}/torch")
                vs_best = "best" if p == r["best_peer"] else r["ratios"].get(f"{p}/best")
                vs_best = f"{vs_best:.2f}" if isinstance(vs_best, float) else vs_best or ""
                mem = f"{d['mem_mb']:.2f}" + ("r" if d["mem_how"] == "maxrss" else "")
                lines.append(
                    f"{row} {d['median_ms']:10.3f} {d['min_ms']:10.3f} "
                    f"{'' if ratio is None else f'{ratio:.2f}':>8} {vs_best:>7} "
                    f"{d['gflops']:8.2f} {d['pct_peak']:6.1f} {mem:>8} {d['max_rel_err']:8.1e}")
            else:
                lines.append(f"{row} {'CHECK FAILED':>10} err {d['max_rel_err']:.2e} "
                             f"vs {r['reference']}")
    lines.append("vs torch: median time / torch's median (< 1: faster than torch). vs best: median / "
                 "the fastest target peer's,\n'best' marks it (torch, jax for fwdbwd; torch, "
                 "onnxruntime for fwd, gen). mem: tracemalloc peak of one run;\n'r': the worker's "
                 "max RSS (torch, jax, onnxruntime), its libraries included.")
    for f in report["failed_checks"]:
        lines.append(f"FAILED: {f}")
    lines.append(f"({report['seconds']:.0f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
