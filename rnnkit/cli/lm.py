"""Character language model commands: ``train-lm`` and ``generate``."""

from __future__ import annotations

import math
import os
import sys

from rnnkit.cli.common import (TRAINING_PARAMS, add_command, add_model_options, add_quantize_option,
                               add_training_options, check_out_dir, echo, fraction, given, guard_model_dir,
                               interrupted, nonneg_float, nonneg_int, positive_int, probability, task_option)
from rnnkit.errors import RnnkitError

TASK = "rnnkit.tasks.lm:CharLanguageModel"
FIT = TASK + ".fit"


def register(sub) -> None:
    p = add_command(sub, "train-lm", "train a character language model on text files",
                    "Train a character-level language model by truncated BPTT. The last --val-fraction of\n"
                    "the text validates (early stopping, best weights). After every epoch a sample is printed.\n"
                    "DIR receives the model (config.json, model.npz), train/ (resumable checkpoints,\n"
                    "metrics.jsonl, best/), report.html and training.png. Ctrl-C saves a checkpoint;\n"
                    "--resume continues from it.",
                    "rnnkit train-lm book.txt --out runs/book --cell lstm --hidden 256 --time-limit 600\n"
                    "rnnkit train-lm book.txt --out runs/book --resume --epochs 40")
    p.add_argument("text", nargs="+", metavar="TEXT",
                   help="text file(s), joined in order; a directory stands for its text files "
                        "(.txt, .md, .rst, .text, .gz of them), sorted")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    # an option of the network left out takes the saved run's value with --resume, else
    # CharLanguageModel's default
    add_model_options(p, TASK)
    task_option(p, "--embedding", "embedding_dim", TASK, type=positive_int, help="character embedding size")
    task_option(p, "--seq-len", "seq_len", TASK, type=positive_int, help="truncated-BPTT window in characters")
    task_option(p, "--batch", "batch_size", TASK, type=positive_int, help="parallel text streams")
    add_training_options(p, FIT)
    task_option(p, "--max-steps", "max_steps", FIT, type=positive_int, help="stop after this many optimizer steps")
    task_option(p, "--val-fraction", "val_fraction", FIT, type=fraction, help="held-out end of the text")
    task_option(p, "--seed", "seed", TASK, type=nonneg_int, help="seed of weights and data order")
    p.add_argument("--prompt", default="", help="text the printed samples start from")
    p.add_argument("--sample-length", type=positive_int, default=200, help="characters per printed sample")
    p.add_argument("--temperature", type=nonneg_float, default=0.8, help="temperature of the printed samples")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--force", action="store_true", help="replace a model already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress, no samples")
    p.set_defaults(func=cmd_train_lm)

    p = add_command(sub, "generate", "sample text from a trained language model",
                    "Print --prompt followed by --length generated characters. Temperature 0 (or --top-k 1)\n"
                    "is greedy; --top-k / --top-p restrict the draw; --beam searches for the most likely text.",
                    "rnnkit generate runs/book --prompt 'Once upon' --length 300 --temperature 0.7 --seed 1")
    p.add_argument("model", metavar="DIR", help="directory written by train-lm")
    p.add_argument("--prompt", default="", help="text to continue (its characters must be in the vocabulary)")
    p.add_argument("--length", type=positive_int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=nonneg_float, default=1.0, help="0 is greedy, higher is more random")
    p.add_argument("--top-k", type=positive_int, default=None, help="draw only among the k likeliest characters")
    p.add_argument("--top-p", type=probability, default=None,
                   help="draw only among the likeliest characters whose probability reaches P (in (0, 1])")
    p.add_argument("--beam", type=positive_int, default=None, metavar="WIDTH",
                   help="beam search of this width instead of sampling")
    p.add_argument("--seed", type=nonneg_int, default=None, help="seed of the draw (default: random)")
    add_quantize_option(p, "float32 models")
    p.set_defaults(func=cmd_generate)


# the network's options: a resumed run keeps its saved values
NETWORK = {"cell": "--cell", "hidden_size": "--hidden", "num_layers": "--layers", "embedding_dim": "--embedding",
           "dropout": "--dropout", "seq_len": "--seq-len", "batch_size": "--batch", "seed": "--seed"}


def _lm_params(args, saved: dict | None) -> dict:
    """The CharLanguageModel arguments: the options given, else the saved run's (with --resume)."""
    options = given(args, *NETWORK)
    if saved is None:
        return options
    for k, v in options.items():
        if k in saved and v != saved[k]:
            raise RnnkitError(f"--resume: {NETWORK[k]} {v} differs from the saved run's {saved[k]!r}; "
                              f"leave {NETWORK[k]} out to continue the run as it was")
    return {k: v for k, v in saved.items() if k in NETWORK or k in ("unknown_char", "dtype")}


def cmd_train_lm(args) -> int:
    from rnnkit.data.text import read_texts
    from rnnkit.distributed import world
    from rnnkit.tasks.lm import CharLanguageModel
    from rnnkit.tasks.lm_report import SamplePrinter
    from rnnkit.tasks.run import a_cell

    out = check_out_dir(args.out)
    text = read_texts(args.text)
    saved = None
    if args.resume:
        try:
            saved = CharLanguageModel.run_params(out)
        except RnnkitError as exc:
            raise RnnkitError(f"--resume: {exc}; train without --resume first") from exc
    else:
        guard_model_dir(out, args.force, extra=" (or --resume to continue training it)")
    lm = CharLanguageModel(**_lm_params(args, saved))
    callback = None
    if not args.quiet and world().is_root:     # data parallel: rank 0 alone prints samples
        callback = SamplePrinter(args.prompt, args.sample_length, args.temperature, lm.seed)
    source = ", ".join(os.fspath(p) for p in args.text) + f" ({len(text):,} characters)"
    echo(args, f"training {a_cell(lm.cell)} character language model on {source}")
    lm.fit(text, out_dir=out, quiet=args.quiet, resume=args.resume, callback=callback, source=source,
           **given(args, "val_fraction", "max_steps", *TRAINING_PARAMS))
    hist = lm.history_
    if hist.interrupted:
        return interrupted(f"interrupted at step {hist.step}; the checkpoint in {out / 'train'} is saved: continue "
                           f"with `rnnkit train-lm {' '.join(os.fspath(p) for p in args.text)} --out {out} --resume`")
    bits = None if hist.best_val_loss is None else hist.best_val_loss / math.log(2.0)
    echo(args, f"stopped ({hist.stop_reason}) after {hist.step} steps"
         + ("" if bits is None else f"; validation {bits:.3f} bits/char"),
         f"model: {out}", f"report: {out / 'report.html'}")
    return 0


def cmd_generate(args) -> int:
    from rnnkit import limits
    from rnnkit.tasks.lm import CharLanguageModel

    lm = CharLanguageModel.load(args.model, quantize=args.quantize)
    prompt = args.prompt
    if args.beam is not None:
        limits.check_count(args.length * args.beam, 64, f"--length {args.length} --beam {args.beam}",
                           "the beam's hypotheses")
        sys.stdout.write(prompt + lm.beam(prompt or None, args.length, width=args.beam) + "\n")
        return 0
    # printed as drawn (flushed a line, or 256 characters, at a time): a long --length streams
    chars = lm.iter_sample(prompt or None, args.length, temperature=args.temperature, top_k=args.top_k,
                           top_p=args.top_p, seed=args.seed)
    first = next(chars)              # weights that cannot run fail here, before any output
    sys.stdout.write(prompt + first)
    pending = 0
    for c in chars:
        sys.stdout.write(c)
        pending += 1
        if c == "\n" or pending >= 256:
            sys.stdout.flush()
            pending = 0
    sys.stdout.write("\n")
    return 0
