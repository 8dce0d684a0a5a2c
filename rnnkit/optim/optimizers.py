r"""Optimizers: SGD, RMSprop, Adam, AdamW and Adagrad, and ``make_optimizer``.

Optimizers hold a reference to the live ``params`` dict (name -> array) and update
every array IN PLACE, so the model, the optimizer and a checkpoint all see the same
arrays and a parameter's dtype never changes. ``opt.step(grads)`` takes a dict with
the same names. The updates are ``torch.optim``'s, step for step (t counts steps from
1, g is the gradient, p the parameter, λ the weight decay, η the learning rate):

SGD (momentum μ, dampening τ, Nesterov)
    g ← g + λp
    b ← g at t = 1, else μb + (1 − τ)g            (only when μ ≠ 0)
    g ← g + μb with Nesterov, else b
    p ← p − ηg

RMSprop (smoothing α, ε, momentum μ, centered)
    g ← g + λp
    s ← αs + (1 − α)g²
    a ← αa + (1 − α)g;   d = √max(s − a², 0) + ε   (centered; the max only guards
                          rounding, s ≥ a² holds exactly)
                          d = √s + ε                 (otherwise)
    b ← μb + g/d;  p ← p − ηb                        (μ > 0)
    p ← p − η g/d                                    (μ = 0)

Adam (β1, β2, ε, AMSGrad) — Kingma & Ba 2015; AMSGrad: Reddi, Kale & Kumar 2018
    g ← g + λp                           (Adam: L2 penalty folded into the gradient)
    p ← p(1 − ηλ)                        (AdamW: decoupled decay, Loshchilov & Hutter 2019)
    m ← β1 m + (1 − β1)g
    v ← β2 v + (1 − β2)g²
    v̂ ← max(v̂, v)                       (AMSGrad; v̂ replaces v below)
    p ← p − η/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)

Adagrad (learning-rate decay κ, initial accumulator s₀) — Duchi, Hazan & Singer 2011
    g ← g + λp
    s ← s + g²                           (s starts at s₀)
    p ← p − η/(1 + (t − 1)κ) · g / (√s + ε)

State dicts hold numeric arrays only (npz-able, no pickle): ``"step"`` (0-d int64),
``"lr"`` and every hyperparameter as 0-d arrays (flags as 0/1 int64), and one entry
``"<buffer>/<param name>"`` per buffer and parameter, buffers named as in torch
(``momentum_buffer``, ``square_avg``, ``grad_avg``, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``, ``sum``).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import check_flag, check_number, check_positive_int
from rnnkit.optim._util import check_kwargs, key_errors, scalar

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "DEFAULT_LR", "make_optimizer"]

#: Learning rates used when none is given (the classes and ``make_optimizer`` agree).
DEFAULT_LR = {"sgd": 0.1, "rmsprop": 1e-3, "adam": 2e-3, "adamw": 2e-3, "adagrad": 1e-2}


def _check_params(params, where: str) -> dict[str, np.ndarray]:
    if not isinstance(params, dict):
        raise TypeError(f"{where}: params must be a dict name -> array (e.g. model.params), "
                        f"got {type(params).__name__}")
    if not params:
        raise ValueError(f"{where}: params is empty; there is nothing to optimize")
    for name, p in params.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: parameter names must be strings, got {name!r}")
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{where}: parameter {name!r} must be a numpy array, got {type(p).__name__}")
        if p.dtype not in (np.float32, np.float64):
            raise TypeError(f"{where}: parameter {name!r} must be float32 or float64, got dtype {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"{where}: parameter {name!r} is read-only; it must be updated in place")
    return dict(params)   # our own dict of the same live arrays


# -- optimizers --------------------------------------------------------------------

class Optimizer:
    """Base class: the live params, ``lr``, a step count, per-parameter buffers.

    Subclasses name their float hyperparameters in ``_hyper``, their on/off options
    in ``_flags``, list their buffers in ``_buffer_names()`` and implement
    ``_update(name, p, g)``. This class is not used directly.
    """

    _hyper: tuple[str, ...] = ()
    _flags: tuple[str, ...] = ()

    def __init__(self, params: dict, lr: float):
        if type(self) is Optimizer:
            raise TypeError("Optimizer is a base class; use SGD, RMSprop, Adam, AdamW or Adagrad "
                            "(or make_optimizer(name, params))")
        self._where = type(self).__name__
        self.params = _check_params(params, self._where)
        self.lr = lr
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _init_buffers(self, fill: float = 0.0) -> None:
        self.state = {b: {n: np.full_like(p, fill) for n, p in self.params.items()}
                      for b in self._buffer_names()}

    def _buffer_names(self) -> tuple[str, ...]:
        return ()

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_number(value, "lr", self._where, low=0.0)

    # -- the update ----------------------------------------------------------------
    def _check_grads(self, grads) -> list[tuple[str, np.ndarray, np.ndarray]]:
        where = f"{self._where}.step"
        if not isinstance(grads, dict):
            raise TypeError(f"{where}: grads must be a dict name -> array (e.g. model.grads), "
                            f"got {type(grads).__name__}")
        if grads.keys() != self.params.keys():
            key_errors(f"{where}: grads must have the same names as params", self.params, grads)
        out = []
        for name, p in self.params.items():
            g = grads[name]
            if not isinstance(g, np.ndarray):
                raise TypeError(f"{where}: gradient {name!r} must be a numpy array, got {type(g).__name__}")
            if g.dtype.kind != "f":
                raise TypeError(f"{where}: gradient {name!r} must hold floats, got dtype {g.dtype}")
            if g.shape != p.shape:
                raise ValueError(f"{where}: gradient {name!r} has shape {g.shape}, expected {p.shape}")
            out.append((name, p, g.astype(p.dtype, copy=False)))
        return out

    def step(self, grads: dict) -> None:
        """Apply one update to every parameter in place, from ``grads`` (same names).

        Shapes:
            grads: {name: array of params[name].shape}
        """
        items = self._check_grads(grads)
        self.step_count += 1
        for name, p, g in items:
            self._update(name, p, g)

    # -- state ---------------------------------------------------------------------
    def _scalars(self) -> dict[str, np.ndarray]:
        d = {"step": np.array(self.step_count, dtype=np.int64),
             "lr": np.array(self.lr, dtype=np.float64)}
        for h in self._hyper:
            d[h] = np.array(getattr(self, h), dtype=np.float64)
        for f in self._flags:
            d[f] = np.array(int(getattr(self, f)), dtype=np.int64)
        return d

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the step count, lr, hyperparameters and buffers (numeric arrays only)."""
        d = self._scalars()
        for b, per in self.state.items():
            for n, a in per.items():
                d[f"{b}/{n}"] = a.copy()
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore a :meth:`state_dict` (step, lr, hyperparameters, buffers) in place.

        The optimizer must have been built for the same parameters and with the same
        structure (flags such as ``amsgrad``/``centered``/``nesterov``, momentum on or
        off); anything else is a KeyError (missing/unexpected keys) or ValueError
        (shape or flag mismatch) and leaves the optimizer unchanged.
        """
        where = f"{self._where}.load_state_dict"
        if not isinstance(d, dict) and not hasattr(d, "keys"):
            raise TypeError(f"{where}: expected a dict of arrays, got {type(d).__name__}")
        expected = list(self._scalars()) + [f"{b}/{n}" for b, per in self.state.items() for n in per]
        key_errors(where, expected, list(d.keys()))

        for f in self._flags:
            value = scalar(d, f, where)
            if bool(value) != bool(getattr(self, f)):
                raise ValueError(f"{where}: the state has {f}={bool(value)} but this optimizer has "
                                 f"{f}={bool(getattr(self, f))}; construct it with {f}={bool(value)}")
        buffers = {}
        for b, per in self.state.items():
            for n, a in per.items():
                value = np.asarray(d[f"{b}/{n}"])
                if value.shape != a.shape:
                    raise ValueError(f"{where}: {b}/{n} has shape {value.shape}, expected {a.shape}")
                if value.dtype.kind not in "iuf":
                    raise TypeError(f"{where}: {b}/{n} must be numeric, got dtype {value.dtype}")
                buffers[(b, n)] = value
        step = check_positive_int(scalar(d, "step", where), "step", where, minimum=0)
        lr = check_number(scalar(d, "lr", where), "lr", where, low=0.0)

        old = {h: getattr(self, h) for h in self._hyper}
        structure = self._buffer_names()
        try:
            for h in self._hyper:
                setattr(self, h, scalar(d, h, where))   # each setter validates its value
            if self._buffer_names() != structure:
                raise ValueError(f"{where}: the state's hyperparameters need buffers "
                                 f"{list(self._buffer_names())}, this optimizer has {list(structure)}")
        except (TypeError, ValueError):
            for h, v in old.items():
                setattr(self, h, v)
            raise
        self.step_count = step
        self.lr = lr
        for (b, n), value in buffers.items():
            np.copyto(self.state[b][n], value, casting="unsafe")

    def __repr__(self) -> str:
        opts = ", ".join(f"{h}={getattr(self, h)!r}" for h in ("lr",) + self._hyper + self._flags)
        return f"{type(self).__name__}({opts})"


def _hyper_property(name: str, **limits):
    """A validated float hyperparameter stored as a Python float."""
    attr = "_" + name

    def get(self):
        return getattr(self, attr)

    def set_(self, value):
        setattr(self, attr, check_number(value, name, self._where, **limits))

    return property(get, set_)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

    _hyper = ("momentum", "dampening", "weight_decay")
    _flags = ("nesterov",)
    momentum = _hyper_property("momentum", low=0.0)
    dampening = _hyper_property("dampening")
    weight_decay = _hyper_property("weight_decay", low=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["sgd"], momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = check_flag(nesterov, "nesterov", self._where)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")
        self._init_buffers()

    def _buffer_names(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _update(self, name, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = self.state["momentum_buffer"][name]
            if self.step_count == 1:
                buf[...] = g               # torch starts the buffer at the first gradient
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) with momentum, centering and weight decay."""

    _hyper = ("alpha", "eps", "momentum", "weight_decay")
    _flags = ("centered",)
    alpha = _hyper_property("alpha", low=0.0, high=1.0)
    eps = _hyper_property("eps", low=0.0)
    momentum = _hyper_property("momentum", low=0.0)
    weight_decay = _hyper_property("weight_decay", low=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["rmsprop"], alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, lr)
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = check_flag(centered, "centered", self._where)
        self._init_buffers()

    def _buffer_names(self):
        names = ("square_avg",)
        if self.momentum > 0:
            names += ("momentum_buffer",)
        if self.centered:
            names += ("grad_avg",)
        return names

    def _update(self, name, p, g):
        a = self.alpha
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        sq = self.state["square_avg"][name]
        sq *= a
        sq += (1.0 - a) * (g * g)
        if self.centered:
            ga = self.state["grad_avg"][name]
            ga += (1.0 - a) * (g - ga)
            avg = np.sqrt(np.maximum(sq - ga * ga, 0))
        else:
            avg = np.sqrt(sq)
        avg += self.eps
        if self.momentum > 0:
            buf = self.state["momentum_buffer"][name]
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * (g / avg)


class Adam(Optimizer):
    """Adam with optional AMSGrad; ``weight_decay`` is an L2 term added to the gradient."""

    _hyper = ("beta1", "beta2", "eps", "weight_decay")
    _flags = ("amsgrad",)
    _decoupled = False
    beta1 = _hyper_property("beta1", low=0.0, high=1.0, high_open=True)
    beta2 = _hyper_property("beta2", low=0.0, high=1.0, high_open=True)
    eps = _hyper_property("eps", low=0.0)
    weight_decay = _hyper_property("weight_decay", low=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["adam"], betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._where}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = check_flag(amsgrad, "amsgrad", self._where)
        self._init_buffers()

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _buffer_names(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _update(self, name, p, g):
        b1, b2, t = self.beta1, self.beta2, self.step_count
        if self.weight_decay != 0:
            if self._decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m = self.state["exp_avg"][name]
        v = self.state["exp_avg_sq"][name]
        m += (1.0 - b1) * (g - m)
        v *= b2
        v += (1.0 - b2) * (g * g)
        if self.amsgrad:
            vmax = self.state["max_exp_avg_sq"][name]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = self.lr / (1.0 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t)
        denom += self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p(1 − η λ) before the Adam step."""

    _decoupled = True

    def __init__(self, params: dict, lr: float = DEFAULT_LR["adamw"], betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay, weight decay and an initial accumulator."""

    _hyper = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    lr_decay = _hyper_property("lr_decay", low=0.0)
    weight_decay = _hyper_property("weight_decay", low=0.0)
    initial_accumulator_value = _hyper_property("initial_accumulator_value", low=0.0)
    eps = _hyper_property("eps", low=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["adagrad"], lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        super().__init__(params, lr)
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps
        self._init_buffers(fill=self.initial_accumulator_value)

    def _buffer_names(self):
        return ("sum",)

    def _update(self, name, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        clr = self.lr / (1.0 + (self.step_count - 1) * self.lr_decay)
        s = self.state["sum"][name]
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        p -= clr * (g / std)


_OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad}


def make_optimizer(name: str, params: dict, lr: float | None = None, **kw) -> Optimizer:
    """Build an optimizer by name (``sgd``, ``rmsprop``, ``adam``, ``adamw``, ``adagrad``).

    ``lr=None`` takes ``DEFAULT_LR[name]``; other keyword options are the
    class's (an unknown one is a TypeError that lists the valid ones).
    """
    if not isinstance(name, str) or name.lower() not in _OPTIMIZERS:
        raise ValueError(f"make_optimizer: unknown optimizer {name!r}; choose one of "
                         f"{', '.join(_OPTIMIZERS)}")
    key = name.lower()
    cls = _OPTIMIZERS[key]
    check_kwargs(f"make_optimizer({key!r})", cls.__init__, kw, skip=("self", "params", "lr"))
    return cls(params, lr=DEFAULT_LR[key] if lr is None else lr, **kw)
