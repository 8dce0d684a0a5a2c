"""Cross attention and the encoder–decoder with attention: gradients, masking, decoding."""

import numpy as np
import pytest

from rnnkit.models import AttentionEncoderDecoder, CrossAttention, build
from rnnkit.models.base import eval_mode
from tests.test_models import LENGTHS, assert_gradcheck, feats, ids

T, B = 4, 3


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_cross_attention_gradcheck(kind):
    att = CrossAttention(3, 4, kind, attention_size=2, dtype=np.float64, seed=0)
    for p in att.params.values():
        p[...] = np.random.default_rng(1).uniform(-1, 1, p.shape)
    q, m = feats((2, B, 3), seed=2), feats((T, B, 4), seed=3)
    mask = np.arange(T)[:, None] < LENGTHS[None, :]
    R = feats((2, B, 4), seed=4)

    def loss():
        c, _ = att.forward(q, m, mask)
        return float((c * R).sum())

    c, a = att.forward(q, m, mask)
    assert a.shape == (2, B, T)
    np.testing.assert_allclose(a.sum(axis=2), 1.0)
    assert np.all(a[:, 1, 2:] == 0)                      # masked source steps get no weight
    att.zero_grad()
    dq, dm = att.backward(R)
    eps = 1e-6
    for name, arr, an in [("q", q, dq), ("m", m, dm)] + [(k, v, att.grads[k]) for k, v in att.params.items()]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            o = arr[idx]
            arr[idx] = o + eps
            lp = loss()
            arr[idx] = o - eps
            lm = loss()
            arr[idx] = o
            num[idx] = (lp - lm) / (2 * eps)
        rel = np.linalg.norm(an - num) / max(np.linalg.norm(an) + np.linalg.norm(num), 1e-12)
        assert rel < 1e-6, (name, rel)
    assert np.all(dm[2:, 1] == 0)


@pytest.mark.parametrize("cell,kind,bidirectional", [("lstm", "additive", True), ("gru", "multiplicative", False),
                                                     ("rnn", "additive", False)])
def test_attention_encoder_decoder_gradcheck(cell, kind, bidirectional):
    m = AttentionEncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, cell=cell, hidden_size=3, embedding_dim=2,
                                bidirectional=bidirectional, attention=kind, attention_size=2,
                                dtype="float64", seed=0)
    y = np.array([[3, 4, 5], [4, 2, 3], [2, 0, 5], [0, 0, 2]])   # EOS = 2, PAD = 0
    batch = {"x": ids((T, B), 5), "lengths": LENGTHS, "y": y}
    _, count, _ = m.loss(batch)
    assert count == int((y != 0).sum())
    assert_gradcheck(m, batch)


def test_attention_encoder_decoder_gradcheck_with_dropout_on_the_embeddings(monkeypatch):
    m = AttentionEncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, hidden_size=3, embedding_dim=2,
                                bidirectional=True, dropout=0.4, dtype="float64", seed=0)
    y = np.array([[3, 4, 5], [4, 2, 3], [2, 0, 5], [0, 0, 2]])
    batch = {"x": ids((T, B), 5), "lengths": LENGTHS, "y": y}
    drops = {"drop": m.drop, "drop_src": m.drop_src, "drop_tgt": m.drop_tgt}
    loss = m.loss

    def loss_with_fixed_masks(*args, **kwargs):     # the same masks at every evaluation
        for i, d in enumerate(drops.values()):
            d._rng = np.random.default_rng(10 + i)
        return loss(*args, **kwargs)

    monkeypatch.setattr(m, "loss", loss_with_fixed_masks)
    assert_gradcheck(m, batch)
    m.train()
    dropped = m.loss(batch)[0]
    for name in ("drop_src", "drop_tgt"):           # each embedding is dropped in training
        drops[name].p = 0.0
        assert m.loss(batch)[0] != dropped, name
        drops[name].p = 0.4
    with eval_mode(m):
        assert m.loss(batch)[0] != dropped


@pytest.mark.parametrize("attention", [True, False])
def test_label_smoothing_gradcheck_in_training_and_plain_loss_in_eval(attention):
    from rnnkit.models import EncoderDecoder

    kw = dict(tgt_vocab_size=6, src_vocab_size=5, hidden_size=3, embedding_dim=2, bidirectional=True,
              dtype="float64", seed=0)
    make = ((lambda **k: AttentionEncoderDecoder(**kw, attention_size=2, **k)) if attention
            else (lambda **k: EncoderDecoder(**kw, **k)))
    m, plain = make(label_smoothing=0.1), make()
    y = np.array([[3, 4, 5], [4, 2, 3], [2, 0, 5], [0, 0, 2]])
    batch = {"x": ids((T, B), 5), "lengths": LENGTHS, "y": y}
    assert_gradcheck(m, batch)
    plain.load_state_dict(m.state_dict())
    m.train(), plain.train()
    assert m.loss(batch)[0] != pytest.approx(plain.loss(batch)[0], rel=1e-6)   # smoothed in training
    with eval_mode(m), eval_mode(plain):
        assert m.loss(batch)[0] == plain.loss(batch)[0]     # validation: the plain cross-entropy
    assert build(m.config()).label_smoothing == 0.1


def test_config_round_trip_and_decoding_shapes():
    m = AttentionEncoderDecoder(tgt_vocab_size=7, src_vocab_size=5, hidden_size=8, attention="multiplicative",
                                seed=3)
    m2 = build(m.config())
    assert m2.attention == "multiplicative"
    m2.load_state_dict(m.state_dict())
    x = ids((5, 2), 5)
    lengths = np.array([5, 3])
    assert m.greedy(x, lengths, max_len=6) == m2.greedy(x, lengths, max_len=6)
    out = m.beam_search(x, lengths, width=3, max_len=6)
    assert len(out) == 2 and all(len(o) <= 6 for o in out)
    w = m.attention_weights(x, np.array([[3, 4], [2, 2]]), lengths)
    assert w.shape == (2, 2, 5)
    np.testing.assert_allclose(w.sum(axis=2), 1.0, rtol=1e-5)
    assert np.all(w[1, :, 3:] == 0)


def _reversal_exact_match(cls):
    from rnnkit.optim import Adam

    rng = np.random.default_rng(0)
    V, S, N = 8, 6, 64
    m = cls(tgt_vocab_size=V + 3, src_vocab_size=V, cell="gru", hidden_size=32, embedding_dim=16,
            bidirectional=True, seed=0)
    opt = Adam(m.params, lr=0.01)
    for step in range(250):
        src = rng.integers(0, V, size=(S, N))
        y = np.concatenate([src[::-1] + 3, np.full((1, N), 2)])
        m.zero_grad()
        m.loss({"x": src, "y": y})
        m.backward()
        opt.step(m.grads)
    src = rng.integers(0, V, size=(S, 50))
    out = m.greedy(src, max_len=S + 2)
    return np.mean([o == list(src[::-1, b] + 3) for b, o in enumerate(out)])


def test_attention_learns_reversal_that_the_bridge_alone_does_not():
    """Reversing 6-token strings in 250 steps: attention gets nearly all, the bridged state few."""
    from rnnkit.models import EncoderDecoder

    assert _reversal_exact_match(AttentionEncoderDecoder) > 0.9
    assert _reversal_exact_match(EncoderDecoder) < 0.5
