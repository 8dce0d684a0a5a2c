r"""Many-to-many (synced): one output for every input step; also the language model.

    e_t = Embedding(x_t)  (int ids)   or   e_t = x_t  (float features)
    h_t = Recurrent(e_1..e_t)                      (L layers; [h→ ; h←] if bidirectional)
    z_t = W_hy dropout(h_t) + b_y                  (logits or regression outputs)
    L   = (1/N) Σ_{valid t, b} ℓ(z_t, y_t)         (N = count of valid items)

A language model is a tagger whose targets are the inputs shifted by one step
(y_t = x_{t+1}); :meth:`SequenceTagger.step` advances it one step at a time for
generation, carrying only the recurrent state (no caches over the sequence).

Backward runs the chain in reverse: dz from the loss, through the head
(dW_hy = Σ dz hᵀ, dh = W_hyᵀ dz), the dropout mask, the recurrent layer (BPTT)
and the embedding (rows of the looked-up ids).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_flag, check_lengths, check_positive_int, check_prob
from rnnkit.cells._common import trusted_lengths
from rnnkit.layers import Dropout, Linear, Recurrent
from rnnkit.models.base import (InputEncoder, Model, OutputHead, check_carry_at, check_state, child_seeds,
                                copy_state, eval_mode, get_key, model_dtype, parse_cell, register_model,
                                state_after, time_mask)


@register_model
class SequenceTagger(Model):
    """Tag every step of a sequence (many-to-many, synced); the character language model.

    Args:
        cell: "rnn", "rnn-relu", "lstm" or "gru".
        hidden_size, num_layers: H and the depth of the recurrent stack.
        vocab_size, embedding_dim: int inputs through an embedding (default dim 32), or
        input_size: float features per step. Exactly one of vocab_size / input_size.
        num_classes: softmax cross-entropy over that many classes, or
        output_size: regression outputs per step with ``loss`` "mse" (default), "mae",
            "huber" (``huber_delta``) or "quantile" (``quantiles``).
        ignore_index: a target id that is not scored (classification).
        bidirectional: add a reverse direction (not with :meth:`step` or carried states).
        dropout: inter-layer dropout of the stack and dropout before the head.
        init, forget_bias: the recurrent layer's initialisation (see rnnkit.init).
        dtype: "float32" or "float64"; seed: None or an int (the same seed, the same weights).

    Batch keys (time-major):
        "x": int (T, B) ids or float (T, B, F);  "y": int (T, B) or float (T, B, O)
        (for quantiles (T, B, O), one value per target dim);
        optional "lengths": int (B,) in [1, T];  optional "mask": bool (T, B) of scored steps.

    State: the recurrent layer's (L, B, H) array, or (h, c) for LSTM. A bidirectional
    tagger carries no state: ``state`` must be None and the returned state is None.
    """

    #: the axis of each batch key that indexes the batch's items (data-parallel shards)
    batch_axes = {"x": 1, "y": 1, "lengths": 0, "mask": 1}

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 vocab_size: int | None = None, embedding_dim: int | None = None,
                 input_size: int | None = None, num_classes: int | None = None,
                 output_size: int | None = None, loss: str | None = None, huber_delta: float = 1.0,
                 quantiles=None, ignore_index: int | None = None, bidirectional: bool = False,
                 dropout: float = 0.0, init: str = "default", forget_bias: float | None = None,
                 dtype="float32", seed: int | None = None):
        super().__init__()
        self._remember(locals())
        where = self._where = type(self).__name__
        self.dtype = model_dtype(dtype, where)
        rnn_cell, nonlinearity = parse_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dropout = check_prob(dropout, "dropout", where)
        seeds = child_seeds(seed, 4, where)
        self.inp = InputEncoder(self, where, vocab_size, embedding_dim, input_size, self.dtype, seeds[0])
        self.rnn = self.add("rnn", Recurrent(rnn_cell, self.inp.size, self.hidden_size, num_layers,
                                             nonlinearity=nonlinearity, dropout=self.dropout,
                                             bidirectional=self.bidirectional, dtype=self.dtype,
                                             seed=seeds[1], init=init, forget_bias=forget_bias))
        self.drop = self.add("drop", Dropout(self.dropout, seed=seeds[2]))
        self.out = OutputHead(where, num_classes, output_size, loss, huber_delta, quantiles, ignore_index)
        D = 2 if self.bidirectional else 1
        self.head = self.add("head", Linear(D * self.hidden_size, self.out.size, dtype=self.dtype,
                                            seed=seeds[3]))

    # -- training ----------------------------------------------------------------------
    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Forward over the batch and the mean loss over its valid steps.

        Returns ``(loss, count, state)``: ``count`` valid items (steps, or step·outputs
        for regression) and the recurrent state after ``carry_at`` steps (default: the
        last; a fresh copy), to start the next window of a stream with.

        Shapes:
            batch["x"] (T, B) or (T, B, F), batch["y"] (T, B) or (T, B, O)
        """
        where = f"{self._where}.loss"
        x = self.inp.check(get_key(batch, "x", where), "x", "T, B", 2)
        T, B = x.shape[:2]
        lengths = check_lengths(batch.get("lengths"), T, B, where)
        mask = time_mask(T, B, lengths, batch.get("mask"), where)
        y = self.out.target(get_key(batch, "y", where), (T, B), self.dtype)
        h0 = self._initial_state(state, B, where)
        k = check_carry_at(carry_at, T, where)

        e = self.inp.forward(x)                                      # (T, B, E)
        carried = None
        if k is not None and not self.bidirectional:
            carried = state_after(self.rnn, e, h0, lengths, k)      # before the caching pass
        h, h_n = self._run_rnn(e, h0, lengths)                      # (T, B, D*H)
        raw = self.head.forward(self.drop.forward(h))               # (T, B, C or O[*Q])
        loss, draw, count = self.out.loss(raw, y, mask)
        self._cache_for_backward(draw)
        if self.bidirectional:
            return loss, count, None
        return loss, count, carried if k is not None else copy_state(h_n)

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw = self._take_pending(f"{self._where}.backward")
        dh = self.drop.backward(self.head.backward(draw))
        de, _ = self.rnn.backward(dh)
        self.inp.backward(de)

    # -- inference ---------------------------------------------------------------------
    def predict(self, x, lengths=None, state=None):
        """Outputs for every step (eval mode: no dropout) and the final state.

        Outputs are logits for classification (apply softmax for probabilities) and
        predictions for regression ((..., O, Q) with quantiles).

        Shapes:
            x (T, B) ids or (T, B, F), lengths (B,)
            -> (out (T, B, C) or (T, B, O[, Q]), state (L, B, H) or (h, c); None if bidirectional)
        """
        where = f"{self._where}.predict"
        x = self.inp.check(x, "x", "T, B", 2)
        T, B = x.shape[:2]
        lengths = check_lengths(lengths, T, B, where)
        h0 = self._initial_state(state, B, where)
        with eval_mode(self):
            h, h_n = self._run_rnn(self.inp.forward(x), h0, lengths)
            raw = self.head.forward(h)
        return self.out.shape_output(raw), (None if self.bidirectional else copy_state(h_n))

    def step(self, x_t, state=None):
        """Advance one step from ``state`` (None: zeros): the generation path.

        Only the recurrent state is carried between calls, so generating N steps costs
        N single steps and no memory over the sequence. Runs in eval mode.

        Shapes:
            x_t (B,) ids or (B, F)  ->  (out (B, C) or (B, O[, Q]), state (L, B, H) or (h, c))
        """
        where = f"{self._where}.step"
        if self.bidirectional:
            raise ValueError(f"{where}: a bidirectional tagger cannot run step by step "
                             f"(its reverse direction needs the whole sequence); use predict")
        x_t = self.inp.check(x_t, "x_t", "B", 1)
        h0 = self._initial_state(state, x_t.shape[0], where)
        with eval_mode(self):
            h, h_n = self._run_rnn(self.inp.forward(x_t[None]), h0, None)   # (1, B, H)
            raw = self.head.forward(h[0])
        return self.out.shape_output(raw), copy_state(h_n)

    def _run_rnn(self, e, h0, lengths):
        """The recurrent layer's forward on inputs this model checked (``inp.check`` and
        ``check_lengths``): they are not checked again (h0 is, by the layer: finite)."""
        T, B = e.shape[:2]
        if T < 1 or B < 1 or self.rnn.batch_first:         # the layer's own errors and layout
            return self.rnn.forward(e, h0, lengths)
        return self.rnn._forward(e, self.rnn._check_states(h0, "h0", B, finite=True),
                                 trusted_lengths(lengths, T))

    def initial_state(self, batch_size: int):
        """The zero state for ``batch_size`` sequences (what ``state=None`` means)."""
        B = check_positive_int(batch_size, "batch_size", f"{self._where}.initial_state")
        D = 2 if self.bidirectional else 1
        z = np.zeros((self.rnn.num_layers * D, B, self.hidden_size), dtype=self.dtype)
        return (z, z.copy()) if self.rnn.cell == "lstm" else z

    def _initial_state(self, state, B: int, where: str):
        if state is not None and self.bidirectional:
            raise ValueError(f"{where}: a bidirectional tagger cannot carry a state across windows "
                             f"(its reverse direction starts at each window's end); pass state=None")
        return check_state(state, self.rnn, B, where)
