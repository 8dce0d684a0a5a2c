"""Apply a saved model to new data: ``evaluate DIR INPUT``."""

from __future__ import annotations

import json
import os

from rnnkit.cli.common import add_command


def register(sub) -> None:
    p = add_command(sub, "evaluate", "nats and bits per character of a text under a trained language model",
                    "Score TEXT as one stream from the zero state and print JSON with nats_per_char,\n"
                    "bits_per_char and chars (the number of predicted characters).",
                    "rnnkit evaluate runs/book held-out.txt")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("text", metavar="TEXT", help="UTF-8 text file (its characters must be in the vocabulary)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from rnnkit.data.text import read_text
    from rnnkit.tasks.lm import CharLanguageModel

    lm = CharLanguageModel.load(args.model)
    text = read_text(args.text)
    result = lm.evaluate(text)
    print(json.dumps({"model": os.fspath(args.model), "text": os.fspath(args.text), **result}, indent=2))
    return 0
