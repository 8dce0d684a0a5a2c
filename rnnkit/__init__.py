"""rnnkit: recurrent neural networks with hand-written BPTT in NumPy."""

import os as _os
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

# NumPy's OpenBLAS keeps its idle threads spinning for 2^28 cycles (~0.1 s) after
# each product. A training step runs the compiled time loops (rnnkit.fast) right
# after the weight-gradient products, and their threads then share the cores with
# those spinners: LSTM B=64 H=256 T=100 forward 73 ms instead of 28 on 2 cores.
# 2^20 cycles (well under a millisecond) keeps OpenBLAS's threads warm between
# the products of one step. OpenBLAS reads it when NumPy loads it, so it acts
# only when rnnkit is imported first (the rnnkit command always is); a value the
# user set wins.
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

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
