"""Ready models: the recurrent topologies built from rnnkit's layers.

=====================  =========================================  ==========================
topology               model                                      batch keys
=====================  =========================================  ==========================
one-to-one             :class:`OneToOne`                          x (B[,F]), y
one-to-many            :class:`OneToMany`                         cond, y (T, B[,O])
many-to-one            :class:`SequenceClassifier`,               x (T, B[,F]), lengths, y (B[,O])
                       :class:`SequenceRegressor`
many-to-many (synced)  :class:`SequenceTagger` (language model)    x (T, B[,F]), y (T, B[,O]), mask
sequence-to-sequence   :class:`EncoderDecoder`,                   x (S, B[,F]), lengths, y (T, B)
                       :class:`AttentionEncoderDecoder`
=====================  =========================================  ==========================

Every model has ``config()``, ``loss(batch, state=None, carry_at=None) -> (loss,
count, state)`` and ``backward()``; :func:`build` turns a config back into a model.
"""

# Imported eagerly: importing a model module registers it, and build() must know every
# model to rebuild any saved config (together about 8 ms after the layers).
from rnnkit.models.attention import AdditiveAttention, CrossAttention
from rnnkit.models.base import MODELS, build, register_model
from rnnkit.models.generator import OneToMany
from rnnkit.models.seq2seq import EncoderDecoder
from rnnkit.models.seq2seq_attention import AttentionEncoderDecoder
from rnnkit.models.sequence import OneToOne, SequenceClassifier, SequenceRegressor
from rnnkit.models.tagger import SequenceTagger

__all__ = [
    "AdditiveAttention",
    "AttentionEncoderDecoder",
    "CrossAttention",
    "EncoderDecoder",
    "MODELS",
    "OneToMany",
    "OneToOne",
    "SequenceClassifier",
    "SequenceRegressor",
    "SequenceTagger",
    "build",
    "register_model",
]
