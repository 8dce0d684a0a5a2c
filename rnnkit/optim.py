r"""Optimizers, gradient clipping and learning-rate schedules.

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

Clipping
    clip_grad_norm: N = √(Σ_params Σ g²); if N is finite and N > max_norm, every
    g ← g · max_norm/(N + 10⁻⁶) (torch's formula). Returns N before clipping; a
    non-finite N is returned and nothing is scaled, for the caller to report.
    clip_grad_value: g ← clip(g, −v, v).

Schedules set ``opt.lr`` from the number of ``step()`` calls t (the caller decides
whether a step is a batch or an epoch), with η₀ the optimizer's lr at construction:
    StepLR:          η₀ γ^⌊t/step_size⌋
    ExponentialLR:   η₀ γᵗ
    CosineAnnealing: η_min + (η₀ − η_min)(1 + cos(π t/T_max))/2 for t ≤ T_max, then η_min
    LinearWarmup:    η₀ (f₀ + (1 − f₀) t/W) for t ≤ W, then the wrapped schedule
                     run from its own step 0 (or η₀ held)
    ReduceLROnPlateau: η ← max(η·factor, min_lr) once the metric has not improved for
                     more than ``patience`` steps (torch's rule, thresholds and cooldown).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adagrad",
    "DEFAULT_LR",
    "make_optimizer",
    "clip_grad_norm",
    "clip_grad_value",
    "grad_norms",
    "LRSchedule",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealing",
    "ReduceLROnPlateau",
    "LinearWarmup",
    "make_schedule",
]

#: Learning rates used when none is given (the classes and ``make_optimizer`` agree).
DEFAULT_LR = {"sgd": 0.1, "rmsprop": 1e-3, "adam": 2e-3, "adamw": 2e-3, "adagrad": 1e-2}


# -- argument checks ---------------------------------------------------------------

def _number(value, name: str, where: str, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in the given range, returned as a Python float.

    Python floats keep NumPy arithmetic in the parameter's dtype (a NumPy float64
    scalar would promote float32 parameters to float64).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{where}: {name} must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{where}: {name} must be {'<' if hi_open else '<='} {hi}, got {value}")
    return value


def _integer(value, name: str, where: str, minimum: int = 0) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)


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


def _key_errors(where: str, expected, got) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise KeyError(f"{where}: " + "; ".join(parts))


def _scalar(d: dict, key: str, where: str):
    a = np.asarray(d[key])
    if a.ndim != 0 or a.dtype.kind not in "iuf":
        raise ValueError(f"{where}: {key!r} must be a 0-d numeric array, got shape {a.shape} "
                         f"dtype {a.dtype}")
    return a.item()


def _check_kwargs(where: str, func, kw: dict, skip: tuple) -> None:
    """Unknown or missing options named clearly, before the call raises a vaguer TypeError."""
    sig = inspect.signature(func)
    allowed = [n for n in sig.parameters if n not in skip]
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise TypeError(f"{where}: unknown option(s) {unknown}; valid options: {', '.join(allowed) or 'none'}")
    required = [n for n in allowed if sig.parameters[n].default is inspect.Parameter.empty
                and sig.parameters[n].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                   inspect.Parameter.VAR_POSITIONAL)]
    missing = [n for n in required if n not in kw]
    if missing:
        raise TypeError(f"{where}: missing required option(s) {missing}")


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
        self._lr = _number(value, "lr", self._where, lo=0.0)

    # -- the update ----------------------------------------------------------------
    def _check_grads(self, grads) -> list[tuple[str, np.ndarray, np.ndarray]]:
        where = f"{self._where}.step"
        if not isinstance(grads, dict):
            raise TypeError(f"{where}: grads must be a dict name -> array (e.g. model.grads), "
                            f"got {type(grads).__name__}")
        if grads.keys() != self.params.keys():
            _key_errors(f"{where}: grads must have the same names as params", self.params, grads)
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
        _key_errors(where, expected, list(d.keys()))

        for f in self._flags:
            value = _scalar(d, f, where)
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
        step = _integer(_scalar(d, "step", where), "step", where)
        lr = _number(_scalar(d, "lr", where), "lr", where, lo=0.0)

        old = {h: getattr(self, h) for h in self._hyper}
        structure = self._buffer_names()
        try:
            for h in self._hyper:
                setattr(self, h, _scalar(d, h, where))   # each setter validates its value
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
        setattr(self, attr, _number(value, name, self._where, **limits))

    return property(get, set_)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

    _hyper = ("momentum", "dampening", "weight_decay")
    _flags = ("nesterov",)
    momentum = _hyper_property("momentum", lo=0.0)
    dampening = _hyper_property("dampening")
    weight_decay = _hyper_property("weight_decay", lo=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["sgd"], momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = bool(nesterov)
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
    alpha = _hyper_property("alpha", lo=0.0, hi=1.0)
    eps = _hyper_property("eps", lo=0.0)
    momentum = _hyper_property("momentum", lo=0.0)
    weight_decay = _hyper_property("weight_decay", lo=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["rmsprop"], alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, lr)
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = bool(centered)
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
    beta1 = _hyper_property("beta1", lo=0.0, hi=1.0, hi_open=True)
    beta2 = _hyper_property("beta2", lo=0.0, hi=1.0, hi_open=True)
    eps = _hyper_property("eps", lo=0.0)
    weight_decay = _hyper_property("weight_decay", lo=0.0)

    def __init__(self, params: dict, lr: float = DEFAULT_LR["adam"], betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._where}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = bool(amsgrad)
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
    lr_decay = _hyper_property("lr_decay", lo=0.0)
    weight_decay = _hyper_property("weight_decay", lo=0.0)
    initial_accumulator_value = _hyper_property("initial_accumulator_value", lo=0.0)
    eps = _hyper_property("eps", lo=0.0)

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
    _check_kwargs(f"make_optimizer({key!r})", cls.__init__, kw, skip=("self", "params", "lr"))
    return cls(params, lr=DEFAULT_LR[key] if lr is None else lr, **kw)


# -- gradient clipping -------------------------------------------------------------

def _check_grad_dict(grads, where: str) -> dict:
    if not isinstance(grads, dict):
        raise TypeError(f"{where}: grads must be a dict name -> array, got {type(grads).__name__}")
    for name, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            got = type(g).__name__ if not isinstance(g, np.ndarray) else f"dtype {g.dtype}"
            raise TypeError(f"{where}: gradient {name!r} must be a float numpy array, got {got}")
    return grads


def _sq_norm(g: np.ndarray) -> float:
    # float64 accumulation: a float32 sum of squares overflows at |g| ~ 1e19
    flat = g.reshape(-1).astype(np.float64, copy=False)
    return float(np.dot(flat, flat))


def grad_norms(grads: dict) -> dict[str, float]:
    """The L2 norm of each gradient, by name (for logging and diagnostics)."""
    _check_grad_dict(grads, "grad_norms")
    return {name: math.sqrt(_sq_norm(g)) for name, g in grads.items()}


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    Returns the global norm *before* clipping (torch's ``clip_grad_norm_``). A NaN or
    inf norm is returned unchanged and no gradient is touched, so the caller can
    report the divergence instead of training on garbage.
    """
    where = "clip_grad_norm"
    _check_grad_dict(grads, where)
    max_norm = _number(max_norm, "max_norm", where, lo=0.0, lo_open=True)
    total = math.sqrt(sum(_sq_norm(g) for g in grads.values()))
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)   # the 1e-6 keeps an all-zero gradient finite
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total


def clip_grad_value(grads: dict, clip_value: float) -> None:
    """Clip every gradient element into [−clip_value, clip_value], in place."""
    where = "clip_grad_value"
    _check_grad_dict(grads, where)
    v = _number(clip_value, "clip_value", where, lo=0.0, lo_open=True)
    for g in grads.values():
        np.clip(g, -v, v, out=g)


# -- learning-rate schedules -------------------------------------------------------

class LRSchedule:
    """Base class: counts ``step()`` calls and sets ``opt.lr``; not used directly.

    ``base_lr`` is the optimizer's lr when the schedule is built. Closed-form
    schedules implement ``lr_at(t)``. Call ``opt.step(grads)`` first, then
    ``schedule.step()`` (torch's order), once per batch or once per epoch.
    """

    def __init__(self, opt: Optimizer):
        if type(self) is LRSchedule:
            raise TypeError("LRSchedule is a base class; use StepLR, ExponentialLR, CosineAnnealing, "
                            "ReduceLROnPlateau or LinearWarmup (or make_schedule)")
        self._where = type(self).__name__
        if not isinstance(opt, Optimizer):
            raise TypeError(f"{self._where}: opt must be an rnnkit Optimizer, got {type(opt).__name__}")
        self.opt = opt
        self.base_lr = opt.lr
        self.last_step = 0

    @property
    def lr(self) -> float:
        return self.opt.lr

    def step(self, metric: float | None = None) -> None:
        """Advance one step and set ``opt.lr`` (``metric`` is used only by ReduceLROnPlateau)."""
        self.last_step += 1
        self.opt.lr = self.lr_at(self.last_step)

    def _extra_state(self) -> dict[str, float]:
        return {}

    def _set_extra_state(self, values: dict) -> None:
        pass

    def state_dict(self) -> dict[str, np.ndarray]:
        """Step count, base lr, current lr (and any schedule state) as 0-d arrays."""
        return self._own_state_dict()

    def load_state_dict(self, d: dict) -> None:
        """Restore a :meth:`state_dict`; also sets ``opt.lr`` to the saved value."""
        self._load_own(d)

    def _own_state_dict(self) -> dict[str, np.ndarray]:
        d = {"step": np.array(self.last_step, dtype=np.int64),
             "base_lr": np.array(self.base_lr, dtype=np.float64),
             "lr": np.array(self.opt.lr, dtype=np.float64)}
        for k, v in self._extra_state().items():
            d[k] = np.array(v, dtype=np.int64 if isinstance(v, int) else np.float64)
        return d

    def _load_own(self, d: dict) -> None:
        where = f"{self._where}.load_state_dict"
        _key_errors(where, self._own_state_dict().keys(), list(d.keys()))
        values = {k: _scalar(d, k, where) for k in d}
        step = _integer(values.pop("step"), "step", where)
        base_lr = _number(values.pop("base_lr"), "base_lr", where, lo=0.0)
        lr = _number(values.pop("lr"), "lr", where, lo=0.0)
        self._set_extra_state(values)
        self.last_step, self.base_lr = step, base_lr
        self.opt.lr = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step={self.last_step}, lr={self.opt.lr!r})"


class StepLR(LRSchedule):
    """Multiply the lr by ``gamma`` every ``step_size`` steps."""

    def __init__(self, opt: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(opt)
        self.step_size = _integer(step_size, "step_size", self._where, minimum=1)
        self.gamma = _number(gamma, "gamma", self._where, lo=0.0, lo_open=True)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRSchedule):
    """Multiply the lr by ``gamma`` every step."""

    def __init__(self, opt: Optimizer, gamma: float):
        super().__init__(opt)
        self.gamma = _number(gamma, "gamma", self._where, lo=0.0, lo_open=True)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** t


class CosineAnnealing(LRSchedule):
    """Half a cosine from the base lr down to ``eta_min`` over ``T_max`` steps, then hold.

    (Unlike torch's CosineAnnealingLR, which climbs back up after ``T_max``, the lr
    stays at ``eta_min``: a run longer than planned keeps the small lr.)
    """

    def __init__(self, opt: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(opt)
        self.T_max = _integer(T_max, "T_max", self._where, minimum=1)
        self.eta_min = _number(eta_min, "eta_min", self._where, lo=0.0)

    def lr_at(self, t: int) -> float:
        if t >= self.T_max:
            return self.eta_min
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class ReduceLROnPlateau(LRSchedule):
    """Cut the lr by ``factor`` when ``metric`` stops improving (torch's rule).

    A metric improves on the best so far when (mode ``min``, ``threshold_mode``
    ``rel``) metric < best·(1 − threshold), (``abs``) metric < best − threshold; for
    mode ``max`` the mirror images. After more than ``patience`` steps without
    improvement: lr ← max(lr·factor, min_lr) (skipped when the change is below
    ``eps``), then ``cooldown`` steps in which bad steps are not counted.
    """

    def __init__(self, opt: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8):
        super().__init__(opt)
        w = self._where
        if mode not in ("min", "max"):
            raise ValueError(f"{w}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{w}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _number(factor, "factor", w, lo=0.0, hi=1.0, hi_open=True)
        self.patience = _integer(patience, "patience", w)
        self.threshold = _number(threshold, "threshold", w, lo=0.0)
        self.cooldown = _integer(cooldown, "cooldown", w)
        self.min_lr = _number(min_lr, "min_lr", w, lo=0.0)
        self.eps = _number(eps, "eps", w, lo=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_steps = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - th) if self.threshold_mode == "rel" else best - th)
        return a > (best * (1.0 + th) if self.threshold_mode == "rel" else best + th)

    def step(self, metric: float | None = None) -> None:
        """Record this step's ``metric`` (required) and cut the lr on a plateau."""
        if metric is None:
            raise ValueError(f"{self._where}.step: needs the monitored metric, e.g. "
                             "schedule.step(val_loss)")
        if isinstance(metric, np.ndarray) and metric.ndim == 0:
            metric = metric.item()
        if isinstance(metric, bool) or not isinstance(metric, (int, float, np.integer, np.floating)):
            raise TypeError(f"{self._where}.step: metric must be a number, got {type(metric).__name__}")
        current = float(metric)
        self.last_step += 1
        if self._is_better(current):          # NaN is never better: it counts as a bad step
            self.best = current
            self.num_bad_steps = 0
        else:
            self.num_bad_steps += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_steps = 0             # bad steps in cooldown do not count
        if self.num_bad_steps > self.patience:
            old = self.opt.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.opt.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_steps = 0

    def _extra_state(self):
        return {"best": float(self.best), "num_bad_steps": self.num_bad_steps,
                "cooldown_counter": self.cooldown_counter}

    def _set_extra_state(self, values):
        where = f"{self._where}.load_state_dict"
        best = float(values["best"])
        if math.isnan(best):
            raise ValueError(f"{where}: best must be a number or ±inf, got NaN")
        num_bad = _integer(values["num_bad_steps"], "num_bad_steps", where)
        cooldown = _integer(values["cooldown_counter"], "cooldown_counter", where)
        self.best, self.num_bad_steps, self.cooldown_counter = best, num_bad, cooldown


class LinearWarmup(LRSchedule):
    """Ramp the lr linearly from ``start_factor``·base to base over ``warmup_steps``,
    then hand over to ``after`` (built beforehand on the same optimizer), which runs
    from its own step 0; with ``after=None`` the base lr is kept. While warming up,
    metrics are ignored (a plateau schedule only starts counting after the warmup).
    """

    def __init__(self, opt: Optimizer, warmup_steps: int, after: LRSchedule | None = None,
                 start_factor: float = 0.0):
        super().__init__(opt)
        w = self._where
        self.warmup_steps = _integer(warmup_steps, "warmup_steps", w)
        self.start_factor = _number(start_factor, "start_factor", w, lo=0.0, hi=1.0)
        if after is not None:
            if not isinstance(after, LRSchedule):
                raise TypeError(f"{w}: after must be a schedule or None, got {type(after).__name__}")
            if after.opt is not opt:
                raise ValueError(f"{w}: after must drive the same optimizer as the warmup")
            if after.last_step != 0:
                raise ValueError(f"{w}: after must be a fresh schedule (at step 0), "
                                 f"got one at step {after.last_step}")
            # the wrapped schedule decays from the lr it was built with
            self.base_lr = after.base_lr
        self.after = after
        if self.warmup_steps > 0:
            opt.lr = self.lr_at(0)

    def lr_at(self, t: int) -> float:
        """The warmup lr at step t ≤ warmup_steps."""
        if t >= self.warmup_steps:
            return self.base_lr
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps)

    def step(self, metric: float | None = None) -> None:
        self.last_step += 1
        if self.last_step <= self.warmup_steps:
            self.opt.lr = self.lr_at(self.last_step)
        elif self.after is not None:
            self.after.step(metric)

    def state_dict(self) -> dict[str, np.ndarray]:
        d = super().state_dict()
        if self.after is not None:
            d.update({f"after/{k}": v for k, v in self.after.state_dict().items()})
        return d

    def load_state_dict(self, d: dict) -> None:
        where = f"{self._where}.load_state_dict"
        _key_errors(where, self.state_dict().keys(), list(d.keys()))
        if self.after is not None:
            self.after.load_state_dict({k[len("after/"):]: v for k, v in d.items()
                                        if k.startswith("after/")})
        self._load_own({k: v for k, v in d.items() if not k.startswith("after/")})


_SCHEDULES = {"constant": None, "step": StepLR, "exponential": ExponentialLR,
              "cosine": CosineAnnealing, "plateau": ReduceLROnPlateau}


def make_schedule(name: str, opt: Optimizer, warmup_steps: int = 0, warmup_start_factor: float = 0.0,
                  **kw) -> LRSchedule:
    """Build a schedule by name: ``constant``, ``step``, ``exponential``, ``cosine``, ``plateau``.

    Keyword options are the class's (``step_size``/``gamma``, ``gamma``, ``T_max``/
    ``eta_min``, ``mode``/``factor``/``patience``/...). ``warmup_steps > 0`` wraps the
    schedule in a :class:`LinearWarmup` that starts at ``warmup_start_factor``·lr.
    Unknown names or options are errors that list the valid ones.
    """
    if not isinstance(name, str) or name.lower() not in _SCHEDULES:
        raise ValueError(f"make_schedule: unknown schedule {name!r}; choose one of {', '.join(_SCHEDULES)}")
    key = name.lower()
    cls = _SCHEDULES[key]
    where = f"make_schedule({key!r})"
    if cls is None:
        _check_kwargs(where, lambda: None, kw, skip=())
        return LinearWarmup(opt, warmup_steps, None, start_factor=warmup_start_factor)
    _check_kwargs(where, cls.__init__, kw, skip=("self", "opt"))
    sched = cls(opt, **kw)
    if _integer(warmup_steps, "warmup_steps", where) > 0:
        return LinearWarmup(opt, warmup_steps, sched, start_factor=warmup_start_factor)
    return sched
