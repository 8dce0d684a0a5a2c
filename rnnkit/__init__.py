"""rnnkit: recurrent neural networks with hand-written BPTT in NumPy."""

from rnnkit._version import __version__

__all__ = ["__version__"]
