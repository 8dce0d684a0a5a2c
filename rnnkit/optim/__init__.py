"""Optimizers, gradient clipping and learning-rate schedules.

* :mod:`~rnnkit.optim.optimizers` — :class:`SGD`, :class:`RMSprop`, :class:`Adam`,
  :class:`AdamW`, :class:`Adagrad` (``torch.optim``'s updates, step for step), updating
  the live ``params`` arrays in place; :func:`make_optimizer` builds one by name.
* :mod:`~rnnkit.optim.clipping` — :func:`clip_grad_norm`, :func:`clip_grad_value`,
  :func:`grad_norms`.
* :mod:`~rnnkit.optim.schedules` — :class:`StepLR`, :class:`ExponentialLR`,
  :class:`CosineAnnealing`, :class:`ReduceLROnPlateau`, :class:`LinearWarmup`;
  :func:`make_schedule` builds one by name.

Every optimizer and schedule has ``state_dict()``/``load_state_dict()`` of numeric
arrays only (npz-able, no pickle). The equations are in each module's docstring.
"""

from rnnkit.optim.clipping import clip_grad_norm, clip_grad_value, grad_norms
from rnnkit.optim.optimizers import (DEFAULT_LR, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop,
                                     make_optimizer)
from rnnkit.optim.schedules import (CosineAnnealing, ExponentialLR, LinearWarmup, LRSchedule,
                                    ReduceLROnPlateau, StepLR, make_schedule)

__all__ = [
    "Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "DEFAULT_LR", "make_optimizer",
    "clip_grad_norm", "clip_grad_value", "grad_norms",
    "LRSchedule", "StepLR", "ExponentialLR", "CosineAnnealing", "ReduceLROnPlateau", "LinearWarmup",
    "make_schedule",
]
