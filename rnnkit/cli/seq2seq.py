"""``rnnkit seq2seq``: train an encoder-decoder with attention on text pairs, or translate with one."""

from __future__ import annotations

from rnnkit.cli.common import (MODEL_PARAMS, TRAINING_PARAMS, add_command, add_model_options, add_run_options,
                               add_training_options, check_out_dir, echo, fraction, given, guard_model_dir,
                               interrupted, positive_int, task_option)

TASK = "rnnkit.tasks.seq2seq:Seq2Seq"
FIT = TASK + ".fit"
from rnnkit.errors import RnnkitError


def register(sub) -> None:
    p = add_command(sub, "seq2seq", "train an encoder-decoder (translation) on text pairs, or translate with one",
                    "Train: --out DIR with --train FILE (lines 'source<TAB>target', a third column ignored, or a\n"
                    ".csv of two columns; a header line naming the columns is skipped)\n"
                    "or, without --train, the built-in task of reading dates written by people ('3 March 2021',\n"
                    "'Mar 3, 21') as ISO dates. The decoder attends over every encoder state (--attention);\n"
                    "tokens are characters or words (--tokens); a character or word training never saw maps to\n"
                    "an unknown token. With --test, metrics.json holds BLEU, chrF and exact match of the test\n"
                    "pairs (length-normalised beam search, --beam) beside a translation memory (the nearest\n"
                    "training source's target). DIR receives the model, metrics.json, char_accuracy.png,\n"
                    "attention.png, training.png and report.html (example translations, an attention map).\n"
                    "Translate: --model DIR followed by the inputs (or --input-file); prints 'input<TAB>output'.",
                    "rnnkit seq2seq --train pairs.tsv --test pairs_test.tsv --out runs/enfr --time-limit 900\n"
                    "rnnkit seq2seq --train train.en train.de --test test.en test.de --out runs/ende\n"
                    "rnnkit seq2seq --model runs/enfr 'I am cold.'\n"
                    "rnnkit seq2seq --out runs/dates --time-limit 300")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="with --model: texts to translate")
    p.add_argument("--out", default=None, metavar="DIR", help="train and write the run here")
    p.add_argument("--model", default=None, metavar="DIR", help="translate with the model in DIR")
    p.add_argument("--input-file", default=None, metavar="FILE", help="with --model: one input per line")
    p.add_argument("--train", default=None, nargs="+", metavar="FILE",
                   help="training pairs, 'source<TAB>target' per line, a two-column .csv or .jsonl pairs, or "
                        "two files of one sentence a line, source then target (train.en train.de) (default: the "
                        "built-in dates task)")
    p.add_argument("--test", default=None, nargs="+", metavar="FILE",
                   help="test pairs of the same format (one file or two), scored at the end")
    p.add_argument("--dates", type=positive_int, default=2000, help="pairs of the built-in dates task")
    add_model_options(p, TASK, dropout_where="on the embeddings, between layers and before the output layer "
                                             "(default: 0.3 for words, 0 for characters)")
    task_option(p, "--embedding", "embedding_dim", TASK, type=positive_int, help="token embedding size")
    task_option(p, "--label-smoothing", "label_smoothing", TASK, type=fraction, metavar="EPS",
                help="share of each target token's probability spread over the vocabulary in the "
                     "training loss (default: 0.1 for words, 0 for characters)")
    p.add_argument("--attention", choices=("multiplicative", "additive", "none"), default="multiplicative",
                   help="how the decoder scores encoder states (none: the bridged final state only)")
    task_option(p, "--tokens", "tokens", TASK, choices=("auto", "char", "word"),
                help="characters or words (auto: words when both sides are spaced text)")
    p.add_argument("--unidirectional", action="store_true", help="read the source left to right only")
    task_option(p, "--val-fraction", "val_fraction", FIT, type=fraction, help="held-out pairs for validation")
    task_option(p, "--batch", "batch_size", TASK, type=positive_int, help="pairs per step")
    add_training_options(p, FIT)
    task_option(p, "--beam", "beam_width", FIT, type=positive_int, metavar="WIDTH",
                help="beam width (length-normalised) of the test score, and of translating with --model "
                     "(there default 1: greedy)")
    add_run_options(p, TASK, seed_help="seed of weights, split, data order and dates")
    p.set_defaults(func=cmd_seq2seq)


def cmd_seq2seq(args) -> int:
    if (args.model is None) == (args.out is None):
        raise RnnkitError("seq2seq: give --out DIR to train a model, or --model DIR with inputs to "
                          "translate (not both)")
    if args.model is not None:
        return _seq2seq_predict(args)
    if args.inputs:
        raise RnnkitError(f"seq2seq: inputs to translate ({args.inputs[0]!r}, …) need --model DIR; "
                          f"train first with --out DIR")
    return _seq2seq_train(args)


def _pairs(files: list, flag: str):
    """(sources, targets) of ``flag``'s one pairs file, or of its two parallel files."""
    from rnnkit.data.text import read_pairs, read_parallel

    if len(files) > 2:
        raise RnnkitError(f"{flag}: one pairs file, or two parallel files (source, target); got {len(files)} files")
    if len(files) == 2:
        return read_parallel(*files)
    try:
        return read_pairs(files[0])
    except RnnkitError as exc:
        if "found no tab" not in str(exc):
            raise
        raise RnnkitError(f"{exc}; a corpus in two files, one sentence a line: {flag} SOURCE TARGET") from None


def _seq2seq_train(args) -> int:
    from rnnkit.tasks.run import a_cell
    from rnnkit.tasks.seq2seq import Seq2Seq

    out = check_out_dir(args.out)
    guard_model_dir(out, args.force)
    if args.train is not None:
        sources, targets = _pairs(args.train, "--train")
        what = f"{len(sources)} pairs from {' and '.join(args.train)}"
    else:
        from rnnkit import limits
        from rnnkit.data.synthetic import date_dataset

        limits.check_count(args.dates, 256, f"--dates {args.dates}", "the date pairs (two strings each)")
        sources, targets = date_dataset(args.dates, **given(args, "seed"))
        what = f"{len(sources)} built-in date pairs (e.g. {sources[0]!r} -> {targets[0]!r})"
    test = _pairs(args.test, "--test") if args.test is not None else None
    s2s = Seq2Seq(**given(args, *MODEL_PARAMS, "embedding_dim", "label_smoothing", "batch_size", "tokens", "seed"),
                  attention=None if args.attention == "none" else args.attention,
                  **({"bidirectional": False} if args.unidirectional else {}))
    echo(args, f"training {a_cell(s2s.cell)} encoder-decoder on {what}")
    s2s.fit(sources, targets, test_sources=None if test is None else test[0],
            test_targets=None if test is None else test[1], out_dir=out, quiet=args.quiet,
            **given(args, "val_fraction", "beam_width", *TRAINING_PARAMS))
    if s2s.history_.interrupted:
        return interrupted(f"interrupted at step {s2s.history_.step}; the model trained so far and its report "
                           f"are in {out}")
    lines = []
    memory = (s2s.baseline_scores_ or {}).get("translation_memory")
    for name, sc in (("validation", s2s.val_scores_), ("test", s2s.test_scores_), ("translation memory", memory)):
        if sc is not None:
            part = f"{sc['n']} pairs" if sc.get("of", sc["n"]) == sc["n"] else \
                f"{sc['n']} of {sc['of']} pairs drawn at random, as --time-limit allowed"
            bleu = f"BLEU {sc['bleu']:.2f}, chrF {sc['chrf']:.2f}, " if sc.get("bleu") is not None else ""
            lines.append(f"{name}: {bleu}exact match {sc['exact_match']:.4f}, character accuracy "
                         f"{sc['char_accuracy']:.4f} ({part})")
    echo(args, *lines, f"model: {out}", f"report: {out / 'report.html'}",
          f"translate with: rnnkit seq2seq --model {out} 'INPUT'")
    return 0


def _seq2seq_predict(args) -> int:
    from rnnkit.data.text import read_lines
    from rnnkit.tasks.seq2seq import Seq2Seq

    inputs = list(args.inputs)
    if args.input_file is not None:
        inputs += read_lines(args.input_file)
    if not inputs:
        raise RnnkitError("seq2seq --model: give the inputs to translate (arguments or --input-file FILE)")
    s2s = Seq2Seq.load(args.model)
    for src, pred in zip(inputs, s2s.predict(inputs, **given(args, "beam_width"))):
        print(f"{src}\t{pred}")
    return 0
