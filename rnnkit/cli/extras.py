"""``rnnkit demo``, ``rnnkit example``, ``rnnkit bench`` and ``rnnkit info``: entries to library functions
with their own output."""

from __future__ import annotations

import argparse
import json
import sys

from rnnkit.cli.common import add_command, nonneg_int, positive_float


def register_demo(sub) -> None:
    p = add_command(sub, "demo", "train a character model and a forecaster on data already on this machine",
                    "Train a small character LSTM on Python's own standard-library source, printing samples\n"
                    "as it learns; then a forecaster on a built-in daily series, backtested against naive and\n"
                    "seasonal-naive baselines. Writes one report.html linking both runs. Nothing is downloaded.",
                    "rnnkit demo --out rnnkit-demo --time-limit 120")
    p.add_argument("--out", default="rnnkit-demo", metavar="DIR", help="directory for the runs and report.html")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="SECONDS",
                   help="wall-time budget of the whole demo (default 110, or 8 with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny models for a few seconds: a smoke test")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of weights, data order and samples")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files that "
                                                        "are not from a demo")
    p.add_argument("--quiet", action="store_true", help="print only where the report is")
    p.set_defaults(func=cmd_demo)


def register_example(sub) -> None:
    from rnnkit.data.examples import EXAMPLES

    p = add_command(sub, "example", "write a small generated example for an application (seconds)",
                    "Write generated files in the layout a command reads, to try it offline in seconds:\n"
                    "  intent, dna    train.tsv, test.tsv ('label<TAB>text')         -> rnnkit classify\n"
                    "  speech         train/<word>/*.wav, test/<word>/*.wav          -> rnnkit classify\n"
                    "  activity       train.csv, test.csv ('id,label,t,ax,ay,az')    -> rnnkit classify\n"
                    "  translation    pairs_train.tsv, pairs_test.tsv                -> rnnkit seq2seq\n"
                    "  stores         stores.csv ('store,time,sales,promo,temp')     -> rnnkit forecast\n"
                    "The data are synthetic: they show the commands work, they measure nothing.",
                    "rnnkit example speech ex/speech\n"
                    "rnnkit classify ex/speech/train --test ex/speech/test --out runs/speech")
    p.add_argument("name", choices=sorted(EXAMPLES), help="which example")
    p.add_argument("dir", metavar="DIR", help="directory to write (created if missing)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the generated data")
    p.set_defaults(func=cmd_example)


def cmd_example(args) -> int:
    import os

    from rnnkit.data.examples import write_example
    from rnnkit.errors import RnnkitError

    if os.path.isfile(args.dir):
        raise RnnkitError(f"example: {args.dir} is a file; give a directory")
    path = write_example(args.name, args.dir, seed=args.seed)
    print("\n".join(sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs)[:8]))
    print(f"written to {path}")
    return 0


def register_bench(sub) -> None:
    # bench parses its own options (rnnkit.bench); listed here for `rnnkit --help`
    p = sub.add_parser("bench", add_help=False, help="time forward/BPTT against other implementations "
                                                     "(`rnnkit bench --help` for options)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of rnnkit bench")
    p.set_defaults(func=lambda a: cmd_bench(a.args))


def register_info(sub) -> None:
    p = add_command(sub, "info", "versions, which recurrent loops run (C or NumPy) and the BLAS in use",
                    "Print the versions, whether the compiled loops run (their instruction set and\n"
                    "OpenMP threads) or the NumPy cells (and why), and the BLAS behind NumPy.",
                    "rnnkit info --json")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    from rnnkit.info import format_info, info

    d = info()
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def cmd_demo(args) -> int:
    from rnnkit.demo import run_demo

    result = run_demo(out=args.out, time_limit=args.time_limit, quick=args.quick, seed=args.seed,
                      echo=None if args.quiet else print, force=args.force)
    if result.get("interrupted"):
        print(f"interrupted; what was finished is in {result['out']}", file=sys.stderr)
        return 130
    print(f"report: {result['report']}")
    return 0


def cmd_bench(argv) -> int:
    from rnnkit import bench
    from rnnkit.errors import RnnkitError

    try:
        return int(bench.main(argv) or 0)
    except ValueError as exc:
        # rnnkit.bench checks its own command-line options and reports them as ValueError
        raise RnnkitError(str(exc)) from exc
