"""The run directory every task writes: one layout for every job.

    config.json   the task's model and everything needed to rebuild it (``meta``:
                  "task", the parameters, the fitted state such as a vocabulary or
                  a scaler) and ``meta["training"]``: how far training got —
                  {"step", "best_step", "best_val_loss", "epochs_completed",
                  "stop_reason", "finished"}
    model.npz     the best weights so far (see below)
    train/        the Trainer's resumable checkpoint (config.json, model.npz,
                  trainer.json, trainer.npz), metrics.jsonl and best/
    metrics.json  the final scores
    *.png         plots (training.png, and the task's own)
    report.html   one self-contained page

``config.json`` + ``model.npz`` are written before training starts where a task
needs them on disk from the start (the language model's vocabulary, for
``--resume``), then replaced, atomically, by :class:`RunWriter` with the best
weights at every improvement of the validation loss and at the first checkpoint,
so ``predict``, ``evaluate`` and ``generate`` work on the directory while it is
training and after a crash or ``kill -9``; when training ends the task writes
its final model with ``"finished": true``. Until the first trained weights are written
(``"step": 0``, not finished) :func:`load_run` refuses the directory rather than hand
out the initial weights. Every file is written atomically (a temporary file, then a
rename).

:func:`load_run` reads any run directory with the class of the task that wrote it.
"""

from __future__ import annotations

import importlib
import math
import os

from rnnkit._files import fsync_dir
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.train.callbacks import Callback

__all__ = ["TRAIN_DIR", "JOBS", "RunWriter", "train_dir", "training_meta", "write_model", "recover_model",
           "load_run",
           "job_class", "saved_task", "jsonable", "write_json", "write_text", "write_csv", "csv_text", "a_cell",
           "writes_files"]

TRAIN_DIR = "train"
METRICS_JSON = "metrics.json"
PENDING_DIR = ".pending"
#: what a finished run states about its model: removed when a forced run replaces the run,
#: so that a new model never sits beside the last run's results
RESULT_FILES = (METRICS_JSON, "report.html", "predictions.csv", "backtest.csv")

#: task name in config.json -> (module, class) of the task that reads it
JOBS = {"lm": ("rnnkit.tasks.lm", "CharLanguageModel"),
        "classify": ("rnnkit.tasks.classify", "SequenceClassifier"),
        "forecast": ("rnnkit.tasks.forecast", "Forecaster"),
        "forecast-context": ("rnnkit.tasks.context_forecast", "ContextForecaster"),
        "seq2seq": ("rnnkit.tasks.seq2seq", "Seq2Seq")}


# -- writers -----------------------------------------------------------------------------------

def jsonable(obj):
    """Arrays to lists, NumPy scalars to numbers, NaN/inf to None: strict JSON."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> None:
    """``obj`` as strict JSON (see :func:`jsonable`), atomically."""
    from rnnkit.io import save_json

    save_json(path, jsonable(obj))


def write_text(path, text: str) -> None:
    """``text`` as UTF-8, atomically."""
    from rnnkit.io import atomic_write

    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def csv_text(header: list, rows) -> str:
    """CSV text: ``header``, then ``rows``; floats are written exactly (repr)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def write_csv(path, header: list, rows) -> None:
    """A CSV file (:func:`csv_text`), atomically."""
    write_text(path, csv_text(header, rows))


def writes_files() -> bool:
    """Whether this process writes run directories: always, except on ranks other than 0
    of a data-parallel run (:mod:`rnnkit.distributed`), where every rank holds the same
    weights and rank 0 alone writes."""
    from rnnkit.distributed import world

    return world().is_root


def write_model(directory, model, meta: dict, arrays=None) -> str:
    """``directory/config.json`` + ``model.npz``: ``model``'s config with ``meta`` and
    ``arrays`` (default: the model's own weights); returns the path.

    The two files are replaced as a pair: written complete to ``directory/.pending``
    first, then moved into place, the weights first. A reader never loads one file of
    each (config.json records the weights' SHA-256, so a mixed pair is refused), and a
    crash between the two moves is finished by the next reader (:func:`recover_model`).
    """
    from rnnkit import io as rkio

    directory = os.fspath(directory)
    pending = os.path.join(directory, PENDING_DIR)
    rkio.save_checkpoint(pending, model.config(), model.state_dict() if arrays is None else arrays,
                         None, meta=meta)
    _move(pending, directory, rkio.MODEL_FILE)
    _move(pending, directory, rkio.CONFIG_FILE)
    try:
        os.rmdir(pending)
    except OSError:
        pass                    # another write has begun, or a reader's recovery is under way
    return directory


def _move(src_dir: str, dst_dir: str, name: str) -> bool:
    """Rename ``src_dir/name`` over ``dst_dir/name`` durably; False when it is not there
    (a reader's :func:`recover_model` moved it first)."""
    try:
        os.replace(os.path.join(src_dir, name), os.path.join(dst_dir, name))
    except FileNotFoundError:
        return False
    fsync_dir(dst_dir)
    return True


def _model_sha(path: str) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _listed_sha(config_path: str) -> str | None:
    from rnnkit.errors import CheckpointError
    from rnnkit.io import load_json

    try:
        return load_json(config_path)["files"]["model.npz"]["sha256"]
    except (CheckpointError, KeyError, TypeError):
        return None


def recover_model(directory) -> None:
    """Finish a :func:`write_model` that a crash (``kill -9``) cut short between its two
    moves. Then ``model.npz`` holds the new weights and ``config.json`` still lists the
    old ones' SHA-256, while the new ``config.json`` waits in ``.pending``: it is moved
    into place (or, the other way round, the waiting ``model.npz``). A matching pair is
    left alone."""
    directory = os.fspath(directory)
    pending = os.path.join(directory, PENDING_DIR)
    if not os.path.isdir(pending):
        return
    config, weights = os.path.join(directory, "config.json"), os.path.join(directory, "model.npz")
    have, want = _model_sha(weights), _listed_sha(config)
    if have is None or have == want:
        return
    if _listed_sha(os.path.join(pending, "config.json")) == have:
        _move(pending, directory, "config.json")
    elif _model_sha(os.path.join(pending, "model.npz")) == want:
        _move(pending, directory, "model.npz")


# -- the run directory -----------------------------------------------------------------------

def train_dir(run_dir) -> str | None:
    """Where the Trainer of a run in ``run_dir`` keeps its checkpoints (None: no run)."""
    return None if run_dir is None else os.path.join(os.fspath(run_dir), TRAIN_DIR)


def training_meta(history, finished: bool) -> dict:
    """How far training got, for ``config.json`` (``meta["training"]``)."""
    if history is None:
        return {"step": 0, "best_step": None, "best_val_loss": None, "epochs_completed": 0,
                "stop_reason": None, "finished": False}
    best = history.best_val_loss
    return {"step": history.step, "best_step": history.best_step,
            "best_val_loss": None if best is None or not math.isfinite(best) else best,
            "epochs_completed": history.epochs_completed, "stop_reason": history.stop_reason,
            "finished": bool(finished)}


class RunWriter(Callback):
    """Keeps ``run_dir/config.json`` + ``model.npz`` current while a task trains.

    At every improvement of the validation loss and at the first checkpoint (at every
    checkpoint while there is no validation loss), the best weights so far (the
    current ones before any evaluation) are written with
    ``meta()`` (the task's own meta: task name, parameters, fitted state) and
    ``"training"`` saying how far training got, ``"finished": false``.
    """

    def __init__(self, run_dir, meta):
        self.run_dir, self.meta, self.written = os.fspath(run_dir), meta, False

    def _write(self, trainer) -> None:
        from rnnkit.train.checkpoints import DeferInterrupt

        if not writes_files():
            return
        arrays = trainer.best_params if trainer.best_params is not None else trainer.model.state_dict()
        meta = {**self.meta(), "training": training_meta(trainer.history, finished=False)}
        with DeferInterrupt():
            write_model(self.run_dir, trainer.model, meta, arrays)
        self.written = True

    def on_checkpoint(self, trainer, info: dict) -> None:
        # without validation there is no "best": the latest checkpoint's weights are the model
        if info["kind"] == "best" or not self.written or trainer.best_params is None:
            self._write(trainer)


# -- reading a run back ------------------------------------------------------------------------

def saved_task(directory) -> str | None:
    """The task recorded in a run directory's config.json (None when unreadable)."""
    from rnnkit.errors import CheckpointError
    from rnnkit.io import load_json

    try:
        meta = load_json(os.path.join(directory, "config.json")).get("meta", {})
        return meta.get("task") if isinstance(meta, dict) else None
    except (CheckpointError, AttributeError):
        return None


def job_class(task: str):
    """The task class that reads runs of ``task`` ("lm", "classify", "forecast", "seq2seq")."""
    module, name = JOBS[task]
    return getattr(importlib.import_module(module), name)


def load_run(directory, quantize: str | None = None):
    """The fitted task in a run directory (or a directory a task's ``save`` wrote), read
    with the class of the task recorded in its config.json; CheckpointError naming the
    directory when there is none. ``quantize`` ("int8") is for language models
    (:meth:`CharLanguageModel.load <rnnkit.tasks.lm.CharLanguageModel.load>`)."""
    directory = os.fspath(directory)
    if not os.path.isfile(os.path.join(directory, "config.json")):
        what = "not found" if not os.path.exists(directory) else "holds no config.json"
        raise CheckpointError(f"{directory}: {what}; give a directory written by rnnkit train-lm, forecast, "
                              f"classify or seq2seq")
    recover_model(directory)
    task = saved_task(directory)
    _check_trained(directory)
    if task not in JOBS:
        raise CheckpointError(f"{directory}: config.json names no task this rnnkit knows (task {task!r}; "
                              f"expected one of {', '.join(JOBS)})")
    if quantize is None:
        return job_class(task).load(directory)
    if task != "lm":
        raise RnnkitError(f"{directory}: quantize applies to language models (train-lm); this run is a "
                          f"{task} model")
    return job_class(task).load(directory, quantize=quantize)


def _check_trained(directory) -> None:
    """A CheckpointError for a run that has started but saved no trained weights yet (the
    model a task writes before training, for ``--resume``, holds the initial weights)."""
    from rnnkit.io import load_json

    try:
        training = load_json(os.path.join(directory, "config.json")).get("meta", {}).get("training")
    except (CheckpointError, AttributeError):
        return                                  # the task's own load names what is wrong
    if isinstance(training, dict) and training.get("step") == 0 and training.get("finished") is False:
        raise CheckpointError(f"{directory}: training has started but has saved no trained weights yet (they "
                              f"are written at the first validation improvement or checkpoint); wait for "
                              f"them, or continue the run with --resume")


def a_cell(cell: str) -> str:
    """'an LSTM', 'a GRU', 'an RNN', 'an RNN (ReLU)': for messages."""
    name = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN", "rnn-relu": "an RNN (ReLU)"}
    return name.get(cell, f"a {cell}")
