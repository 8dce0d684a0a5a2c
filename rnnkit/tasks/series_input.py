r"""How a numeric series is shown to a classifier: normalised per series, folded in time.

Per-series normalisation. Each series x (T, F) is standardised with its own mean and
spread per feature, so shape, not offset or gain, is what the network compares:

    z_t = (x_t − μ_x) / σ_x,      μ_x, σ_x over the series' own T steps (σ_x = 1 if 0)

The offset and gain still carry information (an appliance's power level), so two
constant channels per feature keep them: μ_x and log σ_x, standardised with their mean
and spread over the training series.

Folding long series. A recurrent network learns poorly over thousands of steps, and
each step costs time; a series longer than ``max_steps`` is read ``k`` values per step,
k = ⌈T_max / max_steps⌉ over the training lengths: steps t·k … t·k+k−1 become one input
vector of k·F values (the last step zero-padded), so no value is dropped and the input
projection learns a strided filter over each block.

    (T, F)  ->  (⌈T / k⌉, k·F + 2F)

The fitted statistics go into the classifier's checkpoint (:meth:`SeriesInput.to_dict`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SeriesInput"]

#: the longest input a classifier reads in steps before values are folded k to a step
MAX_STEPS = 100


class SeriesInput:
    """Per-series standardisation plus level channels, folded k values per step (module docstring).

    ``SeriesInput(max_steps).fit(seqs)`` on the training series (a list of (T_i, F)
    arrays); ``transform(seqs)`` gives the network's inputs; ``size`` is their width.
    """

    def __init__(self, max_steps: int = MAX_STEPS):
        self.max_steps = int(max_steps)
        self.fold = None
        self.n_features = None
        self.level_mean = self.level_std = None

    @staticmethod
    def _levels(seqs) -> np.ndarray:
        """(n, 2F): each series' mean and log standard deviation per feature."""
        out = []
        for a in seqs:
            sd = a.std(axis=0)
            out.append(np.concatenate([a.mean(axis=0), np.log(np.where(sd > 0, sd, 1e-12) + 1e-12)]))
        return np.asarray(out)

    def fit(self, seqs) -> "SeriesInput":
        longest = max(len(a) for a in seqs)
        self.fold = max(1, -(-longest // self.max_steps))
        self.n_features = seqs[0].shape[1]
        lv = self._levels(seqs)
        self.level_mean = lv.mean(axis=0)
        sd = lv.std(axis=0)
        self.level_std = np.where(sd > 0, sd, 1.0)
        return self

    @property
    def size(self) -> int:
        return self.fold * self.n_features + 2 * self.n_features

    def transform(self, seqs) -> list[np.ndarray]:
        """Shapes: list of (T_i, F) -> list of (⌈T_i / k⌉, k·F + 2F)"""
        k, F = self.fold, self.n_features
        lv = (self._levels(seqs) - self.level_mean) / self.level_std
        out = []
        for a, level in zip(seqs, lv):
            sd = a.std(axis=0)
            z = (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
            steps = -(-len(z) // k)
            padded = np.zeros((steps * k, F))
            padded[:len(z)] = z
            folded = padded.reshape(steps, k * F)                    # k consecutive rows per step
            out.append(np.concatenate([folded, np.repeat(level[None], steps, axis=0)], axis=1))
        return out

    def to_dict(self) -> dict:
        return {"kind": "series_input", "max_steps": self.max_steps, "fold": self.fold,
                "n_features": self.n_features, "level_mean": [float(v) for v in self.level_mean],
                "level_std": [float(v) for v in self.level_std]}

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesInput":
        s = cls(d["max_steps"])
        s.fold, s.n_features = int(d["fold"]), int(d["n_features"])
        s.level_mean = np.asarray(d["level_mean"], dtype=np.float64)
        s.level_std = np.asarray(d["level_std"], dtype=np.float64)
        return s
