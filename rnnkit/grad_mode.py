"""Switch gradient bookkeeping off for inference: ``with rnnkit.no_grad(): ...``.

Inside the block, :class:`rnnkit.Recurrent` runs its cells' ``infer`` instead of
``forward``: only the recurrent state is carried from step to step and no cache
for backpropagation is kept, so a forward pass writes nothing of size T but its
outputs (less memory, less time). ``backward`` after such a forward raises.
Prediction, generation and validation use it; user code can too::

    with rnnkit.no_grad():
        y, h = layer.forward(x)

The switch belongs to the thread that sets it (other threads keep training), and
nests: the state before the block comes back when it ends, also on an exception.
``no_grad`` also decorates a function.
"""

from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside a ``no_grad`` block of this thread, else True."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Within the block (or the decorated function), forwards keep no caches for backward."""
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


__all__ = ["no_grad", "is_grad_enabled"]
