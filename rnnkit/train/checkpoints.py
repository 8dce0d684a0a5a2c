"""Checkpoints of a training run: what is saved, how it is restored, and the files.

A resumable checkpoint (:func:`rnnkit.io.save_checkpoint` in the Trainer's
``out_dir``) holds the weights (``model.npz``), the model config (``config.json``)
and the training state (``trainer.json`` + ``trainer.npz``): optimizer and schedule
state, step, epoch, batches done in the epoch, the carried state, the random
generators' states, the best weights and the history. ``best/`` holds the weights
of the best validation loss; ``metrics.jsonl`` one record per log interval and
evaluation. Writes are atomic and shielded from Ctrl-C (:class:`DeferInterrupt`).

Data parallel (:mod:`rnnkit.distributed`): rank 0 alone writes. The saved state is
the whole run's: the carried state of every stream, assembled from the ranks'
shards, and the random generators of ranks 1..N−1 (``rank_generators``) besides
rank 0's. Every rank reads the checkpoint on resume (out_dir must be visible to
all), takes rank 0's weights and optimizer state by broadcast, and cuts its shard
of the carried state afresh, so a run may resume on another number of ranks (on
which the generators of ranks ≥ 1 start fresh, seeded with the step).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import zlib

import numpy as np

from rnnkit import distributed
from rnnkit import io as rkio
from rnnkit.errors import CheckpointError
from rnnkit.module import Module
from rnnkit.train.history import History

__all__ = ["DeferInterrupt", "model_generators", "training_state", "restore_training_state",
           "seed_generators", "clear_run_files", "save_best", "BEST_DIR", "METRICS_FILE", "STATE_VERSION"]

BEST_DIR = "best"
METRICS_FILE = "metrics.jsonl"
STATE_VERSION = 1


class DeferInterrupt:
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
            # None: a handler not installed from Python; agreed_stop: data-parallel training,
            # where Ctrl-C is already a vote to stop after the step. Leave both alone.
            if old is not None and not getattr(old, "agreed_stop", False):
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


def model_generators(model: Module) -> dict[str, np.random.Generator]:
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


def seed_generators(generators: dict, seed: int, rank: int = 0, *extra: int) -> None:
    """Seed each generator from (seed, its attribute path): a fresh run is reproducible.
    Rank r > 0 of a data-parallel run adds r (its dropout masks differ from rank 0's)
    and ``extra``."""
    more = ((rank,) if rank > 0 else ()) + extra
    for path, gen in generators.items():
        bg = gen.bit_generator
        bg.state = type(bg)(np.random.SeedSequence([seed, zlib.crc32(path.encode()), *more])).state


def clear_run_files(out_dir) -> None:
    """Start ``out_dir`` afresh: an empty metrics.jsonl and no best weights of an older run."""
    os.makedirs(out_dir, exist_ok=True)
    rkio.atomic_write(os.path.join(out_dir, METRICS_FILE), lambda f: None)
    best = os.path.join(out_dir, BEST_DIR)
    for name in (rkio.CONFIG_FILE, rkio.MODEL_FILE, rkio.TRAINER_JSON, rkio.TRAINER_NPZ):
        try:
            os.unlink(os.path.join(best, name))
        except FileNotFoundError:
            pass


def save_best(out_dir, model, params: dict, step: int, val_loss: float) -> str:
    """Write the best weights so far to ``out_dir/best`` (config.json + model.npz); returns the path."""
    return rkio.save_checkpoint(os.path.join(out_dir, BEST_DIR), model.config(), params, None,
                                meta={"kind": "best", "step": step, "val_loss": val_loss})


def training_state(t) -> dict:
    """The training state of Trainer ``t`` as a tree of JSON values and numeric arrays
    (see :func:`rnnkit.io.encode_state`). Data parallel: a collective call; the carried
    state is the whole batch's and ``rank_generators`` is filled on rank 0 only."""
    carry, rank_generators = t._carry, []
    if t._dp is not None:
        start, _, n = t._dp.carry_bounds
        carry = distributed.assemble_state(t.comm, t._carry, n, start)
        mine = json.dumps({k: g.bit_generator.state for k, g in t._generators.items()}).encode("utf-8")
        parts = t.comm.gather_bytes(mine)
        rank_generators = None if parts is None else [json.loads(p) for p in parts[1:]]
    return {
        "version": STATE_VERSION,
        "train_config": t.config.to_dict(),
        "step": t.step,
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_in_epoch,
        "epoch_finished": t._epoch_finished,
        "eval_due": t._eval_due,
        "last_eval_step": t._last_eval_step,
        "optimizer": {"name": t.config.optimizer.lower(), "state": t.optimizer.state_dict()},
        "schedule": None if t.schedule is None else t.schedule.state_dict(),
        "warmup": None if t.warmup is None else t.warmup.state_dict(),
        "generators": {k: g.bit_generator.state for k, g in t._generators.items()},
        "carry": carry,
        "rank_generators": rank_generators,
        "best": {"val_loss": t.best_val_loss, "step": t.best_step,
                 "bad_evals": t._bad_evals,
                 "params": None if t._best_params is None else dict(t._best_params)},
        "elapsed": t._elapsed(),
        "history": t.history.to_dict(),
    }


def restore_training_state(t, ckpt: rkio.Checkpoint) -> None:
    """Load weights and the full training state of Trainer ``t`` from a checkpoint."""
    where = ckpt.directory
    s = ckpt.training_state
    version = s.get("version") if isinstance(s, dict) else None
    if version != STATE_VERSION:
        raise CheckpointError(f"{where}: holds no training state this version can resume from "
                              f"(a model-only checkpoint, or training-state version {version!r})")
    try:
        saved_opt = s["optimizer"]["name"]
        if saved_opt != t.config.optimizer.lower():
            raise CheckpointError(f"{where}: the checkpoint was trained with optimizer {saved_opt!r}, "
                                  f"this config uses {t.config.optimizer!r}")
        for key, sched in (("schedule", t.schedule), ("warmup", t.warmup)):
            if (s[key] is None) != (sched is None):
                raise CheckpointError(f"{where}: the checkpoint {'has' if s[key] is not None else 'has no'} "
                                      f"{key} state but this config {'has no' if sched is None else 'has a'} {key}")
        gens = s["generators"]
        if set(gens) != set(t._generators):
            raise CheckpointError(f"{where}: the checkpoint has random generators {sorted(gens)}, "
                                  f"the model has {sorted(t._generators)}")
        t.model.load_state_dict(ckpt.arrays)
        t.optimizer.load_state_dict(s["optimizer"]["state"])
        if t.schedule is not None:
            t.schedule.load_state_dict(s["schedule"])
        if t.warmup is not None:
            t.warmup.load_state_dict(s["warmup"])
        for path, state in gens.items():
            t._generators[path].bit_generator.state = state
        t.step = int(s["step"])
        t.epoch = int(s["epoch"])
        t.batch_in_epoch = int(s["batch_in_epoch"])
        t._epoch_finished = bool(s["epoch_finished"])
        t._eval_due = bool(s["eval_due"])
        t._last_eval_step = int(s["last_eval_step"])
        t._carry = s["carry"]
        parts = t._carry if isinstance(t._carry, (tuple, list)) else (t._carry,)
        if t._carry is not None and not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.ndim == 3
                                            for a in parts):
            raise CheckpointError(f"{where}: trainer.json's carried state must be float arrays of shape "
                                  "(layers*directions, B, H), or null")
        if t._dp is not None:
            _restore_rank(t, s)
        best = s["best"]
        t.best_val_loss = best["val_loss"]
        t.best_step = best["step"]
        t._bad_evals = int(best["bad_evals"])
        t._best_params = None if best["params"] is None else {k: np.array(v) for k, v in best["params"].items()}
        t._elapsed_before = float(s["elapsed"])
        t.history = History.from_dict(s["history"])
        # last_eval_step is -1 before the first evaluation
        counters = {"step": (t.step, 0), "epoch": (t.epoch, 0), "batch_in_epoch": (t.batch_in_epoch, 0),
                    "last_eval_step": (t._last_eval_step, -1)}
        for name, (value, low) in counters.items():
            if value < low:
                raise CheckpointError(f"{where}: trainer.json has {name} {value}; it must be >= {low}")
        if t._last_eval_step > t.step:
            raise CheckpointError(f"{where}: trainer.json has last_eval_step {t._last_eval_step} after "
                                  f"step {t.step}")
        if not (math.isfinite(t._elapsed_before) and t._elapsed_before >= 0):
            raise CheckpointError(f"{where}: trainer.json has elapsed {t._elapsed_before}; it must be "
                                  "a finite number of seconds >= 0")
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CheckpointError(f"{where}: training state does not fit this trainer: {msg}") from exc
    if t.out_dir is not None and t.comm.is_root:
        # metrics.jsonl mirrors the history: lines written after this checkpoint are
        # dropped, since the steps they describe will run (and be logged) again
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in t.history.records)
        rkio.atomic_write(os.path.join(t.out_dir, METRICS_FILE), lambda f: f.write(lines.encode("utf-8")))


def _restore_rank(t, s: dict) -> None:
    """Data parallel, once every rank has read the checkpoint: rank 0's weights and
    optimizer state go to every rank, each cuts its shard of the carried state and
    takes its own generators (fresh ones, seeded with the step, when the checkpoint
    was written by another number of ranks)."""
    comm = t.comm
    root = comm.broadcast({"step": t.step, "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict()})
    if root["step"] != t.step:
        raise CheckpointError(f"{t.out_dir}: rank {comm.rank} read a checkpoint of step {t.step}, rank 0 one "
                              f"of step {root['step']}: every rank must see the same out_dir")
    t.model.load_state_dict(root["model"])
    t.optimizer.load_state_dict(root["optimizer"])
    if t._carry is not None:
        n = (t._carry[0] if isinstance(t._carry, tuple) else t._carry).shape[1]
        start, stop = distributed.shard_range(n, comm.rank, comm.size)
        t._carry = distributed.state_shard(t._carry, start, stop) if stop > start else None
        t._dp.carry_bounds = (start, stop, n)
    if comm.rank > 0 and t._generators:
        ranks = s.get("rank_generators") or []
        mine = ranks[comm.rank - 1] if len(ranks) == comm.size - 1 else None
        if mine is not None and set(mine) == set(t._generators):
            for path, state in mine.items():
                t._generators[path].bit_generator.state = state
        else:
            seed_generators(t._generators, t.config.seed, comm.rank, t.step)
