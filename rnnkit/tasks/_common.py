"""What every task shares: argument checks and saving/loading a task's checkpoint.

``check_number`` and ``check_flag`` are :mod:`rnnkit._checks`' (the library's one set of
checks), importable from here too.
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit import io as rkio
from rnnkit._checks import check_flag, check_number
from rnnkit._checks import check_seed as _check_seed
from rnnkit.errors import CheckpointError
from rnnkit.models.base import parse_cell

__all__ = ["check_number", "check_flag", "check_cell", "check_task_dtype", "check_seed", "save_task",
           "load_task", "restore_model"]


def check_cell(cell, where: str) -> str:
    """``cell`` as given ("lstm", "gru", "rnn", "rnn-relu"); ValueError otherwise."""
    parse_cell(cell, where)
    return cell


def check_task_dtype(dtype, where: str) -> str:
    """The float dtype of a task's network as a string, "float32" or "float64"."""
    name = str(np.dtype(dtype))
    if name not in ("float32", "float64"):
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r}")
    return name


def check_seed(seed, where: str) -> int:
    """A task's seed: an int >= 0 (it seeds weights, data order, splits and dropout)."""
    return _check_seed(seed, where, allow_none=False)


def save_task(directory, model, meta: dict) -> str:
    """Write a task's network and ``meta`` (its task name, parameters, fitted state) to
    ``directory`` (config.json + model.npz, replaced as a pair: :func:`rnnkit.tasks.run.write_model`);
    returns the path. In a data-parallel run (rnnkit.distributed) every rank holds the same
    weights and rank 0 alone writes them."""
    from rnnkit.tasks.run import write_model, writes_files

    if not writes_files():
        return os.fspath(directory)
    return write_model(directory, model, meta)


def load_task(directory, task: str, cls_name: str) -> rkio.Checkpoint:
    """Load a checkpoint and check it was written by ``task`` (CheckpointError if not)."""
    from rnnkit.tasks.run import recover_model

    directory = os.fspath(directory)
    recover_model(directory)
    ckpt = rkio.load_checkpoint(directory)
    found = ckpt.meta.get("task")
    if found != task:
        what = (f"was written by task {found!r}, not {task!r}" if found is not None else
                f"holds no {task!r} task model (a bare model checkpoint, or a run that did not finish)")
        raise CheckpointError(f"{directory}: {what}; load it with the class of that task, not {cls_name}")
    return ckpt


def restore_model(directory, ckpt: rkio.Checkpoint, model, expected: dict | None = None,
                  mismatch: str = "does not match the task's parameters"):
    """Load ``ckpt``'s weights into ``model`` (rebuilt from its config.json) in eval mode.

    With ``expected`` (the config the task's own parameters build) a different model
    config is a CheckpointError "``directory``: the model in config.json ``mismatch``";
    so are weights of the wrong names or shapes.
    """
    directory = os.fspath(directory)
    if expected is not None and model.config() != expected:
        raise CheckpointError(f"{directory}: the model in config.json {mismatch}")
    rkio.check_arrays(ckpt.arrays, model, os.path.join(directory, rkio.MODEL_FILE))
    model.load_state_dict(ckpt.arrays)
    model.eval()
    return model
