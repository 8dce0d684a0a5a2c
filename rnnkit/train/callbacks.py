"""Callbacks: how a job sees training as it happens, and the progress output.

A job that wants to act during training (print a sample after each epoch, keep
``model.npz`` up to date, draw a report) registers a :class:`Callback` with the
Trainer: ``Trainer(model, config, out_dir, callbacks=[...])``. Every hook gets
the Trainer (its ``step``, ``epoch``, ``history``, ``model``, ``out_dir``) and
one dict; the base class's hooks do nothing, so a callback overrides only what
it needs. Hooks run in the order the callbacks were given.

    on_start(trainer)             ``fit`` begins (after a resume restored the state)
    on_step(trainer, info)        after each optimizer step; info: step, epoch (1-based),
                                  batch (1-based in the epoch), loss, grad_norm (before
                                  clipping), lr, items_per_sec
    on_record(trainer, record)    each metrics record as it is appended to metrics.jsonl
                                  (see :class:`~rnnkit.train.History`)
    on_eval(trainer, info)        after each evaluation; info: step, epoch, val_loss,
                                  best_val_loss, best_step, improved
    on_epoch_end(trainer, info)   an epoch's batches are all trained on (and, with
                                  validation data, evaluated); info: epoch (how many
                                  epochs are complete), step
    on_checkpoint(trainer, info)  after a checkpoint was written; info: kind ("resume":
                                  the full training state; "best": the best weights),
                                  path, step
    on_end(trainer, history)      ``fit`` has ended: the final checkpoint is written and
                                  the best weights are restored

A hook that raises KeyboardInterrupt stops training as Ctrl-C does (a checkpoint
of the last completed step is saved and ``fit`` returns with
``history.interrupted``); any other exception propagates out of ``fit``.
"""

from __future__ import annotations

import sys

__all__ = ["Callback", "ProgressPrinter"]


class Callback:
    """The base class of Trainer callbacks: every hook is a no-op (see the module docstring)."""

    def on_start(self, trainer) -> None:
        pass

    def on_step(self, trainer, info: dict) -> None:
        pass

    def on_record(self, trainer, record: dict) -> None:
        pass

    def on_eval(self, trainer, info: dict) -> None:
        pass

    def on_epoch_end(self, trainer, info: dict) -> None:
        pass

    def on_checkpoint(self, trainer, info: dict) -> None:
        pass

    def on_end(self, trainer, history) -> None:
        pass


HOOKS = ("on_start", "on_step", "on_record", "on_eval", "on_epoch_end", "on_checkpoint", "on_end")


def check_callbacks(callbacks, where: str) -> list:
    """``callbacks`` (None, one callback or a list) as a list; TypeError for anything else."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    for cb in callbacks:
        if not any(callable(getattr(cb, name, None)) for name in HOOKS):
            raise TypeError(f"{where}: callbacks must be Callback objects (with on_step, on_eval, "
                            f"on_checkpoint, on_end, ... methods), got {type(cb).__name__}")
    return list(callbacks)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


class ProgressPrinter(Callback):
    """Progress on stderr: a tqdm bar on a terminal, else one line per log interval;
    a line per evaluation and one when training stops. The Trainer adds one unless
    ``config.quiet``."""

    def __init__(self):
        self._bar = None

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def on_start(self, trainer) -> None:
        cfg = trainer.config
        print(f"training {type(trainer.model).__name__} ({trainer.model.num_parameters():,} parameters) "
              f"from step {trainer.step}: " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()),
              file=sys.stderr, flush=True)
        self._bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm
            self._bar = tqdm(total=cfg.max_steps, initial=trainer.step, unit="step", file=sys.stderr,
                             dynamic_ncols=True, leave=True)

    def on_step(self, trainer, info: dict) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{info['loss']:.4f}", grad=f"{info['grad_norm']:.3g}",
                                  items_s=_fmt(info["items_per_sec"], ",.0f"), refresh=False)

    def on_record(self, trainer, record: dict) -> None:
        if record["event"] != "train" or self._bar is not None:
            return
        cfg = trainer.config
        self._line(f"step {record['step']}" + (f"/{cfg.max_steps}" if cfg.max_steps else "")
                   + f" | epoch {record['epoch']}" + ("" if cfg.max_steps else f"/{cfg.epochs}")
                   + f" | loss {record['train_loss']:.4f} | "
                   f"grad {record['grad_norm']:.3g} | lr {record['lr']:.2e} | "
                   f"{_fmt(record['items_per_sec'], ',.0f')} items/s | {record['elapsed']:.1f}s")

    def on_eval(self, trainer, info: dict) -> None:
        self._line(f"step {info['step']} | epoch {info['epoch']} | val_loss {info['val_loss']:.4f} | "
                   f"best {info['best_val_loss']:.4f} (step {info['best_step']})")

    def close(self) -> None:
        """Close the bar (also when training failed)."""
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def on_end(self, trainer, history) -> None:
        self.close()
        out_dir = trainer.out_dir
        where = f"; checkpoint in {out_dir}" if out_dir is not None else ""
        if history.interrupted:
            how = (f" — resume with Trainer.resume({out_dir!r}) or fit(..., resume=True)"
                   if out_dir is not None else " (no out_dir: nothing saved)")
            self._line(f"interrupted at step {history.step}{where}{how}")
        else:
            best = (f"; best val_loss {history.best_val_loss:.4f} at step {history.best_step}"
                    if history.best_val_loss is not None else "")
            self._line(f"stopped ({history.stop_reason}) at step {history.step}{best}{where}")
