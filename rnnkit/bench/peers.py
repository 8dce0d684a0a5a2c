"""The peers of ``rnnkit bench``: the shapes, and one runner per library that builds the
same weights and inputs from one seed and runs ``fwd``, ``fwdbwd`` and ``gen`` (see
:mod:`rnnkit.bench`)."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np

CELLS = ("lstm", "gru", "rnn")
MODES = ("fwd", "fwdbwd")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ALL_PEERS = ("rnnkit", "rnnkit.fast", "rnnkit-int8", "rnnkit-numpy", "torch", "jax", "onnxruntime")
DEFAULT_PEERS = ("rnnkit", "rnnkit.fast", "rnnkit-int8", "torch", "jax", "onnxruntime")
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


class _RnnkitInt8(_RnnkitLayer):
    """rk.Recurrent with int8 weights (``quantize("int8")``): inference only. Its outputs
    differ from the float peers' by the weights' rounding, so its check allows ``TOL``."""
    modes = ("fwd", "gen")
    TOL = 0.05

    def __init__(self, cell, s: Shape, seed):
        super().__init__(cell, s, seed)
        self.layer.quantize("int8")


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
           "rnnkit-int8": _RnnkitInt8,
           "torch": _Torch, "jax": _Jax, "onnxruntime": _OnnxRuntime}
