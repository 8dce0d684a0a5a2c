"""What :class:`~rnnkit.layers.Recurrent` needs to know of each cell and variant, in one place.

A *variant* is an option that changes a PyTorch cell: ``proj_size``, ``layer_norm``,
``peephole`` (LSTM), ``zoneout``, ``recurrent_dropout`` (LSTM and GRU), or
``recurrent_max`` (IndRNN). zoneout and recurrent dropout act in training only, so a
layer whose only variants are those runs the plain cell in eval mode.

Which implementation runs is decided here, in :func:`fast_module` (compiled, where
``rnnkit.fast``'s loops run) and :func:`module_for` (the NumPy reference otherwise):

- compiled: the plain ``rnn``/``lstm``/``gru``; ``indrnn`` (relu or tanh, with or
  without ``recurrent_max``); ``lstm`` with ``proj_size`` and/or ``layer_norm``;
  ``gru`` with ``layer_norm``; ``mingru``/``minlstm`` (their scan, ``rnnkit.fast.minrnn``);
- NumPy: any layer with ``peephole``, or with ``zoneout`` or ``recurrent_dropout`` in
  training mode (whatever else it has).

Functions here: :func:`check_options` (the constructor's checks), :func:`layout`
(parameter names and shapes per layer), :func:`fast_module` and :func:`module_for`
(which implementation runs) and :func:`cell_kwargs` (the arguments it takes).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.cells import gru_variants, indrnn, lstm_variants, minrnn
from rnnkit.cells.registry import GATES

#: The variant options and the cells that take each.
OPTION_CELLS = {"proj_size": ("lstm",), "layer_norm": ("lstm", "gru"), "peephole": ("lstm",),
                "zoneout": ("lstm", "gru"), "recurrent_dropout": ("lstm", "gru"),
                "recurrent_max": ("indrnn",)}
_TRAINING_ONLY = ("zoneout", "recurrent_dropout")
#: The options the compiled loops (``rnnkit.fast``) run, per cell (module docstring).
COMPILED_OPTIONS = {"lstm": ("proj_size", "layer_norm"), "gru": ("layer_norm",)}


def _probability(p, name: str, where: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number in [0, 1), got {type(p).__name__}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{where}: {name} must lie in [0, 1), got {p}")
    return float(p)


def check_options(cell: str, hidden_size: int, where: str, proj_size=0, layer_norm=False, peephole=False,
                  zoneout=0.0, recurrent_dropout=0.0, recurrent_max=None) -> dict:
    """The variant options that differ from the plain cell, checked: {name: value}.

    A variant on a cell that does not have it is a ValueError naming both.
    """
    options = {}
    if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)):
        raise TypeError(f"{where}: proj_size must be an integer (0: no projection), got {type(proj_size).__name__}")
    if proj_size < 0 or (proj_size and proj_size >= hidden_size):
        raise ValueError(f"{where}: proj_size must be 0 (no projection) or in [1, hidden_size={hidden_size}), "
                         f"got {proj_size}")
    if proj_size:
        options["proj_size"] = int(proj_size)
    for name, value in (("layer_norm", layer_norm), ("peephole", peephole)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: {name} must be True or False, got {type(value).__name__}")
        if value:
            options[name] = True
    for name, value in (("zoneout", zoneout), ("recurrent_dropout", recurrent_dropout)):
        if _probability(value, name, where) > 0.0:
            options[name] = float(value)
    if recurrent_max is not None:
        if isinstance(recurrent_max, bool) or not isinstance(recurrent_max, (int, float, np.integer, np.floating)):
            raise TypeError(f"{where}: recurrent_max must be None or a number > 0, got {type(recurrent_max).__name__}")
        if not (math.isfinite(recurrent_max) and recurrent_max > 0):
            raise ValueError(f"{where}: recurrent_max must be a finite number > 0, got {recurrent_max}")
        options["recurrent_max"] = float(recurrent_max)
    for name in options:
        if cell not in OPTION_CELLS[name]:
            raise ValueError(f"{where}: {name} applies to cell {' or '.join(map(repr, OPTION_CELLS[name]))}, "
                             f"not {cell!r}")
    return options


def layout(cell: str, I: int, H: int, bias: bool, options: dict) -> dict:
    """{param key: shape} of one layer and direction, in PyTorch's order (keys without
    the ``_l{k}[_reverse]`` suffix)."""
    if cell == "indrnn":
        return indrnn.layout(I, H, bias)
    if cell in ("mingru", "minlstm"):
        return minrnn.layout(cell, I, H, bias)
    if cell == "lstm":
        return lstm_variants.layout(I, H, bias, options.get("proj_size", 0),
                                    options.get("layer_norm", False), options.get("peephole", False))
    if cell == "gru":
        return gru_variants.layout(I, H, bias, options.get("layer_norm", False))
    G = GATES[cell]
    return {"weight_ih": (G * H, I), "weight_hh": (G * H, H),
            **({"bias_ih": (G * H,), "bias_hh": (G * H,)} if bias else {})}


def _active(options: dict, training: bool) -> set:
    """The options that change the computation now (the training-only ones in training)."""
    return {k for k in options if training or k not in _TRAINING_ONLY}


def fast_module(cell: str, options: dict, training: bool):
    """The name of the ``rnnkit.fast`` module that runs ``cell`` with ``options`` compiled
    (``rnnkit.fast.get`` takes it), or None: that layer runs NumPy (:func:`module_for`).
    The rule is the module docstring's."""
    active = _active(options, training)
    if cell in ("rnn", "lstm", "gru") and not active:
        return cell
    if cell == "indrnn":
        return "indrnn"
    if cell in ("mingru", "minlstm"):
        return "minrnn"
    if active and active <= set(COMPILED_OPTIONS.get(cell, ())):
        return f"{cell}_variants"
    return None


def compiled_summary() -> dict:
    """The rule of :func:`fast_module` in words: {"compiled": [...], "numpy": [...]}
    (``rnnkit info`` prints it)."""
    compiled = ["rnn", "lstm", "gru", "indrnn", "mingru", "minlstm"] + [
        f"{cell} with {' and/or '.join(opts)}" for cell, opts in COMPILED_OPTIONS.items()]
    return {"compiled": compiled,
            "numpy": ["peephole", "zoneout or recurrent_dropout in training"]}


def module_for(cell: str, options: dict, training: bool):
    """The NumPy module that runs ``cell`` with ``options``, or None for a plain
    PyTorch cell (``rnnkit.cells.CELLS[cell]``)."""
    active = _active(options, training)
    if cell == "indrnn":
        return indrnn
    if cell in ("mingru", "minlstm"):
        return minrnn
    if not active:
        return None
    return lstm_variants if cell == "lstm" else gru_variants


def cell_kwargs(cell: str, nonlinearity: str, options: dict, training: bool, rng) -> dict:
    """The keyword arguments of the chosen module's forward/infer (see :func:`module_for`)."""
    if cell == "rnn":
        return {"nonlinearity": nonlinearity}
    if cell == "indrnn":
        return {"nonlinearity": nonlinearity, "recurrent_max": options.get("recurrent_max")}
    if cell in ("mingru", "minlstm"):
        return {"kind": cell}
    if not training or module_for(cell, options, training) is None:
        return {}
    kw = {k: options[k] for k in _TRAINING_ONLY if k in options}
    return {**kw, "rng": rng} if kw else {}


def onnx_unsupported(cell: str, options: dict):
    """Why a layer has no ONNX graph (the standard's RNN, LSTM and GRU operators lack it), or None."""
    names = {"indrnn": "IndRNN", "mingru": "minGRU", "minlstm": "minLSTM"}
    if cell in names:
        return (f"cell {cell!r} cannot be exported: the ONNX standard has no {names[cell]} operator "
                f"(ONNX has RNN, LSTM and GRU)")
    for option, what in (("proj_size", "an LSTM projection (proj_size)"),
                         ("layer_norm", "layer-normalised cells (layer_norm)")):
        if option in options:
            return (f"{option}={options[option]!r} cannot be exported: the ONNX {cell.upper()} operator has "
                    f"no input for {what}; export a layer without it")
    return None
