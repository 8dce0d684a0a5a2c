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

Data parallel. When ``comm`` (default :func:`rnnkit.distributed.world`) has several
ranks, each trains on its shard of every batch, the gradients are averaged before
clipping, time limits and Ctrl-C are voted on, and rank 0 alone writes; see
:mod:`rnnkit.distributed` and :mod:`rnnkit.train.checkpoints`.

Callbacks (:mod:`rnnkit.train.callbacks`) see every step, metrics record,
evaluation, epoch end, checkpoint and the end of training; the progress output
is one of them (:class:`~rnnkit.train.callbacks.ProgressPrinter`, added unless
``config.quiet``).

Files in ``out_dir`` (see :mod:`rnnkit.train.checkpoints`): ``config.json``, ``model.npz``
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

import math
import os
import time
import numpy as np

from rnnkit import distributed
from rnnkit import io as rkio
from rnnkit import optim
from rnnkit.errors import CheckpointError, DivergenceError, RnnkitError
from rnnkit.grad_mode import no_grad
from rnnkit.module import Module
from rnnkit.train import checkpoints as ckpts
from rnnkit._checks import NonFiniteError
from rnnkit.train.batches import (as_train_source, as_val_source, batch_finite, carry_at, check_batch,
                                   oversized_weights, with_context)
from rnnkit.train.callbacks import ProgressPrinter, check_callbacks
from rnnkit.train.checkpoints import METRICS_FILE, DeferInterrupt
from rnnkit.train.config import TrainConfig, build_schedules
from rnnkit.train.history import History, Interval

__all__ = ["Trainer"]


# -- the trainer ----------------------------------------------------------------------

class Trainer:
    """Trains any model that follows the model contract (see DESIGN.md).

    ``Trainer(model, config, out_dir)`` builds the optimizer and schedule at once
    (``trainer.optimizer``, ``trainer.schedule``); :meth:`fit` trains;
    :meth:`resume` / ``fit(..., resume=True)`` continue from ``out_dir``.
    ``config`` may be a :class:`TrainConfig`, a dict (checked by ``from_dict``) or None.
    ``callbacks``: :class:`~rnnkit.train.callbacks.Callback` objects whose hooks run
    during ``fit`` (also ``trainer.callbacks``, a list one may append to).
    ``comm``: the ranks of a data-parallel run (:mod:`rnnkit.distributed`; default
    ``distributed.world()``, which is one process unless an MPI launcher started several).
    """

    def __init__(self, model: Module, config: TrainConfig | dict | None = None, out_dir=None,
                 callbacks=None, comm=None):
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
        self.comm = distributed.world() if comm is None else comm
        self._dp = distributed.DataParallel(self.comm, model) if self.comm.size > 1 else None
        if config.checkpoint_every is not None and self.out_dir is None:
            raise ValueError(f"{where}: checkpoint_every needs an out_dir to write checkpoints to")
        self._params = model.params   # live arrays: a dict taken once stays valid
        self._constrain = getattr(model, "constrain", None)    # optional in the contract
        opts = dict(config.optimizer_options)
        if config.weight_decay and "weight_decay" in opts:
            raise ValueError(f"{where}: weight_decay is given twice (the field and optimizer_options)")
        if config.weight_decay:
            opts["weight_decay"] = config.weight_decay
        self.optimizer = optim.make_optimizer(config.optimizer, self._params, lr=config.lr, **opts)
        self.schedule, self.warmup = build_schedules(config, self.optimizer)
        self.callbacks = check_callbacks(callbacks, where)
        self._generators = ckpts.model_generators(model)
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
        self._printer = None
        self._fit_start = None
        self._started = False          # False until a fresh fit or a resume set things up
        self._last_checkpoint = None   # (perf_counter when written, seconds it took)

    @property
    def best_params(self) -> dict | None:
        """The weights of the best validation loss so far (None before the first evaluation)."""
        return self._best_params

    @property
    def _plateau(self) -> bool:
        return self.config.schedule is not None and self.config.schedule.lower() == "plateau"

    # -- public API --------------------------------------------------------------------
    @classmethod
    def resume(cls, out_dir, model: Module | None = None, callbacks=None, comm=None,
               **overrides) -> "Trainer":
        """A Trainer restored from the checkpoint in ``out_dir``, ready to ``fit`` on.

        ``model`` defaults to ``rnnkit.models.build(config)`` from the checkpoint's
        ``config.json``; the training config is the saved one with ``overrides``
        applied (e.g. ``max_steps=2000`` to train further); ``comm`` as in the constructor.
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
        trainer = cls(model, config, out_dir, callbacks=callbacks, comm=comm)
        if trainer._dp is None:
            trainer._restore(ckpt)
        else:
            trainer._dp.all_or_none(trainer._restore, ckpt)
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
        train_source = as_train_source(train_batches, "train_batches")
        val_source = None if val_batches is None else as_val_source(val_batches, "val_batches")
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
        if self._dp is None:
            return self._fit(train_source, val_source, resume)
        self._dp.agreed_stop, self._dp.interrupted = None, False
        with self._dp.interrupts():
            return self._dp.all_or_none(self._fit, train_source, val_source, resume)

    def _fit(self, train_source, val_source, resume: bool) -> History:
        cfg = self.config
        if resume:
            self._restore(rkio.load_checkpoint(self.out_dir, expected=self.model))
        elif not self._started:
            self._start_fresh()

        self.history.stop_reason = None
        self.history.interrupted = False
        self._fit_start = time.perf_counter()
        self._interval = Interval()
        self._printer = None if cfg.quiet or not self.comm.is_root else ProgressPrinter()
        try:
            try:
                self._emit("on_start")
                reason = self._loop(train_source, val_source)
            except KeyboardInterrupt:
                reason = "interrupted"
            self._finish(reason, val_source)
        except BaseException:
            if self._printer is not None:
                self._printer.close()
            raise
        finally:
            self._printer = None
        return self.history

    def _finish(self, reason: str, val_source) -> None:
        """Write the final checkpoint, restore the best weights, tell the callbacks."""
        cfg = self.config
        self._flush_interval()
        self._elapsed_before, self._fit_start = self._elapsed(), None
        self.history.stop_reason = reason
        self.history.interrupted = reason == "interrupted"
        self._sync_history()
        if self.out_dir is not None:
            self._checkpoint()
        if cfg.restore_best and self._best_params is not None and not self._last_steps_best(reason, val_source):
            self.model.load_state_dict(self._best_params)
        self._emit("on_end", self.history)

    def _emit(self, hook: str, *args) -> None:
        """Run ``hook`` of the progress printer and of every callback, in order."""
        if self._printer is not None:
            getattr(self._printer, hook)(self, *args)
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _checkpoint(self) -> None:
        """Write the resumable checkpoint to out_dir (shielded from Ctrl-C), tell the callbacks."""
        t0 = time.perf_counter()
        with DeferInterrupt():
            path = self.save()
        self._last_checkpoint = (time.perf_counter(), time.perf_counter() - t0)
        self._emit("on_checkpoint", {"kind": "resume", "path": path, "step": self.step})

    def _epoch_checkpoint_due(self) -> bool:
        """Whether an epoch end writes a checkpoint: always with checkpoint_share None or before
        the first one; else once the time since the last one is cost / share. Data parallel:
        rank 0's clock decides for every rank (saving is collective)."""
        share = self.config.checkpoint_share
        if share is None or self._last_checkpoint is None:
            return True
        written, cost = self._last_checkpoint
        due = (time.perf_counter() - written) * share >= cost
        return bool(self.comm.broadcast(due)) if self._dp is not None else due

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

        The mean is weighted by what each batch's mean divides by (its item count, or
        the sum of the class weights of its targets); with ``carry_state`` the state is
        carried across the batches (starting from zero), as in training. Data parallel:
        each rank evaluates its shard of every batch and the sums are reduced.
        """
        source = as_val_source(batches, "batches")
        cfg = self.config
        was_training = self.model.training
        self.model.eval()
        total, count, carry = 0.0, 0, None
        try:
            with no_grad():                # forward only: the recurrent layers keep no caches
                for i, batch in enumerate(source()):
                    check_batch(batch, f"validation batch {i + 1}", cfg.tbptt_k2)
                    if self._dp is not None:
                        batch, _ = self._dp.local(batch, f"validation batch {i + 1}")
                        if batch is None:      # no item of this batch on this rank
                            continue
                    try:
                        loss, n, state = self.model.loss(batch, state=carry if cfg.carry_state else None,
                                                         carry_at=carry_at(batch, cfg))
                    except NonFiniteError:
                        if not batch_finite(batch):
                            raise
                        # the weights make the activations overflow: the loss is NaN (every
                        # rank still reaches the reduction below)
                        loss, n, state = math.nan, 1, None
                    w = getattr(self.model, "loss_weight", None)   # what the batch's mean divides by
                    w = int(n) if w is None else w
                    total += float(loss) * w
                    count += w
                    carry = state if cfg.carry_state else None
        finally:
            self.model.train(was_training)
        if self._dp is not None:
            total, count = self._dp.reduce_sums(total, count)
        if count == 0:
            raise RnnkitError("evaluate: the validation batches hold no items (no batches, or all masked)")
        return total / count

    def save(self, directory=None) -> str:
        """Write a full checkpoint (resumable) to ``directory`` (default: ``out_dir``)."""
        directory = self.out_dir if directory is None else os.fspath(directory)
        if directory is None:
            raise ValueError("Trainer.save: no directory given and the Trainer has no out_dir")
        state = self.state_dict()          # data parallel: collective; rank 0 alone writes
        if self._dp is not None and not self.comm.same_on_all(self.model.params):
            raise RnnkitError(f"step {self.step}: the weights differ between the ranks; the MPI "
                              "library's allreduce did not give every rank the same sum")
        if self.comm.is_root:
            rkio.save_checkpoint(directory, self.model.config(), self.model.state_dict(),
                                 state, meta={"kind": "resume", "step": self.step})
        self.comm.barrier()                # returns once the checkpoint is on disk, on every rank
        return directory

    def state_dict(self) -> dict:
        """The training state as a tree of JSON values and numeric arrays (see io.encode_state).
        Data parallel: a collective call (see :func:`~rnnkit.train.checkpoints.training_state`)."""
        return ckpts.training_state(self)

    # -- state restore -------------------------------------------------------------------
    def _start_fresh(self) -> None:
        """Seed the model's generators from (seed, path) and clear files of an older run."""
        ckpts.seed_generators(self._generators, self.config.seed, self.comm.rank)
        if self._dp is not None:           # every rank starts from rank 0's weights
            self.model.load_state_dict(self.comm.broadcast(self.model.state_dict()))
        if self.out_dir is not None and self.comm.is_root:
            ckpts.clear_run_files(self.out_dir)
        self._started = True

    def _restore(self, ckpt: rkio.Checkpoint) -> None:
        """Load weights and the full training state from a checkpoint."""
        ckpts.restore_training_state(self, ckpt)
        self._started = True

    # -- the loop --------------------------------------------------------------------------
    def _limit_reached(self) -> str | None:
        cfg = self.config
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if self._dp is not None:           # the ranks' clocks differ: a stop they voted on together
            return self._dp.agreed_stop
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
                raise with_context(exc, f"epoch {self.epoch + 1}: building the training batches") from exc
            index = 0
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except (ValueError, TypeError, RnnkitError) as exc:
                    raise with_context(exc, f"epoch {self.epoch + 1}, batch {index + 1}: reading the "
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
                        self._checkpoint()
                index += 1
            if index == 0:
                raise RnnkitError(f"train_batches gave no batches for epoch {self.epoch + 1}")
            if index < self.batch_in_epoch:
                raise RnnkitError(f"train_batches gave {index} batches for epoch {self.epoch + 1}, but "
                                  f"the checkpoint had already trained on {self.batch_in_epoch}: the "
                                  "data changed since the checkpoint was written")
            with DeferInterrupt():
                self._epoch_finished = True
                self._eval_due = (val_source is not None and self._last_eval_step != self.step
                                  and (cfg.eval_each_epoch or cfg.val_every is None))

    def _end_epoch(self) -> None:
        self._flush_interval()
        with DeferInterrupt():
            self.epoch += 1
            self.batch_in_epoch = 0
            self._carry = None
            self._epoch_finished = False
        self._sync_history()
        if self.out_dir is not None and self._epoch_checkpoint_due():
            self._checkpoint()
        self._emit("on_epoch_end", {"epoch": self.epoch, "step": self.step})

    def _train_step(self, batch, index: int) -> None:
        cfg = self.config
        n = self.step + 1
        context = f"step {n} (epoch {self.epoch + 1}, batch {index + 1})"
        t0 = time.perf_counter()
        try:
            check_batch(batch, "training batch", cfg.tbptt_k2)
            self.model.train()
            self.model.zero_grad()
            state_in = self._carry if cfg.carry_state else None
            if self._dp is None:
                loss, count, state_out = self.model.loss(batch, state=state_in, carry_at=carry_at(batch, cfg))
                loss, count = float(loss), int(count)
                if not math.isfinite(loss):
                    self._diverged(n, index, f"the loss is {loss}")
                self.model.backward()
            else:   # this rank's shard, then the global mean loss and the averaged gradients
                time_up = cfg.time_limit is not None and time.perf_counter() - self._fit_start >= cfg.time_limit
                loss, count, state_out = self._dp.train_step(self.model, batch, state_in, carry_at(batch, cfg),
                                                             time_up, "training batch")
                if self._dp.overflowed:   # on some rank; every rank stops here together
                    self._diverged(n, index, "the network's values overflowed to NaN or inf")
                if not math.isfinite(loss):
                    self._diverged(n, index, f"the loss is {loss}")
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
        except NonFiniteError as exc:
            if batch_finite(batch):   # finite data, finite weights: the activations overflowed
                self._diverged(n, index, "the network's values overflowed to NaN or inf")
            raise with_context(exc, context) from exc
        except (ValueError, TypeError, RnnkitError) as exc:
            raise with_context(exc, context) from exc
        clipped = (cfg.clip_norm is not None and norm > cfg.clip_norm) or \
                  (cfg.clip_value is not None and raw_norm != norm)
        with DeferInterrupt():
            lr = self.optimizer.lr
            self.optimizer.step(grads)
            if self._constrain is not None:
                self._constrain()      # parameter bounds, e.g. IndRNN's |u| <= M (Module.constrain)
            if self.warmup is not None:
                self.warmup.step()
            if self.schedule is not None and not self._plateau:
                self.schedule.step()
            self.step = n
            self.batch_in_epoch = index + 1
            self._carry = state_out if cfg.carry_state else None
            if cfg.val_every is not None and n % cfg.val_every == 0:
                self._eval_due = True
        too_large = oversized_weights(self.model.params)
        if too_large is not None:
            name, norm, bound = too_large
            self._diverged(n, index, f"the update made the weights {name!r} too large to compute with "
                                     f"(norm {norm:.3g}, more than {bound:.3g})", updated=True)
        dt = time.perf_counter() - t0
        self._interval.add(loss, count, raw_norm, clipped, dt, lr)
        self._emit("on_step", {"step": n, "epoch": self.epoch + 1, "batch": index + 1, "loss": loss,
                               "grad_norm": raw_norm, "lr": lr, "items_per_sec": count / dt if dt > 0 else None})
        if n % cfg.log_every == 0:
            self._flush_interval()

    def _diverged(self, step: int, index: int, what: str, updated: bool = False):
        where = (f" Training state in {self.out_dir} is left as of {self._saved_step()}."
                 if self.out_dir is not None else "")
        note = "" if updated else "; the weights were not updated"
        err = DivergenceError(f"training diverged at step {step} (epoch {self.epoch + 1}, batch {index + 1}): "
                              f"{what}{note}.{where} Lower the learning rate, clip gradients or check the "
                              "data for NaN/inf")
        err.step, err.epoch, err.batch = step, self.epoch + 1, index + 1
        self._record({"event": "diverged", "step": step, "epoch": self.epoch + 1})
        raise err

    def _saved_step(self) -> str:
        path = os.path.join(self.out_dir, rkio.CONFIG_FILE)
        try:
            step = rkio.load_json(path).get("meta", {}).get("step")
        except (CheckpointError, AttributeError):
            step = None
        return "the start (no checkpoint was written yet)" if step is None else f"step {step}"

    def _evaluate_and_record(self, val_source) -> None:
        cfg = self.config
        val = self.evaluate(val_source)
        if not math.isfinite(val):     # the step's update was applied: its weights are what diverged
            self._diverged(self.step, self.batch_in_epoch - 1, f"the validation loss is {val}", updated=True)
        improved = self.best_val_loss is None or val < self.best_val_loss - cfg.min_delta
        with DeferInterrupt():
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
        self._record({"event": "val", "step": self.step, "epoch": self.epoch + 1, "val_loss": val,
                      "best_val_loss": self.best_val_loss, "lr": self.optimizer.lr})
        self._sync_history()
        if improved and self.out_dir is not None:
            with DeferInterrupt():
                path = (ckpts.save_best(self.out_dir, self.model, self._best_params, self.step, val)
                        if self.comm.is_root else os.path.join(self.out_dir, ckpts.BEST_DIR))
            self._emit("on_checkpoint", {"kind": "best", "path": path, "step": self.step})
        self._emit("on_eval", {"step": self.step, "epoch": self.epoch + 1, "val_loss": val,
                               "best_val_loss": self.best_val_loss, "best_step": self.best_step,
                               "improved": improved})

    # -- logging ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        start = self._fit_start
        return self._elapsed_before + (0.0 if start is None else time.perf_counter() - start)

    def _sync_history(self) -> None:
        h = self.history
        h.step, h.epochs_completed = self.step, self.epoch
        h.best_val_loss, h.best_step = self.best_val_loss, self.best_step

    def _record(self, rec: dict) -> None:
        full = {"event": None, "step": None, "epoch": None, "train_loss": None, "val_loss": None,
                "grad_norm": None, "clipped": None, "lr": None, "items_per_sec": None}
        full.update(rec)
        full["elapsed"] = round(self._elapsed(), 3)
        full = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in full.items()}
        self.history.records.append(full)
        if self.out_dir is not None and self.comm.is_root:
            rkio.append_jsonl(os.path.join(self.out_dir, METRICS_FILE), full)
        self._emit("on_record", full)

    def _flush_interval(self) -> None:
        rec = self._interval.flush(self.step, self.epoch + 1)
        if rec is not None:
            self._record(rec)
