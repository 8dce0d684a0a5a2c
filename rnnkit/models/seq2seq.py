r"""Encoder–decoder (sequence to sequence; Sutskever, Vinyals & Le 2014; Cho et al. 2014).

Encoder: a recurrent stack (optionally bidirectional) reads the source; its final
state of every layer l, both directions concatenated, is bridged into the
decoder's initial state:

    s^{(l)} = [h→_{len}^{(l)} ; h←_1^{(l)}]            (D·H,)   (just h→ when unidirectional)
    h_0^{dec,(l)} = tanh(W_bh s_h^{(l)} + b_bh)                                          (1)
    c_0^{dec,(l)} = W_bc s_c^{(l)} + b_bc             (LSTM: the same from the cell states) (2)

(one bridge shared by all layers). Decoder: a unidirectional stack over target
embeddings, started from BOS and trained with teacher forcing:

    in_t = dropout(E_tgt(y_{t−1})),  y_0 = BOS;   z_t = W_hy dropout(h^{dec}_t) + b_y
    L = (1/N) Σ_{t, b: y_t ≠ PAD} −log softmax(z_t)_{y_t}

The encoder reads dropout(E_src(x_s)) likewise: the one ``dropout`` rate also drops
embedding entries in training (the regulariser small translation corpora need most),
and its backward multiplies the embedding gradients by the same masks.

Backward: decoder BPTT gives dh_0^{dec} (and dc_0^{dec}); through (1)
dz = dh_0 ⊙ (1 − h_0²), through the bridges ds = W_bᵀ dz, which is the encoder's
d h_n; the encoder then backpropagates from its final states only (its per-step
outputs are not used).

Inference: greedy decoding (arg-max at each step until EOS) and beam search,
which keeps the ``width`` best partial hypotheses by total log-probability and
ranks the finished ones by log p / len^α (α = ``length_penalty``; len counts the
tokens including EOS; α = 0 is the raw log-probability, which favours short outputs).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_flag, check_lengths, check_number, check_positive_int, check_prob
from rnnkit.layers import Dropout, Embedding, Linear, Recurrent
from rnnkit.losses import log_softmax, softmax_cross_entropy
from rnnkit.models.base import (InputEncoder, Model, check_carry_at, child_seeds, copy_state, eval_mode,
                                get_key, index_state, int_array, model_dtype, parse_cell, register_model,
                                state_after, state_batch)


@register_model
class EncoderDecoder(Model):
    """Sequence to sequence with a bridged encoder state, greedy and beam-search decoding.

    Args:
        tgt_vocab_size: V, the target vocabulary (including PAD, BOS and EOS).
        src_vocab_size (int source ids, through an embedding) or src_input_size (float
            source features). Exactly one.
        cell, hidden_size, num_layers, init, forget_bias: both stacks.
        dropout: between stacked layers, before the output layer and on the source and
            target embeddings (training only).
        label_smoothing: ε of :func:`rnnkit.losses.softmax_cross_entropy` in training (the
            loss in eval mode, validation's, is the plain cross-entropy).
        embedding_dim: size of the source and target embeddings.
        bidirectional: a bidirectional encoder (the decoder is always unidirectional).
        pad_id, bos_id, eos_id: distinct ids in [0, V).
        dtype, seed.

    Batch keys: "x" int (S, B) source ids or float (S, B, F); optional "lengths" (B,)
    source lengths; "y" int (T, B): target ids without BOS, each ending with EOS and
    padded with PAD (PAD positions are not scored).
    """

    #: the axis of each batch key that indexes the batch's items (data-parallel shards)
    batch_axes = {"x": 1, "lengths": 0, "y": 1}

    def __init__(self, tgt_vocab_size: int, src_vocab_size: int | None = None,
                 src_input_size: int | None = None, cell: str = "lstm", hidden_size: int = 64,
                 num_layers: int = 1, embedding_dim: int = 32, bidirectional: bool = False,
                 dropout: float = 0.0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 init: str = "default", forget_bias: float | None = None, dtype="float32",
                 seed: int | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self._remember(locals())
        where = self._where = type(self).__name__
        self.dtype = model_dtype(dtype, where)
        self.label_smoothing = check_prob(label_smoothing, "label_smoothing", where)
        rnn_cell, nonlinearity = parse_cell(cell, where)
        self.tgt_vocab_size = V = check_positive_int(tgt_vocab_size, "tgt_vocab_size", where, minimum=3)
        self.hidden_size = H = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = L = check_positive_int(num_layers, "num_layers", where)
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dropout = check_prob(dropout, "dropout", where)
        ids = {}
        for name, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            ids[name] = check_positive_int(value, name, where, minimum=0)
            if ids[name] >= V:
                raise ValueError(f"{where}: {name} must lie in [0, tgt_vocab_size={V}), got {value}")
        if len(set(ids.values())) != 3:
            raise ValueError(f"{where}: pad_id, bos_id and eos_id must be distinct, got {ids}")
        self.pad_id, self.bos_id, self.eos_id = ids["pad_id"], ids["bos_id"], ids["eos_id"]
        seeds = child_seeds(seed, 10, where)
        src_dim = embedding_dim if src_vocab_size is not None else None
        self.inp = InputEncoder(self, where, src_vocab_size, src_dim, src_input_size, self.dtype, seeds[0],
                                name="src_embedding")
        D = 2 if self.bidirectional else 1
        kw = dict(nonlinearity=nonlinearity, dropout=self.dropout, dtype=self.dtype, init=init,
                  forget_bias=forget_bias)
        self.encoder = self.add("encoder", Recurrent(rnn_cell, self.inp.size, H, L, bidirectional=self.bidirectional,
                                                     seed=seeds[1], **kw))
        self.bridge_h = self.add("bridge_h", Linear(D * H, H, dtype=self.dtype, seed=seeds[2]))
        self.bridge_c = None
        if rnn_cell == "lstm":
            self.bridge_c = self.add("bridge_c", Linear(D * H, H, dtype=self.dtype, seed=seeds[3]))
        self.tgt_embedding = self.add("tgt_embedding", Embedding(V, embedding_dim, self.dtype, seeds[4]))
        self.decoder = self.add("decoder", Recurrent(rnn_cell, embedding_dim, H, L, seed=seeds[5], **kw))
        self.drop = self.add("drop", Dropout(self.dropout, seed=seeds[6]))
        self.head = self.add("head", Linear(H, V, dtype=self.dtype, seed=seeds[7]))
        self.drop_src = self.add("drop_src", Dropout(self.dropout, seed=seeds[8]))
        self.drop_tgt = self.add("drop_tgt", Dropout(self.dropout, seed=seeds[9]))

    # -- the bridge ----------------------------------------------------------------------
    def _join(self, s: np.ndarray) -> np.ndarray:
        """Encoder h_n (L·D, B, H) -> per layer [forward ; reverse] (L, B, D·H)."""
        L, D = self.num_layers, 2 if self.bidirectional else 1
        B, H = s.shape[1], s.shape[2]
        return s.reshape(L, D, B, H).transpose(0, 2, 1, 3).reshape(L, B, D * H)

    def _split(self, ds: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`_join` for gradients: (L, B, D·H) -> (L·D, B, H)."""
        L, D, H = self.num_layers, 2 if self.bidirectional else 1, self.hidden_size
        B = ds.shape[1]
        return np.ascontiguousarray(ds.reshape(L, B, D, H).transpose(0, 2, 1, 3).reshape(L * D, B, H))

    def _bridge(self, h_n):
        """Equations (1) and (2). Returns (decoder state, h0 for the backward)."""
        if self.bridge_c is not None:
            h, c = h_n
            h0 = np.tanh(self.bridge_h.forward(self._join(h)))
            return (h0, self.bridge_c.forward(self._join(c))), h0
        h0 = np.tanh(self.bridge_h.forward(self._join(h_n)))
        return h0, h0

    def _encode(self, x, lengths):
        _, h_n = self.encoder.forward(self.drop_src.forward(self.inp.forward(x)), None, lengths)
        return self._bridge(h_n)

    def _source(self, x, lengths, where):
        x = self.inp.check(x, "x", "S, B", 2)
        S, B = x.shape[:2]
        return x, check_lengths(lengths, S, B, where)

    # -- training ------------------------------------------------------------------------
    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Teacher-forced cross-entropy over the non-PAD target tokens: ``(loss, count, state)``.

        Each source starts the decoder afresh, so ``state`` must be None; the returned
        state is the decoder's after ``carry_at`` target steps (default: all).

        Shapes:
            batch["x"] (S, B) or (S, B, F), batch["lengths"] (B,), batch["y"] (T, B)
        """
        where = f"{self._where}.loss"
        if state is not None:
            raise ValueError(f"{where}: the decoder starts from the encoded source; a carried state "
                             f"cannot be passed in (state must be None)")
        x, lengths = self._source(get_key(batch, "x", where), batch.get("lengths"), where)
        B = x.shape[1]
        y = int_array(get_key(batch, "y", where), "y", where, 2, "(T, B) of target ids")
        if y.shape[1] != B:
            raise ValueError(f"{where}: expected y of shape (T, {B}) (B from x), got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.tgt_vocab_size):
            raise ValueError(f"{where}: y ids must lie in [0, tgt_vocab_size={self.tgt_vocab_size}), "
                             f"got min {y.min()} and max {y.max()}")
        T = y.shape[0]
        k = check_carry_at(carry_at, T, where)
        mask = y != self.pad_id

        dec0, h0 = self._encode(x, lengths)
        dec_in = np.concatenate([np.full((1, B), self.bos_id), y[:-1]], axis=0)   # teacher forcing
        e = self.drop_tgt.forward(self.tgt_embedding.forward(dec_in))             # (T, B, E)
        carried = state_after(self.decoder, e, dec0, None, k) if k is not None else None
        hd, hd_n = self.decoder.forward(e, dec0)
        raw = self.head.forward(self.drop.forward(hd))                            # (T, B, V)
        loss, draw = softmax_cross_entropy(raw, y, mask=mask, label_smoothing=self._smoothing())
        self._cache_for_backward((draw, h0))
        return loss, int(np.count_nonzero(mask)), carried if k is not None else copy_state(hd_n)

    def _smoothing(self) -> float:
        """The label smoothing of this loss: ``label_smoothing`` in training, 0 in eval mode."""
        return self.label_smoothing if self.training else 0.0

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw, h0 = self._take_pending(f"{self._where}.backward")
        self._backward_decoder_and_encoder(self.drop.backward(self.head.backward(draw)), h0)

    def _backward_decoder_and_encoder(self, dh, h0, dmemory=None) -> None:
        """From ∂L/∂(decoder outputs) ``dh`` back through the decoder, the bridge and the
        encoder (``dmemory``: ∂L/∂(encoder outputs) where a decoder reads them, else None)."""
        de, dstate0 = self.decoder.backward(dh)
        self.tgt_embedding.backward(self.drop_tgt.backward(de))
        dh0 = dstate0[0] if self.bridge_c is not None else dstate0
        dsh = self._split(self.bridge_h.backward(dh0 * (1.0 - h0 * h0)))          # through tanh
        if self.bridge_c is not None:
            dsc = self._split(self.bridge_c.backward(dstate0[1]))
            dx, _ = self.encoder.backward(dmemory, (dsh, dsc))
        else:
            dx, _ = self.encoder.backward(dmemory, dsh)
        self.inp.backward(self.drop_src.backward(dx))

    # -- inference -----------------------------------------------------------------------
    def encode(self, x, lengths=None):
        """The decoder's initial state for each source (eval mode).

        Shapes:
            x (S, B) or (S, B, F), lengths (B,) -> (L, B, H) or (h, c) for LSTM
        """
        x, lengths = self._source(x, lengths, f"{self._where}.encode")
        with eval_mode(self):
            return copy_state(self._encode(x, lengths)[0])

    def decode_step(self, tokens, state):
        """One decoder step: log-probabilities of the next token (eval mode).

        Shapes:
            tokens int (N,), state (L, N, H) or (h, c) -> (log_probs (N, V), state)
        """
        tokens = int_array(tokens, "tokens", f"{self._where}.decode_step", 1, "(N,)")
        with eval_mode(self):
            h, h_n = self.decoder.forward(self.tgt_embedding.forward(tokens[None]), state)
            logits = self.head.forward(h[0])
        return log_softmax(logits.astype(np.float64)), h_n

    def _allowed(self, logp: np.ndarray) -> np.ndarray:
        """PAD and BOS are never outputs: give them log-probability −inf when decoding."""
        logp = logp.copy()
        logp[:, [self.pad_id, self.bos_id]] = -np.inf
        return logp

    def greedy(self, x, lengths=None, max_len: int = 50) -> list[list[int]]:
        """Arg-max decoding until EOS or ``max_len`` tokens; the outputs exclude BOS/EOS.

        PAD and BOS are never produced (here and in beam search).

        Shapes:
            x (S, B) or (S, B, F), lengths (B,) -> B lists of target ids
        """
        max_len = check_positive_int(max_len, "max_len", f"{self._where}.greedy")
        state = self.encode(x, lengths)
        B = state_batch(state)
        tokens = np.full(B, self.bos_id)
        out = [[] for _ in range(B)]
        done = np.zeros(B, dtype=bool)
        for _ in range(max_len):
            logp, state = self.decode_step(tokens, state)
            tokens = np.argmax(self._allowed(logp), axis=-1)
            for b in np.flatnonzero(~done):
                if tokens[b] == self.eos_id:
                    done[b] = True
                else:
                    out[b].append(int(tokens[b]))
            if done.all():
                break
        return out

    def beam_search(self, x, lengths=None, width: int = 4, max_len: int = 50, length_penalty: float = 1.0,
                    return_scores: bool = False):
        """Beam search per source; width 1 is greedy decoding.

        At each step every live hypothesis is extended by every token; candidates are
        ranked by total log-probability; one ending in EOS among the ``width`` best is set
        aside as finished, the best others fill the ``width`` live slots. A source is done
        when its best candidate ends in EOS (no live one can reach a higher total), or when
        ``width`` have finished and the worst of them scores at least the best live one's
        log p / (len + 1)^α (the rule of Hugging Face's beam search), or after ``max_len``
        tokens (live ones then count as finished); the best finished one by log p / len^α
        is returned (without BOS/EOS). Stopping at the first ``width`` finished instead
        returns short, unlikely outputs that a confident model's greedy output beats.
        All sources decode together, ``width`` rows each, so one decoder step serves the batch.

        Shapes:
            x (S, B) or (S, B, F), lengths (B,) -> B lists of target ids
            (and B normalised scores with ``return_scores``)
        """
        where = f"{self._where}.beam_search"
        width = check_positive_int(width, "width", where)
        max_len = check_positive_int(max_len, "max_len", where)
        alpha = float(check_number(length_penalty, "length_penalty", where, 0.0))
        K, V = width, self.tgt_vocab_size
        states = self.encode(x, lengths)
        B = state_batch(states)
        state = index_state(states, np.repeat(np.arange(B), K))        # K rows per source
        alive = [[[]] for _ in range(B)]          # token lists of each source's live hypotheses
        alive_logp = np.full((B, K), -np.inf)     # rows past a source's live ones are padding
        alive_logp[:, 0] = 0.0
        last = np.full(B * K, self.bos_id)
        finished = [[] for _ in range(B)]         # (tokens without EOS, total log p, length incl. EOS)
        active = list(range(B))                   # the sources still decoding, in row order
        for step in range(max_len):
            n = len(active)
            logp, new_state = self.decode_step(last, state)                          # (n·K, V)
            cand = (alive_logp[:, :, None] + self._allowed(logp).reshape(n, K, V)).reshape(n, K * V)
            # at most K of the best 2K end in EOS, so they hold the K live ones; ties at the
            # 2K-th value are all kept, so the order is that of a full stable sort
            kth = min(2 * K, K * V)
            top = np.partition(cand, K * V - kth, axis=1)[:, K * V - kth]
            rows, toks, logps, still = [], [], [], []
            for j, b in enumerate(active):
                row = cand[j]
                idx = np.flatnonzero(row >= top[j])
                idx = idx[np.lexsort((idx, -row[idx]))]   # best first; ties: lower hypothesis, token
                keep_i, keep_tok = [], []
                for rank, flat in enumerate(idx):
                    if row[flat] == -np.inf:             # PAD/BOS or padding: so is every later one
                        break
                    i, tok = divmod(int(flat), V)
                    if tok != self.eos_id:
                        keep_i.append(i)
                        keep_tok.append(tok)
                    elif rank < K:
                        finished[b].append((alive[b][i], float(row[flat]), len(alive[b][i]) + 1))
                    if len(keep_i) == K:
                        break
                if not keep_i and not finished[b]:      # nothing can follow: keep the live ones
                    finished[b] = [(t, float(lp), max(len(t), 1)) for t, lp in zip(alive[b], alive_logp[j])]
                if not keep_i or idx[0] % V == self.eos_id or self._beam_done(
                        finished[b], K, float(row[keep_i[0] * V + keep_tok[0]]), step + 2, alpha):
                    continue
                alive[b] = [alive[b][i] + [t] for i, t in zip(keep_i, keep_tok)]
                pad = K - len(keep_i)
                rows += [j * K + i for i in keep_i] + [j * K + keep_i[0]] * pad
                toks += keep_tok + [keep_tok[0]] * pad
                logps.append(np.concatenate([row[np.asarray(keep_i) * V + np.asarray(keep_tok)],
                                             np.full(pad, -np.inf)]))
                still.append(b)
            if not still:
                break
            state = index_state(new_state, np.asarray(rows))
            last, alive_logp, active = np.asarray(toks), np.stack(logps), still
        else:       # max_len reached: the live hypotheses count as finished
            for j, b in enumerate(active):
                finished[b] += [(toks, float(lp), len(toks)) for toks, lp in zip(alive[b], alive_logp[j])]
        results, scores = [], []
        for b in range(B):
            best = max(finished[b], key=lambda f: f[1] / (max(f[2], 1) ** alpha))
            results.append(best[0])
            scores.append(best[1] / (max(best[2], 1) ** alpha))
        return (results, scores) if return_scores else results

    @staticmethod
    def _beam_done(finished, width: int, best_live: float, length: int, alpha: float) -> bool:
        """``width`` hypotheses have finished and the worst of the best ``width`` of them
        scores at least the best live one (total ``best_live``) would with EOS next."""
        if len(finished) < width:
            return False
        worst = sorted(lp / (max(n, 1) ** alpha) for _, lp, n in finished)[-width]
        return worst >= best_live / (length ** alpha)
