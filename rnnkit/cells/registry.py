"""The one list of cell names: what each name means, read by every part of rnnkit.

:class:`~rnnkit.layers.Recurrent` takes a *cell* ("rnn", "lstm", ...); the models, the
tasks and the command line's ``--cell`` take a *kind*: a cell with its nonlinearity
("rnn-relu" is the vanilla cell with ReLU). The diagnostics compare two more kinds
that are initialisations of a cell, not cells of their own.

    kind           cell      nonlinearity   initialisation            where
    "rnn"          rnn       tanh           the run's                 everywhere
    "rnn-relu"     rnn       relu           the run's                 everywhere
    "lstm"         lstm      -              the run's                 everywhere
    "gru"          gru       -              the run's                 everywhere
    "indrnn"       indrnn    relu           the run's                 everywhere
    "mingru"       mingru    -              the run's                 everywhere
    "minlstm"      minlstm   -              the run's                 everywhere
    "irnn"         rnn       relu           W_hh = I, biases 0        diagnostics
    "lstm-chrono"  lstm      -              chrono biases (init.py)   rnnkit memory

Adding a cell: a module in :mod:`rnnkit.cells` with ``forward``/``infer``/``backward``,
its gate count in :data:`GATES`, and a row in :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The cells of :class:`~rnnkit.layers.Recurrent` and their gate blocks G (weight_ih is (G·H, I)).
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "indrnn": 1, "mingru": 2, "minlstm": 3}
RECURRENT_CELLS = tuple(GATES)
#: The nonlinearity a cell uses when none is given; the cells that take a choice.
DEFAULT_NONLINEARITY = {"rnn": "tanh", "indrnn": "relu"}
NONLINEARITY_CELLS = tuple(DEFAULT_NONLINEARITY)


@dataclass(frozen=True)
class CellSpec:
    name: str           # the kind, as users write it
    cell: str           # one of RECURRENT_CELLS
    nonlinearity: str   # "tanh" | "relu" (what the rnn and indrnn cells apply)
    scheme: str         # "default" (the run's initialisation), "irnn" or "chrono"
    diagnostic: bool    # True: a diagnostics-only kind


KINDS = {
    "rnn": CellSpec("rnn", "rnn", "tanh", "default", False),
    "rnn-relu": CellSpec("rnn-relu", "rnn", "relu", "default", False),
    "lstm": CellSpec("lstm", "lstm", "tanh", "default", False),
    "gru": CellSpec("gru", "gru", "tanh", "default", False),
    "indrnn": CellSpec("indrnn", "indrnn", "relu", "default", False),
    "mingru": CellSpec("mingru", "mingru", "tanh", "default", False),
    "minlstm": CellSpec("minlstm", "minlstm", "tanh", "default", False),
    "irnn": CellSpec("irnn", "rnn", "relu", "irnn", True),
    "lstm-chrono": CellSpec("lstm-chrono", "lstm", "tanh", "chrono", True),
}
#: The names the models, the tasks and ``--cell`` of the training commands accept.
MODEL_CELLS = tuple(k for k, s in KINDS.items() if not s.diagnostic)
#: The names ``rnnkit memory`` accepts: every kind.
DIAGNOSTIC_CELLS = tuple(KINDS)
#: The names the gradient-flow diagnostics accept (``rnnkit gradients``: Jacobians and
#: saturation of PyTorch's three cells, with the run's initialisation or IRNN's).
GRADIENT_CELLS = tuple(k for k, s in KINDS.items() if s.cell in ("rnn", "lstm", "gru") and s.scheme != "chrono")


def parse_kind(name, where: str, diagnostics: bool = False) -> CellSpec:
    """The :class:`CellSpec` of a kind name (leading/trailing spaces and case ignored).

    ``diagnostics``: also accept the diagnostics-only kinds ("irnn", "lstm-chrono").
    """
    allowed = DIAGNOSTIC_CELLS if diagnostics else MODEL_CELLS
    if not isinstance(name, str):
        raise TypeError(f"{where}: cell must be a string, one of {', '.join(map(repr, allowed))}, "
                        f"got {type(name).__name__}")
    key = name.strip().lower()
    if key not in allowed:
        raise ValueError(f"{where}: cell must be one of {', '.join(map(repr, allowed))}, got {name!r}")
    return KINDS[key]
