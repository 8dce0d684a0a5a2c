r"""What every ready model shares: the registry, the input and output ends, state helpers.

The model contract (see the brief, "Models and the Trainer")::

    model.config() -> JSON-able dict;  rnnkit.models.build(config) rebuilds the model
    model.loss(batch, state=None, carry_at=None) -> (loss, count, state)
    model.backward()                   # adds the gradients of the last loss() into grads

``loss`` is the mean over ``count`` valid items (the same N the loss function in
:mod:`rnnkit.losses` divides by), so ``Σ loss·count / Σ count`` over batches is the
mean over a whole epoch.

The output end (:class:`OutputHead`) is one of

* classes:    logits z = W h + b (C values), softmax cross-entropy against int ids;
* regression: prediction ŷ = W h + b (O values, the identity link), loss mse, mae,
  huber(δ) or the quantile (pinball) loss, for which the head emits O·Q values
  (one per target dimension and quantile) returned as (..., O, Q).

The input end (:class:`InputEncoder`) turns a batch's ``x`` into the recurrent
layer's (T, B, E) input: int ids through an :class:`~rnnkit.layers.Embedding`
(``vocab_size`` + ``embedding_dim``), or float features (``input_size``) cast to
the model's dtype.

Recurrent states follow :class:`~rnnkit.layers.Recurrent`: an array (L·D, B, H), or
the pair (h, c) of such arrays for LSTM.

The state after ``carry_at`` = k < T steps (for truncated BPTT with overlapping
windows) is computed by a second, eval-mode pass of the recurrent layer over the
first k inputs, run *before* the training pass so the training caches stay intact.
With dropout 0 (or in eval mode) it equals the state the training pass reached at
step k exactly; with inter-layer dropout active it is that state without the
dropout noise, which is the state the model will be used with.
"""

from __future__ import annotations

import contextlib
import copy
import inspect

import numpy as np

from rnnkit import losses as _losses
from rnnkit._checks import NonFiniteError, check_choice, check_dtype, check_number, check_positive_int
from rnnkit.grad_mode import no_grad
from rnnkit.init import make_rng
from rnnkit.cells.registry import KINDS, MODEL_CELLS
from rnnkit.layers import Embedding, Recurrent
from rnnkit.module import Module

# -- registry ------------------------------------------------------------------------

MODELS: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` buildable by its name in ``config()["model"]``."""
    MODELS[cls.__name__] = cls
    return cls


def build(config: dict) -> "Model":
    """Rebuild a model from ``model.config()``.

    The weights are initialised afresh (from the config's seed); load the trained
    weights with ``load_state_dict``. An unknown model name or an unknown key is a
    ValueError that names it.
    """
    if not isinstance(config, dict):
        raise TypeError(f"build: expected config to be a dict, got {type(config).__name__}")
    name = config.get("model")
    if name not in MODELS:
        raise ValueError(f"build: unknown model {name!r} in config['model']; known: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    kwargs = {k: v for k, v in config.items() if k != "model"}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"build: unknown key(s) {unknown} for model {name!r}; accepted: {sorted(accepted)}")
    return cls(**copy.deepcopy(kwargs))


# -- small helpers -------------------------------------------------------------------

CELLS = MODEL_CELLS


def parse_cell(cell, where: str) -> tuple[str, str]:
    """A cell kind of :data:`rnnkit.cells.registry.MODEL_CELLS` ("rnn", "rnn-relu", "lstm",
    "gru", "indrnn", "mingru", "minlstm") -> (Recurrent cell, nonlinearity)."""
    check_choice(cell, "cell", CELLS, where)
    spec = KINDS[cell]
    return spec.cell, spec.nonlinearity


def child_seeds(seed, n: int, where: str) -> list:
    """``n`` independent seeds for the children, all derived from the model's ``seed``
    (None stays None: fresh entropy for every child)."""
    make_rng(seed, where)  # validates the seed with a clear message
    if seed is None:
        return [None] * n
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def get_key(batch, key: str, where: str, required: bool = True):
    """``batch[key]``; a missing required key is a KeyError naming the keys that came."""
    if not isinstance(batch, dict):
        raise TypeError(f"{where}: expected batch to be a dict of arrays, got {type(batch).__name__}")
    if key not in batch or batch[key] is None:
        if required:
            raise KeyError(f"{where}: batch has no {key!r}; got keys {sorted(batch)}")
        return None
    return batch[key]


def int_array(a, name: str, where: str, ndim: int, dims: str) -> np.ndarray:
    """An integer array of ``ndim`` dims (a TypeError for floats: ids are never rounded)."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected {name} to hold integer ids, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{where}: expected {name} with {ndim} dims {dims}, got {a.ndim} (shape {a.shape})")
    return a.astype(np.int64, copy=False)


def float_array(a, name: str, where: str, ndim: int, dims: str, dtype, last: int | None = None) -> np.ndarray:
    """A float array of ``ndim`` dims (last axis ``last``), cast to ``dtype``."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise TypeError(f"{where}: expected {name} to hold floats, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{where}: expected {name} with {ndim} dims {dims}, got {a.ndim} (shape {a.shape})")
    if last is not None and a.shape[-1] != last:
        raise ValueError(f"{where}: expected {name} of shape {dims} with last axis {last}, got {a.shape}")
    if not np.isfinite(a).all():
        raise NonFiniteError(f"{where}: {name} contains NaN or inf")
    return a.astype(dtype, copy=False)


def time_mask(T: int, B: int, lengths, extra, where: str) -> np.ndarray | None:
    """(T, B) bool: step t of sequence b counts when t < lengths[b] and ``extra`` allows it."""
    mask = None
    if lengths is not None:
        mask = np.arange(T)[:, None] < lengths[None, :]
    if extra is not None:
        m = np.asarray(extra)
        if m.shape != (T, B):
            raise ValueError(f"{where}: expected mask of shape {(T, B)} (T, B), got {m.shape}")
        if m.dtype.kind != "b":
            if m.dtype.kind not in "iuf" or not np.all((m == 0) | (m == 1)):
                raise TypeError(f"{where}: expected mask to be boolean (or 0/1), got dtype {m.dtype}")
            m = m != 0
        mask = m if mask is None else (mask & m)
    return mask


# -- states --------------------------------------------------------------------------

def copy_state(s):
    """Fresh arrays (no aliasing of anything a cache holds)."""
    if s is None:
        return None
    if isinstance(s, tuple):
        return tuple(copy_state(a) for a in s)
    return np.array(s, copy=True)


def state_batch(s) -> int:
    return state_batch(s[0]) if isinstance(s, tuple) else s.shape[1]


def index_state(s, idx):
    """Select sequences ``idx`` along the batch axis (axis 1 of every array, tuples nested
    to any depth: beam search reorders with it)."""
    if isinstance(s, tuple):
        return tuple(index_state(a, idx) for a in s)
    return s[:, idx]


@contextlib.contextmanager
def eval_mode(module: Module):
    """Run an inference block: eval mode (no dropout) and ``no_grad`` (the recurrent
    layers keep no caches for backward), then restore the previous mode."""
    was = module.training
    module.eval()
    try:
        with no_grad():
            yield module
    finally:
        module.train(was)


def check_carry_at(carry_at, T: int, where: str) -> int | None:
    """None, or an int k in [1, T]; k == T is the same as None."""
    if carry_at is None:
        return None
    k = check_positive_int(carry_at, "carry_at", where)
    if k > T:
        raise ValueError(f"{where}: carry_at must lie in [1, T={T}], got {k}")
    return None if k == T else k


def state_after(rnn: Recurrent, x: np.ndarray, h0, lengths, k: int):
    """The state of ``rnn`` after the first ``k`` steps of ``x`` (an eval-mode pass).

    Run it before the training pass: it overwrites the layer's caches.

    Shapes:
        x (T, B, I), lengths (B,) or None  ->  state (L·D, B, H) or the (h, c) pair
    """
    clipped = None if lengths is None else np.minimum(lengths, k)
    with eval_mode(rnn):
        _, h_k = rnn.forward(x[:k], h0, clipped)
    return copy_state(h_k)


def check_state(state, rnn: Recurrent, B: int, where: str):
    """A carried state must match the layer (shape, dtype, LSTM pair) and the batch."""
    if state is None:
        return None
    shape = (rnn.num_layers * rnn.num_directions, B, rnn.hidden_size)
    parts = state if isinstance(state, (tuple, list)) else (state,)
    if (rnn.cell == "lstm") != isinstance(state, (tuple, list)) or (rnn.cell == "lstm" and len(parts) != 2):
        want = "a pair (h, c) of arrays" if rnn.cell == "lstm" else "one array"
        raise TypeError(f"{where}: expected state to be {want} of shape {shape}, got {type(state).__name__}")
    out = []
    for a in parts:
        a = np.asarray(a)
        if a.shape != shape:
            raise ValueError(f"{where}: expected state of shape {shape} (num_layers*directions, B, H), "
                             f"got {a.shape}; a carried state needs the same batch size")
        if a.dtype.kind != "f":
            raise TypeError(f"{where}: expected state to hold floats, got dtype {a.dtype}")
        out.append(a.astype(rnn.dtype, copy=False))
    return tuple(out) if rnn.cell == "lstm" else out[0]


# -- the output end --------------------------------------------------------------------

REGRESSION_LOSSES = ("mse", "mae", "huber", "quantile")


class OutputHead:
    """What the Linear head's outputs mean and how they are scored.

    Exactly one of ``num_classes`` (classification: logits, cross-entropy) and
    ``output_size`` (regression: identity link) is given. ``loss`` defaults to
    "cross_entropy" / "mse"; regression also takes "mae", "huber" (``huber_delta``)
    and "quantile" (``quantiles``, the head then emits output_size·Q values).
    ``ignore_index`` (classes only) drops targets equal to it, like a mask.
    ``class_weights`` (classes only: C positive numbers) makes the loss the
    class-weighted mean of :func:`rnnkit.losses.softmax_cross_entropy`; ``count``
    stays the number of valid targets.
    """

    def __init__(self, where: str, num_classes=None, output_size=None, loss=None, huber_delta=1.0,
                 quantiles=None, ignore_index=None, allowed=REGRESSION_LOSSES, class_weights=None):
        if (num_classes is None) == (output_size is None):
            raise ValueError(f"{where}: give exactly one of num_classes (classification) and "
                             f"output_size (regression), got num_classes={num_classes!r}, "
                             f"output_size={output_size!r}")
        self.classes = num_classes is not None
        self.quantiles = None
        self.class_weights = None
        if self.classes:
            self.num_classes = check_positive_int(num_classes, "num_classes", where, minimum=2)
            loss = "cross_entropy" if loss is None else loss
            check_choice(loss, "loss", ("cross_entropy",), where)
            if ignore_index is not None and (isinstance(ignore_index, bool)
                                             or not isinstance(ignore_index, (int, np.integer))):
                raise TypeError(f"{where}: ignore_index must be None or an integer, got "
                                f"{type(ignore_index).__name__}")
            self.ignore_index = None if ignore_index is None else int(ignore_index)
            if class_weights is not None:
                self.class_weights = _losses.check_class_weights(class_weights, self.num_classes, where)
            self.size = self.num_classes
        else:
            self.output_size = check_positive_int(output_size, "output_size", where)
            loss = "mse" if loss is None else loss
            check_choice(loss, "loss", allowed, where)
            if ignore_index is not None:
                raise ValueError(f"{where}: ignore_index applies to classification only")
            if class_weights is not None:
                raise ValueError(f"{where}: class_weights apply to classification only")
            self.ignore_index = None
            self.size = self.output_size
            if loss == "quantile":
                if quantiles is None:
                    raise ValueError(f"{where}: loss='quantile' needs quantiles, e.g. [0.1, 0.5, 0.9]")
                q = [float(v) for v in quantiles]
                if not q or not all(0.0 < v < 1.0 for v in q):
                    raise ValueError(f"{where}: quantiles must be numbers strictly between 0 and 1, got {q}")
                self.quantiles = q
                self.size = self.output_size * len(q)
        if quantiles is not None and loss != "quantile":
            raise ValueError(f"{where}: quantiles apply to loss='quantile' only, got loss={loss!r}")
        self.huber_delta = check_number(huber_delta, "huber_delta", where, 0.0, low_open=True)
        self.loss_name = loss
        self.where = where
        self.last_weight = None

    def config(self) -> dict:
        return {"num_classes": self.num_classes if self.classes else None,
                "output_size": None if self.classes else self.output_size,
                "loss": self.loss_name, "huber_delta": self.huber_delta,
                "quantiles": self.quantiles, "ignore_index": self.ignore_index}

    def shape_output(self, raw: np.ndarray) -> np.ndarray:
        """The head's raw (..., size) values as the user sees them: (..., O, Q) for quantiles."""
        if self.quantiles is not None:
            return raw.reshape(raw.shape[:-1] + (self.output_size, len(self.quantiles)))
        return raw

    def target(self, y, lead: tuple, dtype) -> np.ndarray:
        """Check the targets for outputs with leading shape ``lead``.

        Shapes:
            classes: y int ``lead``;  regression: y float ``lead + (O,)`` (or ``lead`` when O = 1)
        """
        where = self.where
        y = np.asarray(y)
        if self.classes:
            if y.dtype.kind not in "iu":
                raise TypeError(f"{where}: expected y to hold integer class ids, got dtype {y.dtype}")
            if y.shape != lead:
                raise ValueError(f"{where}: expected y of shape {lead}, got {y.shape}")
            return y.astype(np.int64, copy=False)
        if y.dtype.kind not in "iuf":
            raise TypeError(f"{where}: expected y to hold numbers, got dtype {y.dtype}")
        if y.shape == lead and self.output_size == 1:
            y = y[..., None]
        if y.shape != lead + (self.output_size,):
            raise ValueError(f"{where}: expected y of shape {lead + (self.output_size,)}, got {y.shape}")
        return y.astype(dtype, copy=False)

    def loss(self, raw: np.ndarray, y: np.ndarray, mask) -> tuple[float, np.ndarray, int]:
        """Loss, d(loss)/d(raw) and the count N the mean is over.

        Shapes:
            raw (..., size), y from :meth:`target`, mask (...) bool or None
            -> (loss, draw (..., size), count)
        """
        if self.classes:
            loss, d = _losses.softmax_cross_entropy(raw, y, mask=mask, ignore_index=self.ignore_index,
                                                    weight=self.class_weights)
            valid = np.ones(y.shape, dtype=bool) if mask is None else np.broadcast_to(mask, y.shape)
            if self.ignore_index is not None:
                valid = valid & (y != self.ignore_index)
            if self.class_weights is not None:   # the weighted mean divides by Σ w_y, not count
                self.last_weight = float(self.class_weights[y[valid]].sum())
            return loss, d, int(np.count_nonzero(valid))
        positions = raw.size // self.size if mask is None else int(np.count_nonzero(mask))
        if self.loss_name == "quantile":
            pred = self.shape_output(raw)
            loss, d = _losses.quantile_loss(pred, y, self.quantiles, mask=mask)
            return loss, d.reshape(raw.shape), positions * self.size
        if self.loss_name == "mse":
            loss, d = _losses.mse(raw, y, mask=mask)
        elif self.loss_name == "mae":
            loss, d = _losses.mae(raw, y, mask=mask)
        else:
            loss, d = _losses.huber(raw, y, delta=self.huber_delta, mask=mask)
        return loss, d, positions * self.size


# -- the input end ---------------------------------------------------------------------

class InputEncoder:
    """Int ids through an Embedding, or float features cast to the model's dtype.

    Exactly one of ``vocab_size`` (with ``embedding_dim``) and ``input_size``.
    ``size`` is the recurrent layer's input size.
    """

    def __init__(self, owner: Module, where: str, vocab_size, embedding_dim, input_size, dtype, seed,
                 name: str = "embedding"):
        if (vocab_size is None) == (input_size is None):
            raise ValueError(f"{where}: give exactly one of vocab_size (int ids through an embedding) "
                             f"and input_size (float features), got vocab_size={vocab_size!r}, "
                             f"input_size={input_size!r}")
        self.where = where
        self.dtype = dtype
        self.embedding = None
        if vocab_size is not None:
            self.vocab_size = check_positive_int(vocab_size, "vocab_size", where)
            embedding_dim = check_positive_int(32 if embedding_dim is None else embedding_dim,
                                               "embedding_dim", where)
            self.embedding = owner.add(name, Embedding(self.vocab_size, embedding_dim, dtype, seed))
            self.size = embedding_dim
            self.input_size = None
        else:
            if embedding_dim is not None:
                raise ValueError(f"{where}: embedding_dim applies to int inputs (vocab_size) only")
            self.input_size = self.size = check_positive_int(input_size, "input_size", where)
            self.vocab_size = None
        self.embedding_dim = embedding_dim

    @property
    def ints(self) -> bool:
        return self.embedding is not None

    def check(self, x, name: str, lead: str, ndim_ids: int) -> np.ndarray:
        """Validate ``x``: ids with ``ndim_ids`` dims in [0, vocab_size), or float features
        with one more (the last of size input_size). ``lead`` names the leading dims, e.g. "T, B".
        """
        where = self.where
        if self.ints:
            x = int_array(x, name, where, ndim_ids, f"({lead}) of ids")
            if x.size and (x.min() < 0 or x.max() >= self.vocab_size):
                raise ValueError(f"{where}: {name} ids must lie in [0, vocab_size={self.vocab_size}), "
                                 f"got min {x.min()} and max {x.max()}")
            return x
        return float_array(x, name, where, ndim_ids + 1, f"({lead}, {self.input_size})", self.dtype,
                           last=self.input_size)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Shapes: ids (...) or features (..., F)  ->  (..., size)"""
        return self.embedding.forward(x) if self.ints else x

    def backward(self, dx: np.ndarray) -> None:
        if self.ints:
            self.embedding.backward(dx)


# -- the base class ----------------------------------------------------------------------

class Model(Module):
    """A Module with ``config()`` and the loss/backward contract.

    Subclasses call ``self._remember(locals())`` first thing in ``__init__`` so
    ``config()`` can return exactly the constructor's arguments.
    """

    def _remember(self, args: dict) -> None:
        self._config = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        self._pending = None

    def config(self) -> dict:
        """The constructor arguments plus ``"model"``: ``build(model.config())`` rebuilds it."""
        out = {"model": type(self).__name__}
        for k, v in self._config.items():
            out[k] = _jsonable(v)
        return out

    @property
    def loss_weight(self) -> float | None:
        """What the mean of the last ``loss()`` divides by when that is not its ``count``
        (class weights: Σ w_y over the valid targets), else None. Data-parallel training
        weights each rank's gradient by it (by ``count`` when None)."""
        head = getattr(self, "out", None)
        return None if head is None else head.last_weight

    def _cache_for_backward(self, value) -> None:
        self._pending = value if self.training else None

    def _take_pending(self, where: str):
        if self._pending is None:
            raise RuntimeError(f"{where}: backward() needs a loss() call in training mode before it "
                               f"(call model.train() and loss(batch) first)")
        pending, self._pending = self._pending, None
        return pending


def _jsonable(v):
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return str(np.dtype(v))
    if isinstance(v, (list, tuple)):
        return [_jsonable(a) for a in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def model_dtype(dtype, where: str):
    return check_dtype(dtype, where)
