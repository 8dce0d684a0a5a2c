r"""Int8 recurrent weights for inference: :meth:`Recurrent.quantize` and :func:`quantize_model`.

A generation step reads every weight of the stack from memory, so smaller
weights make a faster step. Quantizing keeps, for each weight matrix W (N, K) of
every layer and direction, int8 values and one float32 scale per output channel
(per row n, symmetric):

    s_w[n] = max_k |W[n, k]| / 127,     Q[n, k] = rint(W[n, k] / s_w[n]) ∈ [−127, 127]

At every step each input row v (x_t of the layer, and h_{t−1}: each its own
scale) is quantized to int16 with q_max(K) = min(32767, ⌊(2³¹ − 1) / (127 K)⌋)
(no int32 sum can overflow):

    s_v = max_k |v_k| / q_max,          q_k = rint(v_k · (q_max / max_k |v_k|))

and a product is exact integer arithmetic scaled once per output, in float32:

    (v Wᵀ + b)[n] ≈ float(Σ_k q_k Q[n, k]) · (s_w[n] · s_v) + b[n]

The cell equations are then the float ones (:mod:`rnnkit.cells`). The int8
weights carry the error (about 1/254 of a row's largest weight); the inputs keep
15 bits. The biases, the embedding and the output layer stay float32.

Where :mod:`rnnkit.fast` runs, the loops are C (``_quant.c``: vpmaddwd on AVX2
and AVX-512, a plain loop elsewhere); :func:`qmatvec_numpy` and the NumPy loop
here are the reference, and give the products bit for bit (float32 sums of
exact integers, in the same order of operations).

A quantized layer is for inference: its forward runs the int8 loops whatever
the grad mode (no dropout, no caches), and its backward is an error. It
quantizes the weights it holds when ``quantize`` is called; after changing them
(training, ``load_state_dict``) call it again.
"""

from __future__ import annotations

import numpy as np

from rnnkit import fast
from rnnkit.fast._util import threads_for_call

MODES = ("int8",)
QALIGN = 8                      # the int8 columns are padded to a multiple of this (the C loops' RK_QALIGN)
PANEL = 16                      # output channels per panel of the packed weights
_CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}
F32 = np.float32


def check_quantize(value, where: str):
    """None (float weights) or one of :data:`MODES`; anything else is a ValueError naming it."""
    if value is None or (isinstance(value, str) and value in MODES):
        return value
    raise ValueError(f"{where}: quantize must be None (float32 weights) or one of "
                     f"{', '.join(map(repr, MODES))}, got {value!r}")


def padded(K: int, to: int = QALIGN) -> int:
    return -(-K // to) * to


def quantize_rows(w: np.ndarray):
    """Per-row symmetric int8 weights, packed as the C loops read them (:func:`pack`).

    Shapes: w (N, K) -> packed int8 (⌈N/16⌉, padded(K)/2, 16, 2), s float32 (N,)
    """
    w = np.asarray(w, dtype=np.float64)
    s = (np.abs(w).max(axis=1, initial=0.0) / 127.0).astype(F32)
    safe = np.where(s > 0, s, 1).astype(np.float64)
    return pack(np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)), s


def pack(Q: np.ndarray) -> np.ndarray:
    """Q (N, K) int8 in panels of 16 output channels, each pair of columns side by side:
    packed[p, j, r] = Q[16p + r, 2j:2j + 2], zeros past N and K (``_quant.c``, rq_product).

    Shapes: Q (N, K) -> (⌈N/16⌉, padded(K)/2, 16, 2)
    """
    N, K = Q.shape
    Np, Kp = padded(N, PANEL), padded(K)
    full = np.zeros((Np, Kp), dtype=np.int8)
    full[:N, :K] = Q
    return np.ascontiguousarray(full.reshape(Np // PANEL, PANEL, Kp // 2, 2).transpose(0, 2, 1, 3))


def unpack(packed: np.ndarray, N: int, K: int) -> np.ndarray:
    """:func:`pack`'s inverse. Shapes: packed (⌈N/16⌉, padded(K)/2, 16, 2) -> Q (N, K) int8"""
    P, J = packed.shape[:2]
    return packed.transpose(0, 2, 1, 3).reshape(P * PANEL, 2 * J)[:N, :K]


def qmax(K: int) -> int:
    """The largest |q| of an int16 input row of depth K (see the module docstring)."""
    return int(max(1, min(32767, (2 ** 31 - 1) // (127 * max(K, 1)))))


def quantize_inputs(v: np.ndarray):
    """Each row of v as int16 values (held in float64, exact) and its float32 scale.

    Shapes: v (M, K) float32 -> q (M, K) float64, s (M,) float32
    """
    m = np.abs(v).max(axis=1)                                       # (M,) float32, exact
    top = F32(qmax(v.shape[1]))
    inv = top / np.where(m > 0, m, F32(1))                          # float32, as the C loop
    q = np.rint(v * inv[:, None]).astype(np.float64)                # zeros where m == 0
    return q, m / top


def qmatvec_numpy(x: np.ndarray, Q: np.ndarray, s: np.ndarray, bias=None, q64=None) -> np.ndarray:
    """x Wᵀ + bias through the int8 weights, the reference of the C ``qmatvec``.

    Shapes: x (M, K) float32, Q packed (:func:`quantize_rows`), s (N,), bias (N,) or None -> (M, N)
    """
    K = x.shape[1]
    q, sx = quantize_inputs(x)
    W = unpack(Q, s.shape[0], K).astype(np.float64) if q64 is None else q64
    acc = (q @ W.T).astype(F32)                     # integers below 2^31: exact in float64
    y = acc * (s[None, :] * sx[:, None])
    return y if bias is None else y + bias


def qmatvec(x: np.ndarray, Q: np.ndarray, s: np.ndarray, bias=None) -> np.ndarray:
    """:func:`qmatvec_numpy` by the C loop where :mod:`rnnkit.fast` runs (the same numbers).

    Shapes: x (M, K) float32, Q packed (:func:`quantize_rows`), s (N,), bias (N,) or None -> (M, N)
    """
    k = _kernels()
    if k is None:
        return qmatvec_numpy(x, Q, s, bias)
    x = np.ascontiguousarray(x, dtype=F32)
    M, K = x.shape
    y = np.empty((M, s.shape[0]), dtype=F32)
    k.qmatvec(M, s.shape[0], K, x, Q, s, bias, y)
    return y


def _kernels():
    """rnnkit.fast's module when it runs here and has the int8 loops, else None."""
    k = fast.kernels()
    return k if k is not None and hasattr(k, "qstack_inf") else None


@threads_for_call(blas=False)
def _qstack(k, *args) -> None:
    """``k.qstack_inf(*args)`` on the threads the machine has free (its channels split
    among them; :mod:`rnnkit.fast._quant`)."""
    k.qstack_inf(*args)


def _sigmoid(v):
    return F32(0.5) * np.tanh(F32(0.5) * v) + F32(0.5)


class _QLayer:
    """One layer and direction: int8 W_ih and W_hh, their scales, the float biases."""

    def __init__(self, w_ih, w_hh, b_ih, b_hh):
        self.q_ih, self.s_ih = quantize_rows(w_ih)
        self.q_hh, self.s_hh = quantize_rows(w_hh)
        self.b_ih = None if b_ih is None else np.ascontiguousarray(b_ih, dtype=F32)
        self.b_hh = None if b_hh is None else np.ascontiguousarray(b_hh, dtype=F32)
        self.I, self.H = w_ih.shape[1], w_hh.shape[1]
        self._q64 = None

    def flat(self) -> tuple:
        return (self.q_ih, self.s_ih, self.b_ih, self.q_hh, self.s_hh, self.b_hh)

    def q64(self):
        """The int8 weights as float64 for the NumPy loop (made once, when it first runs)."""
        if self._q64 is None:
            N = self.s_ih.shape[0]
            self._q64 = (unpack(self.q_ih, N, self.I).astype(np.float64),
                         unpack(self.q_hh, N, self.H).astype(np.float64))
        return self._q64


def _layer_numpy(cell: str, relu: bool, w: _QLayer, x, h, c, lens):
    """One layer over T steps by NumPy, the reference of ``rq_layer`` in _quant.c. h and c
    (B, H) are updated in place. Shapes: x (T, B, I) -> y (T, B, H)"""
    T, B, _ = x.shape
    H = w.H
    q_ih, q_hh = w.q64()
    y = np.empty((T, B, H), dtype=F32)
    for t in range(T):
        a = qmatvec_numpy(x[t], w.q_ih, w.s_ih, w.b_ih, q_ih)                  # (B, G·H)
        u = qmatvec_numpy(h, w.q_hh, w.s_hh, w.b_hh, q_hh)
        c_new = None
        if cell == "lstm":
            z = a + u
            i, f, o = (_sigmoid(z[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
            c_new = f * c + i * np.tanh(z[:, 2 * H:3 * H])
            h_new = o * np.tanh(c_new)
        elif cell == "gru":
            r = _sigmoid(a[:, :H] + u[:, :H])
            zg = _sigmoid(a[:, H:2 * H] + u[:, H:2 * H])
            n = np.tanh(a[:, 2 * H:] + r * u[:, 2 * H:])
            h_new = n + zg * (h - n)
        else:
            v = a + u
            h_new = np.maximum(v, F32(0)) if relu else np.tanh(v)
        inside = np.ones((B, 1), bool) if lens is None else (t < lens)[:, None]
        h[...] = np.where(inside, h_new, h)
        if c_new is not None:
            c[...] = np.where(inside, c_new, c)
        y[t] = np.where(inside, h_new, F32(0))
    return y


class QuantizedRecurrent:
    """The int8 weights of a :class:`~rnnkit.layers.Recurrent` and its inference loop."""

    def __init__(self, layer, mode: str = "int8"):
        where = f"{layer._where}.quantize"
        if layer.cell not in _CELL_CODES or layer.variant:
            raise ValueError(f"{where}: int8 weights are for the plain rnn, lstm and gru cells, got "
                             f"{layer.cell}" + (f" with {', '.join(sorted(layer.variant))}" if layer.variant else ""))
        if layer.dtype != np.float32:
            raise ValueError(f"{where}: int8 weights are for float32 layers, got dtype {layer.dtype}")
        self.mode, self.cell = mode, layer.cell
        self.relu = layer.nonlinearity == "relu"
        self.L, self.D, self.H = layer.num_layers, layer.num_directions, layer.hidden_size
        P = layer.params
        self.layers = []                         # [layer][direction]
        for l in range(self.L):
            row = []
            for d in range(self.D):
                sfx = f"_l{l}" + ("_reverse" if d else "")
                row.append(_QLayer(P[f"weight_ih{sfx}"], P[f"weight_hh{sfx}"], P.get(f"bias_ih{sfx}"),
                                   P.get(f"bias_hh{sfx}")))
            self.layers.append(row)
        self.flat = tuple(v for row in self.layers for v in row[0].flat()) if self.D == 1 else None
        self._reverse = layer._reverse
        self._reverse_index = layer._reverse_index

    def nbytes(self) -> int:
        """Bytes of the int8 weights and their scales (what a step reads, less the biases)."""
        return sum(w.q_ih.nbytes + w.q_hh.nbytes + w.s_ih.nbytes + w.s_hh.nbytes
                   for row in self.layers for w in row)

    def _states(self, h0, B: int):
        """h (L·D, B, H) and c (or None) as fresh float32 arrays the loops update in place."""
        lstm = self.cell == "lstm"
        if h0 is not None:          # checked float32 arrays of the right shapes: C-ordered copies
            if lstm:
                return np.array(h0[0], order="C"), np.array(h0[1], order="C")
            return np.array(h0, order="C"), None
        states = np.zeros((2 if lstm else 1, self.L * self.D, B, self.H), dtype=F32)
        return states[0], (states[1] if lstm else None)

    def run(self, x, h0, lengths, numpy: bool = False):
        """The stack over x, on arguments :meth:`Recurrent._check_inputs` checked.

        Shapes:
            x (T, B, I), h0 (L·D, B, H), the (h0, c0) pair or None, lengths (B,) int64 or None
            -> y (T, B, D·H), h_n like h0
        """
        T, B, _ = x.shape
        h, c = self._states(h0, B)
        k = None if numpy else _kernels()
        x = np.ascontiguousarray(x, dtype=F32)
        if self.D == 1 and k is not None:         # the whole stack in one C call
            y = np.empty((T, B, self.H), dtype=F32)
            _qstack(k, _CELL_CODES[self.cell], int(self.relu), self.L, T, B, self.H, x.shape[2],
                    lengths, x, self.flat, h, c, y)
        else:
            rev_idx = None if self.D == 1 or lengths is None else self._reverse_index(lengths, T, B)
            inp = x
            for l, row in enumerate(self.layers):
                outs = []
                for d, w in enumerate(row):
                    i = l * self.D + d
                    xin = np.ascontiguousarray(self._reverse(inp, rev_idx)) if d else inp
                    out = self._one(k, w, xin, h[i], None if c is None else c[i], lengths)
                    outs.append(self._reverse(out, rev_idx) if d else out)
                inp = outs[0] if self.D == 1 else np.ascontiguousarray(np.concatenate(outs, axis=2))
            y = inp
        return y, ((h, c) if c is not None else h)

    def _one(self, k, w: _QLayer, x, h, c, lengths):
        """One layer and direction: h and c (B, H) updated in place. Shapes: x (T, B, I) -> (T, B, H)"""
        if k is None:
            return _layer_numpy(self.cell, self.relu, w, x, h, c, lengths)
        T, B, I = x.shape
        y = np.empty((T, B, self.H), dtype=F32)
        k.qstack_inf(_CELL_CODES[self.cell], int(self.relu), 1, T, B, self.H, I, lengths, x, w.flat(), h, c, y)
        return y


def quantize_model(model, mode):
    """Quantize every :class:`~rnnkit.layers.Recurrent` inside ``model`` (a Module) to
    ``mode`` ("int8"; None: back to float weights); returns how many layers it quantized."""
    from rnnkit.layers.recurrent import Recurrent

    mode = check_quantize(mode, f"{type(model).__name__}.quantize")
    count, stack = 0, [model]
    while stack:
        m = stack.pop()
        if isinstance(m, Recurrent):
            m.quantize(mode)
            count += 1
        stack.extend(m._children.values())
    return count
