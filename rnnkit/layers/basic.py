"""Parameter-owning layers: Linear, Embedding and Dropout (Recurrent: :mod:`rnnkit.layers.recurrent`).

Each layer follows :class:`rnnkit.module.Module`: ``forward`` caches what
``backward`` needs, ``backward`` returns the input gradient and *adds* the
parameter gradients into ``grads``. A ``backward`` with no ``forward`` before it
is a RuntimeError. Inputs must already have the layer's dtype: a mismatch is a
TypeError, never a silent cast.

Forward equations and the backward passes derived from them
(``d·`` is ∂L/∂·; sums run over every leading position n of the input):

Linear        y_n = W x_n + b
              dW += Σ_n dy_n x_nᵀ,   db += Σ_n dy_n,   dx_n = Wᵀ dy_n
Embedding     y_n = W[id_n]                      (row lookup)
              dW[i] += Σ_{n: id_n = i} dy_n      (np.add.at: repeated ids add up)
Dropout       y = x ⊙ m,  m_j = Bernoulli(1 − p) / (1 − p)   (inverted: E[y] = x)
              dx = dy ⊙ m;   in eval mode y = x and dx = dy
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit import init as _init
from rnnkit import limits as _limits
from rnnkit._checks import check_dtype, check_flag, check_float_array, check_positive_int, check_prob, check_shape
from rnnkit.module import Module


# -- shared checks ---------------------------------------------------------------------
def _check_input(x, name: str, dtype, where: str, ndim=None, dims: str = "", finite: bool = True):
    """A float array of the layer's dtype (a mismatch is a TypeError, not a cast)."""
    x = check_float_array(x, name, where, ndim=ndim, dims=dims, finite=finite)
    if x.dtype != dtype:
        raise TypeError(f"{where}: expected {name} of dtype {dtype} (the layer's dtype), got {x.dtype}; "
                        f"cast it with .astype(np.{dtype}) or build the layer with dtype=np.{x.dtype}")
    return x


def _no_forward(where: str) -> RuntimeError:
    return RuntimeError(f"{where}: backward called before forward; run forward first, "
                        f"outside rnnkit.no_grad() (backward uses the values forward cached)")


def _dropout_mask(rng: np.random.Generator, shape: tuple, p: float, dtype) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability p, else 1/(1 − p), in ``dtype``."""
    keep = rng.random(shape) >= p
    return (keep / (1.0 - p)).astype(dtype)


# -- Linear ----------------------------------------------------------------------------
_linear_products = None


def _fast_linear():
    """rnnkit.fast.linear, imported on first use (it loads the compiled kernels)."""
    global _linear_products
    if _linear_products is None:
        from rnnkit.fast import linear
        _linear_products = linear
    return _linear_products


class Linear(Module):
    """y = x Wᵀ + b on the last axis of an array of any rank >= 1.

    Initialised as PyTorch's nn.Linear: W and b ~ U(−1/√in, 1/√in).

    Shapes:
        x (..., in_features) -> y (..., out_features)
        weight (out_features, in_features), bias (out_features,)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, seed=None):
        super().__init__()
        where = "Linear"
        self.in_features = check_positive_int(in_features, "in_features", where)
        self.out_features = check_positive_int(out_features, "out_features", where)
        self.bias = check_flag(bias, "bias", where)
        self.dtype = check_dtype(dtype, where)
        _limits.check_parameters(self.out_features * (self.in_features + 1), self.dtype.itemsize,
                                 f"{where}: in_features={self.in_features}, out_features={self.out_features}")
        rng = _init.make_rng(seed, where)
        bound = 1.0 / math.sqrt(self.in_features)
        self.register("weight", _init.uniform(rng, (self.out_features, self.in_features), bound, self.dtype))
        if self.bias:
            self.register("bias", _init.uniform(rng, (self.out_features,), bound, self.dtype))
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the map; NaN or inf in x is a ValueError.

        Shapes:
            x (..., in_features) -> (..., out_features)
        """
        where = "Linear"
        x = _check_input(x, "x", self.dtype, where)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{where}: expected x of shape (..., {self.in_features}) "
                             f"(in_features last), got {x.shape}")
        self._x = x
        # one 2-D product: NumPy runs an (N, in) @ (in, out) as one BLAS call, a 3-D @ 2-D
        # as one call per leading index (2-3x slower for a decoder's (T, B, H) states);
        # rnnkit.fast.linear runs it on the recurrent loops' threads where it can
        y = _fast_linear().forward(x.reshape(-1, self.in_features), self._params["weight"],
                                   self._params["bias"] if self.bias else None)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Return dx and add dW, db into ``grads``.

        Shapes:
            dy (..., out_features) -> dx (..., in_features)
        """
        where = "Linear"
        if self._x is None:
            raise _no_forward(where)
        dy = _check_input(dy, "dy", self.dtype, where, finite=False)
        check_shape(dy, self._x.shape[:-1] + (self.out_features,), "dy", where)
        x2 = self._x.reshape(-1, self.in_features)      # (N, in)
        dy2 = dy.reshape(-1, self.out_features)         # (N, out)
        dx, dw, db = _fast_linear().backward(x2, dy2, self._params["weight"], self.bias)
        self._grads["weight"] += dw
        if self.bias:
            self._grads["bias"] += db
        return dx.reshape(dy.shape[:-1] + (self.in_features,))


# -- Embedding -------------------------------------------------------------------------
class Embedding(Module):
    """Integer ids -> rows of a (num_embeddings, embedding_dim) table.

    Initialised as PyTorch's nn.Embedding: every entry ~ N(0, 1).

    Shapes:
        ids (...) integers in [0, num_embeddings) -> (..., embedding_dim)
        weight (num_embeddings, embedding_dim)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32, seed=None):
        super().__init__()
        where = "Embedding"
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings", where)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim", where)
        self.dtype = check_dtype(dtype, where)
        _limits.check_parameters(self.num_embeddings * self.embedding_dim, 8, f"{where}: num_embeddings="
                                 f"{self.num_embeddings}, embedding_dim={self.embedding_dim}")
        rng = _init.make_rng(seed, where)
        self.register("weight", rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(self.dtype))
        self._ids = None

    def forward(self, ids) -> np.ndarray:
        """Look the ids up (a fresh array). Non-integer ids are a TypeError, ids out of
        range a ValueError.

        Shapes:
            ids (...) -> (..., embedding_dim)
        """
        where = "Embedding"
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{where}: expected ids to be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"{where}: ids must lie in [0, num_embeddings={self.num_embeddings}), "
                             f"got min {ids.min()} and max {ids.max()}")
        self._ids = ids
        return self._params["weight"][ids]

    def backward(self, dy: np.ndarray) -> None:
        """Add dy into the rows of ``grads['weight']`` that were looked up; return None
        (integer ids have no gradient).

        Shapes:
            dy (..., embedding_dim) with ids' leading shape
        """
        where = "Embedding"
        if self._ids is None:
            raise _no_forward(where)
        dy = _check_input(dy, "dy", self.dtype, where, finite=False)
        check_shape(dy, self._ids.shape + (self.embedding_dim,), "dy", where)
        # the rows of each id summed at once: sorted (stably, so each id's rows keep their
        # order), then one reduceat per run of equal ids; a fancy-index += of the unsorted rows
        # would keep only one update per repeated id, and np.add.at is 6x slower
        flat = self._ids.reshape(-1)
        if not flat.size:
            return None
        order = np.argsort(flat, kind="stable")
        ids = flat[order]
        starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
        self._grads["weight"][ids[starts]] += np.add.reduceat(dy.reshape(-1, self.embedding_dim)[order], starts,
                                                              axis=0)
        return None


# -- Dropout ---------------------------------------------------------------------------
class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014): in training each entry is zeroed with
    probability p and the survivors scaled by 1/(1 − p); in eval mode the identity.

    The masks come from a Generator seeded with ``seed``: the same seed and the same
    calls give the same masks. A NaN or inf in x is a ValueError.

    Shapes:
        x (...) -> y of x's shape
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        where = "Dropout"
        self.p = check_prob(p, "p", where)
        self._rng = _init.make_rng(seed, where)
        self._mask = None
        self._shape = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Shapes: x (...) -> (...)"""
        where = "Dropout"
        x = check_float_array(x, "x", where)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        self._mask = _dropout_mask(self._rng, x.shape, self.p, x.dtype)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dx = dy ⊙ m with the mask of the last forward (dy itself if none was drawn).

        Shapes:
            dy (...) of the last forward's shape -> dx (...)
        """
        where = "Dropout"
        if self._shape is None:
            raise _no_forward(where)
        dy = check_float_array(dy, "dy", where, finite=False)
        check_shape(dy, self._shape, "dy", where)
        return dy if self._mask is None else dy * self._mask
