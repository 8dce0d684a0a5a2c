"""The training configuration: every choice that decides how a model is trained.

A :class:`TrainConfig` is stored in every checkpoint; :meth:`TrainConfig.from_dict`
rebuilds it from JSON and names any unknown key or wrongly typed value.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

import numpy as np

from rnnkit import optim

__all__ = ["TrainConfig", "SCHEDULES", "OPTIMIZERS", "build_schedules"]

#: Schedule names ``TrainConfig.schedule`` accepts (None means a constant lr).
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
OPTIMIZERS = tuple(optim.DEFAULT_LR)

@dataclass
class TrainConfig:
    """Everything that decides how a model is trained; stored in every checkpoint.

    Length of training
        epochs: passes over ``train_batches``.
        max_steps: stop after this many optimizer steps in all (None: no limit).
        time_limit: stop after this many seconds of the current ``fit`` call (None: none).
    Optimizer
        optimizer: "sgd", "rmsprop", "adam", "adamw" or "adagrad".
        lr: learning rate; None takes the optimizer's default (``optim.DEFAULT_LR``).
        weight_decay: L2 penalty (decoupled for adamw).
        optimizer_options: further options of the optimizer class (momentum, betas, ...).
        clip_norm: rescale the gradients so their global L2 norm is at most this (None: off).
        clip_value: clip every gradient element into [-clip_value, clip_value] (None: off);
            applied before clip_norm.
    Learning-rate schedule (stepped once per optimizer step; "plateau" once per evaluation)
        schedule: None, "constant", "step", "exponential", "cosine" or "plateau".
        schedule_options: the schedule's options (step_size, gamma, T_max, factor, ...);
            "cosine" without T_max uses max_steps − warmup_steps.
        warmup_steps: linear warmup of the lr from 0 over this many steps.
    Truncated BPTT
        carry_state: pass the state returned by ``model.loss`` into the next batch
            (contiguous streams); reset to zero at every epoch start.
        tbptt_k1: windows start k1 steps apart: the state after k1 steps is carried
            (``carry_at=k1``). None: the final state. Needs carry_state.
        tbptt_k2: the window length the data was cut into; when set, a batch whose
            (time-major) ``x`` has more than k2 steps is an error.
    Validation
        val_every: also evaluate every this many steps (None: only at epoch ends).
        eval_each_epoch: also evaluate at every epoch end (False: only every val_every
            steps, so patience counts evaluations a fixed number of steps apart whatever
            the epoch size; :mod:`rnnkit.tasks.policy` plans runs that way).
        patience: stop after this many evaluations without improvement (None: never).
        min_delta: an improvement must lower the best validation loss by more than this.
        restore_best: load the best weights into the model when training ends.
    Run
        seed: seeds the data order and the model's random generators.
        quiet: no progress bar, no log lines.
        log_every: steps per log line / metrics record.
        checkpoint_every: also checkpoint every this many steps (None: at epoch ends
            and at the end only). Needs the Trainer's out_dir.
        checkpoint_share: an epoch-end checkpoint is skipped while writing it would take
            more than this share of the training time since the last one (tiny data:
            hundreds of epochs a minute, each checkpoint an fsync). None: every epoch end.
            The best weights (``model.npz``) are saved at every improvement regardless.
    """

    epochs: int = 10
    max_steps: int | None = None
    time_limit: float | None = None
    optimizer: str = "adam"
    lr: float | None = None
    weight_decay: float = 0.0
    optimizer_options: dict = field(default_factory=dict)
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    schedule: str | None = None
    schedule_options: dict = field(default_factory=dict)
    warmup_steps: int = 0
    carry_state: bool = False
    tbptt_k1: int | None = None
    tbptt_k2: int | None = None
    val_every: int | None = None
    eval_each_epoch: bool = True
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    seed: int = 0
    quiet: bool = False
    log_every: int = 50
    checkpoint_every: int | None = None
    checkpoint_share: float | None = 0.05

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        where = "TrainConfig"

        def at_least(name, minimum, strict=False):
            v = getattr(self, name)
            if v is not None and (v <= minimum if strict else v < minimum):
                raise ValueError(f"{where}: {name} must be {'>' if strict else '>='} {minimum}, got {v}")

        for name in ("epochs", "max_steps", "tbptt_k1", "tbptt_k2", "val_every", "patience",
                     "log_every", "checkpoint_every"):
            at_least(name, 1)
        for name in ("warmup_steps", "seed"):
            at_least(name, 0)
        for name in ("time_limit", "lr", "clip_norm", "clip_value", "checkpoint_share"):
            at_least(name, 0.0, strict=True)
        for name in ("weight_decay", "min_delta"):
            at_least(name, 0.0)
        for name in ("time_limit", "lr", "weight_decay", "clip_norm", "clip_value", "min_delta",
                     "checkpoint_share"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{where}: {name} must be finite, got {v}")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"{where}: optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        if self.schedule is not None and self.schedule.lower() not in SCHEDULES:
            raise ValueError(f"{where}: schedule must be None or one of {', '.join(SCHEDULES)}, "
                             f"got {self.schedule!r}")
        if self.tbptt_k1 is not None and not self.carry_state:
            raise ValueError(f"{where}: tbptt_k1 carries the state after k1 steps into the next "
                             "window; it needs carry_state=True")
        if self.tbptt_k1 is not None and self.tbptt_k2 is not None and self.tbptt_k1 > self.tbptt_k2:
            raise ValueError(f"{where}: tbptt_k1 (the advance between windows) must be <= tbptt_k2 "
                             f"(the window length), got k1={self.tbptt_k1}, k2={self.tbptt_k2}")
        for name in ("optimizer_options", "schedule_options"):
            for k in getattr(self, name):
                if not isinstance(k, str):
                    raise TypeError(f"{where}: {name} keys must be strings, got {k!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build a config from a dict (a JSON file, CLI overrides); unknown keys and
        wrong types are errors that name the key."""
        if not isinstance(d, dict):
            raise TypeError(f"TrainConfig.from_dict: expected a dict, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"TrainConfig: unknown key {unknown[0]!r}"
                             + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
                             + f"; valid keys: {', '.join(names)}")
        return cls(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()})

    def to_dict(self) -> dict:
        """A JSON-able dict; ``TrainConfig.from_dict(c.to_dict()) == c``."""
        return {f.name: (dict(getattr(self, f.name)) if isinstance(getattr(self, f.name), dict)
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (checked like ``from_dict``)."""
        d = self.to_dict()
        d.update(changes)
        return type(self).from_dict(d)


def _type_name(tp) -> str:
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _check_type(name: str, value, tp) -> None:
    """Check a config value against its annotation (int, float, str, bool, dict, X | None).

    bool is not an int here and an int is a valid float: what a JSON file or a CLI
    gives for these fields.
    """
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
    else:
        options = (tp,)
    for opt in options:
        if opt is type(None) and value is None:
            return
        if opt is bool and isinstance(value, (bool, np.bool_)):
            return
        if opt is int and isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return
        if opt is float and isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, (bool, np.bool_)):
            return
        if opt in (str, dict) and isinstance(value, opt):
            return
    expected = " or ".join(_type_name(o) for o in options)
    raise TypeError(f"TrainConfig: {name} must be {expected}, got {type(value).__name__} ({value!r:.60})")


def build_schedules(config: TrainConfig, optimizer):
    """(main schedule or None, separate warmup or None).

    A plateau schedule is stepped with validation losses, warmup once per step, so
    with both they are two objects on one optimizer; otherwise make_schedule wraps
    the warmup around the schedule.
    """
    cfg = config
    name = None if cfg.schedule is None else cfg.schedule.lower()
    opts = dict(cfg.schedule_options)
    if name == "cosine" and "T_max" not in opts:
        if cfg.max_steps is None:
            raise ValueError("TrainConfig: schedule='cosine' needs schedule_options={'T_max': ...} "
                             "or max_steps")
        opts["T_max"] = max(1, cfg.max_steps - cfg.warmup_steps)
    if name == "plateau":
        warm = (optim.make_schedule("constant", optimizer, warmup_steps=cfg.warmup_steps)
                if cfg.warmup_steps else None)
        return optim.make_schedule("plateau", optimizer, **opts), warm
    if name in (None, "constant"):
        if opts:
            raise ValueError(f"TrainConfig: schedule_options {sorted(opts)} given without a schedule")
        if cfg.warmup_steps:
            return optim.make_schedule("constant", optimizer, warmup_steps=cfg.warmup_steps), None
        return None, None
    return optim.make_schedule(name, optimizer, warmup_steps=cfg.warmup_steps, **opts), None
