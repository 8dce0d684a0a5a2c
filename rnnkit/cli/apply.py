"""Apply any saved model to new data: ``predict DIR INPUT`` and ``evaluate DIR INPUT``.

The job (lm, classify, forecast, seq2seq) is read from ``DIR/config.json``; the task's
own ``predict_file`` and ``evaluate_file`` read INPUT.
"""

from __future__ import annotations

import json
import os
import sys

from rnnkit.cli.common import add_command, add_quantize_option, check_out_file

INPUTS = ("classify: a .tsv/.ts/.csv file (or text lines for a string classifier), or a folder of them; "
          "forecast: a CSV with the history; seq2seq: one input per line, or 'source<TAB>target' pairs; "
          "lm: a text file")


def register(sub) -> None:
    p = add_command(sub, "predict", "apply a trained model (any job) to new data",
                    "Read INPUT with the model in DIR and write what it predicts: classify, a CSV with the\n"
                    "predicted class and the probability of every class; forecast, a CSV of the horizon after\n"
                    "the history; seq2seq, 'input<TAB>output' lines; lm, a CSV of each line's greedy\n"
                    "continuation. DIR may still be training: it holds the best model so far.",
                    "rnnkit predict runs/gunpoint GunPoint_TEST.tsv --out predictions.csv\n"
                    "rnnkit predict runs/sales sales.csv")
    p.add_argument("model", metavar="DIR", help="run directory of a trained model")
    p.add_argument("input", metavar="INPUT", help=INPUTS)
    p.add_argument("--out", default=None, metavar="FILE", help="file to write (default: standard output)")
    add_quantize_option(p, "language models")
    p.set_defaults(func=cmd_predict)

    p = add_command(sub, "evaluate", "score a trained model (any job) on labelled data; prints JSON",
                    "Score the model in DIR on INPUT and print JSON: lm, nats and bits per character of a\n"
                    "text; classify, accuracy, macro F1 and the confusion matrix of labelled sequences;\n"
                    "forecast, a rolling-origin backtest over a CSV (MAE, MASE, ... next to the naive and\n"
                    "seasonal-naive baselines); seq2seq, exact match, chrF and BLEU of 'source<TAB>target'\n"
                    "pairs (chrF and BLEU need sacrebleu: pip install 'rnnkit[text]').",
                    "rnnkit evaluate runs/book held-out.txt\n"
                    "rnnkit evaluate runs/dates test-pairs.tsv")
    p.add_argument("model", metavar="DIR", help="run directory of a trained model")
    p.add_argument("text", metavar="INPUT", help=INPUTS)
    add_quantize_option(p, "language models")
    p.set_defaults(func=cmd_evaluate)


def cmd_predict(args) -> int:
    from rnnkit.tasks.run import load_run, write_text

    out = None if args.out is None else check_out_file(args.out, example="predictions.csv")
    text = load_run(args.model, args.quantize).predict_file(args.input)
    if out is None:
        sys.stdout.write(text)
    else:
        write_text(out, text)
    return 0


def cmd_evaluate(args) -> int:
    from rnnkit.errors import RnnkitError
    from rnnkit.io import nonfinite_path
    from rnnkit.tasks.run import jsonable, load_run, saved_task

    result = load_run(args.model, args.quantize).evaluate_file(args.text)
    task = saved_task(args.model)
    head = {"model": os.fspath(args.model), "task": task, "input": os.fspath(args.text)}
    if task == "lm":
        head["text"] = os.fspath(args.text)          # the key this command has always printed
    out = jsonable({**head, **result})
    bad = nonfinite_path(out)
    if bad is not None:       # never print NaN/Infinity, which is not JSON
        raise RnnkitError(f"evaluate: {bad} is not a finite number; the model's weights overflow")
    print(json.dumps(out, indent=2, allow_nan=False))
    return 0
