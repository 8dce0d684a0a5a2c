r"""Export to ONNX and run the exported graph with ONNX Runtime.

:func:`export_onnx` writes an :class:`~rnnkit.layers.Recurrent` layer, a
:class:`~rnnkit.models.SequenceTagger`, or a :class:`~rnnkit.models.SequenceClassifier`
/ :class:`~rnnkit.models.SequenceRegressor` with ``pooling="last"`` as a graph of
standard ONNX operators (opset 14 or later): one ``RNN``/``LSTM``/``GRU`` node per
layer, ``Gather`` for an embedding and ``MatMul`` + ``Add`` for the Linear head.
:class:`OnnxRunner` (and :func:`run_onnx`) load it with ONNX Runtime and return
what rnnkit's own forward returns. ``onnx`` and ``onnxruntime`` are imported only
inside these functions (``pip install "rnnkit[onnx]"``).

The mapping from rnnkit's (PyTorch's) parameters to the ONNX operators
-------------------------------------------------------------------------
ONNX computes the same cells (ONNX operator docs, opset 14)::

    RNN   h_t = φ(X_t Wᵀ + H_{t-1} Rᵀ + Wb + Rb)
    LSTM  i = σ(X_t W_iᵀ + H_{t-1} R_iᵀ + Wb_i + Rb_i)   (o, f likewise; c̃ with tanh)
          C_t = f ⊙ C_{t-1} + i ⊙ c̃,   H_t = o ⊙ tanh(C_t)
    GRU   z = σ(X_t W_zᵀ + H_{t-1} R_zᵀ + Wb_z + Rb_z),   r likewise
          h̃ = tanh(X_t W_hᵀ + r ⊙ (H_{t-1} R_hᵀ + Rb_h) + Wb_h)   (linear_before_reset=1)
          H_t = (1 − z) ⊙ h̃ + z ⊙ H_{t-1}

so W = weight_ih, R = weight_hh, Wb = bias_ih, Rb = bias_hh, with the gate blocks
(each H rows) reordered, because ONNX stacks them in another order:

    LSTM  PyTorch [i f g o]  ->  ONNX [i o f c]   (PyTorch block indices 0, 3, 1, 2)
    GRU   PyTorch [r z n]    ->  ONNX [z r h]     (PyTorch block indices 1, 0, 2)

``linear_before_reset=1`` puts the GRU's b_hn inside r ⊙ (…), where PyTorch has it
(the ONNX default, 0, would compute r ⊙ H_{t-1} first and then multiply by R_h).
The bias input is B = [Wb ; Rb] (2·G·H values per direction). Weights carry a
leading direction axis: W (D, G·H, I), R (D, G·H, H), B (D, 2·G·H), forward first.

An ONNX recurrent node returns Y (T, D, B, H) and Y_h (D, B, H) (and Y_c for
LSTM). A stack of L layers is L chained nodes; the next layer's input is Y with
the direction axis moved next to the hidden one, (T, B, D, H) -> (T, B, D·H),
which is rnnkit's y = [h→ ; h←]. Layer l takes the initial states
h0[l·D : (l+1)·D]; the final states of all layers are concatenated into
h_n (L·D, B, H), PyTorch's layout. ``sequence_lens`` gives ragged batches the
packed-sequence semantics rnnkit uses: outputs past a sequence's length are zero,
Y_h is the state at its own last step and the reverse direction starts there.

Variants: LSTM peepholes are the P input [w_ci w_co w_cf]; zoneout and recurrent dropout
are training-only (the graph is the eval-mode cell). proj_size, layer_norm, IndRNN, minGRU
and minLSTM have no ONNX operator: exporting them is a ValueError that says so.

Pooling "last" of a many-to-one model is [h→ at the last valid step ; h← at t = 1],
exactly the top layer's Y_h (D, B, H) laid out as (B, D·H), so it needs no gather.

What the graph takes and gives (``B`` and ``T`` are symbolic; ``DH`` = D·H)::

    Recurrent            x (T, B, I) [(B, T, I) batch_first], h0 (L·D, B, H), c0 (LSTM),
                         lengths int64 (B,)  ->  y (T, B, DH) [(B, T, DH)], h_n, c_n (LSTM)
    SequenceTagger       x int64 (T, B) ids or (T, B, F), h0, c0, lengths
                         ->  logits (T, B, C) or prediction (T, B, O[, Q]), h_n, c_n
                         (a bidirectional tagger carries no state: no h0/c0, h_n/c_n)
    SequenceClassifier   x, lengths  ->  logits (B, C)
    SequenceRegressor    x, lengths  ->  prediction (B, O[, Q])

The initial-state and lengths inputs can be left out at export
(``initial_state=False`` / ``lengths=False``): the graph then starts from zeros
and reads every sequence whole. ONNX Runtime's CPU kernels for RNN/LSTM/GRU are
float32 only, so the graph is float32 by default (``dtype="float64"`` keeps double
weights for runtimes that have double kernels). Dropout is not part of the graph:
an exported model is the model in eval mode.
"""

from __future__ import annotations

import json
import os

import numpy as np

from rnnkit import io as rkio
from rnnkit._checks import check_choice, check_flag, check_lengths, check_positive_int
from rnnkit._version import __version__
from rnnkit.cells.variants import onnx_unsupported
from rnnkit.errors import RnnkitError
from rnnkit.layers import Recurrent
from rnnkit.models import SequenceClassifier, SequenceRegressor, SequenceTagger

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "OnnxRunner", "export_onnx", "run_onnx"]

DEFAULT_OPSET = 17
MIN_OPSET = 14
META_KEY = "rnnkit"
FORMAT = "rnnkit-onnx"
FORMAT_VERSION = 1
ONNX_OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# ONNX's gate order written as PyTorch block indices (see the module docstring)
GATE_ORDER = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}
DTYPES = ("float32", "float64")
_INSTALL = 'pip install "rnnkit[onnx]"'


def _import_onnx(where: str):
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401  (submodules used below)
    except ImportError as exc:
        raise RnnkitError(f"{where}: exporting to ONNX needs the onnx package, which is not installed; "
                          f"install it with: {_INSTALL}") from exc
    return onnx


def _import_ort(where: str):
    try:
        import onnxruntime
    except ImportError as exc:
        raise RnnkitError(f"{where}: running an ONNX model needs the onnxruntime package, which is not "
                          f"installed; install it with: {_INSTALL}") from exc
    return onnxruntime


def _permute_gates(a: np.ndarray, cell: str, H: int) -> np.ndarray:
    """Reorder the G blocks of H rows from PyTorch's gate order to ONNX's.

    Shapes:
        a (G·H, K) or (G·H,) -> the same shape
    """
    blocks = a.reshape((len(GATE_ORDER[cell]), H) + a.shape[1:])     # (G, H[, K])
    return blocks[list(GATE_ORDER[cell])].reshape(a.shape)


# -- graph building ------------------------------------------------------------------------

class _Graph:
    """Collects nodes, initializers and the graph's inputs and outputs."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.fresh(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list, n_out: int = 1, outputs=None, **attrs) -> list:
        """Add one node; returns its output names (fresh ones unless given, "" = not wanted)."""
        if outputs is None:
            outputs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, name=self.fresh(f"{op}_node"),
                                                     **attrs))
        return outputs

    def add_input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, name: str, source: str, elem_type: int, shape: list) -> None:
        """Expose ``source`` under the public ``name`` (an Identity node names it)."""
        self.node("Identity", [source], outputs=[name])
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, shape))


def _emit_recurrent(g: _Graph, rnn: Recurrent, x: str, h0: str, c0: str, lens: str, dtype,
                    need_y: bool = True, need_states: bool = True):
    """Add the L chained nodes of ``rnn``; returns (y, h_n, c_n, top_h).

    y is "" unless ``need_y``; h_n and c_n ("" for non-LSTM) are the concatenated
    final states unless ``need_states``; top_h is the top layer's Y_h.

    Shapes:
        x (T, B, I), h0/c0 (L·D, B, H) or "", lens int32 (B,) or ""
        -> y (T, B, D·H), h_n/c_n (L·D, B, H), top_h (D, B, H)
    """
    cell, H, L, D = rnn.cell, rnn.hidden_size, rnn.num_layers, rnn.num_directions
    op, lstm = ONNX_OPS[cell], cell == "lstm"
    suffixes = ("", "_reverse")[:D]
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if cell == "rnn":
        attrs["activations"] = ["Relu" if rnn.nonlinearity == "relu" else "Tanh"] * D
    if cell == "gru":
        attrs["linear_before_reset"] = 1
    p = rnn.params
    inp, hs, cs = x, [], []
    for layer in range(L):
        keys = [f"_l{layer}{s}" for s in suffixes]
        W = np.stack([_permute_gates(p["weight_ih" + k], cell, H) for k in keys]).astype(dtype)  # (D, GH, I_l)
        R = np.stack([_permute_gates(p["weight_hh" + k], cell, H) for k in keys]).astype(dtype)  # (D, GH, H)
        ins = [inp, g.const(f"W_l{layer}", W), g.const(f"R_l{layer}", R)]
        if rnn.bias:
            Bias = np.stack([np.concatenate([_permute_gates(p["bias_ih" + k], cell, H),
                                             _permute_gates(p["bias_hh" + k], cell, H)]) for k in keys])
            ins.append(g.const(f"B_l{layer}", Bias.astype(dtype)))                              # (D, 2GH)
        else:
            ins.append("")
        ins.append(lens)
        for s0 in ((h0, c0) if lstm else (h0,)):
            if s0 and L > 1:
                # this layer's states: rows l·D .. (l+1)·D of the (L·D, B, H) input
                s0 = g.node("Slice", [s0, g.const("start", np.array([layer * D], np.int64)),
                                      g.const("end", np.array([(layer + 1) * D], np.int64)),
                                      g.const("axis", np.array([0], np.int64))])[0]
            ins.append(s0)
        if lstm and rnn.variant.get("peephole"):       # ONNX's P input (D, 3H), order [i o f]
            ins.append(g.const(f"P_l{layer}", np.stack([np.concatenate([p[f"weight_c{q}{k}"] for q in "iof"])
                                                        for k in keys]).astype(dtype)))
        top = layer == L - 1
        want_y = need_y or not top
        want_h = need_states or top
        outs = [g.fresh(f"Y_l{layer}") if want_y else "", g.fresh(f"Y_h_l{layer}") if want_h else ""]
        if lstm:
            outs.append(g.fresh(f"Y_c_l{layer}") if need_states else "")
        g.node(op, ins, outputs=outs, **attrs)
        hs.append(outs[1])
        if lstm:
            cs.append(outs[2])
        if want_y:
            if D == 1:
                inp = g.node("Squeeze", [outs[0], g.const("axes", np.array([1], np.int64))])[0]  # (T, B, H)
            else:
                t = g.node("Transpose", [outs[0]], perm=[0, 2, 1, 3])[0]                        # (T, B, D, H)
                inp = g.node("Reshape", [t, g.const("shape", np.array([0, 0, -1], np.int64))])[0]  # (T, B, D*H)
    y = inp if need_y else ""
    h_n = c_n = ""
    if need_states:
        h_n = hs[0] if L == 1 else g.node("Concat", hs, axis=0)[0]
        if lstm:
            c_n = cs[0] if L == 1 else g.node("Concat", cs, axis=0)[0]
    return y, h_n, c_n, hs[-1]


def _emit_head(g: _Graph, head, h: str, dtype) -> str:
    """z = h Wᵀ + b. Shapes: h (..., D·H) -> (..., out)"""
    z = g.node("MatMul", [h, g.const("head_weight_T", head.params["weight"].T.astype(dtype))])[0]
    if head.bias:
        z = g.node("Add", [z, g.const("head_bias", head.params["bias"].astype(dtype))])[0]
    return z


def _check_cell_exportable(rnn: Recurrent, where: str) -> None:
    """A ValueError naming what the ONNX standard has no operator for (see the module docstring)."""
    why = onnx_unsupported(rnn.cell, rnn.variant)
    if why:
        raise ValueError(f"{where}: {why}")


def _check_exportable(obj, where: str) -> str:
    """The kind of object to export; anything else is a TypeError/ValueError saying what is supported."""
    if isinstance(obj, Recurrent):
        _check_cell_exportable(obj, where)
        return "Recurrent"
    if isinstance(obj, SequenceTagger):
        _check_cell_exportable(obj.rnn, where)
        return "SequenceTagger"
    if isinstance(obj, (SequenceClassifier, SequenceRegressor)):
        _check_cell_exportable(obj.rnn, where)
        if obj.pooling != "last":
            raise ValueError(f"{where}: {type(obj).__name__} with pooling={obj.pooling!r} cannot be exported: "
                             f"pooling {obj.pooling!r} is not supported, only pooling='last' (whose pooled "
                             f"vector is the top layer's final state, which the ONNX node returns)")
        return type(obj).__name__
    raise TypeError(f"{where}: cannot export a {type(obj).__name__}; supported are rnnkit.Recurrent, "
                    f"SequenceTagger, and SequenceClassifier / SequenceRegressor with pooling='last'")


def export_onnx(model_or_layer, path, *, opset: int = DEFAULT_OPSET, dtype: str = "float32",
                initial_state: bool = True, lengths: bool = True) -> str:
    """Write ``model_or_layer`` as an ONNX graph to ``path`` (atomically); returns the path.

    Args:
        model_or_layer: an :class:`rnnkit.Recurrent` (any cell, depth, direction, bias),
            a :class:`SequenceTagger`, or a :class:`SequenceClassifier` /
            :class:`SequenceRegressor` with ``pooling="last"``.
        path: the ``.onnx`` file to write.
        opset: ONNX opset, at least 14 (default 17).
        dtype: "float32" (default; what ONNX Runtime's recurrent kernels run) or
            "float64"; the weights are cast to it.
        initial_state: give the graph h0 (and c0) inputs; without them it starts from zeros.
            Many-to-one models never take a state.
        lengths: give the graph a ``lengths`` input (int64 (B,), each in [1, T]);
            without it every sequence is read whole.

    The graph's inputs and outputs are listed in the module docstring; the
    model's description is stored in the metadata under ``"rnnkit"`` for
    :class:`OnnxRunner`. The graph passes ``onnx.checker`` (with shape inference)
    before it is written. Without the onnx package: RnnkitError.

    Shapes:
        see the module docstring (inputs x, h0, c0, lengths; outputs y / logits /
        prediction, h_n, c_n)
    """
    where = "export_onnx"
    kind = _check_exportable(model_or_layer, where)
    opset = check_positive_int(opset, "opset", where, minimum=MIN_OPSET)
    dtype = check_choice(str(np.dtype(dtype)) if isinstance(dtype, (type, np.dtype)) else dtype,
                         "dtype", DTYPES, where)
    initial_state = check_flag(initial_state, "initial_state", where)
    lengths = check_flag(lengths, "lengths", where)
    onnx = _import_onnx(where)
    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"{where}: opset must lie in [{MIN_OPSET}, {onnx.defs.onnx_opset_version()}] "
                         f"(the newest this onnx {onnx.__version__} knows), got {opset}")
    TP = onnx.TensorProto
    elem = TP.FLOAT if dtype == "float32" else TP.DOUBLE
    np_dtype = np.dtype(dtype)
    g = _Graph(onnx)

    model = None if kind == "Recurrent" else model_or_layer
    rnn = model_or_layer if model is None else model.rnn
    L, D, H = rnn.num_layers, rnn.num_directions, rnn.hidden_size
    lstm = rnn.cell == "lstm"
    state_shape = [L * D, "B", H]
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
            "kind": kind, "cell": rnn.cell, "nonlinearity": rnn.nonlinearity, "num_layers": L,
            "num_directions": D, "hidden_size": H, "dtype": dtype, "batch_first": False}

    # -- inputs ------------------------------------------------------------------------
    if model is None:
        meta.update(batch_first=rnn.batch_first, input="features", input_size=rnn.input_size)
        x_shape = ["B", "T", rnn.input_size] if rnn.batch_first else ["T", "B", rnn.input_size]
        x = g.add_input("x", elem, x_shape)
        if rnn.batch_first:
            x = g.node("Transpose", [x], perm=[1, 0, 2])[0]                               # (T, B, I)
    elif model.inp.ints:
        meta.update(input="ids", vocab_size=model.inp.vocab_size)
        ids = g.add_input("x", TP.INT64, ["T", "B"])
        table = g.const("embedding", model.inp.embedding.params["weight"].astype(np_dtype))
        x = g.node("Gather", [table, ids], axis=0)[0]                                    # (T, B, E)
    else:
        meta.update(input="features", input_size=model.inp.input_size)
        x = g.add_input("x", elem, ["T", "B", model.inp.input_size])
    # a many-to-one model takes no state; a bidirectional tagger carries none (as its predict)
    takes_state = kind == "Recurrent" or (kind == "SequenceTagger" and D == 1)
    has_state = takes_state and initial_state
    h0 = c0 = ""
    if has_state:
        h0 = g.add_input("h0", elem, state_shape)
        if lstm:
            c0 = g.add_input("c0", elem, state_shape)
    lens = ""
    if lengths:
        # int64 outside (NumPy's default integer), int32 as the operators want
        lens = g.node("Cast", [g.add_input("lengths", TP.INT64, ["B"])], to=TP.INT32)[0]
    meta.update(state_input=has_state, lengths_input=lengths)

    # -- body and outputs --------------------------------------------------------------
    outputs = []
    if kind == "Recurrent":
        y, h_n, c_n, _ = _emit_recurrent(g, rnn, x, h0, c0, lens, np_dtype)
        if rnn.batch_first:
            y = g.node("Transpose", [y], perm=[1, 0, 2])[0]                              # (B, T, D*H)
        g.add_output("y", y, elem, ["B", "T", D * H] if rnn.batch_first else ["T", "B", D * H])
        outputs.append("y")
    elif kind == "SequenceTagger":
        y, h_n, c_n, _ = _emit_recurrent(g, rnn, x, h0, c0, lens, np_dtype, need_states=takes_state)
        z = _emit_head(g, model.head, y, np_dtype)                                       # (T, B, size)
        name, shape = _emit_output_shape(g, model, z, ["T", "B"])
        g.add_output(name, shape[0], elem, shape[1])
        outputs.append(name)
    else:
        _, _, _, top_h = _emit_recurrent(g, rnn, x, h0, c0, lens, np_dtype, need_y=False, need_states=False)
        if D == 1:
            pooled = g.node("Squeeze", [top_h, g.const("axes", np.array([0], np.int64))])[0]  # (B, H)
        else:
            t = g.node("Transpose", [top_h], perm=[1, 0, 2])[0]                               # (B, D, H)
            pooled = g.node("Reshape", [t, g.const("shape", np.array([0, -1], np.int64))])[0]  # (B, D*H)
        z = _emit_head(g, model.head, pooled, np_dtype)                                  # (B, size)
        name, shape = _emit_output_shape(g, model, z, ["B"])
        g.add_output(name, shape[0], elem, shape[1])
        outputs.append(name)
    if takes_state:
        g.add_output("h_n", h_n, elem, state_shape)
        outputs.append("h_n")
        if lstm:
            g.add_output("c_n", c_n, elem, state_shape)
            outputs.append("c_n")
    meta["outputs"] = outputs
    meta["config"] = rnn.config() if model is None else model.config()

    graph = onnx.helper.make_graph(g.nodes, f"rnnkit_{kind}_{rnn.cell}", g.inputs, g.outputs,
                                   initializer=g.inits,
                                   doc_string=f"rnnkit {kind} ({rnn.cell}, {L} layer(s), "
                                              f"{'bidirectional' if D == 2 else 'forward'}, hidden {H})")
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="rnnkit",
                                   producer_version=__version__)
    # the oldest IR version that holds this opset: readable by the most runtimes
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta, sort_keys=True)})
    if proto.ByteSize() >= 2 ** 31:
        raise RnnkitError(f"{where}: the model is {proto.ByteSize() / 2 ** 30:.1f} GiB; a single ONNX file "
                          f"holds at most 2 GiB")
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    path = os.fspath(path)
    rkio.atomic_write(path, lambda f: f.write(data))
    return path


def _emit_output_shape(g: _Graph, model, z: str, lead: list) -> tuple[str, tuple]:
    """The head's values as the model's predict returns them: (..., O, Q) for quantiles.

    Returns (output name, (source tensor, declared shape)).
    """
    out = model.out
    if out.classes:
        return "logits", (z, lead + [out.num_classes])
    if out.quantiles is None:
        return "prediction", (z, lead + [out.output_size])
    Q = len(out.quantiles)
    shape = np.array([0] * len(lead) + [out.output_size, Q], np.int64)
    z = g.node("Reshape", [z, g.const("shape", shape)])[0]                               # (..., O, Q)
    return "prediction", (z, lead + [out.output_size, Q])


# -- running -------------------------------------------------------------------------------

class OnnxRunner:
    """An exported rnnkit graph loaded into an ONNX Runtime session.

    ``run`` returns what rnnkit's own forward returns:

    * Recurrent: ``(y, h_n)``, with h_n the pair (h_n, c_n) for LSTM (``Recurrent.forward``);
    * SequenceTagger: ``(out, state)``, state None when bidirectional (``predict``);
    * SequenceClassifier: logits (B, C) (``predict_logits``); SequenceRegressor: ``predict``'s values.

    ``step`` advances a unidirectional Recurrent or SequenceTagger one step (the
    generation path of a language model: only the state is carried).

    Args:
        path: a file written by :func:`export_onnx`.
        threads: None (ONNX Runtime's default) or the number of intra-op threads.
        providers: ONNX Runtime execution providers (default ``["CPUExecutionProvider"]``).

    A missing or unreadable file, or one not written by :func:`export_onnx`, is an
    RnnkitError; so is a graph ONNX Runtime cannot run (e.g. float64 recurrent nodes).
    """

    def __init__(self, path, threads: int | None = None, providers=None):
        where = "OnnxRunner"
        path = os.fspath(path)
        ort = _import_ort(where)
        if not os.path.isfile(path):
            raise RnnkitError(f"{where}: {path}: file not found")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3           # errors reach the caller as exceptions, not as log lines
        if threads is not None:
            opts.intra_op_num_threads = check_positive_int(threads, "threads", where)
        try:
            self.session = ort.InferenceSession(path, sess_options=opts,
                                                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise RnnkitError(f"{where}: {path}: ONNX Runtime cannot load this model: {exc}") from exc
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        try:
            meta = json.loads(raw) if raw is not None else None
        except json.JSONDecodeError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RnnkitError(f"{where}: {path}: not a graph written by rnnkit.export.export_onnx "
                              f"(no {META_KEY!r} metadata)")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise RnnkitError(f"{where}: {path}: written by a newer rnnkit (format version "
                              f"{meta['format_version']}, this one reads {FORMAT_VERSION})")
        self.path = path
        self.meta = meta
        self.kind = meta["kind"]
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._dtype = np.dtype(meta["dtype"])
        self._where = f"OnnxRunner({self.kind})"

    def __repr__(self) -> str:
        return f"OnnxRunner({self.path!r}, kind={self.kind!r}, cell={self.meta['cell']!r})"

    @property
    def takes_state(self) -> bool:
        return self.kind == "Recurrent" or (self.kind == "SequenceTagger" and self.meta["num_directions"] == 1)

    def _check_x(self, x, where: str) -> np.ndarray:
        meta = self.meta
        dims = "(B, T" if meta["batch_first"] else "(T, B"
        if meta["input"] == "ids":
            x = np.asarray(x)
            if x.dtype.kind not in "iu":
                raise TypeError(f"{where}: expected x to hold integer ids, got dtype {x.dtype}")
            if x.ndim != 2:
                raise ValueError(f"{where}: expected x with 2 dims {dims}) of ids, got {x.ndim} (shape {x.shape})")
            V = meta["vocab_size"]
            if x.size and (x.min() < 0 or x.max() >= V):
                raise ValueError(f"{where}: x ids must lie in [0, vocab_size={V}), got min {x.min()} and "
                                 f"max {x.max()}")
            return x.astype(np.int64, copy=False)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{where}: expected x to be a numpy array, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{where}: expected x to hold floats, got dtype {x.dtype}")
        I = meta["input_size"]
        if x.ndim != 3 or x.shape[2] != I:
            raise ValueError(f"{where}: expected x of shape {dims}, {I}), got {x.shape}")
        return x.astype(self._dtype, copy=False)

    def _check_state(self, state, B: int, where: str) -> list:
        """Arrays to feed as h0 (and c0): the given ones, or zeros."""
        meta = self.meta
        shape = (meta["num_layers"] * meta["num_directions"], B, meta["hidden_size"])
        lstm = meta["cell"] == "lstm"
        if state is None:
            z = np.zeros(shape, self._dtype)
            return [z, z] if lstm else [z]
        if lstm != isinstance(state, (tuple, list)) or (lstm and len(state) != 2):
            want = "a pair (h, c) of arrays" if lstm else "one array"
            raise TypeError(f"{where}: expected the state to be {want} of shape {shape}, got {type(state).__name__}")
        out = []
        for a in (state if lstm else (state,)):
            a = np.asarray(a)
            if a.dtype.kind != "f":
                raise TypeError(f"{where}: expected the state to hold floats, got dtype {a.dtype}")
            if a.shape != shape:
                raise ValueError(f"{where}: expected a state of shape {shape} (num_layers*directions, B, H), "
                                 f"got {a.shape}")
            out.append(a.astype(self._dtype, copy=False))
        return out

    def run(self, x, h0=None, lengths=None):
        """Run the graph on a batch; returns what rnnkit's forward returns (see the class doc).

        h0 None starts from zeros; lengths None reads every sequence whole.

        Shapes:
            x (T, B, I) floats [(B, T, I) batch_first] or (T, B) ids, h0 (L·D, B, H) or (h0, c0),
            lengths (B,) -> Recurrent (y (T, B, D·H), h_n); SequenceTagger (out (T, B, C) or
            (T, B, O[, Q]), state); SequenceClassifier (B, C); SequenceRegressor (B, O[, Q])
        """
        where = f"{self._where}.run"
        meta = self.meta
        x = self._check_x(x, where)
        T, B = (x.shape[1], x.shape[0]) if meta["batch_first"] else x.shape[:2]
        lengths = check_lengths(lengths, T, B, where)
        feed = {"x": x}
        if h0 is not None and not meta["state_input"]:
            why = ("it takes no state" if not self.takes_state
                   else "it was exported with initial_state=False")
            raise ValueError(f"{where}: h0 given, but {why}; pass h0=None")
        if meta["state_input"]:
            feed.update(zip(("h0", "c0"), self._check_state(h0, B, where)))
        if meta["lengths_input"]:
            feed["lengths"] = np.full(B, T, np.int64) if lengths is None else lengths
        elif lengths is not None and np.any(lengths != T):
            raise ValueError(f"{where}: ragged lengths given, but the graph was exported with lengths=False "
                             f"(every sequence is read whole); export it with lengths=True")
        try:
            values = dict(zip(self.output_names, self.session.run(None, feed)))
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise RnnkitError(f"{where}: ONNX Runtime failed to run {self.path}: {exc}"
                              + (" (ONNX Runtime's recurrent kernels are float32 only; export with "
                                 "dtype='float32')" if self._dtype == np.float64 else "")) from exc
        state = None
        if self.takes_state:
            state = (values["h_n"], values["c_n"]) if meta["cell"] == "lstm" else values["h_n"]
        if self.kind == "Recurrent":
            return values["y"], state
        name = meta["outputs"][0]
        if self.kind == "SequenceTagger":
            return values[name], state
        return values[name]

    def step(self, x_t, state=None):
        """Advance one step from ``state`` (None: zeros): run on a sequence of length 1.

        Shapes:
            x_t (B, I) floats or (B,) ids, state (L, B, H) or (h, c)
            -> Recurrent (y_t (B, H), state); SequenceTagger (out (B, C) or (B, O[, Q]), state)
        """
        where = f"{self._where}.step"
        if not self.takes_state:
            raise ValueError(f"{where}: only a unidirectional Recurrent or SequenceTagger runs step by step "
                             f"(a bidirectional one needs the whole sequence; a many-to-one model has no "
                             f"per-step output); use run")
        x_t = np.asarray(x_t)
        expected = 1 if self.meta["input"] == "ids" else 2
        if x_t.ndim != expected:
            shape = "(B,) of ids" if expected == 1 else f"(B, {self.meta['input_size']})"
            raise ValueError(f"{where}: expected x_t of shape {shape}, got {x_t.shape}")
        x = x_t[:, None] if self.meta["batch_first"] else x_t[None]
        out, new_state = self.run(x, state)
        return (out[:, 0] if self.meta["batch_first"] else out[0]), new_state


def run_onnx(path, x, h0=None, lengths=None):
    """Load ``path`` with ONNX Runtime and run it once: ``OnnxRunner(path).run(x, h0, lengths)``.

    For repeated calls keep an :class:`OnnxRunner` (loading builds the session).

    Shapes:
        as :meth:`OnnxRunner.run`
    """
    return OnnxRunner(path).run(x, h0, lengths)
