r"""The stacked recurrent layer: :class:`Recurrent` over the cells of :mod:`rnnkit.cells`.

It follows :class:`rnnkit.module.Module` like the layers of :mod:`rnnkit.layers.basic`:
``forward`` caches what ``backward`` needs, ``backward`` returns the input
gradient and *adds* the parameter gradients into ``grads``.

Recurrent     (L layers, D = 1 or 2 directions, cell maths in ``rnnkit.cells``)
    x⁽⁰⁾ = x,   x⁽ˡ⁾ = m⁽ˡ⁾ ⊙ [h⁽ˡ⁻¹'→⁾ ; h⁽ˡ⁻¹'←⁾]   (dropout mask m⁽ˡ⁾ for l ≥ 1, training only)
    h⁽ˡ'→⁾ = cell(x⁽ˡ⁾, h0[l·D])
    h⁽ˡ'←⁾ = P(cell(P(x⁽ˡ⁾), h0[l·D + 1]))
  where P reverses each sequence's valid part, P(a)[t, b] = a[len_b − 1 − t, b]
  for t < len_b, and leaves the padding in place (what a packed sequence does).
  P is a permutation and its own inverse, so backward applies P to the same
  places, from the top layer down:
    dx⁽ˡ⁾ = cell_dx→(dh⁽ˡ'→⁾) + P(cell_dx←(P(dh⁽ˡ'←⁾)))
    d[h⁽ˡ⁻¹'→⁾ ; h⁽ˡ⁻¹'←⁾] = m⁽ˡ⁾ ⊙ dx⁽ˡ⁾
  and h_n[l·D + d] / dh_n[l·D + d] are each direction's final state and its
  gradient. y is the top layer's [h→ ; h←] (zero past each sequence's length).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

from rnnkit import init as _init
from rnnkit import limits as _limits
from rnnkit._checks import (check_choice, check_dtype, check_flag, check_positive_int, check_prob,
                            check_seed, check_shape)
from rnnkit.cells import CELLS, GATES, variants
from rnnkit.cells._common import lengths_arg
from rnnkit.cells.registry import DEFAULT_NONLINEARITY, NONLINEARITY_CELLS, RECURRENT_CELLS
from rnnkit.fast._util import scratch, threads_for_call
from rnnkit.grad_mode import is_grad_enabled
from rnnkit.layers.basic import _check_input, _dropout_mask, _no_forward
from rnnkit.module import Module

CELL_NAMES = RECURRENT_CELLS
NONLINEARITIES = ("tanh", "relu")
_CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}     # stack_inf's cell argument


_PAIR_LABELS: dict = {}


def _pair_label(name: str, i: int) -> str:
    """'h0[0] (h)', 'dh_n[1] (c)', ...: the name of one element of an LSTM state pair in
    errors (made once per name: a generation step checks a pair at every call)."""
    label = _PAIR_LABELS.get((name, i))
    if label is None:
        label = _PAIR_LABELS[name, i] = f"{name}[{i}] ({'hc'[i]})"
    return label


class _KernelPlan(NamedTuple):
    """Recurrent's weights as the C loops read them (see Recurrent._kernel_weights)."""
    names: list            # parameter names, 4 per layer
    ids: tuple             # id() of each parameter (None for no bias) when checked
    weights: list          # per layer (W_ih, W_hh, b_ih, b_hh): holds the arrays
    flat: tuple            # the same, 4 per layer in one tuple (stack_inf's argument)


# -- Recurrent -------------------------------------------------------------------------
class Recurrent(Module):
    """A stacked, optionally bidirectional RNN/LSTM/GRU with PyTorch's interface and names.

    Args:
        cell: "rnn", "lstm", "gru", "indrnn", "mingru" or "minlstm".
        input_size, hidden_size, num_layers: I, H and the stack depth L.
        nonlinearity: "tanh" or "relu" (cells "rnn", default tanh, and "indrnn", default relu).
        bias: with bias_ih/bias_hh (PyTorch keeps both; only their sum matters).
        batch_first: x and y are (B, T, ·) instead of (T, B, ·); h0/h_n are not affected.
        dropout: inter-layer dropout probability in [0, 1), applied in training mode to
            the input of every layer but the first (not after the last), as PyTorch.
        bidirectional: add a reverse direction (D = 2); y concatenates [forward, reverse].
        dtype: float32 or float64; inputs must have it.
        seed: None or an int; the same seed gives the same weights and dropout masks.
        init: "default" | "xavier_orthogonal" | "irnn", see :mod:`rnnkit.init`.
        forget_bias: None or a number set into the LSTM forget-gate bias (bias_ih's f block).
        init_gain: scale of the orthogonal / identity recurrent weights.
        proj_size: LSTM only, P in [1, H): h = W_hr (o ⊙ tanh(c)) has P features, as
            torch.nn.LSTM(proj_size=P) (``weight_hr_l{k}`` (P, H); W_hh is (4H, P)).
        layer_norm: LSTM and GRU: layer-normalised W_ih x, W_hh h (and the LSTM's cell
            state), gains ``ln_*_weight`` and biases ``ln_*_bias`` (Ba et al. 2016).
        peephole: LSTM only: ``weight_ci``, ``weight_cf``, ``weight_co`` (H,).
        zoneout, recurrent_dropout: LSTM and GRU, probabilities in [0, 1): per step and
            unit the state keeps its previous value (Krueger et al. 2016); one dropout
            mask per sequence on the h that feeds W_hh (Gal & Ghahramani 2016). Both act
            in training mode only (as Dropout): in eval mode the layer is the plain cell.
        recurrent_max: IndRNN only: the bound M on |weight_hh| (None: unbounded).

    Cells: "rnn", "lstm", "gru" (PyTorch's), "indrnn", "mingru", "minlstm"
    (:mod:`rnnkit.cells.registry`). Where ``rnnkit.fast`` runs here, the plain cells,
    IndRNN, the LSTM with proj_size and/or layer_norm and the GRU with layer_norm run
    compiled, and so does the scan of minGRU and minLSTM; peepholes, zoneout and
    recurrent dropout in training run the NumPy cells of :mod:`rnnkit.cells` (the rule: :mod:`rnnkit.cells.variants`).

    Parameters are ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` with ``_reverse`` for the reverse direction, in PyTorch's shapes
    (G·H, I_k), (G·H, H), (G·H,), so ``load_state_dict`` takes a torch module's
    ``state_dict()`` converted to numpy.

    After ``forward``, ``caches[l][d]`` holds the cell cache of layer l, direction d
    (the reverse direction's in its own, reversed, time order) — except inside
    ``rnnkit.no_grad()``, where forward runs the cells' ``infer`` and keeps no
    caches (inference: less memory and time; no backward); after ``backward``,
    ``hidden_grads[l][d]`` holds the total ∂L/∂h_t (T, B, H) in the input's time order.

    Shapes (G = 1, 4, 3; D = 2 if bidirectional else 1):
        x (T, B, I) or (B, T, I) with batch_first;  lengths (B,) ints in [1, T]
        h0, h_n (L·D, B, H); for LSTM the pairs (h, c) of those
        y (T, B, D·H) or (B, T, D·H) with batch_first
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str | None = None, bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32, seed=None,
                 init: str = "default", forget_bias: float | None = None, init_gain: float = 1.0,
                 proj_size: int = 0, layer_norm: bool = False, peephole: bool = False,
                 zoneout: float = 0.0, recurrent_dropout: float = 0.0, recurrent_max: float | None = None):
        super().__init__()
        where = "Recurrent"
        self.cell = check_choice(cell, "cell", CELL_NAMES, where)
        where = self._where = f"Recurrent({cell})"
        self.input_size = check_positive_int(input_size, "input_size", where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        if nonlinearity is None:
            nonlinearity = DEFAULT_NONLINEARITY.get(cell, "tanh")
        self.nonlinearity = check_choice(nonlinearity, "nonlinearity", NONLINEARITIES, where)
        if cell not in NONLINEARITY_CELLS and nonlinearity != "tanh":
            raise ValueError(f"{where}: nonlinearity applies to cells {', '.join(map(repr, NONLINEARITY_CELLS))} "
                             f"only; {cell} has fixed gates, got nonlinearity={nonlinearity!r}")
        self.bias = check_flag(bias, "bias", where)
        self.batch_first = check_flag(batch_first, "batch_first", where)
        self.dropout = check_prob(dropout, "dropout", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dtype = check_dtype(dtype, where)
        _limits.check_parameters(
            _limits.recurrent_parameters(cell, self.input_size, self.hidden_size, self.num_layers,
                                         self.bidirectional, self.bias), self.dtype.itemsize,
            f"{where}: input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}")
        self.init = init
        self.variant = variants.check_options(cell, self.hidden_size, where, proj_size, layer_norm, peephole,
                                              zoneout, recurrent_dropout, recurrent_max)
        self.proj_size = self.variant.get("proj_size", 0)
        self.forget_bias, self.init_gain = _init.check_scheme(cell, init, nonlinearity, self.bias,
                                                              forget_bias, init_gain, where)
        # two independent streams, so dropout draws never shift the initial weights
        init_seq, dropout_seq = np.random.SeedSequence(check_seed(seed, where)).spawn(2)
        self._dropout_rng = np.random.default_rng(dropout_seq)
        params = _init.recurrent_params(cell, self.input_size, self.hidden_size, self.num_layers,
                                        self.bidirectional, self.bias, init, self.forget_bias,
                                        self.init_gain, nonlinearity, np.random.default_rng(init_seq),
                                        self.dtype, where, self.variant)
        self._param_keys = tuple(variants.layout(cell, 1, 1, self.bias, self.variant))
        for name, value in params.items():
            self.register(name, value)
        self._cell, self._kernels = self._pick_cell(numpy_only=True)    # chosen again at each forward
        self._kernel_plan = None      # the weights as the C loops read them: _kernel_weights
        self._quant = None            # int8 weights for inference: quantize()
        self._cache = None
        self.caches: list[list] = []
        self.hidden_grads: list[list] = []

    def __getstate__(self) -> dict:
        """For copy.deepcopy (and copy.copy): the chosen cell implementation, a module,
        by its name; the kernels' view of the weights is left behind (a copy has its
        own arrays and builds its own)."""
        state = self.__dict__.copy()
        state["_cell"] = self._cell.__name__
        state["_kernels"] = None
        state["_kernel_plan"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cell = importlib.import_module(state["_cell"])
        if self._cell.__name__.startswith("rnnkit.fast."):
            from rnnkit import fast

            self._kernels = fast.kernels()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    def constrain(self) -> None:
        """Project every IndRNN recurrent weight onto [−M, M], M = ``recurrent_max``, in
        place (u ← clip(u, −M, M)); a no-op for other cells or without a bound. Trainers
        call it after each optimizer step, so the stored weights stay inside the bound
        (:mod:`rnnkit.cells.indrnn`) and a weight at the bound keeps its gradient."""
        M = self.variant.get("recurrent_max")
        if self.cell != "indrnn" or M is None:
            return
        for name, p in self._params.items():
            if name.startswith("weight_hh_l"):
                np.clip(p, -M, M, out=p)

    def config(self) -> dict:
        """The constructor arguments (JSON-able), without the seed."""
        return {"cell": self.cell, "input_size": self.input_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "nonlinearity": self.nonlinearity, "bias": self.bias,
                "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional, "dtype": str(self.dtype), "init": self.init,
                "forget_bias": self.forget_bias, "init_gain": self.init_gain, **self.variant}

    def _cell_params(self, layer: int, direction: int) -> dict[str, np.ndarray]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return {k: self._params[k + suffix] for k in self._param_keys}

    def _pick_cell(self, numpy_only: bool = False):
        """``(module, kernels)``: the compiled module (``rnnkit.fast``) and its kernels where
        :func:`rnnkit.cells.variants.fast_module` names one and they can run here; else the
        NumPy reference (:func:`rnnkit.cells.variants.module_for`, or ``rnnkit.cells``):
        same contract and results. zoneout and recurrent dropout count in training only.
        ``kernels`` is None but for a compiled module."""
        reference = variants.module_for(self.cell, self.variant, self.training) or CELLS[self.cell]
        name = None if numpy_only else variants.fast_module(self.cell, self.variant, self.training)
        if name is None:
            return reference, None
        from rnnkit import fast

        module, k = fast.pick(name)
        if module is None or (name == "minrnn" and not hasattr(k, "min_fwd")):   # a build without the scan
            return reference, None
        return module, k

    def _run_cell(self, params, x, state, lengths, keep: bool):
        """One cell over one direction, on arguments this layer checked: the module's
        trusted ``_forward``/``_infer`` (no check again) where it has them, else its public
        ``forward``/``infer``. Returns (out, final, cache), cache None without ``keep``."""
        cell, k, kwargs = self._cell, self._kernels, self._cell_kwargs()
        if not hasattr(cell, "_forward"):
            if keep:
                return cell.forward(params, x, state, lengths, **kwargs)
            return (*cell.infer(params, x, state, lengths, **kwargs), None)
        args = (params, x, state, lengths) if k is None else (params, x, state, lengths, k)
        if keep:
            return cell._forward(*args, **kwargs)
        return (*cell._infer(*args, **kwargs), None)

    def _backprop_cell(self, params, cache, d_out, d_final):
        """The cell's BPTT on arguments this layer checked (see :meth:`_run_cell`):
        (dx, dh0, grads, dh)."""
        cell, k = self._cell, self._kernels
        if not hasattr(cell, "_backward"):
            return cell.backward(params, cache, d_out, d_final, return_dh=True)
        if k is None:
            return cell._backward(params, d_out, d_final, cache, True)
        return cell._backward(params, d_out, d_final, cache, True, k)

    def _cell_kwargs(self) -> dict:
        return variants.cell_kwargs(self.cell, self.nonlinearity, self.variant, self.training, self._dropout_rng)

    @property
    def output_size(self) -> int:
        """Features per direction of y and h_n: proj_size when there is a projection, else H."""
        return self.proj_size or self.hidden_size

    def _state_shape(self, B: int, part: int = 0) -> tuple:
        """The shape of h_n (part 0), or of the LSTM's c_n (part 1)."""
        return (self.num_layers * self.num_directions, B, self.hidden_size if part else self.output_size)

    def _check_states(self, s, name: str, B: int, finite: bool):
        """Check h0 (or dh_n): None, one (L·D, B, H) array, or for LSTM an (h, c) pair.

        Returns it checked, as arrays (:meth:`_per_layer` splits it). For LSTM an element
        of a dh_n pair may be None (that part has no gradient); an h0 pair needs both.
        """
        if s is None:
            return None
        where = self._where
        shape = self._state_shape(B)
        if self.cell != "lstm":
            if isinstance(s, (tuple, list)):
                raise TypeError(f"{where}: expected {name} to be one array of shape {shape}, "
                                f"got a {type(s).__name__} (only LSTM takes an (h, c) pair)")
            a = _check_input(s, name, self.dtype, where, ndim=3, dims="(L*D, B, H)", finite=finite)
            if a.shape != shape:
                check_shape(a, shape, f"{name} (num_layers*directions, B, H)", where)
            return a
        if not isinstance(s, (tuple, list)) or len(s) != 2:
            raise TypeError(f"{where}: expected {name} to be a pair (h, c) of arrays of shape {shape}, "
                            f"got {type(s).__name__}")
        pair = []
        for i, a in enumerate(s):
            label = _pair_label(name, i)
            shape = self._state_shape(B, i)
            if a is None:
                if finite:  # an initial state is given whole or not at all
                    raise TypeError(f"{where}: expected {label} to be an array of shape {shape}, got None")
            else:
                a = _check_input(a, label, self.dtype, where, ndim=3, dims="(L*D, B, H)", finite=finite)
                if a.shape != shape:
                    check_shape(a, shape, f"{label} (num_layers*directions, B, H)", where)
            pair.append(a)
        return tuple(pair)

    def _per_layer(self, s) -> list:
        """A checked state (:meth:`_check_states`) as L·D entries, one per layer and
        direction: (B, H) arrays, (h, c) pairs for LSTM, or None."""
        n = self.num_layers * self.num_directions
        if s is None:
            return [None] * n
        if self.cell != "lstm":
            return list(s)
        h, c = ([None] * n if a is None else list(a) for a in s)
        return [None if hi is None and ci is None else (hi, ci) for hi, ci in zip(h, c)]

    @staticmethod
    def _reverse_index(lengths, T: int, B: int):
        """P as a (T, B) gather index: within each sequence's valid part t -> len − 1 − t."""
        t = np.arange(T)[:, None]
        return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)

    @staticmethod
    def _reverse(a: np.ndarray, rev_idx) -> np.ndarray:
        """Apply P (its own inverse) to a time-major (T, B, ·) array."""
        if rev_idx is None:
            return a[::-1]
        return a[rev_idx, np.arange(a.shape[1])[None, :]]

    def _stack_states(self, finals, B: int):
        """The per-layer final states as h_n (L·D, B, H), or the (h_n, c_n) pair for LSTM."""
        shape = self._state_shape(B)
        if self.cell != "lstm":
            h_n = np.empty(shape, dtype=self.dtype)
            for i, f in enumerate(finals):
                h_n[i] = f
            return h_n
        h_n, c_n = np.empty(shape, dtype=self.dtype), np.empty(self._state_shape(B, 1), dtype=self.dtype)
        for i, (h, c) in enumerate(finals):
            h_n[i] = h
            c_n[i] = c
        return h_n, c_n

    def _kernel_weights(self):
        """The weights as the C loops read them, or None when one is not readable as it is.

        Returns (weights, flat): per layer (W_ih, W_hh, b_ih, b_hh), None for no bias, and
        the same 4 per layer in one tuple, as ``stack_inf`` takes them. Checked
        (dtype, shape, C order) once and kept while every parameter is the same array
        object: training and ``load_state_dict`` change their values in place. The plan holds the arrays (so no other object can take their
        ids) and is keyed by the ids, so a copy of the layer (``copy.deepcopy``: new
        arrays) builds its own.
        """
        P, plan = self._params, self._kernel_plan
        if plan is not None and tuple(map(id, map(P.get, plan.names))) == plan.ids:
            return plan.weights, plan.flat
        names = [f"{k}_l{layer}" for layer in range(self.num_layers)
                 for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        arrays = [P.get(n) for n in names]
        dt, GH, H = self.dtype, self.gates * self.hidden_size, self.hidden_size
        weights = [tuple(arrays[4 * layer:4 * layer + 4]) for layer in range(self.num_layers)]
        for layer, w in enumerate(weights):
            shapes = ((GH, self.input_size if layer == 0 else H), (GH, H), (GH,), (GH,))
            if not all(a is None or (isinstance(a, np.ndarray) and a.dtype == dt and a.shape == shape
                                     and a.flags.c_contiguous) for a, shape in zip(w, shapes)):
                return None
        self._kernel_plan = _KernelPlan(names, tuple(map(id, arrays)), weights, tuple(arrays))
        return weights, self._kernel_plan.flat

    def _infer_compiled(self, x, h0, lengths):
        """Inference through the compiled loops, the arguments checked once (by forward).

        The generation path: a T = 1 call pays for every check and conversion, so the
        cells' own (``run_infer``) are skipped — the weights are only checked to be
        what the kernels read (:meth:`_kernel_weights`). Returns (y, h_n), or None
        when this path does not apply (the NumPy cells, bidirectional, dropout in
        training, or weights replaced by arrays the kernels cannot read as they are).

        Shapes:
            x (T, B, I), h0 as from _check_states, lengths as from
            :func:`rnnkit.cells._common.lengths_arg` -> y (T, B, H), h_n (L, B, H) or the
            (h_n, c_n) pair
        """
        cell, k = self._cell, self._kernels    # this forward's implementation (_pick_cell)
        if (k is None or self.bidirectional or (self.training and self.dropout > 0.0)
                or not hasattr(cell, "run_infer")):
            return None
        plan = self._kernel_weights()
        if plan is None:
            return None
        T, B, _ = x.shape
        x = np.ascontiguousarray(x)
        lens = lengths                    # checked by forward: None when every length is T
        if T * B < 4 and lens is None:    # a generation step: the whole stack in one C call
            return self._step_compiled(k, x, h0, plan[1])
        inp, finals = x, []
        relu = int(self.nonlinearity == "relu")
        for (w_ih, w_hh, b_ih, b_hh), state in zip(plan[0], self._per_layer(h0)):
            if self.cell == "lstm":
                h, c = state if state is not None else (None, None)
                inp, final = cell.run_infer(k, inp, w_ih, w_hh, b_ih, b_hh, h, c, lens)
            elif self.cell == "gru":
                inp, final = cell.run_infer(k, inp, w_ih, w_hh, b_ih, b_hh, state, lens)
            else:
                inp, final = cell.run_infer(k, inp, w_ih, w_hh, b_ih, b_hh, state, lens, relu)
            finals.append(final)
        return inp, self._stack_states(finals, B)

    @threads_for_call(blas=False)          # no more loop threads than CPUs free
    def _step_compiled(self, k, x, h0, weights):
        """The whole stack in one C call (``stack_inf``) for T·B < 4: a generation step
        pays for each call into C and each array it allocates, so there is one call,
        h_n and c_n share one buffer and the loop's scratch is this thread's
        (:func:`rnnkit.fast._util.scratch`). Arguments as checked by forward (every
        length is T); weights: the flat tuple from :meth:`_kernel_weights`.

        Shapes:
            x (T, B, I), h0 (L, B, H), the (h0, c0) pair or None -> y (T, B, H), h_n like h0
        """
        T, B, I = x.shape
        L, H, G, dt = self.num_layers, self.hidden_size, self.gates, self.dtype
        lstm = self.cell == "lstm"
        states = np.empty((2 if lstm else 1, L, B, H), dtype=dt)
        if h0 is None:
            states.fill(0)
        elif lstm:
            states[0], states[1] = h0
        else:
            states[0] = h0
        y = np.empty((T, B, H), dtype=dt)
        k.stack_inf(_CELL_CODES[self.cell], int(self.nonlinearity == "relu"), L, T, B, H, I,
                    x, weights, states[0], states[1] if lstm else None, y,
                    scratch(dt, L * (G * H + H) + 2 * B * G * H + T * B * H + 2 * B * H))
        return y, ((states[0], states[1]) if lstm else states[0])

    def quantize(self, mode: str | None = "int8") -> "Recurrent":
        """Run inference with int8 weights (``mode`` "int8"; None: the float weights again).

        Snapshots the weights now (:mod:`rnnkit.layers.quantized`): forward then runs
        the int8 loops in any mode, keeping no caches, and backward is an error.
        Plain rnn/lstm/gru cells of float32. Returns the layer.
        """
        from rnnkit.layers.quantized import QuantizedRecurrent, check_quantize

        mode = check_quantize(mode, f"{self._where}.quantize")
        self._quant = None if mode is None else QuantizedRecurrent(self, mode)
        return self

    def forward(self, x: np.ndarray, h0=None, lengths=None):
        """Run the stack over whole sequences.

        x must have the layer's dtype (else TypeError) and be finite (NaN or inf is a
        ValueError). With ``lengths`` each sequence b is its first lengths[b] steps: its
        outputs past that are 0 and h_n holds its state at its own last step; the
        reverse direction starts at that last valid step.

        Shapes:
            x (T, B, I) [(B, T, I) with batch_first], h0 (L·D, B, H) or (h0, c0) for LSTM,
            lengths (B,) -> y (T, B, D·H) [(B, T, D·H)], h_n like h0
        """
        return self._forward(*self._check_inputs(x, h0, lengths))

    def _check_inputs(self, x, h0=None, lengths=None):
        """Every check of :meth:`forward`'s arguments, the only ones on its path (the
        cells' trusted functions do not check again): (x time-major (T, B, I), h0 as
        :meth:`_check_states` gives it, lengths as
        :func:`rnnkit.cells._common.lengths_arg` gives them: None when all are T)."""
        where = self._where
        dims = "(B, T, I)" if self.batch_first else "(T, B, I)"
        x = _check_input(x, "x", self.dtype, where, ndim=3, dims=dims)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{where}: expected x of shape {dims} with I = input_size = {self.input_size}, "
                             f"got {x.shape}")
        xt = x.swapaxes(0, 1) if self.batch_first else x          # (T, B, I)
        T, B = xt.shape[:2]
        if T < 1 or B < 1:
            raise ValueError(f"{where}: expected x with at least one time step and one sequence, got {x.shape}")
        lengths = lengths_arg(lengths, T, B, where)
        return xt, self._check_states(h0, "h0", B, finite=True), lengths

    def _forward(self, xt, h0, lengths):
        """:meth:`forward` on the arguments as :meth:`_check_inputs` returns them (a model
        that checked them itself calls this): nothing is checked again."""
        if self._quant is not None:       # int8 weights: inference only
            self.caches, self._cache = [], None
            y, h_n = self._quant.run(xt, h0, lengths)
            return (y.swapaxes(0, 1) if self.batch_first else y), h_n
        T, B = xt.shape[:2]
        rev_idx = None
        if self.bidirectional and lengths is not None:
            rev_idx = self._reverse_index(lengths, T, B)

        D = self.num_directions
        self._cell, self._kernels = self._pick_cell()   # once per call; backward uses the same
        keep = is_grad_enabled()          # under rnnkit.no_grad(): no caches (cell.infer)
        caches, masks, finals = [], [], []
        ran = None if keep else self._infer_compiled(xt, h0, lengths)
        if ran is not None:
            inp, h_n = ran
        else:
            inp, states = xt, self._per_layer(h0)
            for layer in range(self.num_layers):
                mask = None
                if layer > 0 and self.training and self.dropout > 0.0:
                    mask = _dropout_mask(self._dropout_rng, inp.shape, self.dropout, self.dtype)
                    inp = inp * mask
                masks.append(mask)
                outs, layer_caches = [], []
                for d in range(D):
                    xin = self._reverse(inp, rev_idx) if d else inp
                    out, final, cache = self._run_cell(self._cell_params(layer, d), xin,
                                                       states[layer * D + d], lengths, keep)
                    outs.append(self._reverse(out, rev_idx) if d else out)
                    finals.append(final)
                    layer_caches.append(cache)
                caches.append(layer_caches)
                inp = outs[0] if D == 1 else np.concatenate(outs, axis=2)   # (T, B, D*H)
            h_n = self._stack_states(finals, B)                          # (L*D, B, H)

        y = inp.swapaxes(0, 1) if self.batch_first else inp
        if keep:
            self.caches = caches
            self._cache = {"masks": masks, "rev_idx": rev_idx, "y_shape": y.shape, "B": B}
        else:                              # a backward now must not use an older forward's
            self.caches, self._cache = [], None
        return y, h_n

    def backward(self, dy, dh_n=None):
        """Backpropagate through time and through the stack; add parameter gradients into ``grads``.

        ``dy`` None means y is not used (e.g. only h_n feeds the loss); ``dh_n`` None means
        h_n is not used, and for LSTM either element of the pair may be None. Returns dh0
        with h0's structure: an array, or (dh0, dc0) for LSTM, also when h0 was None
        (the gradient with respect to the zero initial state).

        Shapes:
            dy like y, dh_n like h_n -> dx like x, dh0 (L·D, B, H) or (dh0, dc0)
        """
        where = self._where
        if self._quant is not None:
            raise RuntimeError(f"{where}.backward: the layer runs int8 weights for inference "
                               f"(quantize({self._quant.mode!r})); quantize(None) trains the float weights")
        if self._cache is None:
            raise _no_forward(where)
        cache = self._cache
        B = cache["B"]
        D, H, rev_idx = self.num_directions, self.output_size, cache["rev_idx"]
        if dy is None:
            d_out = None                   # the cells take None: y is not used
        else:
            dy = _check_input(dy, "dy", self.dtype, where, ndim=3, finite=False)
            check_shape(dy, cache["y_shape"], "dy (the shape of y)", where)
            d_out = dy.swapaxes(0, 1) if self.batch_first else dy      # (T, B, D*H)
        d_finals = self._per_layer(self._check_states(dh_n, "dh_n", B, finite=False))

        d_initial = [None] * (self.num_layers * D)
        hidden_grads = [[None] * D for _ in range(self.num_layers)]
        for layer in reversed(range(self.num_layers)):
            d_in = None
            for d in range(D):
                k = layer * D + d
                d_o = None if d_out is None else d_out[:, :, d * H:(d + 1) * H]   # (T, B, H)
                if d and d_o is not None:
                    d_o = self._reverse(d_o, rev_idx)
                dx, dh0, grads, dh = self._backprop_cell(self._cell_params(layer, d), self.caches[layer][d],
                                                         d_o, d_finals[k])
                if d:
                    dx, dh = self._reverse(dx, rev_idx), self._reverse(dh, rev_idx)
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                for key, g in grads.items():
                    self._grads[key + suffix] += g
                d_in = dx if d_in is None else d_in + dx
                d_initial[k] = dh0
                hidden_grads[layer][d] = dh
            mask = cache["masks"][layer]
            d_out = d_in if mask is None else d_in * mask             # through the dropout of layer's input
        self.hidden_grads = hidden_grads

        dx = d_out.swapaxes(0, 1) if self.batch_first else d_out
        if self.cell == "lstm":
            return dx, (np.stack([s[0] for s in d_initial]), np.stack([s[1] for s in d_initial]))
        return dx, np.stack(d_initial)
