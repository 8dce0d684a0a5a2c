"""Diagnostic commands: ``gradients``, ``memory`` and ``activations``."""

from __future__ import annotations

import os

from rnnkit.cli.common import (DIAGNOSTIC_CELLS, MEMORY_CELLS, OPTIMIZERS, add_command, cell_list, check_out_dir,
                               check_out_file, clip_bound, echo, finite_float, nonneg_int, positive_float,
                               positive_int)


def register(sub) -> None:
    p = add_command(sub, "activations", "show which units of a language model track quotes, lines, brackets",
                    "Run a trained language model over TEXT, rank its units by correlation with simple\n"
                    "properties of the text (inside quotes, position in the line, inside brackets, spaces)\n"
                    "and write an HTML page with the text coloured by the best units and gate heat maps.",
                    "rnnkit activations runs/book sample.txt --out units.html")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("text", metavar="TEXT", help="UTF-8 text file to read with the model")
    p.add_argument("--out", required=True, metavar="FILE", help="HTML file to write")
    p.add_argument("--top", type=positive_int, default=6, help="units to show")
    p.add_argument("--max-chars", type=positive_int, default=2000, help="read at most this much of TEXT")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_activations)

    p = add_command(sub, "gradients", "measure vanishing and exploding gradients through time",
                    "For freshly initialised cells, run one random sequence of --length steps and measure\n"
                    "||dL/dh_t|| for every t with L read at the last step, and the Jacobian norms\n"
                    "||dh_T/dh_t||. Prints a table and writes gradients.json, gradients.png, report.html.",
                    "rnnkit gradients --cell rnn,rnn-relu,lstm,gru --length 200 --out runs/grad\n"
                    "rnnkit gradients --cell rnn --init radius=1.1 --out runs/explode")
    p.add_argument("--cell", type=cell_list(DIAGNOSTIC_CELLS), default="rnn,rnn-relu,lstm,gru",
                   help=f"comma-separated cells from {','.join(DIAGNOSTIC_CELLS)}")
    p.add_argument("--length", type=positive_int, default=200, help="time steps T (at least 2)")
    p.add_argument("--init", type=init_scheme, default="default",
                   help="weights: default, xavier_orthogonal or radius=R (W_hh scaled to spectral radius R)")
    p.add_argument("--hidden", type=positive_int, default=64, help="hidden units")
    p.add_argument("--forget-bias", type=finite_float, default=None, help="LSTM forget-gate bias")
    p.add_argument("--norm", choices=("spectral", "frobenius"), default="spectral", help="matrix norm of Jacobians")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of weights and inputs")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_gradients)

    p = add_command(sub, "memory", "train cells on long-range memory tasks against a no-memory baseline",
                    "Train each cell on the adding problem, copy memory or sequential digits and report\n"
                    "the best loss and how many steps it took to get below 0.9 x the no-memory baseline.\n"
                    "Writes memory.json, memory.png and report.html.",
                    "rnnkit memory --task adding --length 100 --cell rnn,irnn,lstm,gru --steps 2000 --out runs/adding")
    p.add_argument("--task", choices=("adding", "copy", "digits"), default="adding", help="the benchmark")
    p.add_argument("--length", type=positive_int, default=100, help="sequence length T (digits: always 8)")
    p.add_argument("--cell", type=cell_list(MEMORY_CELLS), default="rnn,irnn,lstm,gru",
                   help=f"comma-separated cells from {','.join(MEMORY_CELLS)}")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimizer steps per cell")
    setup = ("(default: each cell's setup, rnnkit.diagnostics.memory.memory_setup: its paper's where "
             "MEMORY_SETUP has one, e.g. indrnn 128 units, 2 layers, batch 50, adam 2e-4; else {})")
    p.add_argument("--hidden", type=positive_int, default=None, help="hidden units " + setup.format("64"))
    p.add_argument("--batch", type=positive_int, default=None, help="sequences per step " + setup.format("32"))
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="the optimizer " + setup.format("adam"))
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate " + setup.format("with adam MEMORY_ADAM_LR per cell, e.g. 2e-3 for "
                                                        "rnn/irnn, 1e-2 for lstm/gru; else the optimizer's default"))
    p.add_argument("--clip", type=clip_bound, default=1.0, metavar="NORM",
                   help="bound on the global gradient norm; 'none' turns clipping off")
    p.add_argument("--eval-size", type=positive_int, default=512, help="held-out sequences of each evaluation")
    p.add_argument("--layers", type=positive_int, default=None,
                   help="recurrent layers of each model " + setup.format("1"))
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="SECONDS",
                   help="wall-clock seconds per cell; a cell stops at the first evaluation past it")
    p.add_argument("--stop-when-solved", action="store_true",
                   help="end a cell's run once it solves the task (adding: MSE < 0.01; copy: < 0.1 nats "
                        "per recalled symbol)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of weights and data")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="directory to write; each cell's run is saved to DIR/checkpoints/CELL after every "
                        "evaluation")
    p.add_argument("--resume", action="store_true",
                   help="continue each cell from DIR/checkpoints/CELL where an earlier run with the same "
                        "settings saved it (stopped by --time-limit, Ctrl-C or a crash), step for step as "
                        "if it had not stopped; --steps counts the earlier steps too")
    p.add_argument("--quiet", action="store_true", help="print nothing while training")
    p.set_defaults(func=cmd_memory)


def init_scheme(text: str) -> str:
    """An argparse type: the weight initialisation of ``gradients`` (checked by the library's parser)."""
    import argparse

    from rnnkit.diagnostics._cellspec import parse_init

    try:
        parse_init(text, "--init")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--init: ")) from None
    return text


def cmd_gradients(args) -> int:
    from rnnkit.diagnostics import run_gradients
    from rnnkit.report import write_table_report

    from rnnkit import limits

    # inputs, states and gate caches of 4 sequences per cell, and the H x H Jacobians
    limits.check_bytes(8 * (args.length * 4 * (8 + 16 * args.hidden) + 8 * args.hidden ** 2),
                       f"--length {args.length} --hidden {args.hidden}", "the activations and Jacobians")
    out = check_out_dir(args.out)
    res = run_gradients(out, cells=args.cell, length=args.length, init=args.init, hidden=args.hidden,
                        seed=args.seed, forget_bias=args.forget_bias, norm=args.norm)
    report = write_table_report(out, "gradient flow through time", res["table"], res["png"], res.get("note"))
    echo(args, res["table"], f"wrote {res['json']}" + (f", {res['png']}" if res["png"] else ""),
         f"report: {report}")
    return 0


def cmd_memory(args) -> int:
    from rnnkit.diagnostics import format_memory_table, run_memory
    from rnnkit.diagnostics.memory import MEMORY_HEAD, memory_setup
    from rnnkit.report import write_table_report

    from rnnkit import limits

    # the task's sequences (--eval-size of them per set, 4 numbers a step) and a batch's
    # activations, for the largest of the cells' setups
    for cell in args.cell:
        s = memory_setup(cell, args.hidden, args.layers, args.batch)
        B, H = s["batch"], s["hidden"]
        limits.check_bytes(8 * args.length * (args.eval_size * 4 + B * 24 * H * s["layers"]) + 64 * H ** 2,
                           f"--length {args.length} --batch {B} --hidden {H} (cell {cell})",
                           "the sequences and activations")
    out = check_out_dir(args.out)
    log = None
    if not args.quiet:
        limit = f" or {args.time_limit:g} s" if args.time_limit else ""
        print(f"{args.task} task, T = {args.length}: training {', '.join(args.cell)} for {args.steps} steps{limit} "
              f"each", flush=True)
        print(MEMORY_HEAD, flush=True)
        log = lambda line: print(line, flush=True)  # noqa: E731
    res = run_memory(task=args.task, length=args.length, cells=args.cell, steps=args.steps, out_dir=out,
                     hidden=args.hidden, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                     clip=args.clip, seed=args.seed, log=log, eval_size=args.eval_size, num_layers=args.layers, time_limit=args.time_limit,
                     stop_when_solved=args.stop_when_solved, resume=args.resume)
    report = write_table_report(out, f"memory: {args.task} task", format_memory_table(res), res.get("png"),
                                res.get("note"))
    # the rows were printed as each cell finished; the table's first line says what they mean
    echo(args, res["table"].split("\n")[0], f"wrote {res['json']}" + (f", {res['png']}" if res.get("png") else ""),
         f"report: {report}")
    return 0


def cmd_activations(args) -> int:
    from rnnkit.data.text import read_text
    from rnnkit.diagnostics import write_activation_report
    from rnnkit.tasks.lm import CharLanguageModel

    out = check_out_file(args.out)
    lm = CharLanguageModel.load(args.model)
    text = read_text(args.text, max_chars=args.max_chars)
    res = write_activation_report(out, lm.model_, text, lm.vocab_, top=args.top,
                                  title=f"What the units of {os.fspath(args.model)} see")
    lines = [f"{'unit':<16} {'feature':<18} {'correlation':>11}"]
    for u in res["units"]:
        lines.append(_unit_line(u))
    echo(args, *lines, f"report: {res['path']}")
    return 0


def _unit_line(u) -> str:
    if isinstance(u, dict):
        name = f"layer {u.get('layer')} {u.get('part')}[{u.get('unit')}]"
        return f"{name:<16} {str(u.get('feature')):<18} {float(u.get('corr', float('nan'))):>11.3f}"
    return str(u)
