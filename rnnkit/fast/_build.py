"""Build, cache and load the C kernels in ``_fastrnn.c``.

The C file ships with the package and is compiled on first use with the machine's
C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``) into a per-user cache
directory: ``$RNNKIT_CACHE``, else ``$XDG_CACHE_HOME/rnnkit``, else
``~/.cache/rnnkit``. The library's file name carries a hash of everything that
changes the binary (source, compiler, flags, CPU), so a new version, another
compiler or another CPU (``-march=native``; a home directory shared between
machines) builds its own file and never loads a stale one.

Concurrent first uses are safe: each process compiles into its own temporary file
and moves it into place with an atomic rename, so a reader sees either no library
or a whole one. Nothing is printed: a failed build is recorded (see
:func:`status`) and the NumPy reference cells run instead.

The library is built with OpenMP where the compiler supports it (``-fopenmp``),
so the time loop can use several cores (``OMP_NUM_THREADS`` caps them); without
it, one.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("_fastrnn.c")
ABI_VERSION = 9                      # must match rk_abi_version() in _fastrnn.c
# tried in order: -march=native lets the compiler use the CPU's vector instructions,
# -mprefer-vector-width=512 their widest registers for the gate arithmetic too (x86),
# -fopenmp several cores; each is dropped where the compiler refuses it
FLAG_SETS = (("-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp"),
             ("-O3", "-march=native", "-fopenmp"), ("-O3", "-march=native"), ("-O3", "-fopenmp"),
             ("-O3",))
COMMON_FLAGS = ("-shared", "-fPIC")
COMPILE_TIMEOUT_S = 120
GOMP_SPINCOUNT = 30000               # see _load

_lock = threading.Lock()
_loaded = False                      # True once a load was attempted (success or not)
_kernels = {}                        # np.dtype -> Kernels
_status = "not loaded yet"
_lib = None
_flops_per_thread = 1 << 18          # FLOPS_PER_THREAD in _fastrnn.c


def cache_dir() -> Path:
    """Where compiled kernels are kept: $RNNKIT_CACHE, $XDG_CACHE_HOME/rnnkit or ~/.cache/rnnkit."""
    env = os.environ.get("RNNKIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rnnkit"


def find_compiler():
    """Path of the C compiler to use ($CC if set, else cc, gcc, clang), or None."""
    cc = os.environ.get("CC")
    candidates = [cc] if cc else ["cc", "gcc", "clang"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    return None


def _cpu_fingerprint() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    parts = [platform.machine(), platform.processor()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "flags", "features", "cpu part", "isa"):
                    parts.append(line.strip())
                if line.strip() == "":       # the first processor describes them all
                    break
    except OSError:
        pass
    return "\n".join(parts)


def library_path(compiler: str, flags) -> Path:
    """The cached library's path for this source, compiler, flags and CPU."""
    h = hashlib.sha256()
    h.update(SOURCE.read_bytes())
    st = os.stat(compiler)
    h.update(f"{os.path.realpath(compiler)}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(" ".join(flags).encode())
    h.update(f"{sys.platform}|{ABI_VERSION}".encode())
    h.update(_cpu_fingerprint().encode())
    return cache_dir() / f"_fastrnn-{h.hexdigest()[:20]}.so"


def compile_library(compiler: str, flags, target: Path) -> str:
    """Compile ``_fastrnn.c`` to ``target`` atomically; return "" or why it failed.

    The compiler writes a temporary file in the target's directory, which is then
    renamed over ``target`` (atomic on POSIX), so concurrent builds are harmless.
    """
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix="._fastrnn-", suffix=".so", dir=str(target.parent))
    os.close(fd)
    cmd = [compiler, *flags, *COMMON_FLAGS, str(SOURCE), "-o", tmp, "-lm"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=COMPILE_TIMEOUT_S,
                              env={**os.environ, "LC_ALL": "C"})
        if proc.returncode != 0:
            out = proc.stdout.decode(errors="replace").strip().splitlines()
            return f"{' '.join(cmd)} failed: {out[-1] if out else proc.returncode}"
        os.replace(tmp, target)
        return ""
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{' '.join(cmd)} failed: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_atomic(path: Path, text: str) -> None:
    """Write a small text file by rename, so a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(prefix="._fastrnn-", dir=str(path.parent))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _open_library(flag_sets=FLAG_SETS):
    """Load the cached library, building it first if needed: (CDLL, "") or (None, why).

    The first of ``flag_sets`` that compiles wins.
    """
    if not SOURCE.is_file():
        return None, f"{SOURCE} is missing"
    compiler = find_compiler()
    if compiler is None:
        return None, "no C compiler found (set CC or install cc)"
    errors = []
    for flags in flag_sets:
        try:
            path = library_path(compiler, flags)
            failed = path.with_suffix(".failed")
            if failed.is_file():              # tried before: do not pay for the failure again
                errors.append(failed.read_text(encoding="utf-8", errors="replace"))
                continue
            if not path.is_file():
                err = compile_library(compiler, flags, path)
                if err:
                    errors.append(err)
                    _write_atomic(failed, err)
                    continue
            lib = ctypes.CDLL(str(path))
            if lib.rk_abi_version() != ABI_VERSION:
                errors.append(f"{path}: unexpected ABI version")
                continue
            return lib, ""
        except OSError as exc:
            errors.append(str(exc))
    return None, "; ".join(errors)


# ------------------------------------------------------------------------- kernels

_P = ctypes.c_void_p
_I = ctypes.c_int64
_INT = ctypes.c_int
_SIGNATURES = {      # the loops of _fastrnn.c; each returns 0, or -1 when out of memory
    "rnn_fwd": [_I, _I, _I, _P, _INT, _I, _P, _P, _P, _P, _P, _P, _P],
    "rnn_bwd": [_I, _I, _I, _P, _INT, _P, _P, _P, _P, _P, _P],
    "lstm_fwd": [_I, _I, _I, _P, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P],
    "lstm_bwd": [_I, _I, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P],
    "gru_fwd": [_I, _I, _I, _P, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P],
    "gru_bwd": [_I, _I, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P],
    "rnn_inf": [_I, _I, _I, _P, _INT, _I, _P, _P, _P, _P, _P, _P, _P],
    "lstm_inf": [_I, _I, _I, _P, _I, _P, _P, _P, _P, _P, _P, _P, _P],
    "gru_inf": [_I, _I, _I, _P, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P],
    "stack_inf": [_I, _INT, _I, _I, _I, _I, _I, _P, _P, _P, _P, _P, _P],
}


class Kernels:
    """The C loops for one dtype: ``rnn_fwd``, ``lstm_bwd``, ... (no dtype suffix).

    Each call raises MemoryError when the kernel could not allocate its packed
    copy of W_hh.
    """

    def __init__(self, lib, suffix: str):
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
            fn.errcheck = _check_status
            setattr(self, name, fn)


def _check_status(result, func, args):
    if result != 0:
        raise MemoryError(f"rnnkit.fast: {func.__name__} could not allocate its workspace")
    return result


def _load():
    global _loaded, _status, _lib
    with _lock:
        if _loaded:
            return
        # GNU OpenMP reads this when the library first loads: its idle threads spin
        # 300000 rounds (milliseconds) after each loop before they sleep, and took a
        # core from the NumPy products that follow in a training step (LSTM B=32
        # H=128 forward+backward 21 -> 14 ms on 2 cores with 30000); a step's
        # barriers come microseconds apart and still meet spinning threads
        os.environ.setdefault("GOMP_SPINCOUNT", str(GOMP_SPINCOUNT))
        lib, why = _open_library()
        if lib is None:
            _status = f"unavailable: {why}"
        else:
            _lib = lib
            lib.rk_set_flops_per_thread(ctypes.c_int64(_flops_per_thread))
            # GNU OpenMP hangs in a forked child that starts threads: children run serially
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=lib.rk_after_fork_in_child)
            _kernels[np.dtype(np.float32)] = Kernels(lib, "f32")
            _kernels[np.dtype(np.float64)] = Kernels(lib, "f64")
            _status = f"loaded {lib._name} (up to {lib.rk_max_threads()} threads)"
        _loaded = True


def set_flops_per_thread(flops: int) -> int:
    """Set the products (FLOPs per step) each thread needs; return the old value.

    0 uses all threads whatever the size (the tests use it to run the threaded
    loops on small problems). No effect without the kernels.
    """
    global _flops_per_thread
    old = _flops_per_thread
    _flops_per_thread = int(flops)
    if _lib is not None:
        _lib.rk_set_flops_per_thread(ctypes.c_int64(_flops_per_thread))
    return old


def set_max_threads(n: int) -> int:
    """Let later calls from this thread use up to ``n`` threads; return the old limit (or 1)."""
    if _lib is None:
        return 1
    old = _lib.rk_max_threads()
    _lib.rk_set_max_threads(int(n))
    return old


def max_threads() -> int:
    """How many threads the loops may use now (1 without the kernels or OpenMP)."""
    return 1 if _lib is None else _lib.rk_max_threads()


def kernels(dtype):
    """The :class:`Kernels` for ``dtype`` (float32/float64), or None if they cannot be built."""
    if not _loaded:
        _load()
    return _kernels.get(np.dtype(dtype))


def status() -> str:
    """One line: whether the kernels loaded, from where, and how the matrix products run."""
    return _status
