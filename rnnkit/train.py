r"""The one Trainer for every model: (truncated) BPTT, clipping, validation, checkpoints.

One optimizer step per batch::

    loss, count, state = model.loss(batch, state=carried, carry_at=k1)   # forward
    model.backward()                                                     # BPTT
    clip_grad_value(grads, clip_value); N = clip_grad_norm(grads, clip_norm)
    optimizer.step(grads); schedule.step()

Full BPTT is ``carry_state=False`` with whole sequences in each batch: every batch
starts from a zero state and gradients flow through all of its steps.

Truncated BPTT(k1, k2) (Williams & Peng 1990) is ``carry_state=True`` over a
contiguous stream cut into time-major windows of k2 steps that start k1 ≤ k2 steps
apart (``rnnkit.data.text.stream_batches(ids, B, seq_len=k2, k1=k1)`` builds them
and masks the k2 − k1 overlapping targets). The state after k1 steps of one window
is the initial state of the next (``carry_at=k1``; with k1 = k2 the final state), so
the forward pass sees the whole stream while each backward pass runs k2 steps. The
carried state holds no gradient path and is reset to zero at each epoch start.

Validation runs every ``val_every`` steps and at each epoch end; the best
validation loss keeps a copy of the weights (restored at the end with
``restore_best``, and written to ``out_dir/best``). Early stopping ends training
after ``patience`` evaluations without an improvement of more than ``min_delta``.

Reproducibility and resume. Every random draw is seeded from ``config.seed``: the
data order of epoch e comes from ``default_rng([seed, e])`` (given to
``train_batches(e, rng)``), and every ``np.random.Generator`` the model holds
(dropout masks) is reseeded from ``(seed, its attribute path)`` when a fresh run
starts. A checkpoint stores the weights, optimizer and schedule state, step, epoch,
batches done in the epoch, the carried state, the generators' states, the best
weights and the history; resuming rebuilds epoch e's batches from the same rng,
skips the ones already trained on and continues, so N steps + resume to 2N gives
the same weights, bit for bit, as 2N steps in one go.

Files in ``out_dir`` (see :mod:`rnnkit.io`): ``config.json``, ``model.npz``
(weights at the last save), ``trainer.json`` + ``trainer.npz`` (the rest of the
state), ``metrics.jsonl`` (one line per log interval and per evaluation) and
``best/`` (``config.json`` + ``model.npz`` of the best validation loss).

Stopping. Training ends after ``epochs`` epochs, ``max_steps`` steps (counted over
resumes) or ``time_limit`` seconds of this call, or by early stopping; each writes
a final checkpoint. A NaN or inf loss or gradient norm raises
:class:`~rnnkit.errors.DivergenceError` naming the step, epoch and batch, before
the optimizer touches the weights and without writing a checkpoint, so the last
good one stays on disk as it was. Ctrl-C (KeyboardInterrupt) saves a checkpoint of
the last completed step and ``fit`` *returns* normally with
``history.interrupted = True`` (``stop_reason == "interrupted"``); the optimizer
update itself is shielded from Ctrl-C so a checkpoint never holds a half-applied step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
import types
import typing
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from rnnkit import io as rkio
from rnnkit import optim
from rnnkit.errors import CheckpointError, DivergenceError, RnnkitError
from rnnkit.grad_mode import no_grad
from rnnkit.module import Module

__all__ = ["TrainConfig", "History", "Trainer", "SCHEDULES"]

#: Schedule names ``TrainConfig.schedule`` accepts (None means a constant lr).
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
OPTIMIZERS = tuple(optim.DEFAULT_LR)
BEST_DIR = "best"
METRICS_FILE = "metrics.jsonl"
_STATE_VERSION = 1


# -- the config -----------------------------------------------------------------------

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
        patience: stop after this many evaluations without improvement (None: never).
        min_delta: an improvement must lower the best validation loss by more than this.
        restore_best: load the best weights into the model when training ends.
    Run
        seed: seeds the data order and the model's random generators.
        quiet: no progress bar, no log lines.
        log_every: steps per log line / metrics record.
        checkpoint_every: also checkpoint every this many steps (None: at epoch ends
            and at the end only). Needs the Trainer's out_dir.
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
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    seed: int = 0
    quiet: bool = False
    log_every: int = 50
    checkpoint_every: int | None = None

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
        for name in ("time_limit", "lr", "clip_norm", "clip_value"):
            at_least(name, 0.0, strict=True)
        for name in ("weight_decay", "min_delta"):
            at_least(name, 0.0)
        for name in ("time_limit", "lr", "weight_decay", "clip_norm", "clip_value", "min_delta"):
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


# -- the history ----------------------------------------------------------------------

@dataclass
class History:
    """What ``fit`` returns: the metrics records and how training ended.

    ``records`` are the lines of ``metrics.jsonl``: dicts with ``event`` ("train" for a
    log interval, "val" for an evaluation), ``step``, ``epoch`` (1-based, the epoch the
    step belongs to), ``train_loss``, ``val_loss``, ``grad_norm`` (mean global norm
    before clipping over the interval), ``clipped`` (fraction of steps clipped),
    ``lr``, ``items_per_sec``, ``elapsed`` (seconds of training over all resumes);
    keys that do not apply are None. ``stop_reason`` is one of "epochs",
    "max_steps", "time_limit", "early_stopping", "interrupted".
    """

    records: list = field(default_factory=list)
    step: int = 0
    epochs_completed: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    stop_reason: str | None = None
    interrupted: bool = False

    def train_loss(self) -> list[tuple[int, float]]:
        """(step, mean training loss over the log interval ending there)."""
        return [(r["step"], r["train_loss"]) for r in self.records if r["event"] == "train"]

    def val_loss(self) -> list[tuple[int, float]]:
        """(step, validation loss) for every evaluation."""
        return [(r["step"], r["val_loss"]) for r in self.records if r["event"] == "val"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# -- helpers --------------------------------------------------------------------------

class _DeferInterrupt:
    """Hold Ctrl-C (SIGINT) back until the block ends, then raise KeyboardInterrupt.

    Used around the optimizer update and checkpoint writes so an interrupt never
    leaves weights, optimizer state and step counter out of step. Only the main
    thread can install signal handlers; elsewhere the block runs unshielded.
    """

    def __enter__(self):
        self.pending = False
        self.old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            if old is not None:  # None: a handler not installed from Python; leave it alone
                self.old = old
                signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pending = True

    def __exit__(self, exc_type, exc, tb):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        if self.pending and exc_type is None:
            raise KeyboardInterrupt
        return False


def _with_context(exc: BaseException, context: str) -> BaseException:
    """The same exception type with ``context`` (the step) in front of its message."""
    try:
        new = type(exc)(f"{context}: {exc}")
    except Exception:  # an exception class whose constructor wants more than a message
        return exc
    for attr in ("step", "epoch", "batch"):
        if hasattr(exc, attr):
            setattr(new, attr, getattr(exc, attr))
    return new


def _model_generators(model: Module) -> dict[str, np.random.Generator]:
    """Every np.random.Generator the model holds, by attribute path (``rnn._dropout_rng``).

    Walks the module tree (children, module attributes, dicts/lists of them) in
    attribute order, so the paths are the same for every model built the same way.
    """
    found: dict[str, np.random.Generator] = {}
    seen: set[int] = set()

    def walk(obj, path):
        if id(obj) in seen:
            return
        if isinstance(obj, np.random.Generator):
            seen.add(id(obj))
            found[path] = obj
        elif isinstance(obj, Module):
            seen.add(id(obj))
            for name, value in vars(obj).items():
                walk(value, f"{path}.{name}" if path else name)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, (Module, np.random.Generator)):
                    walk(v, f"{path}[{k}]")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                if isinstance(v, (Module, np.random.Generator)):
                    walk(v, f"{path}[{i}]")

    walk(model, "")
    return found


def _is_one_shot(obj) -> bool:
    return isinstance(obj, typing.Iterator)


def _train_source(batches, name: str) -> Callable[[int, np.random.Generator], Iterable]:
    """``batches`` as a function (epoch, rng) -> iterable of batch dicts."""
    if isinstance(batches, (list, tuple)):
        return lambda epoch, rng: batches
    if _is_one_shot(batches):
        raise TypeError(f"{name} is a one-shot iterator (a generator?) and would be used up after "
                        "one epoch; pass a list of batches or a function (epoch, rng) -> batches")
    if callable(batches):
        return batches
    raise TypeError(f"{name} must be a list of batch dicts or a function (epoch, rng) -> batches, "
                    f"got {type(batches).__name__}")


def _val_source(batches, name: str) -> Callable[[], Iterable]:
    """``batches`` as a function () -> iterable of batch dicts."""
    if isinstance(batches, (list, tuple)):
        return lambda: batches
    if _is_one_shot(batches):
        raise TypeError(f"{name} is a one-shot iterator (a generator?) and would be used up after "
                        "one evaluation; pass a list of batches or a function () -> batches")
    if callable(batches):
        return batches
    raise TypeError(f"{name} must be a list of batch dicts or a function () -> batches, "
                    f"got {type(batches).__name__}")


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


# -- the trainer ----------------------------------------------------------------------

class Trainer:
    """Trains any model that follows the model contract (see DESIGN.md).

    ``Trainer(model, config, out_dir)`` builds the optimizer and schedule at once
    (``trainer.optimizer``, ``trainer.schedule``); :meth:`fit` trains;
    :meth:`resume` / ``fit(..., resume=True)`` continue from ``out_dir``.
    ``config`` may be a :class:`TrainConfig`, a dict (checked by ``from_dict``) or None.
    """

    def __init__(self, model: Module, config: TrainConfig | dict | None = None, out_dir=None):
        where = "Trainer"
        for attr in ("loss", "backward", "params", "grads", "config"):
            if not hasattr(model, attr):
                raise TypeError(f"{where}: model must follow the model contract (loss, backward, "
                                f"params, grads, config); {type(model).__name__} has no {attr!r}")
        if config is None:
            config = TrainConfig()
        elif isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        elif not isinstance(config, TrainConfig):
            raise TypeError(f"{where}: config must be a TrainConfig, a dict or None, got "
                            f"{type(config).__name__}")
        self.model = model
        self.config = config
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        if config.checkpoint_every is not None and self.out_dir is None:
            raise ValueError(f"{where}: checkpoint_every needs an out_dir to write checkpoints to")
        self._params = model.params   # live arrays: a dict taken once stays valid
        opts = dict(config.optimizer_options)
        if config.weight_decay and "weight_decay" in opts:
            raise ValueError(f"{where}: weight_decay is given twice (the field and optimizer_options)")
        if config.weight_decay:
            opts["weight_decay"] = config.weight_decay
        self.optimizer = optim.make_optimizer(config.optimizer, self._params, lr=config.lr, **opts)
        self.schedule, self.warmup = self._build_schedules()
        self._generators = _model_generators(model)
        # training state (all of it goes into a checkpoint)
        self.step = 0                  # optimizer steps done
        self.epoch = 0                 # epochs completed = 0-based index of the current one
        self.batch_in_epoch = 0        # batches of the current epoch trained on
        self._epoch_finished = False   # all batches of self.epoch done, end-of-epoch work pending
        self._eval_due = False         # an evaluation is owed for the current step
        self._last_eval_step = -1
        self._carry = None
        self.best_val_loss: float | None = None
        self.best_step: int | None = None
        self._best_params: dict[str, np.ndarray] | None = None
        self._bad_evals = 0
        self._elapsed_before = 0.0
        self.history = History()
        self._bar = None
        self._fit_start = None
        self._started = False          # False until a fresh fit or a resume set things up

    # -- construction helpers ------------------------------------------------------------
    def _build_schedules(self):
        """(main schedule or None, separate warmup or None).

        A plateau schedule is stepped with validation losses, warmup once per step, so
        with both they are two objects on one optimizer; otherwise make_schedule wraps
        the warmup around the schedule.
        """
        cfg = self.config
        name = None if cfg.schedule is None else cfg.schedule.lower()
        opts = dict(cfg.schedule_options)
        if name == "cosine" and "T_max" not in opts:
            if cfg.max_steps is None:
                raise ValueError("TrainConfig: schedule='cosine' needs schedule_options={'T_max': ...} "
                                 "or max_steps")
            opts["T_max"] = max(1, cfg.max_steps - cfg.warmup_steps)
        if name == "plateau":
            warm = (optim.make_schedule("constant", self.optimizer, warmup_steps=cfg.warmup_steps)
                    if cfg.warmup_steps else None)
            return optim.make_schedule("plateau", self.optimizer, **opts), warm
        if name in (None, "constant"):
            if opts:
                raise ValueError(f"TrainConfig: schedule_options {sorted(opts)} given without a schedule")
            if cfg.warmup_steps:
                return optim.make_schedule("constant", self.optimizer, warmup_steps=cfg.warmup_steps), None
            return None, None
        return optim.make_schedule(name, self.optimizer, warmup_steps=cfg.warmup_steps, **opts), None

    @property
    def _plateau(self) -> bool:
        return self.config.schedule is not None and self.config.schedule.lower() == "plateau"

    # -- public API --------------------------------------------------------------------
    @classmethod
    def resume(cls, out_dir, model: Module | None = None, **overrides) -> "Trainer":
        """A Trainer restored from the checkpoint in ``out_dir``, ready to ``fit`` on.

        ``model`` defaults to ``rnnkit.models.build(config)`` from the checkpoint's
        ``config.json``; the training config is the saved one with ``overrides``
        applied (e.g. ``max_steps=2000`` to train further).
        """
        ckpt = rkio.load_checkpoint(out_dir)
        state = ckpt.training_state
        if not isinstance(state, dict) or "train_config" not in state:
            raise CheckpointError(f"{out_dir}: holds no training state to resume from "
                                  "(a model-only checkpoint?)")
        config = TrainConfig.from_dict({**state["train_config"], **overrides})
        if model is None:
            from rnnkit import models  # the model zoo; only needed to rebuild from config.json
            model = models.build(ckpt.config)
        rkio.check_arrays(ckpt.arrays, model, os.path.join(os.fspath(out_dir), rkio.MODEL_FILE))
        trainer = cls(model, config, out_dir)
        trainer._restore(ckpt)
        return trainer

    def fit(self, train_batches, val_batches=None, resume: bool = False) -> History:
        """Train; returns the :class:`History` (also kept as ``self.history``).

        ``train_batches``: a list of batch dicts (used in this order every epoch) or a
        function ``(epoch, rng) -> iterable of batch dicts`` called once per epoch with
        the 0-based epoch and a Generator seeded from (seed, epoch) — shuffle with it,
        and the order is reproducible and resumable. ``val_batches``: a list or a
        function ``() -> iterable``. ``resume=True`` first restores ``out_dir``'s
        checkpoint (an error if there is none). A fit on a trainer that already
        trained continues where it stopped.
        """
        cfg = self.config
        train_source = _train_source(train_batches, "train_batches")
        val_source = None if val_batches is None else _val_source(val_batches, "val_batches")
        if val_source is None:
            for name, needs in (("patience", cfg.patience is not None), ("val_every", cfg.val_every is not None),
                                ("schedule='plateau'", self._plateau)):
                if needs:
                    raise ValueError(f"Trainer.fit: {name} needs val_batches to evaluate on")
        if resume:
            if self.out_dir is None:
                raise ValueError("Trainer.fit: resume=True needs the Trainer's out_dir")
            if not rkio.is_checkpoint(self.out_dir):
                raise CheckpointError(f"{self.out_dir}: no checkpoint to resume from (config.json missing)")
            self._restore(rkio.load_checkpoint(self.out_dir, expected=self.model))
        elif not self._started:
            self._start_fresh()

        self.history.stop_reason = None
        self.history.interrupted = False
        self._fit_start = time.perf_counter()
        self._reset_interval()
        self._open_progress()
        try:
            reason = self._loop(train_source, val_source)
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            self._close_progress()
        self._flush_interval()
        self._elapsed_before, self._fit_start = self._elapsed(), None
        self.history.stop_reason = reason
        self.history.interrupted = reason == "interrupted"
        self._sync_history()
        if self.out_dir is not None:
            with _DeferInterrupt():
                self.save()
        if cfg.restore_best and self._best_params is not None and not self._last_steps_best(reason, val_source):
            self.model.load_state_dict(self._best_params)
        self._say_done(reason)
        return self.history

    def _last_steps_best(self, reason: str, val_source) -> bool:
        """Whether the weights a step or time limit stopped at beat the best evaluated ones.

        A limit can stop training between evaluations; restoring the best weights then
        would throw away the steps since the last evaluation even when they helped. This
        extra evaluation only picks the weights to keep: it changes no training state, so
        a resumed run goes on exactly as an uninterrupted one would.
        """
        if val_source is None or reason not in ("max_steps", "time_limit") or self._last_eval_step == self.step:
            return False
        return self.evaluate(val_source) < self.best_val_loss

    def evaluate(self, batches) -> float:
        """Mean loss over ``batches`` (a list or a function () -> iterable), in eval mode.

        The mean is weighted by each batch's item count; with ``carry_state`` the state
        is carried across the batches (starting from zero), as in training.
        """
        source = _val_source(batches, "batches")
        cfg = self.config
        was_training = self.model.training
        self.model.eval()
        total, count, carry = 0.0, 0, None
        try:
            with no_grad():                # forward only: the recurrent layers keep no caches
                for i, batch in enumerate(source()):
                    self._check_batch(batch, f"validation batch {i + 1}")
                    loss, n, state = self.model.loss(batch, state=carry if cfg.carry_state else None,
                                                     carry_at=self._carry_at(batch))
                    n = int(n)
                    total += float(loss) * n
                    count += n
                    carry = state if cfg.carry_state else None
        finally:
            self.model.train(was_training)
        if count == 0:
            raise RnnkitError("evaluate: the validation batches hold no items (no batches, or all masked)")
        return total / count

    def save(self, directory=None) -> str:
        """Write a full checkpoint (resumable) to ``directory`` (default: ``out_dir``)."""
        directory = self.out_dir if directory is None else os.fspath(directory)
        if directory is None:
            raise ValueError("Trainer.save: no directory given and the Trainer has no out_dir")
        return rkio.save_checkpoint(directory, self.model.config(), self.model.state_dict(),
                                    self.state_dict(), meta={"kind": "resume", "step": self.step})

    def state_dict(self) -> dict:
        """The training state as a tree of JSON values and numeric arrays (see io.encode_state)."""
        return {
            "version": _STATE_VERSION,
            "train_config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_finished": self._epoch_finished,
            "eval_due": self._eval_due,
            "last_eval_step": self._last_eval_step,
            "optimizer": {"name": self.config.optimizer.lower(), "state": self.optimizer.state_dict()},
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "warmup": None if self.warmup is None else self.warmup.state_dict(),
            "generators": {k: g.bit_generator.state for k, g in self._generators.items()},
            "carry": self._carry,
            "best": {"val_loss": self.best_val_loss, "step": self.best_step,
                     "bad_evals": self._bad_evals,
                     "params": None if self._best_params is None else dict(self._best_params)},
            "elapsed": self._elapsed(),
            "history": self.history.to_dict(),
        }

    # -- state restore -------------------------------------------------------------------
    def _start_fresh(self) -> None:
        """Seed the model's generators from (seed, path) and clear files of an older run."""
        for path, gen in self._generators.items():
            bg = gen.bit_generator
            fresh = type(bg)(np.random.SeedSequence([self.config.seed, zlib.crc32(path.encode())]))
            bg.state = fresh.state
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
            rkio.atomic_write(os.path.join(self.out_dir, METRICS_FILE), lambda f: None)
            best = os.path.join(self.out_dir, BEST_DIR)
            for name in (rkio.CONFIG_FILE, rkio.MODEL_FILE, rkio.TRAINER_JSON, rkio.TRAINER_NPZ):
                try:
                    os.unlink(os.path.join(best, name))
                except FileNotFoundError:
                    pass
        self._started = True

    def _restore(self, ckpt: rkio.Checkpoint) -> None:
        """Load weights and the full training state from a checkpoint."""
        where = ckpt.directory
        s = ckpt.training_state
        version = s.get("version") if isinstance(s, dict) else None
        if version != _STATE_VERSION:
            raise CheckpointError(f"{where}: holds no training state this version can resume from "
                                  f"(a model-only checkpoint, or training-state version {version!r})")
        try:
            saved_opt = s["optimizer"]["name"]
            if saved_opt != self.config.optimizer.lower():
                raise CheckpointError(f"{where}: the checkpoint was trained with optimizer {saved_opt!r}, "
                                      f"this config uses {self.config.optimizer!r}")
            for key, sched in (("schedule", self.schedule), ("warmup", self.warmup)):
                if (s[key] is None) != (sched is None):
                    raise CheckpointError(f"{where}: the checkpoint {'has' if s[key] is not None else 'has no'} "
                                          f"{key} state but this config {'has no' if sched is None else 'has a'} {key}")
            gens = s["generators"]
            if set(gens) != set(self._generators):
                raise CheckpointError(f"{where}: the checkpoint has random generators {sorted(gens)}, "
                                      f"the model has {sorted(self._generators)}")
            self.model.load_state_dict(ckpt.arrays)
            self.optimizer.load_state_dict(s["optimizer"]["state"])
            if self.schedule is not None:
                self.schedule.load_state_dict(s["schedule"])
            if self.warmup is not None:
                self.warmup.load_state_dict(s["warmup"])
            for path, state in gens.items():
                self._generators[path].bit_generator.state = state
            self.step = int(s["step"])
            self.epoch = int(s["epoch"])
            self.batch_in_epoch = int(s["batch_in_epoch"])
            self._epoch_finished = bool(s["epoch_finished"])
            self._eval_due = bool(s["eval_due"])
            self._last_eval_step = int(s["last_eval_step"])
            self._carry = s["carry"]
            best = s["best"]
            self.best_val_loss = best["val_loss"]
            self.best_step = best["step"]
            self._bad_evals = int(best["bad_evals"])
            self._best_params = None if best["params"] is None else {k: np.array(v) for k, v in best["params"].items()}
            self._elapsed_before = float(s["elapsed"])
            self.history = History.from_dict(s["history"])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise CheckpointError(f"{where}: training state does not fit this trainer: {msg}") from exc
        if self.out_dir is not None:
            # metrics.jsonl mirrors the history: lines written after this checkpoint are
            # dropped, since the steps they describe will run (and be logged) again
            lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.history.records)
            rkio.atomic_write(os.path.join(self.out_dir, METRICS_FILE), lambda f: f.write(lines.encode("utf-8")))
        self._started = True

    # -- the loop --------------------------------------------------------------------------
    def _limit_reached(self) -> str | None:
        cfg = self.config
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_limit is not None and time.perf_counter() - self._fit_start >= cfg.time_limit:
            return "time_limit"
        return None

    def _early_stop(self) -> bool:
        return self.config.patience is not None and self._bad_evals >= self.config.patience

    def _loop(self, train_source, val_source) -> str:
        cfg = self.config
        while True:
            if self._eval_due:
                self._evaluate_and_record(val_source)
            if self._early_stop():
                return "early_stopping"
            if self._epoch_finished:
                self._end_epoch()
            if self.epoch >= cfg.epochs:
                return "epochs"
            reason = self._limit_reached()
            if reason:
                return reason
            rng = np.random.default_rng([cfg.seed, self.epoch])
            try:
                iterator = iter(train_source(self.epoch, rng))
            except (ValueError, TypeError, RnnkitError) as exc:
                raise _with_context(exc, f"epoch {self.epoch + 1}: building the training batches") from exc
            index = 0
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except (ValueError, TypeError, RnnkitError) as exc:
                    raise _with_context(exc, f"epoch {self.epoch + 1}, batch {index + 1}: reading the "
                                             "training batches") from exc
                if index >= self.batch_in_epoch:   # earlier ones were trained on before a resume
                    reason = self._limit_reached()
                    if reason:
                        return reason
                    self._train_step(batch, index)
                    if self._eval_due:
                        self._evaluate_and_record(val_source)
                        if self._early_stop():
                            return "early_stopping"
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        with _DeferInterrupt():
                            self.save()
                index += 1
            if index == 0:
                raise RnnkitError(f"train_batches gave no batches for epoch {self.epoch + 1}")
            if index < self.batch_in_epoch:
                raise RnnkitError(f"train_batches gave {index} batches for epoch {self.epoch + 1}, but "
                                  f"the checkpoint had already trained on {self.batch_in_epoch}: the "
                                  "data changed since the checkpoint was written")
            with _DeferInterrupt():
                self._epoch_finished = True
                self._eval_due = val_source is not None and self._last_eval_step != self.step

    def _end_epoch(self) -> None:
        self._flush_interval()
        with _DeferInterrupt():
            self.epoch += 1
            self.batch_in_epoch = 0
            self._carry = None
            self._epoch_finished = False
        self._sync_history()
        if self.out_dir is not None:
            with _DeferInterrupt():
                self.save()

    def _check_batch(self, batch, what: str) -> None:
        if not isinstance(batch, dict):
            raise TypeError(f"{what}: expected a dict of arrays (e.g. {{'x': ..., 'y': ...}}), "
                            f"got {type(batch).__name__}")
        k2 = self.config.tbptt_k2
        x = batch.get("x")
        if k2 is not None and isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] > k2:
            raise ValueError(f"{what}: x has {x.shape[0]} time steps (time-major), more than "
                             f"tbptt_k2={k2}; cut the stream into windows of k2 steps")

    def _carry_at(self, batch) -> int | None:
        """k1 when it is shorter than the window (time-major x), else None (the final state)."""
        k1 = self.config.tbptt_k1
        if k1 is None or not self.config.carry_state:
            return None
        x = batch.get("x")
        T = x.shape[0] if isinstance(x, np.ndarray) and x.ndim >= 1 else None
        return k1 if T is None or k1 < T else None

    def _train_step(self, batch, index: int) -> None:
        cfg = self.config
        n = self.step + 1
        context = f"step {n} (epoch {self.epoch + 1}, batch {index + 1})"
        t0 = time.perf_counter()
        try:
            self._check_batch(batch, "training batch")
            self.model.train()
            self.model.zero_grad()
            state_in = self._carry if cfg.carry_state else None
            loss, count, state_out = self.model.loss(batch, state=state_in, carry_at=self._carry_at(batch))
            loss, count = float(loss), int(count)
            if not math.isfinite(loss):
                self._diverged(n, index, f"the loss is {loss}")
            self.model.backward()
            grads = self.model.grads
            raw_norm = None
            if cfg.clip_value is not None:
                raw_norm = math.sqrt(sum(v * v for v in optim.grad_norms(grads).values()))
                optim.clip_grad_value(grads, cfg.clip_value)
            if cfg.clip_norm is not None:
                norm = optim.clip_grad_norm(grads, cfg.clip_norm)
            else:
                norm = math.sqrt(sum(v * v for v in optim.grad_norms(grads).values()))
            if raw_norm is None:
                raw_norm = norm
            if not (math.isfinite(norm) and math.isfinite(raw_norm)):
                self._diverged(n, index, f"the gradient norm is {raw_norm if not math.isfinite(raw_norm) else norm}")
        except (DivergenceError, KeyboardInterrupt):
            raise
        except (ValueError, TypeError, RnnkitError) as exc:
            raise _with_context(exc, context) from exc
        clipped = (cfg.clip_norm is not None and norm > cfg.clip_norm) or \
                  (cfg.clip_value is not None and raw_norm != norm)
        with _DeferInterrupt():
            lr = self.optimizer.lr
            self.optimizer.step(grads)
            if self.warmup is not None:
                self.warmup.step()
            if self.schedule is not None and not self._plateau:
                self.schedule.step()
            self.step = n
            self.batch_in_epoch = index + 1
            self._carry = state_out if cfg.carry_state else None
            if cfg.val_every is not None and n % cfg.val_every == 0:
                self._eval_due = True
        dt = time.perf_counter() - t0
        iv = self._interval
        iv["loss"] += loss * count
        iv["count"] += count
        iv["norm"] += raw_norm
        iv["clipped"] += int(clipped)
        iv["steps"] += 1
        iv["time"] += dt
        iv["lr"] = lr
        self._progress(loss, raw_norm, count / dt if dt > 0 else None)
        if n % cfg.log_every == 0:
            self._flush_interval()

    def _diverged(self, step: int, index: int, what: str):
        where = (f" Training state in {self.out_dir} is left as of step {self._saved_step()}."
                 if self.out_dir is not None else "")
        err = DivergenceError(f"training diverged at step {step} (epoch {self.epoch + 1}, batch {index + 1}): "
                              f"{what}; the weights were not updated.{where} Lower the learning rate, "
                              "clip gradients (clip_norm) or check the data for NaN/inf")
        err.step, err.epoch, err.batch = step, self.epoch + 1, index + 1
        self._record({"event": "diverged", "step": step, "epoch": self.epoch + 1})
        raise err

    def _saved_step(self):
        path = os.path.join(self.out_dir, rkio.CONFIG_FILE)
        try:
            return rkio.load_json(path).get("meta", {}).get("step", "?")
        except (CheckpointError, AttributeError):
            return "? (no checkpoint yet)"

    def _evaluate_and_record(self, val_source) -> None:
        cfg = self.config
        t0 = time.perf_counter()
        val = self.evaluate(val_source)
        if not math.isfinite(val):
            raise DivergenceError(f"validation loss is {val} at step {self.step} (epoch {self.epoch + 1})")
        improved = self.best_val_loss is None or val < self.best_val_loss - cfg.min_delta
        with _DeferInterrupt():
            if improved:
                self.best_val_loss, self.best_step, self._bad_evals = val, self.step, 0
                self._best_params = self.model.state_dict()
            else:
                self._bad_evals += 1
            warming = self.warmup is not None and self.warmup.last_step < self.warmup.warmup_steps
            if self._plateau and not warming:
                self.schedule.step(val)
            self._last_eval_step = self.step
            self._eval_due = False
        self._interval["eval_time"] += time.perf_counter() - t0
        self._record({"event": "val", "step": self.step, "epoch": self.epoch + 1, "val_loss": val,
                      "best_val_loss": self.best_val_loss, "lr": self.optimizer.lr})
        self._sync_history()
        if improved and self.out_dir is not None:
            with _DeferInterrupt():
                rkio.save_checkpoint(os.path.join(self.out_dir, BEST_DIR), self.model.config(),
                                     self._best_params, None,
                                     meta={"kind": "best", "step": self.step, "val_loss": val})
        self._log(f"step {self.step} | epoch {self.epoch + 1} | val_loss {val:.4f} | "
                  f"best {self.best_val_loss:.4f} (step {self.best_step})")

    # -- logging ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        start = self._fit_start
        return self._elapsed_before + (0.0 if start is None else time.perf_counter() - start)

    def _sync_history(self) -> None:
        h = self.history
        h.step, h.epochs_completed = self.step, self.epoch
        h.best_val_loss, h.best_step = self.best_val_loss, self.best_step

    def _reset_interval(self) -> None:
        self._interval = {"loss": 0.0, "count": 0, "norm": 0.0, "clipped": 0, "steps": 0,
                          "time": 0.0, "eval_time": 0.0, "lr": None}

    def _record(self, rec: dict) -> None:
        full = {"event": None, "step": None, "epoch": None, "train_loss": None, "val_loss": None,
                "grad_norm": None, "clipped": None, "lr": None, "items_per_sec": None}
        full.update(rec)
        full["elapsed"] = round(self._elapsed(), 3)
        full = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in full.items()}
        self.history.records.append(full)
        if self.out_dir is not None:
            rkio.append_jsonl(os.path.join(self.out_dir, METRICS_FILE), full)

    def _flush_interval(self) -> None:
        iv = self._interval
        if iv["steps"] == 0:
            return
        rec = {"event": "train", "step": self.step, "epoch": self.epoch + 1,
               "train_loss": iv["loss"] / max(iv["count"], 1), "grad_norm": iv["norm"] / iv["steps"],
               "clipped": iv["clipped"] / iv["steps"], "lr": iv["lr"],
               "items_per_sec": iv["count"] / iv["time"] if iv["time"] > 0 else None}
        self._record(rec)
        if self._bar is None:
            self._log(f"step {self.step}" + (f"/{self.config.max_steps}" if self.config.max_steps else "")
                      + f" | epoch {self.epoch + 1}/{self.config.epochs} | loss {rec['train_loss']:.4f} | "
                      f"grad {rec['grad_norm']:.3g} | lr {rec['lr']:.2e} | "
                      f"{_fmt(rec['items_per_sec'], ',.0f')} items/s | {self._elapsed():.1f}s")
        self._reset_interval()

    def _log(self, line: str) -> None:
        if self.config.quiet:
            return
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def _open_progress(self) -> None:
        """A tqdm bar on a terminal; plain log lines otherwise (files, CI, notebooks' logs)."""
        self._bar = None
        if self.config.quiet:
            return
        cfg = self.config
        print(f"training {type(self.model).__name__} ({self.model.num_parameters():,} parameters) "
              f"from step {self.step}: " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()),
              file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            from tqdm.auto import tqdm
            self._bar = tqdm(total=cfg.max_steps, initial=self.step, unit="step", file=sys.stderr,
                             dynamic_ncols=True, leave=True)

    def _progress(self, loss: float, norm: float, rate) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}", grad=f"{norm:.3g}",
                                  items_s=_fmt(rate, ",.0f"), refresh=False)

    def _close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def _say_done(self, reason: str) -> None:
        best = (f"; best val_loss {self.best_val_loss:.4f} at step {self.best_step}"
                if self.best_val_loss is not None else "")
        where = f"; checkpoint in {self.out_dir}" if self.out_dir is not None else ""
        if reason == "interrupted":
            how = (f" — resume with Trainer.resume({self.out_dir!r}) or fit(..., resume=True)"
                   if self.out_dir is not None else " (no out_dir: nothing saved)")
            self._log(f"interrupted at step {self.step}{where}{how}")
        else:
            self._log(f"stopped ({reason}) at step {self.step}{best}{where}")
