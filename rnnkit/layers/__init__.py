"""Parameter-owning layers: :class:`Linear`, :class:`Embedding`, :class:`Dropout`
(:mod:`rnnkit.layers.basic`) and the stacked :class:`Recurrent` layer
(:mod:`rnnkit.layers.recurrent`)."""

from rnnkit.layers.basic import Dropout, Embedding, Linear
from rnnkit.layers.recurrent import Recurrent

__all__ = ["Linear", "Embedding", "Dropout", "Recurrent"]
