r"""Data parallelism over MPI: the communicator the Trainer averages gradients with.

One process needs no MPI: :func:`world` returns a :class:`SingleProcess` whose
operations do nothing, and mpi4py is imported only when the process was started by
an MPI launcher with more than one process (``mpiexec -n N``, ``srun``), which the
launcher's environment variables tell (:data:`SIZE_VARIABLES`).
MPI is the optional extra ``pip install "rnnkit[mpi]"`` (mpi4py and the MPICH wheel).

The operations (every rank calls each one, in the same order):

* :meth:`allreduce` — the element-wise sum of one flat buffer over the ranks, in place;
* :meth:`broadcast` — a tree of arrays and JSON values (initial weights, optimizer
  state) from rank 0 to every rank, without pickle;
* :meth:`barrier`;
* :meth:`gather_bytes` — one byte string per rank, to rank 0 (checkpoint pieces);
* :meth:`same_on_all` — whether arrays are bit-identical on every rank (a hash allreduce).

How the Trainer spreads a step (see :mod:`rnnkit.train`): every rank builds the same
global batch and takes its shard, :func:`shard_range`; the gradient of the global mean
loss L = Σ_r W_r·L_r / Σ_r W_r (W_r: what rank r's mean divides by) is
Σ_r (W_r / W)·∇L_r, one allreduce of the flat buffer of the scaled local gradients.

No hang. A blocking collective waits at most ``timeout`` seconds (``RNNKIT_MPI_TIMEOUT``,
default 900) before a watchdog aborts the whole job; a rank that raises inside
training calls :meth:`abort`, and a rank that dies is noticed by the launcher, which
ends the others (MPICH's ``mpiexec`` does so within seconds). Checkpoints are written
atomically by rank 0 only, so the last one stays intact whichever way the job ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time

import numpy as np

from rnnkit.errors import DivergenceError, RnnkitError

__all__ = ["SingleProcess", "MPICommunicator", "world", "launched_size", "shard_range", "find_mpiexec", "agree",
           "DataParallel", "shard_batch", "batch_size", "assemble_state", "state_shard",
           "DEFAULT_TIMEOUT"]

#: environment variables MPI launchers set to the number of processes
#: (Open MPI; MPICH, Intel MPI and srun over PMI; MVAPICH2)
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
#: seconds a collective may wait before the job is aborted (RNNKIT_MPI_TIMEOUT overrides)
DEFAULT_TIMEOUT = 900.0
#: seconds a failing rank waits before MPI_Abort, for the launcher to forward its last output
ABORT_GRACE = 0.5


def launched_size() -> int:
    """How many processes the MPI launcher started (1 outside a launcher)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    return 1


def find_mpiexec() -> str | None:
    """The ``mpiexec`` next to this Python (the MPICH wheel installs it there), else on PATH."""
    import shutil
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which("mpiexec")


def shard_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """The items [start, stop) of ``n`` that ``rank`` of ``size`` takes: contiguous blocks
    in rank order whose sizes differ by at most one (rank r: ⌈r·n/N⌉ to ⌈(r+1)·n/N⌉), so
    rank 0 holds an item whenever there is one."""
    return -(-rank * n // size), -(-(rank + 1) * n // size)


def _timeout_from_env() -> float:
    value = os.environ.get("RNNKIT_MPI_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        t = float(value)
    except ValueError:
        raise RnnkitError(f"RNNKIT_MPI_TIMEOUT must be a number of seconds, got {value!r}") from None
    if not t > 0:
        raise RnnkitError(f"RNNKIT_MPI_TIMEOUT must be > 0 seconds, got {value!r}")
    return t


class SingleProcess:
    """The communicator of a run in one process: rank 0 of 1, every operation a no-op."""

    rank = 0
    size = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` (a contiguous 1-D array) over the ranks, in place; returns it."""
        return buf

    def broadcast(self, tree):
        """``tree`` (dicts, lists, JSON values, numeric arrays) as rank 0 has it."""
        return tree

    def barrier(self) -> None:
        """Wait until every rank has called it."""

    def gather_bytes(self, data: bytes) -> list[bytes] | None:
        """Every rank's ``data`` in rank order on rank 0; None on the other ranks."""
        return [bytes(data)]

    def same_on_all(self, arrays) -> bool:
        """Whether ``arrays`` (a dict or list of arrays) are bit-identical on every rank."""
        return True

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now with exit status ``code``."""
        sys.stderr.flush()
        os._exit(code)


class MPICommunicator(SingleProcess):
    """The communicator over an mpi4py ``Comm`` (``MPI.COMM_WORLD`` by default).

    ``timeout``: seconds one collective may wait for the other ranks before the job
    is aborted (None: ``RNNKIT_MPI_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`).
    """

    def __init__(self, comm=None, timeout: float | None = None):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise RnnkitError(f"this process was started by an MPI launcher with {launched_size()} "
                              "processes, but mpi4py is not installed: pip install \"rnnkit[mpi]\"") from exc
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = _timeout_from_env() if timeout is None else float(timeout)
        self._deadline = None
        self._what = ""
        self._watchdog = None

    # -- the watchdog --------------------------------------------------------------------
    def _guard(self, what: str):
        return _Guard(self, what)

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                print(f"rnnkit: rank {self.rank}: {self._what} waited more than {self.timeout:g} s for "
                      "the other ranks (RNNKIT_MPI_TIMEOUT); aborting the job", file=sys.stderr, flush=True)
                self.abort(70)

    # -- the operations ------------------------------------------------------------------
    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        if not (isinstance(buf, np.ndarray) and buf.ndim == 1 and buf.flags.c_contiguous):
            raise TypeError("allreduce: expected a contiguous 1-D NumPy array")
        with self._guard("allreduce"):
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return buf

    def _bcast_bytes(self, data: bytes | None) -> bytes:
        n = np.array([0 if data is None else len(data)], dtype=np.int64)
        self.comm.Bcast(n, root=0)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == 0 else np.empty(int(n[0]), np.uint8)
        self.comm.Bcast(buf, root=0)
        return buf.tobytes()

    def broadcast(self, tree):
        from rnnkit import io as rkio   # the tree <-> JSON + arrays encoding of checkpoints
        with self._guard("broadcast"):
            if self.rank == 0:
                plain, arrays = rkio.encode_state(tree)
                layout = {k: [a.dtype.str, list(a.shape)] for k, a in arrays.items()}
                header = json.dumps({"tree": plain, "arrays": layout}).encode("utf-8")
                self._bcast_bytes(header)
            else:
                message = json.loads(self._bcast_bytes(None).decode("utf-8"))
                plain = message["tree"]
                arrays = {k: np.empty(shape, dtype=np.dtype(dt)) for k, (dt, shape) in message["arrays"].items()}
            received = {}
            for key in sorted(arrays):
                a = arrays[key] if arrays[key].flags.c_contiguous else arrays[key].copy(order="C")
                self.comm.Bcast(a.reshape(-1).view(np.uint8), root=0)
                received[key] = a
        if self.rank == 0:
            return tree
        return rkio.decode_state(plain, received, "broadcast")

    def barrier(self) -> None:
        with self._guard("barrier"):
            self.comm.Barrier()

    def gather_bytes(self, data: bytes) -> list[bytes] | None:
        with self._guard("gather"):
            sizes = np.zeros(self.size, dtype=np.int64)
            self.comm.Gather(np.array([len(data)], dtype=np.int64), sizes, root=0)
            send = np.frombuffer(bytes(data), dtype=np.uint8)
            if self.rank != 0:
                self.comm.Gatherv(send, None, root=0)
                return None
            recv = np.empty(int(sizes.sum()), dtype=np.uint8)
            self.comm.Gatherv(send, (recv, sizes), root=0)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [recv[bounds[i]:bounds[i + 1]].tobytes() for i in range(self.size)]

    def same_on_all(self, arrays) -> bool:
        items = sorted(arrays.items()) if isinstance(arrays, dict) else list(enumerate(arrays))
        h = hashlib.blake2b(digest_size=8)
        for key, a in items:
            a = np.asarray(a)
            a = a if a.flags.c_contiguous else a.copy(order="C")
            h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
            h.update(a.view(np.uint8).reshape(-1).data)
        value = np.frombuffer(h.digest(), dtype=np.int64).copy()
        low, high = value.copy(), value.copy()
        with self._guard("hash allreduce"):
            self.comm.Allreduce(self._MPI.IN_PLACE, low, op=self._MPI.MIN)
            self.comm.Allreduce(self._MPI.IN_PLACE, high, op=self._MPI.MAX)
        return bool(low[0] == high[0])

    def abort(self, code: int = 1) -> None:
        """End every rank now with exit status ``code``. What this rank printed is in a pipe
        to the launcher, which stops forwarding it once an abort reaches it: the rank waits
        :data:`ABORT_GRACE` seconds first, so its error message is not lost."""
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(ABORT_GRACE)
        self.comm.Abort(code)


class _Guard:
    """Arms the communicator's watchdog for the duration of one collective."""

    def __init__(self, comm: MPICommunicator, what: str):
        self.comm, self.what = comm, what

    def __enter__(self):
        c = self.comm
        if c._watchdog is None:
            c._watchdog = threading.Thread(target=c._watch, name="rnnkit-mpi-watchdog", daemon=True)
            c._watchdog.start()
        c._what = self.what
        c._deadline = time.monotonic() + c.timeout
        return self

    def __exit__(self, *exc):
        self.comm._deadline = None
        return False


# -- what the Trainer needs to spread a step ------------------------------------------

def shard_batch(batch: dict, axes: dict, start: int, stop: int, where: str = "shard_batch") -> dict:
    """Items [start, stop) of every array in ``batch``, cut along its item axis.

    ``axes`` maps each key to the axis that indexes the batch's items (a model's
    ``batch_axes``: 1 for time-major ``x``, 0 for ``lengths``); values that are not
    arrays (None, a flag) pass unchanged. An array under a key ``axes`` does not name
    is an error, since the shard could not be cut.
    """
    out = {}
    for key, value in batch.items():
        if value is None or not isinstance(value, (np.ndarray, list, tuple)):
            out[key] = value
            continue
        if key not in axes:
            raise ValueError(f"{where}: the batch's {key!r} cannot be split across ranks: the model's "
                             f"batch_axes names only {sorted(axes)}")
        a = np.asarray(value)
        index = [slice(None)] * a.ndim
        index[axes[key]] = slice(start, stop)
        out[key] = a[tuple(index)]
    return out


def batch_size(batch: dict, axes: dict, where: str = "batch") -> int:
    """The number of items in ``batch``, read along the first key of ``axes`` it holds."""
    for key, axis in axes.items():
        value = batch.get(key)
        if value is not None and isinstance(value, (np.ndarray, list, tuple)):
            a = np.asarray(value)
            if a.ndim <= axis:
                raise ValueError(f"{where}: {key!r} has {a.ndim} dims, but the items lie along axis {axis}")
            return int(a.shape[axis])
    raise ValueError(f"{where}: holds none of the keys {sorted(axes)} to count its items by")


def assemble_state(comm: SingleProcess, piece, n: int, start: int):
    """A recurrent state whose items are spread over the ranks, whole on every rank.

    ``piece`` is this rank's part (an array (L·D, b, H), a tuple of them for LSTM, or
    None when it holds no items) starting at item ``start`` of ``n``; rank 0's part
    gives the layout. Every rank writes its part into zeros and an allreduce sums the
    parts, which is exact. Collective: every rank calls it.
    """
    if comm.size == 1:
        return piece
    pieces = piece if isinstance(piece, tuple) else (piece,)
    layout = None if piece is None else {"tuple": isinstance(piece, tuple),
                                         "arrays": [[p.dtype.str, p.shape[0], p.shape[2]] for p in pieces]}
    layout = comm.broadcast(layout)
    if layout is None:
        return None
    whole = []
    for i, (dtype, lead, width) in enumerate(layout["arrays"]):
        full = np.zeros((lead, n, width), dtype=np.dtype(dtype))
        if piece is not None:
            full[:, start:start + pieces[i].shape[1]] = pieces[i]
        whole.append(comm.allreduce(full.reshape(-1)).reshape(full.shape))
    return tuple(whole) if layout["tuple"] else whole[0]


def state_shard(state, start: int, stop: int):
    """Items [start, stop) of a recurrent state (an array (L·D, B, H) or a tuple of them)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(np.ascontiguousarray(s[:, start:stop]) for s in state)
    return np.ascontiguousarray(np.asarray(state)[:, start:stop])


class DataParallel:
    """The Trainer's side of a data-parallel step on ``comm`` (more than one rank).

    Every rank holds the same global batch; :meth:`local` cuts this rank's shard with
    the model's ``batch_axes``. :meth:`train_step` runs the local forward and backward
    passes, then two allreduces: the step's statistics (Σ loss·W, Σ W, Σ count and the
    stop votes) and the flat buffer of the gradients scaled by W_r / W, so each rank
    ends with the gradient of the global mean loss and the same stop decision.
    A Ctrl-C inside :meth:`interrupts` is a vote to stop after the current step; a
    second one aborts the job at once.
    """

    def __init__(self, comm: SingleProcess, model):
        axes = getattr(model, "batch_axes", None)
        if not isinstance(axes, dict):
            raise TypeError(f"data-parallel training over {comm.size} ranks needs the model's batch_axes "
                            f"(the item axis of each batch key); {type(model).__name__} has none")
        self.comm, self.axes = comm, axes
        self.agreed_stop = None       # "interrupted" or "time_limit" once every rank knows it
        self.interrupted = False      # this rank saw a Ctrl-C
        self.carry_bounds = (0, 0, 0)  # (start, stop, n): the items of the carried state here
        self.overflowed = False       # the last step's activations overflowed on some rank

    def bounds(self, n: int) -> tuple[int, int]:
        return shard_range(n, self.comm.rank, self.comm.size)

    def local(self, batch: dict, where: str):
        """This rank's shard of ``batch`` and its item range (start, stop, n); the shard
        is None when this rank has no item of it."""
        n = batch_size(batch, self.axes, where)
        start, stop = self.bounds(n)
        if stop == start:
            return None, (start, stop, n)
        return shard_batch(batch, self.axes, start, stop, where), (start, stop, n)

    def train_step(self, model, batch: dict, state, carry_at, time_up: bool, where: str):
        """Forward and backward on the shard, then the reduction; returns
        ``(global mean loss, global count, this shard's state after the step)``.

        Divergence is decided together: activations that overflow on one rank (finite
        data, a NaN or inf inside the network) make the global loss NaN on every rank,
        and ``overflowed`` True, so every rank stops at the same step instead of one
        raising while the others wait in the allreduce."""
        from rnnkit._checks import NonFiniteError

        local, self.carry_bounds = self.local(batch, where)
        loss, count, weight, state_out, overflow = 0.0, 0, 0.0, None, 0.0
        if local is not None:
            try:
                loss, count, state_out = model.loss(local, state=state, carry_at=carry_at)
                loss, count = float(loss), int(count)
                w = getattr(model, "loss_weight", None)
                weight = float(count if w is None else w)
                if weight > 0:
                    model.backward()
                else:                     # nothing scored here: no loss, no gradient
                    loss = 0.0
            except NonFiniteError:
                if not _finite(local):
                    raise                 # bad data: an input error, which ends every rank
                overflow, loss, weight = 1.0, 0.0, 0.0
                model.zero_grad()
        stats = np.array([loss * weight, weight, count, float(time_up), float(self.interrupted), overflow])
        self.comm.allreduce(stats)
        self.overflowed = bool(stats[5] > 0)
        total_weight = stats[1]
        grads = model.grads
        flat = np.concatenate([g.reshape(-1) for g in grads.values()])
        if weight > 0:
            flat *= flat.dtype.type(weight / total_weight)
        else:
            flat[:] = 0
        self.comm.allreduce(flat)
        offset = 0
        for g in grads.values():
            g.reshape(-1)[:] = flat[offset:offset + g.size]
            offset += g.size
        if stats[4] > 0:
            self.agreed_stop = "interrupted"
        elif stats[3] > 0:
            self.agreed_stop = "time_limit"
        mean = stats[0] / total_weight if total_weight > 0 and not self.overflowed else float("nan")
        return float(mean), int(stats[2]), state_out

    def reduce_sums(self, *values: float) -> tuple[float, ...]:
        """Element-wise sums of ``values`` over the ranks."""
        return tuple(float(v) for v in self.comm.allreduce(np.array(values, dtype=np.float64)))

    def interrupts(self) -> "_AgreedInterrupt":
        return _AgreedInterrupt(self)

    def all_or_none(self, work, *args):
        """``work(*args)``, where an error ends every rank: a rank that failed alone would
        leave the others waiting in a collective (a divergence, seen by all alike, is raised)."""
        try:
            return work(*args)
        except DivergenceError:
            raise
        except BaseException as exc:
            self.fail(exc)
            raise

    def fail(self, exc: BaseException) -> None:
        """Print ``exc`` and end every rank: the others would wait for this one forever."""
        print(f"rnnkit: rank {self.comm.rank}: {type(exc).__name__}: {exc}; aborting every rank "
              "(the last checkpoint is left as it was)", file=sys.stderr, flush=True)
        self.comm.abort(1)


class _AgreedInterrupt:
    """While active, SIGINT votes to stop after the current step (every rank agrees on
    the step at the next allreduce); a second SIGINT aborts the job."""

    agreed_stop = True   # tells rnnkit.train's interrupt shield to leave this handler alone

    def __init__(self, dp: DataParallel):
        self.dp = dp
        self.old = None

    def __call__(self, signum, frame):
        if self.dp.interrupted:
            print(f"rnnkit: rank {self.dp.comm.rank}: second Ctrl-C, aborting every rank", file=sys.stderr,
                  flush=True)
            self.dp.comm.abort(130)
        self.dp.interrupted = True
        if self.dp.comm.is_root:
            print("rnnkit: Ctrl-C: every rank stops after this step and writes a checkpoint "
                  "(press again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


def _finite(batch: dict) -> bool:
    return all(not (isinstance(v, np.ndarray) and v.dtype.kind == "f") or bool(np.isfinite(v).all())
               for v in batch.values())


def agree(*values):
    """Rank 0's ``values`` on every rank (a collective: every rank calls it, in the same
    order); in one process, ``values`` as given. For what is read off a clock (a measured
    step time, the time left), which differs between ranks, when it decides anything the
    ranks must do alike (model size, step count, validation interval, a refit).
    One value in, one value out."""
    comm = world()
    if comm.size > 1:
        values = tuple(comm.broadcast({"values": list(values)})["values"])
    return values[0] if len(values) == 1 else values


_WORLD: SingleProcess | None = None


def world() -> SingleProcess:
    """The communicator of this process: MPI's world when an MPI launcher started more
    than one process, else :class:`SingleProcess` (mpi4py is not imported)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = MPICommunicator() if launched_size() > 1 else SingleProcess()
    return _WORLD
