r"""Many-to-one (classify or regress a whole sequence) and one-to-one models.

Many-to-one: the recurrent states h_1..h_T (top layer, [h→ ; h←] when bidirectional)
are pooled into one vector p per sequence, then a Linear head scores it:

    pooling="last"       p = h→_{len}               (the last valid step)
                         p = [h→_{len} ; h←_1]       (bidirectional: the reverse direction
                                                      has read the whole sequence at t = 1)
    pooling="mean"       p = (1/len) Σ_{t ≤ len} h_t
    pooling="attention"  p = Σ_t a_t h_t,  a = softmax_{t ≤ len}(v · tanh(W h_t + b))
                         (see rnnkit.models.attention for the backward)
    pooling="meanmax"    p = [(1/len) Σ_{t ≤ len} h_t ; max_{t ≤ len} h_t]   (2D numbers;
                         the max per unit finds a pattern wherever it occurs)
    z = W_hy dropout(p) + b_y,   L = (1/N) Σ_b ℓ(z_b, y_b)
    (SequenceClassifier with class_weights w: L = Σ_b w_{y_b} ℓ_b / Σ_b w_{y_b})

Backward of the pooling (dp = ∂L/∂p):
    last       dh_{len, b} = dp_b (forward half),  dh_{1, b} = dp_b (reverse half), 0 elsewhere
    mean       dh_{t, b} = m_{t, b} dp_b / len_b
    meanmax    the mean half as mean; the max half goes to the step that held each unit's
               maximum: dh_{t*_{b,d}, b, d} += dp_{b, D + d},  t*_{b,d} = argmax_{t ≤ len} h_{t,b,d}
    attention  AdditiveAttention.backward

Position channels (``positions`` = P > 0, many-to-one): each step's input is its
embedding (or features) followed by P numbers that say where the step lies in its own
sequence, u = t / (len − 1) ∈ [0, 1] (t = 0 … len − 1; u = 0 when len = 1):

    pos_t = [2u − 1, cos(π u), cos(2π u), …, cos((P − 1) π u)]

a cosine basis of the relative position, for aligned windows (a DNA window around a
site, a fixed-length protein segment) where what a symbol means depends on where it is.
They are constants: the backward passes the recurrent layer's input gradient of the
first ``size`` columns to the embedding and drops the rest.

One-to-one: the same recurrent layer over a single step (T = 1), a feed-forward
baseline: z = W_hy dropout(h_1(x)) + b_y, with h_1 = φ(W_ih x + b_ih + W_hh h_0 + b_hh).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice, check_flag, check_lengths, check_positive_int, check_prob
from rnnkit.layers import Dropout, Linear, Recurrent
from rnnkit.losses import softmax
from rnnkit.models.attention import AdditiveAttention
from rnnkit.models.base import (InputEncoder, Model, OutputHead, check_carry_at, check_state, child_seeds,
                                copy_state, eval_mode, get_key, model_dtype, parse_cell, register_model,
                                state_after, time_mask)

POOLINGS = ("last", "mean", "attention", "meanmax")


def position_features(T: int, lengths, P: int, dtype) -> np.ndarray:
    """The P position channels of the module docstring for every step of a padded batch.

    Shapes:
        T, lengths (B,) -> (T, B, P), or None (every sequence T long) -> (T, 1, P); padded steps
        (t ≥ len) get u clipped to 1 (the recurrent layer never reads them)
    """
    lengths = np.full(1, T) if lengths is None else np.asarray(lengths)
    t = np.arange(T, dtype=np.float64)[:, None]
    u = np.clip(t / np.maximum(lengths[None, :] - 1, 1), 0.0, 1.0)           # (T, B)
    cols = [2.0 * u - 1.0] + [np.cos(np.pi * j * u) for j in range(1, P)]
    return np.stack(cols[:P], axis=-1).astype(dtype)


class _ManyToOne(Model):
    """The shared body of SequenceClassifier and SequenceRegressor."""

    #: the axis of each batch key that indexes the batch's items (data-parallel shards)
    batch_axes = {"x": 1, "lengths": 0, "y": 0}

    def _setup(self, cell, hidden_size, num_layers, vocab_size, embedding_dim, input_size, num_classes,
               output_size, loss, huber_delta, quantiles, pooling, attention_size, bidirectional,
               dropout, init, forget_bias, dtype, seed, class_weights=None, positions=0):
        where = self._where = type(self).__name__
        self.dtype = model_dtype(dtype, where)
        rnn_cell, nonlinearity = parse_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dropout = check_prob(dropout, "dropout", where)
        self.pooling = check_choice(pooling, "pooling", POOLINGS, where)
        seeds = child_seeds(seed, 5, where)
        self.inp = InputEncoder(self, where, vocab_size, embedding_dim, input_size, self.dtype, seeds[0])
        self.positions = check_positive_int(positions, "positions", where, minimum=0)
        self.rnn = self.add("rnn", Recurrent(rnn_cell, self.inp.size + self.positions, self.hidden_size, num_layers,
                                             nonlinearity=nonlinearity, dropout=self.dropout,
                                             bidirectional=self.bidirectional, dtype=self.dtype,
                                             seed=seeds[1], init=init, forget_bias=forget_bias))
        D = (2 if self.bidirectional else 1) * self.hidden_size
        self.attention = None
        P = 2 * D if self.pooling == "meanmax" else D
        if self.pooling == "attention":
            A = check_positive_int(D if attention_size is None else attention_size, "attention_size", where)
            self.attention = self.add("attention", AdditiveAttention(D, A, self.dtype, seeds[2]))
        elif attention_size is not None:
            raise ValueError(f"{where}: attention_size applies to pooling='attention' only")
        self.drop = self.add("drop", Dropout(self.dropout, seed=seeds[3]))
        self.out = OutputHead(where, num_classes, output_size, loss, huber_delta, quantiles,
                              class_weights=class_weights)
        self.head = self.add("head", Linear(P, self.out.size, dtype=self.dtype, seed=seeds[4]))

    # -- the pooled forward --------------------------------------------------------------
    def _encode(self, x, lengths, state, carry_at, where):
        """Inputs -> pooled vectors; returns (pooled (B, D), carried state, pooling cache)."""
        T, B = x.shape[:2]
        h0 = self._initial_state(state, B, where)
        k = check_carry_at(carry_at, T, where)
        e = self.inp.forward(x)
        if self.positions:
            pos = position_features(T, lengths, self.positions, e.dtype)
            e = np.concatenate([e, np.broadcast_to(pos, (T, B, self.positions))], axis=-1)
        carried = None
        if k is not None and not self.bidirectional:
            carried = state_after(self.rnn, e, h0, lengths, k)
        h, h_n = self.rnn.forward(e, h0, lengths)                     # (T, B, D)
        last = (np.full(B, T - 1) if lengths is None else lengths - 1)
        H = self.hidden_size
        extra = None          # the attention weights, or the argmax steps of meanmax
        if self.pooling == "last":
            pooled = h[last, np.arange(B)]                             # (B, D)
            if self.bidirectional:
                pooled = np.concatenate([pooled[:, :H], h[0, :, H:]], axis=1)
        elif self.pooling in ("mean", "meanmax"):
            mask = time_mask(T, B, lengths, None, where)
            n = np.full(B, T) if lengths is None else lengths
            hm = h if mask is None else h * mask[:, :, None]
            pooled = hm.sum(axis=0) / n[:, None].astype(self.dtype)
            if self.pooling == "meanmax":
                hx = h if mask is None else np.where(mask[:, :, None], h, -np.inf)
                extra = np.argmax(hx, axis=0)                              # (B, D): t* of each unit
                pooled = np.concatenate([pooled, np.take_along_axis(h, extra[None], axis=0)[0]], axis=1)
        else:
            pooled, extra = self.attention.forward(h, time_mask(T, B, lengths, None, where))
        if self.bidirectional:
            new_state = None
        else:
            new_state = carried if k is not None else copy_state(h_n)
        return pooled, new_state, (h.shape, last, lengths, extra)

    def _pool_backward(self, dpooled, cache):
        shape, last, lengths, _ = cache
        T, B, _ = shape
        H = self.hidden_size
        if self.pooling == "last":
            dh = np.zeros(shape, dtype=self.dtype)
            dh[last, np.arange(B), :H] = dpooled[:, :H]
            if self.bidirectional:
                dh[0, :, H:] += dpooled[:, H:]
        elif self.pooling in ("mean", "meanmax"):
            D = shape[2]
            n = np.full(B, T) if lengths is None else lengths
            dh = np.broadcast_to(dpooled[:, :D] / n[:, None].astype(self.dtype), shape).copy()
            if lengths is not None:
                dh *= (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
            if self.pooling == "meanmax":
                argmax = cache[3]                                               # (B, D)
                dh[argmax, np.arange(B)[:, None], np.arange(D)[None, :]] += dpooled[:, D:]
        else:
            dh = self.attention.backward(dpooled)
        return dh

    def _inputs(self, batch_or_x, lengths, where):
        x = self.inp.check(batch_or_x, "x", "T, B", 2)
        T, B = x.shape[:2]
        return x, check_lengths(lengths, T, B, where)

    # -- contract ------------------------------------------------------------------------
    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Mean loss over the batch's sequences: ``(loss, count, state)``.

        ``count`` is B for classification (B·O for regression, B·O·Q with quantiles);
        ``state`` the recurrent state after ``carry_at`` steps (None if bidirectional).
        """
        where = f"{self._where}.loss"
        x, lengths = self._inputs(get_key(batch, "x", where), batch.get("lengths"), where)
        B = x.shape[1]
        y = self.out.target(get_key(batch, "y", where), (B,), self.dtype)
        pooled, new_state, cache = self._encode(x, lengths, state, carry_at, where)
        raw = self.head.forward(self.drop.forward(pooled))
        loss, draw, count = self.out.loss(raw, y, None)
        self._cache_for_backward((draw, cache))
        return loss, count, new_state

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw, cache = self._take_pending(f"{self._where}.backward")
        dpooled = self.drop.backward(self.head.backward(draw))
        if self.pooling == "last" and not self.bidirectional:
            # p = the top layer's h at each sequence's last step, which is its h_n: the
            # gradient enters as ∂L/∂h_n, with no (T, B, H) array of zeros for ∂L/∂y
            # (0.6 ms of a 12 ms minGRU step at T=1000, B=32, H=64, and its reading)
            de, _ = self.rnn.backward(None, self._last_state_grad(dpooled))
        else:
            de, _ = self.rnn.backward(self._pool_backward(dpooled, cache))
        self.inp.backward(de[..., :self.inp.size] if self.positions else de)

    def _last_state_grad(self, dpooled):
        """∂L/∂h_n of the recurrent layer when only the top layer's h_n is pooled
        (unidirectional ``last``): dpooled in the top layer's row, 0 in the others; for
        the LSTM (∂L/∂h_n, None), c_n not being used.

        Shapes:
            dpooled (B, H) -> (L, B, H)
        """
        dh_n = np.zeros((self.rnn.num_layers,) + dpooled.shape, dtype=self.dtype)
        dh_n[-1] = dpooled
        return (dh_n, None) if self.rnn.cell == "lstm" else dh_n

    # -- inference -----------------------------------------------------------------------
    def _raw(self, x, lengths, where):
        x, lengths = self._inputs(x, lengths, where)
        with eval_mode(self):
            pooled, _, cache = self._encode(x, lengths, None, None, where)
            raw = self.head.forward(pooled)
        return raw, cache[3]

    def attention_weights(self, x, lengths=None) -> np.ndarray:
        """The attention weights a_t of each sequence (pooling="attention" only).

        Shapes:
            x (T, B) or (T, B, F), lengths (B,) -> (T, B), each column sums to 1 over valid steps
        """
        where = f"{self._where}.attention_weights"
        if self.attention is None:
            raise ValueError(f"{where}: the model pools with {self.pooling!r}, not 'attention'")
        return self._raw(x, lengths, where)[1]

    def _initial_state(self, state, B, where):
        if state is not None and self.bidirectional:
            raise ValueError(f"{where}: a bidirectional model takes no initial state; pass state=None")
        return check_state(state, self.rnn, B, where)


@register_model
class SequenceClassifier(_ManyToOne):
    """Classify a whole sequence (many-to-one): recurrent layer, pooling, Linear, softmax.

    Args:
        num_classes: C >= 2.
        cell, hidden_size, num_layers, bidirectional, dropout, init, forget_bias: the
            recurrent layer ("rnn", "rnn-relu", "lstm", "gru").
        vocab_size + embedding_dim (int ids) or input_size (float features).
        pooling: "last" (last valid state; with bidirectional also the reverse state at
            t = 1), "mean" over the valid steps, or "attention" (``attention_size``,
            default the pooled size).
        dtype, seed.
        class_weights: None, or C positive numbers: the loss becomes the class-weighted
            mean Σ_b w_{y_b} ℓ_b / Σ_b w_{y_b} (a rare class counts as much as a common
            one with w_c ∝ 1/n_c); ``count`` stays B. Stored in ``config()``.

    Batch keys: "x" (T, B) ids or (T, B, F) floats, optional "lengths" (B,), "y" int (B,).
    """

    def __init__(self, num_classes: int = 2, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 vocab_size: int | None = None, embedding_dim: int | None = None,
                 input_size: int | None = None, pooling: str = "last", attention_size: int | None = None,
                 bidirectional: bool = False, dropout: float = 0.0, init: str = "default",
                 forget_bias: float | None = None, dtype="float32", seed: int | None = None,
                 class_weights=None, positions: int = 0):
        super().__init__()
        self._remember(locals())
        self._setup(cell, hidden_size, num_layers, vocab_size, embedding_dim, input_size, num_classes,
                    None, None, 1.0, None, pooling, attention_size, bidirectional, dropout, init,
                    forget_bias, dtype, seed, class_weights, positions)
        # (C,) float64 or None; the config keeps plain floats so it stays JSON-able
        self.class_weights = self.out.class_weights
        self._config["class_weights"] = (None if self.class_weights is None
                                         else [float(v) for v in self.class_weights])

    def predict_logits(self, x, lengths=None) -> np.ndarray:
        """Shapes: x (T, B) or (T, B, F), lengths (B,) -> logits (B, C)"""
        return self._raw(x, lengths, f"{self._where}.predict_logits")[0]

    def predict_proba(self, x, lengths=None) -> np.ndarray:
        """Shapes: x (T, B) or (T, B, F), lengths (B,) -> probabilities (B, C), rows sum to 1"""
        return softmax(self.predict_logits(x, lengths))

    def predict(self, x, lengths=None) -> np.ndarray:
        """Shapes: x (T, B) or (T, B, F), lengths (B,) -> class ids int (B,)"""
        return np.argmax(self.predict_logits(x, lengths), axis=-1)


@register_model
class SequenceRegressor(_ManyToOne):
    """Regress a whole sequence to ``output_size`` numbers (many-to-one).

    Args as :class:`SequenceClassifier`, with ``output_size`` (O) and ``loss`` one of
    "mse", "mae", "huber" (``huber_delta``), "quantile" (``quantiles``: then the
    prediction is (B, O, Q)).

    Batch keys: "x" (T, B) ids or (T, B, F) floats, optional "lengths" (B,),
    "y" float (B, O) (or (B,) when O = 1).
    """

    def __init__(self, output_size: int = 1, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 vocab_size: int | None = None, embedding_dim: int | None = None,
                 input_size: int | None = None, loss: str = "mse", huber_delta: float = 1.0, quantiles=None,
                 pooling: str = "last", attention_size: int | None = None, bidirectional: bool = False,
                 dropout: float = 0.0, init: str = "default", forget_bias: float | None = None,
                 dtype="float32", seed: int | None = None):
        super().__init__()
        self._remember(locals())
        self._setup(cell, hidden_size, num_layers, vocab_size, embedding_dim, input_size, None,
                    output_size, loss, huber_delta, quantiles, pooling, attention_size, bidirectional,
                    dropout, init, forget_bias, dtype, seed)

    def predict(self, x, lengths=None) -> np.ndarray:
        """Shapes: x (T, B) or (T, B, F), lengths (B,) -> (B, O), or (B, O, Q) with quantiles"""
        return self.out.shape_output(self._raw(x, lengths, f"{self._where}.predict")[0])


@register_model
class OneToOne(Model):
    """One input, one output: the recurrent layer over a single step (T = 1).

    A feed-forward baseline built from the same parts (so it compares like with like):
    z = W_hy dropout(h_1) + b_y with h_1 the stack's state after one step from h_0
    (zeros, or ``state``).

    Args: cell, hidden_size, num_layers, dropout, init, forget_bias; vocab_size +
    embedding_dim or input_size; num_classes or output_size (+ loss, huber_delta,
    quantiles); dtype, seed.

    Batch keys: "x" int (B,) ids or float (B, F); "y" int (B,) or float (B, O).
    """

    #: the axis of each batch key that indexes the batch's items (data-parallel shards)
    batch_axes = {"x": 0, "y": 0}

    def __init__(self, cell: str = "rnn", hidden_size: int = 64, num_layers: int = 1,
                 vocab_size: int | None = None, embedding_dim: int | None = None,
                 input_size: int | None = None, num_classes: int | None = None,
                 output_size: int | None = None, loss: str | None = None, huber_delta: float = 1.0,
                 quantiles=None, dropout: float = 0.0, init: str = "default",
                 forget_bias: float | None = None, dtype="float32", seed: int | None = None):
        super().__init__()
        self._remember(locals())
        where = self._where = type(self).__name__
        self.dtype = model_dtype(dtype, where)
        rnn_cell, nonlinearity = parse_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.dropout = check_prob(dropout, "dropout", where)
        seeds = child_seeds(seed, 4, where)
        self.inp = InputEncoder(self, where, vocab_size, embedding_dim, input_size, self.dtype, seeds[0])
        self.rnn = self.add("rnn", Recurrent(rnn_cell, self.inp.size, self.hidden_size, num_layers,
                                             nonlinearity=nonlinearity, dropout=self.dropout,
                                             dtype=self.dtype, seed=seeds[1], init=init,
                                             forget_bias=forget_bias))
        self.drop = self.add("drop", Dropout(self.dropout, seed=seeds[2]))
        self.out = OutputHead(where, num_classes, output_size, loss, huber_delta, quantiles)
        self.head = self.add("head", Linear(self.hidden_size, self.out.size, dtype=self.dtype, seed=seeds[3]))

    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Mean loss over the B items: ``(loss, count, state after the step)``."""
        where = f"{self._where}.loss"
        x = self.inp.check(get_key(batch, "x", where), "x", "B", 1)
        B = x.shape[0]
        y = self.out.target(get_key(batch, "y", where), (B,), self.dtype)
        check_carry_at(carry_at, 1, where)
        h0 = check_state(state, self.rnn, B, where)
        h, h_n = self.rnn.forward(self.inp.forward(x[None]), h0)      # (1, B, H)
        raw = self.head.forward(self.drop.forward(h[0]))
        loss, draw, count = self.out.loss(raw, y, None)
        self._cache_for_backward(draw)
        return loss, count, copy_state(h_n)

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw = self._take_pending(f"{self._where}.backward")
        dh = self.drop.backward(self.head.backward(draw))
        de, _ = self.rnn.backward(dh[None])
        self.inp.backward(de)

    def predict(self, x, state=None) -> np.ndarray:
        """Logits (classification) or predictions (regression), eval mode.

        Shapes:
            x (B,) ids or (B, F)  ->  (B, C) or (B, O[, Q])
        """
        where = f"{self._where}.predict"
        x = self.inp.check(x, "x", "B", 1)
        h0 = check_state(state, self.rnn, x.shape[0], where)
        with eval_mode(self):
            h, _ = self.rnn.forward(self.inp.forward(x[None]), h0)
            raw = self.head.forward(h[0])
        return self.out.shape_output(raw)
