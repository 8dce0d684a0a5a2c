"""The recurrent math: pure forward/backward functions, one module per cell family.

Each module exposes ``forward(params, x, h0=None, lengths=None, ...)``,
``backward(params, cache, d_outputs, d_final_state=None, return_dh=False)`` and
``infer`` (forward without a cache, for inference); see DESIGN.md.

``rnn``, ``lstm``, ``gru``: PyTorch's cells (the compiled ``rnnkit.fast`` serves them);
``indrnn``; ``minrnn`` (minGRU and minLSTM); ``lstm_variants`` and ``gru_variants``
(projection, layer normalisation, peepholes, zoneout, recurrent dropout).
The names of all cells, and of the kinds the models and the command line take,
are in :mod:`rnnkit.cells.registry`, which imports nothing heavy (the command line
reads it); the cell modules and :data:`CELLS` / :data:`MODULES` load on first use.
"""

import importlib

from rnnkit.cells.registry import GATES, RECURRENT_CELLS

_SUBMODULES = ("rnn", "lstm", "gru", "indrnn", "minrnn", "lstm_variants", "gru_variants", "variants")
#: CELLS: PyTorch's three cells, all with the params weight_ih, weight_hh, bias_ih, bias_hh.
#: MODULES: the module of every cell of :class:`~rnnkit.layers.Recurrent`.
_TABLES = {"CELLS": {"rnn": "rnn", "lstm": "lstm", "gru": "gru"},
           "MODULES": {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "indrnn": "indrnn",
                       "mingru": "minrnn", "minlstm": "minrnn"}}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _TABLES:
        table = {cell: importlib.import_module(f"{__name__}.{module}") for cell, module in _TABLES[name].items()}
        globals()[name] = table
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_SUBMODULES, "CELLS", "MODULES", "GATES", "RECURRENT_CELLS"]
