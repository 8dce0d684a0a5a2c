"""Sizes checked before anything is allocated: a memory estimate against what the machine has.

Every size that comes from a user (a command-line flag, a key of ``config.json``, a
Python argument, the header of an array in a file) passes through here before the
arrays it implies exist. The estimate is the bytes those arrays take; the limit is
the memory the machine has available now (``MemAvailable`` in ``/proc/meminfo``,
a cgroup's ``memory.max`` where one is set and lower, ``os.sysconf`` elsewhere).
``RNNKIT_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix) lowers the limit further,
e.g. to keep a shared machine free.

An estimate over the limit is a :class:`~rnnkit.errors.ResourceLimitError` that
names the argument as the caller spells it (``--hidden`` on the command line,
``hidden_size`` in the API, ``config.json: hidden_size`` for a saved model), the
estimate and the limit::

    --hidden 1000000000: the weights need about 16.0 EB (estimate), more than the
    21.3 GiB of memory available
"""

from __future__ import annotations

import math
import os

from rnnkit.errors import ResourceLimitError

__all__ = ["available_memory", "format_bytes", "check_bytes", "recurrent_parameters",
           "check_parameters", "check_count"]

# gates per cell: rows of weight_ih are G·H
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_SUFFIX = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}
_UNLIMITED = 2 ** 62


def _env_limit() -> int | None:
    text = os.environ.get("RNNKIT_MEMORY_LIMIT", "").strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        return None
    unit = text[-1] if text[-1] in _SUFFIX and not text[-1].isdigit() else ""
    try:
        value = float(text[: len(text) - len(unit)])
    except ValueError:
        raise ResourceLimitError(f"RNNKIT_MEMORY_LIMIT must be a number of bytes (suffix K, M, G or T "
                                 f"allowed), got {os.environ['RNNKIT_MEMORY_LIMIT']!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ResourceLimitError(f"RNNKIT_MEMORY_LIMIT must be positive, got {os.environ['RNNKIT_MEMORY_LIMIT']!r}")
    return int(value * _SUFFIX[unit])


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """What a cgroup v2 memory limit leaves (``memory.max`` − ``memory.current``), if set."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            raw = f.read().strip()
        if raw == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            current = int(f.read().strip())
        return max(int(raw) - current, 0)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int:
    """Bytes of memory this process may still use: the lowest of what the system, a
    cgroup limit and ``RNNKIT_MEMORY_LIMIT`` allow (unknown limits count as none)."""
    found = [v for v in (_meminfo_available() if os.path.exists("/proc/meminfo") else _sysconf_available(),
                         _cgroup_available(), _env_limit()) if v is not None]
    return min(found) if found else _UNLIMITED


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text for a byte count."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def check_bytes(nbytes: int, argument: str, what: str = "the arrays") -> int:
    """Raise ResourceLimitError when ``nbytes`` exceeds :func:`available_memory`.

    ``argument`` names the size as the user gave it (``"--hidden 100000"``,
    ``"config.json: hidden_size=10**12"``); ``what`` says what needs the memory.
    Returns ``nbytes``.
    """
    limit = available_memory()
    if nbytes > limit:
        raise ResourceLimitError(f"{argument}: {what} need about {format_bytes(nbytes)} (estimate), "
                                 f"more than the {format_bytes(limit)} of memory available; "
                                 "choose a smaller size")
    return nbytes


def recurrent_parameters(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                         bidirectional: bool = False, bias: bool = True) -> int:
    """The number of weights of a ``Recurrent`` stack (PyTorch's layout), without building it.

    Per layer and direction: G·H·(I_l + H) weights plus 2·G·H biases, where
    I_0 = input_size and I_l = D·H above the first layer.
    """
    G = GATES.get(cell, 4)     # other cells: at most an LSTM's four gate blocks (an upper estimate)
    D = 2 if bidirectional else 1
    H = int(hidden_size)
    per_dir_first = G * H * (int(input_size) + H + (2 if bias else 0))
    per_dir_above = G * H * (D * H + H + (2 if bias else 0))
    return D * (per_dir_first + (int(num_layers) - 1) * per_dir_above)


def check_parameters(count: int, itemsize: int, argument: str, copies: int = 2) -> int:
    """Check ``count`` weights of ``itemsize`` bytes, ``copies`` times over (weights and
    their gradients: 2; with an optimizer's two moments: 4)."""
    return check_bytes(int(count) * int(itemsize) * int(copies), argument, "the weights")


def check_count(n: int, bytes_each: int, argument: str, what: str) -> int:
    """Check ``n`` items of about ``bytes_each`` bytes (time steps, pairs, characters)."""
    return check_bytes(int(n) * int(bytes_each), argument, what)
