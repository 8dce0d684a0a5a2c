"""The cell names the diagnostics accept, and what each one means.

A diagnostic compares *kinds* of recurrent network, which are more than the cell
modules: a vanilla RNN with tanh, the same with ReLU, and the ReLU RNN with the
identity initialisation of Le, Jaitly & Hinton (2015) behave very differently. The
kinds are listed once, in :mod:`rnnkit.cells.registry`; the gradient-flow
diagnostics take :data:`~rnnkit.cells.registry.GRADIENT_CELLS` ("rnn", "rnn-relu",
"irnn", "lstm", "gru"), ``rnnkit memory`` takes every kind.

An ``init`` is a scheme of :mod:`rnnkit.init` ("default", "xavier_orthogonal") or
``"radius=R"``: the default weights with every H×H gate block of W_hh rescaled to
spectral radius R (largest |eigenvalue|), the knob that moves a vanilla RNN from
vanishing (R < 1) to exploding (R > 1) gradients (Pascanu, Mikolov & Bengio 2013).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.cells.registry import GRADIENT_CELLS, KINDS, CellSpec

INIT_SCHEMES = ("default", "xavier_orthogonal")
CELL_NAMES = GRADIENT_CELLS     # what the gradient-flow diagnostics take by default


def parse_cell(name, where: str, names=CELL_NAMES) -> CellSpec:
    """The :class:`~rnnkit.cells.registry.CellSpec` of a name in ``names``."""
    if not isinstance(name, str):
        raise TypeError(f"{where}: a cell name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in names:
        raise ValueError(f"{where}: cell must be one of {', '.join(map(repr, names))}, got {name!r}")
    return KINDS[key]


def parse_cells(cells, where: str, names=CELL_NAMES) -> list[CellSpec]:
    """A list of names, or one comma-separated string ("rnn,lstm"), as CellSpecs."""
    if isinstance(cells, str):
        cells = [c for c in cells.split(",") if c.strip()]
    if not isinstance(cells, (list, tuple)) or not cells:
        raise ValueError(f"{where}: cells must be a non-empty list of names from "
                         f"{', '.join(names)}, got {cells!r}")
    specs = [parse_cell(c, where, names) for c in cells]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: cells must not repeat a name, got {names}")
    return specs


def parse_init(init, where: str):
    """``(scheme, radius)``: radius is None unless ``init`` is "radius=R" (then scheme "default")."""
    if not isinstance(init, str):
        raise TypeError(f"{where}: init must be a string, got {type(init).__name__}")
    key = init.strip().lower()
    if key in INIT_SCHEMES:
        return key, None
    if key.startswith("radius=") or key.startswith("radius:"):
        text = key[len("radius="):]
        try:
            radius = float(text)
        except ValueError:
            radius = float("nan")
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"{where}: init 'radius=R' needs a finite R > 0, got {init!r}")
        return "default", radius
    raise ValueError(f"{where}: init must be one of {', '.join(map(repr, INIT_SCHEMES))} or "
                     f"'radius=R' (W_hh rescaled to spectral radius R), got {init!r}")


def spectral_radius(w: np.ndarray) -> float:
    """max |eigenvalue| of a square matrix."""
    return float(np.max(np.abs(np.linalg.eigvals(w))))


def rescale_recurrent(w_hh: np.ndarray, gates: int, radius: float) -> np.ndarray:
    """W_hh (G·H, H) with each H×H gate block scaled to spectral radius ``radius``.

    Shapes:
        w_hh (G*H, H) -> (G*H, H)
    """
    H = w_hh.shape[1]
    out = np.array(w_hh, copy=True)
    for g in range(gates):
        block = out[g * H:(g + 1) * H]          # (H, H): one gate's recurrent map
        rho = spectral_radius(block)
        if rho > 0:
            block *= radius / rho
    return out
