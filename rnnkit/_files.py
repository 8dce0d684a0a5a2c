"""Atomic writes and bounded reads: the file primitives under :mod:`rnnkit.io` and :mod:`rnnkit.npz`.

Every write goes to a temporary file in the target's own directory (named after the
writer's process id), is flushed and ``fsync``-ed, and then renamed over the target
with ``os.replace``; the directory is ``fsync``-ed afterwards. The first write into a
directory removes the temp files that killed processes left there.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from typing import Any, Callable

from rnnkit.errors import CheckpointError

__all__ = ["atomic_write", "remove_stale_temps"]


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (not possible, and not needed, on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ".<name>.<pid>-<12 hex>.tmp": the writer's process id tells a stale temp file from a live one
_TMP_RE = re.compile(r"^\..+\.(\d+)-[0-9a-f]{12}\.tmp$")
_TMP_STALE_AGE = 3600.0  # seconds; where a process id cannot be checked (Windows)
_cleaned_dirs: set[str] = set()


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True   # exists (another user's), or cannot tell: keep its file
    return True


def remove_stale_temps(directory) -> list[str]:
    """Remove the temp files that interrupted :func:`atomic_write` calls left in ``directory``.

    A temp file is stale when the process that wrote it no longer runs (on Windows,
    where that cannot be asked, when it is older than an hour); a write in progress
    in another process keeps its file. Returns the paths removed.
    """
    directory = os.fspath(directory)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if m is None:
            continue
        path = os.path.join(directory, name)
        if os.name == "nt":
            try:
                stale = time.time() - os.path.getmtime(path) > _TMP_STALE_AGE
            except OSError:
                continue
        else:
            stale = not _process_alive(int(m.group(1)))
        if stale:
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def atomic_write(path, write: Callable[[Any], None]) -> None:
    """Write a file atomically: ``write(binary_file)`` fills a temp file that replaces ``path``.

    The temp file lives in the same directory (a rename is only atomic within one
    file system) and is created with ``O_EXCL`` under a name holding the process id;
    on any error, KeyboardInterrupt included, it is removed and ``path`` is left as it
    was. The first write into a directory removes the temp files that killed
    processes left there (:func:`remove_stale_temps`).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if directory not in _cleaned_dirs:
        remove_stale_temps(directory)
        _cleaned_dirs.add(directory)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    # 0o666 filtered by the umask, like a plain open(): mkstemp's 0o600 would surprise users
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def _write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _read_bytes(path: str, limit: int | None = None) -> bytes:
    try:
        if limit is not None:
            size = os.path.getsize(path)
            if size > limit:
                raise CheckpointError(f"{path}: {size} bytes is more than the {limit} bytes "
                                      "such a file may hold here")
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise CheckpointError(f"{path}: is a directory, not a file") from exc
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc}") from exc
