"""``rnnkit classify``: train a sequence classifier on labelled series, text or audio."""

from __future__ import annotations

import argparse

from rnnkit.cli.common import (MODEL_PARAMS, TRAINING_PARAMS, add_command, add_model_options, add_run_options,
                               add_training_options, check_out_dir, echo, fraction, given, guard_model_dir,
                               interrupted, nonneg_int, positive_int, task_option)

TASK = "rnnkit.tasks.classify:SequenceClassifier"
FIT = TASK + ".fit"


def register(sub) -> None:
    p = add_command(sub, "classify", "train a sequence classifier on labelled series, text or audio",
                    "Train a many-to-one classifier (recurrent layer, mean+max/attention/mean/last pooling, softmax).\n"
                    "TRAIN (and --test) is one of (--input auto tells them apart):\n"
                    "  text    lines 'label<TAB>text' or 'text<TAB>label' (intents, reviews, DNA/protein\n"
                    "          sequences), a CSV whose header names a text and a label column (or a label column\n"
                    "          and text columns, as AG News), fastText '__label__X text' lines, .jsonl of a text\n"
                    "          and a label key, or a folder of one sub-directory per label of documents (aclImdb);\n"
                    "          tokens are characters or words (--tokens), unseen ones go to an unknown bucket\n"
                    "  audio   a directory with one sub-directory per label holding .wav files (PCM 8/16/24/32-\n"
                    "          bit or float, any rate, mono or stereo), or of files named LABEL_anything.wav, or a\n"
                    "          CSV listing the clips and their labels (ESC-50); read as MFCC or log-mel frames\n"
                    "          (--features); folders named _x (noise) are passed over\n"
                    "  series  UCR .tsv (label, then values), UEA .ts and .arff (multivariate too), the\n"
                    "          archive's .txt (label, then values), CSV with one series per row (the label\n"
                    "          column named label/class/target, else first or last), or a long CSV\n"
                    "          'id,label,t,ch1,ch2,...' with one row per time step and several channels\n"
                    "          (sensor data; the id column groups a case), a recorded stream 'user,activity,\n"
                    "          timestamp,x,y,z' (a header is optional, as in WISDM's raw files; a case is a run of\n"
                    "          rows of one user and activity; --window cuts it), a folder of one file per channel\n"
                    "          (a row per recording) and y_*.txt labels, as the UCI HAR data set is laid out, or a\n"
                    "          folder of one sub-directory per label of recordings, a row per step (MotionSense)\n"
                    "A stratified --val-fraction of TRAIN validates; --test is scored at the end.\n"
                    "DIR receives the model, metrics.json, confusion_matrix.png (and _test), predictions.csv\n"
                    "(with --test), training.png and report.html.",
                    "rnnkit classify intents_train.tsv --test intents_test.tsv --out runs/intent\n"
                    "rnnkit classify digits/train --test digits/test --out runs/digits --features mfcc\n"
                    "rnnkit classify GunPoint_TRAIN.tsv --test GunPoint_TEST.tsv --out runs/gunpoint --time-limit 120")
    p.add_argument("train", metavar="TRAIN", help="labelled training file or directory (see above)")
    p.add_argument("--test", default=None, metavar="TEST", help="labelled test file or directory of the same kind")
    p.add_argument("--input", choices=("auto", "series", "text", "audio"), default="auto",
                   help="what TRAIN holds (auto: told by the layouts above)")
    p.add_argument("--tokens", choices=("auto", "char", "word"), default="auto",
                   help="text tokens (auto: characters for DNA/protein and unspaced text, else words)")
    p.add_argument("--features", choices=("mfcc", "logmel"), default="mfcc",
                   help="audio features per 10 ms frame: MFCC with deltas (39) or log-mel energies (40)")
    p.add_argument("--augment", type=nonneg_int, default=None, metavar="N",
                   help="audio: random variants of each training clip (default: 8 when a class has fewer "
                        "than 100 clips, else 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    add_model_options(p, TASK, {"hidden_size": "64; 32 for fewer than 1000 strings",
                                "dropout": "0.3 for strings, 0 for series and audio"})
    task_option(p, "--bidirectional", "bidirectional", TASK, action=argparse.BooleanOptionalAction,
                help="read the series in both directions")
    task_option(p, "--pooling", "pooling", TASK, choices=("auto", "meanmax", "attention", "mean", "last"),
                help="how the states over time become one vector (auto: meanmax for series and for "
                     "strings of one length, attention for other text and audio)")
    p.add_argument("--balanced", action="store_true", help="weight classes inversely to their frequency "
                                                           "(default: the square root of that weight)")
    task_option(p, "--ensemble", "ensemble", TASK, type=positive_int,
                help="train N networks from successive seeds and average their probabilities (default: 3 for "
                     "fewer than 1000 series, else 1; 5 cross-fitted ones when the set is too small for a "
                     "validation part and a second model, n-grams or kernels, joins them)")
    task_option(p, "--ngrams", "ngrams", TASK, choices=("auto", "on", "off"),
                help="average the networks' probabilities with a linear model on TF-IDF n-grams of the tokens, "
                     "weighted by the validation part's likelihood (without one, by out-of-fold predictions "
                     "of cross-fitted networks; auto: on for text and DNA, off for series and audio)")
    task_option(p, "--kernels", "kernels", TASK, choices=("auto", "on", "off"),
                help="average the networks' probabilities with ROCKET's: a ridge classifier on 10000 random "
                     "dilated convolutions of each series, weighted as --ngrams is (auto: on for numeric "
                     "series up to 3000 training series, off for strings and audio)")
    task_option(p, "--missing", "missing", TASK + ".fit_files", choices=("error", "trim", "interpolate"),
                help="missing values: error, trim the padding at the end, or interpolate")
    task_option(p, "--window", "window", TASK + ".fit_files", type=positive_int, metavar="STEPS",
                help="cut every series (a recording of minutes) into windows of STEPS steps, each an example "
                     "with the series' label; predict and evaluate cut theirs the same way")
    task_option(p, "--val-fraction", "val_fraction", FIT, type=fraction, help="stratified validation part of TRAIN")
    task_option(p, "--batch", "batch_size", TASK, type=positive_int, help="sequences per step")
    add_training_options(p, FIT)
    add_run_options(p, TASK, seed_help="seed of weights, split and data order")
    p.set_defaults(func=cmd_classify)


def _parts_text(parts: dict) -> str:
    """" (networks alone …, n-grams alone …, n-gram weight …)" for the CLI line."""
    if "ngrams" in parts:
        return (f" (networks alone {parts['networks']:.4f}, n-grams alone {parts['ngrams']:.4f}, "
                f"n-gram weight {parts['ngram_weight']:g})")
    return (f" (networks alone {parts['networks']:.4f}, kernels alone {parts['kernels']:.4f}, "
            f"kernel weight {parts['kernel_weight']:g})")


def cmd_classify(args) -> int:
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.run import a_cell

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    clf = SequenceClassifier(**({"class_weight": "balanced"} if args.balanced else {}), tokens=args.tokens,
                             **given(args, *MODEL_PARAMS, "bidirectional", "ensemble", "pooling", "batch_size",
                                     "seed", "ngrams", "kernels"))
    echo(args, f"training {a_cell(clf.cell)} classifier on {args.train}")
    clf.fit_files(args.train, args.test, input=args.input, features=args.features, augment=args.augment,
                  out_dir=out, quiet=args.quiet, **given(args, "missing", "window", "val_fraction", *TRAINING_PARAMS))
    if clf.history_.interrupted:
        return interrupted(f"interrupted at step {clf.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    for name, ev in (("validation", clf.val_evaluation_), ("test", clf.test_evaluation_)):
        if ev is not None:
            parts = ev.get("parts")
            lines.append(f"{name} accuracy {float(ev['accuracy']):.4f}, macro F1 {float(ev['macro_f1']):.4f}"
                         + (_parts_text(parts) if parts else ""))
    echo(args, *lines, f"model and metrics: {out}", f"report: {out / 'report.html'}")
    return 0
