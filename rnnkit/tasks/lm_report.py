"""The language model's run: the sample printed after each epoch and the report.

:class:`SamplePrinter` is a ``callback`` of ``CharLanguageModel.fit`` that shows how
the model learns (:class:`EpochCallback` calls it from the Trainer); :func:`write_lm_report`
writes ``report.html``, ``training.png`` and ``metrics.json`` of a trained model's run
directory (``fit(out_dir=...)`` calls it).
"""

from __future__ import annotations

import math
from pathlib import Path

from rnnkit.tasks.run import METRICS_JSON, write_json
from rnnkit.train.callbacks import Callback

__all__ = ["SamplePrinter", "EpochCallback", "write_lm_report"]


class EpochCallback(Callback):
    """Calls ``callback(lm, info)`` after every epoch of this fit, and once more at the end
    with ``lm.history_`` set (for the epoch training stopped in, or the restored best weights)."""

    def __init__(self, lm, callback):
        self.lm, self.callback, self.reported = lm, callback, 0

    def _report(self, trainer, epoch: int) -> None:
        if epoch <= self.reported:
            return
        self.reported = epoch
        vals = [r["val_loss"] for r in trainer.history.records if r["event"] == "val"]
        v = vals[-1] if vals else None
        self.callback(self.lm, {"epoch": epoch, "step": trainer.step, "val_loss": v,
                                "val_bits_per_char": None if v is None else v / math.log(2.0)})

    def on_start(self, trainer) -> None:
        self.reported = trainer.epoch       # epochs of a resumed run were reported before

    def on_epoch_end(self, trainer, info: dict) -> None:
        self._report(trainer, info["epoch"])

    def on_end(self, trainer, history) -> None:
        self.lm.history_ = history
        # the last epoch: complete, ended early (early stopping) or cut short (limits)
        last = max([history.epochs_completed] + [r["epoch"] for r in history.records
                                                 if r.get("epoch") is not None])
        self._report(trainer, last)


class SamplePrinter:
    """A ``CharLanguageModel.fit`` callback that prints a sample after every epoch.

    ``fit`` calls it once more when training has ended, with the best weights
    restored: that sample is shown only if those weights were not sampled already
    (when the run stopped before any validation, or in the middle of an epoch after
    a better one). Each sample shown (epoch, step, validation bits per character,
    text, whether it is the final one) is appended to ``collected``, which the run's
    report shows. ``show(head, text)``, when given, prints a sample instead of ``echo``.
    """

    def __init__(self, prompt: str = "", length: int = 200, temperature: float = 0.8, seed: int = 0,
                 echo=print, show=None):
        self.prompt, self.length, self.temperature, self.seed = prompt or "", length, temperature, seed
        self.echo, self.show = echo, show
        self.collected: list[dict] = []
        self._seen_steps: set[int] = set()

    def __call__(self, lm, info) -> None:
        bits = info.get("val_bits_per_char")
        step = info["step"]
        final = False
        hist = lm.history_                    # set by fit only after the Trainer returned
        if hist is not None:
            if hist.best_step is not None:
                if hist.best_step in self._seen_steps:
                    return                    # the restored best weights were sampled at their epoch's end
                if hist.best_step != step:    # stopped after the best epoch: its weights are back
                    step, bits, final = hist.best_step, hist.best_val_loss / math.log(2.0), True
            elif hist.stop_reason != "epochs":
                final = True                  # stopped within an epoch, without validation
        self._seen_steps.add(step)
        text = self.prompt + lm.sample(self.prompt or None, self.length, temperature=self.temperature,
                                       seed=self.seed)
        head = (f"end of training (weights of step {step})" if final else f"epoch {info['epoch']}, step {step}")
        if bits is not None:
            head += f", validation {bits:.3f} bits/char"
        self.collected.append({"epoch": info["epoch"], "step": step, "val_bits_per_char": bits, "sample": text,
                               "final": final, "head": head})
        if self.show is not None:
            self.show(head, text)
        elif self.echo is not None:
            self.echo(f"{head}; sample at temperature {self.temperature:g}:")
            self.echo("\n".join("    " + line for line in text.split("\n")))


def _entropy_bits(p) -> float:
    import numpy as np

    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def write_lm_report(lm, out_dir, *, source: str, train_chars: int, val_text: str | None,
                    samples: list | None = None, prompt: str = "", final_temperatures=(0.5, 0.8, 1.0),
                    sample_length: int = 300, seed: int = 0, timing: dict | None = None,
                    title: str = "rnnkit character language model", deadline=None) -> dict:
    """Write ``out_dir/report.html``, ``training.png`` and ``metrics.json`` for a trained
    language model; the plot while ``deadline`` (a :class:`rnnkit.deadline.Deadline`,
    or None) allows.

    The report holds the data, the validation bits per character against the
    unigram and uniform baselines, the samples printed during training, fresh
    samples at a few temperatures, the training curves (from ``out_dir/train``) and
    the configuration. Returns the numbers it reports (also for the demo's page).
    """
    from rnnkit.deadline import Deadline, partial_note
    from rnnkit.report import Section, plots_in_time, read_metrics, save_figure, training_figure, write_report

    deadline = Deadline(None) if deadline is None else deadline

    out_dir = Path(out_dir)
    records = read_metrics(out_dir / "train" / "metrics.jsonl")
    hist = lm.history_
    val_bits, notes = None, []
    if hist is not None and hist.best_val_loss is not None:
        val_bits = hist.best_val_loss / math.log(2.0)
        scored, held = getattr(lm, "val_chars_", (0, 0))
        if partial_note(scored, held, "validation characters"):     # the start of a long held-out text
            notes.append(partial_note(scored, held, "validation characters"))
    elif val_text:
        # no validation pass finished (a short time limit): score the start of the held-out text,
        # 5,000 characters at a time while the deadline allows
        scored, total, end = 0, 0.0, min(len(val_text), 20_000)
        while scored < end and not (scored and deadline.expired(1.5)):
            part = val_text[scored:scored + 5000]
            total += lm.evaluate(part)["bits_per_char"] * len(part)
            scored += len(part)
        val_bits = total / scored
        note = partial_note(scored, end, "validation characters")
        if note:
            notes.append(note)
    V = len(lm.vocab_)
    unigram_bits = _entropy_bits(lm.unigram_)
    summary = {"source": source, "train_chars": train_chars, "val_chars": len(val_text or ""),
               "vocab_size": V, "val_bits_per_char": val_bits, "unigram_bits_per_char": unigram_bits,
               "uniform_bits_per_char": math.log2(V), "steps": None if hist is None else hist.step,
               "stop_reason": None if hist is None else hist.stop_reason, "notes": notes}
    final = []
    for t in final_temperatures:
        if final and deadline.expired(1.0):
            break                       # the time limit: one sample, not all the temperatures
        final.append((t, prompt + lm.sample(prompt or None, sample_length, temperature=t, seed=seed)))
    write_json(out_dir / METRICS_JSON, summary)
    summary["final_samples"] = [{"temperature": t, "text": s} for t, s in final]
    summary["samples_during_training"] = list(samples or [])

    sections = [Section("Data", table=[["source", source], ["training characters", train_chars],
                                       ["validation characters", len(val_text or "")],
                                       ["vocabulary", f"{V} characters"]], header=["", ""])]
    rows = [["this model (validation)", "-" if val_bits is None else val_bits],
            ["unigram: character frequencies only", unigram_bits],
            [f"uniform over {V} characters", math.log2(V)]]
    sections.append(Section("Bits per character (lower is better)", table=rows, header=["model", "bits/char"]))
    if samples:
        lines = []
        for s in samples:
            lines.append(f"--- {s['head']}\n{s['sample']}")
        sections.append(Section("Samples during training", text="\n\n".join(lines)))
    sections.append(Section("Samples from the final model",
                            text="\n\n".join(f"--- temperature {t:g}\n{s}" for t, s in final)))
    figures = {}
    if records and plots_in_time(deadline):
        fig = training_figure(records)
        if fig is not None:
            figures["training"] = save_figure(fig, out_dir / "training.png")
    config = {"task": "lm", "params": lm.get_params(), "model": lm.model_.config()}
    path = write_report(out_dir / "report.html", title, sections, config=config, records=records, timing=timing,
                        training_png=figures.get("training"), deadline=deadline, notes=notes)
    summary["report"] = str(path)
    summary["training_png"] = figures.get("training")
    return summary
