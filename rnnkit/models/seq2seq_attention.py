r"""Encoder–decoder with attention over all encoder states (Bahdanau et al. 2015; Luong et al. 2015).

The encoder (optionally bidirectional) gives one state per source step,
m_s = [h→_s ; h←_s] (S, B, M = D·H), and its final states are bridged into the decoder's
initial state exactly as in :class:`~rnnkit.models.EncoderDecoder`. The decoder runs over
the target embeddings (teacher forcing) and each of its states h_t attends over the
valid source steps (:class:`~rnnkit.models.attention.CrossAttention`, additive or
multiplicative):

    a_t = softmax_s(score(h_t, m_s)),   c_t = Σ_s a_ts m_s                           (1)
    õ_t = tanh(W_c [c_t ; h_t] + b_c)                                                (2)
    z_t = W_hy dropout(õ_t) + b_y,      L = (1/N) Σ_{t,b: y_t ≠ PAD} −log softmax(z_t)_{y_t}

(in training both stacks read their embeddings through dropout, as in EncoderDecoder)

(the "global attention" of Luong et al., scoring the current decoder state, so the
decoder's recurrence runs as one pass over all target steps).

Backward: from the head dõ, dp = dõ ⊙ (1 − õ²), [dc ; dh] = W_cᵀ dp (2); the attention
gives dh_t += ∂/∂h_t and dm_s from both the weighted sum and the scores (1); the decoder
backpropagates dh through time to its initial state, the bridge turns that into the
encoder's dh_n, and the encoder backpropagates dm (all its outputs) and dh_n together.

Inference: the decoder state carried from step to step is the tuple
(recurrent state, memory m (S, N, M), mask (S, N)), so greedy decoding and beam search
(length-normalised, see :class:`EncoderDecoder`) reorder it like any state.
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.layers import Linear
from rnnkit.losses import log_softmax, softmax_cross_entropy
from rnnkit.models.attention import ATTENTION_KINDS, CrossAttention
from rnnkit.models.base import (check_carry_at, child_seeds, eval_mode, get_key, int_array, register_model)
from rnnkit.models.seq2seq import EncoderDecoder


@register_model
class AttentionEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` whose decoder attends over every encoder state.

    Args (besides :class:`EncoderDecoder`'s):
        attention: "additive" (Bahdanau) or "multiplicative" (scaled Luong "general").
        attention_size: the additive attention's hidden size (default hidden_size).

    Batch keys as :class:`EncoderDecoder`.
    """

    def __init__(self, tgt_vocab_size: int, src_vocab_size: int | None = None,
                 src_input_size: int | None = None, cell: str = "lstm", hidden_size: int = 64,
                 num_layers: int = 1, embedding_dim: int = 32, bidirectional: bool = False,
                 dropout: float = 0.0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 init: str = "default", forget_bias: float | None = None, dtype="float32",
                 seed: int | None = None, attention: str = "additive", attention_size: int | None = None,
                 label_smoothing: float = 0.0):
        args = dict(locals())
        args.pop("self")
        args.pop("__class__", None)
        attention, attention_size = args.pop("attention"), args.pop("attention_size")
        super().__init__(**args)
        self._remember(dict(args, attention=attention, attention_size=attention_size))
        where = self._where
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"{where}: attention must be one of {', '.join(ATTENTION_KINDS)}, got {attention!r}")
        if attention_size is not None:
            attention_size = check_positive_int(attention_size, "attention_size", where)
        self.attention = attention
        H = self.hidden_size
        M = H * (2 if self.bidirectional else 1)
        s1, s2 = child_seeds(None if seed is None else seed + 1, 2, where)
        self.attn = self.add("attn", CrossAttention(H, M, attention, attention_size, self.dtype, s1))
        self.combine = self.add("combine", Linear(M + H, H, dtype=self.dtype, seed=s2))

    def _attend(self, hd, memory, mask):
        """Equations (1) and (2): decoder states -> attentional states õ and weights."""
        context, weights = self.attn.forward(hd, memory, mask)
        o = np.tanh(self.combine.forward(np.concatenate([context, hd], axis=-1)))
        return o, weights

    def _memory(self, x, lengths):
        """Encoder outputs, their mask and the bridged decoder state."""
        mem, h_n = self.encoder.forward(self.drop_src.forward(self.inp.forward(x)), None, lengths)
        S, B = mem.shape[:2]
        mask = np.ones((S, B), dtype=bool) if lengths is None else np.arange(S)[:, None] < lengths[None, :]
        dec0, h0 = self._bridge(h_n)
        return mem, mask, dec0, h0

    def _targets(self, batch, B, where):
        y = int_array(get_key(batch, "y", where), "y", where, 2, "(T, B) of target ids")
        if y.shape[1] != B:
            raise ValueError(f"{where}: expected y of shape (T, {B}) (B from x), got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.tgt_vocab_size):
            raise ValueError(f"{where}: y ids must lie in [0, tgt_vocab_size={self.tgt_vocab_size}), "
                             f"got min {y.min()} and max {y.max()}")
        return y

    # -- training ------------------------------------------------------------------------
    def loss(self, batch: dict, state=None, carry_at: int | None = None):
        """Teacher-forced cross-entropy over the non-PAD target tokens: ``(loss, count, state)``."""
        where = f"{self._where}.loss"
        if state is not None:
            raise ValueError(f"{where}: the decoder starts from the encoded source; state must be None")
        x, lengths = self._source(get_key(batch, "x", where), batch.get("lengths"), where)
        B = x.shape[1]
        y = self._targets(batch, B, where)
        check_carry_at(carry_at, y.shape[0], where)
        mask_y = y != self.pad_id
        mem, mask, dec0, h0 = self._memory(x, lengths)
        dec_in = np.concatenate([np.full((1, B), self.bos_id), y[:-1]], axis=0)   # teacher forcing
        hd, hd_n = self.decoder.forward(self.drop_tgt.forward(self.tgt_embedding.forward(dec_in)), dec0)
        o, _ = self._attend(hd, mem, mask)
        raw = self.head.forward(self.drop.forward(o))                              # (T, B, V)
        loss, draw = softmax_cross_entropy(raw, y, mask=mask_y, label_smoothing=self._smoothing())
        self._cache_for_backward((draw, h0, o, mem.shape[2]))
        return loss, int(np.count_nonzero(mask_y)), None

    def backward(self) -> None:
        """Add the gradients of the last training ``loss()`` into ``grads``."""
        draw, h0, o, M = self._take_pending(f"{self._where}.backward")
        do = self.drop.backward(self.head.backward(draw))
        dcat = self.combine.backward(do * (1.0 - o * o))                           # through tanh (2)
        dquery, dmem = self.attn.backward(np.ascontiguousarray(dcat[..., :M]))
        self._backward_decoder_and_encoder(dcat[..., M:] + dquery, h0, dmem)

    # -- inference -----------------------------------------------------------------------
    def encode(self, x, lengths=None):
        """The decoding state of each source: (decoder state, memory, mask) (eval mode).

        Shapes:
            x (S, B) or (S, B, F), lengths (B,) -> (state, memory (S, B, M), mask (S, B))
        """
        x, lengths = self._source(x, lengths, f"{self._where}.encode")
        with eval_mode(self):
            mem, mask, dec0, _ = self._memory(x, lengths)
        return (dec0, mem, mask)

    def decode_step(self, tokens, state):
        """One decoder step with attention: (log_probs (N, V), next state)."""
        tokens = int_array(tokens, "tokens", f"{self._where}.decode_step", 1, "(N,)")
        dec, mem, mask = state
        with eval_mode(self):
            h, h_n = self.decoder.forward(self.tgt_embedding.forward(tokens[None]), dec)
            o, _ = self._attend(h, mem, mask)
            logits = self.head.forward(o[0])
        return log_softmax(logits.astype(np.float64)), (h_n, mem, mask)

    def attention_weights(self, x, y, lengths=None) -> np.ndarray:
        """The attention of each target step over the source when the decoder reads ``y``
        (e.g. its own output followed by EOS), in eval mode: one heat map per pair.

        Shapes:
            x (S, B), y int (T, B), lengths (B,) -> weights (B, T, S)
        """
        where = f"{self._where}.attention_weights"
        x, lengths = self._source(x, lengths, where)
        B = x.shape[1]
        y = self._targets({"y": y}, B, where)
        with eval_mode(self):
            mem, mask, dec0, _ = self._memory(x, lengths)
            dec_in = np.concatenate([np.full((1, B), self.bos_id), y[:-1]], axis=0)
            hd, _ = self.decoder.forward(self.tgt_embedding.forward(dec_in), dec0)
            _, weights = self._attend(hd, mem, mask)
        return weights.transpose(1, 0, 2)
