r"""The training-budget policy every job uses: how many optimizer steps, when to validate,
how patient to be and how the learning rate moves — counted in steps, never in epochs.

An epoch is a poor unit: 20 epochs are 40 steps on a 40-series data set and a million
on a large corpus. A job states its data size (items, batch size) and, optionally, a
wall-time limit; the policy measures one training step and plans

    steps S     = max(min_steps, min(epochs_cap · batches_per_epoch, max_steps_cap)),
                  and with a time limit no more than fit in the time (the measured
                  step time, plus a share for validation), at least one — a limit
                  too short for a single step is an error that says so
    val_every   = ⌈S / evals⌉ steps (evals = 25 validations over the run)
    patience    = ⌈patience_fraction · evals⌉ validations without improvement
    warm-up     = ⌈warmup_fraction · S⌉ steps of linear warm-up from 0 to lr
    schedule    = cosine decay from lr to 0 over the remaining S − warm-up steps

and the best weights (by validation loss) are restored at the end. A timed run
re-plans S as it goes from the pace it measures (:class:`Pace`; ``pace=False`` keeps the
plan): one probe step is a poor estimate on a busy machine, or once the load changes. A refit (train on
train + validation after model selection) reuses the same plan with S set to the
selected step count, scaled by how much more data it sees.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rnnkit.distributed import agree
from rnnkit.errors import RnnkitError
from rnnkit.train.callbacks import Callback

__all__ = ["Budget", "Pace", "plan_budget", "time_step", "train_config", "PROBE_CALLS", "MIN_VAL_ITEMS"]

#: forward/backward passes :func:`time_step` makes to time one step (one untimed, two timed)
PROBE_CALLS = 3
#: the fewest validation items that can pick a step count (fewer: no early stopping, no refit)
MIN_VAL_ITEMS = 40


@dataclass
class Budget:
    """A planned run: optimizer steps, validation interval and patience (in validations),
    warm-up steps; ``step_seconds`` is the measured time of one step (None if unmeasured)."""

    steps: int
    val_every: int
    patience: int
    warmup_steps: int
    step_seconds: float | None = None


def time_step(model, batch, repeats: int = PROBE_CALLS - 1) -> float:
    """Seconds of one training step (forward, backward) on ``batch``, the lower of
    ``repeats`` timings after one untimed call; the gradients are zeroed afterwards and
    the weights are left untouched. Data parallel, a collective call: every rank gets
    rank 0's timing (:func:`rnnkit.distributed.agree`)."""
    model.train()
    best = math.inf
    for i in range(repeats + 1):
        model.zero_grad()
        t0 = time.perf_counter()
        model.loss(batch)
        model.backward()
        if i:
            best = min(best, time.perf_counter() - t0)
    model.zero_grad()
    # the optimizer update and clipping add roughly one pass over the parameters; data
    # parallel, rank 0's timing, so that every rank plans the same run
    return agree(best * 1.1)


def plan_budget(n_items: int, batch_size: int, *, time_limit: float | None = None,
                step_seconds: float | None = None, min_steps: int = 600, epochs_cap: int = 400,
                max_steps_cap: int = 20000, evals: int = 25, patience_fraction: float = 0.4,
                warmup_fraction: float = 0.03, eval_share: float = 0.15, where: str = "fit") -> Budget:
    """The steps, validation interval, patience and warm-up of one run (module docstring).

    The step count is ``min_steps`` ≤ epochs_cap epochs ≤ ``max_steps_cap``; with
    ``time_limit`` (seconds for this run) and ``step_seconds`` (from :func:`time_step`)
    no more than fit in the time after ``eval_share`` of it is left to validation.
    """
    per_epoch = max(1, -(-n_items // max(1, batch_size)))
    if time_limit is not None and step_seconds is not None:
        if step_seconds > time_limit:
            raise RnnkitError(f"{where}: time_limit leaves {time_limit:.3g}s to train in, too short for one "
                              f"training step ({step_seconds:.3g}s measured on this machine); raise the time "
                              f"limit or make the model smaller")
    steps = max(min_steps, min(epochs_cap * per_epoch, max_steps_cap))
    if time_limit is not None and step_seconds is not None:
        # the time is an upper bound: small data do not gain from more passes than the plan
        steps = max(1, min(steps, int(time_limit * (1.0 - eval_share) / step_seconds)))
    val_every = max(1, -(-steps // evals))
    patience = max(2, math.ceil(patience_fraction * evals))
    warmup = min(steps - 1, math.ceil(warmup_fraction * steps)) if steps > 1 else 0
    return Budget(steps=steps, val_every=val_every, patience=patience, warmup_steps=max(0, warmup),
                  step_seconds=step_seconds)


def train_config(budget: Budget, *, lr: float, time_limit: float | None, has_validation: bool, seed: int,
                 quiet: bool, optimizer: str = "adam", clip: float | None = 1.0, weight_decay: float = 0.0,
                 **extra) -> dict:
    """The TrainConfig fields of a planned run: ``budget.steps`` steps (epochs unbounded),
    validation every ``val_every`` steps with early stopping after ``patience`` of them,
    warm-up then cosine decay, best weights restored; ``time_limit`` stays a hard stop."""
    steps = budget.steps
    cfg = dict(epochs=10 ** 9, max_steps=steps, time_limit=time_limit, optimizer=optimizer, lr=lr,
               clip_norm=clip, weight_decay=weight_decay, warmup_steps=budget.warmup_steps,
               val_every=budget.val_every if has_validation else None,
               patience=budget.patience if has_validation else None, restore_best=True, seed=seed,
               eval_each_epoch=False, quiet=quiet, log_every=max(1, min(50, budget.val_every)))
    if steps - budget.warmup_steps >= 2:
        cfg.update(schedule="cosine", schedule_options={"T_max": steps - budget.warmup_steps})
    cfg.update(extra)
    return cfg


class Pace(Callback):
    """A Trainer callback that re-plans a timed run from the pace it measures.

    The plan's step count comes from one probe step, timed before training; on a busy
    machine (or when the probe batch is not a typical one, or when the load changes
    during the run) it can be far off, and the run then stops early with time left or is
    cut off mid-schedule. Every ``1/checks`` of the planned steps this sets the step
    count to what fits ``time_limit`` (the run's training seconds) at the pace so far
    (validations included), at most ``steps_cap``, at least one more, and stretches the
    cosine decay and the validation interval to match. Data parallel: rank 0's count
    for every rank (:func:`rnnkit.distributed.agree`; the checks fall on the same steps).
    """

    def __init__(self, time_limit: float, steps_cap: int, evals: int = 25, checks: int = 25, first: int = 20):
        self.time_limit, self.steps_cap, self.evals, self.checks = time_limit, steps_cap, evals, checks
        self.first, self._next, self._t0, self._step0 = first, None, None, 0

    def on_start(self, trainer) -> None:
        self._t0, self._step0 = time.perf_counter(), trainer.step      # a resumed run counts from here
        self._next = trainer.step + self.first

    def on_step(self, trainer, info: dict) -> None:
        step, cfg = info["step"], trainer.config
        if self._t0 is None or step < self._next or cfg.max_steps is None:
            return
        elapsed = time.perf_counter() - self._t0
        left = 0.98 * self.time_limit - elapsed
        pace = (step - self._step0) / max(elapsed, 1e-9)
        steps = agree(max(step + 1, min(self.steps_cap, step + int(left * pace))))
        self._next = step + max(1, steps // self.checks)
        if steps == cfg.max_steps:
            return
        cfg.max_steps = steps
        if cfg.val_every is not None:
            cfg.val_every = max(1, -(-steps // self.evals))
        sched = getattr(trainer.schedule, "after", trainer.schedule)
        if sched is not None and hasattr(sched, "T_max"):
            sched.T_max = max(1, steps - cfg.warmup_steps)


@dataclass
class Fitted:
    """What :func:`fit_with_budget` returns: the model to keep, the selection run's
    History, its plan, the refit's step count (None without a refit) and the selection
    run's model (the one the validation data did not train; ``model`` without a refit)."""

    model: object
    history: object
    budget: Budget
    refit_steps: int | None = None
    selected: object = None

    def __post_init__(self):
        if self.selected is None:
            self.selected = self.model


def _cap(budget: Budget, steps: int, evals: int = 25) -> Budget:
    """``budget`` with ``steps`` steps (validation interval and warm-up rescaled)."""
    val_every = max(1, -(-steps // evals))
    warmup = min(budget.warmup_steps, max(0, steps - 1))
    return Budget(steps=steps, val_every=val_every, patience=budget.patience, warmup_steps=warmup,
                  step_seconds=budget.step_seconds)


def fit_with_budget(build, train_batches, val_batches, n_items: int, batch_size: int, probe_batch, *,
                    time_limit, max_steps: int | None, epochs: int | None, lr: float,
                    seed: int, quiet: bool, out_dir=None, optimizer: str = "adam", clip: float | None = 1.0,
                    patience: int | None = None, refit_batches=None, refit_items: int | None = None,
                    n_val: int | None = None, min_val_items: int = MIN_VAL_ITEMS, min_steps: int = 600,
                    steps_cap: int = 20000, callbacks=None, where: str = "fit", reserve=0.0, share: float = 1.0,
                    pace: bool = True,
                    **config_extra) -> Fitted:
    """Train ``build()`` under the budget policy; with ``refit_batches`` (train + validation)
    train a fresh ``build()`` on them for the selected number of steps, scaled by the data
    grown, and keep that model.

    ``time_limit`` (seconds from now, or a :class:`rnnkit.deadline.Deadline` of the whole
    command) less ``reserve`` (seconds kept for what follows the fit: evaluation, the
    report; or a function of the measured step time giving them,
    :func:`rnnkit.deadline.after_training`) is the training time, of which this call takes
    ``share`` (an ensemble's members share it): half for the selection run when a refit
    follows, the rest for the refit. ``max_steps`` fixes the steps and ``epochs`` caps them
    at that many passes — a budget fixed that way is one run, without a refit;
    ``patience`` (validations) overrides the plan's.
    ``out_dir`` and ``callbacks`` go to the selection run's Trainer (checkpoints, metrics,
    the run directory's writer).

    ``pace``: with a time limit (and no fixed ``max_steps``/``epochs``), re-plan the
    step count from the measured pace as the run goes (:class:`Pace`).

    When half the time holds fewer than ``min_steps`` steps there is no refit: one
    run uses all the time and keeps its best validated weights.

    A validation part of fewer than ``min_val_items`` items (``n_val``) says too little to
    pick a step count from: then one run goes through the whole planned budget (no early
    stopping, no refit), the validation loss only choosing the weights kept.
    """
    from rnnkit.deadline import as_deadline
    from rnnkit.train import TrainConfig, Trainer

    deadline = as_deadline(time_limit, where)
    model = build()
    small_val = n_val is not None and n_val < min_val_items
    if small_val:
        refit_batches, patience = None, None
    if max_steps is not None or epochs is not None:
        refit_batches = None        # a budget fixed by the caller is one run of exactly that
    refit = refit_batches is not None and val_batches is not None
    step_s = time_step(model, probe_batch) if deadline.limited else None
    reserve_s = reserve(step_s) if callable(reserve) else float(reserve)

    def training_time() -> float | None:      # data parallel: rank 0's clock decides for every rank
        left = agree(deadline.for_training(reserve_s))
        return None if left is None else left * share

    total = training_time()
    if step_s is not None and step_s > total:
        raise RnnkitError(f"{where}: time_limit leaves {total:.3g}s to train in (after reading the data, and "
                          f"keeping the time the evaluation and the report need), too short for one training "
                          f"step ({step_s:.3g}s measured on this machine); raise the time limit or make the "
                          f"model smaller")
    if refit and step_s is not None and total * 0.5 * 0.85 / step_s < min_steps:
        refit = False       # too little time to train twice: one run, the best validated weights
    run_time = None if total is None else total * (0.5 if refit else 1.0)
    budget = plan_budget(n_items, batch_size, time_limit=run_time, step_seconds=step_s, min_steps=min_steps,
                         max_steps_cap=steps_cap, where=where)
    per_epoch = max(1, -(-n_items // batch_size))
    if max_steps is not None:
        budget = _cap(budget, max_steps)
    elif epochs is not None:
        budget = _cap(budget, min(budget.steps, epochs * per_epoch))
    if patience is not None:
        budget.patience = patience
    cfg = train_config(budget, lr=lr, time_limit=run_time, has_validation=val_batches is not None, seed=seed,
                       quiet=quiet, optimizer=optimizer, clip=clip, **config_extra)
    if small_val:
        cfg["patience"] = None      # a few items validate noisily: no early stopping (the docstring's rule)
    if epochs is not None:
        cfg["epochs"] = epochs
    if pace and run_time is not None and max_steps is None and epochs is None:
        cap = plan_budget(n_items, batch_size, min_steps=min_steps, max_steps_cap=steps_cap).steps
        callbacks = list(callbacks or []) + [Pace(run_time, cap)]
    history = Trainer(model, TrainConfig(**cfg), out_dir, callbacks=callbacks).fit(train_batches, val_batches)
    model.eval()
    if not refit or not history.best_step:
        return Fitted(model, history, budget)
    steps = max(1, math.ceil(history.best_step * (refit_items or n_items) / n_items))
    left = training_time()
    if left is not None and left < 0.5 * steps * step_s:
        return Fitted(model, history, budget)      # no time for a refit worth having: keep the selected
    final = build()
    rb = _cap(budget, steps)
    cfg = train_config(rb, lr=lr, time_limit=left, has_validation=False, seed=seed, quiet=quiet,
                       optimizer=optimizer, clip=clip, **config_extra)
    Trainer(final, TrainConfig(**cfg), None).fit(refit_batches, None)
    final.eval()
    return Fitted(final, history, budget, refit_steps=steps, selected=model)
