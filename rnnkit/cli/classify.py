"""``rnnkit classify``: train a sequence classifier on labelled series files."""

from __future__ import annotations

import csv
import io
import os

from rnnkit.cli.common import (add_command, add_model_options, add_run_options, add_training_options,
                               check_out_dir, echo, fraction, guard_model_dir, interrupted, positive_int)
from rnnkit.errors import RnnkitError


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
    add_model_options(p, cell="gru", hidden=64)
    p.add_argument("--bidirectional", action="store_true", help="read the series in both directions")
    p.add_argument("--pooling", choices=("attention", "mean", "last"), default="attention",
                   help="how the states over time become one vector")
    p.add_argument("--balanced", action="store_true", help="weight classes inversely to their frequency")
    p.add_argument("--missing", choices=("error", "trim", "interpolate"), default="trim",
                   help="missing values: error, trim the padding at the end, or interpolate")
    p.add_argument("--val-fraction", type=fraction, default=0.15, help="stratified validation part of TRAIN")
    p.add_argument("--batch", type=positive_int, default=32, help="sequences per step")
    add_training_options(p, epochs=50, lr=5e-3, clip=1.0, patience=8)
    add_run_options(p, seed_help="seed of weights, split and data order")
    p.set_defaults(func=cmd_classify)


def cmd_classify(args) -> int:
    import numpy as np

    from rnnkit.data.ucr import read_labeled_file
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.run import a_cell, write_json, write_text

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    # read and compare both files first: a test class never seen in training fails before training
    X, y = read_labeled_file(args.train, args.missing)
    test = None
    if args.test is not None:
        Xt, yt = read_labeled_file(args.test, args.missing)
        known = set(y)
        unknown = sorted({c for c in yt if c not in known}, key=str)
        if unknown:
            raise RnnkitError(f"--test {args.test}: classes {', '.join(map(repr, unknown[:10]))} are not in the "
                              f"training file {args.train} (its classes: {', '.join(map(repr, sorted(known, key=str)[:20]))})")
        test = (Xt, yt)
    clf = SequenceClassifier(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
                             bidirectional=args.bidirectional, pooling=args.pooling, dropout=args.dropout,
                             class_weight="balanced" if args.balanced else None, batch_size=args.batch,
                             seed=args.seed)
    echo(args, f"training {a_cell(args.cell)} classifier on {len(X)} sequences of {len(set(y))} classes from {args.train}")
    clf.fit_files(args.train, args.test, missing=args.missing, val_fraction=args.val_fraction, epochs=args.epochs,
                  time_limit=args.time_limit, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
                  patience=args.patience, out_dir=out, quiet=args.quiet)
    metrics = {"classes": list(clf.classes_), "train_file": os.fspath(args.train),
               "test_file": None if args.test is None else os.fspath(args.test),
               "steps": clf.history_.step, "stop_reason": clf.history_.stop_reason,
               "validation": clf.val_evaluation_, "test": clf.test_evaluation_}
    write_json(out / "metrics.json", metrics)
    if test is not None:
        proba = clf.predict_proba(test[0])
        pred = np.argmax(proba, axis=1)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", "label", "predicted", "probability"])
        for i, (label, k) in enumerate(zip(test[1], pred)):
            w.writerow([i, label, clf.classes_[int(k)], repr(float(proba[i, k]))])
        write_text(out / "predictions.csv", buf.getvalue())
    if clf.history_.interrupted:
        return interrupted(f"interrupted at step {clf.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    for name, ev in (("validation", clf.val_evaluation_), ("test", clf.test_evaluation_)):
        if ev is not None:
            lines.append(f"{name} accuracy {float(ev['accuracy']):.4f}, macro F1 {float(ev['macro_f1']):.4f}")
    echo(args, *lines, f"model and metrics: {out}", f"report: {out / 'report.html'}")
    return 0
