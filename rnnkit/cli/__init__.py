"""The ``rnnkit`` command: parses arguments and calls a task, nothing more.

    parser.py       the parser and main(): errors become exit statuses here, only here
    common.py       argument types, option groups (each default written once), out-dir checks
    lm.py           train-lm, generate
    apply.py        evaluate (and predict) DIR INPUT: any saved model on new data
    forecast.py     forecast
    classify.py     classify
    seq2seq.py      seq2seq
    diagnostics.py  gradients, memory, activations
    extras.py       demo, bench, info

Task modules are imported inside the commands, so ``rnnkit --help`` starts fast.
"""

from rnnkit.cli.parser import build_parser, main

__all__ = ["main", "build_parser"]
