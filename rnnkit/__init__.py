"""rnnkit: recurrent neural networks with hand-written BPTT in NumPy."""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from rnnkit._lazy import attach as _attach
from rnnkit._version import __version__

# Everything else is imported on first use (PEP 562): `import rnnkit` loads neither
# NumPy nor any task, and `rnnkit.Recurrent` loads only what the layers need.
__getattr__, __dir__, _lazy_names = _attach(__name__, submodules=["init", "losses", "optim", "models"], attributes={
    "grad_mode": ["no_grad", "is_grad_enabled"],
    "layers": ["Recurrent", "Linear", "Embedding", "Dropout"],
    "module": ["Module"],
    "train": ["Trainer", "TrainConfig", "History"],
    "tasks.lm": ["CharLanguageModel"],
    "tasks.forecast": ["Forecaster"],
    "tasks.classify": ["SequenceClassifier"],
    "tasks.seq2seq": ["Seq2Seq"],
})
__all__ = ["__version__", *_lazy_names]

if _TYPE_CHECKING:      # what static tools and IDEs see; at run time the names come lazily
    from rnnkit import init, losses, models, optim
    from rnnkit.grad_mode import is_grad_enabled, no_grad
    from rnnkit.layers import Dropout, Embedding, Linear, Recurrent
    from rnnkit.module import Module
    from rnnkit.tasks.classify import SequenceClassifier
    from rnnkit.tasks.forecast import Forecaster
    from rnnkit.tasks.lm import CharLanguageModel
    from rnnkit.tasks.seq2seq import Seq2Seq
    from rnnkit.train import History, TrainConfig, Trainer
