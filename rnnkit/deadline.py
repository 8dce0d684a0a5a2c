r"""A wall-time budget for a whole command: reading the data, training, evaluation and the report.

A command makes one :class:`Deadline` first thing (before it reads its data) and passes it
down; every phase asks it how much time is left:

* training gets what is left minus a reserve for the phases after it
  (:meth:`Deadline.for_training`; :func:`after_training` estimates that reserve from the
  measured step time and the items still to evaluate, plus the report's plots);
* evaluation and decoding go in chunks while :meth:`Deadline.left` allows (the scores then
  cover the rows done, and say so: :func:`partial_note`);
* the report is always written; its plots are drawn while time is left
  (:meth:`Deadline.expired`) and a note says which were left out.

``time_limit`` arguments of the tasks take seconds (the clock starts at the call) or a
Deadline (the clock started when the caller made it); :func:`as_deadline` reads both.
"""

from __future__ import annotations

import time

import numpy as np

from rnnkit._checks import check_number

__all__ = ["Deadline", "as_deadline", "after_training", "forward_seconds", "partial_note", "chunks_in_time",
           "REPORT_SECONDS", "FIGURE_SECONDS"]

#: seconds the report takes besides its plots (the model, metrics.json, the HTML), and per plot
#: (matplotlib's import is paid by the first); estimates for a loaded 2-core machine
REPORT_SECONDS = 0.8
FIGURE_SECONDS = 0.9
#: training keeps at least this share of the time left, whatever the reserve
MIN_TRAINING_SHARE = 0.6


class Deadline:
    """The end of a budget of ``seconds`` (None: no limit), counted from ``start`` (a
    ``time.perf_counter()`` value; default now)."""

    def __init__(self, seconds: float | None = None, start: float | None = None):
        self.seconds = None if seconds is None else float(seconds)
        self.start = time.perf_counter() if start is None else float(start)
        self.end = None if self.seconds is None else self.start + self.seconds

    @property
    def limited(self) -> bool:
        return self.end is not None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float | None:
        """Seconds to the end (negative once past it); None without a limit."""
        return None if self.end is None else self.end - time.perf_counter()

    def expired(self, margin: float = 0.0) -> bool:
        """Whether less than ``margin`` seconds are left (never without a limit)."""
        return self.end is not None and time.perf_counter() >= self.end - margin

    def for_training(self, reserve: float) -> float | None:
        """Seconds for training now: what is left minus ``reserve`` for the phases after it,
        but at least :data:`MIN_TRAINING_SHARE` of what is left (the later phases shrink to
        fit) and never below zero; None without a limit."""
        left = self.left()
        if left is None:
            return None
        left = max(0.0, left)
        return max(left - max(0.0, reserve), MIN_TRAINING_SHARE * left)

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r}, left={self.left()!r})"


def as_deadline(time_limit, where: str, name: str = "time_limit") -> Deadline:
    """``time_limit`` as a Deadline: None (no limit), seconds > 0 (from now) or a Deadline."""
    if isinstance(time_limit, Deadline):
        return time_limit
    if time_limit is None:
        return Deadline(None)
    return Deadline(check_number(time_limit, name, where, 0.0, low_open=True))


def forward_seconds(step_seconds: float | None, batch_size: int, items: int = 1, passes: float = 1.0) -> float:
    """Seconds of ``passes`` forward passes over ``items`` items, from the measured time of a
    training step on ``batch_size`` items (a forward pass costs about half of a step's
    forward and backward); 0 when the step was not timed."""
    return 0.0 if step_seconds is None else 0.5 * step_seconds / max(1, batch_size) * items * passes


def after_training(step_seconds: float | None, batch_size: int, eval_items: int = 0, figures: int = 1,
                   decode_factor: float = 1.0) -> float:
    """Seconds to reserve after training: evaluating ``eval_items`` items
    (:func:`forward_seconds`; ``decode_factor`` passes each, e.g. for step-by-step
    decoding), writing the model and the report with ``figures`` plots."""
    return REPORT_SECONDS + FIGURE_SECONDS * figures + forward_seconds(step_seconds, batch_size, eval_items,
                                                                       decode_factor)


def partial_note(done: int, total: int, what: str = "rows") -> str | None:
    """'evaluated on N of M test rows because of the time limit' when ``done < total``."""
    if done >= total:
        return None
    return f"evaluated on {done} of {total} {what} because of the time limit"


def chunks_in_time(n: int, deadline: Deadline, margin: float = 0.0, seed: int = 0, first: int = 32,
                   most: int = 256, ordered: bool = False):
    """Index arrays covering ``range(n)`` a chunk at a time while ``deadline`` has more than
    ``margin`` seconds left; at least one chunk.

    Chunks start at ``first`` items and double up to ``most``, but no chunk is larger
    than the time left holds at the pace of the chunks before it (the caller's work on a
    chunk is timed between two yields), so the last one ends near the deadline, not a
    large chunk past it. The items come in a random order drawn from ``seed``
    (``ordered``: in order), so the rows done when time runs out are a fair sample."""
    order = np.arange(n) if ordered else np.random.default_rng([seed, 7]).permutation(n)
    size, i, per_item = first, 0, None
    while i < n:
        if i:
            left = deadline.left()
            if left is not None:
                room = left - margin
                fits = int(room / per_item) if per_item > 0 else size
                if fits < 1:
                    return
                size = min(size, fits)
        t0 = time.perf_counter()
        chunk = order[i:i + size]
        yield chunk
        i += len(chunk)
        pace = (time.perf_counter() - t0) / len(chunk)
        per_item = pace if per_item is None else max(pace, 0.5 * per_item)
        size = min(most, 2 * size)
