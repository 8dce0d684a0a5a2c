"""What a training run returns: the metrics records and how it ended."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["History", "Interval"]

@dataclass
class History:
    """What ``fit`` returns: the metrics records and how training ended.

    ``records`` are the lines of ``metrics.jsonl``: dicts with ``event`` ("train" for a
    log interval, "val" for an evaluation), ``step``, ``epoch`` (1-based, the epoch the
    step belongs to), ``train_loss``, ``val_loss``, ``grad_norm`` (mean global norm
    before clipping over the interval), ``clipped`` (fraction of steps clipped),
    ``lr``, ``items_per_sec``, ``elapsed`` (seconds of training over all resumes);
    keys that do not apply are None. ``stop_reason`` is one of "epochs",
    "max_steps", "time_limit", "early_stopping", "interrupted".
    """

    records: list = field(default_factory=list)
    step: int = 0
    epochs_completed: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    stop_reason: str | None = None
    interrupted: bool = False

    def train_loss(self) -> list[tuple[int, float]]:
        """(step, mean training loss over the log interval ending there)."""
        return [(r["step"], r["train_loss"]) for r in self.records if r["event"] == "train"]

    def val_loss(self) -> list[tuple[int, float]]:
        """(step, validation loss) for every evaluation."""
        return [(r["step"], r["val_loss"]) for r in self.records if r["event"] == "val"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Interval:
    """The training steps since the last log record, summed; ``flush`` makes their record."""

    def __init__(self):
        self.loss, self.count, self.norm, self.clipped, self.steps, self.time, self.lr = 0.0, 0, 0.0, 0, 0, 0.0, None

    def add(self, loss: float, count: int, grad_norm: float, clipped: bool, seconds: float, lr: float) -> None:
        """One step: its mean loss over ``count`` items, gradient norm before clipping, time."""
        self.loss += loss * count
        self.count += count
        self.norm += grad_norm
        self.clipped += int(clipped)
        self.steps += 1
        self.time += seconds
        self.lr = lr

    def flush(self, step: int, epoch: int) -> dict | None:
        """The "train" record of the steps summed so far (None if none), and start over."""
        if self.steps == 0:
            return None
        rec = {"event": "train", "step": step, "epoch": epoch, "train_loss": self.loss / max(self.count, 1),
               "grad_norm": self.norm / self.steps, "clipped": self.clipped / self.steps, "lr": self.lr,
               "items_per_sec": self.count / self.time if self.time > 0 else None}
        self.__init__()
        return rec
