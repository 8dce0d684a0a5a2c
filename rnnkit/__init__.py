"""rnnkit: recurrent neural networks with hand-written BPTT in NumPy."""

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
