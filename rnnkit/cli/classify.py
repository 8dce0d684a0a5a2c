"""``rnnkit classify``: train a sequence classifier on labelled series files."""

from __future__ import annotations

import argparse

from rnnkit.cli.common import (MODEL_PARAMS, TRAINING_PARAMS, add_command, add_model_options, add_run_options,
                               add_training_options, check_out_dir, echo, fraction, given, guard_model_dir,
                               interrupted, positive_int, task_option)

TASK = "rnnkit.tasks.classify:SequenceClassifier"
FIT = TASK + ".fit"


def register(sub) -> None:
    p = add_command(sub, "classify", "train a sequence classifier on labelled series (UCR .tsv, UEA .ts, CSV)",
                    "Train a many-to-one classifier (recurrent layer, attention/mean/last pooling, softmax).\n"
                    "Files: UCR .tsv (label, then values), UEA .ts, or CSV (one series per row, label first),\n"
                    "chosen by suffix. A stratified --val-fraction of TRAIN validates; --test is scored at the end.\n"
                    "DIR receives the model, metrics.json, confusion_matrix.png (and _test), predictions.csv\n"
                    "(with --test), training.png and report.html.",
                    "rnnkit classify GunPoint_TRAIN.tsv --test GunPoint_TEST.tsv --out runs/gunpoint --time-limit 120")
    p.add_argument("train", metavar="TRAIN", help="labelled training file (.tsv, .ts or .csv)")
    p.add_argument("--test", default=None, metavar="TEST", help="labelled test file of the same format")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    add_model_options(p, TASK)
    task_option(p, "--bidirectional", "bidirectional", TASK, action=argparse.BooleanOptionalAction,
                help="read the series in both directions")
    task_option(p, "--pooling", "pooling", TASK, choices=("attention", "mean", "last"),
                help="how the states over time become one vector")
    p.add_argument("--balanced", action="store_true", help="weight classes inversely to their frequency "
                                                           "(default: the square root of that weight)")
    task_option(p, "--ensemble", "ensemble", TASK, type=positive_int,
                help="train N networks from successive seeds and average their probabilities")
    task_option(p, "--missing", "missing", TASK + ".fit_files", choices=("error", "trim", "interpolate"),
                help="missing values: error, trim the padding at the end, or interpolate")
    task_option(p, "--val-fraction", "val_fraction", FIT, type=fraction, help="stratified validation part of TRAIN")
    task_option(p, "--batch", "batch_size", TASK, type=positive_int, help="sequences per step")
    add_training_options(p, FIT)
    add_run_options(p, TASK, seed_help="seed of weights, split and data order")
    p.set_defaults(func=cmd_classify)


def cmd_classify(args) -> int:
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.run import a_cell

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    clf = SequenceClassifier(**({"class_weight": "balanced"} if args.balanced else {}),
                             **given(args, *MODEL_PARAMS, "bidirectional", "ensemble", "pooling", "batch_size",
                                     "seed"))
    echo(args, f"training {a_cell(clf.cell)} classifier on {args.train}")
    clf.fit_files(args.train, args.test, out_dir=out, quiet=args.quiet,
                  **given(args, "missing", "val_fraction", *TRAINING_PARAMS))
    if clf.history_.interrupted:
        return interrupted(f"interrupted at step {clf.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    for name, ev in (("validation", clf.val_evaluation_), ("test", clf.test_evaluation_)):
        if ev is not None:
            lines.append(f"{name} accuracy {float(ev['accuracy']):.4f}, macro F1 {float(ev['macro_f1']):.4f}")
    echo(args, *lines, f"model and metrics: {out}", f"report: {out / 'report.html'}")
    return 0
