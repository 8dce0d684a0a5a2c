"""``rnnkit classify``: train a sequence classifier on labelled series files."""

from __future__ import annotations

from rnnkit.cli.common import (add_command, add_model_options, add_run_options, add_training_options,
                               check_out_dir, echo, fraction, guard_model_dir, interrupted, positive_int)


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
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.run import a_cell

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    clf = SequenceClassifier(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
                             bidirectional=args.bidirectional, pooling=args.pooling, dropout=args.dropout,
                             class_weight="balanced" if args.balanced else None, batch_size=args.batch,
                             seed=args.seed)
    echo(args, f"training {a_cell(args.cell)} classifier on {args.train}")
    clf.fit_files(args.train, args.test, missing=args.missing, val_fraction=args.val_fraction, epochs=args.epochs,
                  time_limit=args.time_limit, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
                  patience=args.patience, out_dir=out, quiet=args.quiet)
    if clf.history_.interrupted:
        return interrupted(f"interrupted at step {clf.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    for name, ev in (("validation", clf.val_evaluation_), ("test", clf.test_evaluation_)):
        if ev is not None:
            lines.append(f"{name} accuracy {float(ev['accuracy']):.4f}, macro F1 {float(ev['macro_f1']):.4f}")
    echo(args, *lines, f"model and metrics: {out}", f"report: {out / 'report.html'}")
    return 0
