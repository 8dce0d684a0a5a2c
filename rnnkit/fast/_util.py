"""Pieces the three fast cells share: one-allocation workspaces, biases, threads per call."""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import time

import numpy as np

from rnnkit import fast
from rnnkit.cells import _common


# Buffers handed out by workspace(), newest last. A buffer is reused only when no
# array made from it is alive any more: every view holds a reference to the buffer
# (its ``base``), so the buffer's reference count says whether one is. Reusing
# memory that is still mapped saves the page faults of fresh large allocations,
# which cost as much as the time loop itself at mid-sized shapes. Buffers still in
# use stay tracked (a model of many layers keeps each layer's cache alive between
# steps: with them counted against one small limit, the pool forgot the buffers
# of one step before the next asked for them again); of the free ones, the least
# recently used beyond _POOL_FREE_MAX are let go.
_POOL: list = []
_POOL_MAX = 64                         # buffers tracked, in use or free
_POOL_FREE_MAX = 8                     # free buffers kept for reuse
_POOL_MIN_BYTES = 1 << 16              # smaller allocations are cheap: not pooled
_pool_lock = threading.Lock()


def _free(i: int) -> bool:
    """Whether nothing but the pool refers to _POOL[i] (references: the list, the argument)."""
    return sys.getrefcount(_POOL[i]) == 2


def _buffer(dtype, n: int) -> np.ndarray:
    """A 1-d array of n elements of ``dtype``: a free pooled one, else a new (pooled) one."""
    if n * dtype.itemsize < _POOL_MIN_BYTES:
        return np.empty(n, dtype=dtype)
    with _pool_lock:
        for i in range(len(_POOL) - 1, -1, -1):
            if _POOL[i].size == n and _POOL[i].dtype == dtype and _free(i):
                buf = _POOL.pop(i)
                _POOL.append(buf)              # now the most recently used
                return buf
        buf = np.empty(n, dtype=dtype)
        _POOL.append(buf)
        free = [i for i in range(len(_POOL) - 1) if _free(i)]          # oldest first
        for i in reversed(free[:max(0, len(free) - _POOL_FREE_MAX)]):
            del _POOL[i]
        if len(_POOL) > _POOL_MAX:             # all in use: stop tracking the oldest
            del _POOL[0]
        return buf


def release_pool() -> None:
    """Forget every pooled buffer (each is freed when the last array made from it dies)."""
    with _pool_lock:
        _POOL.clear()


def workspace(dtype, *shapes):
    """C-contiguous arrays of ``shapes`` carved from one buffer, their contents undefined.

    One allocation instead of one per array keeps the per-call overhead of short
    sequences (a generation loop calls with T = 1) small. The arrays do not
    overlap. The buffer comes from a small pool and is reused once no array
    carved from it is alive: a training loop that drops the last step's caches
    gets the same memory back.
    """
    dt = np.dtype(dtype)
    sizes = [math.prod(s) for s in shapes]
    buf = _buffer(dt, sum(sizes))
    arrays, off = [], 0
    for shape, n in zip(shapes, sizes):
        arrays.append(buf[off:off + n].reshape(shape))
        off += n
    return arrays


_scratch = threading.local()


def scratch(dtype, n: int) -> np.ndarray:
    """This thread's scratch array of at least n elements of ``dtype``.

    For a C call that needs working memory only while it runs (a generation step):
    the same memory serves every call of a thread, which runs them one at a time,
    while other threads have their own. It grows to the largest n asked for.
    """
    buffers = _scratch.__dict__.setdefault("buffers", {})      # dtype -> array
    buf = buffers.get(dtype)
    if buf is None or buf.size < n:
        buf = buffers[dtype] = np.empty(n, dtype=dtype)
    return buf


def empty(dtype, shape) -> np.ndarray:
    """One pooled C-contiguous array (see :func:`workspace`), its contents undefined."""
    return workspace(dtype, shape)[0]


# The C loops project each step's inputs themselves (x_t W_ihᵀ just before the
# recurrent product, while it is in the cache) when W_ih is small enough to stay
# in the cache beside W_hh; on one thread a large W_ih read again at every step
# costs more than one NumPy product over all steps first (measured: LSTM with
# I = 256, H = 512 1.2x slower in the loop; I <= 65, H <= 256 0.6-0.9x). With
# several threads the loop shares W_ih among them and avoids BLAS threads that
# compete with its own (that LSTM: 82 ms in the loop, 124 ms NumPy first, on 2
# cores). A generation step (T·B tiny) always projects in the loop.
IN_LOOP_MAX_BYTES = 1 << 19


def project_in_loop(T: int, B: int, w_ih) -> bool:
    """Whether the C loop should project the inputs step by step (else: NumPy first)."""
    return T * B < 4 or w_ih.nbytes <= IN_LOOP_MAX_BYTES or fast.max_threads() > 1


def project(x, w_ih, out):
    """out (T, B, G*H) = x W_ihᵀ for all steps at once, written into ``out``; returns out."""
    T, B, I = x.shape
    hold_blas()
    np.matmul(x.reshape(T * B, I), w_ih.T, out=out.reshape(T * B, out.shape[2]))
    return out


# After a backward loop that ran on several threads, the weight gradients and dx
# run on the same threads (the kernels' ``grads``, our own blocked products): with
# NumPy they would run on a BLAS held to one thread (see below), or on a BLAS pool
# of its own that competes with the loop's (measured on 2 cores, LSTM T=100, B=32,
# I=64, H=256 float32: the loop's two threads 18 ms with BLAS at one thread 29 ms,
# BLAS at two threads beside the loop's 24 ms). Inputs narrower than
# GRAD_MIN_INPUTS keep dW_ih and dx in NumPy: a product with so few columns
# fills a small part of the kernels' panels (I = 8: 0.9 ms in NumPy, 4 ms in ours).
GRAD_MIN_INPUTS = 32


def param_grads(k, params, x, h_prev, dA, dHH, w_ih, dx_out):
    """``rnnkit.cells._common.param_grads`` (same arguments and results; ``dx_out`` is
    written), on the loop's threads when the calling function's loop may use several
    (see above), else NumPy's."""
    if fast.max_threads() <= 1:
        return _common.param_grads(params, x, h_prev, dA, dHH, w_ih, dx_out=dx_out)
    T, B, I = x.shape
    N, H, dt = dA.shape[2], h_prev.shape[2], dA.dtype
    wide = I >= GRAD_MIN_INPUTS
    same = dHH is dA
    has_b_ih, has_b_hh = params.get("bias_ih") is not None, params.get("bias_hh") is not None
    want_b_a = has_b_ih and wide and not same
    grads = {"weight_ih": np.empty((N, I), dt), "weight_hh": np.empty((N, H), dt)}
    b_a = np.empty(N, dt) if want_b_a else None
    b_hh = np.empty(N, dt) if has_b_hh or (has_b_ih and same) else None
    x, h_prev, w_ih = (np.ascontiguousarray(a) for a in (x, h_prev, w_ih))
    k.grads(T * B, N, I, H, dA, dHH, x, h_prev, w_ih, grads["weight_ih"] if wide else None,
            grads["weight_hh"], b_a, b_hh, dx_out if wide else None)
    if not wide:
        dA2 = dA.reshape(T * B, N)
        np.matmul(dA2.T, x.reshape(T * B, I), out=grads["weight_ih"])
        np.matmul(dA2, w_ih, out=dx_out.reshape(T * B, I))
    if has_b_ih:
        if same:                                  # the same sum; its own array where both exist
            grads["bias_ih"] = b_hh.copy() if has_b_hh else b_hh
        else:
            grads["bias_ih"] = b_a if want_b_a else dA.reshape(T * B, N).sum(axis=0)
    if has_b_hh:
        grads["bias_hh"] = b_hh
    return dx_out, grads


def folded_bias(b_ih, b_hh, n: int, dtype):
    """b_ih + b_hh (either may be None; both None gives zeros) as a C-contiguous (n,) array."""
    if b_ih is None and b_hh is None:
        return np.zeros(n, dtype=dtype)
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    return np.ascontiguousarray(bias, dtype=dtype)


# One pool of threads at a time, and no more threads than the machine has free.
# The C loops split their steps among OpenMP threads, which meet at barriers
# several times a step: a thread that waits for a core stalls every step.
#  - While the loops may run on several threads (whether this call gets them or
#    the load leaves it one), every BLAS that threadpoolctl finds is held to one
#    thread for the whole call, and their own settings come back after it. The
#    products of a call that runs on several threads run on the loop's threads
#    (param_grads above; rnnkit.fast.linear for Linear); the rest run on the
#    calling thread. A BLAS pool woken by rnnkit's own products would spin for a
#    while beside the loops' and make the next calls see a busy machine (see
#    below), a call at a time, for good.
#  - A call uses at most as many loop threads as CPUs are not running other
#    work (``/proc/loadavg``'s count of running tasks, read at most every
#    LOAD_EVERY_S): on a busy machine the loop runs on fewer threads instead of
#    waiting at barriers for descheduled ones (measured with the machine at load
#    10-15 on 2 cores: LSTM T=100 forward+backward one thread 2-10x faster than
#    two). This process's running threads count as other work, but for the
#    threads the calling thread's loops run on (itself and OpenMP's workers,
#    whose kernel ids ``fast.loop_thread_ids`` gives): those spin for a few ms
#    after a loop, ready for the next, and counting them sent most calls to one
#    thread (benchmarks/jobs.py's char LM step with the BLAS held to one thread,
#    quiet 2-core machine: 152 ms with them counted, 129 ms with every loop
#    split). BLAS workers spinning after a NumPy product outside rnnkit's calls
#    do count: loops split beside them wait at barriers (the same step with the
#    BLAS at two threads: 152 ms with them counted, 248 ms with every loop split).
# Nothing process-wide is set for longer than the call.
LOAD_EVERY_S = 0.1
_blas = None                           # threadpoolctl's controllers of the loaded BLAS libraries
_load = [-1.0, 1]                      # (when /proc was read, CPUs free then)
_loop_ids: dict = {}                   # (thread id, threads) -> the ids its loops run on


def _blas_libraries():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def cpus_free(cpus: int, running: int, own_running: int) -> int:
    """CPUs this process may use without taking one from another process: of ``cpus``,
    those not running other processes' tasks (``running`` tasks run now, ``own_running``
    of them this process's threads, the caller included). At least 1."""
    return max(1, min(cpus, cpus - max(0, running - own_running)))


def _loop_threads() -> frozenset:
    """The kernel's ids of the threads the calling thread's loops run on (itself included)."""
    key = (threading.get_native_id(), fast.max_threads())
    ids = _loop_ids.get(key)
    if ids is None:
        ids = _loop_ids[key] = frozenset(fast.loop_thread_ids()) | {key[0]}
    return ids


def running_among(ids) -> int:
    """How many of this process's threads whose kernel ids are in ``ids`` are running now
    (state R in /proc/self/task/*/stat)."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) not in ids:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as fh:
                n += fh.read().rsplit(b")", 1)[1].split()[0] == b"R"
        except (OSError, IndexError):           # a thread that ended meanwhile
            continue
    return n


def free_cpus() -> int:
    """CPUs not running other tasks now: :func:`cpus_free` of /proc/loadavg's running
    tasks, of which the calling thread's loop threads are its own (see above); all
    CPUs where /proc cannot be read."""
    now = time.monotonic()
    if now - _load[0] > LOAD_EVERY_S:
        cpus = os.cpu_count() or 1     # the CPUs /proc/loadavg counts tasks on
        try:
            with open("/proc/loadavg", "rb") as fh:
                running = int(fh.read().split()[3].split(b"/")[0])     # "R/T": running now
            free = cpus_free(cpus, running, max(1, running_among(_loop_threads())))
        except (OSError, ValueError, IndexError):
            free = cpus
        _load[:] = [now, free]
    return _load[1]


_held = threading.local()     # this thread's call: .want (hold BLAS at its first product), .saved


def _hold(saved: list) -> None:
    """Hold every BLAS to one thread, appending (library, its threads) to ``saved``."""
    for lib in _blas_libraries():
        old = lib.get_num_threads()
        if old is not None and old > 1:
            lib.set_num_threads(1)
            saved.append((lib, old))


def hold_blas() -> None:
    """Before a NumPy product inside a ``threads_for_call(blas="lazy")`` call: hold every
    BLAS to one thread until the call ends, as ``blas=True`` holds it for the whole call
    (once; elsewhere nothing). Setting and restoring the BLAS threads costs about 3 µs a
    call, a twentieth of a short forward, so a call whose loop runs its own products
    (the usual case) does not pay it."""
    if getattr(_held, "want", False):
        _held.want = False
        _hold(_held.saved)


def threads_for_call(fn=None, *, blas=True):
    """Decorate a fast cell's function: its loops use the threads the machine has free, and
    BLAS one thread while the loops may use several (see above; ``blas=False`` for a
    function that runs no BLAS product, ``"lazy"`` for one whose NumPy products call
    :func:`hold_blas` first)."""
    if fn is None:
        return functools.partial(threads_for_call, blas=blas)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        ceiling = fast.max_threads()      # the callers run only where the kernels do
        if ceiling <= 1:
            return fn(*args, **kwargs)
        n = ceiling if fast.always_split() else min(ceiling, free_cpus())
        if n < ceiling:
            fast.set_max_threads(n)
        saved = []
        outer = (getattr(_held, "want", False), getattr(_held, "saved", None))
        try:
            if blas == "lazy":
                _held.want, _held.saved = True, saved
            elif blas:
                _hold(saved)
            return fn(*args, **kwargs)
        finally:
            _held.want, _held.saved = outer
            for lib, old in saved:
                lib.set_num_threads(old)
            if n < ceiling:
                fast.set_max_threads(ceiling)
    return run
