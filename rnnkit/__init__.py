"""rnnkit: recurrent neural networks with hand-written BPTT in NumPy."""

import os as _os
import sys as _sys

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

from rnnkit._version import __version__
from rnnkit import init
from rnnkit.grad_mode import is_grad_enabled, no_grad
from rnnkit.layers import Dropout, Embedding, Linear, Recurrent
from rnnkit.module import Module
from rnnkit import losses, optim
from rnnkit.train import History, TrainConfig, Trainer
from rnnkit import models
from rnnkit.tasks.lm import CharLanguageModel
from rnnkit.tasks.forecast import Forecaster
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.seq2seq import Seq2Seq

__all__ = ["__version__", "init", "no_grad", "is_grad_enabled", "Recurrent", "Linear", "Embedding",
           "Dropout", "Module", "losses", "optim",
           "Trainer", "TrainConfig", "History", "models", "CharLanguageModel",
           "Forecaster", "SequenceClassifier", "Seq2Seq"]
