"""What the commands share: argument types, the help layout, option groups defined once,
and the checks of output directories.

Argument types raise ``argparse.ArgumentTypeError``: argparse reports them as usage
errors (exit status 2) naming the flag. The option groups (:func:`add_model_options`,
:func:`add_training_options`, :func:`add_run_options`) are defined once for every
training command; their options are task options (:func:`task_option`), whose
default is the task's own (written once, in its signature) and shown by ``--help``.
A command passes a task only the options that were given (:func:`given`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rnnkit.cells.registry import DIAGNOSTIC_CELLS, GRADIENT_CELLS, MODEL_CELLS
from rnnkit.errors import RnnkitError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
# the cell names, from their one list: the training commands, `gradients`, `memory`
CELLS = MODEL_CELLS
MEMORY_CELLS = DIAGNOSTIC_CELLS
DIAGNOSTIC_CELLS = GRADIENT_CELLS


# -- argument types: errors here are argparse usage errors (exit status 2) -------------------

def whole_number(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {v}")
        return v
    return parse


positive_int = whole_number(1)
nonneg_int = whole_number(0)


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    v = finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def nonneg_float(text: str) -> float:
    v = finite_float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def fraction(text: str) -> float:
    v = finite_float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return v


def probability(text: str) -> float:
    """A number in (0, 1]."""
    v = finite_float(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return v


def clip_bound(text: str):
    """A gradient-norm bound, or 0/"none" for no clipping."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    return positive_float(text)


def quantile_levels(text: str) -> list[float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        qs = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated levels like 0.1,0.5,0.9, got {text!r}") from None
    if len(qs) < 2 or any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs):
        raise argparse.ArgumentTypeError(f"expected at least 2 distinct levels in (0, 1), got {text!r}")
    return sorted(qs)


def period_arg(text: str):
    """'auto', 'none' or a whole number >= 2."""
    key = text.strip().lower()
    if key == "auto":
        return "auto"
    if key in ("none", "0"):
        return None
    try:
        v = int(key)
    except ValueError:
        v = 0
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'none' or a whole number >= 2, got {text!r}")
    return v


def cell_list(allowed):
    def parse(text: str) -> list[str]:
        cells = [c.strip().lower() for c in text.split(",") if c.strip()]
        bad = [c for c in cells if c not in allowed]
        if not cells or bad:
            raise argparse.ArgumentTypeError(f"expected comma-separated cells from {','.join(allowed)}, "
                                             f"got {text!r}")
        if len(set(cells)) != len(cells):
            raise argparse.ArgumentTypeError(f"a cell is repeated in {text!r}")
        return cells
    return parse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description/epilog layout and appends each option's default: its own, or
    for a task option (:func:`task_option`) the task's (read from its signature only
    when the help is shown, so ``rnnkit`` starts without importing the tasks)."""

    def _get_help_string(self, action):
        text = action.help or ""
        source = getattr(action, "task_default", None)
        if source is not None:
            value = task_default(*source)
            if value is not None:
                text += f" (default: {value})"
        elif ("%(default)" not in text and action.option_strings
                and action.default not in (None, False, "", argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


# -- option groups: each default is written once, in the task's signature or here ------------

def task_default(target: str, param: str):
    """The default of ``param`` in ``target``'s signature ("module:Class" for the
    constructor, "module:Class.method")."""
    import importlib
    import inspect

    module, _, path = target.partition(":")
    obj = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, type):
        obj = obj.__init__
    return inspect.signature(obj).parameters[param].default


def task_option(p, flag: str, param: str, target: str, **kwargs):
    """An option that sets the task argument ``param`` of ``target``: left out, it is absent
    from the parsed arguments and the task's own default applies (the help shows it)."""
    if "choices" not in kwargs:
        kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
    action = p.add_argument(flag, dest=param, default=argparse.SUPPRESS, **kwargs)
    action.task_default = (target, param)
    return action


def given(args, *params) -> dict:
    """The task arguments among ``params`` that were given on the command line."""
    return {k: getattr(args, k) for k in params if hasattr(args, k)}


MODEL_PARAMS = ("cell", "hidden_size", "num_layers", "dropout")
TRAINING_PARAMS = ("epochs", "time_limit", "optimizer", "lr", "clip", "patience")


def add_model_options(p, task: str, defaults: dict | None = None,
                      dropout_where: str = "between layers (and before the output layer)") -> None:
    """--cell, --hidden, --layers, --dropout: the network of ``task`` ("module:Class");
    ``defaults`` maps a parameter whose default is None (chosen from the data) to a few
    words that say how, appended to its help; ``dropout_where`` says where the task's
    model drops."""
    note = lambda param: f" (default: {defaults[param]})" if defaults and param in defaults else ""
    task_option(p, "--cell", "cell", task, choices=CELLS, help="recurrent cell")
    task_option(p, "--hidden", "hidden_size", task, type=positive_int,
                help="hidden units per layer" + note("hidden_size"))
    task_option(p, "--layers", "num_layers", task, type=positive_int, help="stacked recurrent layers")
    task_option(p, "--dropout", "dropout", task, type=fraction,
                help=f"dropout {dropout_where}" + note("dropout"))


def add_training_options(p, fit: str) -> None:
    """--epochs, --time-limit, --optimizer, --lr, --clip, --patience of ``fit`` ("module:Class.fit"),
    and --workers (data-parallel processes, :mod:`rnnkit.cli.workers`)."""
    task_option(p, "--epochs", "epochs", fit, type=positive_int, help="passes over the training data at most")
    task_option(p, "--time-limit", "time_limit", fit, type=positive_float, metavar="SECONDS",
                help="seconds for the whole command: reading the data, training (the best weights so far "
                     "are kept), the evaluations and the report")
    task_option(p, "--optimizer", "optimizer", fit, choices=OPTIMIZERS, help="the optimizer")
    task_option(p, "--lr", "lr", fit, type=positive_float, help="learning rate")
    task_option(p, "--clip", "clip", fit, type=clip_bound, metavar="NORM",
                help="bound on the global gradient norm; 'none' turns clipping off")
    task_option(p, "--patience", "patience", fit, type=positive_int,
                help="stop after this many epochs without a better validation loss")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="train data-parallel in N processes on this machine (needs rnnkit[mpi]); "
                        "--batch stays the global batch. Across machines: mpiexec -n N rnnkit ...")


def add_run_options(p, task: str, seed_help: str) -> None:
    """--seed (of ``task``), --force, --quiet of a training command."""
    task_option(p, "--seed", "seed", task, type=nonneg_int, help=seed_help)
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def threads_arg(text: str):
    """``--threads``: "auto" or a whole number >= 1."""
    if text.strip().lower() == "auto":
        return "auto"
    return positive_int(text)


def add_threads_option(p) -> None:
    p.add_argument("--threads", type=threads_arg, default="auto", metavar="N|auto",
                   help="threads of rnnkit's compiled time loop and of the BLAS behind NumPy. auto: the loop "
                        "may use every CPU and each call takes as many as its size pays for and the CPUs "
                        "other processes leave free (one on a busy machine), the BLAS one thread; N: N for "
                        "both (OMP_NUM_THREADS, unless set), whatever the load (an LSTM step of B=32, H=64: "
                        "1.8 ms on one thread, 0.2-0.3 s on two with other work on the cores)")


def add_encoding_option(p) -> None:
    p.add_argument("--encoding", default=None, metavar="NAME",
                   help="the encoding of the input files (default: UTF-8 when they are; else told by a "
                        "byte-order mark, or read as Windows-1252, which is said): cp1251, shift_jis, …")


def add_quantize_option(p, what: str) -> None:
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help=f"run the recurrent layers with int8 weights ({what}): a generation step reads "
                        f"a quarter of the bytes and runs about 2x faster; the loss moves by far less "
                        f"than 0.01 nats/char")


def add_command(subparsers, name: str, summary: str, description: str, example: str):
    """A subcommand with a description and an ``example:`` epilog."""
    return subparsers.add_parser(name, help=summary, description=description,
                                 epilog="example:\n" + indent(example.strip(), "  "),
                                 formatter_class=HelpFormatter)


# -- small helpers of the commands -------------------------------------------------------------

def echo(args, *lines) -> None:
    """Progress for people, on stdout, unless --quiet."""
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line, flush=True)


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def check_out_dir(path, option: str = "--out") -> Path:
    """``path`` as a directory to write into; an existing file there is an error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RnnkitError(f"{option} {path}: is an existing file, not a directory; choose another {option}")
    return p


def check_out_file(path, option: str = "--out", example: str = "units.html") -> Path:
    """``path`` as a file to write; an existing directory there is an error."""
    p = Path(path)
    if p.is_dir():
        raise RnnkitError(f"{option} {path}: is a directory; give a file name such as {p / example}")
    return p


def guard_model_dir(path: Path, force: bool, option: str = "--out", extra: str = "") -> None:
    """Refuse to train into a directory that already holds a trained model, unless forced:
    then the last run's results (:data:`rnnkit.tasks.run.RESULT_FILES`) are removed, so a run
    stopped early never shows them beside its own model (data parallel: rank 0 removes them,
    after every rank's check, :func:`all_ranks_checked`)."""
    from rnnkit.distributed import world
    from rnnkit.tasks.run import RESULT_FILES, saved_task

    held = (path / "config.json").is_file()
    if not force and held:
        task = saved_task(path)
        what = f"a trained model (task {task!r})" if task else "a model checkpoint"
        raise RnnkitError(f"{option} {path}: already holds {what}; pass --force to replace it{extra}, "
                          f"or choose another {option}")
    all_ranks_checked()
    if held and world().is_root:
        for name in RESULT_FILES:
            try:
                (path / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise RnnkitError(f"{option} {path}: cannot remove the last run's {name}: "
                                  f"{exc.strerror or exc}") from exc


def all_ranks_checked() -> None:
    """Data parallel: wait until every rank has looked at the run directory, so rank 0's
    first write cannot make another rank's check fail."""
    from rnnkit.distributed import world

    world().barrier()


def interrupted(what: str) -> int:
    """Say on stderr that Ctrl-C stopped training and what was kept (data parallel: rank 0
    says it); exit status 130."""
    import sys

    from rnnkit.distributed import world

    if world().is_root:
        print(what, file=sys.stderr)
    return 130
