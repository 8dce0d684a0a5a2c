r"""One-to-many: generate a sequence from one condition vector.

The condition c (a class id as a one-hot vector, or a feature vector) sets the
initial state and is fed at every step next to the previous output:

    h_0^{(l)} = tanh(W_b c + b_b)^{(l)}      one (H,) slice per layer l; c_0 = 0 for LSTM   (1)
    x_t = [e(y_{t−1}) ; c],   e(y_0) = the start symbol                                     (2)
          (ids: a learned embedding row; regression: y_0 = 0 and e is the identity)
    h_t = Recurrent(x_1..x_t; h_0),   z_t = W_hy dropout(h_t) + b_y                         (3)

Training uses teacher forcing: y_{t−1} in (2) is the true previous target, so a
whole sequence is one recurrent pass. Generation feeds back the model's own
previous output (a sampled or arg-max id, or the regression prediction).

Backward: BPTT gives dx_t and dh_0. The embedding rows get dx_t[:E]; the condition
part of dx_t needs no gradient (c is data). Through (1):
    dz = dh_0 ⊙ (1 − h_0²),   dW_b = Σ_b dz cᵀ,   db_b = Σ_b dz
(the LSTM's c_0 is the constant 0, so dc_0 is dropped).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_lengths, check_number, check_positive_int, check_prob
from rnnkit.layers import Dropout, Embedding, Linear, Recurrent
from rnnkit.losses import softmax
from rnnkit.models.base import (Model, OutputHead, check_carry_at, child_seeds, copy_state, eval_mode,
                                float_array, get_key, int_array, model_dtype, parse_cell, register_model,
                                state_after, time_mask)


@register_model
class OneToMany(Model):
    """Generate a sequence from a condition (one-to-many), trained with teacher forcing.

    Args:
        cond_classes: the condition is a class id in [0, cond_classes) (one-hot inside), or
        cond_size: the condition is a float vector of that size. Exactly one.
        num_classes: the outputs are ids in [0, num_classes) (softmax cross-entropy;
            ``embedding_dim`` for the fed-back ids, default 32), or
        output_size: the outputs are float vectors (loss "mse", "mae" or "huber").
        cell, hidden_size, num_layers, dropout, init, forget_bias: the recurrent layer
            (unidirectional: it generates step by step).
        dtype, seed.

    Batch keys: "cond" int (B,) or float (B, Cc); "y" int (T, B) or float (T, B, O);
    optional "lengths" (B,) and "mask" (T, B).

    Every sequence starts from its condition, so ``loss`` takes no carried state
    (``state`` must be None); it returns the state after ``carry_at`` steps.
    """

    #: the axis of each batch key that indexes the batch's items (data-parallel shards)
    batch_axes = {"cond": 0, "y": 1, "lengths": 0, "mask": 1}

    def __init__(self, cond_classes: int | None = None, cond_size: int | None = None,
                 num_classes: int | None = None, output_size: int | None = None, cell: str = "lstm",
                 hidden_size: int = 64, num_layers: int = 1, embedding_dim: int | None = None,
                 loss: str | None = None, huber_delta: float = 1.0, dropout: float = 0.0,
                 init: str = "default", forget_bias: float | None = None, dtype="float32",
                 seed: int | None = None):
        super().__init__()
        self._remember(locals())
        where = self._where = type(self).__name__
        self.dtype = model_dtype(dtype, where)
        rnn_cell, nonlinearity = parse_cell(cell, where)
        if (cond_classes is None) == (cond_size is None):
            raise ValueError(f"{where}: give exactly one of cond_classes (class-id conditions) and "
                             f"cond_size (feature-vector conditions), got cond_classes={cond_classes!r}, "
                             f"cond_size={cond_size!r}")
        self.cond_classes = None if cond_classes is None else check_positive_int(cond_classes, "cond_classes", where)
        self.cond_dim = self.cond_classes or check_positive_int(cond_size, "cond_size", where)
        self.hidden_size = H = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = L = check_positive_int(num_layers, "num_layers", where)
        self.dropout = check_prob(dropout, "dropout", where)
        self.out = OutputHead(where, num_classes, output_size, loss, huber_delta,
                              allowed=("mse", "mae", "huber"))
        seeds = child_seeds(seed, 6, where)
        self.bridge = self.add("bridge", Linear(self.cond_dim, L * H, dtype=self.dtype, seed=seeds[0]))
        if self.out.classes:
            E = check_positive_int(32 if embedding_dim is None else embedding_dim, "embedding_dim", where)
            # row num_classes is the start symbol, never an output
            self.embedding = self.add("embedding", Embedding(self.out.num_classes + 1, E, self.dtype, seeds[1]))
            self.start_id = self.out.num_classes
        else:
            if embedding_dim is not None:
                raise ValueError(f"{where}: embedding_dim applies to id outputs (num_classes) only")
            E = self.out.output_size
            self.embedding = None
        self.prev_size = E
        self.rnn = self.add("rnn", Recurrent(rnn_cell, E + self.cond_dim, H, L, nonlinearity=nonlinearity,
                                             dropout=self.dropout, dtype=self.dtype, seed=seeds[2], init=init,
                                             forget_bias=forget_bias))
        self.drop = self.add("drop", Dropout(self.dropout, seed=seeds[3]))
        self.head = self.add("head", Linear(H, self.out.size, dtype=self.dtype, seed=seeds[4]))

    # -- pieces ------------------------------------------------------------------------
    def _cond(self, cond, where: str) -> np.ndarray:
        """The condition as a float (B, Cc) vector."""
        if self.cond_classes is not None:
            ids = int_array(cond, "cond", where, 1, "(B,) of class ids")
            if ids.size and (ids.min() < 0 or ids.max() >= self.cond_classes):
                raise ValueError(f"{where}: cond ids must lie in [0, cond_classes={self.cond_classes}), "
                                 f"got min {ids.min()} and max {ids.max()}")
            return np.eye(self.cond_classes, dtype=self.dtype)[ids]
        return float_array(cond, "cond", where, 2, f"(B, {self.cond_dim})", self.dtype, last=self.cond_dim)

    def _state0(self, c: np.ndarray):
        """Equation (1). Returns (state, h0 (L, B, H) for the backward)."""
        B = c.shape[0]
        z = self.bridge.forward(c)                                              # (B, L*H)
        h0 = np.ascontiguousarray(np.tanh(z).reshape(B, self.num_layers, self.hidden_size).transpose(1, 0, 2))
        if self.rnn.cell == "lstm":
            return (h0, np.zeros_like(h0)), h0
        return h0, h0

    def _inputs(self, prev_repr: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Equation (2): [e(y_{t−1}) ; c] for every step.  (T, B, E), (B, Cc) -> (T, B, E + Cc)"""
        T = prev_repr.shape[0]
        return np.concatenate([prev_repr, np.broadcast_to(c, (T,) + c.shape)], axis=2)

    # -- training ----------------------------------------------------------------------
    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Teacher-forced loss over the valid steps: ``(loss, count, state)``.

        Shapes:
            batch["cond"] (B,) or (B, Cc), batch["y"] (T, B) or (T, B, O)
        """
        where = f"{self._where}.loss"
        if state is not None:
            raise ValueError(f"{where}: every sequence starts from its condition; a carried state "
                             f"cannot be passed in (state must be None)")
        c = self._cond(get_key(batch, "cond", where), where)
        B = c.shape[0]
        y_raw = np.asarray(get_key(batch, "y", where))
        if y_raw.ndim < 2:
            raise ValueError(f"{where}: expected y with time first, (T, B) or (T, B, O), got shape {y_raw.shape}")
        T = y_raw.shape[0]
        y = self.out.target(y_raw, (T, B), self.dtype)
        lengths = check_lengths(batch.get("lengths"), T, B, where)
        mask = time_mask(T, B, lengths, batch.get("mask"), where)
        k = check_carry_at(carry_at, T, where)

        # the previous outputs; past a sequence's end they feed steps that are never
        # scored, so padding there (any id, NaN) is replaced by the start symbol / 0
        in_seq = None if lengths is None else (np.arange(T)[:, None] < lengths[None, :])
        if self.out.classes:
            prev = np.concatenate([np.full((1, B), self.start_id), y[:-1]], axis=0)
            if in_seq is not None:
                prev[1:] = np.where(in_seq[:-1], prev[1:], self.start_id)
            prev_repr = self.embedding.forward(prev)                            # (T, B, E)
        else:
            prev_repr = np.concatenate([np.zeros((1, B, self.prev_size), self.dtype), y[:-1]], axis=0)
            if in_seq is not None:
                prev_repr[1:] = np.where(in_seq[:-1, :, None], prev_repr[1:], 0)
            if not np.isfinite(prev_repr).all():
                raise ValueError(f"{where}: y contains NaN or inf inside a sequence (it is fed back as input)")
        x = self._inputs(prev_repr, c)
        state0, h0 = self._state0(c)
        carried = state_after(self.rnn, x, state0, lengths, k) if k is not None else None
        h, h_n = self.rnn.forward(x, state0, lengths)
        raw = self.head.forward(self.drop.forward(h))
        loss, draw, count = self.out.loss(raw, y, mask)
        self._cache_for_backward((draw, h0))
        return loss, count, carried if k is not None else copy_state(h_n)

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw, h0 = self._take_pending(f"{self._where}.backward")
        dh = self.drop.backward(self.head.backward(draw))
        dx, dstate0 = self.rnn.backward(dh)
        if self.embedding is not None:
            self.embedding.backward(np.ascontiguousarray(dx[:, :, :self.prev_size]))
        dh0 = dstate0[0] if self.rnn.cell == "lstm" else dstate0               # (L, B, H)
        B = h0.shape[1]
        dz = (dh0 * (1.0 - h0 * h0)).transpose(1, 0, 2).reshape(B, -1)          # through tanh, (B, L*H)
        self.bridge.backward(np.ascontiguousarray(dz))

    # -- generation --------------------------------------------------------------------
    def initial_state(self, cond):
        """The state every sequence starts from, equation (1).

        Shapes:
            cond (B,) ids or (B, Cc) -> (L, B, H), or (h, c) for LSTM
        """
        c = self._cond(cond, f"{self._where}.initial_state")
        with eval_mode(self):
            return copy_state(self._state0(c)[0])

    def step(self, prev, cond, state):
        """One generation step from the previous output ``prev`` (None: the start symbol).

        Shapes:
            prev (B,) ids or (B, O) or None, cond (B,) or (B, Cc), state as initial_state
            -> (out (B, C) logits or (B, O) predictions, state)
        """
        where = f"{self._where}.step"
        c = self._cond(cond, where)
        B = c.shape[0]
        with eval_mode(self):
            if prev is None:
                repr_ = (self.embedding.forward(np.full(B, self.start_id)) if self.embedding is not None
                         else np.zeros((B, self.prev_size), self.dtype))
            elif self.embedding is not None:
                p = int_array(prev, "prev", where, 1, "(B,)")
                if p.size and (p.min() < 0 or p.max() >= self.out.num_classes):
                    raise ValueError(f"{where}: prev ids must lie in [0, {self.out.num_classes}), "
                                     f"got min {p.min()} and max {p.max()}")
                repr_ = self.embedding.forward(p)
            else:
                repr_ = float_array(prev, "prev", where, 2, f"(B, {self.prev_size})", self.dtype,
                                    last=self.prev_size)
            x = self._inputs(repr_[None], c)                                     # (1, B, E + Cc)
            h, h_n = self.rnn.forward(x, state)
            raw = self.head.forward(h[0])
        return raw, copy_state(h_n)

    def generate(self, cond, length: int, temperature: float = 0.0, seed: int | None = None) -> np.ndarray:
        """Generate ``length`` steps for each condition, feeding back each output.

        Ids: ``temperature`` 0 takes the arg-max (greedy), > 0 samples from
        softmax(z / temperature) with a Generator seeded by ``seed``. Regression
        feeds back the prediction (temperature must be 0).

        Shapes:
            cond (B,) or (B, Cc) -> ids int (length, B) or predictions (length, B, O)
        """
        where = f"{self._where}.generate"
        length = check_positive_int(length, "length", where)
        temperature = check_number(temperature, "temperature", where, 0.0)
        if not self.out.classes and temperature != 0:
            raise ValueError(f"{where}: regression outputs are fed back as predicted; temperature must be 0")
        rng = np.random.default_rng(seed)
        state = self.initial_state(cond)
        prev, outs = None, []
        for _ in range(length):
            raw, state = self.step(prev, cond, state)
            if not self.out.classes:
                prev = raw
            elif temperature == 0:
                prev = np.argmax(raw, axis=-1)
            else:
                p = softmax(raw.astype(np.float64) / temperature)
                cum = np.cumsum(p, axis=-1)
                u = rng.random((p.shape[0], 1)) * cum[:, -1:]
                prev = np.minimum((cum < u).sum(axis=-1), p.shape[-1] - 1)
            outs.append(prev)
        return np.stack(outs)
