"""The one Trainer for every model, its configuration, history, checkpoints and callbacks.

    config.py       TrainConfig: every choice of how a model is trained
    history.py      History: the metrics records and how training ended
    trainer.py      Trainer: (truncated) BPTT, clipping, validation, early stopping, resume
    checkpoints.py  what a checkpoint holds and how it is restored
    callbacks.py    Callback (on_step, on_eval, on_checkpoint, on_end, ...) and the progress output
    batches.py      batch sources and checks

The names below are imported on first use (PEP 562), so a task module can
import ``rnnkit.train.callbacks`` without loading the training loop.
"""

import importlib

__all__ = ["TrainConfig", "History", "Trainer", "Callback", "ProgressPrinter", "SCHEDULES"]

_WHERE = {"TrainConfig": "config", "SCHEDULES": "config", "History": "history", "Trainer": "trainer",
          "Callback": "callbacks", "ProgressPrinter": "callbacks"}


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"rnnkit.train.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit.train' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
