"""The parameter-owning module contract every layer and model follows.

A module holds ``params`` (name -> array) and ``grads`` (same names, same shapes).
``forward`` caches what ``backward`` needs; ``backward`` returns the input
gradients and *accumulates* (``+=``) into ``grads``. Parameters are only ever
updated in place (optimizers and ``load_state_dict`` write into the existing
arrays), so a dict of references taken once stays valid for the whole run.

Composite models register children with :meth:`Module.add`; their ``params`` and
``grads`` are the flat union with dotted names (``"rnn.weight_ih_l0"``,
``"head.weight"``), so an optimizer is one loop over one dict.
"""

from __future__ import annotations

import numpy as np


class Module:
    """Base class: parameters, gradients, state dicts and the train/eval switch."""

    def __init__(self):
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._children: dict[str, Module] = {}
        self.training = True

    # -- structure -----------------------------------------------------------------
    def add(self, name: str, module: "Module") -> "Module":
        """Register ``module`` as a child whose parameters are prefixed ``name.``."""
        if "." in name:
            raise ValueError(f"{type(self).__name__}: child name must not contain '.', got {name!r}")
        self._children[name] = module
        return module

    def register(self, name: str, value: np.ndarray) -> np.ndarray:
        """Own ``value`` as parameter ``name``; its gradient starts at zero."""
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Name -> parameter array (the live arrays, not copies)."""
        out = dict(self._params)
        for cname, child in self._children.items():
            for k, v in child.params.items():
                out[f"{cname}.{k}"] = v
        return out

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Name -> accumulated gradient, same keys and shapes as ``params``."""
        out = dict(self._grads)
        for cname, child in self._children.items():
            for k, v in child.grads.items():
                out[f"{cname}.{k}"] = v
        return out

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- gradients -----------------------------------------------------------------
    def zero_grad(self) -> None:
        for g in self._grads.values():
            g.fill(0)
        for child in self._children.values():
            child.zero_grad()

    # -- constraints ---------------------------------------------------------------
    def constrain(self) -> None:
        """Project the parameters back onto their allowed set, in place; trainers call it
        after every optimizer step. The base class has no constraint of its own and asks
        its children (:class:`rnnkit.Recurrent` bounds IndRNN's recurrent weights)."""
        for child in self._children.values():
            child.constrain()

    # -- modes ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = bool(mode)
        for child in self._children.values():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, by name."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters in place (cast to each parameter's dtype).

        ``state`` may hold NumPy arrays or anything ``np.asarray`` accepts (a torch
        module's ``state_dict()`` converted with ``.numpy()``). With ``strict`` a
        missing or unexpected key is an error; a shape mismatch always is.
        """
        where = type(self).__name__
        params = self.params
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"{where}.load_state_dict: " + "; ".join(parts))
        for name, p in params.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"{where}.load_state_dict: {name} has shape {value.shape}, expected {p.shape}")
            if value.dtype.kind not in "fiu":
                raise TypeError(f"{where}.load_state_dict: {name} must be numeric, got dtype {value.dtype}")
            np.copyto(p, value, casting="unsafe")
