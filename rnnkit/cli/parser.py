"""The ``rnnkit`` parser and :func:`main`, the one place errors become exit statuses.

Exit status: 0 done; 1 an error of the input or the run (:class:`~rnnkit.errors.RnnkitError`:
one line ``error: …`` on stderr); 2 a usage error (argparse's message); 70 a bug (any
other exception: the traceback and a line saying it is a bug); 130 interrupted
(Ctrl-C; training saves its checkpoint first); 141 stdout closed early.
``RNNKIT_DEBUG=1`` lets every exception propagate, with its traceback.

Data parallel (:mod:`rnnkit.distributed`): ``--workers N`` starts the command again
as N MPI processes (``mpiexec -n N``) on this machine and returns their exit status;
under a launcher with several processes only rank 0 prints to stdout, and a rank that
fails ends every rank (``MPI_Abort``), since the others could be waiting for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from rnnkit._version import __version__
from rnnkit.cli import apply, classify, diagnostics, extras, forecast, lm, messages, seq2seq
from rnnkit.cli.common import HelpFormatter, add_encoding_option, add_threads_option
from rnnkit.errors import DataNote, RnnkitError

__all__ = ["build_parser", "main"]

#: what adds each command group, in the order ``rnnkit --help`` lists them
GROUPS = (extras.register_demo, lm.register, apply.register, forecast.register, classify.register,
          seq2seq.register, extras.register_example, diagnostics.register, extras.register_bench,
          extras.register_info)
EXIT_BUG = 70
#: the commands that read the user's text or CSV files (--encoding)
READS_FILES = ("train-lm", "predict", "evaluate", "forecast", "classify", "seq2seq", "activations")
#: the training commands, whose --time-limit covers the whole command (rnnkit.deadline)
TIMED_COMMANDS = ("demo", "train-lm", "forecast", "classify", "seq2seq")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", formatter_class=HelpFormatter,
        description="Recurrent neural networks (RNN, LSTM, GRU) trained by hand-written BPTT in NumPy.\n"
                    "Start with `rnnkit demo`: it needs no download and takes about two minutes.",
        epilog="example:\n  rnnkit demo\n  rnnkit train-lm book.txt --out runs/book --time-limit 600\n"
               "  rnnkit generate runs/book --prompt 'The ' --length 300\n\n"
               "`rnnkit COMMAND --help` describes a command.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in GROUPS:
        register(sub)
    for name, p in sub.choices.items():
        if name not in ("bench", "info"):   # bench has its own --threads (for every worker it starts)
            add_threads_option(p)
        if name in READS_FILES:
            add_encoding_option(p)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    return parser


def _debug() -> bool:
    return os.environ.get("RNNKIT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    """Run the ``rnnkit`` command; returns the exit status (see the module docstring)."""
    from rnnkit.blas import blas_threads

    argv = list(sys.argv[1:] if argv is None else argv)
    flags: set[str] = set()
    try:
        if argv and argv[0] == "bench":
            return extras.cmd_bench(argv[1:])      # bench parses its own options (and --help)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command in TIMED_COMMANDS and getattr(args, "time_limit", None) is not None:
            # a training command's --time-limit covers the whole command from here: reading the
            # data, training, the evaluations and the report (rnnkit.deadline)
            from rnnkit.deadline import Deadline

            args.time_limit = Deadline(args.time_limit)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        workers = getattr(args, "workers", None)
        threads = getattr(args, "threads", None)
        if threads == "auto":
            # the loops choose per call (rnnkit.fast._util.threads_for_call) up to every CPU;
            # the BLAS, whose products sit between them, keeps to one thread
            threads, blas = None, 1
        else:
            blas = threads
        if workers is not None:
            from rnnkit.cli.workers import start_workers
            status = start_workers(argv, workers, threads)
            if status is not None:
                return status
        _quiet_other_ranks()
        if threads is not None and "OMP_NUM_THREADS" not in os.environ:
            # read by OpenMP when rnnkit.fast's library first loads (later in this command)
            os.environ["OMP_NUM_THREADS"] = str(threads)
        flags = messages.option_strings(_subparser(parser, args.command))
        # overflow in NumPy is checked for where it matters (a clear error, exit 1);
        # its RuntimeWarnings would only add lines to that one-line message
        from rnnkit.data._util import input_encoding

        try:
            encoding = input_encoding(getattr(args, "encoding", None))
        except ValueError as exc:
            print(f"rnnkit {args.command}: error: --encoding: {exc}", file=sys.stderr)
            return 2
        with blas_threads(blas), warnings.catch_warnings(), encoding:
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.showwarning = printer = _note_printer(args, warnings.showwarning)
            status = int(args.func(args) or 0)
            printer.flush()
            return _all_done(status)
    except SystemExit as exc:            # argparse: --help, --version, usage errors
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return _ranked(130)
    except BrokenPipeError:
        # stdout was closed early (`rnnkit generate … | head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except RnnkitError as exc:
        if _debug():
            raise
        print(f"error: {messages.for_command(str(exc) or type(exc).__name__, flags)}", file=sys.stderr)
        return _ranked(1)
    except Exception:
        if _debug():
            raise
        traceback.print_exc()
        print(f"rnnkit {__version__}: this is a bug in rnnkit, not a problem with your input; please report "
              f"it with the traceback above and the command line", file=sys.stderr)
        return _ranked(EXIT_BUG)


def _note_printer(args, show):
    """A ``warnings.showwarning`` that prints each distinct :class:`DataNote` once, as a
    line of the command's progress (none with --quiet), and passes other warnings to
    ``show``. Where stdout carries the command's data (evaluate's JSON, predict's CSV) the
    notes are kept and go to stderr when the command has succeeded (``flush()``): a failed
    command's stderr stays its one error line."""
    from rnnkit.cli.common import echo

    seen, kept = set(), []
    data_out = args.command == "evaluate" or (args.command == "predict" and getattr(args, "out", None) is None)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, DataNote):
            return show(message, category, filename, lineno, file, line)
        if str(message) not in seen:
            seen.add(str(message))
            if data_out:
                kept.append(str(message))
            else:
                echo(args, str(message))

    def flush():
        if not getattr(args, "quiet", False):
            for note in kept:
                print(note, file=sys.stderr, flush=True)
        kept.clear()

    showwarning.flush = flush
    return showwarning


def _quiet_other_ranks() -> None:
    """Under MPI with several ranks, ranks other than 0 print nothing to stdout: they run
    the same command and would repeat rank 0's output (errors still go to stderr)."""
    from rnnkit.distributed import launched_size, world

    if launched_size() > 1 and not world().is_root:
        sys.stdout = open(os.devnull, "w")


def _all_done(status: int) -> int:
    """``status`` once every rank has finished the command: under MPI the other ranks wait
    for rank 0 to write its outputs (the launcher ends every rank when one exits with a
    status other than 0, e.g. 130 after an interrupted run)."""
    from rnnkit.distributed import launched_size, world

    if launched_size() > 1:
        world().barrier()
    return status


def _ranked(status: int) -> int:
    """``status`` of a command that failed; under MPI with several ranks the failure ends
    every rank at once, since the others could be waiting for this one in a collective."""
    from rnnkit.distributed import launched_size, world

    if launched_size() > 1:
        world().abort(status)
    return status
