r"""Learning-rate schedules.

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

import math

import numpy as np

from rnnkit._checks import check_number, check_positive_int
from rnnkit.optim._util import check_kwargs, key_errors, scalar
from rnnkit.optim.optimizers import Optimizer

__all__ = ["LRSchedule", "StepLR", "ExponentialLR", "CosineAnnealing", "ReduceLROnPlateau", "LinearWarmup",
           "make_schedule"]


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
        key_errors(where, self._own_state_dict().keys(), list(d.keys()))
        values = {k: scalar(d, k, where) for k in d}
        step = check_positive_int(values.pop("step"), "step", where, minimum=0)
        base_lr = check_number(values.pop("base_lr"), "base_lr", where, low=0.0)
        lr = check_number(values.pop("lr"), "lr", where, low=0.0)
        self._set_extra_state(values)
        self.last_step, self.base_lr = step, base_lr
        self.opt.lr = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step={self.last_step}, lr={self.opt.lr!r})"


class StepLR(LRSchedule):
    """Multiply the lr by ``gamma`` every ``step_size`` steps."""

    def __init__(self, opt: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(opt)
        self.step_size = check_positive_int(step_size, "step_size", self._where, minimum=1)
        self.gamma = check_number(gamma, "gamma", self._where, low=0.0, low_open=True)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRSchedule):
    """Multiply the lr by ``gamma`` every step."""

    def __init__(self, opt: Optimizer, gamma: float):
        super().__init__(opt)
        self.gamma = check_number(gamma, "gamma", self._where, low=0.0, low_open=True)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** t


class CosineAnnealing(LRSchedule):
    """Half a cosine from the base lr down to ``eta_min`` over ``T_max`` steps, then hold.

    (Unlike torch's CosineAnnealingLR, which climbs back up after ``T_max``, the lr
    stays at ``eta_min``: a run longer than planned keeps the small lr.)
    """

    def __init__(self, opt: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(opt)
        self.T_max = check_positive_int(T_max, "T_max", self._where, minimum=1)
        self.eta_min = check_number(eta_min, "eta_min", self._where, low=0.0)

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
        self.factor = check_number(factor, "factor", w, low=0.0, high=1.0, high_open=True)
        self.patience = check_positive_int(patience, "patience", w, minimum=0)
        self.threshold = check_number(threshold, "threshold", w, low=0.0)
        self.cooldown = check_positive_int(cooldown, "cooldown", w, minimum=0)
        self.min_lr = check_number(min_lr, "min_lr", w, low=0.0)
        self.eps = check_number(eps, "eps", w, low=0.0)
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
        num_bad = check_positive_int(values["num_bad_steps"], "num_bad_steps", where, minimum=0)
        cooldown = check_positive_int(values["cooldown_counter"], "cooldown_counter", where, minimum=0)
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
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", w, minimum=0)
        self.start_factor = check_number(start_factor, "start_factor", w, low=0.0, high=1.0)
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
        key_errors(where, self.state_dict().keys(), list(d.keys()))
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
        check_kwargs(where, lambda: None, kw, skip=())
        return LinearWarmup(opt, warmup_steps, None, start_factor=warmup_start_factor)
    check_kwargs(where, cls.__init__, kw, skip=("self", "opt"))
    sched = cls(opt, **kw)
    if check_positive_int(warmup_steps, "warmup_steps", where, minimum=0) > 0:
        return LinearWarmup(opt, warmup_steps, sched, start_factor=warmup_start_factor)
    return sched
